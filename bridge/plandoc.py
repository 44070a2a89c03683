"""The plan JSON document as the session and the targets read it (``docs/plan-json.md``).

The planner writes it (``bridge.suggest.plan.plan_dict``); everything else reads it through here or
through :func:`bridge.daw.reconcile.wanted_changes`, tolerant of fields it does not know, so plans of
schema 1 and 2 both load.  The session adds two kinds of fields before a plan is written or applied:
each track's REAPER ``name``/``guid`` (with the stem's own name under ``stem`` when they differ),
and ``stems_folder``, the folder whose state folder holds the target's tags.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .errors import PlanFileError

#: Plan schema versions this code reads.
SCHEMAS = (1, 2)


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read a plan file.

    Raises
    ------
    PlanFileError
        ``E_PLAN``, one line: unreadable, not JSON (an HTML notes file, say), or not a MixBridge plan.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PlanFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        looks = text.lstrip()[:200].lower()
        what = ("it is HTML (feedback notes?)" if looks.startswith(("<!doctype", "<html"))
                else "it is Markdown (feedback notes?)" if looks.startswith("#") else f"not JSON ({exc})")
        raise PlanFileError(f"{path}: {what}; pass the plan.json that 'mixbridge plan --json' wrote") from exc
    return check_plan(doc, str(path))


def check_plan(doc: Any, where: str = "plan") -> dict[str, Any]:
    """``doc`` if it is a plan document of a schema in :data:`SCHEMAS`, else :class:`PlanFileError`."""
    if not isinstance(doc, dict) or doc.get("schema_version") not in SCHEMAS:
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        raise PlanFileError(f"{where}: schema_version {version!r}; this MixBridge reads "
                            + " and ".join(map(str, SCHEMAS)))
    tracks = doc.get("tracks")
    if not isinstance(tracks, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tracks):
        raise PlanFileError(f"{where}: 'tracks' must be a list of tracks with a name")
    return doc


def stem_name(track: Mapping[str, Any]) -> str:
    """The stem a plan track came from (its REAPER name when the session did not rename it)."""
    return str(track.get("stem") or track.get("name", ""))


def stems_folder(doc: Mapping[str, Any]) -> Path | None:
    folder = doc.get("stems_folder")
    return Path(folder) if isinstance(folder, str) and folder else None


def estimated_delta_lu(doc: Mapping[str, Any] | None) -> float:
    """The plan's loudness change estimate (the A/B level match), 0 when absent or not finite."""
    try:
        value = float(((doc or {}).get("mix") or {}).get("estimated_ai_delta_lu") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return value if value == value and abs(value) != float("inf") else 0.0


def moves_of(doc: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """``{(stem, key): value}`` of every change and automation lane: what applying the plan means."""
    from .daw.reconcile import AUTOMATION_KEY, wanted_changes, wanted_points  # noqa: PLC0415 - pure helpers

    out: dict[tuple[str, str], Any] = {}
    for track in doc.get("tracks", []):
        stem = stem_name(track)
        for key, want in wanted_changes(track).items():
            out[(stem, key)] = want.value
        points = wanted_points(track)
        if points:
            out[(stem, AUTOMATION_KEY)] = points
    return out
