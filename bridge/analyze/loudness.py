"""Loudness per ITU-R BS.1770-4 and EBU R 128 (Tech 3341 / Tech 3342), from streamed energies.

The only pass over audio is :class:`KWeightedEnergy`, which K-weights each block and keeps the
mean square of every 10 ms sub-hop per channel.  Everything else (momentary, short-term,
integrated, loudness range, per-section loudness) is a pure function of those sub-hop energies,
so memory is a few hundred kB per stem whatever its length.
"""
from __future__ import annotations

import math

import numpy as np

#: Sub-hop for energies: 10 ms, the momentary grid Tech 3341 cases 13/14 need.
SUBHOP_S = 0.010
#: Sub-hops per 100 ms frame of the shared analysis grid.
SUBHOPS_PER_FRAME = 10
#: Momentary window, 400 ms (Tech 3341), in sub-hops.
MOMENTARY_SUBHOPS = 40
#: Short-term window, 3 s (Tech 3341), in sub-hops.
SHORT_TERM_SUBHOPS = 300
#: Absolute gate, LUFS (BS.1770-4, Tech 3342).
ABSOLUTE_GATE_LUFS = -70.0
#: Relative gate for integrated loudness, LU below the absolutely gated level (BS.1770-4).
RELATIVE_GATE_LU = -10.0
#: Relative gate for loudness range, LU (Tech 3342).
LRA_RELATIVE_GATE_LU = -20.0
#: Loudness below this is reported as digital silence (undefined), not as a number.
SILENCE_LUFS = -150.0
#: The constant of the BS.1770 loudness formula.
LOUDNESS_OFFSET_DB = -0.691


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """K-weighting as two biquads for any sample rate, shape ``(2, 6)`` in scipy ``sos`` layout.

    The coefficients are computed from the analog prototype of BS.1770-4 Annex 1 (as libebur128
    and De Man do); at 48 kHz they reproduce the Recommendation's table to about 1e-15.  The
    high-pass numerator stays un-normalised ``[1, -2, 1]`` like BS.1770 Table 2: normalising it
    (the RBJ cookbook way) reads about 0.04 LU low.
    """
    fs = float(sample_rate)
    # Stage 1: high shelf modelling the head.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # Stage 2: the RLB high-pass.
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770-4 channel weights G_i for the usual WAV channel orders.

    1-3 channels: L, R, C at 1.0.  4: L, R, Ls, Rs.  5: L, R, C, Ls, Rs.  6 (5.1, WAV order):
    L, R, C, LFE, Ls, Rs with the LFE left out.  8 (7.1): L, R, C, LFE and four surrounds at 1.41.
    Other counts weigh every channel 1.0.
    """
    table = {
        4: [1.0, 1.0, 1.41, 1.41],
        5: [1.0, 1.0, 1.0, 1.41, 1.41],
        6: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41],
        8: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41],
    }
    return np.array(table.get(channels, [1.0] * channels), dtype=np.float64)


class KWeightedEnergy:
    """Streaming K-weighting and 10 ms energy accumulator.

    Parameters
    ----------
    sample_rate : int
        Hz; must be a multiple of 100 so a sub-hop is a whole number of samples.
    channels : int

    Notes
    -----
    The filter state is carried between blocks (:mod:`bridge.analyze.kweight`), so the result
    does not depend on the block size.  Samples after the last whole sub-hop are not measured,
    as BS.1770 counts only whole blocks.
    """

    def __init__(self, sample_rate: int, channels: int):
        from .kweight import KWeighting

        self.subhop = sample_rate // 100
        self.channels = channels
        self._filter = KWeighting(k_weighting_sos(sample_rate), channels, self.subhop)
        self._chunks: list[np.ndarray] = []

    def feed(self, channel_major: np.ndarray) -> None:
        """Filter one block, shape ``(channels, frames)`` float32, and keep its sub-hop energies."""
        energy = self._filter.feed(channel_major)
        if len(energy):
            self._chunks.append(energy)

    def result(self) -> np.ndarray:
        """Mean square per 10 ms sub-hop and channel, shape ``(subhops, channels)``, float64.

        Closes the stream: the samples the filter still holds are measured first.
        """
        last = self._filter.finish()
        if len(last):
            self._chunks.append(last)
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros((0, self.channels))
        return np.concatenate(chunks)


def _to_lufs(weighted_power: np.ndarray) -> np.ndarray:
    """Channel-weighted power to loudness; ``-inf`` where the power is zero."""
    with np.errstate(divide="ignore"):
        return LOUDNESS_OFFSET_DB + 10.0 * np.log10(weighted_power)


def _window_means(subhop_power: np.ndarray, window: int, step: int) -> np.ndarray:
    """Mean power of every complete window of ``window`` sub-hops, starting every ``step``.

    Returns shape ``(windows, channels)``.  Window ``j`` covers sub-hops
    ``[j*step, j*step + window)``.
    """
    n = len(subhop_power)
    if n < window:
        return np.zeros((0, subhop_power.shape[1]))
    csum = np.concatenate([np.zeros((1, subhop_power.shape[1])), np.cumsum(subhop_power, axis=0)])
    starts = np.arange(0, n - window + 1, step)
    return (csum[starts + window] - csum[starts]) / window


def max_momentary_lufs(subhop_power: np.ndarray, weights: np.ndarray, chunk: int = 1 << 18) -> float:
    """The largest momentary loudness on the 10 ms grid (``max(momentary_lufs(..., step=1))``), in
    chunks of windows: the whole 10 ms series of a 3-hour stem is never formed at once.

    ``-inf`` for digital silence (and for fewer than 40 sub-hops).  The same value as the whole
    series' maximum: the loudness of a power is monotonic in it.
    """
    n = len(subhop_power)
    if n < MOMENTARY_SUBHOPS:
        return -math.inf
    csum = np.concatenate([np.zeros((1, subhop_power.shape[1])), np.cumsum(subhop_power, axis=0)])
    best = -math.inf
    for first in range(0, n - MOMENTARY_SUBHOPS + 1, chunk):
        starts = np.arange(first, min(first + chunk, n - MOMENTARY_SUBHOPS + 1))
        values = _to_lufs(((csum[starts + MOMENTARY_SUBHOPS] - csum[starts]) / MOMENTARY_SUBHOPS) @ weights)
        finite = values[np.isfinite(values)]
        if len(finite):
            best = max(best, float(finite.max()))
    return best


def momentary_lufs(subhop_power: np.ndarray, weights: np.ndarray, step: int = 1) -> np.ndarray:
    """Momentary loudness (400 ms window, ungated, Tech 3341), one value every ``step`` x 10 ms.

    Value ``j`` is the window ending at ``(j*step + 40) * 10 ms``.  ``-inf`` for digital silence.
    """
    return _to_lufs(_window_means(subhop_power, MOMENTARY_SUBHOPS, step) @ weights)


def short_term_lufs(subhop_power: np.ndarray, weights: np.ndarray, step: int = SUBHOPS_PER_FRAME) -> np.ndarray:
    """Short-term loudness (3 s window, ungated, Tech 3341), one value every ``step`` x 10 ms."""
    return _to_lufs(_window_means(subhop_power, SHORT_TERM_SUBHOPS, step) @ weights)


def gating_blocks(subhop_power: np.ndarray) -> np.ndarray:
    """The BS.1770-4 gating blocks: 400 ms, 75 % overlap, shape ``(blocks, channels)`` of powers.

    Block ``j`` covers ``[j*100 ms, j*100 ms + 400 ms)``; only complete blocks exist.
    """
    return _window_means(subhop_power, MOMENTARY_SUBHOPS, SUBHOPS_PER_FRAME)


def integrated_lufs(blocks: np.ndarray, weights: np.ndarray) -> float | None:
    """Gated integrated loudness (BS.1770-4, section 2.8) from gating-block powers.

    Parameters
    ----------
    blocks : ndarray [shape=(blocks, channels)]
        Per-channel mean squares of K-weighted 400 ms blocks (:func:`gating_blocks`, or a
        subset of them for a section).
    weights : ndarray [shape=(channels,)]

    Returns
    -------
    float or None
        LUFS; ``None`` when no block passes the absolute gate (silence is undefined, not -inf).
    """
    if len(blocks) == 0:
        return None
    block_lufs = _to_lufs(blocks @ weights)
    above_abs = block_lufs > ABSOLUTE_GATE_LUFS
    if not above_abs.any():
        return None
    relative_gate = _to_lufs(blocks[above_abs].mean(axis=0) @ weights) + RELATIVE_GATE_LU
    kept = above_abs & (block_lufs > relative_gate)
    return float(_to_lufs(blocks[kept].mean(axis=0) @ weights))


def loudness_range_lu(short_term: np.ndarray) -> float | None:
    """Loudness range per EBU Tech 3342 from a short-term series on a 100 ms hop.

    Absolute gate -70 LUFS, relative gate -20 LU below the energy mean of what passed, then the
    spread between the 10th and 95th percentiles, indexed as the reference code does
    (``s[round((n-1)*p)]`` on the sorted values).  ``None`` when nothing passes the gates.
    """
    st = short_term[np.isfinite(short_term)]
    st = st[st >= ABSOLUTE_GATE_LUFS]
    if len(st) == 0:
        return None
    gate = 10.0 * np.log10(np.mean(10.0 ** (st / 10.0))) + LRA_RELATIVE_GATE_LU
    st = np.sort(st[st >= gate])
    n = len(st)
    low = st[int(math.floor((n - 1) * 0.10 + 0.5))]
    high = st[int(math.floor((n - 1) * 0.95 + 0.5))]
    return float(high - low)
