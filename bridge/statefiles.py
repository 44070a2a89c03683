"""Loading the bridge's own state files, every one validated; a bad one is moved aside, never fatal.

The state folder (``<stems>/.mixbridge/``) holds files the bridge wrote and reads back on its next
start: ``last-pass.json``, the journal, the analysis cache's index, entries and mix state, the
plan and OSC targets' tag files.  Each can be damaged (a crash, a full disk, a hand edit, a sync
tool, a hostile user).  The rule for all of them:

- only a regular file is opened, never blocking, and at most :data:`MAX_STATE_BYTES` are read;
- the JSON is parsed with a nesting guard and checked for shape, types and ranges by the loader's
  own ``parse`` function (anything it raises — ``ValueError``, ``TypeError``, ``KeyError``,
  ``AttributeError``, ``RecursionError`` — means "bad");
- a bad file is renamed to ``<name>.bad-<UTC timestamp>`` (:func:`bridge.files.move_aside`),
  one line ``E_STATE_FILE: ...`` is shown, and the caller starts clean (as if the file were absent),
  so a damaged file can never make the watcher crash, or crash again on every restart.

The analysis cache checks its own files the same way but deletes instead of moving aside: its
files are rebuilt from the stems (``docs/cache.md``).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from .errors import StateFileError
from .files import NotRegular, display, move_aside, read_regular

T = TypeVar("T")

#: The largest state file read back (a tag file for a few hundred tracks is well under 1 MB).
MAX_STATE_BYTES = 64 * 1024 * 1024
#: What a loader's ``parse`` may raise to say "this file has the wrong shape".
SHAPE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError)


def _stderr_notice(line: str) -> None:
    try:
        print(f"mixbridge: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def report_bad(path: str | os.PathLike[str], why: str, notice: Callable[[str], None] | None = None) -> Path | None:
    """Move a bad state file aside and say so in one line; returns where it went."""
    moved = move_aside(path)
    where = f"moved to {display(moved.name)}" if moved is not None else "removed"
    error = StateFileError(f"{display(path)}: {why}; {where}")
    (notice or _stderr_notice)(error.line())
    return moved


def load_json(path: str | os.PathLike[str], parse: Callable[[Any], T], *,
              notice: Callable[[str], None] | None = None, limit: int = MAX_STATE_BYTES) -> T | None:
    """Read, parse and check one JSON state file.

    Parameters
    ----------
    path : path
    parse : callable
        ``parse(data) -> value``: checks shape, types and ranges and returns what the caller keeps;
        raises one of :data:`SHAPE_ERRORS` for a bad file.
    notice : callable, optional
        Where the one ``E_STATE_FILE`` line goes (default: stderr).

    Returns
    -------
    The parsed value, or ``None`` when the file is absent or was bad (and is now moved aside).
    """
    path = Path(path)
    try:
        raw = read_regular(path, limit)
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        report_bad(path, exc.strerror, notice)
        return None
    except ValueError as exc:  # larger than the limit
        report_bad(path, str(exc), notice)
        return None
    except OSError as exc:
        if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
            report_bad(path, exc.strerror or str(exc), notice)
        return None  # unreadable (permissions): left alone, and the caller starts without it
    try:
        data = json.loads(raw.decode("utf-8"))
        return parse(data)
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except json.JSONDecodeError as exc:
        why = f"not valid JSON ({exc.msg} at line {exc.lineno})"
    except SHAPE_ERRORS as exc:
        why = f"wrong shape ({type(exc).__name__}: {str(exc)[:120] or 'nested too deeply'})"
    report_bad(path, why, notice)
    return None


# --- small checkers the loaders compose -------------------------------------------------------------

def need(condition: bool, what: str) -> None:
    """Raise ``ValueError(what)`` unless ``condition``."""
    if not condition:
        raise ValueError(what)


def obj(value: Any, what: str) -> dict:
    need(isinstance(value, dict), f"{what} must be an object")
    return value


def string(value: Any, what: str, *, empty: bool = True) -> str:
    need(isinstance(value, str) and (empty or value != ""), f"{what} must be a string")
    return value


def integer(value: Any, what: str, low: int = 0, high: int = 10 ** 12) -> int:
    need(type(value) is int and low <= value <= high, f"{what} must be an integer in [{low}, {high}]")
    return value


def boolean(value: Any, what: str) -> bool:
    need(isinstance(value, bool), f"{what} must be true or false")
    return value


def number(value: Any, what: str) -> float:
    import math

    need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
         f"{what} must be a finite number")
    return float(value)
