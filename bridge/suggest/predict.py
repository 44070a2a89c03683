"""The predicted mix: the analysis' per-frame measurements with a plan's moves applied.  Pure.

Nothing is decoded again.  Per stem the analysis keeps, on the shared 100 ms grid, the 1/3-octave
band energies ``E(t, b)``, the K-weighted energies (10 ms sub-hops, summed here to frames) and the
activity mask.  A :class:`~bridge.suggest.model.TrackDecision` changes them as REAPER would:

* the AI EQ multiplies every band by its power gain ``G(b)``, averaged over the band
  (:mod:`bridge.suggest.eqcurve`, the RBJ curves the renderer uses);
* the K-weighted energy of frame ``t`` is scaled by ``sum_b E(t,b) G(b) K(b) / sum_b E(t,b) K(b)``
  (``K`` the BS.1770 weighting per band), so the measured loudness is kept exactly with no moves;
* the AI compressor hears the EQ'd signal before the fader: a static curve on each frame's
  level (threshold, ratio), its make-up added back;
* fader, section automation (post-FX, as REAPER's fader and volume envelope are) scale every
  band of the affected frames.

From the predicted stems follow their integrated loudness (BS.1770-4 gating on the predicted
400 ms blocks), section levels over each part's active frames, the masking between source
groups (the analysis' MPEG-model measure of :mod:`bridge.analyze.masking`, recomputed on the
predicted band energies), within-section dynamics, low-frequency content and the mix spectrum.
Stems are summed incoherently (energies add); for the analysis' own masking measure that is
exact, for loudness of multi-mic sources an approximation (documented in docs/suggestions.md).

All predicted quantities are memoised per (stem, decision), per (group, decisions) and per pair of
group states, so the optimiser re-evaluates only what a candidate move touches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..analyze import loudness as lu
from ..analyze.masking import (CLARITY_MARGIN_DB, SIGNIFICANT_WITHIN_DB, STRENGTH_WITHIN_DB, THRESHOLD_OFFSET_DB,
                               spreading_matrix)
from ..analyze.spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ, BAND_LOW_HZ, N_BANDS
from ..render.dynamics import _release_stage
from .eqcurve import band_power_gain, k_weighting_band_gain, weighted_band_power_gain
from .model import CompSettings, Group, StemView, TrackDecision
from .roles import NEUTRAL, PROFILES

#: At most this many frames enter the masking measure; longer songs are sampled at a fixed stride
#: (every 2nd, 3rd, ... frame).  The measure is a mean over frames, so a 4-minute song's 2400 frames
#: sampled at 800 change it by a fraction of a dB.
MASKING_FRAMES = 800
#: The masking cost counts a cell's overlap beyond this many dB (overlap = MSR + clarity margin,
#: as in the analysis).  Two parts at equal level in a band overlap by about 6 dB; beyond 6 the
#: masker's spread excitation is above the part itself there, which is where clarity suffers.
MASKING_ONSET_DB = 6.0
#: A part is judged in a section when it plays (is active) in at least this share of the section's
#: frames and for at least :data:`SECTION_MIN_ACTIVE_S`: a section holding only a part's release
#: tail is not judged.
SECTION_MIN_SHARE = 0.35
SECTION_MIN_ACTIVE_S = 1.5
#: Compressor detection: what ReaComp's 5 ms RMS detector reads above 10 ms averages on struck and
#: plucked parts (transients, low-frequency ripple), dB; vocals get none (checked against the renderer:
#: docs/suggestions.md, "Compressor").
COMP_DETECTOR_CREST_DB = 1.5
_FLOOR = 1e-20
_SPREAD = (spreading_matrix() * 10.0 ** (-THRESHOLD_OFFSET_DB / 10.0)).astype(np.float32)


def _db(x: np.ndarray | float) -> np.ndarray | float:
    return 10.0 * np.log10(np.maximum(x, _FLOOR))


def frame_k_power(subhop_power: np.ndarray, channels: int, n_frames: int) -> np.ndarray:
    """Channel-weighted K-weighted mean square per 100 ms frame, shape ``(n_frames,)``."""
    weights = lu.channel_weights(channels)
    per = lu.SUBHOPS_PER_FRAME
    whole = min(len(subhop_power) // per, n_frames)
    out = np.zeros(n_frames)
    if whole:
        out[:whole] = (subhop_power[: whole * per] @ weights).reshape(whole, per).mean(axis=1)
    return out


def integrated_from_frames(frame_k: np.ndarray) -> float | None:
    """BS.1770-4 gated integrated loudness from per-frame K-weighted energies (channel-weighted).

    Gating block ``j`` is the mean of frames ``j..j+3`` (400 ms, 75 % overlap), as
    :func:`bridge.analyze.loudness.gating_blocks` makes them from the sub-hops.
    """
    if len(frame_k) < 4:
        return None
    csum = np.concatenate([[0.0], np.cumsum(frame_k)])
    blocks = (csum[4:] - csum[:-4]) / 4.0
    return lu.integrated_lufs(blocks[:, None], np.ones(1))


def momentary_from_frames(frame_k: np.ndarray) -> np.ndarray:
    """Momentary loudness (400 ms) centred on each frame, LUFS (``-inf`` for silence)."""
    padded = np.concatenate([[0.0], frame_k, [0.0, 0.0]])
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    window = (csum[4:] - csum[:-4]) / 4.0
    with np.errstate(divide="ignore"):
        return lu.LOUDNESS_OFFSET_DB + 10.0 * np.log10(window[: len(frame_k)])


def comp_gain_reduction_db(level_db: np.ndarray, comp: CompSettings) -> np.ndarray:
    """Static gain reduction of a hard-knee compressor at each detector level, dB (>= 0)."""
    excess = np.maximum(level_db - comp.threshold_db, 0.0)
    return excess * (1.0 - 1.0 / max(comp.ratio, 1.0))


@dataclass
class Song:
    """Shared timing: frame count, sections as frame ranges, masking frame sample."""

    n_frames: int
    sections: tuple[tuple[str, float, float], ...]
    section_frames: tuple[tuple[int, int], ...]
    mask_frames: np.ndarray


class StemModel:
    """Precomputed arrays of one usable stem (padded to the song's frame count)."""

    def __init__(self, view: StemView, n_frames: int, group: int):
        a = view.analysis
        self.view = view
        self.name = view.name
        self.role = view.role
        self.profile = PROFILES.get(view.role, PROFILES[NEUTRAL])
        self.group = group
        self.sample_rate = view.sample_rate
        self.channels = view.subhop_power.shape[1]
        # A mono stem plays on both sides of a stereo track: twice its own K-weighted energy in the mix.
        self.play = 2.0 if self.channels == 1 else 1.0
        bp = np.asarray(view.band_power, dtype=np.float64)
        E = np.zeros((n_frames, N_BANDS))
        E[: min(len(bp), n_frames)] = bp[:n_frames]
        self.E = E
        # Levels are judged as the stem plays on a stereo track: a mono file plays at unity on both
        # sides, 3 dB above its own integrated loudness.
        self.kf = self.play * frame_k_power(np.asarray(view.subhop_power, dtype=np.float64), self.channels, n_frames)
        # The K-weighted 10 ms energies of each frame, shape (frames, 10): where the compressor acts.
        sub = np.zeros((n_frames, lu.SUBHOPS_PER_FRAME))
        weighted = np.asarray(view.subhop_power, dtype=np.float64) @ lu.channel_weights(self.channels)
        whole = min(len(weighted) // lu.SUBHOPS_PER_FRAME, n_frames)
        sub[:whole] = weighted[: whole * lu.SUBHOPS_PER_FRAME].reshape(whole, lu.SUBHOPS_PER_FRAME)
        self.sub = sub
        self.detector_crest_db = 0.0 if view.role in ("lead_vocal", "backing_vocal") else COMP_DETECTOR_CREST_DB
        act = np.zeros(n_frames, dtype=bool)
        act[: min(len(a.active), n_frames)] = a.active[:n_frames]
        self.active = act
        self.K = k_weighting_band_gain(self.sample_rate)
        self.kE = E @ self.K
        self.integrated_lufs = a.loudness.integrated_lufs
        self.true_peak_dbtp = a.levels.true_peak_dbtp
        self.mean_E = E[act].mean(axis=0) if act.any() else E.mean(axis=0)
        #: Level, ride and compressor moves need a role; EQ that protects another part or removes junk
        #: below the stem's own music does not.
        self.movable = (not view.manual) and view.role != NEUTRAL
        self.eq_movable = not view.manual
        self.dc_power = float(max((v * v for v in a.faults.dc_offset), default=0.0))
        #: Per band, the side signal's share of the energy (0 for mono stems): what width acts on.
        share = np.zeros(N_BANDS)
        if a.stereo is not None:
            share = np.array([v if v is not None else 0.0 for v in a.stereo.band_width], dtype=np.float64)
        self.side_share = np.clip(share, 0.0, 1.0)

    def set_play(self, play: float) -> None:
        """How the stem plays on its track (2: mono on both sides, 1: as recorded or panned to a side)."""
        if play != self.play:
            self.kf = self.kf * (play / self.play)
            self.sub = self.sub * (play / self.play)
            self.play = play

    # --- one decision ------------------------------------------------------------------------
    def frame_gain_db(self, decision: TrackDecision, song: Song, eq_gain: np.ndarray) -> tuple[np.ndarray, float]:
        """Post-EQ per-frame gain (compressor, make-up, fader, automation), dB, and the mean GR."""
        g = np.full(song.n_frames, decision.fader_db)
        for sec in decision.sections:
            lo = int(math.floor(sec.start_s / 0.1 + 0.5))
            hi = int(math.floor(sec.end_s / 0.1 + 0.5))
            g[max(lo, 0):min(hi, song.n_frames)] += sec.gain_db
        mean_gr = 0.0
        if decision.comp is not None:
            gr = self.comp_frame_reduction_db(decision.comp, eq_gain)
            if self.active.any():
                mean_gr = float(gr[self.active].mean())
            g = g - gr + decision.comp.makeup_db
        return g, mean_gr

    def detector_levels_db(self, eq_gain: np.ndarray) -> np.ndarray:
        """What the compressor's detector reads per 10 ms sub-hop, shape ``(frames, 10)``, dB
        (see :meth:`comp_frame_reduction_db`)."""
        share = self.sub / np.maximum(self.sub.mean(axis=1, keepdims=True), _FLOOR)
        return (_db((self.E * eq_gain[None, :]).sum(axis=1))[:, None] + _db(np.maximum(share, _FLOOR))
                + self.detector_crest_db)

    def comp_frame_reduction_db(self, comp: CompSettings, eq_gain: np.ndarray) -> np.ndarray:
        """Per frame, the loudness the compressor takes away, dB (>= 0).

        The detector level of each 10 ms sub-hop is the frame's level after the AI EQ (unweighted,
        from the band energies) plus the sub-hop's share of the frame (from the K-weighted 10 ms
        energies), plus :data:`COMP_DETECTOR_CREST_DB` for what a 5 ms detector sees above 10 ms
        averages; the static curve gives each sub-hop's reduction, the release is the renderer's
        own one-pole recursion (:func:`bridge.render.dynamics._release_stage`); a frame loses the
        power-weighted mean of its sub-hops' gains.
        """
        level = self.detector_levels_db(eq_gain)
        gr = comp_gain_reduction_db(level.reshape(-1), comp)
        a = math.exp(-1000.0 * lu.SUBHOP_S / max(comp.release_ms, 1e-3))
        gr, _ = _release_stage(gr, a, 0.0, 0.0)
        gr = gr.reshape(self.sub.shape)
        kept = (self.sub * 10.0 ** (-gr / 10.0)).mean(axis=1) / np.maximum(self.sub.mean(axis=1), _FLOOR)
        return np.where(self.sub.mean(axis=1) > _FLOOR, -_db(np.maximum(kept, _FLOOR)), 0.0)


@dataclass
class StemState:
    """One stem under one decision."""

    E: np.ndarray        # (frames, bands) predicted band energies
    kf: np.ndarray       # (frames,) predicted K-weighted frame energies as played on a stereo track
    eq_gain: np.ndarray  # (bands,) EQ power gain
    mean_gr_db: float
    integrated_lufs: float | None  # as played (a mono stem 3 dB above its file's own loudness)


class MixModel:
    """Predicted stems, groups and pairs under decisions, memoised.

    Parameters
    ----------
    stems : list of StemView
        Only usable stems (see :attr:`StemView.usable`) are modelled.
    groups : list of Group
        Source groups; stems not named in one are groups of one.
    sections : sequence of (name, start_s, end_s)
    """

    def __init__(self, stems: list[StemView], groups: list[Group], sections):
        usable = [s for s in stems if s.usable]
        n_frames = max((len(s.band_power) for s in usable), default=0)
        self.n_frames = n_frames
        names = [s.name for s in usable]
        group_of: dict[str, int] = {}
        self.groups: list[tuple[str, tuple[int, ...]]] = []
        for g in groups:
            members = tuple(names.index(m) for m in g.members if m in names)
            if members:
                for m in members:
                    group_of[names[m]] = len(self.groups)
                self.groups.append((g.name, members))
        for k, name in enumerate(names):
            if name not in group_of:
                group_of[name] = len(self.groups)
                self.groups.append((name, (k,)))
        self.stems = [StemModel(s, n_frames, group_of[s.name]) for s in usable]
        self.index = {s.name: k for k, s in enumerate(self.stems)}
        # The mono halves of an L/R pair ("OH L" / "OH R") play one on each side, not both centred.
        for _, members in self.groups:
            if len(members) >= 2 and all(self.stems[k].channels == 1 for k in members) and \
                    all(side_of(self.stems[k].name) for k in members):
                for k in members:
                    self.stems[k].set_play(1.0)
        secs = tuple((n, float(a), float(b)) for n, a, b in sections) or (("song", 0.0, n_frames * 0.1),)
        frames = tuple((max(0, int(math.floor(a / 0.1 + 0.5))), min(n_frames, int(math.floor(b / 0.1 + 0.5))))
                       for _, a, b in secs)
        stride = max(1, int(math.ceil(n_frames / MASKING_FRAMES)))
        self.song = Song(n_frames, secs, frames, np.arange(0, n_frames, stride))
        #: Per group, an optional fixed per-frame gain applied in the masking measure (set by the
        #: objective: a steady part placed at its place in every section).
        self.placement: dict[int, np.ndarray] = {}
        self._stem_cache: dict = {}
        self._unit_cache: dict = {}
        self._pair_cache: dict = {}
        self._prepare_priorities()

    # --- stems -----------------------------------------------------------------------------------
    def stem_state(self, k: int, d: TrackDecision) -> StemState:
        key = (k, d)
        hit = self._stem_cache.get(key)
        if hit is not None:
            return hit
        s = self.stems[k]
        eq = band_power_gain(d.eq, s.sample_rate) if d.eq else np.ones(N_BANDS)
        g_db, mean_gr = s.frame_gain_db(d, self.song, eq)
        lin = 10.0 ** (g_db / 10.0)
        # REAPER's width (post-FX) scales the side signal: a band keeps 1 - (1 - w^2) * its side share.
        wg = 1.0 - (1.0 - d.width ** 2) * s.side_share if d.width is not None else None
        tone = eq if wg is None else eq * wg
        if d.eq or wg is not None:
            weighted = weighted_band_power_gain(d.eq, s.sample_rate) if d.eq else s.K
            weighted = weighted if wg is None else weighted * wg
            ratio = (s.E @ weighted) / np.maximum(s.kE, _FLOOR)
            ratio = np.where(s.kE > _FLOOR, ratio, 1.0)
        else:
            ratio = 1.0
        kf = s.kf * ratio * lin
        E = s.E * tone[None, :] * lin[:, None]
        state = StemState(E, kf, tone, mean_gr, integrated_from_frames(kf))
        if len(self._stem_cache) > 4 * len(self.stems) + 256:
            self._stem_cache.clear()
        self._stem_cache[key] = state
        return state

    # --- groups (masking units) ------------------------------------------------------------------
    def _prepare_priorities(self) -> None:
        """Per group and band, the energy-weighted priority of its members (fixed at the analysis)."""
        pri = np.zeros((len(self.groups), N_BANDS))
        for g, (_, members) in enumerate(self.groups):
            energy = np.array([self.stems[m].mean_E for m in members])
            p = np.array([self.stems[m].profile.priority for m in members], dtype=np.float64)
            total = energy.sum(axis=0)
            pri[g] = np.where(total > 0, (energy * p[:, None]).sum(axis=0) / np.maximum(total, _FLOOR), p.max())
        self.band_priority = pri
        self.group_active = [np.logical_or.reduce([self.stems[m].active for m in members])
                             for _, members in self.groups]

    def unit_key(self, g: int, decisions: dict[str, TrackDecision]) -> tuple:
        return (g,) + tuple(decisions.get(self.stems[m].name, _ZERO) for m in self.groups[g][1])

    def unit_state(self, g: int, decisions: dict[str, TrackDecision]):
        """(log energy, log threshold, eligible cells, active count) of a group on the masking frames."""
        key = self.unit_key(g, decisions)
        hit = self._unit_cache.get(key)
        if hit is not None:
            return hit
        idx = self.song.mask_frames
        E = None
        for m, d in zip(self.groups[g][1], key[1:]):
            e = self.stem_state(m, d).E[idx]
            E = e.copy() if E is None else E + e
        place = self.placement.get(g)
        if place is not None:
            E = E * place[idx][:, None]
        act = self.group_active[g][idx]
        loudest = E.max(axis=1, keepdims=True)
        strong = np.percentile(E[act], 95, axis=0) if act.any() else np.zeros(N_BANDS)
        sig = ((E > 0.0) & (E >= loudest * 10.0 ** (-SIGNIFICANT_WITHIN_DB / 10.0))
               & (E >= strong * 10.0 ** (-STRENGTH_WITHIN_DB / 10.0)) & act[:, None])
        E32 = E.astype(np.float32)
        state = (_db(E32), _db(E32 @ _SPREAD), sig, max(int(act.sum()), 1), act)
        if len(self._unit_cache) > 4 * len(self.groups) + 256:
            self._unit_cache.clear()
        self._unit_cache[key] = state
        return state

    def pair_weight(self, u: int, v: int) -> np.ndarray:
        """Per band, how much group ``u`` is protected from group ``v`` (0 = not at all).

        Full protection from a clearly lower priority (two steps or more), partial from one step
        lower, none from an equal or higher one - except between equal top priorities (kick and
        bass, 7 and up), which protect each other.  Scaled by the protected part's priority.
        """
        pu, pv = self.band_priority[u], self.band_priority[v]
        delta = pu - pv
        w = np.clip((delta - 0.5) / 1.5, 0.0, 1.0)
        w = np.where(self.mutual(u, v), 1.0, w)
        return w * pu / 10.0

    def mutual(self, u: int, v: int) -> np.ndarray:
        """Per band, whether ``u`` and ``v`` are equal top priorities (they carve room for each other)."""
        pu, pv = self.band_priority[u], self.band_priority[v]
        return (np.abs(pu - pv) < 0.5) & (pu >= 7.0)

    def pair_overlap(self, u: int, v: int, decisions: dict[str, TrackDecision], lo: int, hi: int) -> tuple[float, float]:
        """The analysis' masking measure of ``u`` by ``v`` over bands ``lo..hi-1``: the overlap
        (MSR + clarity margin, dB, 0 where clear) averaged over ``u``'s significant cells while ``v``
        plays, and the share of ``u``'s active time in which some band of the range is masked.

        Averaged over every significant cell (not only the masked ones), so it only falls when a
        cut clears cells; re-analysing the rendered plan gives the same figure to a fraction of a dB.
        """
        le_u, _, sig_u, n_u, _ = self.unit_state(u, decisions)
        _, lt_v, _, _, act_v = self.unit_state(v, decisions)
        x = (lt_v - le_u + np.float32(CLARITY_MARGIN_DB))[:, lo:hi]
        eligible = sig_u[:, lo:hi] & act_v[:, None]
        overlap = float(np.maximum(x[eligible], 0.0).mean()) if eligible.any() else 0.0
        fraction = float((eligible & (x > 0)).any(axis=1).sum() / n_u)
        return overlap, fraction

    # --- songs-level quantities -------------------------------------------------------------------
    def played_k(self, decisions: dict[str, TrackDecision]) -> np.ndarray:
        """The predicted mix's K-weighted frame energy (stems summed incoherently, as played)."""
        total = np.zeros(self.n_frames)
        for k, s in enumerate(self.stems):
            total += self.stem_state(k, decisions.get(s.name, _ZERO)).kf
        return total

    def mix_band_energy(self, decisions: dict[str, TrackDecision]) -> np.ndarray:
        """Mean band energy of the predicted mix (incoherent sum), shape ``(bands,)``."""
        total = np.zeros(N_BANDS)
        for k, s in enumerate(self.stems):
            total += self.stem_state(k, decisions.get(s.name, _ZERO)).E.mean(axis=0)
        return total


_ZERO = TrackDecision()


def side_of(name: str) -> str | None:
    """``"left"``/``"right"`` when a stem name marks one side of a pair ("OH L", "Gtr_Right")."""
    from .roles import words
    w = set(words(name))
    if w & {"l", "left", "lt", "lft"}:
        return "left"
    if w & {"r", "right", "rt", "rgt"}:
        return "right"
    return None


def band_range_label(lo: int, hi: int) -> str:
    """``"1.1-3.5 kHz"`` / ``"45-89 Hz"`` for bands ``lo..hi-1``."""
    a, b = float(BAND_LOW_HZ[lo]), float(BAND_HIGH_HZ[hi - 1])

    def f(x: float) -> str:
        return f"{x / 1000:.1f}" if x >= 1000 else f"{x:.0f}"
    unit = "kHz" if a >= 1000 else "Hz"
    if a < 1000 <= b:
        return f"{a:.0f} Hz-{b / 1000:.1f} kHz"
    return f"{f(a)}-{f(b)} {unit}"


def centre_hz(lo: int, hi: int) -> float:
    return float(np.sqrt(BAND_LOW_HZ[lo] * BAND_HIGH_HZ[hi - 1]))


__all__ = ["MixModel", "StemModel", "StemState", "Song", "frame_k_power", "integrated_from_frames",
           "momentary_from_frames", "comp_gain_reduction_db", "band_range_label", "centre_hz",
           "BAND_CENTERS_HZ"]
