"""Read section markers: REAPER's Region/Marker Manager CSV export, or a simple JSON list.

CSV: REAPER exports ``#,Name,Start,End,Length`` with ``R<n>`` rows for regions and ``M<n>`` rows
for markers.  Times must be in seconds or ``[h:]m:ss.fff`` (set the ruler to time before exporting);
measures.beats cannot be converted without the tempo map and is refused with a clear message.

JSON: ``[{"name": "Chorus", "start_s": 30.0, "end_s": 45.0}, ...]`` (``end_s`` optional, or
``"time_s"`` for a plain marker), or ``{"sections": [...]}`` / ``{"markers": [...]}``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .errors import MarkersError

Mark = tuple[str, float, float | None]
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time_s(text: str) -> float:
    """Seconds from ``12.5``, ``1:02.5`` or ``1:01:02.5``."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _CLOCK.match(text)
    if not match:
        raise ValueError(f"time {text!r} is not seconds or [h:]m:ss (measures.beats needs the ruler set to time)")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def _from_csv(text: str) -> list[Mark]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "start" not in header:
        raise ValueError("CSV needs a header with at least Name and Start columns")
    col = {name: header.index(name) for name in ("#", "name", "start", "end") if name in header}
    marks: list[Mark] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            ident = row[col["#"]].strip().upper() if "#" in col else ""
            name = row[col["name"]].strip() if "name" in col else ""
            start = parse_time_s(row[col["start"]])
            end_text = row[col["end"]].strip() if "end" in col and col["end"] < len(row) else ""
            is_region = ident.startswith("R") or (bool(end_text) and not ident.startswith("M"))
            end = parse_time_s(end_text) if is_region and end_text else None
        except (ValueError, IndexError) as exc:
            raise ValueError(f"line {number}: {exc}") from exc
        marks.append((name or ident or f"Marker {number - 1}", start, end))
    return marks


def _from_json(data) -> list[Mark]:
    if isinstance(data, dict):
        data = data.get("sections", data.get("markers", data.get("regions")))
    if not isinstance(data, list):
        raise ValueError("JSON must be a list of markers or {\"sections\": [...]}")
    marks: list[Mark] = []
    for k, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"item {k} is not an object")
        start = item.get("start_s", item.get("time_s", item.get("start")))
        if not isinstance(start, (int, float)):
            raise ValueError(f"item {k} has no numeric start_s")
        end = item.get("end_s", item.get("end"))
        if end is not None and not isinstance(end, (int, float)):
            raise ValueError(f"item {k} has a non-numeric end_s")
        marks.append((str(item.get("name", f"Marker {k + 1}")), float(start), float(end) if end is not None else None))
    return marks


def read_markers(path: str | Path) -> list[Mark]:
    """Read a markers file into ``(name, start_s, end_s or None)`` tuples.

    Raises
    ------
    MarkersError
        ``E_MARKERS`` with the reason and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MarkersError(f"{path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
            return _from_json(json.loads(text))
        return _from_csv(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise MarkersError(f"{path}: {exc}") from exc
