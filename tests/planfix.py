"""Planner fixtures built from band energies, without audio: sessions in milliseconds.

A stem is described by its per-frame 1/3-octave band energies (and, for stereo stems, the
inter-channel correlation per band).  :func:`features` turns that into the analysis'
:class:`~bridge.analyze.features.StemFeatures` (K-weighted 10 ms energies consistent with the bands),
:func:`session` analyses the stems and their incoherent sum exactly as the pipeline would, and
:func:`apply_plan` "renders" a plan on the features (the planner's own prediction, band by band), so
a closed loop on fixtures checks the optimiser's fixed point without the renderer's approximations.
"""
from __future__ import annotations

import numpy as np

from bridge.analyze.features import StemFeatures
from bridge.analyze.levels import ClipStats
from bridge.analyze.session import analyze_mix
from bridge.analyze.spectrum import BAND_CENTERS_HZ, N_BANDS
from bridge.analyze.stem import analyze_stem
from bridge.suggest.eqcurve import k_weighting_band_gain
from bridge.suggest.model import StemView, TrackDecision
from bridge.suggest.roles import infer_role

FS = 48000
FRAME_S = 0.1


def band(hz: float) -> int:
    """Index of the 1/3-octave band centred nearest ``hz``."""
    return int(np.argmin(np.abs(np.log(BAND_CENTERS_HZ / hz))))


def shape(peaks: dict[float, float], floor_db: float = -70.0, spread_db_per_band: float = 9.0) -> np.ndarray:
    """A spectrum (linear power per band) with peaks ``{Hz: dB}`` falling off ``spread`` dB per band."""
    db = np.full(N_BANDS, floor_db)
    for hz, level in peaks.items():
        b = band(hz)
        db = np.maximum(db, level - spread_db_per_band * np.abs(np.arange(N_BANDS) - b))
    # Below its lowest note a part has next to nothing (as a 100 ms spectrum of a note shows).
    lowest = min(band(hz) for hz in peaks)
    below = np.arange(N_BANDS) < lowest
    db = np.where(below, np.minimum(db, db[lowest] - 30.0 * (lowest - np.arange(N_BANDS))), db)
    return 10.0 ** (np.maximum(db, floor_db - 60.0) / 10.0)


def envelope(n_frames: int, on: list[tuple[float, float]] | None = None, gain_db: dict[tuple[float, float], float] | None = None,
             pulse: int | None = None, depth_db: float = 0.0, seed: int = 0) -> np.ndarray:
    """A per-frame level (linear power): on during ``on`` spans (seconds; all song when None), with
    ``gain_db`` per span, an optional pulse every ``pulse`` frames (``depth_db`` down between hits)
    and a little seeded jitter so nothing is perfectly flat."""
    t = np.arange(n_frames) * FRAME_S
    level = np.zeros(n_frames) if on else np.ones(n_frames)
    for a, b in on or []:
        level[(t >= a) & (t < b)] = 1.0
    for (a, b), g in (gain_db or {}).items():
        level[(t >= a) & (t < b)] *= 10.0 ** (g / 10.0)
    if pulse:
        hits = (np.arange(n_frames) % pulse) == 0
        level = level * np.where(hits, 1.0, 10.0 ** (-depth_db / 10.0))
    rng = np.random.default_rng(seed)
    return level * 10.0 ** (rng.normal(0.0, 0.3, n_frames) / 10.0)


def features(E: np.ndarray, channels: int = 2, correlation: float | np.ndarray = 1.0, peak_dbfs: float = -6.0,
             dc: float = 0.0, balance: float = 1.0) -> StemFeatures:
    """StemFeatures for band energies ``E`` (shape ``(frames, bands)``, mean over channels).

    ``correlation`` is the inter-channel correlation per band (scalar or ``(bands,)``); ``balance``
    scales the right channel's energy (1 = balanced, 0 = left only).
    """
    E = np.asarray(E, dtype=np.float64)
    n = len(E)
    k = k_weighting_band_gain(FS)
    corr = np.broadcast_to(np.asarray(correlation, dtype=np.float64), (N_BANDS,))
    if channels == 1:
        per_ch = (E @ k)[:, None]
        ll = rr = lr = None
        frame_power = E.sum(axis=1)[:, None]
    else:
        # Left and right energies whose mean is E: left 2/(1+balance), right 2*balance/(1+balance).
        wl, wr = 2.0 / (1.0 + balance), 2.0 * balance / (1.0 + balance)
        ll, rr = E * wl, E * wr
        lr = corr[None, :] * np.sqrt(ll * rr)
        per_ch = np.stack([ll @ k, rr @ k], axis=1)
        frame_power = np.stack([ll.sum(axis=1), rr.sum(axis=1)], axis=1)
    sub = np.repeat(per_ch, 10, axis=0)
    peak = 10.0 ** (peak_dbfs / 20.0)
    return StemFeatures(FS, channels, n * FS // 10, sub, frame_power, np.full(n, peak, dtype=np.float32),
                        E.astype(np.float32), ll, rr, lr, peak, peak, np.full(channels, dc), ClipStats(0, 0, 0))


def _sum(feats: list[StemFeatures]) -> StemFeatures:
    n = max(f.n_frames for f in feats)

    def pad(a, rows):
        out = np.zeros((rows,) + a.shape[1:])
        out[: len(a)] = a
        return out
    bp = sum(pad(f.band_power.astype(np.float64), n) for f in feats)
    sub = sum(pad(np.repeat(f.subhop_power, 2, axis=1) if f.channels == 1 else f.subhop_power, n * 10) for f in feats)
    ll = sum(pad(f.band_ll if f.band_ll is not None else f.band_power.astype(np.float64), n) for f in feats)
    rr = sum(pad(f.band_rr if f.band_rr is not None else f.band_power.astype(np.float64), n) for f in feats)
    lr = sum(pad(f.band_lr if f.band_lr is not None else f.band_power.astype(np.float64), n) for f in feats)
    fp = sum(pad(np.repeat(f.frame_power, 2, axis=1) if f.channels == 1 else f.frame_power, n) for f in feats)
    peak = float(sum(f.sample_peak for f in feats))
    return StemFeatures(FS, 2, n * FS // 10, sub, fp, np.full(n, peak, dtype=np.float32), bp.astype(np.float32),
                        ll, rr, lr, peak, peak, np.zeros(2), ClipStats(0, 0, 0))


def session(stems: dict[str, StemFeatures], markers=None, roles: dict[str, str] | None = None):
    """(views, MixAnalysis) of fixture stems, analysed as the pipeline would."""
    analysed = [(name, f, analyze_stem(f)) for name, f in stems.items()]
    mix = analyze_mix(analysed, _sum(list(stems.values())), markers)
    roles = roles or {}
    views = [StemView(name, roles.get(name) or infer_role(name), a, band_power=f.band_power,
                      subhop_power=f.subhop_power, sample_rate=FS)
             for name, f, a in analysed]
    return views, mix


def decisions_of(plan) -> dict[str, TrackDecision]:
    """The plan's moves as the track decisions the predicted mix applies."""
    out: dict[str, dict] = {}
    for move in plan.moves:
        for name in move.tracks:
            d = out.setdefault(name, {"fader_db": 0.0, "eq": [], "comp": None, "sections": (), "polarity": None,
                                      "width": None, "pan": None})
            if move.kind == "fader":
                d["fader_db"] += move.fader_db
            elif move.kind == "automation":
                d["sections"] = move.sections
            elif move.kind == "eq":
                d["eq"].append(move.band)
            elif move.kind == "highpass":
                slope = int(move.finding.evidence.get("slope_db_per_octave", 12)) // 12
                d["eq"].extend([move.band] * slope)
            elif move.kind == "comp":
                d["comp"] = move.comp
            elif move.kind == "polarity":
                d["polarity"] = move.polarity
            elif move.kind == "width":
                d["width"] = move.width
            elif move.kind == "pan":
                d["pan"] = move.pan
    return {n: TrackDecision(d["fader_db"], tuple(d["eq"]), d["comp"], tuple(d["sections"]), d["polarity"], d["width"],
                             d["pan"])
            for n, d in out.items()}


def apply_plan(plan, stems: dict[str, StemFeatures], views) -> dict[str, StemFeatures]:
    """The stems as the plan would leave them, by the planner's own band-energy model."""
    from bridge.suggest.groups import detect_groups
    from bridge.suggest.predict import MixModel

    decisions = decisions_of(plan)
    model = MixModel(views, list(detect_groups(views)), [])
    out = {}
    for name, f in stems.items():
        d = decisions.get(name)
        if d is None or name not in model.index:
            out[name] = f
            continue
        state = model.stem_state(model.index[name], d)
        n = min(len(f.band_power), len(state.E))
        E0 = f.band_power[:n].astype(np.float64)
        gain = np.where(E0 > 0, state.E[:n] / np.maximum(E0, 1e-30), 1.0)
        kf0 = model.stems[model.index[name]].kf[:n]
        kratio = np.where(kf0 > 0, state.kf[:n] / np.maximum(kf0, 1e-30), 1.0)
        sub = f.subhop_power[: n * 10] * np.repeat(kratio, 10)[:, None]
        ll = rr = lr = None
        if f.band_ll is not None:
            ll, rr, lr = f.band_ll[:n] * gain, f.band_rr[:n] * gain, f.band_lr[:n] * gain
            if d.polarity is not None:
                lr = -lr
            if d.width is not None:
                w2 = d.width ** 2
                # Mid/side energies per band (equal channel energies assumed by the fixtures).
                m_, s_ = (ll + rr) / 2 + lr, (ll + rr) / 2 - lr
                m_, s_ = m_, s_ * w2
                total = (m_ + s_)
                ll = rr = total / 2 * (ll + rr).sum() / np.maximum((ll + rr).sum(), 1e-30)
                lr = (m_ - s_) / 2
        out[name] = StemFeatures(f.sample_rate, f.channels, f.frames, sub, f.frame_power[:n] * kratio[:, None],
                                 f.frame_peak[:n], (E0 * gain).astype(np.float32), ll, rr, lr,
                                 f.sample_peak * 10 ** (max(0.0, d.fader_db) / 20), f.true_peak * 10 ** (d.fader_db / 20),
                                 f.dc_mean * (0.0 if any(b.kind == "highpass" for b in d.eq) else 1.0), f.clip)
    return out


def gain_to(E: np.ndarray, lufs: float, channels: int = 2) -> float:
    """The power gain that makes band energies ``E`` play at ``lufs``."""
    own = analyze_stem(features(E, channels=channels)).loudness.integrated_lufs
    return 10.0 ** ((lufs - own - (3.0103 if channels == 1 else 0.0)) / 10.0)


def stem(E: np.ndarray, lufs: float | None = None, channels: int = 2, **kw) -> StemFeatures:
    """:func:`features`, scaled so the stem plays at ``lufs`` (a mono stem 3 dB above its own loudness)."""
    f = features(E, channels=channels, **kw)
    own = analyze_stem(f).loudness.integrated_lufs
    played = own + (3.0103 if channels == 1 else 0.0)
    g = 1.0 if lufs is None else 10.0 ** ((lufs - played) / 10.0)
    # Peaks 14 dB above the loudness (a plain PLR), so level moves meet the headroom limit only when hot.
    kw.setdefault("peak_dbfs", own + 10.0 * np.log10(g) + 14.0)
    return features(np.asarray(E) * g, channels=channels, **kw)


#: Spectra of the fixture parts (dB per band peak; see :func:`shape`).
VOCAL = {200: -6, 315: 0, 500: 2, 1000: 0, 2000: -2, 3150: -3, 5000: -9}
BASS = {50: 0, 80: 4, 125: 2, 250: -6}
KICK = {63: 6, 100: 0, 3150: -12}
KEYS = {250: -2, 500: 2, 1000: 0, 2000: -6}
GUITAR = {160: -6, 400: 0, 1000: 1, 2500: -3}
PAD = {160: 0, 315: 2, 630: 0, 1250: -6}
OVERHEAD = {3150: 0, 6300: 2, 10000: 0, 500: -12}
