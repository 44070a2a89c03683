"""Records shared by the stages: what one analysis pass produced.

Kept apart from :mod:`bridge.pipeline` (which makes them) so the readers of a result (the JSON
report, the notes, the session core) never import the machinery that runs the analysis.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing the records pulls in no audio or analysis code
    from .analyze.features import StemFeatures
    from .analyze.session import MixAnalysis
    from .analyze.stem import StemAnalysis
    from .errors import BridgeError
    from .stems import StemInfo


@dataclass(frozen=True, slots=True)
class StemResult:
    """One stem's outcome: its analysis, or the error that stopped it (never both)."""

    name: str
    path: Path
    info: StemInfo | None
    analysis: StemAnalysis | None
    error: BridgeError | None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The whole analysis of one bounce."""

    stems: tuple[StemResult, ...]
    mix: MixAnalysis
    features: dict[str, StemFeatures]
    timings: dict[str, float]
    #: With a cache: the stems decoded and analysed this time, and those served from the cache.
    reanalysed: tuple[str, ...] = ()
    cached: tuple[str, ...] = ()

    @property
    def ok(self) -> list[StemResult]:
        return [s for s in self.stems if s.error is None]

    @property
    def failed(self) -> list[StemResult]:
        return [s for s in self.stems if s.error is not None]
