"""REAPER pointer strings as ReaScript Python passes them.

REAPER's generated ``reaper_python`` turns object pointers into strings such as
``(MediaTrack*)0x000000001A000040`` (16 upper-case hex digits); a null pointer
ends in ``0x0000000000000000``, which is what reapy tests for (reapy.md 3).
"""

from __future__ import annotations

import re

_POINTER_RE = re.compile(r"^\((\w+\*)\)0x([0-9A-Fa-f]{1,16})$")


def format_pointer(type_name: str, address: int) -> str:
    """``("MediaTrack*", 0x1A) -> "(MediaTrack*)0x000000000000001A"``."""
    return f"({type_name})0x{address:016X}"


def null_pointer(type_name: str) -> str:
    return format_pointer(type_name, 0)


def parse_pointer(text: object) -> tuple[str, int] | None:
    """Split a pointer string into (type name, address); None if it is not one."""
    if not isinstance(text, str):
        return None
    match = _POINTER_RE.match(text)
    if match is None:
        return None
    return match.group(1), int(match.group(2), 16)
