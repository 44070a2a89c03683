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

Every file here is validated when it is read back (shape, types, ranges: :mod:`bridge.statefiles`):
a bad ``last-pass.json``, a journal that is not a regular file or holds records of the wrong shape,
a state folder that is a file, are moved aside as ``<name>.bad-<timestamp>`` with one console line,
and the watcher starts clean.  A journal line torn by a crash is skipped silently (that is normal).
The journal is read back at most :data:`JOURNAL_READ_MAX` bytes from its end.

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
from typing import Any, Callable

from ..errors import StateFolderError
from ..files import NotRegular, display, is_disk_full, open_regular, write_atomic
from ..settings import STATE_DIR_NAME, StatePaths
from ..statefiles import boolean, integer, load_json, need, obj, report_bad, string

#: Pass numbers are 1..this (a file claiming more is of the wrong shape).
MAX_PASS = 10_000_000
#: How much of the journal's end is read back at a start (it grows by ~2 kB per pass).
JOURNAL_READ_MAX = 32 * 1024 * 1024

def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateFolder:
    """``<root>/.mixbridge/``: the layout of :class:`bridge.settings.StatePaths`, plus ``last-pass.json``.

    ``notice`` receives the one line about a state file that was moved aside.
    """

    def __init__(self, root: Path, notice: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.notice = notice
        self.paths = StatePaths(self.root / STATE_DIR_NAME)
        self.dir = self.paths.root
        self.cache_dir = self.paths.cache_dir
        self.passes_dir = self.paths.passes_dir
        self.last_pass_path = self.paths.last_pass
        self.journal_path = self.paths.journal

    def ensure(self) -> None:
        """Create the folder (a file or FIFO in its place is moved aside); check it can be written.

        Raises
        ------
        StateFolderError
            ``E_STATE_FOLDER``: it cannot be created or written (a read-only folder or filesystem).
        """
        for folder in (self.dir, self.passes_dir):
            if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
                report_bad(folder, "not a folder", self.notice)
        try:
            self.passes_dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            if is_disk_full(exc):
                return  # writable, only full: the watcher runs and says so when a pass needs room
            raise StateFolderError(f"{display(self.dir)}: {exc.strerror or exc}") from exc

    def pass_dir(self, number: int) -> Path:
        return self.paths.pass_dir(number)

    def read_last_pass(self) -> dict[str, Any] | None:
        """``last-pass.json``, validated (:func:`parse_last_pass`); ``None`` when absent or bad (moved aside)."""
        return load_json(self.last_pass_path, parse_last_pass, notice=self.notice)

    def write_last_pass(self, data: dict[str, Any]) -> None:
        write_atomic(self.last_pass_path, json.dumps(data, indent=1, sort_keys=True) + "\n")


class Journal:
    """Append-only JSON-lines log; each line is one ``write`` call and fsync'd before :meth:`write` returns.

    A line that cannot be written because the disk is full is dropped (counted in :attr:`lost`;
    the file is cut back to its last whole line), never an exception: the watcher keeps running
    and says so once.  A journal that is not a regular file is moved aside first.
    """

    def __init__(self, path: Path, notice: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.lost = 0
        if (self.path.exists() or self.path.is_symlink()) and not self.path.is_file():
            report_bad(self.path, "not a regular file", notice)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise StateFolderError(f"{display(self.path)}: {exc.strerror or exc}") from exc
        os.set_blocking(self._fd, True)
        # A torn last line from a killed process must not glue onto our first one.
        size = os.fstat(self._fd).st_size
        if size > 0:
            try:
                with os.fdopen(open_regular(self.path), "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
            except OSError:
                torn = False
            if torn:
                self._append(b"\n")

    def _append(self, data: bytes) -> bool:
        fd = self._fd
        try:
            before = os.fstat(fd).st_size
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            return True
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.lost += 1
            try:
                os.ftruncate(fd, before)  # no half line left behind
            except OSError:
                pass
            return False

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"ts": utc_now(), "event": event, **fields}
        line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":"))
        with self._lock:
            if self._fd is None:
                return record
            self._append((line + "\n").encode("utf-8", "backslashreplace"))
        return record

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None


def _valid_record(record: Any) -> bool:
    """A journal record's shape: an object with a string ``event`` and, if any, an integer ``pass``."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return False
    n = record.get("pass", 1)
    return type(n) is int and 1 <= n <= MAX_PASS


def read_journal(path: Path, notice: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every well-formed record (of the last :data:`JOURNAL_READ_MAX` bytes).

    A torn or garbled line (a crash mid-write) is skipped; a journal that is not a regular file,
    or that holds JSON records of the wrong shape (not written by us), is moved aside with one
    line (its good records are still returned, so this start recovers what it can).
    """
    path = Path(path)
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return []
    except NotRegular as exc:
        report_bad(path, exc.strerror, notice)
        return []
    except OSError:
        return []
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > JOURNAL_READ_MAX:
            fh.seek(size - JOURNAL_READ_MAX)
            fh.readline()  # from the first whole line
        raw = fh.read(JOURNAL_READ_MAX).decode("utf-8", errors="replace")
    out = []
    wrong = 0
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # torn by a crash: normal, skipped
        if _valid_record(record):
            out.append(record)
        else:
            wrong += 1
    if wrong:
        report_bad(path, f"{wrong} records of the wrong shape", notice)
    return out


def parse_last_pass(data: Any) -> dict[str, Any]:
    """Check ``last-pass.json`` (the fields a restart reads); raises ``ValueError`` when it is not one."""
    doc = obj(data, "last-pass.json")
    if "schema" in doc:
        need(doc["schema"] == "mixbridge-last-pass", "schema must be mixbridge-last-pass")
    integer(doc.get("pass"), "pass", 1, MAX_PASS)
    if doc.get("bounce_id") is not None:
        string(doc["bounce_id"], "bounce_id")
    for key in ("applied", "held"):
        if key in doc:
            boolean(doc[key], key)
    for key in ("apply", "plan_id", "analysis_id", "target", "notes", "finished_at"):
        if doc.get(key) is not None:
            string(doc[key], key)
    for rel, fp in obj(doc.get("stems", {}), "stems").items():
        need(isinstance(fp, list) and len(fp) == 2 and all(type(v) is int for v in fp),
             f"stems[{rel!r}] must be [size, mtime_ns]")
    for rel, info in obj(doc.get("tracks", {}), "tracks").items():
        obj(info, f"tracks[{rel!r}]")
        for key in ("stem", "track", "guid", "source"):
            if info.get(key) is not None:
                string(info[key], f"tracks[{rel!r}].{key}")
    return doc


class WatchLock:
    """One watcher per folder: an exclusive ``flock`` on ``.mixbridge/watch.lock``, holding the PID.

    The kernel drops the lock when its holder dies, however it dies, so a lock file left by a
    killed watcher is simply taken over; a live holder makes :meth:`acquire` raise
    :class:`~bridge.errors.WatchLocked` naming its PID.  (``flock`` rather than ``lockf``: two
    watchers in one process conflict too, and the descriptor is close-on-exec, so no child keeps it.)
    """

    def __init__(self, path: Path, notice: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.notice = notice
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        from ..errors import WatchLocked

        if (self.path.exists() or self.path.is_symlink()) and (self.path.is_symlink() or not self.path.is_file()):
            report_bad(self.path, "not a regular file", self.notice)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise StateFolderError(f"{display(self.path)}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise WatchLocked(f"{display(self.path.parent.parent)} is watched by process {holder} "
                              f"(lock {display(self.path)}); stop that watcher first") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: the lock holds all the same, only the PID is not shown
            if not is_disk_full(exc):
                os.close(fd)
                raise StateFolderError(f"{display(self.path)}: {exc.strerror or exc}") from exc
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the PID in the file is stale from now on
            self._fd = None


@dataclass
class Recovery:
    """What a restart must do, read from ``last-pass.json`` and the journal."""

    last_pass: dict[str, Any] | None = None
    next_pass: int = 1
    rerun: dict[str, Any] | None = None  # the pass_started record of an unfinished pass, run again once
    abandoned: list[int] = field(default_factory=list)
    queued_apply: int | None = None  # a completed pass whose plan never reached the target
    #: The stems of the latest pass abandoned after two unfinished starts (no later pass finished):
    #: the watcher does not start a pass on exactly these stems again at a restart.
    abandoned_stems: dict[str, Any] | None = None


def recover(state: StateFolder) -> Recovery:
    """Work out what the previous run left unfinished (see the module docstring)."""
    last = state.read_last_pass()
    records = read_journal(state.journal_path, state.notice)
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
    gone = sorted(set(rec.abandoned) | abandoned)
    if gone and gone[-1] > max(done, default=0):
        stems = started.get(gone[-1], {}).get("stems")
        rec.abandoned_stems = stems if isinstance(stems, dict) else None
    if last is not None and not last.get("applied", True) and not last.get("held", False):
        n = last["pass"]
        if n in queued and n not in applied:
            rec.queued_apply = n
    return rec
