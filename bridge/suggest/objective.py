"""THE objective the planner minimises, evaluated on the predicted mix.  Pure.

``J = level + sections + masking + low end + dynamics + reference + headroom + processing``,
every term in the same "points", with the weights below (docs/suggestions.md writes it out and
says why).  A move is proposed only when it lowers ``J``: its predicted benefit must exceed its
own cost, a fixed cost per move plus a cost per dB.  The fixed cost is the hysteresis that makes a
plan a fixed point: the optimum leaves every term where a further move would not pay for itself,
and re-planning the rendered result finds nothing worth a move.

Terms (u: a level unit = a source group or a lone stem; A: the anchor level):

* **level**: ``W_LEVEL * (I_u - (A + o_u))^2`` per judged unit, with ``I_u`` its predicted
  integrated loudness (after its own EQ, compressor and automation) and ``o_u`` its role's offset
  (a group's offset combines its distinct roles).  For steady roles :data:`SECTION_SHARE` of the
  weight moves to the section term.
* **sections** (steady roles: lead/backing vocal, bass): per judged section ``s`` (the part plays
  in it: active frames, not release tails), ``e_s = d_u + lift_u(s) - lift_band(s)``: the part's
  level against its target in that section, minus how much the band lifts there - :data:`BAND_LIFT_SHARE`
  of the median of the other parts' own lifts in ``s`` (each part against itself, over the time it plays), so a
  chorus where everyone plays harder is not a fault, a sparse bridge does not pull the vocal down,
  and a vocal 8 dB down in both choruses is raised there rather than pulled down in the verses.
  ``W_SECTION * sum w_s e_s^2``, ``w_s`` the section's share of the time the part plays.
* **masking**: per ordered pair of groups ``(u masked, v masker)``,
  ``W_MASKING * sum_b pi_uv(b) s_u(b) D_uv(b)`` with ``D`` the loud-frame-weighted mean overlap
  beyond :data:`~bridge.suggest.predict.MASKING_ONSET_DB` on ``u``'s significant cells,
  ``pi`` the protection ``u`` gets from ``v`` (0 unless ``u`` has the higher priority in that band;
  equal top priorities - kick and bass - protect each other, below ``MUTUAL_BUILDUP_BELOW_HZ``
  through the build-up term ``W_BUILDUP`` in each one's home bands) and ``s_u`` how much
  band ``b`` matters to ``u`` (the speech band-importance function for vocals, the loudness share
  otherwise).  No pair within a group.
* **low end**: ``W_RUMBLE * max(0, R_i - RUMBLE_ALLOWED_DB)`` with ``R_i`` the share (dB) of the
  stem's energy an octave and more below its lowest sustained partial, plus its DC.
* **dynamics**: ``W_DYNAMICS * max(0, spread_i - ceiling_role)^2``, spread = P95 - P10 of the
  1 s loudness within sections (arrangement excluded), after the plan's EQ and compressor.
* **reference** (with ``--reference``): ``W_REFERENCE * sum max(0, |delta_band| - tolerance)^2`` over
  six broad bands of the level-matched spectrum difference.
* **headroom**: ``W_HEADROOM * max(0, TP_i' - HOT_DBTP)^2``: a stem's predicted true peak.
* **processing**: per dB (:data:`COST_PER_DB`) and per move (:data:`COST_PER_MOVE`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from ..analyze.spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ, BAND_LOW_HZ, N_BANDS
from .model import EqBand, StemView, TrackDecision
from ..analyze.masking import CLARITY_MARGIN_DB, THRESHOLD_OFFSET_DB
from .predict import (MASKING_ONSET_DB, MixModel, comp_gain_reduction_db, integrated_from_frames,
                      momentary_from_frames, _db)
from .roles import BACKING_VOCAL, LEAD_VOCAL, NEUTRAL, PROFILES, SNARE, is_bottom_mic

# --- weights -------------------------------------------------------------------------------------
#: Points per LU^2 of a unit's distance from its target.  With the fader's costs below, a fader
#: move pays once a part is about 3 LU off (0.1 d^2 - 0.05 |d| > 0.8 at d = 3.1), and then goes to
#: within 0.25 LU of the target (where 2 * 0.1 * d = 0.05).
W_LEVEL = 0.1
#: How much of the band's lift in a section a steady part should follow (half: a vocal rises a little
#: with a chorus that plays harder, and stays put in a quieter bridge).
BAND_LIFT_SHARE = 0.5
#: Inside a multi-role group (a kit), a role's mics are judged against the rest only beyond this
#: many LU from where the roles put them (balance inside a kit is taste); toms play in fills only.
PART_BALANCE_TOLERANCE_LU = 5.0
PART_BALANCE_SKIP = ("toms",)
#: A snare's bottom mic sits about this far under its top mic (it adds the wires; 6-12 dB under is
#: usual), judged with the same tolerance: only a bottom mic level with the top, or buried far under
#: it, is a fault.
SNARE_BOTTOM_OFFSET_LU = -9.0
#: A steady role keeps this share of the level weight on its whole-song level; its sections are judged
#: with W_SECTION per LU^2, weighted by each section's share of the time it plays (an 8 LU dip over half
#: the song costs 4.8 points; 4 LU over a fifth of it, 0.5).
SECTION_SHARE = 0.6
W_SECTION = 0.15
#: Points per dB of EQ gain, weighted by how much each band matters to the part itself (its own
#: sound: "tone"), on top of the flat cost per dB.  A 6 dB cut over a fifth of a part's importance
#: costs 0.6 points more than one where the part has nothing.
W_TONE = 0.5
#: Points per dB of importance-weighted overlap beyond the onset (the mean over the protected part's
#: bands of its loud-frame-weighted time share times dB of excess).
W_MASKING = 6.0
#: The masking onset for the lead vocal (dB of overlap, as MASKING_ONSET_DB): a masker whose excitation
#: comes within about 2.5 dB of the lead's own in its presence bands already costs it clarity.
LEAD_MASKING_ONSET_DB = 3.5
#: Kick/bass build-up: in a part's home low band (where it matters more than the other), the other
#: should sit at least this far below it; the build-up is how far it comes above that, in dB.
MUTUAL_BUILDUP_DB = 3.0
#: Points per dB of kick/bass build-up (importance-weighted, loud-frame-weighted mean over both parts).
W_BUILDUP = 12.0
#: ... in the bands below this (the low end, about one critical band wide).
MUTUAL_BUILDUP_BELOW_HZ = 180.0
#: Loud-frame weighting of masking cells: a frame counts ``min(1, E/E_p95)^MASKING_LOUD_EXPONENT``.
MASKING_LOUD_EXPONENT = 1.0
#: Points per dB of low-end junk above the allowance; the allowance is higher for bass-range parts.
W_RUMBLE = 0.1
RUMBLE_ALLOWED_DB = -30.0
RUMBLE_ALLOWED_BASS_DB = -25.0
#: Within-section dynamics are measured on 1 s windows (phrases and notes, not sections).
DYNAMICS_WINDOW_FRAMES = 10
#: Points per LU^2 of within-section dynamics above the role's ceiling.
W_DYNAMICS = 0.3
#: A compressor, once proposed, is judged against the ceiling minus this (hysteresis: it brings the
#: part under its ceiling with margin, so the re-analysed result is not a candidate again).
DYNAMICS_MARGIN_LU = 1.0
#: A steady part whose sections of one kind sit further apart than this against the band is uneven
#: (its level follows its phrases; see Objective._find_uneven_units).  The ride tolerance
#: (search.SECTION_TOLERANCE_LU): a spread automation would leave alone is no fault either way.
UNEVEN_SECTIONS_LU = 4.0
#: Reference: points per dB^2 beyond the tolerance, per broad band.
W_REFERENCE = 0.3
REFERENCE_TOLERANCE_DB = 1.5
REFERENCE_SATURATION_DB = 3.0
#: Headroom: a stem's true peak above this is penalised steeply (10 points per dB^2).
HOT_DBTP = -1.0
W_HEADROOM = 10.0
#: The share of the static gain reduction at a stem's loudest detector level that its true peak
#: loses under the compressor (assumed, on the safe side; checked against the renderer in
#: tests/test_planner_golden.py).
COMP_PEAK_SHARE = 0.5

#: Cost per dB of processing, by kind.  "dB" of automation is per section, weighted by the share of
#: the part's judged time; of a compressor, its mean gain reduction over the part's active frames.
COST_PER_DB = {"fader": 0.05, "eq": 0.08, "automation": 0.05, "comp": 0.15, "width": 0.05}
#: Fixed cost per move: the hysteresis.  A high-pass counts as a move, not by dB.
COST_PER_MOVE = {"fader": 0.8, "eq": 1.0, "highpass": 0.8, "automation": 1.0, "automated_section": 0.2,
                 "comp": 1.5, "polarity": 0.3, "width": 0.8, "pan": 0.3}

#: 1/3-octave band importance for speech (ANSI S3.5-1997, table 3), 160 Hz .. 8 kHz; used as how
#: much each band matters to a vocal's clarity.
_SII = {160: 0.0083, 200: 0.0095, 250: 0.0150, 315: 0.0289, 400: 0.0440, 500: 0.0578, 630: 0.0653,
        800: 0.0711, 1000: 0.0818, 1250: 0.0844, 1600: 0.0882, 2000: 0.0898, 2500: 0.0868, 3150: 0.0844,
        4000: 0.0771, 5000: 0.0527, 6300: 0.0364, 8000: 0.0185}


@dataclass(frozen=True, slots=True)
class Terms:
    """The objective, term by term, in points."""

    level: float = 0.0
    sections: float = 0.0
    masking: float = 0.0
    low_end: float = 0.0
    dynamics: float = 0.0
    reference: float = 0.0
    headroom: float = 0.0
    processing: float = 0.0
    moves: float = 0.0

    @property
    def total(self) -> float:
        return (self.level + self.sections + self.masking + self.low_end + self.dynamics + self.reference
                + self.headroom + self.processing + self.moves)

    def as_dict(self) -> dict[str, float]:
        return {"level": round(self.level, 3), "sections": round(self.sections, 3),
                "masking": round(self.masking, 3), "low_end": round(self.low_end, 3),
                "dynamics": round(self.dynamics, 3), "reference": round(self.reference, 3),
                "headroom": round(self.headroom, 3), "processing": round(self.processing, 3),
                "moves": round(self.moves, 3), "total": round(self.total, 3)}


@dataclass
class LevelUnit:
    """A group (or lone stem) judged as one level: its members, role offset, and what is judged."""

    name: str
    group: int                    # index in MixModel.groups
    members: tuple[int, ...]      # stem indices
    role: str                     # the members' most important role
    offset_lu: float | None       # None: not judged (neutral)
    movable: bool                 # a fader/automation move may be proposed
    steady: bool
    sections: tuple[int, ...] = ()         # judged sections
    section_weight: tuple[float, ...] = ()
    section_frames: tuple[np.ndarray, ...] = ()
    song_frames: np.ndarray | None = None
    active: np.ndarray | None = None
    #: A steady role whose level follows its performance, not the arrangement (see
    #: :meth:`Objective._find_uneven_units`): judged by the dynamics term, not section by section.
    uneven: bool = False
    #: Per judged section, the band's lift there that the part should follow (LU; uneven units).
    band_lift: tuple[float, ...] = ()


@dataclass
class PartUnit:
    """One role's mics inside a multi-role group (the snare top and bottom of a kit): its balance
    against the rest of the group is the drummer's and engineer's taste, judged only when gross."""

    name: str
    group: int
    role: str
    members: tuple[int, ...]
    offset_lu: float              # expected level against the group's own, LU
    tops: tuple[int, ...] = ()    # a snare's top mics and bottom mics (both set, or neither)
    bottoms: tuple[int, ...] = ()


def window_loudness(frame_k: np.ndarray, frames: int) -> np.ndarray:
    """Loudness of a window of ``frames`` frames centred on each frame (ungated), LUFS."""
    c = np.concatenate([[0.0], np.cumsum(frame_k)])
    idx = np.arange(len(frame_k))
    lo = np.clip(idx - frames // 2, 0, len(frame_k))
    hi = np.clip(idx - frames // 2 + frames, 0, len(frame_k))
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10((c[hi] - c[lo]) / np.maximum(hi - lo, 1))


def band_importance(stems, floors: list[float | None] | None = None) -> np.ndarray:
    """How much each band matters to a part (sums to 1): the speech band-importance function for
    vocals, the loudness share (energy^0.5) otherwise, over the bands the part occupies from its
    musical floor up (rumble below it is not part of its sound)."""
    energy = 0.0
    for s, floor in zip(stems, floors or [None] * len(stems)):
        e = s.mean_E
        if floor is not None:
            e = np.where(BAND_CENTERS_HZ >= floor / 1.5, e, 0.0)
        energy = energy + e
    if any(s.role in (LEAD_VOCAL, BACKING_VOCAL) for s in stems):
        w = vocal_importance() * (energy > energy.max() * 1e-4)
    else:
        w = np.maximum(energy, 0.0) ** 0.5
    return w / max(float(w.sum()), 1e-30)


def vocal_importance() -> np.ndarray:
    w = np.array([_SII.get(int(round(c)), 0.0) for c in BAND_CENTERS_HZ])
    # Bands the table does not list still count a little (a vocal's lows and air).
    return np.maximum(w, 0.004)


class Objective:
    """Evaluates ``J`` for a set of track decisions, given the model and an anchor level.

    Parameters
    ----------
    model : MixModel
    role_offsets : dict
        Role -> offset (LU) overriding the table.
    reference_delta : ndarray or None
        Six broad-band deltas (reference minus mix, level-matched, dB) when a reference is given,
        with ``reference_bands`` their band index ranges.
    """

    def __init__(self, model: MixModel, role_offsets: dict[str, float] | None = None,
                 reference_delta: np.ndarray | None = None, reference_bands=None,
                 mix_band_energy: np.ndarray | None = None):
        self.model = model
        self.role_offsets = dict(role_offsets or {})
        self.reference_delta = reference_delta
        self.reference_bands = reference_bands
        self._base_played = model.played_k({})
        self._base_mix_bands = model.mix_band_energy({})
        self.parts: list[PartUnit] = []
        self.units = self._level_units()
        self.floors = {k: lowest_sustained_band(s.E, s.active, 31.5 if s.profile.bass_range else 40.0)
                       for k, s in enumerate(model.stems)}
        self.importance = self._importance()
        self._memo: dict = {}
        self._lifts_for, self._lifts = None, None
        #: Per section, the judged units playing in it and the section's index in their own list.
        self._present: dict[int, list[tuple[int, int]]] = {}
        for u in self.units:
            if u.offset_lu is not None:
                for i, k in enumerate(u.sections):
                    self._present.setdefault(k, []).append((u.group, i))
        #: Per uneven unit's group: how its sections of one kind disagree (for the explanation).
        self.uneven: dict[int, dict] = {}
        self._find_uneven_units()
        self._unit_of_stem = {k: u for u in self.units for k in u.members}
        self._place_steady_units()
        # The lead vocal's clarity is what a mix is built around: it is judged from a lower onset.
        self._onset = {g: (LEAD_MASKING_ONSET_DB if any(model.stems[k].role == LEAD_VOCAL for k in members)
                           else MASKING_ONSET_DB) for g, (_, members) in enumerate(model.groups)}
        self._loud_w = self._loud_weights()
        self.stem_importance = {k: band_importance([s], [self.floors[k]]) for k, s in enumerate(model.stems)}
        # Static per pair: the protection weight times the band importance (pairs with none are
        # dropped), and for kick/bass the low bands where their build-up is judged instead.
        self._pair_w = {}
        for u in range(len(model.groups)):
            for v in range(len(model.groups)):
                if u == v:
                    continue
                protect = model.pair_weight(u, v)
                mutual = model.mutual(u, v) & (BAND_HIGH_HZ <= MUTUAL_BUILDUP_BELOW_HZ)
                # Kick and bass share the low end by each owning the bands where it matters more
                # than the other: in its home bands a part is protected from the other's build-up.
                home = mutual & (self._balanced_spectrum(u) >= self._balanced_spectrum(v))
                directed = np.where(mutual, 0.0, protect * self.importance[u])
                shared = np.where(home, protect * self.importance[u], 0.0)
                if directed.any() or shared.any():
                    self._pair_w[(u, v)] = (directed, shared, home)

    def _balanced_spectrum(self, g: int) -> np.ndarray:
        """A group's mean band energy (dB) with the group at its target level (anchor-free)."""
        stems = [self.model.stems[k] for k in self.model.groups[g][1]]
        energy = sum(s.mean_E for s in stems)
        unit = self.units[g]
        loud = integrated_from_frames(sum(s.kf for s in stems))
        shift = (unit.offset_lu - loud) if unit.offset_lu is not None and loud is not None else 0.0
        return _db(energy) + shift

    # --- static structure -------------------------------------------------------------------------
    def offset(self, role: str) -> float:
        if role in self.role_offsets:
            return float(self.role_offsets[role])
        return PROFILES.get(role, PROFILES[NEUTRAL]).offset_lu

    def _level_units(self) -> list[LevelUnit]:
        m = self.model
        units = []
        for g, (name, members) in enumerate(m.groups):
            stems = [m.stems[k] for k in members]
            roles = [s.role for s in stems if s.role != NEUTRAL]
            active = np.logical_or.reduce([s.active for s in stems])
            n_active = max(int(active.sum()), 1)
            if roles:
                # Distinct roles, each weighted by how much of the unit's active time it plays.
                share = {}
                for s in stems:
                    if s.role == NEUTRAL:
                        continue
                    share[s.role] = max(share.get(s.role, 0.0), float((s.active & active).sum()) / n_active)
                offset = 10.0 * math.log10(sum(max(share[r], 0.05) * 10.0 ** (self.offset(r) / 10.0)
                                               for r in sorted(share)))
                top = max(sorted(set(roles)), key=lambda r: PROFILES.get(r, PROFILES[NEUTRAL]).priority)
            else:
                offset, top = None, NEUTRAL
            movable = bool(roles) and all(not s.view.manual for s in stems)
            steady = PROFILES.get(top, PROFILES[NEUTRAL]).steady and offset is not None
            unit = LevelUnit(name, g, members, top, offset, movable, steady, active=active)
            distinct = sorted(r for r in set(roles) if r not in PART_BALANCE_SKIP)
            if offset is not None and movable and len(distinct) >= 2:
                for r in distinct:
                    own = tuple(k for k in members if m.stems[k].role == r)
                    bottoms = tuple(k for k in own if r == SNARE and is_bottom_mic(m.stems[k].name))
                    tops = tuple(k for k in own if k not in bottoms) if bottoms else ()
                    self.parts.append(PartUnit(f"{name}: {r}", g, r, own, self.offset(r) - offset,
                                               tops, bottoms if tops else ()))
            if offset is not None:
                self._judge_sections(unit)
            units.append(unit)
        return units

    def _judge_sections(self, unit: LevelUnit) -> None:
        from .predict import SECTION_MIN_ACTIVE_S, SECTION_MIN_SHARE
        song = self.model.song
        chosen, frames = [], []
        for k, (lo, hi) in enumerate(song.section_frames):
            if hi <= lo:
                continue
            act = np.flatnonzero(unit.active[lo:hi]) + lo
            if len(act) >= max(SECTION_MIN_SHARE * (hi - lo), SECTION_MIN_ACTIVE_S / 0.1):
                chosen.append(k)
                frames.append(act)
        if not chosen:
            unit.steady = False
            return
        if len(chosen) < 2:
            unit.steady = False
        total = sum(len(f) for f in frames)
        unit.sections = tuple(chosen)
        unit.section_frames = tuple(frames)
        unit.section_weight = tuple(len(f) / total for f in frames)
        unit.song_frames = np.concatenate(frames)

    def _importance(self) -> dict[int, np.ndarray]:
        """Per group, how much each band matters to it (sums to 1)."""
        return {g: band_importance([self.model.stems[k] for k in members], [self.floors[k] for k in members])
                for g, (_, members) in enumerate(self.model.groups)}

    def _loud_weights(self) -> dict[int, np.ndarray]:
        """Per group, the loud-frame weight of each masking cell at the analysis (fixed)."""
        out = {}
        self._loud_norm = {}
        idx = self.model.song.mask_frames
        for g, (_, members) in enumerate(self.model.groups):
            E = sum(self.model.stems[k].E[idx] for k in members)
            act = self.model.group_active[g][idx]
            p95 = np.percentile(E[act], 95, axis=0) if act.any() else np.ones(N_BANDS)
            w = np.minimum(1.0, E / np.maximum(p95, 1e-30)) ** MASKING_LOUD_EXPONENT
            out[g] = w
            self._loud_norm[g] = np.maximum((w * act[:, None]).sum(axis=0), 1.0)
        return out

    # --- terms ------------------------------------------------------------------------------------
    def unit_loudness(self, unit: LevelUnit, decisions: dict[str, TrackDecision], placed: bool = False) -> float | None:
        """The unit's predicted integrated loudness as played (with ``placed``: as the masking
        measure places it, section by section)."""
        m = self.model
        place = m.placement.get(unit.group) if placed else None
        if place is not None:
            key = ("placed", m.unit_key(unit.group, decisions))
            if key not in self._memo:
                kf = sum(m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).kf for k in unit.members)
                self._memo[key] = integrated_from_frames(kf * place)
            return self._memo[key]
        if len(unit.members) == 1:
            k = unit.members[0]
            return m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).integrated_lufs
        key = ("loud", m.unit_key(unit.group, decisions))
        if key in self._memo:
            return self._memo[key]
        kf = sum(m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).kf for k in unit.members)
        value = integrated_from_frames(kf)
        self._memo[key] = value
        return value

    def unit_level_terms(self, unit: LevelUnit, decisions, anchor: float, played: np.ndarray):
        """(d, section deviations e_s, level points, section points) of one unit."""
        if unit.offset_lu is None:
            return None, (), 0.0, 0.0
        loud = self.unit_loudness(unit, decisions)
        if loud is None:
            return None, (), 0.0, 0.0
        d = loud - (anchor + unit.offset_lu)
        if not unit.steady:
            return d, (), W_LEVEL * d * d, 0.0
        lifts = self._lift_table(decisions)
        es = []
        for k, lift in zip(unit.sections, lifts[unit.group]):
            others = sorted(lifts[v][i] for v, i in self._present[k] if v != unit.group)
            n = len(others)
            median = 0.0 if n == 0 else (others[n // 2] if n % 2 else 0.5 * (others[n // 2 - 1] + others[n // 2]))
            band = BAND_LIFT_SHARE * median
            es.append(d + lift - band)
        sec = W_SECTION * sum(w * e * e for w, e in zip(unit.section_weight, es))
        return d, tuple(es), W_LEVEL * (1.0 - SECTION_SHARE) * d * d, sec

    def _lift_table(self, decisions) -> dict[int, tuple[float, ...]]:
        """Every judged unit's section lifts under ``decisions`` (computed once per decisions dict)."""
        if self._lifts_for is decisions and self._lifts is not None:
            return self._lifts
        table = {u.group: self.section_lifts(u, decisions) for u in self.units if u.offset_lu is not None and u.sections}
        self._lifts_for, self._lifts = decisions, table
        return table

    def section_lifts(self, unit: LevelUnit, decisions) -> tuple[float, ...]:
        """Per section the unit plays in, its level there (active frames) against its level over all
        the sections it plays in, LU."""
        m = self.model
        key = ("lifts", m.unit_key(unit.group, decisions))
        if key in self._memo:
            return self._memo[key]
        kf = sum(m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).kf for k in unit.members)
        song = _db(kf[unit.song_frames].mean())
        value = tuple(float(_db(kf[frames].mean()) - song) for frames in unit.section_frames)
        self._memo[key] = value
        return value

    def part_deviation(self, part: PartUnit, decisions) -> float | None:
        """A part's level against its group's, minus where its role puts it there (LU)."""
        m = self.model
        unit = self.units[part.group]
        group = self.unit_loudness(unit, decisions)
        kf = sum(m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).kf for k in part.members)
        own = integrated_from_frames(kf)
        if group is None or own is None:
            return None
        return own - group - part.offset_lu

    def mic_deviation(self, part: PartUnit, decisions) -> float | None:
        """A snare's bottom mics against its top mics, minus where they usually sit (LU)."""
        if not part.tops or not part.bottoms:
            return None
        m = self.model
        loud = []
        for ks in (part.tops, part.bottoms):
            kf = sum(m.stem_state(k, decisions.get(m.stems[k].name, _ZERO)).kf for k in ks)
            loud.append(integrated_from_frames(kf))
        if loud[0] is None or loud[1] is None:
            return None
        return loud[1] - loud[0] - SNARE_BOTTOM_OFFSET_LU

    def part_points(self, decisions) -> float:
        total = 0.0
        for part in self.parts:
            for dr in (self.part_deviation(part, decisions), self.mic_deviation(part, decisions)):
                if dr is not None:
                    total += W_LEVEL * max(0.0, abs(dr) - PART_BALANCE_TOLERANCE_LU) ** 2
        return total

    def balanced(self, decisions: dict[str, TrackDecision]) -> dict[str, TrackDecision]:
        """The decisions without faders and section automation: masking (and the reference) is
        judged on the balanced mix, every judged part at its target level and a steady part at its
        place in every section (:meth:`shifts`, ``MixModel.placement``).  Levels are the level and
        section terms' business, so a fader or a ride never buys a masking improvement, and a
        vocal dipping in the choruses is a level fault there, not a masking one."""
        out = {}
        for name, d in decisions.items():
            out[name] = replace(d, fader_db=0.0, sections=()) if (d.fader_db or d.sections) else d
        return out

    def _find_uneven_units(self) -> None:
        """Steady parts whose level follows the performance, not the arrangement.

        Sections of one kind ("Verse 1" and "Verse 2", every detected "A") are where the band plays
        alike, so a part placed by the arrangement sits alike in them.  When a steady part's sections
        of one kind sit more than :data:`UNEVEN_SECTIONS_LU` apart against the band (its verse 1 at its
        place, verse 2 10 LU under it), its level swings with its phrases: that is dynamics (levelled
        by a compressor), not a section sitting low against the band (automation).  Such a unit is
        judged on its whole level and by the dynamics term with the swings in it (:meth:`spread`),
        and gets no section term.  Decided once, on the analysis.
        """
        lifts = self._lift_table({})
        for unit in self.units:
            if not unit.steady or len(unit.sections) < 2:
                continue
            d, es, _, _ = self.unit_level_terms(unit, {}, 0.0, None)
            if d is None or not es:
                continue
            kinds: dict[str, list[tuple[str, float]]] = {}
            for k, e in zip(unit.sections, es):
                name = self.model.song.sections[k][0]
                kinds.setdefault(section_kind(name), []).append((name, e - d))
            apart = {kind: max(e for _, e in rows) - min(e for _, e in rows) for kind, rows in kinds.items()
                     if len(rows) >= 2}
            if not apart or max(apart.values()) <= UNEVEN_SECTIONS_LU:
                continue
            unit.uneven, unit.steady = True, False
            # The band's lift per section: the part's own lift minus its departure there.
            unit.band_lift = tuple(lift - (e - d) for lift, e in zip(lifts[unit.group], es))
            worst = max(apart, key=lambda kind: (apart[kind], kind))
            self.uneven[unit.group] = {"kind": worst, "apart_lu": round(apart[worst], 2),
                                       "sections": {n: round(e, 2) for n, e in kinds[worst]}}
        self._lifts_for, self._lifts = None, None

    def _place_steady_units(self) -> None:
        """For each steady unit, the fixed per-frame gain that puts it at its place in every judged
        section (from the analysis: its section lifts against the band's)."""
        played = self.model.played_k({})
        for unit in self.units:
            if not unit.steady:
                continue
            d, es, _, _ = self.unit_level_terms(unit, {}, 0.0, played)
            if d is None:
                continue
            gain = np.ones(self.model.n_frames)
            for k, e in zip(unit.sections, es):
                lo, hi = self.model.song.section_frames[k]
                gain[lo:hi] = 10.0 ** (-(e - d) / 10.0)
            self.model.placement[unit.group] = gain

    def shifts(self, balanced: dict[str, TrackDecision], anchor: float | None) -> dict[int, float]:
        """Per group, the gain (dB) that puts it at its target on top of ``balanced`` (0 if unjudged)."""
        out = {}
        for g, unit in enumerate(self.units):
            shift = 0.0
            if unit.offset_lu is not None and anchor is not None:
                loud = self.unit_loudness(unit, balanced, placed=True)
                if loud is not None:
                    shift = anchor + unit.offset_lu - loud
            elif anchor is not None and all(not self.model.stems[k].view.manual for k in unit.members):
                # A part of unknown role is judged where it sits, but never louder than the neutral
                # role's level: an unnamed part 10 dB hot is a level fault, which EQ must not paper
                # over.  A part mixed by hand stays where the producer put it.
                loud = self.unit_loudness(unit, balanced, placed=True)
                if loud is not None:
                    shift = min(0.0, anchor + PROFILES[NEUTRAL].offset_lu - loud)
            out[g] = shift
        return out

    def pair_cost(self, u: int, v: int, balanced, shifts) -> float:
        entry = self._pair_w.get((u, v))
        if entry is None:
            return 0.0
        directed, shared, _ = entry
        excess, buildup = self.pair_excess(u, v, balanced, shifts)
        return W_MASKING * float(directed @ excess) + W_BUILDUP * float(shared @ buildup)

    def pair_score(self, u: int, v: int, balanced, shifts) -> np.ndarray:
        """Per band, the pair's cost contribution (points / W_MASKING): where the conflict matters."""
        entry = self._pair_w.get((u, v))
        if entry is None:
            return np.zeros(N_BANDS)
        directed, shared, _ = entry
        excess, buildup = self.pair_excess(u, v, balanced, shifts)
        return W_MASKING * directed * excess + W_BUILDUP * shared * buildup

    def pair_excess(self, u: int, v: int, balanced, shifts) -> tuple[np.ndarray, np.ndarray]:
        """Per band: the loud-frame-weighted mean excess (dB) of ``u`` masked by ``v`` at balanced
        levels, and (kick/bass low bands) their build-up."""
        m = self.model
        offset = round(shifts[v] - shifts[u], 2)
        key = ("w", m.unit_key(u, balanced), m.unit_key(v, balanced), offset)
        hit = m._pair_cache.get(key)
        if hit is not None:
            return hit
        # The protected part is represented by its own excitation pattern (its band energies spread
        # like the masker's): a band that only holds the skirt of a strong neighbouring partial is
        # covered by that partial, not exposed.
        le_u, lt_u, sig_u, _, act_u = m.unit_state(u, balanced)
        le_v, lt_v, sig_v, _, act_v = m.unit_state(v, balanced)
        _, _, mutual = self._pair_w[(u, v)]
        x = lt_v - lt_u + np.float32(offset + CLARITY_MARGIN_DB - THRESHOLD_OFFSET_DB - self._onset[u])
        cells = sig_u & act_v[:, None]
        loud = self._loud_w[u]
        excess = (np.where(cells, np.maximum(x, 0.0), 0.0) * loud).sum(axis=0) / self._loud_norm[u]
        buildup = np.zeros(N_BANDS)
        if mutual.any():
            # Kick and bass: below ~180 Hz one critical band spans the whole low end, so spreading says
            # EQ cannot separate them; what separates them is each owning its home bands.  In ``u``'s
            # home bands the build-up is how far ``v`` comes above MUTUAL_BUILDUP_DB below ``u``
            # while both play (loud frames weighted as for masking).
            inband = le_v - le_u + np.float32(offset + MUTUAL_BUILDUP_DB)
            both = sig_u & act_v[:, None]
            near = np.where(both, np.maximum(inband, 0.0), 0.0) * loud
            buildup = np.where(mutual, near.sum(axis=0) / self._loud_norm[u], 0.0)
        result = (excess, buildup)
        m._pair_cache[key] = result
        return result

    def masking(self, decisions, anchor, pairs=None) -> tuple[float, dict[str, TrackDecision], dict[int, float]]:
        balanced = self.balanced(decisions)
        shifts = self.shifts(balanced, anchor)
        total = sum(self.pair_cost(u, v, balanced, shifts)
                    for u, v in (pairs if pairs is not None else self.relevant_pairs()))
        return total, balanced, shifts

    def relevant_pairs(self) -> list[tuple[int, int]]:
        return sorted(self._pair_w)

    def low_end(self, k: int, decision: TrackDecision) -> tuple[float, float]:
        """(share of junk below the stem's floor in dB, points) after the decision's EQ."""
        key = ("low", k, decision.eq)
        if key not in self._memo:
            self._memo[key] = self._low_end(k, decision)
        return self._memo[key]

    def _low_end(self, k: int, decision: TrackDecision) -> tuple[float, float]:
        s = self.model.stems[k]
        if not s.profile.highpass:
            return -120.0, 0.0
        floor = self.floors[k]
        if floor is None:
            return -120.0, 0.0
        state = self.model.stem_state(k, decision)
        spectrum = s.mean_E * state.eq_gain
        below = BAND_CENTERS_HZ <= floor / 2.0
        total = float(spectrum.sum())
        dc = 0.0 if any(b.kind == "highpass" for b in decision.eq) else s.dc_power
        share = _db((float(spectrum[below].sum()) + dc) / max(total + dc, 1e-30))
        allowed = RUMBLE_ALLOWED_BASS_DB if s.profile.bass_range else RUMBLE_ALLOWED_DB
        return float(share), W_RUMBLE * max(0.0, float(share) - allowed)

    def tone(self, k: int, decision: TrackDecision) -> float:
        """Points for how far the EQ moves the part from its own sound: |gain dB| per band, weighted
        by how much each band matters to the part (a cut where it lives costs more than one where
        it has little; a high-pass below its music costs next to nothing)."""
        if not decision.eq:
            return 0.0
        key = ("tone", k, decision.eq)
        if key not in self._memo:
            from .eqcurve import band_gain_db
            gain = band_gain_db(decision.eq, self.model.stems[k].sample_rate)
            self._memo[key] = W_TONE * float(self.stem_importance[k] @ np.abs(gain))
        return self._memo[key]

    def spread(self, k: int, decision: TrackDecision) -> float | None:
        """P95 - P10 of the stem's 1 s loudness within sections (each section's median removed),
        over its active frames, LU: the phrase-to-phrase and note-to-note dynamics a compressor
        works on, without the arrangement's section levels (automation's business)."""
        key = ("spread", k, decision)
        if key in self._memo:
            return self._memo[key]
        value = self._spread(k, decision)
        self._memo[key] = value
        return value

    def _spread(self, k: int, decision: TrackDecision) -> float | None:
        s = self.model.stems[k]
        state = self.model.stem_state(k, decision)
        mom = window_loudness(state.kf, DYNAMICS_WINDOW_FRAMES)
        residual = []
        for lo, hi in self.model.song.section_frames:
            frames = np.flatnonzero(s.active[lo:hi]) + lo
            values = mom[frames]
            values = values[np.isfinite(values)]
            if len(values) >= 10:
                residual.append(values - np.median(values))
        if not residual:
            return None
        allv = np.concatenate(residual)
        if len(allv) < 20:
            return None
        return float(np.percentile(allv, 95) - np.percentile(allv, 10))

    def swing(self, k: int, decision: TrackDecision) -> tuple[float, str] | None:
        """An uneven part's swing: how far apart its sections of one kind sit against the band (LU)
        under ``decision``, the largest over kinds, and that kind; ``None`` for other parts."""
        unit = self._unit_of_stem.get(k)
        if unit is None or not unit.uneven:
            return None
        key = ("swing", k, decision)
        if key in self._memo:
            return self._memo[key]
        kf = self.model.stem_state(k, decision).kf
        kinds: dict[str, list[float]] = {}
        for sec, frames, lift in zip(unit.sections, unit.section_frames, unit.band_lift):
            kinds.setdefault(section_kind(self.model.song.sections[sec][0]), []).append(
                float(_db(kf[frames].mean())) - lift)
        apart = [(max(v) - min(v), kind) for kind, v in kinds.items() if len(v) >= 2]
        value = max(apart) if apart else None
        self._memo[key] = value
        return value

    def dynamics(self, k: int, decision: TrackDecision) -> tuple[float | None, float]:
        """(within-section spread, points): beyond the role's ceiling; for an uneven part also its
        swing beyond :data:`UNEVEN_SECTIONS_LU` (its phrase-to-phrase swings between sections)."""
        s = self.model.stems[k]
        ceiling = s.profile.spread_max_lu
        if ceiling is None or not s.movable:
            return None, 0.0
        sp = self.spread(k, decision)
        # Hysteresis: a part is compressed only when it exceeds its ceiling, and a compressor, once
        # there, is set to bring it DYNAMICS_MARGIN_LU under it (re-analysis then finds nothing).
        margin = DYNAMICS_MARGIN_LU if decision.comp is not None else 0.0
        points = 0.0 if sp is None else W_DYNAMICS * max(0.0, sp - (ceiling - margin)) ** 2
        swing = self.swing(k, decision)
        if swing is not None:
            points += W_DYNAMICS * max(0.0, swing[0] - (UNEVEN_SECTIONS_LU - margin)) ** 2
        return sp, points

    def peak(self, k: int, decision: TrackDecision) -> tuple[float | None, float]:
        s = self.model.stems[k]
        if s.true_peak_dbtp is None:
            return None, 0.0
        boost = max((b.gain_db for b in decision.eq if b.kind not in ("highpass", "lowpass")), default=0.0)
        tp = (s.true_peak_dbtp + decision.fader_db + max(0.0, max((x.gain_db for x in decision.sections), default=0.0))
              + max(0.0, boost))
        if decision.comp is not None:
            tp += decision.comp.makeup_db - self.comp_peak_reduction(k, decision)
        return tp, W_HEADROOM * max(0.0, tp - HOT_DBTP) ** 2

    def comp_peak_reduction(self, k: int, decision: TrackDecision) -> float:
        """What the compressor takes off the stem's peak, dB: :data:`COMP_PEAK_SHARE` of the static
        gain reduction at its loudest detector level (after the AI EQ).  The loudest moments are
        held notes and phrases, where the reduction has settled; a transient's first milliseconds
        pass the attack, hence only a share."""
        key = ("peak_gr", k, decision.eq, decision.comp)
        if key not in self._memo:
            s = self.model.stems[k]
            eq = self.model.stem_state(k, replace(decision, comp=None)).eq_gain
            loudest = s.detector_levels_db(eq).max(initial=-300.0)
            gr = float(comp_gain_reduction_db(np.array([loudest]), decision.comp)[0])
            self._memo[key] = COMP_PEAK_SHARE * gr
        return self._memo[key]

    def reference(self, decisions) -> tuple[np.ndarray | None, float]:
        """(per broad band delta, points): the level-matched distance from the reference.

        Judged without faders (the balance is the level term's business; a reference says how the
        mix should sound, not where each part sits), growing linearly beyond
        :data:`REFERENCE_SATURATION_DB` past the tolerance (a very different reference is a direction,
        not a target).
        """
        if self.reference_delta is None:
            return None, 0.0
        m = self.model
        tonal = self.balanced(decisions)
        bands = m.mix_band_energy(tonal)
        played = m.played_k(tonal)
        before = integrated_from_frames(self._base_played)
        after = integrated_from_frames(played)
        shift = (after - before) if before is not None and after is not None else 0.0
        delta = []
        for (lo, hi), base in zip(self.reference_bands, self.reference_delta):
            if base is None or not np.isfinite(base):
                delta.append(np.nan)
                continue
            change = _db(bands[lo:hi + 1].sum()) - _db(self._base_mix_bands[lo:hi + 1].sum()) - shift
            delta.append(base - change)
        d = np.array(delta)
        x = np.maximum(np.abs(d) - REFERENCE_TOLERANCE_DB, 0.0)
        sat = REFERENCE_SATURATION_DB
        huber = np.where(x <= sat, x * x, 2.0 * sat * x - sat * sat)
        return d, W_REFERENCE * float(np.nansum(huber))

    # --- processing ---------------------------------------------------------------------------------
    def processing(self, units_state, decisions) -> tuple[float, float]:
        """(per-dB points, fixed points) of a state's moves.

        ``units_state`` maps a level unit's index to its ``(fader_db, sections)``; the per-track
        parts (EQ bands, compressor, polarity, width) are read from ``decisions``.
        """
        per_db = fixed = 0.0
        for u, (fader, sections) in units_state.items():
            if fader:
                per_db += COST_PER_DB["fader"] * abs(fader)
                fixed += COST_PER_MOVE["fader"]
            if sections:
                unit = self.units[u]
                weights = dict(zip(unit.sections, unit.section_weight))
                names = {self.model.song.sections[k][0:3]: k for k in unit.sections}
                for sg in sections:
                    k = names.get((sg.name, sg.start_s, sg.end_s))
                    per_db += COST_PER_DB["automation"] * abs(sg.gain_db) * weights.get(k, 0.5)
                    fixed += COST_PER_MOVE["automated_section"]
                fixed += COST_PER_MOVE["automation"]
        for part in self.parts:
            trims = self.trims(part, decisions, units_state)
            per_db += COST_PER_DB["fader"] * sum(abs(t) for t in trims)
            fixed += COST_PER_MOVE["fader"] * len({t for t in trims if t})
        for name, d in decisions.items():
            for band in d.eq:
                if band.kind in ("highpass", "lowpass"):
                    fixed += COST_PER_MOVE["highpass"]
                else:
                    per_db += COST_PER_DB["eq"] * abs(band.gain_db)
                    fixed += COST_PER_MOVE["eq"]
            if d.comp is not None:
                k = self.model.index[name]
                per_db += COST_PER_DB["comp"] * self.model.stem_state(k, d).mean_gr_db
                fixed += COST_PER_MOVE["comp"]
            if d.polarity is not None:
                fixed += COST_PER_MOVE["polarity"]
            if d.width is not None:
                per_db += COST_PER_DB["width"] * abs(20.0 * math.log10(max(d.width, 0.05)))
                fixed += COST_PER_MOVE["width"]
            if d.pan is not None:
                fixed += COST_PER_MOVE["pan"]
        return per_db, fixed

    def trims(self, part: PartUnit, decisions, units_state) -> list[float]:
        """Each member's trim: its fader beyond its group's (one move per distinct trim)."""
        group_fader = (units_state or {}).get(part.group, (0.0, ()))[0]
        out = []
        for k in part.members:
            d = decisions.get(self.model.stems[k].name)
            out.append(0.0 if d is None else round(d.fader_db - group_fader, 2))
        return out

    # --- all -------------------------------------------------------------------------------------------
    def evaluate(self, decisions: dict[str, TrackDecision], anchor: float | None, units_state=None,
                 pairs: list[tuple[int, int]] | None = None) -> Terms:
        m = self.model
        played = m.played_k(decisions)
        level = sections = 0.0
        if anchor is not None:
            for unit in self.units:
                _, _, lv, sv = self.unit_level_terms(unit, decisions, anchor, played)
                level += lv
                sections += sv
        level += self.part_points(decisions)
        masking = self.masking(decisions, anchor, pairs)[0]
        low = dyn = head = 0.0
        for k, s in enumerate(m.stems):
            d = decisions.get(s.name, _ZERO)
            if s.eq_movable:
                low += self.low_end(k, d)[1]
            if s.movable:
                dyn += self.dynamics(k, d)[1]
            head += self.peak(k, d)[1]
        ref = self.reference(decisions)[1]
        per_db, fixed = self.processing(units_state or {}, decisions)
        per_db += sum(self.tone(m.index[name], d) for name, d in decisions.items() if d.eq)
        return Terms(level, sections, masking, low, dyn, ref, head, per_db, fixed)


_ZERO = TrackDecision()


def lowest_sustained_band(E: np.ndarray, active: np.ndarray, lowest_hz: float = 40.0, within_db: float = 30.0,
                          edge_db: float = 6.0, min_presence: float = 0.05) -> float | None:
    """Centre (Hz) of the lowest band in which the part sustains a partial: its musical floor.

    From per-frame band energies over the active frames.  A band holds a partial in a frame when it
    is within ``within_db`` of that frame's loudest band (from ``lowest_hz`` up) and stands at least
    ``edge_db`` above the band below it: a partial's spectral edge, which the skirt of a note leaking
    downwards and steady rumble underneath do not make.  The floor is the lowest band from
    ``lowest_hz`` up that holds a partial in at least ``min_presence`` of the active frames (a
    lowest note played now and then counts; a transient does not).  Rumble is judged below it.
    """
    frames = E[active] if active.any() else E
    if len(frames) == 0:
        return None
    # Half a second of median per band: a sustained partial holds over consecutive frames, while the
    # random ups and downs of noise (rumble) do not make edges.
    level = _db(frames)
    if len(level) >= 5:
        stacked = np.stack([np.roll(level, s, axis=0) for s in (-2, -1, 0, 1, 2)])
        level = np.median(stacked, axis=0)[2:-2] if len(level) > 4 else level
    musical = BAND_CENTERS_HZ >= lowest_hz * 0.99
    top = level[:, musical].max(axis=1, keepdims=True)
    below = np.concatenate([np.full((len(level), 1), -400.0), level[:, :-1]], axis=1)
    partial = (level >= top - within_db) & (level >= below + edge_db) & musical[None, :]
    presence = partial.mean(axis=0)
    found = np.flatnonzero(presence >= min_presence)
    if len(found) == 0:
        return None
    return float(BAND_CENTERS_HZ[int(found[0])])


def section_kind(name: str) -> str:
    """What a section is, without its number: "Verse 2" -> "verse", "Chorus_1" -> "chorus", "A" -> "a"."""
    return re.sub(r"[\s_\-]*\d+$", "", name.strip()).strip().lower() or name.strip().lower()


def nice_hz(freq: float) -> float:
    """Round a frequency to 2-3 significant figures, as an engineer would dial it."""
    if freq < 100:
        return float(round(freq))
    if freq < 1000:
        return float(round(freq / 5.0) * 5)
    return float(round(freq / 50.0) * 50)


__all__ = ["Objective", "Terms", "LevelUnit", "lowest_sustained_band", "nice_hz", "COST_PER_DB", "COST_PER_MOVE",
           "W_LEVEL", "SECTION_SHARE", "W_MASKING", "W_RUMBLE", "W_DYNAMICS", "W_REFERENCE", "W_HEADROOM",
           "HOT_DBTP", "RUMBLE_ALLOWED_DB", "RUMBLE_ALLOWED_BASS_DB", "REFERENCE_TOLERANCE_DB", "EqBand",
           "StemView", "BAND_LOW_HZ", "BAND_HIGH_HZ"]
