"""Build the :class:`MixPlan` from an analysed session, and write it as JSON (schema version 1).

The plan is deterministic: the same analysis and settings give the same bytes.  It carries an id
derived from its own content, the id of the analysis it came from, and the settings it used.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..analyze.session import MixAnalysis
from .model import Automation, Change, Finding, Suggestion, TrackPlan
from .reference import ReferenceComparison, reference_suggestions
from .roles import NEUTRAL
from .rules import RULES, Anchor, Context, RuleSettings, StemView, choose_anchor

SCHEMA_VERSION = 1

#: ReaEQ-style band kinds the plan uses, in the order bands are numbered on a track.
_BAND_ORDER = {"highpass": 0, "lowshelf": 1, "peak": 2, "highshelf": 3, "lowpass": 4}


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Settings that shape the plan; all of them are recorded in it.

    Attributes
    ----------
    amount : float
        0..1, scales every move (0: findings only).
    role_offsets : dict
        Role -> level offset (LU against the lead vocal) overriding the defaults.
    manual : tuple of str
        Tracks the producer mixes by hand: findings only, never moves.
    max_gain_move_db : float
    """

    amount: float = 1.0
    role_offsets: dict[str, float] = field(default_factory=dict)
    manual: tuple[str, ...] = ()
    max_gain_move_db: float = 12.0

    def as_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "role_offsets": dict(sorted(self.role_offsets.items())),
                "manual": sorted(self.manual), "max_gain_move_db": self.max_gain_move_db}


@dataclass(frozen=True, slots=True)
class MixPlan:
    """The whole plan: per-track findings and moves, mix findings, and provenance."""

    id: str
    analysis_id: str
    settings: PlanSettings
    anchor: Anchor | None
    tracks: tuple[TrackPlan, ...]
    mix_findings: tuple[Finding, ...]
    reference: ReferenceComparison | None
    estimated_ai_delta_lu: float = 0.0

    def track(self, name: str) -> TrackPlan:
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(name)


def _scale(value: float, amount: float, ndigits: int = 1) -> float:
    return round(value * amount, ndigits)


def _changes_for(suggestions: list[Suggestion], amount: float) -> tuple[list[Change], list[Automation]]:
    """Turn a track's suggestions into parameter changes, scaled by ``amount``.

    Fader moves from several rules combine: the most negative headroom move wins over a
    gain-staging boost, otherwise they add.  EQ bands are numbered high-pass first, then by kind
    and frequency.  Amount scales dB moves and ratios towards neutral; binary moves (polarity,
    high-pass) are kept for any amount above 0.
    """
    if amount <= 0.0:
        return [], []
    changes: list[Change] = []
    automation: list[Automation] = []
    sid = {id(s): f"{s.track}/{s.code}/{k}" for k, s in enumerate(suggestions)}

    volume = [(s.volume_db, s) for s in suggestions if s.volume_db is not None]
    if volume:
        gain = sum(v for v, _ in volume)
        headroom = [v for v, s in volume if s.code == "hot_peaks"]
        if headroom and gain > min(headroom):
            gain = min(headroom)
        main = min(volume, key=lambda vs: vs[0])[1]
        changes.append(Change("track", "volume_db", _scale(gain, amount), "dB",
                              "+".join(sorted({s.code for _, s in volume})), sid[id(main)]))
    for s in suggestions:
        if s.pan is not None:
            changes.append(Change("track", "pan", round(s.pan * amount, 2), "", s.code, sid[id(s)]))
        if s.width is not None:
            changes.append(Change("track", "width", round(1.0 + (s.width - 1.0) * amount, 2), "", s.code, sid[id(s)]))
        if s.polarity is not None:
            changes.append(Change("track", "polarity", 1, "flag", s.code, sid[id(s)], dict(s.polarity)))
    bands = sorted(((b, s) for s in suggestions for b in s.eq),
                   key=lambda bs: (_BAND_ORDER[bs[0].kind], bs[0].freq_hz, bs[0].gain_db))
    for index, (band, s) in enumerate(bands, start=1):
        gain = 0.0 if band.kind in ("highpass", "lowpass") else _scale(band.gain_db, amount)
        for param, value, unit in ((f"band{index}_type", band.kind, ""),
                                   (f"band{index}_freq_hz", band.freq_hz, "Hz"),
                                   (f"band{index}_gain_db", gain, "dB"),
                                   (f"band{index}_q", band.q, "")):
            changes.append(Change("eq", param, value, unit, s.code, sid[id(s)]))
    for s in suggestions:
        if s.comp is not None:
            c = s.comp
            ratio = round(1.0 + (c.ratio - 1.0) * amount, 2)
            for param, value, unit in (("threshold_db", c.threshold_db, "dB"), ("ratio", ratio, ":1"),
                                       ("attack_ms", c.attack_ms, "ms"), ("release_ms", c.release_ms, "ms"),
                                       ("makeup_db", _scale(c.makeup_db, amount), "dB")):
                changes.append(Change("comp", param, value, unit, s.code, sid[id(s)]))
        if s.automation:
            points = tuple((t, _scale(v, amount)) for t, v in s.automation)
            automation.append(Automation("volume_db", points, s.code, sid[id(s)]))
    return changes, automation


def build_plan(stems: list[StemView], mix: MixAnalysis, settings: PlanSettings = PlanSettings(),
               role_sources: dict[str, str] | None = None, analysis_id: str = "",
               reference: ReferenceComparison | None = None) -> MixPlan:
    """Run every rule and assemble the plan.

    Parameters
    ----------
    stems : list of StemView
        The stems with their roles, analyses (or errors) and section levels.
    mix : MixAnalysis
    settings : PlanSettings
    role_sources : dict, optional
        Stem name -> "inferred" | "roles file" | "config", recorded per track.
    analysis_id : str
        Id of the analysis the plan came from.
    reference : ReferenceComparison, optional
        Result of :func:`bridge.suggest.reference.compare` when a reference track was given.
    """
    rule_settings = RuleSettings(role_offsets=dict(settings.role_offsets), max_gain_move_db=settings.max_gain_move_db)
    mix_lufs = mix.summed.loudness.integrated_lufs if mix.summed is not None else None
    anchor = choose_anchor(stems, mix_lufs, rule_settings)
    ctx = Context(tuple(stems), mix, anchor, rule_settings)
    suggestions: list[Suggestion] = []
    for rule in RULES:
        suggestions.extend(rule(ctx))
    if reference is not None:
        suggestions.extend(reference_suggestions(ctx, reference))

    manual = set(settings.manual)
    tracks = []
    for stem in stems:
        mine = [s for s in suggestions if s.track == stem.name]
        findings = tuple(s.finding for s in mine)
        movable = [s for s in mine if s.has_moves] if stem.name not in manual else []
        changes, automation = _changes_for(movable, settings.amount)
        if stem.error is not None:
            status = "error"
        elif stem.name in manual:
            status = "manual"
        elif changes or automation:
            status = "ai"
        else:
            status = "untouched"
        listed = [{"id": f"{s.track}/{s.code}/{k}", "code": s.code, "confidence": s.confidence,
                   "summary": s.finding.message, "has_moves": s.has_moves}
                  for k, s in enumerate(movable)]
        tracks.append(TrackPlan(stem.name, stem.role, (role_sources or {}).get(stem.name, "inferred"), status,
                                findings, tuple(changes), tuple(automation), tuple(listed)))
    mix_findings = _mix_findings(mix)
    delta = _estimated_delta_lu(stems, tracks)
    draft = MixPlan("", analysis_id, settings, anchor, tuple(tracks), tuple(mix_findings), reference, delta)
    return MixPlan(plan_id(draft), analysis_id, settings, anchor, tuple(tracks), tuple(mix_findings), reference, delta)


def _estimated_delta_lu(stems: list[StemView], tracks: list[TrackPlan]) -> float:
    """Loudness change of the mix from the plan's fader moves, summing stems incoherently.

    Used to level-match A/B; EQ and compression are left out of the estimate (documented).
    """
    import math

    moves = {t.name: sum(float(c.value) for c in t.changes if c.param == "volume_db") for t in tracks}
    levels = [(s.analysis.loudness.integrated_lufs, moves.get(s.name, 0.0)) for s in stems
              if s.analysis is not None and s.analysis.loudness.integrated_lufs is not None]
    if not levels:
        return 0.0
    before = sum(10 ** (lufs / 10) for lufs, _ in levels)
    after = sum(10 ** ((lufs + g) / 10) for lufs, g in levels)
    return round(10 * math.log10(after / before), 2)


def _mix_findings(mix: MixAnalysis) -> list[Finding]:
    out = []
    if mix.summed is not None:
        tp = mix.summed.levels.true_peak_dbtp
        if tp is not None and tp > -1.0:
            out.append(Finding("mix_hot", "warning",
                               f"the summed stems peak at {tp:+.1f} dBTP: leave headroom for the master bus "
                               f"(around -6 dBTP before mastering)", {"true_peak_dbtp": tp}))
    for note in mix.alignment:
        out.append(Finding("aligned", "info", note, {}))
    return out


# --- JSON ---------------------------------------------------------------------------------------

def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity, "message": f.message, "evidence": f.evidence}


def plan_dict(plan: MixPlan, with_id: bool = True) -> dict[str, Any]:
    """The plan as the JSON document of ``mixbridge plan --json`` (schema version 1)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "id": plan.id if with_id else "",
        "analysis_id": plan.analysis_id,
        "settings": plan.settings.as_dict(),
        "anchor": None if plan.anchor is None else
        {"kind": plan.anchor.kind, "stem": plan.anchor.stem, "lufs": round(plan.anchor.lufs, 2)},
        "tracks": [
            {"name": t.name, "role": t.role, "role_source": t.role_source, "status": t.status,
             "findings": [_finding_dict(f) for f in t.findings],
             "changes": [dict({"target": c.target, "param": c.param, "value": c.value, "unit": c.unit,
                               "reason": c.reason, "suggestion": c.suggestion}, **c.extra) for c in t.changes],
             "automation": [{"param": a.param, "points": [list(p) for p in a.points], "reason": a.reason,
                             "suggestion": a.suggestion} for a in t.automation],
             "suggestions": list(t.suggestions)}
            for t in plan.tracks],
        "mix": {"findings": [_finding_dict(f) for f in plan.mix_findings],
                "estimated_ai_delta_lu": plan.estimated_ai_delta_lu},
        "reference": None if plan.reference is None else plan.reference.as_dict(),
        # Filled in by the DAW targets and the watcher; kept in the schema from the start.
        "applied": None,
        "overrides": [],
        "pending": [],
        "changes_since_previous": None,
    }
    return json.loads(json.dumps(doc, allow_nan=False))


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def plan_id(plan: MixPlan) -> str:
    """sha256 over the plan's content (with the id field blank), first 16 hex digits."""
    return hashlib.sha256(canonical_json(plan_dict(plan, with_id=False)).encode()).hexdigest()[:16]


def plan_json(plan: MixPlan) -> str:
    """Stable, human-diffable bytes: the same plan always serialises identically."""
    return json.dumps(plan_dict(plan), indent=1, sort_keys=False, allow_nan=False) + "\n"
