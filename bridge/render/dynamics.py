"""A feed-forward compressor with ReaComp's parameters, streamed in blocks.  Pure.

Signal flow (docs/render.md says which parts are REAPER's documented behaviour and which are
assumed):

1. **Detector**: the mean power of the channels (stereo-linked), averaged over a sliding window
   of ``rms_ms`` (ReaComp's "RMS size", assumed 5 ms by default); ``rms_ms = 0`` is a peak
   detector.  Level in dB RMS (a full-scale sine reads -3.01 dB).
2. **Gain computer**: hard knee by default, ``gr = max(0, (level - threshold) * (1 - 1/ratio))``;
   a soft knee of ``knee_db`` uses the quadratic knee of Giannoulis, Massberg & Reiss (JAES 2012).
3. **Smoothing of the gain reduction, in dB**: the "smooth decoupled" detector of the same paper.
   A release stage ``r[n] = max(x[n], aR * r[n-1] + (1 - aR) * x[n])`` (instant rise, one-pole
   fall with the release time constant), then a one-pole attack stage
   ``g[n] = aA * g[n-1] + (1 - aA) * r[n]``.  A rise in gain reduction follows exactly a one-pole
   with the attack time constant; a fall follows the release one-pole smoothed by the attack one.
   ``a = exp(-1 / (tau * fs))``, tau the time constant (63 %).
4. **Output**: ``x * 10^(-g/20) * wet`` where ``wet`` is the make-up gain (the targets write it
   through ReaComp's Wet; Dry stays at its default, off).

Both smoothing stages are computed without a per-sample Python loop and exactly (to rounding):
the release stage is a Lindley recursion, ``d[n] = max(0, aR * (d[n-1] - dx[n]))`` for
``d = r - x``, whose closed form over a chunk is a cumulative sum and a running minimum
(:func:`_release_stage`); the attack stage is linear, ``scipy.signal.lfilter`` with carried state.
So the output does not depend on the block size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..daw import mapping

#: ReaComp's RMS size when the plan does not say (assumed; reaper.md lists the parameter, not its default).
DEFAULT_RMS_MS = 5.0
#: Power floor before the logarithm: -300 dB.
_POWER_FLOOR = 1e-30
#: Gain reduction below this (dB) is taken as none; keeps long release tails out of subnormal floats.
_GR_FLOOR_DB = 1e-9
#: A chunk of the release stage spans at most this many release time constants (exp(500) fits a float64).
_MAX_CHUNK_TAUS = 500.0


@dataclass(frozen=True, slots=True)
class CompSettings:
    """ReaComp as REAPER holds it (after the targets' clamped mapping; see :func:`reaper_comp`).

    Attributes
    ----------
    threshold_db : float
        dB RMS.
    ratio : float
        ``>= 1``.
    attack_ms, release_ms : float
        One-pole time constants.
    makeup_db : float
        ReaComp's Wet gain.
    knee_db : float
        0 = hard knee (ReaComp's default, assumed).
    rms_ms : float
        Detector window; 0 = peak.
    """

    threshold_db: float
    ratio: float
    attack_ms: float
    release_ms: float
    makeup_db: float = 0.0
    knee_db: float = 0.0
    rms_ms: float = DEFAULT_RMS_MS


def reaper_comp(threshold_db: float = 0.0, ratio: float = 4.0, attack_ms: float = 3.0, release_ms: float = 100.0,
                makeup_db: float = 0.0) -> CompSettings:
    """Plan values -> the ReaComp settings REAPER ends up with.

    Each value goes through the normalised mapping the targets write with
    (:mod:`bridge.daw.mapping`) and back, so its clamps apply: threshold at most +6 dB, ratio
    1..100, attack 0..500 ms, release 0..5000 ms, make-up (Wet) at most +6 dB.  A parameter the
    plan leaves out keeps ReaComp's default (threshold 0 dB, 4:1, attack 3 ms, release 100 ms,
    Wet 0 dB; reaper.md 3.1), as on a freshly inserted ReaComp.
    """
    threshold = 20.0 * math.log10(max(2.0 * mapping.reacomp_threshold_normalized(threshold_db), 1e-12))
    return CompSettings(
        threshold_db=threshold,
        ratio=1.0 + 99.0 * mapping.reacomp_ratio_normalized(ratio),
        attack_ms=500.0 * mapping.reacomp_attack_normalized(attack_ms),
        release_ms=5000.0 * mapping.reacomp_release_normalized(release_ms),
        makeup_db=20.0 * math.log10(max(2.0 * mapping.reacomp_wet_normalized(makeup_db), 1e-12)),
    )


def one_pole_coefficient(time_ms: float, sample_rate: int) -> float:
    """``exp(-1 / (tau * fs))``; 0 for an instant (0 ms) stage."""
    if time_ms <= 0.0:
        return 0.0
    return math.exp(-1000.0 / (time_ms * sample_rate))


def static_gain_reduction_db(level_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float = 0.0) -> np.ndarray:
    """The gain computer: gain reduction (dB, >= 0) for a detector level (dB)."""
    slope = 1.0 - 1.0 / ratio
    over = np.asarray(level_db, dtype=np.float64) - threshold_db
    if knee_db <= 0.0:
        return np.maximum(over, 0.0) * slope
    half = knee_db / 2.0
    return np.where(over <= -half, 0.0,
                    np.where(over >= half, over * slope, slope * (over + half) ** 2 / (2.0 * knee_db)))


def _release_stage(x: np.ndarray, a: float, d_prev: float, x_prev: float) -> tuple[np.ndarray, float]:
    """``r[n] = max(x[n], a*r[n-1] + (1-a)*x[n])`` over one block, exactly; returns (r, d_last).

    With ``d = r - x`` this is ``d[n] = max(0, a*(d[n-1] - dx[n]))``.  Writing
    ``d[n] = a^(n+1) * e[n]`` gives the Lindley recursion ``e[n] = max(0, e[n-1] + u[n])`` with
    ``u[n] = -a^-n * dx[n]``, whose solution is ``S[n] - min(0, min_{k<=n} S[k])`` for the running
    sum ``S`` started at ``d_prev``.  Chunks keep ``a^-n`` inside float64's range.
    """
    n_total = len(x)
    if a <= 0.0 or n_total == 0:
        return x.copy(), 0.0
    log_a = math.log(a)
    chunk = max(1, min(n_total, int(_MAX_CHUNK_TAUS / -log_a)))
    steps = np.arange(chunk, dtype=np.float64)
    inv_powers = np.exp(-log_a * steps)  # a^-n
    powers = np.exp(log_a * (steps + 1.0))  # a^(n+1)
    out = np.empty(n_total)
    for start in range(0, n_total, chunk):
        xs = x[start:start + chunk]
        m = len(xs)
        dx = np.diff(xs, prepend=x_prev)
        s = d_prev + np.cumsum(-inv_powers[:m] * dx)
        e = s - np.minimum(np.minimum.accumulate(s), 0.0)
        d = powers[:m] * e
        out[start:start + m] = xs + d
        d_prev = float(d[-1]) if d[-1] > _GR_FLOOR_DB else 0.0
        x_prev = float(xs[-1])
    return out, d_prev


class StreamingCompressor:
    """ReaComp-style compression of ``(frames, channels)`` blocks with state carried across blocks.

    Parameters
    ----------
    settings : CompSettings
    sample_rate : int
        Hz.
    channels : int
    """

    def __init__(self, settings: CompSettings, sample_rate: int, channels: int):
        self.settings = settings
        self.sample_rate = sample_rate
        self._window = max(1, int(round(settings.rms_ms * sample_rate / 1000.0))) if settings.rms_ms > 0 else 0
        self._history = np.zeros(max(self._window - 1, 0))  # the last window-1 detector powers
        self._a_release = one_pole_coefficient(settings.release_ms, sample_rate)
        self._a_attack = one_pole_coefficient(settings.attack_ms, sample_rate)
        self._d_prev = 0.0  # release stage: r - x at the last sample
        self._x_prev = 0.0  # release stage: the last target
        self._zi = np.zeros(1)  # attack stage
        self._wet = 10.0 ** (settings.makeup_db / 20.0)
        #: Largest gain reduction so far, dB (for the report).
        self.max_gain_reduction_db = 0.0

    def detector_db(self, block: np.ndarray) -> np.ndarray:
        """The detector level of each frame, dB RMS over the window (peak when ``rms_ms`` is 0)."""
        squares = np.square(block)
        if self._window == 0:  # peak detector: the louder channel, sample by sample
            mean = squares.max(axis=1)
        elif self._window == 1:
            mean = squares.mean(axis=1)
        else:
            power = squares.mean(axis=1)
            joined = np.concatenate([self._history, power])
            csum = np.concatenate([[0.0], np.cumsum(joined)])
            w = self._window
            mean = (csum[w:] - csum[:-w]) / w
            self._history = joined[len(joined) - (w - 1):]
        return 10.0 * np.log10(np.maximum(mean, 0.0) + _POWER_FLOOR)

    def gain_reduction_db(self, block: np.ndarray) -> np.ndarray:
        """The smoothed gain reduction (dB, >= 0) for each frame of ``block``; advances the state."""
        s = self.settings
        target = static_gain_reduction_db(self.detector_db(block), s.threshold_db, s.ratio, s.knee_db)
        if self._d_prev == 0.0 and self._x_prev == 0.0 and self._zi[0] == 0.0 and not target.any():
            return target  # below the threshold with no reduction left to release: none at all
        released, self._d_prev = _release_stage(target, self._a_release, self._d_prev, self._x_prev)
        self._x_prev = float(target[-1])
        released[released < _GR_FLOOR_DB] = 0.0
        a = self._a_attack
        if a > 0.0:
            smoothed, self._zi = signal.lfilter([1.0 - a], [1.0, -a], released, zi=self._zi)
            if abs(self._zi[0]) < _GR_FLOOR_DB:
                self._zi[0] = 0.0
        else:
            smoothed = released
        if len(smoothed):
            self.max_gain_reduction_db = max(self.max_gain_reduction_db, float(smoothed.max()))
        return smoothed

    def process(self, block: np.ndarray) -> np.ndarray:
        """Compress one block, shape ``(frames, channels)``; returns float64 of the same shape."""
        block = np.asarray(block, dtype=np.float64)
        if len(block) == 0:
            return block
        reduction = self.gain_reduction_db(block)
        if not reduction.any():
            return block * self._wet
        gain = np.exp(reduction * (-math.log(10.0) / 20.0)) * self._wet
        return block * gain[:, None]
