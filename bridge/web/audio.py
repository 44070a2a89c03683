"""The review page's "Hear it": offline renders of a plan state, level-matched, cached, off the request thread.

A *plan state* is a set of accepted suggestions.  Its document (the plan holding exactly those
suggestions' changes, :meth:`bridge.suggest.review.Review.plan_for_target`) goes through the plan
renderer (:func:`bridge.render.render_plan`), which writes the processed stems, the stems summed as
bounced (``mix_before.wav``) and the stems as the plan plays them, scaled to the same integrated
loudness (``mix_after.wav``).  For each stem the plan processes, this module adds a level-matched
pair to hear the track alone: ``source-N.wav`` (the stem as bounced) and ``stem-N.wav`` (processed,
scaled to the source's integrated loudness), both folded to stereo as a REAPER track plays them
(:func:`bridge.pipeline.to_stereo`), so "alone" compares the sound of the moves, not their level.

Cache
-----
A render is keyed by :func:`render_key`: sha256 over what the renderer reads of the document (each
track's name, stem, status, changes and automation) and the stems' fingerprints (relative path,
size, modification time), so a new bounce or a different set of accepted suggestions is a new
render, and the same state is rendered once.  Renders live in ``<stems>/.mixbridge/renders/<key>/``
(an ``entry.json`` marks a finished one, so they survive a restart), at most ``max_entries`` of them
and ``max_bytes`` in all; the least recently used are removed first.

One worker thread renders, one state at a time, in the order asked; at most :data:`MAX_QUEUED`
states wait (asking for more drops the oldest waiting one: a producer stepping through suggestions
only needs the newest).  Nothing here runs on a request thread except dictionary look-ups.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import BridgeError

log = logging.getLogger("mixbridge.review")

#: States waiting to be rendered at most (the oldest waiting one is dropped beyond it).
MAX_QUEUED = 4
DEFAULT_MAX_ENTRIES = 8
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
#: What each file of a render is called in a URL (``audio/<key>/<name>``); nothing else is served.
MIX_BEFORE, MIX_AFTER = "mix_before.wav", "mix_after.wav"
ENTRY_FILE = "entry.json"
BLOCK_FRAMES = 48000
STATUSES = ("queued", "rendering", "ready", "failed")


def render_relevant(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the renderer reads of a plan document (docs/render.md): per track its name, stem,
    status, changes and automation.  Ids, findings and texts do not change the sound."""
    return [{"name": t.get("name"), "stem": t.get("stem"), "status": t.get("status"),
             "changes": t.get("changes", []), "automation": t.get("automation", [])}
            for t in doc.get("tracks", [])]


def stem_fingerprints(stems: Path) -> list[list[Any]]:
    """``[relative path, size, mtime_ns]`` of every stem file under ``stems`` (as the renderer finds them)."""
    from ..stems import find_stems  # noqa: PLC0415

    out = []
    for path in find_stems([stems]):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append([path.relative_to(stems).as_posix(), st.st_size, st.st_mtime_ns])
    return sorted(out)


def render_key(doc: Mapping[str, Any], fingerprints: list[list[Any]]) -> str:
    """The cache key of a plan state: 24 hex digits of sha256 (see the module docstring)."""
    text = json.dumps({"tracks": render_relevant(doc), "stems": fingerprints}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def stereo_lufs_copy(source: Path, dest: Path | None = None, gain_db: float = 0.0) -> float | None:
    """Stream ``source`` folded to stereo, times ``gain_db``, into ``dest`` (32-bit float WAV) when
    given; returns the integrated loudness (BS.1770-4) of what was streamed (``None``: silent)."""
    from ..analyze.loudness import KWeightedEnergy, channel_weights, gating_blocks, integrated_lufs  # noqa: PLC0415
    from ..pipeline import to_stereo  # noqa: PLC0415
    from ..stems import StemWriter, open_stem, read_blocks  # noqa: PLC0415

    info = open_stem(source)
    energy = KWeightedEnergy(info.sample_rate, 2)
    gain = 10.0 ** (gain_db / 20.0)
    writer = StemWriter(dest, info.sample_rate, 2, "FLOAT").__enter__() if dest is not None else None
    try:
        for block in read_blocks(info, BLOCK_FRAMES):
            stereo = (to_stereo(block).astype(np.float64) * gain).astype(np.float32)
            if writer is not None:
                writer.write(stereo)
            energy.feed(np.ascontiguousarray(stereo.T))
    except BaseException as exc:
        if writer is not None:
            writer.__exit__(type(exc), exc, None)
        raise
    if writer is not None:
        writer.__exit__(None, None, None)
    return integrated_lufs(gating_blocks(energy.result()), channel_weights(2))


@dataclass
class RenderEntry:
    """One plan state's render (see the module docstring)."""

    key: str
    ids: tuple[str, ...]
    folder: Path
    status: str = "queued"
    error: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    stems: list[dict[str, Any]] = field(default_factory=list)
    before_lufs: float | None = None
    after_lufs: float | None = None
    match_gain_db: float = 0.0
    seconds: float = 0.0
    bytes: int = 0
    used_s: float = field(default_factory=time.monotonic)
    doc: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON the page reads: status, the files it may ask for, the stems with their pairs."""
        return {"key": self.key, "ids": list(self.ids), "status": self.status, "error": self.error,
                "files": sorted(self.files), "stems": self.stems, "before_lufs": _r(self.before_lufs),
                "after_lufs": _r(self.after_lufs), "match_gain_db": _r(self.match_gain_db),
                "seconds": round(self.seconds, 2)}

    def record(self) -> dict[str, Any]:
        """What ``entry.json`` keeps (paths relative to the render's folder)."""
        out = self.as_dict()
        out["paths"] = {name: p.relative_to(self.folder).as_posix() for name, p in self.files.items()}
        out["bytes"] = self.bytes
        return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


class RenderCache:
    """Renders of plan states for one stems folder; see the module docstring.

    Parameters
    ----------
    root : Path
        Where renders go (``<stems>/.mixbridge/renders``); created.
    stems : Path
        The stems folder the plans came from.
    max_entries, max_bytes : int
        Bounds of the cache (finished renders; the least recently used go first).
    on_change : callable, optional
        Called with the entry whenever a render changes status (on the worker thread).
    """

    def __init__(self, root: Path, stems: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_bytes: int = DEFAULT_MAX_BYTES, on_change: Callable[[RenderEntry], None] | None = None):
        self.root = Path(root)
        self.stems = Path(stems).resolve()
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = int(max_bytes)
        self.on_change = on_change
        self.counters = collections.Counter({"renders": 0, "hits": 0, "misses": 0, "joined": 0, "dropped": 0,
                                             "evicted": 0, "failed": 0})
        self._entries: dict[str, RenderEntry] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._busy: str | None = None
        self._thread: threading.Thread | None = None
        self.root.mkdir(parents=True, exist_ok=True)
        self._load_finished()

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> "RenderCache":
        self._thread = threading.Thread(target=self._run, name="mixbridge-review-render", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop after the render under way (a render is not interruptible); returns whether it ended."""
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._busy is None and not self._queue

    # --- asking ------------------------------------------------------------------------------------

    def request(self, doc: Mapping[str, Any], ids: tuple[str, ...]) -> RenderEntry:
        """The render of ``doc`` (the plan state with the suggestions ``ids``): cached, or queued."""
        key = render_key(doc, stem_fingerprints(self.stems))
        dropped = None
        with self._cond:
            entry = self._entries.get(key)
            if entry is not None and entry.status != "failed":
                entry.used_s = time.monotonic()
                self.counters["hits" if entry.status == "ready" else "joined"] += 1
                return entry
            self.counters["misses"] += 1
            entry = RenderEntry(key, tuple(ids), self.root / key, doc=doc)
            self._entries[key] = entry
            self._queue.append(key)
            if len(self._queue) > MAX_QUEUED:
                dropped = self._entries.pop(self._queue.popleft())
                self.counters["dropped"] += 1
            self._cond.notify_all()
        if dropped is not None:
            dropped.status, dropped.error = "failed", "dropped: newer states were asked for"
            self._changed(dropped)
        return entry

    def get(self, key: str) -> RenderEntry | None:
        with self._cond:
            entry = self._entries.get(key)
            if entry is not None:
                entry.used_s = time.monotonic()
            return entry

    def file(self, key: str, name: str) -> Path | None:
        """The path of a finished render's file by its served name (a dictionary look-up, nothing joined)."""
        entry = self.get(key)
        if entry is None or entry.status != "ready":
            return None
        return entry.files.get(name)

    def entries(self) -> list[RenderEntry]:
        with self._cond:
            return list(self._entries.values())

    # --- the worker ------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key = self._queue.popleft()
                entry = self._entries.get(key)
                if entry is None:
                    continue
                self._busy = key
                entry.status = "rendering"
            self._changed(entry)
            try:
                self._render(entry)
            except BridgeError as exc:
                entry.status, entry.error = "failed", exc.line()
                self.counters["failed"] += 1
            except Exception as exc:  # noqa: BLE001 - a render bug must not end the worker; it is logged in full
                log.exception("review render %s failed", key)
                entry.status, entry.error = "failed", f"E_BRIDGE: {type(exc).__name__}: {exc}"
                self.counters["failed"] += 1
            else:
                entry.status = "ready"
                self.counters["renders"] += 1
            finally:
                with self._cond:
                    self._busy = None
                    entry.doc = None
                    self._evict()
                    self._cond.notify_all()
            self._changed(entry)

    def _changed(self, entry: RenderEntry) -> None:
        if self.on_change is not None:
            try:
                self.on_change(entry)
            except Exception:  # noqa: BLE001 - a listener must not stop the renders
                log.exception("review render listener failed")

    def _render(self, entry: RenderEntry) -> None:
        from ..render import render_plan  # noqa: PLC0415

        started = time.perf_counter()
        folder = entry.folder
        shutil.rmtree(folder, ignore_errors=True)
        out = render_plan(entry.doc, self.stems, folder / "render", mixes=True, write_report=True, copy_untouched=False)
        files: dict[str, Path] = {}
        if out.mix_before is not None and out.mix_after is not None:
            files[MIX_BEFORE], files[MIX_AFTER] = out.mix_before, out.mix_after
        stems = []
        for n, s in enumerate(out.stems):
            item = {"index": n, "name": s.name, "track": s.track, "status": s.status, "moves": list(s.moves),
                    "error": s.reason if s.status == "failed" else ""}
            if s.status == "processed" and s.path is not None:
                before = folder / f"source-{n}.wav"
                after = folder / f"stem-{n}.wav"
                source_lufs = stereo_lufs_copy(s.source, before)
                processed_lufs = stereo_lufs_copy(s.path)
                gain = (source_lufs - processed_lufs) if source_lufs is not None and processed_lufs is not None else 0.0
                after_lufs = stereo_lufs_copy(s.path, after, gain)
                s.path.unlink(missing_ok=True)  # heard only level-matched: the unmatched copy is not kept
                files[before.name], files[after.name] = before, after
                item.update(source=before.name, processed=after.name, source_lufs=_r(source_lufs),
                            processed_lufs=_r(after_lufs), unmatched_lufs=_r(processed_lufs), match_gain_db=_r(gain))
            stems.append(item)
        entry.files, entry.stems = files, stems
        entry.before_lufs, entry.after_lufs, entry.match_gain_db = out.before_lufs, out.after_lufs, out.match_gain_db
        entry.seconds = time.perf_counter() - started
        entry.bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        from ..files import write_atomic  # noqa: PLC0415

        write_atomic(folder / ENTRY_FILE, json.dumps(entry.record(), indent=1) + "\n")

    # --- bounds ------------------------------------------------------------------------------------------

    def _evict(self) -> None:
        """Drop the least recently used finished renders beyond the bounds (the lock held)."""
        done = sorted((e for e in self._entries.values() if e.status in ("ready", "failed") and e.key != self._busy),
                      key=lambda e: e.used_s)
        total = sum(e.bytes for e in done)
        while done and (len(done) > self.max_entries or total > self.max_bytes):
            victim = done.pop(0)
            total -= victim.bytes
            self._entries.pop(victim.key, None)
            shutil.rmtree(victim.folder, ignore_errors=True)  # a file being served stays readable (POSIX)
            self.counters["evicted"] += 1

    def _load_finished(self) -> None:
        """Renders finished in an earlier run (their key still names their content), within the bounds."""
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                data = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
                files = {name: folder / rel for name, rel in data["paths"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                shutil.rmtree(folder, ignore_errors=True)  # unfinished or foreign: not ours to keep
                continue
            if data.get("key") != folder.name or not all(p.is_file() for p in files.values()):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            entry = RenderEntry(folder.name, tuple(data.get("ids", ())), folder, "ready", files=files,
                                stems=list(data.get("stems", [])), before_lufs=data.get("before_lufs"),
                                after_lufs=data.get("after_lufs"), match_gain_db=data.get("match_gain_db") or 0.0,
                                seconds=float(data.get("seconds", 0.0)), bytes=int(data.get("bytes", 0)),
                                used_s=os.stat(folder / ENTRY_FILE).st_mtime - time.time() + time.monotonic())
            self._entries[entry.key] = entry
        with self._cond:
            self._evict()
