"""Build the :class:`MixPlan` from an analysed session, and write it as JSON (schema version 2).

The plan is one optimisation over a predicted mix (:mod:`bridge.suggest.objective`,
:mod:`bridge.suggest.search`): the moves are the optimum's, each explained with the numbers that
made it worth its cost and with its predicted effect.  Deterministic: the same analysis and settings
give the same bytes.  The plan carries an id derived from its own content, the id of the analysis it
came from, and the settings it used.  Typed records inside; JSON only in :func:`plan_dict`.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..analyze.session import MixAnalysis
from ..analyze.spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ, BAND_LOW_HZ
from .groups import detect_groups
from .model import (BAND_KINDS, MAKEUP_MAX_DB, MAX_EQ_BANDS, Automation, Change, CompSettings, Effect, EqBand, Finding,
                    Group, Move, SectionGain, StemView, SuggestionRecord, TrackPlan)
from .objective import (COST_PER_DB, COST_PER_MOVE, HOT_DBTP, REFERENCE_TOLERANCE_DB, SECTION_SHARE,
                        UNEVEN_SECTIONS_LU, W_DYNAMICS,
                        W_HEADROOM, W_LEVEL, W_MASKING, W_REFERENCE, W_RUMBLE, RUMBLE_ALLOWED_BASS_DB,
                        RUMBLE_ALLOWED_DB, MUTUAL_BUILDUP_DB, PART_BALANCE_TOLERANCE_LU, SNARE_BOTTOM_OFFSET_LU, Objective, Terms,
                        nice_hz)
from .predict import MASKING_ONSET_DB, MixModel, band_range_label, integrated_from_frames
from .reference import BROAD_BANDS, ReferenceComparison
from .roles import NEUTRAL, PROFILES, label
from .search import MAX_FADER_DB, Optimiser, State, TrackFx, UnitMove
from .stereo import partner_polarity, split_pair_pans, split_pairs, stereo_decision

SCHEMA_VERSION = 2
#: The level tolerance the fader's costs imply: no move within about this many LU of the target.
LEVEL_TOLERANCE_LU = 3.0
#: A level finding (without a move) from this far off.
LEVEL_FINDING_LU = 3.0
#: Masking conflicts costing at least this many points are reported even without a move.
MASKING_FINDING_POINTS = 1.5
SECTION_RAMP_S = 0.05
_BAND_ORDER = {k: i for i, k in enumerate(BAND_KINDS)}


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
    groups : dict
        Source groups from the roles file (group name -> member names).
    """

    amount: float = 1.0
    role_offsets: dict[str, float] = field(default_factory=dict)
    manual: tuple[str, ...] = ()
    max_gain_move_db: float = MAX_FADER_DB
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "role_offsets": dict(sorted(self.role_offsets.items())),
                "manual": sorted(self.manual), "max_gain_move_db": self.max_gain_move_db,
                "groups": {k: list(v) for k, v in sorted(self.groups.items())}}


@dataclass(frozen=True, slots=True)
class Anchor:
    """What stem levels are balanced against: the level ``lufs`` to which each role's offset is added.

    ``kind`` is ``"lead_vocal"`` when the session has a lead vocal (``stem``), else ``"mix"``.  The
    level is the one that puts the balance in place with the least processing (see
    :meth:`bridge.suggest.search.Optimiser.choose_anchor`); a lead vocal at its target sits on it.
    """

    kind: str
    stem: str | None
    lufs: float


@dataclass(frozen=True, slots=True)
class ObjectiveSummary:
    """The objective before and after the plan (at the plan's amount), and the search's effort."""

    before: Terms
    after: Terms
    evaluations: int


@dataclass(frozen=True, slots=True)
class MixPlan:
    """The whole plan: per-track findings and moves, mix findings, groups, objective, provenance."""

    id: str
    analysis_id: str
    settings: PlanSettings
    anchor: Anchor | None
    tracks: tuple[TrackPlan, ...]
    mix_findings: tuple[Finding, ...]
    reference: ReferenceComparison | None
    estimated_ai_delta_lu: float = 0.0
    groups: tuple[Group, ...] = ()
    moves: tuple[Move, ...] = ()
    objective: ObjectiveSummary | None = None

    def track(self, name: str) -> TrackPlan:
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(name)


def _r(value: float, ndigits: int = 1) -> float:
    return round(float(value), ndigits)


def _severity(magnitude: float, warn: float, problem: float) -> str:
    return "problem" if magnitude >= problem else "warning" if magnitude >= warn else "info"


# --- scaling ----------------------------------------------------------------------------------------

def scale_state(state: State, amount: float) -> State:
    """Every move scaled towards neutral by ``amount``; binary moves (high-pass, polarity) kept above 0."""
    if amount >= 1.0:
        return state
    if amount <= 0.0:
        return State(tuple(UnitMove() for _ in state.units), tuple(TrackFx() for _ in state.tracks))
    units = tuple(UnitMove(_r(m.fader_db * amount), tuple(replace(g, gain_db=_r(g.gain_db * amount)) for g in m.sections))
                  for m in state.units)
    tracks = []
    for fx in state.tracks:
        eq = tuple(b if b.kind in ("highpass", "lowpass") else replace(b, gain_db=_r(b.gain_db * amount)) for b in fx.eq)
        comp = None
        if fx.comp is not None:
            comp = replace(fx.comp, ratio=round(1.0 + (fx.comp.ratio - 1.0) * amount, 2),
                           makeup_db=round(fx.comp.makeup_db * amount * 2) / 2)
        width = None if fx.width is None else round(1.0 + (fx.width - 1.0) * amount, 2)
        pan = None if fx.pan is None else round(fx.pan * amount, 2)
        tracks.append(TrackFx(eq, fx.why, comp, fx.polarity, width, fx.comp_percentile, _r(fx.trim_db * amount), pan))
    return State(units, tuple(tracks))


# --- the build ---------------------------------------------------------------------------------------

@dataclass
class _Context:
    views: list[StemView]
    model: MixModel
    obj: Objective
    opt: Optimiser
    anchor: float | None
    state: State          # at the plan's amount
    full: State           # at amount 1
    amount: float


def _sections_of(mix: MixAnalysis) -> list[tuple[str, float, float]]:
    return [(lev.section.name, lev.section.start_s, lev.section.end_s) for lev in mix.sections]


def _reference_inputs(reference: ReferenceComparison | None):
    if reference is None:
        return None, None
    delta = np.array([b.delta_db if b.delta_db is not None else np.nan for b in reference.bands], dtype=np.float64)
    return delta, [(lo, hi) for _, lo, hi, *_ in BROAD_BANDS]


def build_plan(stems: list[StemView], mix: MixAnalysis, settings: PlanSettings = PlanSettings(),
               role_sources: dict[str, str] | None = None, analysis_id: str = "",
               reference: ReferenceComparison | None = None, groups_source: str = "roles file") -> MixPlan:
    """Optimise the predicted mix and assemble the plan.

    Parameters
    ----------
    stems : list of StemView
        The stems with their roles, analyses (or errors), section levels and per-frame arrays.
    mix : MixAnalysis
    settings : PlanSettings
    role_sources : dict, optional
        Stem name -> "inferred" | "roles file" | "config"; overrides each view's ``role_source``.
    analysis_id : str
        Id of the analysis the plan came from.
    reference : ReferenceComparison, optional
        Result of :func:`bridge.suggest.reference.compare` when a reference track was given.
    groups_source : str
        Recorded as the source of ``settings.groups``.
    """
    manual = set(settings.manual)
    views = [replace(v, manual=v.manual or v.name in manual,
                     role_source=(role_sources or {}).get(v.name, v.role_source)) for v in stems]
    groups = detect_groups(views, settings.groups, groups_source)
    model = MixModel(views, groups, _sections_of(mix))
    ref_delta, ref_bands = _reference_inputs(reference)
    obj = Objective(model, settings.role_offsets, ref_delta, ref_bands)
    fixed, stereo_moves = _stereo_fixes(model, views, groups)
    opt = Optimiser(obj, fixed, max_fader_db=settings.max_gain_move_db)
    full, anchor = opt.run()
    state = scale_state(full, settings.amount)
    ctx = _Context(views, model, obj, opt, anchor, state, full, settings.amount)

    if settings.amount > 0:
        moves = _moves(ctx, stereo_moves)
        findings = _findings(ctx, moves)
    else:
        # Findings only: what the plan would do at full amount is reported, nothing is written.
        full_ctx = replace(ctx, state=full, amount=1.0)
        moves = []
        findings = _findings(full_ctx, _moves(full_ctx, stereo_moves))
    tracks = _tracks(ctx, moves, findings, groups, settings)
    before = opt.terms(opt.start, anchor)
    after = opt.terms(state, anchor)
    summary = ObjectiveSummary(before, after, opt.evaluations)
    delta = _estimated_delta_lu(ctx)
    anchor_rec = _anchor_record(ctx)
    draft = MixPlan("", analysis_id, settings, anchor_rec, tuple(tracks), tuple(_mix_findings(mix)), reference,
                    delta, tuple(groups), tuple(moves), summary)
    return replace(draft, id=plan_id(draft))


def _anchor_record(ctx: _Context) -> Anchor | None:
    if ctx.anchor is None:
        return None
    vocals = [s for s in ctx.model.stems if s.role == "lead_vocal"]
    if vocals:
        best = max(vocals, key=lambda s: (s.integrated_lufs or -999.0, s.name))
        return Anchor("lead_vocal", best.name, round(ctx.anchor, 2))
    return Anchor("mix", None, round(ctx.anchor, 2))


def _stereo_fixes(model: MixModel, views: list[StemView], groups: list[Group]
                  ) -> tuple[dict[int, TrackFx], list[tuple[int, str, dict, Finding, tuple, float]]]:
    """Polarity, width and pan fixes, decided before the level/EQ search (bridge/suggest/stereo.py):
    each stem's own channels, then partner mics of one drum, then split stereo pairs."""
    fixed: dict[int, TrackFx] = {}
    found = []
    pair_side = {v.name: side for pair in split_pairs(views) for v, side in zip(pair, ("left", "right"))}
    for k, s in enumerate(model.stems):
        decision = stereo_decision(s.view, pair_side.get(s.name))
        if decision is None:
            continue
        kind, content, finding, effects, confidence = decision
        found.append((k, kind, content, finding, effects, confidence))
        if s.view.manual:
            continue
        if kind == "polarity":
            fixed[k] = TrackFx(polarity=content["channel"])
        else:
            fixed[k] = TrackFx(width=content["width"])
    for name, finding, effects, confidence in partner_polarity(views, groups):
        k = model.index.get(name)
        if k is None or any(f[0] == k for f in found):
            continue  # a stem with a fix of its own channels is judged on those first
        found.append((k, "polarity", {"channel": "both"}, finding, effects, confidence))
        if not model.stems[k].view.manual:
            fixed[k] = TrackFx(polarity="both")
    for name, pan, finding, effects, confidence in split_pair_pans(views):
        k = model.index.get(name)
        if k is None or any(f[0] == k for f in found):
            continue
        found.append((k, "pan", {"pan": pan}, finding, effects, confidence))
        if not model.stems[k].view.manual:
            fixed[k] = TrackFx(pan=pan)
    return fixed, found


def _estimated_delta_lu(ctx: _Context) -> float:
    """Loudness change of the (incoherently summed) mix from every move of the plan, LU."""
    before = integrated_from_frames(ctx.model.played_k({}))
    after = integrated_from_frames(ctx.model.played_k(ctx.opt.decisions(ctx.state)))
    if before is None or after is None:
        return 0.0
    return round(after - before, 2)


# --- moves and their effects ------------------------------------------------------------------------------

def _without_unit(state: State, u: int, what: str) -> State:
    m = state.units[u]
    return state.with_unit(u, replace(m, fader_db=0.0) if what == "fader" else replace(m, sections=()))


def _level_effect(ctx: _Context, u: int, state: State) -> float | None:
    decisions = ctx.opt.decisions(state)
    played = ctx.model.played_k(decisions)
    d, _, _, _ = ctx.obj.unit_level_terms(ctx.obj.units[u], decisions, ctx.anchor, played)
    return d


def _compressor_takes_lu(ctx: _Context, u: int, without_fader: State, d0: float | None) -> float | None:
    """How much of a part's shortfall its own compressor in this plan causes (LU), when over 1 LU."""
    squeezed = [k for k in ctx.obj.units[u].members if without_fader.tracks[k].comp is not None]
    if not squeezed or d0 is None:
        return None
    bare = without_fader
    for k in squeezed:
        bare = bare.with_track(k, replace(bare.tracks[k], comp=None))
    d_bare = _level_effect(ctx, u, bare)
    if d_bare is None or d_bare - d0 <= 1.0:
        return None
    return min(d_bare - d0, -d0) if d0 < 0 else None


def _section_effect(ctx: _Context, u: int, state: State) -> tuple[float, ...]:
    decisions = ctx.opt.decisions(state)
    played = ctx.model.played_k(decisions)
    _, es, _, _ = ctx.obj.unit_level_terms(ctx.obj.units[u], decisions, ctx.anchor, played)
    return es


def _explained(finding: Finding, effects) -> Finding:
    """The finding with its predicted effects appended to the message (the move's explanation)."""
    if not effects:
        return finding
    text = "; ".join(e.text for e in effects)
    return replace(finding, message=f"{finding.message} — predicted: {text}")


def _gain(ctx: _Context, without: State) -> float:
    return round(ctx.opt.cost(without, ctx.anchor) - ctx.opt.cost(ctx.state, ctx.anchor), 2)


def _unit_tracks(ctx: _Context, u: int) -> tuple[str, ...]:
    return tuple(ctx.model.stems[k].name for k in ctx.obj.units[u].members)


def _moves(ctx: _Context, stereo_moves) -> list[Move]:
    out: list[Move] = []
    m, obj = ctx.model, ctx.obj
    state = ctx.state
    for u, move in enumerate(state.units):
        unit = obj.units[u]
        tracks = _unit_tracks(ctx, u)
        target = None if ctx.anchor is None or unit.offset_lu is None else ctx.anchor + unit.offset_lu
        if move.fader_db:
            without = _without_unit(state, u, "fader")
            d0, d1 = _level_effect(ctx, u, without), _level_effect(ctx, u, state)
            hot = [(m.stems[k].name, m.stems[k].true_peak_dbtp) for k in unit.members
                   if m.stems[k].true_peak_dbtp is not None and m.stems[k].true_peak_dbtp > HOT_DBTP]
            code = "hot_peaks" if hot and (d0 is None or abs(d0) < LEVEL_TOLERANCE_LU) else (
                "too_loud" if move.fader_db < 0 else "too_quiet")
            who = unit.name if len(tracks) == 1 else f"{unit.name} ({', '.join(tracks)})"
            effects = []
            if d0 is not None and d1 is not None:
                effects.append(Effect(unit.name, "level_lu_from_target", round(d0, 1), round(d1, 1), "LU from target"))
            if code == "hot_peaks":
                name, tp = hot[0]
                msg = (f"{name} peaks at {tp:+.1f} dBTP without clipping: pull {who} down "
                       f"{abs(move.fader_db):.1f} dB for headroom")
                evidence = {"true_peak_dbtp": tp, "limit_dbtp": HOT_DBTP}
            else:
                side = "above" if (d0 or 0.0) > 0 else "below"
                msg = (f"{who} sits {abs(d0 or 0.0):.1f} LU {side} its target ({target:.1f} LUFS: the anchor "
                       f"{ctx.anchor:.1f} LUFS {unit.offset_lu:+.1f} LU for a {label(unit.role)}"
                       f"{' group' if len(tracks) > 1 else ''}): fader {move.fader_db:+.1f} dB")
                taken = _compressor_takes_lu(ctx, u, without, d0)
                if taken is not None:
                    msg += (f" ({taken:.1f} LU of that is what this plan's compressor takes beyond its make-up: "
                            f"ReaComp's make-up stops at {MAKEUP_MAX_DB:+.0f} dB and REAPER's fader comes after the FX)")
                evidence = {"integrated_lufs": _r(d0 + target, 2) if d0 is not None else None,
                            "target_lufs": _r(target, 2), "ideal_gain_db": _r(-(d0 or 0.0), 2),
                            "anchor_lufs": _r(ctx.anchor, 2), "offset_lu": _r(unit.offset_lu, 2),
                            "capped": abs(d0 or 0.0) > ctx.opt.max_fader_db}
            if len(tracks) > 1:
                evidence["group"] = unit.name
            out.append(Move("fader", code, tracks, Finding(code, _severity(abs(d0 or 0.0), 6.0, 9.0) if code != "hot_peaks"
                                                           else "warning", msg, evidence),
                            tuple(effects), _gain(ctx, without), _r(0.5 + min(0.4, abs(d0 or 0.0) / 30.0), 2),
                            fader_db=move.fader_db))
        if move.sections:
            without = _without_unit(state, u, "sections")
            e0, e1 = _section_effect(ctx, u, without), _section_effect(ctx, u, state)
            names = {ctx.model.song.sections[k]: i for i, k in enumerate(unit.sections)}
            rows, effects = [], []
            for g in move.sections:
                i = names.get((g.name, g.start_s, g.end_s))
                if i is None:
                    continue
                before, after = e0[i], e1[i]
                rows.append({"name": g.name, "start_s": _r(g.start_s, 2), "end_s": _r(g.end_s, 2),
                             "deviation_lu": _r(before, 2), "gain_db": g.gain_db, "predicted_lu": _r(after, 2)})
                effects.append(Effect(f"{unit.name} in {g.name} ({g.start_s:.0f}-{g.end_s:.0f} s)", "section_lu_from_place",
                                      round(before, 1), round(after, 1), "LU from target"))
            msg = (f"{unit.name} departs from its place against the band in "
                   + ", ".join(f"{r['name']} {r['start_s']:.0f}-{r['end_s']:.0f} s ({r['deviation_lu']:+.1f} LU)" for r in rows)
                   + ": volume automation " + ", ".join(f"{r['gain_db']:+.1f} dB" for r in rows) + " there")
            evidence = {"sections": rows, "section_names": sorted({r["name"] for r in rows}),
                        "target_lufs": _r(target, 2) if target is not None else None}
            worst = max((abs(r["deviation_lu"]) for r in rows), default=0.0)
            out.append(Move("automation", "section_level", tracks,
                            Finding("section_level", _severity(worst, 4.0, 8.0), msg, evidence), tuple(effects),
                            _gain(ctx, without), 0.6, sections=move.sections))
    for part in obj.parts:
        for trim in sorted({state.tracks[k].trim_db for k in part.members} - {0.0}):
            members = tuple(k for k in part.members if state.tracks[k].trim_db == trim)
            out.append(_trim_move(ctx, part, members, trim))
    for k, fx in enumerate(state.tracks):
        name = m.stems[k].name
        for i, band in enumerate(fx.eq):
            why = fx.why[i] if i < len(fx.why) else ""
            if i > 0 and band.kind == "highpass" and fx.eq[i - 1] == band and why == "low_rumble":
                continue  # the second section of a 24 dB/oct high-pass belongs to the first's move
            out.append(_eq_move(ctx, k, i, band, why))
        if fx.comp is not None:
            out.append(_comp_move(ctx, k, fx))
    for k, kind, content, finding, effects, confidence in stereo_moves:
        if m.stems[k].view.manual:
            continue
        without = state.with_track(k, replace(state.tracks[k], **{kind: None}))
        fx = state.tracks[k]
        if kind == "polarity" and fx.polarity is not None:
            out.append(Move("polarity", finding.code, (m.stems[k].name,), finding, effects, _gain(ctx, without),
                            confidence, polarity=fx.polarity))
        elif kind == "width" and fx.width is not None:
            out.append(Move("width", finding.code, (m.stems[k].name,), finding, effects, _gain(ctx, without),
                            confidence, width=fx.width))
        elif kind == "pan" and fx.pan is not None:
            out.append(Move("pan", finding.code, (m.stems[k].name,), finding, effects, _gain(ctx, without),
                            confidence, pan=fx.pan))
    return [replace(mv, finding=_explained(mv.finding, mv.effects)) for mv in out]


def _trim_move(ctx: _Context, part, members: tuple[int, ...], trim: float) -> Move:
    """A kit part's own fader move inside its group (``members`` share the trim ``trim``)."""
    m, obj, state = ctx.model, ctx.obj, ctx.state
    without = state
    for k in members:
        without = without.with_track(k, replace(without.tracks[k], trim_db=0.0))
    decisions0, decisions1 = ctx.opt.decisions(without), ctx.opt.decisions(state)
    tracks = tuple(m.stems[k].name for k in members)
    group = obj.units[part.group].name
    effects = []
    p0, p1 = obj.part_deviation(part, decisions0), obj.part_deviation(part, decisions1)
    q0, q1 = obj.mic_deviation(part, decisions0), obj.mic_deviation(part, decisions1)
    who = ", ".join(tracks)
    if p0 is not None and p1 is not None:
        effects.append(Effect(part.name, "part_lu_from_place", round(p0, 1), round(p1, 1),
                              "LU from its place in the group"))
    if q0 is not None and q1 is not None:
        effects.append(Effect(f"{part.name} bottom vs top", "mic_lu_from_place", round(q0, 1), round(q1, 1),
                              "LU from the usual bottom/top balance"))
    if q0 is not None and abs(q0) > PART_BALANCE_TOLERANCE_LU and (p0 is None or abs(q0) >= abs(p0)):
        tops = ", ".join(m.stems[k].name for k in part.tops)
        bottoms = ", ".join(m.stems[k].name for k in part.bottoms)
        worst = q0
        msg = (f"{bottoms} (snare bottom) sits {q0 + SNARE_BOTTOM_OFFSET_LU:+.1f} LU against {tops} (the top), where "
               f"a bottom mic usually sits about {SNARE_BOTTOM_OFFSET_LU:+.0f} LU under it: fader {trim:+.1f} dB on {who}")
    else:
        worst = p0 or 0.0
        side = "above" if worst > 0 else "below"
        msg = (f"{who} sit{'s' if len(tracks) == 1 else ''} {abs(worst):.1f} LU {side} where a {label(part.role)} "
               f"sits in {group} ({part.offset_lu:+.1f} LU against the group; balance inside a kit is left alone "
               f"within {PART_BALANCE_TOLERANCE_LU:.0f} LU): fader {trim:+.1f} dB")
    evidence = {"group": group, "part_deviation_lu": _r(p0, 2) if p0 is not None else None,
                "mic_deviation_lu": _r(q0, 2) if q0 is not None else None, "offset_lu": _r(part.offset_lu, 2),
                "tolerance_lu": PART_BALANCE_TOLERANCE_LU}
    return Move("fader", "kit_balance", tracks, Finding("kit_balance", _severity(abs(worst), 6.0, 9.0), msg, evidence),
                tuple(effects), _gain(ctx, without), 0.5, fader_db=trim)


def _without_band(state: State, k: int, i: int, count: int = 1) -> State:
    fx = state.tracks[k]
    return state.with_track(k, replace(fx, eq=fx.eq[:i] + fx.eq[i + count:], why=fx.why[:i] + fx.why[i + count:]))


def _eq_move(ctx: _Context, k: int, i: int, band: EqBand, why: str) -> Move:
    m, obj = ctx.model, ctx.obj
    s = m.stems[k]
    state = ctx.state
    fx = state.tracks[k]
    if why == "low_rumble":
        count = 2 if i + 1 < len(fx.eq) and fx.eq[i + 1] == band else 1
        without = _without_band(state, k, i, count)
        d_with = ctx.opt.decisions(state).get(s.name)
        d_without = ctx.opt.decisions(without).get(s.name)
        from .model import TrackDecision
        share0, _ = obj.low_end(k, d_without or TrackDecision())
        share1, _ = obj.low_end(k, d_with or TrackDecision())
        floor = obj.floors[k]
        body = float(np.interp(np.log(floor), np.log(BAND_CENTERS_HZ), 10 * np.log10(np.maximum(
            obj.model.stem_state(k, d_with).eq_gain / obj.model.stem_state(k, d_without or TrackDecision()).eq_gain,
            1e-30)))) if floor else 0.0
        slope = 12 * count
        dc = s.view.analysis.faults.dc_offset_dbfs
        msg = (f"{s.name} carries {share0:.1f} dB of its energy{' and DC' if dc is not None and dc > -60 else ''} "
               f"an octave and more below its lowest sustained partial ({floor:.0f} Hz): high-pass at "
               f"{band.freq_hz:.0f} Hz ({slope} dB/oct), the body at {floor:.0f} Hz loses {abs(body):.1f} dB")
        evidence = {"low_end_share_db": _r(share0, 1), "lowest_sustained_hz": floor, "corner_hz": band.freq_hz,
                    "slope_db_per_octave": slope, "dc_offset_dbfs": dc,
                    "rumble_db": s.view.analysis.spectrum.rumble_db}
        effects = (Effect(f"{s.name} energy below {floor / 2:.0f} Hz", "low_end_share_db", round(share0, 1),
                          round(share1, 1), "dB of the stem"),)
        return Move("highpass", "low_rumble", (s.name,), Finding("low_rumble", "warning", msg, evidence), effects,
                    _gain(ctx, without), 0.8 if share0 > -20 else 0.6, band=band)
    without = _without_band(state, k, i)
    if why.startswith("masking:"):
        _, us, vs = why.split(":")
        u, v = int(us), int(vs)
        # Explained by the part the cut helps most (the conflict that made it worth its cost).
        _, b0, sh0 = obj.masking(ctx.opt.decisions(without), ctx.anchor, [])
        _, b1, sh1 = obj.masking(ctx.opt.decisions(state), ctx.anchor, [])
        helped = [(obj.pair_cost(a, b, b0, sh0) - obj.pair_cost(a, b, b1, sh1), a) for a, b in obj.relevant_pairs()
                  if b == v]
        if helped:
            best, a = max(helped, key=lambda h: (h[0], -h[1]))
            if best > 0:
                u = a
        lo = int(np.searchsorted(BAND_HIGH_HZ, band.freq_hz / 2 ** 0.5))
        hi = int(np.searchsorted(BAND_LOW_HZ, band.freq_hz * 2 ** 0.5))
        lo, hi = max(0, min(lo, len(BAND_LOW_HZ) - 1)), max(lo + 1, min(hi, len(BAND_LOW_HZ)))
        o0, f0 = m.pair_overlap(u, v, ctx.opt.decisions(without), lo, hi)
        o1, f1 = m.pair_overlap(u, v, ctx.opt.decisions(state), lo, hi)
        masked, masker = m.groups[u][0], m.groups[v][0]
        region = band_range_label(lo, hi)
        mutual = bool(m.mutual(u, v)[lo:hi].any())
        why_text = ("each carves room where the other's fundamental lives" if mutual
                    else f"so {masked} comes through")
        msg = (f"{masked} masked by {masker} in {region} (overlap {o0:.0f} dB, {f0 * 100:.0f}% of the time): "
               f"cut {s.name} {abs(band.gain_db):.1f} dB at {band.freq_hz:.0f} Hz (Q {band.q:.1f}), {why_text}")
        evidence = {"masked": masked, "masker": masker, "protected": masked, "cut": s.name,
                    "band_low_hz": _r(BAND_LOW_HZ[lo], 1), "band_high_hz": _r(BAND_HIGH_HZ[hi - 1], 1),
                    "overlap_db": _r(o0, 2), "time_fraction": _r(f0, 3), "predicted_overlap_db": _r(o1, 2),
                    "predicted_time_fraction": _r(f1, 3), "mutual": mutual}
        effects = (Effect(f"{masked} masked by {masker}, {region}", "masking_overlap_db", round(o0, 1), round(o1, 1), "dB"),
                   Effect(f"{masked} masked by {masker}, {region}, share of time", "masking_time_share",
                          round(100 * f0), round(100 * f1), "%"))
        return Move("eq", "masking", (s.name,), Finding("masking", _severity(o0 * f0, 3.0, 6.0), msg, evidence), effects,
                    _gain(ctx, without), _r(0.4 + min(0.5, f0 * o0 / 20.0), 2), band=band)
    # reference
    name = why.split(":", 1)[1] if ":" in why else "band"
    j = [b[0] for b in BROAD_BANDS].index(name) if name in [b[0] for b in BROAD_BANDS] else 0
    d0, _ = obj.reference(ctx.opt.decisions(without))
    d1, _ = obj.reference(ctx.opt.decisions(state))
    _, lo, hi, *_ = BROAD_BANDS[j]
    direction = "more" if d0[j] > 0 else "less"
    msg = (f"the reference has {abs(d0[j]):.1f} dB {direction} {name} ({BAND_LOW_HZ[lo]:.0f}-{BAND_HIGH_HZ[hi]:.0f} Hz) "
           f"at matched loudness: {'boost' if band.gain_db > 0 else 'cut'} {s.name} {abs(band.gain_db):.1f} dB "
           f"({band.kind} at {band.freq_hz:.0f} Hz)")
    evidence = {"band": name, "low_hz": _r(BAND_LOW_HZ[lo], 1), "high_hz": _r(BAND_HIGH_HZ[hi], 1),
                "delta_db": _r(d0[j], 2), "predicted_delta_db": _r(d1[j], 2)}
    effects = (Effect(f"mix vs reference, {name}", "reference_delta_db", round(d0[j], 1), round(d1[j], 1), "dB"),)
    return Move("eq", "reference", (s.name,), Finding("reference", "info", msg, evidence), effects,
                _gain(ctx, without), 0.5, band=band)


def _comp_move(ctx: _Context, k: int, fx: TrackFx) -> Move:
    from .model import TrackDecision
    s = ctx.model.stems[k]
    state = ctx.state
    without = state.with_track(k, replace(fx, comp=None))
    d_with = ctx.opt.decisions(state).get(s.name, TrackDecision())
    d_without = ctx.opt.decisions(without).get(s.name, TrackDecision())
    sp0, _ = ctx.obj.dynamics(k, d_without)
    sp1, _ = ctx.obj.dynamics(k, d_with)
    gr = ctx.model.stem_state(k, d_with).mean_gr_db
    c = fx.comp
    ceiling = s.profile.spread_max_lu
    how = (f"compress {c.ratio:.1f}:1 from {c.threshold_db:.1f} dBFS (measured after the AI EQ; REAPER's fader is "
           f"post-FX), {c.attack_ms:.0f} ms attack, {c.release_ms:.0f} ms release, {c.makeup_db:+.1f} dB make-up")
    evidence = {"spread_lu": _r(sp0, 2), "ceiling_lu": ceiling, "mean_gain_reduction_db": _r(gr, 2),
                "lra_lu": s.view.analysis.loudness.lra_lu}
    effects = [Effect(f"{s.name} within-section dynamics", "spread_lu", round(sp0, 1), round(sp1, 1), "LU")]
    sw0, sw1 = ctx.obj.swing(k, d_without), ctx.obj.swing(k, d_with)
    if sw0 is not None and sw1 is not None:
        uneven = ctx.obj.uneven.get(ctx.obj.units[ctx.opt.unit_of_stem[k]].group, {})
        kind = sw0[1]
        where = ", ".join(f"{n} {v:+.1f} LU" for n, v in uneven.get("sections", {}).items()) if uneven.get("kind") == kind else kind
        msg = (f"{s.name}'s {kind} sections sit {sw0[0]:.1f} LU apart against the band ({where}) while the band plays "
               f"them alike: its level follows its phrases, not the arrangement, so it is levelled rather than ridden "
               f"(within-section dynamics {sp0:.1f} LU, {ceiling:.0f} LU for a {label(s.role)}): {how}")
        evidence.update({"swing_lu": _r(sw0[0], 2), "swing_kind": kind, "swing_limit_lu": UNEVEN_SECTIONS_LU})
        effects.append(Effect(f"{s.name} {kind} sections apart", "swing_lu", round(sw0[0], 1), round(sw1[0], 1), "LU"))
    else:
        msg = f"{s.name}: within-section dynamics {sp0:.1f} LU against {ceiling:.0f} LU for a {label(s.role)}: {how}"
    effects = tuple(effects) + (Effect(f"{s.name} mean gain reduction", "gain_reduction_db", 0.0, round(gr, 1), "dB"),)
    return Move("comp", "dynamics", (s.name,), Finding("dynamics", "info", msg, evidence), effects,
                _gain(ctx, without), 0.5, comp=c)


# --- findings without moves ------------------------------------------------------------------------------

def _findings(ctx: _Context, moves: list[Move]) -> dict[str, list[Finding]]:
    """Per track: every move's finding, then what was seen without a move."""
    out: dict[str, list[Finding]] = {v.name: list(v.role_findings) for v in ctx.views}
    for move in moves:
        for t in move.tracks[:1] if move.kind in ("fader", "automation") and len(move.tracks) > 1 else move.tracks:
            out[t].append(move.finding)
        if move.kind in ("fader", "automation") and len(move.tracks) > 1:
            for t in move.tracks[1:]:
                out[t].append(move.finding)
    moved = {(mv.kind, t) for mv in moves for t in mv.tracks}
    m, obj = ctx.model, ctx.obj
    decisions = ctx.opt.decisions(ctx.full)
    played = m.played_k(decisions)
    for v in ctx.views:
        a = v.analysis
        if v.error is not None:
            code, message = v.error
            out[v.name].append(Finding("unreadable", "problem", f"{v.name} was not analysed: {message}",
                                       {"error_code": code}))
            continue
        if a is None:
            continue
        if a.faults.silent:
            out[v.name].append(Finding("silent", "info", f"{v.name} is silent (nothing reaches -70 LUFS): "
                                       "muted at render, or an empty track", {}))
            continue
        clip = a.faults.clip
        if clip.runs:
            out[v.name].append(Finding("clipping", "problem",
                                       f"{v.name} is clipped in the file: {clip.runs} flat-topped runs, the longest "
                                       f"{clip.worst_run_samples} samples. Gain cannot undo this — re-record or "
                                       f"re-bounce it with headroom (or as 32-bit float)",
                                       {"clip_runs": clip.runs, "worst_clip_run_samples": clip.worst_run_samples,
                                        "true_peak_dbtp": a.levels.true_peak_dbtp,
                                        "sample_peak_dbfs": a.levels.sample_peak_dbfs}))
    # Level departures the plan does not move (neutral or manual parts, or moves not taken).
    if ctx.anchor is not None:
        for u, unit in enumerate(obj.units):
            tracks = _unit_tracks(ctx, u)
            if ("fader", tracks[0]) in moved:
                continue
            offset = unit.offset_lu if unit.offset_lu is not None else PROFILES[NEUTRAL].offset_lu
            loud = obj.unit_loudness(unit, decisions)
            if loud is None:
                continue
            d = loud - (ctx.anchor + offset)
            if abs(d) < LEVEL_FINDING_LU:
                continue
            code = "too_loud" if d > 0 else "too_quiet"
            why = ("unknown role, so no fader move is suggested" if unit.offset_lu is None else
                   "mixed by hand: no move" if not unit.movable else
                   "within what a fader move would be worth" if ctx.amount > 0 else "findings only (amount 0)")
            msg = (f"{unit.name} sits {abs(d):.1f} LU {'above' if d > 0 else 'below'} its target "
                   f"({ctx.anchor + offset:.1f} LUFS: the anchor {offset:+.1f} LU for a {label(unit.role)}); {why}")
            finding = Finding(code, _severity(abs(d), 6.0, 9.0), msg,
                              {"integrated_lufs": _r(loud, 2), "target_lufs": _r(ctx.anchor + offset, 2),
                               "ideal_gain_db": _r(-d, 2), "anchor_lufs": _r(ctx.anchor, 2)})
            for t in tracks:
                out[t].append(finding)
    # Masking conflicts that stay costly (e.g. with a neutral or manual masker).
    total, balanced, shifts = obj.masking(decisions, ctx.anchor, [])
    cut_pairs = {(mv.finding.evidence.get("masked"), mv.finding.evidence.get("masker")) for mv in moves
                 if mv.code == "masking"}
    for u, v in obj.relevant_pairs():
        pts = obj.pair_cost(u, v, balanced, shifts)
        if pts < MASKING_FINDING_POINTS or (m.groups[u][0], m.groups[v][0]) in cut_pairs:
            continue
        score = obj.pair_score(u, v, balanced, shifts)
        peak = int(np.argmax(score))
        lo, hi = max(0, peak - 1), min(len(score), peak + 2)
        o, f = m.pair_overlap(u, v, decisions, lo, hi)
        masked, masker = m.groups[u][0], m.groups[v][0]
        msg = (f"{masked} is masked by {masker} in {band_range_label(lo, hi)} (overlap {o:.0f} dB, "
               f"{f * 100:.0f}% of the time); no cut proposed: "
               + ("the masker cannot be moved (unknown role or mixed by hand)"
                  if not any(m.stems[k].eq_movable for k in m.groups[v][1])
                  else "a cut would not gain more than it costs"))
        finding = Finding("masking", "info", msg, {"masked": masked, "masker": masker, "band_low_hz": _r(BAND_LOW_HZ[lo], 1),
                                                    "band_high_hz": _r(BAND_HIGH_HZ[hi - 1], 1), "overlap_db": _r(o, 2),
                                                    "time_fraction": _r(f, 3), "points": _r(pts, 2)})
        out[m.stems[m.groups[u][1][0]].name].append(finding)
    # Low-end junk without a filter; dynamics beyond the role without a compressor.
    from .model import TrackDecision
    for k, s in enumerate(m.stems):
        d = decisions.get(s.name, TrackDecision())
        if not any(b.kind == "highpass" for b in d.eq):
            floor = obj.floors[k]
            share, pts = obj.low_end(k, d) if s.profile.highpass else (None, 0.0)
            rumble = s.view.analysis.spectrum.rumble_db
            dc = s.view.analysis.faults.dc_offset_dbfs
            junk = ((share is not None and pts >= 1.0) or (rumble is not None and rumble > -20.0)
                    or (dc is not None and dc > -60.0))
            if junk:
                why = ("unknown role, so no filter is suggested" if s.role == NEUTRAL else
                       "mixed by hand" if s.view.manual else "a high-pass would not gain more than it costs")
                msg = (f"{s.name} has low-frequency content below its music"
                       + (f" ({share:.0f} dB of its energy an octave under its lowest sustained partial, {floor:.0f} Hz)"
                          if share is not None and floor else "")
                       + (f", {rumble:.0f} dB below 30 Hz" if rumble is not None and rumble > -20 else "")
                       + (f", a DC offset of {dc:.0f} dBFS" if dc is not None and dc > -60 else "") + f"; {why}")
                out[s.name].append(Finding("low_rumble", "warning" if (rumble or -99) > -20 else "info", msg,
                                           {"low_end_share_db": share, "lowest_sustained_hz": floor,
                                            "rumble_db": rumble, "dc_offset_dbfs": dc}))
        if d.comp is None and s.profile.spread_max_lu is not None:
            sp, pts = obj.dynamics(k, d)
            if pts > 0:
                out[s.name].append(Finding("dynamics", "info",
                                           f"{s.name}: within-section dynamics {sp:.1f} LU against "
                                           f"{s.profile.spread_max_lu:.0f} LU for a {label(s.role)}; a compressor "
                                           "would not gain more than it costs", {"spread_lu": _r(sp, 2)}))
    # Stereo findings for tracks whose move was not made (manual).
    for k, s in enumerate(m.stems):
        if s.view.manual:
            decision = stereo_decision(s.view)
            if decision is not None:
                out[s.name].append(decision[2])
    return out


# --- per track records ----------------------------------------------------------------------------------------

def _points(sections: tuple[SectionGain, ...]) -> tuple[tuple[float, float], ...]:
    points: list[tuple[float, float]] = []
    for g in sorted(sections, key=lambda s: s.start_s):
        seg = [(max(0.0, g.start_s - SECTION_RAMP_S), 0.0), (g.start_s + SECTION_RAMP_S, g.gain_db),
               (g.end_s - SECTION_RAMP_S, g.gain_db), (g.end_s + SECTION_RAMP_S, 0.0)]
        if points and points[-1][0] >= seg[0][0] - 1e-6:
            # Back-to-back sections: step straight from one level to the next.
            points = points[:-1] + [(g.start_s - SECTION_RAMP_S, points[-2][1])] + seg[1:] \
                if points[-2][1] != g.gain_db else points[:-2] + seg[2:]
        else:
            points.extend(seg)
    return tuple((round(t, 3), v) for t, v in points)


def _tracks(ctx: _Context, moves: list[Move], findings: dict[str, list[Finding]], groups: list[Group],
            settings: PlanSettings) -> list[TrackPlan]:
    group_of = {name: g.name for g in groups for name in g.members}
    decisions = ctx.opt.decisions(ctx.state)
    out = []
    for v in ctx.views:
        mine = [mv for mv in moves if v.name in mv.tracks]
        records, changes, automation = [], [], []
        bands: list[tuple[EqBand, str, str]] = []
        for index, mv in enumerate(mine):
            sid = f"{v.name}/{mv.code}/{index}"
            records.append(SuggestionRecord(sid, mv.code, mv.finding.message, True, mv.confidence,
                                            tuple(e.text for e in mv.effects), mv.gain,
                                            group_of.get(v.name) if len(mv.tracks) > 1 else None))
            extra = {"group": group_of[v.name]} if len(mv.tracks) > 1 and v.name in group_of else {}
            if mv.kind == "fader":
                prior = next((i for i, c in enumerate(changes) if c.param == "volume_db"), None)
                if prior is not None:
                    # A kit part's trim on top of its group's move: one fader value, the sum, carried by
                    # the first move's suggestion (the second is named in ``combined``).
                    c = changes[prior]
                    more = dict(c.extra)
                    more["combined"] = list(more.get("combined", [])) + [sid]
                    changes[prior] = replace(c, value=round(c.value + mv.fader_db, 2), extra=more)
                else:
                    changes.append(Change("track", "volume_db", mv.fader_db, "dB", mv.code, sid, extra))
            elif mv.kind == "polarity":
                changes.append(Change("track", "polarity", 1, "flag", mv.code, sid, {"channel": mv.polarity}))
            elif mv.kind == "width":
                changes.append(Change("track", "width", mv.width, "", mv.code, sid))
            elif mv.kind == "pan":
                changes.append(Change("track", "pan", mv.pan, "", mv.code, sid))
            elif mv.kind in ("eq", "highpass"):
                count = 1
                if mv.kind == "highpass":
                    fx = ctx.state.tracks[ctx.model.index[v.name]]
                    count = sum(1 for b, w in zip(fx.eq, fx.why) if b == mv.band and w == "low_rumble")
                bands.extend([(mv.band, mv.code, sid)] * max(count, 1))
            elif mv.kind == "comp":
                c = mv.comp
                for param, value, unit in (("threshold_db", c.threshold_db, "dB"), ("ratio", c.ratio, ":1"),
                                           ("attack_ms", c.attack_ms, "ms"), ("release_ms", c.release_ms, "ms"),
                                           ("makeup_db", c.makeup_db, "dB")):
                    changes.append(Change("comp", param, value, unit, mv.code, sid))
            elif mv.kind == "automation":
                automation.append(Automation("volume_db", _points(mv.sections), mv.code, sid))
        if len(bands) > MAX_EQ_BANDS:
            raise AssertionError(f"{v.name}: {len(bands)} EQ bands planned, ReaEQ has {MAX_EQ_BANDS}")
        bands.sort(key=lambda b: (_BAND_ORDER[b[0].kind], b[0].freq_hz, b[0].gain_db))
        for n, (band, code, sid) in enumerate(bands, start=1):
            gain = 0.0 if band.kind in ("highpass", "lowpass") else band.gain_db
            for param, value, unit in ((f"band{n}_type", band.kind, ""), (f"band{n}_freq_hz", band.freq_hz, "Hz"),
                                       (f"band{n}_gain_db", gain, "dB"), (f"band{n}_q", band.q, "")):
                changes.append(Change("eq", param, value, unit, code, sid))
        used = {f.message for mv in mine for f in (mv.finding,)}
        for f in findings.get(v.name, []):
            if f.message not in used and f.code not in ("silent", "unreadable") and not v.manual:
                records.append(SuggestionRecord(f"{v.name}/{f.code}/{len(records)}", f.code, f.message, False,
                                                0.3, ()))
                used.add(f.message)
        if v.error is not None:
            status = "error"
        elif v.manual:
            status = "manual"
        elif changes or automation:
            status = "ai"
        else:
            status = "untouched"
        seen, own = set(), []
        for f in findings.get(v.name, []):
            if f.message not in seen:
                seen.add(f.message)
                own.append(f)
        target = predicted = None
        k = ctx.model.index.get(v.name)
        if k is not None and ctx.anchor is not None:
            unit = ctx.obj.units[ctx.opt.unit_of_stem[k]]
            # On the stem's own scale (as the analysis reports it): a mono stem plays 3 dB above it.
            own_db = 10.0 * math.log10(ctx.model.stems[k].play)
            if unit.offset_lu is not None and len(unit.members) == 1:
                target = round(ctx.anchor + unit.offset_lu - own_db, 2)
            from .model import TrackDecision
            p = ctx.model.stem_state(k, decisions.get(v.name, TrackDecision())).integrated_lufs
            predicted = round(p - own_db, 2) if p is not None else None
        integrated = v.analysis.loudness.integrated_lufs if v.analysis is not None else None
        out.append(TrackPlan(v.name, v.role, v.role_source, status, tuple(own), tuple(changes), tuple(automation),
                             tuple(records), group_of.get(v.name), v.role_probability, target, predicted,
                             round(integrated, 2) if integrated is not None else None))
    return out


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


# --- total dB: one definition, used by the docs' closed-loop figures and the benchmark ------------------------

def move_db(move: Move) -> float:
    """How much processing a move is, in dB, for the "total dB" figure (docs/suggestions.md).

    Fader: |dB| per track it moves.  EQ band: |gain dB| (a high-pass counts 3 dB per section, its
    -3 dB point).  Automation: the largest |section gain| per track.  Compressor: its predicted mean
    gain reduction.  Width: |20 log10 width| (mono counts 6 dB).  Polarity and pan: 0 (a fix of
    the recording or the delivery, not processing).
    """
    n = len(move.tracks)
    if move.kind == "fader":
        return abs(move.fader_db or 0.0) * n
    if move.kind == "automation":
        return max((abs(g.gain_db) for g in move.sections), default=0.0) * n
    if move.kind == "eq":
        return abs(move.band.gain_db)
    if move.kind == "highpass":
        return 3.0 * int(move.finding.evidence.get("slope_db_per_octave", 12) // 12)
    if move.kind == "comp":
        return float(move.finding.evidence.get("mean_gain_reduction_db", 0.0))
    if move.kind == "width":
        return min(6.0, abs(20.0 * math.log10(max(move.width or 0.0, 0.5))))
    return 0.0


def plan_total_db(plan: MixPlan) -> float:
    return round(sum(move_db(m) for m in plan.moves), 2)


# --- JSON ---------------------------------------------------------------------------------------------------

def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity, "message": f.message, "evidence": f.evidence}


def _terms_dict(t: Terms) -> dict[str, float]:
    return {k: float(v) for k, v in t.as_dict().items()}


def objective_weights() -> dict[str, Any]:
    """The objective's weights, as recorded in every plan (docs/suggestions.md explains each)."""
    return {"level_per_lu2": W_LEVEL, "section_share": SECTION_SHARE, "masking_per_db": W_MASKING,
            "masking_onset_db": MASKING_ONSET_DB, "kick_bass_buildup_db": MUTUAL_BUILDUP_DB,
            "low_end_per_db": W_RUMBLE, "low_end_allowed_db": RUMBLE_ALLOWED_DB,
            "low_end_allowed_bass_db": RUMBLE_ALLOWED_BASS_DB, "dynamics_per_lu2": W_DYNAMICS,
            "reference_per_db2": W_REFERENCE, "reference_tolerance_db": REFERENCE_TOLERANCE_DB,
            "headroom_per_db2": W_HEADROOM, "headroom_limit_dbtp": HOT_DBTP,
            "cost_per_db": dict(sorted(COST_PER_DB.items())), "cost_per_move": dict(sorted(COST_PER_MOVE.items()))}


def plan_dict(plan: MixPlan, with_id: bool = True) -> dict[str, Any]:
    """The plan as the JSON document of ``mixbridge plan --json`` (schema version 2)."""
    obj = plan.objective
    doc = {
        "schema_version": SCHEMA_VERSION,
        "id": plan.id if with_id else "",
        "analysis_id": plan.analysis_id,
        "settings": plan.settings.as_dict(),
        "anchor": None if plan.anchor is None else
        {"kind": plan.anchor.kind, "stem": plan.anchor.stem, "lufs": round(plan.anchor.lufs, 2)},
        "groups": [{"name": g.name, "members": list(g.members), "source": g.source, "evidence": g.evidence}
                   for g in plan.groups],
        "tracks": [
            {"name": t.name, "role": t.role, "role_source": t.role_source, "role_probability": t.role_probability,
             "group": t.group, "status": t.status, "integrated_lufs": t.integrated_lufs,
             "target_lufs": t.target_lufs, "predicted_lufs": t.predicted_lufs,
             "findings": [_finding_dict(f) for f in t.findings],
             "changes": [dict({"target": c.target, "param": c.param, "value": c.value, "unit": c.unit,
                               "reason": c.reason, "suggestion": c.suggestion}, **c.extra) for c in t.changes],
             "automation": [{"param": a.param, "points": [list(p) for p in a.points], "reason": a.reason,
                             "suggestion": a.suggestion} for a in t.automation],
             "suggestions": [s.as_dict() for s in t.suggestions]}
            for t in plan.tracks],
        "mix": {"findings": [_finding_dict(f) for f in plan.mix_findings],
                "estimated_ai_delta_lu": plan.estimated_ai_delta_lu,
                "total_db": plan_total_db(plan), "moves": len(plan.moves)},
        "objective": None if obj is None else {
            "weights": objective_weights(), "before": _terms_dict(obj.before), "after": _terms_dict(obj.after),
            "evaluations": obj.evaluations},
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
    doc = plan_dict(plan, with_id=False)
    doc["objective"] = None if doc["objective"] is None else {k: v for k, v in doc["objective"].items()
                                                               if k != "evaluations"}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:16]


def plan_json(plan: MixPlan) -> str:
    """Stable, human-diffable bytes: the same plan always serialises identically."""
    return json.dumps(plan_dict(plan), indent=1, sort_keys=False, allow_nan=False) + "\n"
