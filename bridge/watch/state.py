"""The watcher's memory: ``<stems>/.mixbridge/`` and its append-only journal.

Layout (``docs/workflow.md``)::

    .mixbridge/
      cache/                 analysis cache (bridge.cache)
      passes/0001/           plan.json  notes.html  notes.md  report.json
      last-pass.json         the last completed pass (written atomically)
      journal.jsonl          one JSON object per line, per event, fsync'd

Killing the process at any moment loses nothing that was written: every file is written to a
temporary name, fsync'd and renamed over the old one, and every journal line is fsync'd before the
next step starts.  A torn last journal line (killed mid-write) is skipped on reading.

Recovery rules (:func:`recover`):

- a pass whose ``pass_started`` has no ``pass_done`` is run again, once (a second crash on the
  same pass is recorded as ``pass_abandoned`` and not retried, so a file that crashes the
  analysis cannot put the watcher in a restart loop);
- a completed pass is never repeated: ``last-pass.json`` holds its stems' fingerprints, and stems
  found at start-up make a bounce only if they differ;
- a plan whose apply was queued (REAPER down) and never applied is queued again.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files import write_atomic
from ..settings import STATE_DIR_NAME, StatePaths

def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateFolder:
    """``<root>/.mixbridge/``: the layout of :class:`bridge.settings.StatePaths`, plus ``last-pass.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.paths = StatePaths(self.root / STATE_DIR_NAME)
        self.dir = self.paths.root
        self.cache_dir = self.paths.cache_dir
        self.passes_dir = self.paths.passes_dir
        self.last_pass_path = self.paths.last_pass
        self.journal_path = self.paths.journal

    def ensure(self) -> None:
        self.passes_dir.mkdir(parents=True, exist_ok=True)

    def pass_dir(self, number: int) -> Path:
        return self.paths.pass_dir(number)

    def read_last_pass(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.last_pass_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("pass"), int) else None

    def write_last_pass(self, data: dict[str, Any]) -> None:
        write_atomic(self.last_pass_path, json.dumps(data, indent=1, sort_keys=True) + "\n")


class Journal:
    """Append-only JSON-lines log; each line is flushed and fsync'd before :meth:`write` returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = open(self.path, "a", encoding="utf-8")
        # A torn last line from a killed process must not glue onto our first one.
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"ts": utc_now(), "event": event, **fields}
        line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":"))
        with self._lock:
            if self._fh.closed:
                return record
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return record

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every well-formed record; a torn or garbled line is skipped, not fatal."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "event" in record:
            out.append(record)
    return out


@dataclass
class Recovery:
    """What a restart must do, read from ``last-pass.json`` and the journal."""

    last_pass: dict[str, Any] | None = None
    next_pass: int = 1
    rerun: dict[str, Any] | None = None  # the pass_started record of an unfinished pass, run again once
    abandoned: list[int] = field(default_factory=list)
    queued_apply: int | None = None  # a completed pass whose plan never reached the target


def recover(state: StateFolder) -> Recovery:
    """Work out what the previous run left unfinished (see the module docstring)."""
    last = state.read_last_pass()
    records = read_journal(state.journal_path)
    started: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    reruns: dict[int, int] = {}
    abandoned: set[int] = set()
    queued: set[int] = set()
    applied: set[int] = set()
    for r in records:
        n = r.get("pass")
        if not isinstance(n, int):
            continue
        kind = r["event"]
        if kind == "pass_started":
            started[n] = r
        elif kind == "pass_done":
            done.add(n)
        elif kind == "pass_rerun":
            reruns[n] = reruns.get(n, 0) + 1
        elif kind == "pass_abandoned":
            abandoned.add(n)
        elif kind == "apply_queued":
            queued.add(n)
        elif kind in ("applied", "apply_superseded"):
            applied.add(n)
    if last is not None:
        done.add(last["pass"])
    highest = max([0, *started, *done, *(x for x in abandoned)])
    rec = Recovery(last_pass=last, next_pass=highest + 1)
    unfinished = sorted(n for n in started if n not in done and n not in abandoned)
    for n in unfinished[:-1]:
        rec.abandoned.append(n)  # superseded by a later pass that also never finished
    if unfinished:
        n = unfinished[-1]
        if reruns.get(n, 0) >= 1:
            rec.abandoned.append(n)
        else:
            rec.rerun = started[n]
    if last is not None and not last.get("applied", True) and not last.get("held", False):
        n = last["pass"]
        if n in queued and n not in applied:
            rec.queued_apply = n
    return rec
