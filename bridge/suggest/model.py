"""The mix plan's value types: findings, changes, suggestions, per-track and whole plans.

A :class:`Suggestion` is what a rule returns: a reason code, a finding (what was seen, with the
numbers behind it), a confidence, and the moves it proposes.  The plan builder turns suggestions
into per-track :class:`TrackPlan` entries with concrete parameter :class:`Change` records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "problem")


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule saw.  ``evidence`` holds the numbers behind it, with units in the keys."""

    code: str
    severity: str
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EqBand:
    """One EQ band a rule wants on the track's AI EQ (before band numbers are assigned).

    ``kind`` is ``highpass``, ``lowshelf``, ``peak``, ``highshelf`` or ``lowpass``.
    """

    kind: str
    freq_hz: float
    gain_db: float
    q: float


@dataclass(frozen=True, slots=True)
class CompSettings:
    """A compressor starting point for the track's AI compressor."""

    threshold_db: float
    ratio: float
    attack_ms: float
    release_ms: float
    makeup_db: float


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One rule's output for one track.

    Attributes
    ----------
    track : str
    code : str
        Reason code, also the finding's code (``too_loud``, ``masking``, ...).
    finding : Finding
    confidence : float
        0..1, how sure the rule is that the move helps.
    volume_db : float or None
        A fader move (relative dB).
    pan, width : float or None
        Absolute REAPER pan (-1..1) and width (-1..1, 1 = unchanged) to set.
    polarity : dict or None
        ``{"channel": "both"|"left"|"right"}`` to invert.
    eq : tuple of EqBand
    comp : CompSettings or None
    automation : tuple of (time_s, value_db) points for the volume envelope
    """

    track: str
    code: str
    finding: Finding
    confidence: float
    volume_db: float | None = None
    pan: float | None = None
    width: float | None = None
    polarity: dict[str, str] | None = None
    eq: tuple[EqBand, ...] = ()
    comp: CompSettings | None = None
    automation: tuple[tuple[float, float], ...] = ()

    @property
    def has_moves(self) -> bool:
        return any(v is not None for v in (self.volume_db, self.pan, self.width, self.polarity, self.comp)) \
            or bool(self.eq) or bool(self.automation)


@dataclass(frozen=True, slots=True)
class Change:
    """One parameter write of the plan (the JSON contract's ``changes`` item)."""

    target: str  # "track" | "eq" | "comp"
    param: str
    value: float | str
    unit: str
    reason: str
    suggestion: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Automation:
    """Envelope points for one parameter: ``(time_s, value)`` pairs in time order."""

    param: str
    points: tuple[tuple[float, float], ...]
    reason: str
    suggestion: str


@dataclass(frozen=True, slots=True)
class TrackPlan:
    """Everything the plan says about one stem/track."""

    name: str
    role: str
    role_source: str
    status: str  # "ai" (moves proposed), "manual" (left to the producer), "untouched" (nothing to do), "error"
    findings: tuple[Finding, ...]
    changes: tuple[Change, ...]
    automation: tuple[Automation, ...]
    suggestions: tuple[dict[str, Any], ...]
