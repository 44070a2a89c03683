"""What the producer sees in the terminal: little, and clear.  One place for every command's lines.

- While files are still being written: ``waiting for 3 files to finish writing`` (once per change).
- While a pass analyses: one progress line per stem with the pass's ETA.  On a terminal it is a
  single line rewritten in place; in a pipe or a log file, plain lines (``watch``) or nothing
  (``analyze``/``plan``, whose output is the table).
- One line per pass, made from the pass record (the same counts as the notes and the journal):
  ``pass 3: 24 stems (1 re-analysed, 23 cached), 1 failed (Broken: E_NOT_AUDIO), 9 findings,
  14 changes written to REAPER, 3 already in place, 1 manual override kept (2.1 s) → notes: …``.
- One line when something needs attention (REAPER unreachable, a bad manifest), and one when it is
  resolved; never a line per retry.

Written by hand rather than with a progress-bar library: one rewriting line needs ``\\r`` and an
erase-line escape, which is less code than adapting a library to "plain lines when not a TTY".
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from .notes.texts import plural

if TYPE_CHECKING:
    from .session import PassRecord

_ERASE = "\r\x1b[K"
#: How each apply state reads after the number of changes.
STATE_WORDS = {
    "applied": "written to REAPER", "proposed": "proposed (no DAW target)", "queued": "queued (REAPER unreachable)",
    "held": "held for review", "failed": "not applied", "none": "planned",
}


class Console:
    """Thread-safe terminal output for the watcher.

    Parameters
    ----------
    out : text stream
    tty : bool, optional
        Rewrite the progress line in place; defaults to ``out.isatty()``.
    quiet : bool
        Print nothing but pass lines and problems (no progress).
    progress_on_pipe : bool
        Print progress as plain lines when ``out`` is not a terminal (the watcher's log); off for
        ``analyze``/``plan``, whose output is the table.
    """

    def __init__(self, out: TextIO | None = None, tty: bool | None = None, quiet: bool = False,
                 progress_on_pipe: bool = True):
        self.out = out or sys.stdout
        if tty is None:
            try:
                tty = bool(self.out.isatty())
            except (AttributeError, ValueError):
                tty = False
        self.tty = tty
        self.quiet = quiet or (not tty and not progress_on_pipe)
        self._waiting = 0
        self._lock = threading.Lock()
        self._progress_open = False
        self._total = 0
        self._done = 0
        self._started_s = 0.0
        self._pass = 0
        self.lines: list[str] = []  # everything printed as a whole line, for tests and the surface

    # --- plumbing -----------------------------------------------------------------------------------

    def _write_line(self, text: str) -> None:
        with self._lock:
            if self._progress_open:
                self.out.write(_ERASE)
                self._progress_open = False
            self.out.write(text + "\n")
            self.lines.append(text)
            self._flush()

    def _flush(self) -> None:
        try:
            self.out.flush()
        except (OSError, ValueError):
            pass

    # --- what the watcher reports -----------------------------------------------------------------

    def watching(self, folder, target: str, review: bool) -> None:
        mode = ", review mode (moves wait for your OK)" if review else ""
        self._write_line(f"watching {folder} → target {target}{mode}; Ctrl-C to stop")

    def waiting(self, files: int) -> None:
        """``files`` files are still being written (or a manifest's files have not all arrived):
        one line whenever the number changes, none while it stays the same."""
        if files == self._waiting:
            return
        self._waiting = files
        if files:
            self._write_line(f"waiting for {plural(files, 'file')} to finish writing")

    def pass_started(self, number: int, stems: int) -> None:
        """A pass (``number``; 0 for a one-off ``analyze``/``plan``) of ``stems`` files begins."""
        with self._lock:
            self._pass, self._total, self._done = number, stems, 0
            self._started_s = time.monotonic()
        self._waiting = 0

    def stem_done(self, name: str, error_code: str | None = None) -> None:
        """One stem finished analysing (or came from the cache)."""
        if self.quiet:
            return
        with self._lock:
            self._done += 1
            elapsed = time.monotonic() - self._started_s
            left = self._total - self._done
            eta = f", ETA {elapsed / self._done * left:.0f} s" if self._done and left > 0 else ""
            status = f" ({error_code})" if error_code else ""
            head = f"pass {self._pass}: analysing" if self._pass else "analysing"
            text = f"{head} {self._done}/{self._total} {name}{status}{eta}"
            if self.tty:
                self.out.write(_ERASE + text[:200])
                self._progress_open = True
            else:
                self.out.write(text + "\n")
            self._flush()

    def pass_line(self, record: "PassRecord", notes: str = "") -> str:
        """The one line per pass, from the pass record; returns it."""
        line = pass_summary(record) + (f" → notes: {notes}" if notes else "")
        self._write_line(line)
        return line
    def notice(self, text: str) -> None:
        """Something the producer should know (once, not per retry)."""
        self._write_line(text)

    def error(self, text: str) -> None:
        self._write_line("error: " + text)

    def close(self) -> None:
        with self._lock:
            if self._progress_open:
                self.out.write(_ERASE)
                self._progress_open = False
                self._flush()


def pass_summary(record: "PassRecord") -> str:
    """``pass 3: 24 stems (1 re-analysed, 23 cached), 1 failed (Broken: E_NOT_AUDIO), ...`` (no notes path)."""
    c = record.counts
    parts = [plural(c.stems, "stem") + ("" if c.reanalysed is None else f" ({c.reanalysed} re-analysed, {c.cached} cached)")]
    if record.failed:
        shown = ", ".join(f"{f.name}: {f.code}" for f in record.failed[:5])
        more = f", {len(record.failed) - 5} more" if len(record.failed) > 5 else ""
        parts.append(f"{c.failed} failed ({shown}{more})")
    parts.append(plural(c.findings, "finding"))
    if record.state == "held":
        parts.append("nothing written yet")
    else:
        parts.append(f"{plural(c.changes, 'change')} {STATE_WORDS.get(record.state, record.state)}"
                     + (f": {record.error}" if record.state in ("failed", "queued") and record.error else ""))
    if c.restored:
        parts.append(f"{c.restored} restored to pre-AI")
    if c.unchanged:
        parts.append(f"{c.unchanged} already in place")
    if c.pending:
        parts.append(f"{c.pending} not applied")
    if c.held:
        parts.append(f"{plural(c.held, 'suggestion')} waiting for review")
    if c.overrides:
        parts.append(f"{plural(c.overrides, 'manual override')} kept")
    return f"pass {record.number}: " + ", ".join(parts) + f" ({record.seconds:.1f} s)"
