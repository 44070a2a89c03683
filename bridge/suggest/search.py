"""The optimiser: greedy best-improvement over candidate moves, then coordinate refinement.  Pure.

No black box: every iteration evaluates a short list of candidate moves, each built the way an
engineer would reach for it (a fader to the target, automation that puts a part back in its place
section by section, a cut on the masker where the protected part's energy lives and the conflict
peaks, a high-pass below the lowest sustained partial, a compressor from the EQ'd signal's level
distribution, a broad move towards a reference), and keeps the one that lowers the objective
most.  When nothing lowers it any more, each continuous value is refined by a golden-section
search and each move is tested for removal; the anchor level is then re-chosen on the result and
the search repeats until the anchor stays put.  The result is therefore a point where no single
move pays for itself: re-planning it finds nothing to do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..analyze.spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ, BAND_LOW_HZ, N_BANDS
from .model import MAKEUP_MAX_DB, MAX_EQ_BANDS, CompSettings, EqBand, SectionGain, TrackDecision
from .objective import (COST_PER_DB, COST_PER_MOVE, DYNAMICS_MARGIN_LU, HOT_DBTP, SECTION_SHARE, W_LEVEL, Objective,
                        Terms, nice_hz)
from .predict import COMP_DETECTOR_CREST_DB, _db

#: The largest fader move, and the largest section move, dB.
MAX_FADER_DB = 12.0
MAX_SECTION_DB = 10.0
#: Compressor candidates: threshold at these percentiles of what it hears, these ratios.
COMP_THRESHOLD_PERCENTILES = (50, 70)
COMP_RATIOS = (2.0, 3.0, 4.0, 6.0)
#: ... and, for a part none of those bring under its limit or an uneven one (levelling: the quieter
#: phrases sit under the threshold less, so the swings shrink from both sides), also these.
LEVELLING_PERCENTILES = (10, 20, 30)
#: Sections within this many LU of their place get no automation (a section 4 LU off is taste).
SECTION_TOLERANCE_LU = 4.0
#: Masking cuts tried (dB) and their limits; a cut lives within an octave-ish region around the
#: conflict's peak, Q between these.
CUT_STEPS_DB = (-2.0, -4.0, -6.0, -9.0)
MAX_CUT_DB = -12.0
Q_RANGE = (0.7, 3.0)
#: Conflicts considered per iteration (the costliest pairs first).
MAX_PAIRS_PER_ITERATION = 12
#: A high-pass sits this factor below the lowest sustained partial (12 dB/oct: the partial loses
#: under 1 dB).
HPF_BELOW = 1.8
#: The lead vocal's weight in choosing the anchor (the balance is built around it).
ANCHOR_LEAD_WEIGHT = 3.0
#: A single high-pass section must leave under this share of a move's cost of junk.
HPF_MARGIN = 0.5
#: A masking cut may take at most this much of the masker's own loudness (LU).  A conflict that
#: needs more is structural (the masker lives where the protected part does): a finding, not a cut -
#: in every pass alike, so a plan never stacks cuts on it.
MAX_MASKING_LOSS_LU = 1.5
#: Safety bounds of the loop.
MAX_ITERATIONS = 40
MAX_ANCHOR_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class UnitMove:
    """A level unit's fader and section automation (applied to every member)."""

    fader_db: float = 0.0
    sections: tuple[SectionGain, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackFx:
    """A track's own processing, with why each EQ band is there (``masking:u:v``, ``low_rumble``,
    ``reference:<band>``)."""

    eq: tuple[EqBand, ...] = ()
    why: tuple[str, ...] = ()
    comp: CompSettings | None = None
    polarity: str | None = None
    width: float | None = None
    comp_percentile: float | None = None  # where the compressor's threshold sits in what it hears
    trim_db: float = 0.0  # a part's own fader move inside its group (kit balance), on top of the group's
    pan: float | None = None  # REAPER pan (-1..1) for one half of a split stereo pair


@dataclass(frozen=True)
class State:
    units: tuple[UnitMove, ...]
    tracks: tuple[TrackFx, ...]

    def with_unit(self, u: int, move: UnitMove) -> "State":
        units = list(self.units)
        units[u] = move
        return State(tuple(units), self.tracks)

    def with_track(self, k: int, fx: TrackFx) -> "State":
        tracks = list(self.tracks)
        tracks[k] = fx
        return State(self.units, tuple(tracks))


def conflict_regions(score: np.ndarray, share: float = 0.25, limit: int = 3) -> list[tuple[int, int]]:
    """The separate band regions of one conflict, costliest first: around each local peak scoring at
    least ``share`` of the highest, the neighbours scoring at least half that peak."""
    top = float(score.max()) if len(score) else 0.0
    if top <= 0.0:
        return []
    out: list[tuple[float, int, int]] = []
    taken = np.zeros(len(score), dtype=bool)
    for peak in np.argsort(-score, kind="stable"):
        if score[peak] < share * top or taken[peak] or len(out) >= limit:
            break
        lo, hi = int(peak), int(peak) + 1
        while lo > 0 and not taken[lo - 1] and score[lo - 1] >= 0.5 * score[peak]:
            lo -= 1
        while hi < len(score) and not taken[hi] and score[hi] >= 0.5 * score[peak]:
            hi += 1
        taken[lo:hi] = True
        out.append((float(score[lo:hi].sum()), lo, hi))
    return [(lo, hi) for _, lo, hi in sorted(out, key=lambda r: -r[0])]


class Optimiser:
    """Runs the search for one objective.  ``fixed`` holds per-track stereo fixes decided upfront."""

    def __init__(self, objective: Objective, fixed: dict[int, TrackFx] | None = None,
                 max_fader_db: float = None):
        self.max_fader_db = MAX_FADER_DB if max_fader_db is None else float(max_fader_db)
        self.obj = objective
        self.model = objective.model
        self.pairs = objective.relevant_pairs()
        self.unit_of_stem = {}
        for u, unit in enumerate(objective.units):
            for k in unit.members:
                self.unit_of_stem[k] = u
        tracks = [TrackFx() for _ in self.model.stems]
        for k, fx in (fixed or {}).items():
            tracks[k] = fx
        self.start = State(tuple(UnitMove() for _ in objective.units), tuple(tracks))
        self.evaluations = 0
        #: Masking conflicts found structural (see MAX_MASKING_LOSS_LU): (masker group, frequency);
        #: no cut is offered on that masker within half an octave of it.
        self.structural: set[tuple[int, float]] = set()

    # --- state -> decisions -------------------------------------------------------------------------
    def decisions(self, state: State) -> dict[str, TrackDecision]:
        out = {}
        for k, s in enumerate(self.model.stems):
            um = state.units[self.unit_of_stem[k]]
            fx = state.tracks[k]
            d = TrackDecision(round(um.fader_db + fx.trim_db, 2), fx.eq, fx.comp, um.sections, fx.polarity, fx.width,
                              fx.pan)
            if not d.empty:
                out[s.name] = d
        return out

    def units_state(self, state: State) -> dict[int, tuple[float, tuple[SectionGain, ...]]]:
        return {u: (m.fader_db, m.sections) for u, m in enumerate(state.units) if m.fader_db or m.sections}

    def terms(self, state: State, anchor: float | None) -> Terms:
        self.evaluations += 1
        return self.obj.evaluate(self.decisions(state), anchor, self.units_state(state), self.pairs)

    def cost(self, state: State, anchor: float | None) -> float:
        return self.terms(state, anchor).total

    # --- the anchor -------------------------------------------------------------------------------------
    def choose_anchor(self, state: State) -> float | None:
        """The level that puts the balance in place with the least processing.

        For each candidate anchor ``A`` every movable judged unit either stays (``W_LEVEL d^2``) or
        moves to its target (the fader's fixed cost plus its cost per dB); the lead vocal, which the
        balance is built around, counts :data:`ANCHOR_LEAD_WEIGHT` times.  The anchor minimises the
        sum over units, on the state's predicted levels (so re-planning a followed plan finds the
        same anchor); a steady part enters with its usual (median) section level.
        """
        decisions = self.decisions(state)
        rows = []
        for unit in self.obj.units:
            # Parts the plan may not move (unknown role, mixed by hand) do not set the anchor: the
            # balance is built from the parts it can place.
            if unit.offset_lu is None or not unit.movable:
                continue
            loud = self.obj.unit_loudness(unit, decisions)
            if loud is None:
                continue
            weight = ANCHOR_LEAD_WEIGHT if unit.role == "lead_vocal" else 1.0
            if unit.steady and unit.sections:
                # A steady part's usual level: its upper-median section against the band, so a part
                # dipping in half the song does not drag the balance down with it; a part whose
                # sections disagree by more than the tolerance lets the band set the anchor.
                d, es, _, _ = self.obj.unit_level_terms(unit, decisions, 0.0, None)
                rel = np.sort(np.array(es) - d)
                loud = loud + float(rel[len(rel) // 2])
                if rel[-1] - rel[0] > SECTION_TOLERANCE_LU:
                    weight = min(weight, 0.5)
            rows.append((loud - unit.offset_lu, weight))
        if not rows:
            return None
        base = np.array([r[0] for r in rows])
        weight = np.array([r[1] for r in rows])
        grid = np.arange(math.floor(base.min() - 3.0), math.ceil(base.max() + 3.0) + 1e-9, 0.02)
        d = base[None, :] - grid[:, None]
        stay = W_LEVEL * d * d
        move = COST_PER_MOVE["fader"] + COST_PER_DB["fader"] * np.abs(d)
        cost = (np.minimum(stay, move) * weight[None, :]).sum(axis=1)
        cost = cost + 1e-6 * ((base[None, :] - grid[:, None]) ** 2).sum(axis=1)
        return float(grid[int(np.argmin(cost))])

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self) -> tuple[State, float | None]:
        state = self.start
        anchor = self.choose_anchor(state)
        for _ in range(MAX_ANCHOR_ROUNDS):
            state = self.greedy(state, anchor)
            state = self.refine(state, anchor)
            state = self.greedy(state, anchor)
            new_anchor = self.choose_anchor(state)
            if anchor is None or new_anchor is None or abs(new_anchor - anchor) < 0.05:
                anchor = new_anchor if new_anchor is not None else anchor
                break
            anchor = new_anchor
        state = self.rounded(state)
        return state, anchor

    def greedy(self, state: State, anchor: float | None) -> State:
        current = self.cost(state, anchor)
        for _ in range(MAX_ITERATIONS):
            best, best_cost = None, current - 1e-6
            for candidate in self.candidates(state, anchor):
                c = self.cost(candidate, anchor)
                if c < best_cost - 1e-9:
                    best, best_cost = candidate, c
            if best is None:
                break
            state, current = best, best_cost
        return state

    # --- candidates -------------------------------------------------------------------------------------
    def candidates(self, state: State, anchor: float | None):
        yield from self.fader_candidates(state, anchor)
        yield from self.part_candidates(state)
        yield from self.automation_candidates(state, anchor)
        yield from self.masking_candidates(state, anchor)
        yield from self.highpass_candidates(state)
        yield from self.comp_candidates(state)
        yield from self.reference_candidates(state)

    def _headroom_cap(self, unit_index: int, state: State, fader: float) -> float:
        """Largest fader the unit can take without a member's predicted true peak passing the limit."""
        cap = self.max_fader_db
        decisions = self.decisions(state)
        for k in self.obj.units[unit_index].members:
            s = self.model.stems[k]
            d = decisions.get(s.name, TrackDecision())
            tp, _ = self.obj.peak(k, replace(d, fader_db=0.0))
            if tp is not None:
                cap = min(cap, HOT_DBTP - 0.5 - tp)
        return min(fader, cap)

    def fader_candidates(self, state: State, anchor: float | None):
        if anchor is None:
            return
        decisions = self.decisions(state)
        played = self.model.played_k(decisions)
        for u, unit in enumerate(self.obj.units):
            if not unit.movable:
                continue
            d, es, _, _ = self.obj.unit_level_terms(unit, decisions, anchor, played)
            current = state.units[u]
            hot = any(self.obj.peak(k, decisions.get(self.model.stems[k].name, TrackDecision()))[1] > 0
                      for k in unit.members)
            targets = []
            if d is not None and (abs(d) > 0.3 or current.fader_db):
                ideal = current.fader_db - d
                if es:
                    # A steady part: the fader that best fits the whole song and its sections together.
                    w = np.array(self.obj.units[u].section_weight)
                    ideal = current.fader_db - ((1 - SECTION_SHARE) * d + SECTION_SHARE * float(w @ np.array(es)))
                targets.append(ideal)
            if hot:
                targets.append(current.fader_db - 6.0)  # capped to the headroom limit below
            for target in targets:
                value = float(np.clip(target, -self.max_fader_db, self.max_fader_db))
                value = self._headroom_cap(u, state, value)
                value = round(value, 1)
                if abs(value - current.fader_db) >= 0.1:
                    yield state.with_unit(u, replace(current, fader_db=0.0 if abs(value) < 0.1 else value))

    def part_candidates(self, state: State):
        """A role's mics inside a kit brought back to their place against the rest of it."""
        from .objective import PART_BALANCE_TOLERANCE_LU
        decisions = self.decisions(state)
        for part in self.obj.parts:
            dr = self.obj.part_deviation(part, decisions)
            moves = []
            if dr is not None and abs(dr) > PART_BALANCE_TOLERANCE_LU:
                moves.append((part.members, -dr))
            dm = self.obj.mic_deviation(part, decisions)
            if dm is not None and abs(dm) > PART_BALANCE_TOLERANCE_LU:
                # The bottom mic against the top: raise one or lower the other.
                moves.extend([(part.tops, dm), (part.bottoms, -dm)])
            for members, delta in moves:
                candidate = state
                for k in members:
                    trim = round(float(np.clip(state.tracks[k].trim_db + delta, -self.max_fader_db,
                                               self.max_fader_db)), 1)
                    candidate = candidate.with_track(k, replace(candidate.tracks[k], trim_db=trim))
                yield candidate

    def automation_candidates(self, state: State, anchor: float | None):
        if anchor is None:
            return
        decisions = self.decisions(state)
        played = self.model.played_k(decisions)
        song = self.model.song
        for u, unit in enumerate(self.obj.units):
            if not unit.movable or not unit.steady:
                continue
            d, es, _, _ = self.obj.unit_level_terms(unit, decisions, anchor, played)
            if not es:
                continue
            current = {(g.name, g.start_s, g.end_s): g.gain_db for g in state.units[u].sections}
            # Sections beyond the tolerance go back to their place; a second candidate fixes only the
            # clearly departed ones (twice the tolerance), leaving marginal sections alone.
            for tolerance in (SECTION_TOLERANCE_LU, 2.0 * SECTION_TOLERANCE_LU):
                gains = {}
                for k, e in zip(unit.sections, es):
                    key = song.sections[k]
                    old = current.get(key, 0.0)
                    new = old - e if abs(e) >= tolerance else old
                    gains[key] = float(np.clip(round(new, 1), -MAX_SECTION_DB, MAX_SECTION_DB))
                chosen = {key for key, g in gains.items() if abs(g - current.get(key, 0.0)) >= 0.05}
                candidate = self._settle_sections(state, u, unit, gains, chosen, anchor)
                if candidate is not None and candidate.units[u].sections != state.units[u].sections:
                    yield candidate

    def _settle_sections(self, state: State, u: int, unit, gains: dict, chosen: set, anchor: float,
                         rounds: int = 3) -> State | None:
        """The automation with the ``chosen`` sections moved until they sit at their place.

        Raising a section moves the part's own average (and so every section's deviation); a few
        rounds of "move each chosen section by what it still misses" settle it.
        """
        if not chosen:
            return None
        song = self.model.song

        def build(g: dict) -> State:
            sections = tuple(SectionGain(n, a, b, v) for (n, a, b), v in sorted(g.items(), key=lambda i: i[0][1])
                             if abs(v) >= 0.1)
            return state.with_unit(u, replace(state.units[u], sections=sections))
        candidate = build(gains)
        for _ in range(rounds):
            decisions = self.decisions(candidate)
            _, es, _, _ = self.obj.unit_level_terms(unit, decisions, anchor, None)
            worst = 0.0
            for k, e in zip(unit.sections, es):
                key = song.sections[k]
                if key in chosen:
                    gains[key] = float(np.clip(round(gains[key] - e, 1), -MAX_SECTION_DB, MAX_SECTION_DB))
                    worst = max(worst, abs(e))
            candidate = build(gains)
            if worst < 0.2:
                break
        return candidate

    def _free_slots(self, fx: TrackFx) -> int:
        return MAX_EQ_BANDS - len(fx.eq)

    def masking_candidates(self, state: State, anchor: float | None):
        decisions = self.decisions(state)
        _, balanced, shifts = self.obj.masking(decisions, anchor, [])
        scored = []
        for u, v in self.pairs:
            c = self.obj.pair_cost(u, v, balanced, shifts)
            if c > 0.3:
                scored.append((c, u, v))
        scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        for c, u, v in scored[:MAX_PAIRS_PER_ITERATION]:
            score = self.obj.pair_score(u, v, balanced, shifts)
            mutual = self.obj._pair_w[(u, v)][2]
            if mutual.any():
                # Kick and bass: cut the masker where the protected part's own fundamental lives
                # (its most important band of the build-up), so each keeps its own bands.
                _, buildup = self.obj.pair_excess(u, v, balanced, shifts)
                own = np.where(mutual, self.obj.importance[u] * buildup, 0.0)
                if own.max() > 0:
                    b = int(np.argmax(own))
                    yield from self._cut(state, decisions, u, v, b, b + 1, BAND_CENTERS_HZ[b], 2.0)
            for lo, hi in conflict_regions(score):
                weights = score[lo:hi]
                centre = float(np.exp(np.sum(weights * np.log(BAND_CENTERS_HZ[lo:hi])) / max(weights.sum(), 1e-30)))
                width_hz = float(BAND_HIGH_HZ[hi - 1] - BAND_LOW_HZ[lo])
                q = float(np.clip(centre / max(width_hz, 1.0), *Q_RANGE))
                yield from self._cut(state, decisions, u, v, lo, hi, centre, q)

    def _cut(self, state: State, decisions, u: int, v: int, lo: int, hi: int, centre: float, q: float):
        """Cuts on the masker group's member that carries most of bands ``lo..hi-1`` (deepening a cut
        already within half an octave rather than stacking another)."""
        members = [k for k in self.model.groups[v][1] if self.model.stems[k].eq_movable]
        if not members:
            return
        energy = {k: float(self.model.stem_state(k, decisions.get(self.model.stems[k].name, TrackDecision()))
                           .E[:, lo:hi].mean()) for k in members}
        k = max(members, key=lambda m: (energy[m], -m))
        fx = state.tracks[k]
        tag = f"masking:{u}:{v}"
        if any(sv == v and abs(math.log2(sf / centre)) < 0.5 for sv, sf in self.structural):
            return
        near = [i for i, b in enumerate(fx.eq) if b.kind == "peak" and b.gain_db < 0
                and abs(math.log2(b.freq_hz / centre)) < 0.5]
        freq = nice_hz(centre)
        for step in CUT_STEPS_DB:
            if near:
                i = near[0]
                old = fx.eq[i]
                gain = max(MAX_CUT_DB, old.gain_db + step / 2.0)
                band = EqBand("peak", old.freq_hz, round(gain, 1), old.q)
                eq = fx.eq[:i] + (band,) + fx.eq[i + 1:]
                candidate = self.retrack(state, k, replace(fx, eq=eq))
                without = fx.eq[:i] + fx.eq[i + 1:]
            elif self._free_slots(fx) > 0:
                band = EqBand("peak", freq, step, round(q, 2))
                candidate = self.retrack(state, k, replace(fx, eq=fx.eq + (band,), why=fx.why + (tag,)))
                without = fx.eq
            else:
                return
            if self.cut_loss(k, decisions, without, candidate.tracks[k].eq) > MAX_MASKING_LOSS_LU:
                return
            yield candidate

    def retrack(self, state: State, k: int, fx: TrackFx) -> State:
        """``state`` with track ``k``'s processing set to ``fx``; a compressor follows a new EQ (its
        threshold stays at the same place in what it hears, its make-up keeps the loudness)."""
        if fx.comp is not None and fx.comp_percentile is not None and fx.eq != state.tracks[k].eq:
            d = self.decisions(state).get(self.model.stems[k].name, TrackDecision())
            comp = self._comp_for(k, replace(d, eq=fx.eq), fx.comp_percentile, fx.comp.ratio)
            if comp is not None:
                fx = replace(fx, comp=comp)
        return state.with_track(k, fx)

    def _comp_for(self, k: int, d: TrackDecision, percentile: float, ratio: float) -> CompSettings | None:
        s = self.model.stems[k]
        eq_gain = self.model.stem_state(k, replace(d, comp=None)).eq_gain
        level = _db((s.E * eq_gain[None, :]).sum(axis=1)[s.active]) + s.detector_crest_db
        if len(level) < 10:
            return None
        threshold = round(float(np.percentile(level, percentile)) * 2) / 2
        loud = self.model.stem_state(k, replace(d, comp=None)).integrated_lufs
        probe = CompSettings(threshold, ratio, s.profile.attack_ms, s.profile.release_ms, 0.0)
        squashed = self.model.stem_state(k, replace(d, comp=probe)).integrated_lufs
        makeup = 0.0 if loud is None or squashed is None else min(MAKEUP_MAX_DB, round((loud - squashed) * 2) / 2)
        return replace(probe, makeup_db=max(0.0, makeup))

    def cut_loss(self, k: int, decisions, eq_before: tuple, eq_after: tuple) -> float:
        """How much of a part's own loudness (LU) an EQ change takes."""
        d = decisions.get(self.model.stems[k].name, TrackDecision())
        a = self.model.stem_state(k, replace(d, eq=eq_before)).integrated_lufs
        b = self.model.stem_state(k, replace(d, eq=eq_after)).integrated_lufs
        return 0.0 if a is None or b is None else a - b

    def highpass_candidates(self, state: State):
        decisions = self.decisions(state)
        for k, s in enumerate(self.model.stems):
            if not s.eq_movable or not s.profile.highpass:
                continue
            d = decisions.get(s.name, TrackDecision())
            _, pts = self.obj.low_end(k, d)
            if pts <= 0:
                continue
            floor = self.obj.floors[k]
            if floor is None:
                continue
            corner = max(20.0, nice_hz(floor / HPF_BELOW))
            fx = state.tracks[k]
            have = sum(1 for b in fx.eq if b.kind == "highpass")
            if have >= 2 or self._free_slots(fx) < 1:
                continue
            band = EqBand("highpass", corner, 0.0, 0.71)
            single = self.retrack(state, k, replace(fx, eq=fx.eq + (band,), why=fx.why + ("low_rumble",)))
            # A 12 dB/oct filter is offered only when it clears the junk with margin (what is left
            # costs under half a move); otherwise the filter is 24 dB/oct, so that re-planning the
            # result finds nothing that another filter would pay for.
            left = self.obj.low_end(k, self.decisions(single).get(s.name, TrackDecision()))[1]
            if left <= HPF_MARGIN * COST_PER_MOVE["highpass"] or have == 1 or self._free_slots(fx) < 2:
                yield single
            if have == 0 and self._free_slots(fx) >= 2:
                yield self.retrack(state, k, replace(fx, eq=fx.eq + (band, band), why=fx.why + ("low_rumble", "low_rumble")))

    def comp_candidates(self, state: State):
        decisions = self.decisions(state)
        for k, s in enumerate(self.model.stems):
            if not s.movable or s.profile.spread_max_lu is None:
                continue
            d = decisions.get(s.name, TrackDecision())
            _, pts = self.obj.dynamics(k, d)
            if pts <= 0 and state.tracks[k].comp is None:
                continue
            state_k = self.model.stem_state(k, replace(d, comp=None))
            pre = (s.E * state_k.eq_gain[None, :]).sum(axis=1)
            level = _db(pre[s.active]) + s.detector_crest_db
            if len(level) < 10:
                continue
            # Threshold at a percentile of what the compressor hears (after the AI EQ, before the
            # fader); make-up restores the part's predicted loudness (ReaComp's wet gain, <= 6 dB).
            u = self.unit_of_stem[k]
            alone = len(self.obj.units[u].members) == 1
            loud = self.model.stem_state(k, replace(d, comp=None)).integrated_lufs
            settings = []

            def try_settings(percentiles):
                for percentile in percentiles:
                    for ratio in COMP_RATIOS:
                        comp = self._comp_for(k, d, percentile, ratio)
                        if comp is not None:
                            # Enough: the dynamics term is clear with the compressor's margin (its
                            # spread DYNAMICS_MARGIN_LU under the ceiling, an uneven part's swing
                            # under its limit).
                            spread, pts_after = self.obj.dynamics(k, replace(d, comp=comp))
                            settings.append((percentile, comp, spread is not None and pts_after <= 0.0))
            try_settings(COMP_THRESHOLD_PERCENTILES)
            if self.obj.units[u].uneven or not any(ok for _, _, ok in settings):
                # Levelling: a part whose swings the usual thresholds cannot bring under its limit
                # (or an uneven one) is compressed from lower in what it hears.
                try_settings(LEVELLING_PERCENTILES)
            # When acting, act enough: a compressor that leaves the part above its ceiling less the
            # margin is offered only when no setting reaches it.
            if any(ok for _, _, ok in settings):
                settings = [row for row in settings if row[2]]
            for percentile, comp, _ in settings:
                candidate = state.with_track(k, replace(state.tracks[k], comp=comp, comp_percentile=percentile))
                yield candidate
                # ReaComp's make-up stops at MAKEUP_MAX_DB; REAPER's fader is after the compressor, so
                # the rest of the loudness can come from it.
                after = self.model.stem_state(k, replace(d, comp=comp)).integrated_lufs
                if alone and loud is not None and after is not None and loud - after > 0.5:
                    um = candidate.units[u]
                    yield candidate.with_unit(u, replace(um, fader_db=round(um.fader_db + loud - after, 1)))

    def reference_candidates(self, state: State):
        if self.obj.reference_delta is None:
            return
        from .reference import BROAD_BANDS
        decisions = self.decisions(state)
        delta, _ = self.obj.reference(decisions)
        for j, (name, lo, hi, kind, freq, q, roles) in enumerate(BROAD_BANDS):
            dj = delta[j]
            if not np.isfinite(dj) or abs(dj) <= 1.5:
                continue
            carriers = []
            for k, s in enumerate(self.model.stems):
                if not s.movable or s.role not in roles:
                    continue
                energy = float(s.mean_E[lo:hi + 1].sum()) * float(s.active.mean())
                if energy > 0:
                    carriers.append((-energy, k))
            for _, k in sorted(carriers)[:2]:
                fx = state.tracks[k]
                tag = f"reference:{name}"
                if tag in fx.why:
                    i = fx.why.index(tag)
                    old = fx.eq[i]
                    gain = float(np.clip(old.gain_db + np.clip(dj, -1.5, 1.5), -3.0, 3.0))
                    eq = fx.eq[:i] + (replace(old, gain_db=round(gain, 1)),) + fx.eq[i + 1:]
                    yield self.retrack(state, k, replace(fx, eq=eq))
                elif self._free_slots(fx) > 0:
                    gain = float(np.clip(dj, -3.0, 3.0))
                    band = EqBand(kind, freq, round(gain, 1), q)
                    yield self.retrack(state, k, replace(fx, eq=fx.eq + (band,), why=fx.why + (tag,)))

    # --- refinement --------------------------------------------------------------------------------------
    def _golden(self, f, lo: float, hi: float, tol: float = 0.1, max_iter: int = 18) -> float:
        g = (math.sqrt(5.0) - 1.0) / 2.0
        a, b = lo, hi
        c, d = b - g * (b - a), a + g * (b - a)
        fc, fd = f(c), f(d)
        for _ in range(max_iter):
            if b - a < tol:
                break
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - g * (b - a)
                fc = f(c)
            else:
                a, c, fc = c, d, fd
                d = a + g * (b - a)
                fd = f(d)
        return (a + b) / 2.0

    def refine(self, state: State, anchor: float | None) -> State:
        """Polish each continuous value (golden section), then drop moves that no longer pay."""
        for u, move in enumerate(state.units):
            if move.fader_db:
                def f(x, u=u, move=move, base=state):
                    return self.cost(base.with_unit(u, replace(move, fader_db=round(x, 2))), anchor)
                hi = self._headroom_cap(u, state, min(self.max_fader_db, move.fader_db + 3.0))
                lo = max(-self.max_fader_db, move.fader_db - 3.0)
                if hi > lo:
                    x = round(self._golden(f, lo, hi), 1)
                    candidate = state.with_unit(u, replace(move, fader_db=x))
                    if self.cost(candidate, anchor) <= self.cost(state, anchor):
                        state = candidate
        for k, fx in enumerate(state.tracks):
            for i, band in enumerate(fx.eq):
                if band.kind in ("highpass", "lowpass"):
                    continue

                def f(x, k=k, i=i, fx=fx, base=state):
                    b = replace(fx.eq[i], gain_db=round(x, 2))
                    return self.cost(base.with_track(k, replace(fx, eq=fx.eq[:i] + (b,) + fx.eq[i + 1:])), anchor)
                why = fx.why[i] if i < len(fx.why) else ""
                if band.gain_db < 0:
                    lo, hi = max(MAX_CUT_DB, band.gain_db - 3.0), min(-0.5, band.gain_db + 3.0)
                else:
                    lo, hi = max(0.5, band.gain_db - 1.5), min(3.0, band.gain_db + 1.5)
                bound = None
                if why.startswith("masking:"):
                    # Deepest cut the loss limit allows.
                    decisions = self.decisions(state)
                    others = fx.eq[:i] + fx.eq[i + 1:]
                    for g in np.arange(band.gain_db, lo - 1e-9, -0.5):
                        if self.cut_loss(k, decisions, others, others + (replace(band, gain_db=float(g)),)) \
                                > MAX_MASKING_LOSS_LU:
                            bound = float(g) + 0.5
                            lo = max(lo, bound)
                            break
                if hi > lo:
                    x = round(self._golden(f, lo, hi), 1)
                    if bound is not None and x <= bound + 0.2:
                        # The conflict wants more than a masking cut may take: structural.
                        _, us, vs = why.split(":")
                        self.structural.add((int(vs), band.freq_hz))
                        state = self.retrack(state, k, replace(fx, eq=fx.eq[:i] + fx.eq[i + 1:],
                                                            why=fx.why[:i] + fx.why[i + 1:]))
                        return self.refine(state, anchor)
                    b = replace(band, gain_db=x)
                    candidate = self.retrack(state, k, replace(fx, eq=fx.eq[:i] + (b,) + fx.eq[i + 1:]))
                    if self.cost(candidate, anchor) <= self.cost(state, anchor):
                        state = candidate
                        fx = state.tracks[k]
        return self.prune(state, anchor)

    def prune(self, state: State, anchor: float | None) -> State:
        """Remove any move whose removal lowers the objective (a later move made it redundant)."""
        changed = True
        while changed:
            changed = False
            current = self.cost(state, anchor)
            for variant in self._without_each(state):
                c = self.cost(variant, anchor)
                if c < current - 1e-9:
                    state, current, changed = variant, c, True
                    break
        return state

    def _without_each(self, state: State):
        for u, move in enumerate(state.units):
            if move.fader_db:
                yield state.with_unit(u, replace(move, fader_db=0.0))
            if move.sections:
                yield state.with_unit(u, replace(move, sections=()))
        for k, fx in enumerate(state.tracks):
            hp = [i for i, b in enumerate(fx.eq) if b.kind == "highpass"]
            for i in range(len(fx.eq)):
                if i in hp:
                    continue
                yield self.retrack(state, k, replace(fx, eq=fx.eq[:i] + fx.eq[i + 1:], why=fx.why[:i] + fx.why[i + 1:]))
            if hp:
                # A high-pass goes as a whole (its sections were chosen together, with margin).
                keep = [i for i in range(len(fx.eq)) if i not in hp]
                yield self.retrack(state, k, replace(fx, eq=tuple(fx.eq[i] for i in keep),
                                                     why=tuple(fx.why[i] for i in keep)))
            if fx.comp is not None:
                yield state.with_track(k, replace(fx, comp=None))
        for part in self.obj.parts:
            trims = sorted({state.tracks[k].trim_db for k in part.members} - {0.0})
            for t in trims:
                variant = state
                for k in part.members:
                    if state.tracks[k].trim_db == t:
                        variant = variant.with_track(k, replace(variant.tracks[k], trim_db=0.0))
                yield variant

    def rounded(self, state: State) -> State:
        units = tuple(UnitMove(round(m.fader_db, 1), tuple(replace(g, gain_db=round(g.gain_db, 1)) for g in m.sections
                                                         if round(g.gain_db, 1) != 0.0))
                      for m in state.units)
        tracks = tuple(replace(fx, eq=tuple(replace(b, gain_db=round(b.gain_db, 1), freq_hz=float(b.freq_hz),
                                                    q=round(b.q, 2)) for b in fx.eq))
                       for fx in state.tracks)
        return State(units, tracks)
