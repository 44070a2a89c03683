"""What the feedback notes are made from: one frozen :class:`NotesInput`.

The analysis and the plan are always there.  The later stages add what happened in REAPER: the
DAW targets report what they wrote (:class:`AppliedChange`) and what they could not write
(:class:`PendingMove`); the watcher reports what the producer changed by hand
(:class:`Override`) and how this bounce differs from the last one
(:class:`ChangesSincePrevious`).  Every one of those is optional and empty by default, so the
notes can be written straight after planning and again after each later stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..suggest.model import Finding

if TYPE_CHECKING:  # the notes read results; they never run the pipeline
    from ..model import SessionResult
    from ..suggest.plan import MixPlan

#: Per-track provenance tags, in the order the notes count them (the same vocabulary as
#: ``bridge.daw.tagging.PROVENANCES``; a test keeps the two equal).
PROVENANCES = ("ai", "hybrid", "manual", "untouched")
#: Where the pass's changes went (``NotesInput.outcome``): written to REAPER, proposed without a
#: DAW target, queued while REAPER is away, held for review, refused; empty: planned only.
OUTCOMES = ("written", "proposed", "queued", "held", "failed", "")

#: A parameter value as written to or read from REAPER: a number in the unit its name carries
#: (``volume_db``, ``band1_freq_hz``), a word (``band1_type`` = ``"peak"``), or unknown.
ParamValue = float | int | str | None

#: Integrated-loudness differences below this are measurement noise between bounces, LU.
LEVEL_CHANGE_MIN_LU = 0.05


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """One parameter write a DAW target made.

    Attributes
    ----------
    track : str
        Track (stem) name.
    param : str
        The plan's parameter name (``volume_db``, ``band2_gain_db``, ``ratio``, ...).
    value_written : float or str
        The value written, in the unit ``param`` names (dB, Hz, ms; ``ratio`` as N:1).
    value_before : float or str or None
        The value the parameter held before (``None``: it did not exist, e.g. a new FX).
    unit : str
        Overrides the unit implied by ``param`` when given.
    """

    track: str
    param: str
    value_written: ParamValue
    value_before: ParamValue = None
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    """A parameter the producer changed after the AI wrote it.

    Attributes
    ----------
    track, param : str
    from_value : float or str or None
        What the AI had written.
    to_value : float or str or None
        What the producer set it to.
    unit : str
    """

    track: str
    param: str
    from_value: ParamValue
    to_value: ParamValue
    unit: str = ""


@dataclass(frozen=True, slots=True)
class PendingMove:
    """A planned move that could not be applied, and why.

    Attributes
    ----------
    track, param : str
    value : float or str or None
        The value the plan wanted.
    why : str
        In plain words ("OSC cannot add FX: insert 'AI EQ' on the track, then re-apply").
    code : str
        A stable error code when one applies (``E_TARGET_NOT_FOUND``), else empty.
    unit : str
    """

    track: str
    param: str
    value: ParamValue
    why: str
    code: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class LevelChange:
    """How much one stem's integrated loudness moved between bounces, LU (positive: louder)."""

    track: str
    change_lu: float


@dataclass(frozen=True, slots=True)
class PlanItem:
    """A finding or suggestion that appeared or disappeared between bounces."""

    track: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class MoveChange:
    """A planned parameter whose value differs from the previous bounce's plan (``None``: absent there)."""

    track: str
    param: str
    before: ParamValue
    after: ParamValue
    unit: str = ""


@dataclass(frozen=True, slots=True)
class ChangesSincePrevious:
    """What differs from the previous bounce of the same session.

    Attributes
    ----------
    previous_id : str
        The previous analysis (or plan) id, for the record.
    level_changes : tuple of LevelChange
    findings_added, findings_dropped : tuple of PlanItem
    suggestions_added, suggestions_dropped : tuple of PlanItem
        Suggestions with moves only.
    reanalysed : tuple of str
        Stems that were read again for this bounce.
    moves_changed : tuple of MoveChange
        Every planned parameter (fader, pan, width, polarity, EQ type/frequency/gain/Q, compressor,
        volume automation) whose value differs from the previous plan, added or gone.
    """

    previous_id: str = ""
    level_changes: tuple[LevelChange, ...] = ()
    findings_added: tuple[PlanItem, ...] = ()
    findings_dropped: tuple[PlanItem, ...] = ()
    suggestions_added: tuple[PlanItem, ...] = ()
    suggestions_dropped: tuple[PlanItem, ...] = ()
    reanalysed: tuple[str, ...] = ()
    moves_changed: tuple[MoveChange, ...] = ()

    def __post_init__(self) -> None:
        for name in ("level_changes", "findings_added", "findings_dropped", "suggestions_added",
                     "suggestions_dropped", "reanalysed", "moves_changed"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def empty(self) -> bool:
        return not (self.level_changes or self.findings_added or self.findings_dropped
                    or self.suggestions_added or self.suggestions_dropped or self.reanalysed
                    or self.moves_changed)


@dataclass(frozen=True, slots=True)
class RenderLinks:
    """The AI pass rendered offline (:mod:`bridge.render`): two level-matched mixes to listen to.

    Attributes
    ----------
    before_path, after_path : str
        The mixes without and with the pass (absolute, or relative to the notes file once written).
    before_lufs : float or None
        Integrated loudness of both mixes (the after mix is matched to it).
    match_gain_db : float
        The gain applied to the after mix to match it.
    stems_dir : str
        Where the processed stems are (the AI-only version of every track).
    """

    before_path: str
    after_path: str
    before_lufs: float | None
    match_gain_db: float
    stems_dir: str = ""


@dataclass(frozen=True, slots=True)
class NotesInput:
    """Everything the notes describe.

    Attributes
    ----------
    result : SessionResult
        The analysis of the bounce.
    plan : MixPlan
        The plan made from it.
    applied : tuple of AppliedChange
        Filled by the DAW targets: what was actually written.
    overrides : tuple of Override
        Filled by the watcher: what the producer changed afterwards.
    changes_since_previous : ChangesSincePrevious or None
        Filled by the watcher when there was an earlier bounce.
    pending : tuple of PendingMove
        Filled by the DAW targets: moves that could not be applied.
    provenance : mapping of str to str
        Per-track tag overriding the derived one (``ai``, ``hybrid``, ``manual``, ``untouched``),
        for tags read back from the project (the producer retagged a track).
    title : str
        Shown at the top (a song or session name).
    generated_at : str
        A timestamp to print; empty keeps the output byte-identical across runs.
    outcome : str
        Where ``applied`` went (:data:`OUTCOMES`): ``proposed`` when there was no DAW target.
    render : RenderLinks or None
        The pass rendered offline, when it was (``watch --render``, the demo).
    unchanged : tuple of (track, param)
        Planned values already in place from an earlier pass (not written again, not new).
    review_url : str
        The local review page (``mixbridge watch --review-page``) while it runs; linked at the top.
    """

    result: SessionResult
    plan: MixPlan
    applied: tuple[AppliedChange, ...] = ()
    overrides: tuple[Override, ...] = ()
    changes_since_previous: ChangesSincePrevious | None = None
    pending: tuple[PendingMove, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    generated_at: str = ""
    outcome: str = ""
    unchanged: tuple[tuple[str, str], ...] = ()
    render: RenderLinks | None = None
    review_url: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")
        # Callers pass lists; tuples keep the input immutable like everything else downstream.
        for name in ("applied", "overrides", "pending", "unchanged"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = {tag for tag in self.provenance.values() if tag not in PROVENANCES}
        if unknown:
            raise ValueError(f"provenance must be one of {', '.join(PROVENANCES)}; got {', '.join(sorted(unknown))}")
        object.__setattr__(self, "provenance", dict(self.provenance))

    def provenance_of(self, track: str) -> str:
        """The track's tag: the explicit one, else derived from the plan and the later stages.

        ``ai`` when the plan proposed moves or some were written; ``hybrid`` when such a track
        was also overridden by the producer; ``manual`` when the plan left it to the producer or
        the producer overrode a track the AI did not touch; ``untouched`` otherwise (including
        stems that could not be analysed).
        """
        if track in self.provenance:
            return self.provenance[track]
        try:
            status = self.plan.track(track).status
        except KeyError:
            status = "untouched"
        ai = status == "ai" or any(a.track == track for a in self.applied)
        overridden = any(o.track == track for o in self.overrides)
        if ai and overridden:
            return "hybrid"
        if overridden or status == "manual":
            return "manual"
        return "ai" if ai else "untouched"

    def applied_to(self, track: str) -> tuple[AppliedChange, ...]:
        return tuple(a for a in self.applied if a.track == track)

    def overrides_of(self, track: str) -> tuple[Override, ...]:
        return tuple(o for o in self.overrides if o.track == track)

    def pending_for(self, track: str) -> tuple[PendingMove, ...]:
        return tuple(p for p in self.pending if p.track == track)

    def unchanged_of(self, track: str) -> tuple[str, ...]:
        return tuple(p for t, p in self.unchanged if t == track)


# --- comparing two bounces ----------------------------------------------------------------------

def _subject(evidence: Mapping[str, Any]) -> str:
    """What a finding is about beyond its track and code, stable across bounces.

    Messages carry measured numbers that drift between bounces; the subject does not (the
    masking partner pair, or the broad band of a reference finding).
    """
    if "masked" in evidence and "masker" in evidence:
        return f"{evidence['masked']}|{evidence['masker']}"
    return str(evidence.get("band", ""))


def _findings(plan: MixPlan) -> dict[tuple[str, str, str], PlanItem]:
    out = {}
    for track in plan.tracks:
        for f in track.findings:
            out.setdefault((track.name, f.code, _subject(f.evidence)), PlanItem(track.name, f.code, f.message))
    return out


def _suggestions(plan: MixPlan) -> dict[tuple[str, str, str], PlanItem]:
    out = {}
    for track in plan.tracks:
        by_message: dict[str, Finding] = {f.message: f for f in track.findings}
        for s in track.suggestions:
            if not s.get("has_moves"):
                continue
            finding = by_message.get(s["summary"])
            subject = _subject(finding.evidence) if finding is not None else s["summary"]
            out.setdefault((track.name, s["code"], subject), PlanItem(track.name, s["code"], s["summary"]))
    return out


def _integrated(result: SessionResult) -> dict[str, float | None]:
    return {s.name: s.analysis.loudness.integrated_lufs if s.analysis is not None else None for s in result.stems}


def _true_peak(result: SessionResult) -> dict[str, float | None]:
    return {s.name: s.analysis.levels.true_peak_dbtp if s.analysis is not None else None for s in result.stems}


def compare_bounces(previous_result: SessionResult, previous_plan: MixPlan, result: SessionResult,
                    plan: MixPlan, reanalysed: Sequence[str] | None = None) -> ChangesSincePrevious:
    """What changed between two bounces of one session (pure).

    Parameters
    ----------
    previous_result, previous_plan : SessionResult, MixPlan
        The earlier bounce.
    result, plan : SessionResult, MixPlan
        This bounce.
    reanalysed : sequence of str, optional
        Stems the watcher read again.  When absent: the stems that are new, or whose integrated
        loudness or true peak differ.

    Returns
    -------
    ChangesSincePrevious
        Findings and suggestions are matched by track, code and subject (the masking pair or
        band), so a finding whose numbers merely drifted counts as neither added nor dropped; what
        the plan would set is compared parameter by parameter (``moves_changed``), so an EQ band
        moving from 355 Hz to 1.8 kHz is listed even though its suggestion is the same.
    """
    before, after = _integrated(previous_result), _integrated(result)
    levels = []
    for name, lufs in after.items():
        old = before.get(name)
        if lufs is not None and old is not None and abs(lufs - old) >= LEVEL_CHANGE_MIN_LU:
            levels.append(LevelChange(name, round(lufs - old, 2)))
    if reanalysed is None:
        peaks_before, peaks_after = _true_peak(previous_result), _true_peak(result)
        reanalysed = [name for name in after if name not in before or not _same(before[name], after[name])
                      or not _same(peaks_before.get(name), peaks_after[name])]
    old_m, new_m = _moves(previous_plan), _moves(plan)
    moves = tuple(MoveChange(track, param, old_m.get((track, param), (None, ""))[0], value, unit)
                  for (track, param), (value, unit) in new_m.items() if not _same_value(old_m.get((track, param), (None,))[0], value))
    moves += tuple(MoveChange(track, param, value, None, unit)
                   for (track, param), (value, unit) in old_m.items() if (track, param) not in new_m)
    old_f, new_f = _findings(previous_plan), _findings(plan)
    old_s, new_s = _suggestions(previous_plan), _suggestions(plan)
    return ChangesSincePrevious(
        previous_id=previous_plan.analysis_id or previous_plan.id,
        level_changes=tuple(levels),
        findings_added=tuple(v for k, v in new_f.items() if k not in old_f),
        findings_dropped=tuple(v for k, v in old_f.items() if k not in new_f),
        suggestions_added=tuple(v for k, v in new_s.items() if k not in old_s),
        suggestions_dropped=tuple(v for k, v in old_s.items() if k not in new_s),
        reanalysed=tuple(reanalysed), moves_changed=moves)


def _moves(plan: MixPlan) -> dict[tuple[str, str], tuple[ParamValue | tuple, str]]:
    """``{(track, param): (value, unit)}`` of every change and automation lane of a plan."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    for track in plan.tracks:
        for c in track.changes:
            channel = (c.extra or {}).get("channel")
            param = c.param if not channel or channel == "both" else f"{c.param}_{channel}"
            out[(track.name, param)] = (c.value, c.unit)
        for a in track.automation:
            out[(track.name, f"{a.param}_automation")] = (tuple(tuple(p) for p in a.points), "")
    return out


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), abs_tol=1e-9)
    return a == b


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, abs_tol=1e-6)
