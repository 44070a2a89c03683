"""When is a stem complete?  Size stable across polls, header consistent with length, readable.

REAPER renders a WAV by writing a header with placeholder sizes, then the audio in pieces, then
going back to fill in the sizes.  A file is a candidate only when

1. its size and modification time are unchanged for ``stable_polls`` polls ``poll_s`` apart (not
   needed when the bounce manifest lists it: the manifest is written after the render, so it is
   the completion signal), and
2. no process has it open for writing (Linux: a read lease is refused exactly then,
   :func:`bridge.files.open_for_writing`), and
3. :func:`bridge.stems.open_stem` accepts it: the header's declared payload fits the file
   (``check_container`` catches placeholder sizes) and libsndfile can read the header.  Where the
   lease cannot tell (another OS, a network filesystem, someone else's file), the check is strict:
   a header that is readable but still looks provisional (a size written once and never updated,
   bytes after the declared audio that are not chunks, CAF's unknown length: what Python's
   ``wave`` module with ``writeframesraw`` or a W64/RF64/CAF writer leave until they close) counts
   as still being written (``E_STEM_WRITING``).

A file whose header still disagrees with its length after ``incomplete_timeout_s`` without any
growth is given up on: it joins the bounce as a bad file, so its error reaches the notes instead of
stalling the watcher forever.  A file that is definitely bad (not audio, unsupported encoding) is
"complete" at once: waiting would not make it better.

Pure apart from the two injectable functions (``stat`` and ``check``), so the logic is testable
with a fake clock.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BridgeError

#: Error codes that may only mean "still being written"; any other error is final.
TRANSIENT_CODES = frozenset({"E_STEM_TRUNCATED", "E_STEM_EMPTY", "E_STEM_UNREADABLE", "E_STEM_WRITING"})
#: ...and the one that stays transient for a file a manifest lists (the writer still has it open).
STILL_WRITING = "E_STEM_WRITING"

PENDING, COMPLETE, BAD = "pending", "complete", "bad"


def _default_check(path: Path) -> None:
    from ..errors import StemStillWriting
    from ..files import display, open_for_writing
    from ..stems import open_stem  # the stem reader stays the only module that opens audio

    writing = open_for_writing(path)
    if writing:
        raise StemStillWriting(f"{display(path)}: another process has it open for writing")
    open_stem(path, strict=writing is None)


def _default_stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class FileState:
    """What the tracker knows about one path (mutable: owned by the worker thread only)."""

    path: Path
    size: int = -1
    mtime_ns: int = -1
    stable: int = 0
    last_change_s: float = 0.0
    last_poll_s: float = float("-inf")
    status: str = PENDING
    error: BridgeError | None = None
    final: bool = False  # a manifest lists it: the renderer is done, so no error is transient


class CompletenessTracker:
    """Follow files that had events until each is complete, bad, or gone.

    Parameters
    ----------
    poll_s : float
        Seconds between two looks at a pending file.
    stable_polls : int
        Consecutive unchanged looks before the header is checked.
    incomplete_timeout_s : float
        Seconds without growth after which a file whose header still disagrees is given up on.
    stat, check : callable, optional
        ``stat(path) -> (size, mtime_ns) | None``; ``check(path)`` raises :class:`BridgeError`.
    """

    def __init__(self, poll_s: float = 0.25, stable_polls: int = 2, incomplete_timeout_s: float = 30.0,
                 stat: Callable[[Path], tuple[int, int] | None] = _default_stat,
                 check: Callable[[Path], None] = _default_check):
        self.poll_s = poll_s
        self.stable_polls = max(1, stable_polls)
        self.incomplete_timeout_s = incomplete_timeout_s
        self._stat = stat
        self._check = check
        self.files: dict[Path, FileState] = {}

    def touch(self, path: Path, now_s: float, final: bool = False) -> None:
        """An event on ``path`` (or a manifest naming it, ``final``): (re)start following it."""
        state = self.files.get(path)
        if state is None:
            self.files[path] = FileState(path, last_change_s=now_s, final=final)
        else:
            state.status, state.stable, state.error, state.last_change_s = PENDING, 0, None, now_s
            state.last_poll_s = float("-inf")
            state.final = final

    def poll(self, now_s: float) -> None:
        """Look at every pending file whose poll interval has passed."""
        for path in list(self.files):
            state = self.files[path]
            if state.status != PENDING or now_s - state.last_poll_s < self.poll_s * 0.999:
                continue
            state.last_poll_s = now_s
            seen = self._stat(path)
            if seen is None:
                if state.final:
                    continue  # a manifest lists it: wait for it to appear (the manifest wait is bounded)
                del self.files[path]  # deleted or renamed away: nothing to wait for
                continue
            if state.final:
                # A manifest lists it: the bounce script writes the manifest only after the render
                # returned, so it is the completion signal; the header and readability are still
                # checked below, and any error but "a writer still has it open" is final.  No
                # stability polls to wait out.
                if seen != (state.size, state.mtime_ns):
                    state.size, state.mtime_ns = seen
                    state.last_change_s = now_s
            else:
                if seen != (state.size, state.mtime_ns):
                    state.size, state.mtime_ns = seen
                    state.stable, state.last_change_s = 0, now_s
                    continue
                state.stable += 1
                if state.stable < self.stable_polls:
                    continue
            try:
                self._check(path)
            except BridgeError as exc:
                transient = exc.code in TRANSIENT_CODES and (not state.final or exc.code == STILL_WRITING)
                if transient and now_s - state.last_change_s < self.incomplete_timeout_s:
                    state.error = exc
                    continue
                state.status, state.error = BAD, exc
                continue
            state.status, state.error = COMPLETE, None

    def pending(self) -> list[Path]:
        return [p for p, s in self.files.items() if s.status == PENDING]

    def busy(self, paths: set[Path] | None = None) -> bool:
        """Whether any followed file (or any of ``paths``) is still pending."""
        return any(s.status == PENDING and (paths is None or p in paths) for p, s in self.files.items())

    def status(self, path: Path) -> str | None:
        state = self.files.get(path)
        return None if state is None else state.status

    def fingerprint(self, path: Path) -> tuple[int, int] | None:
        state = self.files.get(path)
        if state is None or state.status == PENDING:
            return None
        return state.size, state.mtime_ns

    def forget(self, paths) -> None:
        """Stop following files that went into a pass (keeps the table small during long sessions)."""
        for path in paths:
            state = self.files.get(path)
            if state is not None and state.status != PENDING:
                del self.files[path]
