"""Which paths in the watched folder the watcher cares about (pure: no filesystem access).

REAPER writes a lot beside a render: the project and its backups (``.rpp``, ``.rpp-bak``), peak
files (``.reapeaks``), render statistics (``render_stats*.html``), temporary files while rendering,
and we write our own ``.mixbridge/`` state folder.  None of that is a bounce.  What is: audio files
with one of :data:`bridge.stems.AUDIO_EXTENSIONS`, and the bounce manifest that the
"Bounce selected tracks as stems" script writes last, as the completion signal.
"""
from __future__ import annotations

from pathlib import Path

from ..stems import AUDIO_EXTENSIONS

#: The bounce manifest's file name (``docs/manifest.md``); kept in step with ``bridge.manifest``.
MANIFEST_NAME = "mixbridge-bounce.json"


#: Endings REAPER (and editors) write beside renders; listed so the intent is explicit even though
#: the audio-ending rule alone would drop them.
IGNORED_SUFFIXES = frozenset({".rpp", ".rpp-bak", ".reapeaks", ".tmp", ".part", ".bak", ".lock"})
IGNORED_PREFIXES = ("render_stats",)


def classify(path: str | Path, root: str | Path, recursive: bool = True) -> str | None:
    """What ``path`` is to the watcher: ``"stem"``, ``"manifest"`` or ``None`` (ignore it).

    Parameters
    ----------
    path : path
        An event's path (absolute, or relative to ``root``).
    root : path
        The watched folder.
    recursive : bool
        When false, anything below a sub-folder of ``root`` is ignored.
    """
    path, root = Path(path), Path(root)
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    parts = rel.parts
    if not parts:
        return None
    # Hidden files and anything under a hidden folder (our .mixbridge/, editors' .swp, macOS ._*).
    if any(p.startswith(".") for p in parts):
        return None
    if len(parts) > 1 and not recursive:
        return None
    name = parts[-1]
    lower = name.lower()
    if name == MANIFEST_NAME:
        return "manifest"
    if lower.startswith(IGNORED_PREFIXES) or lower.endswith("~"):
        return None
    suffix = Path(lower).suffix
    if suffix in IGNORED_SUFFIXES:
        return None
    if suffix in AUDIO_EXTENSIONS:
        return "stem"
    return None
