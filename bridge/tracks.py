"""Which REAPER track each stem belongs to (every command's plans carry the answer).

Tracks are found, in order of trust:

1. the bounce manifest (track GUID ↔ file), also remembered from earlier bounces, since a re-bounce
   of one track lists only that track;
2. a configurable pattern on the file name (``--name-pattern '(?P<track>.+?)_\\d+'``);
3. the file name itself: REAPER's ``$track`` render wildcard names the file after the track.

The GUID goes into the plan's track entry, so the reapy target finds the track even when the
producer renamed it after the bounce.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .manifest import read_manifest


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    file: Path  # absolute
    track_name: str
    track_guid: str = ""


@dataclass(frozen=True, slots=True)
class BounceManifest:
    """The watcher's view of a bounce manifest (``docs/manifest.md``)."""

    path: Path
    bounce_id: str
    created_at: str
    stems: tuple[ManifestEntry, ...]


def read_bounce_manifest(path: Path) -> BounceManifest:
    """Read a manifest with :func:`bridge.manifest.read_manifest`.

    Raises
    ------
    ManifestError
        ``E_MANIFEST`` when it is malformed.
    """
    m = read_manifest(path)
    return BounceManifest(Path(path), str(m.bounce_id), str(m.created_at),
                          tuple(ManifestEntry(Path(s.file), str(s.track_name), str(s.track_guid or ""))
                                for s in m.stems))


@dataclass(frozen=True, slots=True)
class TrackRef:
    """Which REAPER track a stem belongs to."""

    stem: str  # the stem's name in the analysis (file name without ending)
    track: str  # the REAPER track name
    guid: str = ""
    source: str = "name"  # "manifest" | "pattern" | "name"


def stem_label(path: Path) -> str:
    """A file's stem name: its name without the ending, as text that can always be printed (a name
    that is not UTF-8 shows its bytes as ``\\xNN``)."""
    from .files import display

    return display(path.stem)


def stem_names(paths: Iterable[Path]) -> dict[Path, str]:
    """The analysis' name for each file (as :func:`bridge.pipeline.analyze_session` names them:
    the file name without ending (:func:`stem_label`), with the ending kept when two files share a name)."""
    paths = list(paths)
    counts = Counter(stem_label(p) for p in paths)
    return {p: (stem_label(p) if counts[stem_label(p)] == 1 else f"{stem_label(p)}{display_suffix(p)}") for p in paths}


def display_suffix(path: Path) -> str:
    from .files import display

    return display(path.suffix)


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    """Compile ``--name-pattern``; it must match a whole file name (without ending).

    Raises
    ------
    ValueError
        Not a regular expression.
    """
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"--name-pattern: {exc}") from exc


def map_tracks(paths: Iterable[Path], manifest: dict[Path, ManifestEntry] | None = None,
               pattern: re.Pattern | None = None) -> dict[str, TrackRef]:
    """Stem name → :class:`TrackRef` for every file (see the module docstring for the order)."""
    manifest = manifest or {}
    out: dict[str, TrackRef] = {}
    for path, name in stem_names(paths).items():
        entry = manifest.get(path) or manifest.get(path.resolve())
        if entry is not None:
            out[name] = TrackRef(name, entry.track_name or name, entry.track_guid, "manifest")
            continue
        if pattern is not None:
            m = pattern.fullmatch(path.stem)
            if m is not None:
                groups = m.groupdict()
                track = groups.get("track") if "track" in groups else (m.group(1) if m.groups() else None)
                if track:
                    out[name] = TrackRef(name, track, "", "pattern")
                    continue
        out[name] = TrackRef(name, name, "", "name")
    return out


def apply_track_map(plan_doc: dict[str, Any], tracks: dict[str, TrackRef]) -> dict[str, Any]:
    """Put the REAPER track names and GUIDs into a plan document (in place; also returned).

    A renamed track keeps its stem name under ``stem``, so the notes (which speak in stem names)
    and the target's report (which speaks in track names) can be matched.
    """
    for tp in plan_doc.get("tracks", []):
        ref = tracks.get(tp.get("name", ""))
        if ref is None:
            continue
        if ref.track != ref.stem:
            tp["stem"] = ref.stem
            tp["name"] = ref.track
        if ref.guid:
            tp["guid"] = ref.guid
    return plan_doc
