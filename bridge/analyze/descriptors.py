"""A fixed vector of sound descriptors per stem, for hearing what a stem is (issue 14).

Everything comes from what the analysis already holds: the slim :class:`~.features.StemFeatures`
(1/3-octave band power per 100 ms frame, K-weighted power per 10 ms sub-hop and channel) and the
:class:`~.stem.StemAnalysis` (activity, levels, loudness range, stereo).  No audio is read again.
Every descriptor is independent of the stem's gain (levels are relative: shares, spreads, rises),
and most are averages or percentiles over the stem's active frames, so a 10 s example and a
4-minute stem of the same part read alike.

:data:`DESCRIPTORS` lists each one with its unit; ``docs/roles.md`` explains them.  The order is
the vector's order and part of the contract with the shipped model (:func:`code_hash`).  Pure:
numpy only.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np

from .features import StemFeatures
from .loudness import SUBHOPS_PER_FRAME, channel_weights
from .spectrum import BAND_CENTERS_HZ, N_BANDS
from .stem import StemAnalysis

#: Band groups (Hz, lower edge inclusive) for spreads over time: sub, low, low-mid, mid,
#: upper-mid, presence, air.
GROUP_EDGES_HZ = (20.0, 63.0, 160.0, 400.0, 1000.0, 2500.0, 6300.0, 20001.0)
GROUP_NAMES = ("sub", "low", "lowmid", "mid", "uppermid", "presence", "air")
#: Modulation-rate bands of the 10 ms energy envelope, Hz.
MOD_EDGES_HZ = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 50.0)
#: Floor of the spectrum shares, dB re the stem's total band energy.
SHARE_FLOOR_DB = -60.0
#: Envelope values more than this below the stem's loudest 10 ms are clamped there.
ENVELOPE_RANGE_DB = 50.0
#: An onset: the 10 ms energy rises at least this much above its minimum over the previous 30 ms ...
ONSET_RISE_DB = 6.0
#: ... to within this many dB of the stem's loudest 10 ms, and is the largest rise within +/-20 ms.
ONSET_WITHIN_DB = 35.0
#: Rises smaller than this (dB per 10 ms) are not part of the onset function of the periodicity.
FLUX_FLOOR_DB = 1.0
#: A frame's lowest strong band is the lowest within this many dB of its loudest band (31.5 Hz up).
STRONG_WITHIN_DB = 15.0
#: Onsets within this many dB of the loudest onset are the stem's own hits (bleed lies further down).
LOUD_ONSET_DB = 10.0
#: Bands within this many dB of a frame's loudest count as strong (how many at once: polyphony, bandwidth).
STRONG_COUNT_DB = 10.0
#: Frames more than this below the loudest are silence, even inside an active stretch.
SILENT_BELOW_DB = 80.0
#: Frames more than this below the loudest frames are left out of per-frame spectral statistics.
FRAME_RANGE_DB = 30.0
#: Modulation band powers are floored here, dB re 1 dB^2.
MOD_FLOOR_DB = -30.0
#: Inactive 100 ms frames within this many frames of an active one count as playing (envelope only).
BRIDGE_FRAMES = 5
#: Welch segment of the modulation spectrum, sub-hops (2.56 s).
MOD_SEGMENT = 256
_TINY = 1e-20


def _d(name: str, unit: str, text: str) -> tuple[str, str, str]:
    return name, unit, text


#: (name, unit, meaning) in vector order.
DESCRIPTORS: tuple[tuple[str, str, str], ...] = (
    *(_d(f"share_{c:g}hz", "dB", f"long-term energy share of the {c:g} Hz 1/3-octave band (active frames), "
         f"floored at {SHARE_FLOOR_DB:g}") for c in BAND_CENTERS_HZ),
    _d("centroid_oct", "octaves re 1 kHz", "long-term spectral centroid, log2(f / 1 kHz)"),
    _d("spread_oct", "octaves", "energy-weighted standard deviation of log2 band centre"),
    _d("edge05_oct", "octaves re 1 kHz", "band where 5 % of the energy lies below"),
    _d("edge95_oct", "octaves re 1 kHz", "band where 95 % of the energy lies below"),
    *(_d(f"range_{g}", "dB", f"P90 - P10 of the {g} band group's level over active frames") for g in GROUP_NAMES),
    *(_d(f"median_{g}", "dB", f"median minus energy mean of the {g} group's level (very negative: bursts)")
      for g in GROUP_NAMES),
    _d("centroid_p10_oct", "octaves re 1 kHz", "10th percentile of the per-frame spectral centroid"),
    _d("centroid_p50_oct", "octaves re 1 kHz", "median per-frame spectral centroid"),
    _d("centroid_p90_oct", "octaves re 1 kHz", "90th percentile of the per-frame spectral centroid"),
    _d("low_p10_oct", "octaves re 1 kHz", "10th percentile of the per-frame lowest strong band (a fundamental, "
       "where cheap)"),
    _d("low_p50_oct", "octaves re 1 kHz", "median lowest strong band"),
    _d("low_p90_oct", "octaves re 1 kHz", "90th percentile of the lowest strong band (P90 - P10: pitch range)"),
    _d("useful_low_oct", "octaves re 1 kHz", "the analysis' useful low end, log2(useful_low_hz / 1 kHz)"),
    _d("flatness_p50_db", "dB", "median per-frame spectral flatness over 50 Hz - 12.5 kHz (0: flat, "
       "very negative: peaky)"),
    _d("flatness_p10_db", "dB", "10th percentile of the per-frame flatness"),
    _d("flux_p50_db", "dB", "median mean |change| of band levels between consecutive frames"),
    _d("flux_p90_db", "dB", "90th percentile of the same"),
    _d("onset_rate_hz", "1/s", "onsets per active second (10 ms K-weighted energy)"),
    _d("onset_rise_db", "dB", "median rise of the energy at an onset (over up to 30 ms)"),
    _d("onset_step_db", "dB", "median rise over the onset's last 10 ms (sharpness)"),
    _d("decay_100ms_db", "dB", "median fall of the energy 100 ms after an onset's peak"),
    _d("decay_300ms_db", "dB", "median fall 300 ms after the peak (or up to the next onset)"),
    _d("valley_db", "dB", "median depth of the energy between consecutive onsets below the first's peak"),
    _d("env_range_db", "dB", "P95 - P10 of the 10 ms energy over active sub-hops"),
    _d("env_median_db", "dB", "P50 - P95 of the 10 ms energy"),
    *(_d(f"mod_{lo:g}_{hi:g}hz", "dB re 1 dB^2", f"power of the 10 ms energy envelope's (dB) fluctuation at "
         f"{lo:g}-{hi:g} Hz, floored at -30")
      for lo, hi in zip(MOD_EDGES_HZ[:-1], MOD_EDGES_HZ[1:])),
    _d("mod_depth_db", "dB", "standard deviation of the clamped 10 ms energy in dB"),
    _d("periodicity", "0..1", "largest normalised autocorrelation of the onset function at 0.2-1.5 s lags"),
    _d("onset_peak_p50_db", "dB", "median onset peak re the loudest onset (bleed pulls it down)"),
    _d("onset_loud_share", "0..1", "share of onsets within 10 dB of the loudest"),
    _d("onset_centroid_range_oct", "octaves", "P90 - P10 of the spectral centroid of the frames holding onsets "
       "(several pieces: wide)"),
    _d("onset_centroid_loud_oct", "octaves re 1 kHz", "median centroid of the frames holding the loud onsets"),
    _d("comod_low_high", "-1..1", "correlation over active frames of the level (dB) below 160 Hz and above 2.5 kHz"),
    _d("comod_low_mid", "-1..1", "the same, below 160 Hz against 400 Hz - 2.5 kHz"),
    _d("comod_mid_high", "-1..1", "the same, 400 Hz - 2.5 kHz against above 2.5 kHz"),
    _d("strong_bands_p50", "bands", "median count of bands within 10 dB of a frame's loudest (31.5 Hz up)"),
    *(_d(f"skew_{g}", "", f"skewness of the {g} group's frame-to-frame level changes (+: sharp rises, slow falls)")
      for g in GROUP_NAMES),
    _d("env_skew", "", "skewness of the 10 ms energy's changes"),
    _d("active_fraction", "0..1", "share of 100 ms frames that are active (the analysis' activity)"),
    _d("crest_db", "dB", "sample peak over active RMS"),
    _d("plr_db", "dB", "true peak over integrated loudness"),
    _d("lra_lu", "LU", "loudness range (EBU Tech 3342)"),
    _d("rms_spread_db", "dB", "P95 - P10 of the active 100 ms RMS, at most 60"),
    _d("correlation", "-1..1", "inter-channel correlation (1 for a mono file, 0 for one-sided)"),
    _d("correlation_low", "-1..1", "the same below 150 Hz"),
    _d("width", "0..1", "side / (mid + side) energy"),
    _d("abs_pan", "0..1", "|(E_R - E_L) / (E_R + E_L)|"),
    _d("width_low", "0..1", "energy-weighted band width below 250 Hz"),
    _d("width_mid", "0..1", "band width 250 Hz - 4 kHz"),
    _d("width_high", "0..1", "band width above 4 kHz"),
)
NAMES = tuple(d[0] for d in DESCRIPTORS)
N_DESCRIPTORS = len(DESCRIPTORS)


def code_hash() -> str:
    """A hash of this module's code (docstrings and comments left out), 16 hex digits.

    The shipped model records it: descriptors computed by other code would not match its weights.
    """
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def _oct(hz: np.ndarray | float) -> np.ndarray | float:
    return np.log2(np.asarray(hz, dtype=np.float64) / 1000.0)


_BAND_OCT = _oct(BAND_CENTERS_HZ)
_GROUPS = [np.flatnonzero((BAND_CENTERS_HZ >= lo) & (BAND_CENTERS_HZ < hi))
           for lo, hi in zip(GROUP_EDGES_HZ[:-1], GROUP_EDGES_HZ[1:])]
_GROUP_MATRIX = np.zeros((N_BANDS, len(_GROUPS)))
for _g, _idx in enumerate(_GROUPS):
    _GROUP_MATRIX[_idx, _g] = 1.0
#: Co-modulation groups: below 160 Hz, 400 Hz - 2.5 kHz, above 2.5 kHz.
_COMOD_MATRIX = np.stack([_GROUP_MATRIX[:, list(idx)].sum(axis=1) for idx in ((0, 1), (3, 4), (5, 6))], axis=1)
_FLAT_BANDS = np.flatnonzero((BAND_CENTERS_HZ >= 50.0) & (BAND_CENTERS_HZ <= 12500.0))
_LOWEST_FROM = int(np.searchsorted(BAND_CENTERS_HZ, 31.5))


def _pct(values: np.ndarray, q, default: float = 0.0):
    """Percentiles (numpy's default linear interpolation) from one sort: many small calls to
    ``np.percentile`` would cost more than everything else here."""
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if len(values) == 0:
        out = np.full(len(qs), float(default))
    else:
        ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
        pos = qs / 100.0 * (len(ordered) - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, len(ordered) - 1)
        out = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return out if np.ndim(q) else float(out[0])


def _pct_columns(values: np.ndarray, qs) -> np.ndarray:
    """:func:`_pct` of every column at once, shape ``(len(qs), columns)``."""
    ordered = np.sort(values, axis=0)
    pos = np.asarray(qs, dtype=np.float64) / 100.0 * (len(ordered) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)[:, None]


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, _TINY))


def _spectrum(bands: np.ndarray, active: np.ndarray) -> list[float]:
    chosen = bands[active] if active.any() else bands
    mean = chosen.mean(axis=0)
    total = float(mean.sum())
    if total <= _TINY:
        return [SHARE_FLOOR_DB] * N_BANDS + [0.0] * 4
    share = mean / total
    shares = np.maximum(_db(share), SHARE_FLOOR_DB)
    centroid = float(np.sum(share * _BAND_OCT))
    spread = float(np.sqrt(np.sum(share * (_BAND_OCT - centroid) ** 2)))
    cumulative = np.cumsum(share)
    edge05 = float(_BAND_OCT[min(int(np.searchsorted(cumulative, 0.05)), N_BANDS - 1)])
    edge95 = float(_BAND_OCT[min(int(np.searchsorted(cumulative, 0.95)), N_BANDS - 1)])
    return [*shares.tolist(), centroid, spread, edge05, edge95]


def _playing(bands: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The active frames that hold sound: digital silence inside an active stretch is left out."""
    frames = bands[active] if active.any() else bands
    totals = frames.sum(axis=1)
    return frames[totals > totals.max(initial=0.0) * 10.0 ** (-SILENT_BELOW_DB / 10.0)] if len(frames) else frames


def _over_time(bands: np.ndarray, active: np.ndarray) -> list[float]:
    frames = _playing(bands, active)
    totals = frames.sum(axis=1)
    loud = totals > (totals.max(initial=0.0) * 10.0 ** (-FRAME_RANGE_DB / 10.0)) if len(totals) else totals > 0
    if len(frames):
        power = frames @ _GROUP_MATRIX
        p10, p50, p90 = _pct_columns(_db(power), [10, 50, 90])
        ranges = np.minimum(p90 - p10, 60.0).tolist()
        medians = np.maximum(p50 - _db(power.mean(axis=0)), -60.0).tolist()
    else:
        ranges, medians = [0.0] * len(_GROUPS), [0.0] * len(_GROUPS)
    sel = frames[loud]
    if len(sel) == 0:
        return ranges + medians + [0.0] * 3 + [0.0] * 3 + [0.0] * 4
    share = sel / np.maximum(sel.sum(axis=1, keepdims=True), _TINY)
    centroids = share @ _BAND_OCT
    level = _db(sel)
    strong = level >= level.max(axis=1, keepdims=True) - STRONG_WITHIN_DB
    strong[:, :_LOWEST_FROM] = False
    has = strong.any(axis=1)
    lowest = _BAND_OCT[np.argmax(strong[has], axis=1)] if has.any() else np.zeros(0)
    flat = sel[:, _FLAT_BANDS]
    flatness = _db(np.exp(np.mean(np.log(np.maximum(flat, _TINY)), axis=1))) - _db(flat.mean(axis=1))
    clamped = np.maximum(level, level.max(axis=1, keepdims=True) - 60.0)
    flux = np.abs(np.diff(clamped, axis=0)).mean(axis=1) if len(clamped) > 1 else np.zeros(0)
    return (ranges + medians + [float(v) for v in _pct(centroids, [10, 50, 90])]
            + [float(v) for v in _pct(lowest, [10, 50, 90])]
            + [float(_pct(flatness, 50)), float(_pct(flatness, 10))]
            + [float(v) for v in _pct(flux, [50, 90])])


def _envelope(subhop_power: np.ndarray, channels: int, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 10 ms energy in dB (channel-weighted, clamped) and the active sub-hops' mask."""
    energy = subhop_power.astype(np.float64) @ channel_weights(channels)
    env = _db(energy)
    # Short inactive stretches between active frames (a sparse beat: a kick every second) are part
    # of playing; only longer silences leave the envelope statistics.
    frames = active.copy()
    padded = np.concatenate([np.zeros(BRIDGE_FRAMES, bool), active, np.zeros(BRIDGE_FRAMES, bool)])
    for shift in range(1, BRIDGE_FRAMES + 1):
        frames |= padded[BRIDGE_FRAMES - shift:BRIDGE_FRAMES - shift + len(active)]
        frames |= padded[BRIDGE_FRAMES + shift:BRIDGE_FRAMES + shift + len(active)]
    mask = np.repeat(frames, SUBHOPS_PER_FRAME)[: len(env)]
    if len(mask) < len(env):
        mask = np.concatenate([mask, np.zeros(len(env) - len(mask), dtype=bool)])
    if not mask.any():
        mask = energy > _TINY
    loud = float(env[mask].max()) if mask.any() else -200.0
    return np.maximum(env, loud - ENVELOPE_RANGE_DB), mask


def _onsets(env: np.ndarray, mask: np.ndarray) -> tuple[list[float], np.ndarray, np.ndarray]:
    """The onset descriptors, and the onsets (sub-hop indices) with their peak levels (dB)."""
    n = len(env)
    none = np.zeros(0, dtype=np.int64)
    if n < 8 or not mask.any():
        return [0.0] * 8, none, np.zeros(0)
    loud = float(env[mask].max())
    padded = np.concatenate([np.full(3, env[0]), env])
    previous_min = np.min(np.stack([padded[k:k + n] for k in range(3)]), axis=0)
    rise = env - previous_min
    step = env - np.concatenate([[env[0]], env[:-1]])
    wide = np.concatenate([np.full(2, -np.inf), rise, np.full(2, -np.inf)])
    local_max = np.max(np.stack([wide[k:k + n] for k in range(5)]), axis=0)
    # Ties (a flat run of equal rises) count once, at their first sub-hop.
    first = np.concatenate([[True], rise[1:] != rise[:-1]])
    onsets = np.flatnonzero((rise >= ONSET_RISE_DB) & (rise >= local_max) & first
                            & (env >= loud - ONSET_WITHIN_DB) & mask)
    active_s = float(mask.sum()) * 0.01
    rate = len(onsets) / active_s if active_s > 0 else 0.0
    if len(onsets) == 0:
        return [0.0] * 6 + _spread(env[mask]), none, np.zeros(0)
    ahead = np.concatenate([env, np.full(3, -np.inf)])
    window = np.stack([ahead[onsets + k] for k in range(4)])
    peaks = window.max(axis=0)
    peak_at = onsets + window.argmax(axis=0)
    nxt = np.append(onsets[1:], n)

    def fall(after: int) -> np.ndarray:
        at = np.minimum(np.minimum(peak_at + after, nxt - 1), n - 1)
        return peaks - env[np.maximum(at, peak_at)]

    # The lowest energy from each peak up to the next onset: one reduceat over (peak, next onset)
    # pairs, of which every other result is wanted (an empty pair gives the peak itself: no valley).
    if len(onsets) > 1:
        bounds = np.stack([peak_at[:-1], np.maximum(nxt[:-1], peak_at[:-1])], axis=1).ravel()
        lows = np.minimum.reduceat(np.append(env, np.inf), bounds)[::2]
        valleys = peaks[:-1] - np.minimum(lows, env[peak_at[:-1]])
    else:
        valleys = np.zeros(0)
    values = [float(rate), _pct(rise[onsets], 50), _pct(step[onsets], 50), _pct(fall(10), 50), _pct(fall(30), 50),
              _pct(valleys, 50), *_spread(env[mask])]
    return values, onsets, peaks


def _mixture(bands: np.ndarray, active: np.ndarray, onsets: np.ndarray, peaks: np.ndarray) -> list[float]:
    """One source or several?  How loud the hits are against each other, what they sound like,
    how the band groups move together, how many bands are strong at once."""
    frames = _playing(bands, active)
    values = []
    if len(onsets):
        loudest = float(peaks.max())
        at = np.minimum(onsets // SUBHOPS_PER_FRAME, len(bands) - 1)
        share = bands[at] / np.maximum(bands[at].sum(axis=1, keepdims=True), _TINY)
        centroids = share @ _BAND_OCT
        loud = peaks >= loudest - LOUD_ONSET_DB
        c10, c90 = _pct(centroids, [10, 90])
        values += [_pct(peaks, 50) - loudest, float(loud.mean()), float(c90 - c10), _pct(centroids[loud], 50)]
    else:
        values += [0.0, 0.0, 0.0, 0.0]
    groups = _db(frames @ _COMOD_MATRIX)
    centred = groups - groups.mean(axis=0) if len(groups) else groups
    sd = np.sqrt(np.mean(centred ** 2, axis=0)) if len(groups) else np.zeros(3)
    for a, b in ((0, 2), (0, 1), (1, 2)):
        ok = len(groups) > 2 and sd[a] > 1e-6 and sd[b] > 1e-6
        values.append(float(np.clip(np.mean(centred[:, a] * centred[:, b]) / (sd[a] * sd[b]), -1.0, 1.0)) if ok else 1.0)
    level = _db(frames[:, _LOWEST_FROM:])
    strong = (level >= level.max(axis=1, keepdims=True) - STRONG_COUNT_DB).sum(axis=1) if len(level) else np.zeros(1)
    values.append(_pct(strong, 50))
    return values


def _spread(values: np.ndarray) -> list[float]:
    p10, p50, p95 = _pct(values, [10, 50, 95])
    return [float(p95 - p10), float(p50 - p95)]


def _modulation(env: np.ndarray, mask: np.ndarray) -> list[float]:
    values = env[mask]
    depth = float(values.std()) if len(values) else 0.0
    if len(values) < 32:
        return [MOD_FLOOR_DB] * (len(MOD_EDGES_HZ) - 1) + [depth]
    x = values - values.mean()
    seg = min(MOD_SEGMENT, len(x))
    hop = seg // 2
    starts = range(0, len(x) - seg + 1, hop)
    window = np.hanning(seg)
    segments = np.stack([x[s:s + seg] for s in starts]) * window
    spectrum = np.mean(np.abs(np.fft.rfft(segments, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(seg, d=0.01)
    bands = np.array([spectrum[(freqs >= lo) & (freqs < hi)].sum()
                      for lo, hi in zip(MOD_EDGES_HZ[:-1], MOD_EDGES_HZ[1:])])
    # Scaled so the bins sum to the variance of the windowed envelope (Parseval): dB re 1 dB^2.
    bands = bands * 2.0 / (seg * np.sum(window ** 2))
    return [float(v) for v in np.maximum(_db(bands), MOD_FLOOR_DB)] + [depth]


def _periodicity(env: np.ndarray, mask: np.ndarray) -> float:
    values = np.where(mask, env, env[mask].min() if mask.any() else 0.0)
    flux = np.maximum(np.diff(values) - FLUX_FLOOR_DB, 0.0)
    if len(flux) < 200 or not flux.any():
        return 0.0
    x = flux - flux.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(x))))
    spec = np.fft.rfft(x, size)
    acf = np.fft.irfft(np.abs(spec) ** 2, size)[: len(x)]
    if acf[0] <= _TINY:
        return 0.0
    lo, hi = 20, min(150, len(x) - 1)
    return float(np.clip(acf[lo:hi + 1].max() / acf[0], 0.0, 1.0)) if hi > lo else 0.0


def _levels(analysis: StemAnalysis) -> list[float]:
    lv, ld = analysis.levels, analysis.loudness
    p = lv.rms_percentiles_dbfs
    spread = min(p[4] - p[0], 60.0) if p and p[0] is not None and p[4] is not None else 0.0
    return [float(analysis.faults.active_fraction), float(lv.crest_db or 0.0), float(lv.plr_db or 0.0),
            float(ld.lra_lu or 0.0), float(spread)]


def _stereo(analysis: StemAnalysis, bands: np.ndarray, active: np.ndarray) -> list[float]:
    st = analysis.stereo
    if st is None:  # a mono file: it plays identically on both sides
        return [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    corr = st.correlation if st.correlation is not None else 0.0
    corr_low = st.correlation_low if st.correlation_low is not None else corr
    chosen = bands[active] if active.any() else bands
    energy = chosen.mean(axis=0) if len(chosen) else np.zeros(N_BANDS)
    widths = []
    for lo, hi in ((0.0, 250.0), (250.0, 4000.0), (4000.0, 1e9)):
        idx = [b for b in range(N_BANDS) if lo <= BAND_CENTERS_HZ[b] < hi and st.band_width[b] is not None]
        weight = energy[idx].sum() if idx else 0.0
        widths.append(float(sum(energy[b] * st.band_width[b] for b in idx) / weight) if weight > _TINY else 0.0)
    return [float(corr), float(corr_low), float(st.width or 0.0), float(abs(st.pan or 0.0)), *widths]


def _skew(x: np.ndarray) -> np.ndarray:
    """Skewness of each column of ``x`` (0 for fewer than 3 rows or a constant column), in -10..10."""
    if len(x) < 3:
        return np.zeros(x.shape[1])
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd < 1e-9, 1.0, sd)
    return np.where(sd < 1e-9, 0.0, np.clip(np.mean(z ** 3, axis=0), -10.0, 10.0))


def _asymmetry(bands: np.ndarray, active: np.ndarray, env: np.ndarray, mask: np.ndarray) -> list[float]:
    """Sharp rises and slow falls (percussive), or slow rises (swells): the skew of level changes."""
    totals = bands.sum(axis=1)
    loudest = totals.max(initial=0.0)
    playing = active & (totals > loudest * 10.0 ** (-SILENT_BELOW_DB / 10.0))
    pairs = playing[1:] & playing[:-1]
    levels = np.maximum(_db(bands @ _GROUP_MATRIX), float(_db(np.array(loudest))) - 60.0)
    groups = _skew(np.clip(np.diff(levels, axis=0)[pairs], -30.0, 30.0))
    steps = np.clip(np.diff(env)[mask[1:] & mask[:-1]], -30.0, 30.0)
    return [float(v) for v in groups] + [float(_skew(steps[:, None])[0])]


def describe(features: StemFeatures, analysis: StemAnalysis) -> np.ndarray | None:
    """The descriptor vector of one stem, shape ``(N_DESCRIPTORS,)`` float64, in :data:`NAMES` order.

    Parameters
    ----------
    features : StemFeatures
        The stem's features; the slim form (:meth:`StemFeatures.slim`) is enough.
    analysis : StemAnalysis
        Its per-stem analysis (activity, levels, stereo).

    Returns
    -------
    ndarray or None
        ``None`` for a silent stem or one shorter than a second: there is nothing to hear.
    """
    if analysis.faults.silent or features.n_frames < 10 or len(features.subhop_power) < 100:
        return None
    bands = features.band_power.astype(np.float64)
    active = np.asarray(analysis.active, dtype=bool)[: len(bands)]
    if len(active) < len(bands):
        active = np.concatenate([active, np.zeros(len(bands) - len(active), dtype=bool)])
    env, mask = _envelope(features.subhop_power, features.channels, active)
    useful = analysis.spectrum.useful_low_hz
    over_time = _over_time(bands, active)
    onset_values, onsets, peaks = _onsets(env, mask)
    values = (_spectrum(bands, active) + over_time[:20] + [float(_oct(useful)) if useful else 0.0] + over_time[20:]
              + onset_values + _modulation(env, mask) + [_periodicity(env, mask)]
              + _mixture(bands, active, onsets, peaks) + _asymmetry(bands, active, env, mask)
              + _levels(analysis) + _stereo(analysis, bands, active))
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (N_DESCRIPTORS,):
        raise AssertionError(f"{out.shape[0]} descriptors computed, {N_DESCRIPTORS} declared")
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
