"""One bounce: which stem files make it (the track each belongs to is :mod:`bridge.tracks`'s answer)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Bounce:
    """The stems of one pass.

    Attributes
    ----------
    id : str
        The manifest's bounce id, else made from the stems' fingerprints.
    reason : str
        ``manifest``, ``settle``, ``startup``, ``rerun``, ``timeout``.
    paths : tuple of Path
        Every stem of the session (not only the re-bounced ones: masking and balance need all).
    missing : tuple of Path
        Files the manifest lists that never arrived.
    manifest : Path or None
    fingerprints : dict
        ``relative path -> [size, mtime_ns]`` when the pass was decided.
    """

    id: str
    reason: str
    paths: tuple[Path, ...]
    missing: tuple[Path, ...] = ()
    manifest: Path | None = None
    fingerprints: dict[str, list[int]] = field(default_factory=dict)
