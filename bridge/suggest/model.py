"""The planner's value types: what it sees of a stem, the moves it can make, and the plan records.

Everything here is a frozen dataclass.  JSON exists only at the edge
(:func:`bridge.suggest.plan.plan_dict`).

* :class:`StemView` is one stem as the planner sees it: role, analysis, and the per-frame arrays
  the predicted-mix model works on.
* :class:`TrackDecision` is everything the plan does to one track (fader, up to five ReaEQ bands,
  compressor, section automation, polarity, width, pan); the optimiser works on these.
* :class:`Move` is one proposed move with the finding behind it and its predicted effects; a
  move becomes one suggestion per track it touches.
* :class:`Change`, :class:`Automation`, :class:`TrackPlan` are the per-track parameter records
  the DAW targets, the review and the notes read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analyze.stem import StemAnalysis

SEVERITIES = ("info", "warning", "problem")
#: ReaEQ band kinds the plan uses, in the order bands are numbered on a track.
BAND_KINDS = ("highpass", "lowshelf", "peak", "highshelf", "lowpass")
#: A default ReaEQ instance has five bands; the plan never asks for more on one track.
MAX_EQ_BANDS = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """What the planner saw.  ``evidence`` holds the numbers behind it, with units in the keys."""

    code: str
    severity: str
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EqBand:
    """One band of the track's AI EQ (ReaEQ semantics: RBJ biquads; Q for every kind).

    ``kind`` is one of :data:`BAND_KINDS`; ``gain_db`` is 0 for pass filters.
    """

    kind: str
    freq_hz: float
    gain_db: float
    q: float


#: The most make-up gain the plan gives a compressor: ReaComp's Wet tops out at +6 dB
#: (bridge/daw/mapping.py writes it there); REAPER's fader, after the FX, does the rest.
MAKEUP_MAX_DB = 6.0


@dataclass(frozen=True, slots=True)
class CompSettings:
    """The track's AI compressor (ReaComp parameters).  It hears the signal after the AI EQ and
    before the fader (REAPER's fader and volume envelope are post-FX)."""

    threshold_db: float
    ratio: float
    attack_ms: float
    release_ms: float
    makeup_db: float


@dataclass(frozen=True, slots=True)
class SectionGain:
    """Volume automation over one section: ``gain_db`` from ``start_s`` to ``end_s``."""

    name: str
    start_s: float
    end_s: float
    gain_db: float


@dataclass(frozen=True, slots=True)
class TrackDecision:
    """Everything the plan does to one track.  The zero decision changes nothing."""

    fader_db: float = 0.0
    eq: tuple[EqBand, ...] = ()
    comp: CompSettings | None = None
    sections: tuple[SectionGain, ...] = ()
    polarity: str | None = None  # "left" | "right" | "both"
    width: float | None = None   # REAPER width, 1 = unchanged
    pan: float | None = None     # REAPER pan, -1 (hard left) .. 1 (hard right); None = unchanged

    @property
    def empty(self) -> bool:
        return (self.fader_db == 0.0 and not self.eq and self.comp is None and not self.sections
                and self.polarity is None and self.width is None and self.pan is None)


@dataclass(frozen=True, slots=True)
class StemView:
    """One stem as the planner sees it.

    Attributes
    ----------
    name, role : str
    analysis : StemAnalysis or None
    error : (code, message) or None
        Why the stem could not be analysed.
    manual : bool
        The producer mixes this track by hand: findings only.
    section_lufs : tuple
        ``(section name, start_s, end_s, stem LUFS, mix LUFS)`` per section (for reports).
    role_source : str
        ``"name"`` (or ``"inferred"``: from the name), ``"roles file"``, ``"config"``, or ``"heard"``
        (the role recogniser, :mod:`bridge.suggest.hearing`, with ``role_probability``).
    role_probability : float or None
        The heard role's probability; ``None`` when the role comes from a name or a file.
    role_findings : tuple of Finding
        What the role decision found (a heard role, an unsure ear, a name the ear contradicts).
    band_power : ndarray [shape=(frames, bands)] or None
        Mean over channels of the 1/3-octave band mean squares, 100 ms grid.
    subhop_power : ndarray [shape=(subhops, channels)] or None
        K-weighted mean squares per 10 ms (BS.1770-4).
    low_signal : ndarray [shape=(n,)] or None
        The mono low-band signal (:mod:`bridge.analyze.polarity`, about 1 kHz at ``sample_rate``):
        what the polarity between two mics of one drum is measured on.
    sample_rate : int
        Hz (the EQ curves are evaluated at it).
    """

    name: str
    role: str
    analysis: StemAnalysis | None
    error: tuple[str, str] | None = None
    manual: bool = False
    section_lufs: tuple[tuple[str, float, float, float | None, float | None], ...] = ()
    role_source: str = "inferred"
    role_probability: float | None = None
    role_findings: tuple[Finding, ...] = ()
    band_power: np.ndarray | None = field(default=None, compare=False, repr=False)
    subhop_power: np.ndarray | None = field(default=None, compare=False, repr=False)
    sample_rate: int = 48000
    low_signal: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def usable(self) -> bool:
        """Analysed, audible, and with the arrays the predicted mix needs."""
        return (self.analysis is not None and not self.analysis.faults.silent and self.band_power is not None
                and self.subhop_power is not None and len(self.band_power) > 0)


@dataclass(frozen=True, slots=True)
class Group:
    """Stems that are parts of one source (a multi-mic kit, a double, an L/R pair).

    ``source`` says how it was found: ``"names"``, ``"bleed"`` (correlated band envelopes),
    ``"roles file"`` / ``"config"``.  ``evidence`` holds the scores behind it.
    """

    name: str
    members: tuple[str, ...]
    source: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Effect:
    """A predicted effect of a move, in the objective's own measure.

    Example: subject ``"Lead_Vox masked by Gtr, 1.1-3.5 kHz"``, metric ``"masking_overlap_db"``,
    before 9.0, after 3.0, unit ``"dB"``.
    """

    subject: str
    metric: str
    before: float
    after: float
    unit: str

    @property
    def text(self) -> str:
        return f"{self.subject}: {_fmt(self.before, self.unit)} → {_fmt(self.after, self.unit)}"


def _fmt(value: float, unit: str) -> str:
    if unit == "correlation":
        return f"{value:+.2f}"
    if unit == "%":
        return f"{value:.0f}%"
    if unit in ("LU from target", "LU"):
        return f"{value:+.1f} {unit}"
    return f"{value:.1f} {unit}".rstrip()


@dataclass(frozen=True, slots=True)
class Move:
    """One proposed move: what changes on which tracks, why, and what the model predicts.

    Attributes
    ----------
    kind : str
        ``fader``, ``eq``, ``highpass``, ``comp``, ``automation``, ``polarity``, ``width``, ``pan``.
    code : str
        Reason code (``too_loud``, ``masking``, ``low_rumble``, ...), also its finding's code.
    tracks : tuple of str
        The tracks it writes to (a group move names every member).
    finding : Finding
    effects : tuple of Effect
        Predicted, on the objective's terms, with this move (and the plan's other moves) applied.
    gain : float
        What the objective gains by the move, net of its own cost (points; see docs/suggestions.md).
    confidence : float
    fader_db, band, comp, sections, polarity, width, pan :
        The move's content; only the fields of its ``kind`` are set.
    """

    kind: str
    code: str
    tracks: tuple[str, ...]
    finding: Finding
    effects: tuple[Effect, ...] = ()
    gain: float = 0.0
    confidence: float = 0.5
    fader_db: float | None = None
    band: EqBand | None = None
    comp: CompSettings | None = None
    sections: tuple[SectionGain, ...] = ()
    polarity: str | None = None
    width: float | None = None
    pan: float | None = None

    @property
    def summary(self) -> str:
        if not self.effects:
            return self.finding.message
        return self.finding.message + " (predicted: " + "; ".join(e.text for e in self.effects) + ")"


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
class SuggestionRecord:
    """One suggestion of a track: a move (or a finding without one) the producer can accept.

    Reads like the JSON item too (``record["id"]``, ``record.get("confidence")``), which is what the
    notes and the review address.
    """

    id: str
    code: str
    summary: str
    has_moves: bool
    confidence: float
    effects: tuple[str, ...] = ()
    objective_gain: float | None = None
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "code": self.code, "confidence": self.confidence,
                               "summary": self.summary, "has_moves": self.has_moves,
                               "predicted_effects": list(self.effects)}
        if self.objective_gain is not None:
            out["objective_gain"] = self.objective_gain
        if self.group is not None:
            out["group"] = self.group
        return out

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_dict().get(key, default)


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
    suggestions: tuple[SuggestionRecord, ...]
    group: str | None = None
    role_probability: float | None = None
    target_lufs: float | None = None
    predicted_lufs: float | None = None
    integrated_lufs: float | None = None
