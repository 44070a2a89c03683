"""What the producer sees in the terminal while ``mixbridge watch`` runs: little, and clear.

- While a pass analyses: one progress line per stem with the pass's ETA.  On a terminal it is a
  single line rewritten in place; in a pipe or a log file, plain lines.
- One line per pass: ``pass 3: 24 stems (1 re-analysed, 23 cached), 9 findings, 14 moves applied,
  1 manual override kept → notes: …/notes.html``.
- One line when something needs attention (REAPER unreachable, a bad manifest), and one when it is
  resolved; never a line per retry.

Written by hand rather than with a progress-bar library: one rewriting line needs ``\\r`` and an
erase-line escape, which is less code than adapting a library to "plain lines when not a TTY".
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_ERASE = "\r\x1b[K"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


class Console:
    """Thread-safe terminal output for the watcher.

    Parameters
    ----------
    out : text stream
    tty : bool, optional
        Rewrite the progress line in place; defaults to ``out.isatty()``.
    quiet : bool
        Print nothing but pass lines and problems (no progress).
    """

    def __init__(self, out: TextIO | None = None, tty: bool | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        if tty is None:
            try:
                tty = bool(self.out.isatty())
            except (AttributeError, ValueError):
                tty = False
        self.tty = tty
        self.quiet = quiet
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

    def pass_started(self, number: int, stems: int) -> None:
        with self._lock:
            self._pass, self._total, self._done = number, stems, 0
            self._started_s = time.monotonic()

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
            text = f"pass {self._pass}: analysing {self._done}/{self._total} {name}{status}{eta}"
            if self.tty:
                self.out.write(_ERASE + text[:200])
                self._progress_open = True
            else:
                self.out.write(text + "\n")
            self._flush()

    def pass_line(self, number: int, *, stems: int, reanalysed: int | None, cached: int | None, failed: int,
                  findings: int, moves: int, moves_state: str, overrides: int, notes, seconds: float) -> str:
        """The one line per pass; returns it."""
        if reanalysed is None or cached is None:
            counts = f"{_plural(stems, 'stem')}"
        else:
            counts = f"{_plural(stems, 'stem')} ({reanalysed} re-analysed, {cached} cached)"
        parts = [counts]
        if failed:
            parts.append(f"{failed} failed")
        parts.append(_plural(findings, "finding"))
        parts.append(f"{_plural(moves, 'move')} {moves_state}")
        if overrides:
            parts.append(f"{_plural(overrides, 'manual override')} kept")
        line = f"pass {number}: " + ", ".join(parts) + f" ({seconds:.1f} s) → notes: {notes}"
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
