"""Polarity between two mics of one source: their low-band cross-correlation at the lag of best alignment.  Pure.

Two close mics on one drum (snare top and bottom, kick in and out) hear the same shell move; in
its low band (the drum's body, 40-350 Hz) their signals are copies of each other, delayed by the
path difference (a millisecond or two) and, when one mic faces the other (a snare bottom mic),
inverted.  Band energies cannot tell: polarity is a property of the waveforms.

So each stem keeps, from the one streamed read of the analysis, a small **low-band signal**
(:class:`LowBandSignal`): the mono sum, averaged down to about 2 kHz, band-passed to
:data:`LOW_BAND_HZ` (a linear-phase windowed-sinc FIR, :func:`band_pass_taps`: every stem is
delayed alike, so lags between stems are kept) and decimated to about 1 kHz, stored as float16 (about 0.5 MB for a 4-minute
stem).  :func:`polarity_between` correlates two of them over lags up to :data:`MAX_LAG_MS`
(band-limited interpolation between the 1 ms samples) and returns the correlation at the lag of
best alignment (largest magnitude), the best positive correlation in the window, and the
correlation at zero lag (how the two sum on the mix bus, where nothing re-aligns them).

The planner decides (bridge/suggest/stereo.py, ``partner_polarity``); this module only measures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The band the signal keeps, Hz: a drum's body and fundamental, below a snare's wires.
LOW_BAND_HZ = (40.0, 350.0)
#: First stage: block means down to about this rate (a cheap anti-alias filter), Hz.
STAGE_RATE_HZ = 2000.0
#: Second stage: every this-many samples of the band-passed signal are kept (about 1 kHz).
SECOND_DECIMATION = 2
#: Lags searched either side of zero, ms (mics of one drum are within about 1.5 m of each other).
MAX_LAG_MS = 5.0
#: Interpolation grid between the signal's samples, ms.
LAG_STEP_MS = 0.05
#: Half-length of the windowed-sinc interpolator, samples.
_SINC_HALF = 12
#: Taps of the band-pass FIR at the first stage's rate (odd: a whole-sample delay of (n - 1) / 2).
BAND_TAPS = 129


def band_pass_taps(rate_hz: float, low_hz: float, high_hz: float, taps: int = BAND_TAPS) -> np.ndarray:
    """A linear-phase band-pass: the difference of two Blackman-windowed sinc low-passes, float64.

    numpy only: the analysis workers never import ``scipy.signal`` (a second of import and tens
    of MB in every process).  Unity gain at the band's geometric centre.
    """
    n = np.arange(taps) - (taps - 1) / 2.0
    ideal = 2.0 * high_hz / rate_hz * np.sinc(2.0 * high_hz / rate_hz * n) \
        - 2.0 * low_hz / rate_hz * np.sinc(2.0 * low_hz / rate_hz * n)
    h = ideal * np.blackman(taps)
    centre = math.sqrt(low_hz * high_hz)
    gain = abs(np.sum(h * np.exp(-2j * math.pi * centre / rate_hz * np.arange(taps))))
    return h / gain


def stage_factor(sample_rate: int) -> int:
    """The block-mean factor of the first stage: ``sample_rate / STAGE_RATE_HZ``, rounded, at least 1."""
    return max(1, int(round(sample_rate / STAGE_RATE_HZ)))


def signal_rate_hz(sample_rate: int) -> float:
    """Sample rate of the low-band signal for a stem read at ``sample_rate``, Hz."""
    return sample_rate / (stage_factor(sample_rate) * SECOND_DECIMATION)


class LowBandSignal:
    """Streams ``(channels, n)`` channel-major blocks to the mono low-band signal (module docs).

    Parameters
    ----------
    sample_rate : int
        Hz.

    Notes
    -----
    Block-size independent: the block-mean remainder and the filter state are carried.
    """

    def __init__(self, sample_rate: int):
        self.q1 = stage_factor(sample_rate)
        rate1 = sample_rate / self.q1
        high = min(LOW_BAND_HZ[1], 0.45 * rate1)
        self._taps = band_pass_taps(rate1, LOW_BAND_HZ[0], high)
        self._ones = np.ones(self.q1, dtype=np.float32)
        self._history = np.zeros(len(self._taps) - 1)  # the FIR's last inputs (zeros before the start)
        self._rest = np.zeros((0, 0), dtype=np.float32)
        self._phase = 0  # index (in stage-1 samples) of the next kept sample, relative to the next block
        self._parts: list[np.ndarray] = []

    def feed(self, samples: np.ndarray) -> None:
        """One block, shape ``(channels, n)``."""
        n = samples.shape[1]
        if n == 0:
            return
        channels = samples.shape[0]
        start = 0
        means = []
        if self._rest.shape[1] if self._rest.ndim == 2 else 0:
            # Complete the block mean left open by the previous block.
            need = self.q1 - self._rest.shape[1]
            head = np.concatenate([self._rest, samples[:, :need]], axis=1)
            start = min(need, n)
            if head.shape[1] < self.q1:
                self._rest = head
                return
            means.append(np.array([head.sum(dtype=np.float64) / (channels * self.q1)]))
        whole = (n - start) // self.q1 * self.q1
        if whole:
            # One pass over the block, in its own precision: channels and q1 samples summed together.
            body = samples[:, start:start + whole].reshape(channels, -1, self.q1)
            means.append((body @ self._ones).sum(axis=0, dtype=np.float64) / (channels * self.q1))
        self._rest = samples[:, start + whole:].copy()
        if not means:
            return
        stage = np.concatenate(means) if len(means) > 1 else means[0]
        joined = np.concatenate([self._history, stage])
        filtered = np.convolve(joined, self._taps, mode="valid")  # causal: y[n] = sum h[k] x[n - k]
        self._history = joined[len(joined) - len(self._history):]
        kept = filtered[self._phase::SECOND_DECIMATION]
        self._phase = (self._phase - len(filtered)) % SECOND_DECIMATION
        if len(kept):
            self._parts.append(kept.astype(np.float16))

    def result(self) -> np.ndarray:
        """The signal so far, float16, shape ``(n,)``."""
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float16)


@dataclass(frozen=True, slots=True)
class PolarityMeasure:
    """How two low-band signals line up.

    Attributes
    ----------
    correlation : float
        Normalised cross-correlation at the lag of best alignment (largest magnitude), -1..1.
    lag_ms : float
        That lag: positive when the second signal comes later.
    best_positive : float
        The largest correlation in the lag window (what the pair reaches when in polarity).
    zero_lag : float
        The correlation at zero lag: how the two sum as they are.
    energy_ratio_db : float
        The second signal's energy against the first's, dB.
    """

    correlation: float
    lag_ms: float
    best_positive: float
    zero_lag: float
    energy_ratio_db: float


def _xcorr(a: np.ndarray, b: np.ndarray, lags: range) -> np.ndarray:
    """``sum_t a[t] b[t + lag]`` for each integer lag (no wrap-around)."""
    n = len(a)
    out = np.empty(len(lags))
    for i, lag in enumerate(lags):
        if lag >= 0:
            out[i] = float(a[: n - lag] @ b[lag:])
        else:
            out[i] = float(a[-lag:] @ b[: n + lag])
    return out


def polarity_between(a: np.ndarray | None, b: np.ndarray | None, rate_hz: float,
                     max_lag_ms: float = MAX_LAG_MS) -> PolarityMeasure | None:
    """Correlate two low-band signals (same rate) over lags within ``max_lag_ms``.

    Returns ``None`` when either is missing, silent or shorter than a second.
    """
    if a is None or b is None or rate_hz <= 0:
        return None
    n = min(len(a), len(b))
    if n < rate_hz:
        return None
    x = np.asarray(a[:n], dtype=np.float64)
    y = np.asarray(b[:n], dtype=np.float64)
    ex, ey = float(x @ x), float(y @ y)
    if ex <= 0.0 or ey <= 0.0:
        return None
    reach = int(math.ceil(max_lag_ms * rate_hz / 1000.0))
    lags = range(-reach - _SINC_HALF, reach + _SINC_HALF + 1)
    r = _xcorr(x, y, lags) / math.sqrt(ex * ey)
    # Band-limited interpolation (Hann-windowed sinc) onto a fine grid of lags.
    fine = np.arange(-max_lag_ms, max_lag_ms + 1e-9, LAG_STEP_MS) * rate_hz / 1000.0
    taps = np.arange(-_SINC_HALF, _SINC_HALF + 1)
    base = np.floor(fine).astype(int)
    offsets = base[:, None] + taps[None, :]           # integer lags used by each fine lag
    dist = fine[:, None] - offsets
    window = 0.5 * (1.0 + np.cos(np.pi * np.clip(dist / (_SINC_HALF + 1), -1.0, 1.0)))
    kernel = np.sinc(dist) * window
    values = (kernel * r[offsets - lags.start]).sum(axis=1)
    best = int(np.argmax(np.abs(values)))
    zero = float(r[-lags.start])
    return PolarityMeasure(correlation=float(np.clip(values[best], -1.0, 1.0)),
                           lag_ms=float(fine[best] * 1000.0 / rate_hz),
                           best_positive=float(np.clip(values.max(), -1.0, 1.0)),
                           zero_lag=float(np.clip(zero, -1.0, 1.0)),
                           energy_ratio_db=10.0 * math.log10(ey / ex))
