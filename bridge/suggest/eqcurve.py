"""Magnitude responses of the plan's EQ bands on the analysis bands.  Pure numpy.

The bands are ReaEQ's, designed exactly as the renderer designs them (:mod:`bridge.render.eq`: RBJ
"Audio EQ Cookbook" biquads from what REAPER would hold after the targets' clamps); here only
their power gain matters, averaged over each 1/3-octave band (bins spread evenly in Hz within a
band, as the analysis' 10 Hz FFT bins are), so a predicted band energy is the measured one times
that average.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..analyze.loudness import k_weighting_sos
from ..render import eq as render_eq
from ..analyze.spectrum import BAND_HIGH_HZ, BAND_LOW_HZ, N_BANDS
from .model import EqBand

#: Frequencies per band at which responses are evaluated and power-averaged.
POINTS_PER_BAND = 9


@lru_cache(maxsize=8)
def band_points_hz(sample_rate: int) -> np.ndarray:
    """Evaluation frequencies, shape ``(bands, POINTS_PER_BAND)``: even in Hz inside each band."""
    nyquist = sample_rate / 2.0
    lo = np.minimum(BAND_LOW_HZ, nyquist * 0.999)
    hi = np.minimum(BAND_HIGH_HZ, nyquist * 0.999)
    steps = (np.arange(POINTS_PER_BAND) + 0.5) / POINTS_PER_BAND
    return lo[:, None] + (hi - lo)[:, None] * steps[None, :]


def biquad(band: EqBand, sample_rate: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The renderer's coefficients ``(b, a)`` of one plan band, after the DAW targets' clamps.

    One design for the prediction and the audio: :func:`bridge.render.eq.biquad` of
    :func:`bridge.render.eq.reaper_band` (RBJ cookbook; peaks from the bandwidth REAPER holds).
    """
    sos = render_eq.biquad(render_eq.reaper_band(band.kind, band.freq_hz, band.gain_db, band.q), sample_rate)
    return (float(sos[0]), float(sos[1]), float(sos[2])), (1.0, float(sos[4]), float(sos[5]))


def _power_response(b, a, freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    z = np.exp(-1j * 2.0 * np.pi * freqs_hz / sample_rate)
    num = b[0] + b[1] * z + b[2] * z * z
    den = a[0] + a[1] * z + a[2] * z * z
    return np.abs(num) ** 2 / np.maximum(np.abs(den) ** 2, 1e-300)


def band_power_gain(bands: tuple[EqBand, ...] | list[EqBand], sample_rate: int) -> np.ndarray:
    """Power gain of a chain of bands, averaged over each analysis band, shape ``(bands,)``."""
    points = band_points_hz(sample_rate)
    total = np.ones_like(points)
    for band in bands:
        b, a = biquad(band, sample_rate)
        total = total * _power_response(b, a, points, sample_rate)
    return total.mean(axis=1)


def band_gain_db(bands, sample_rate: int) -> np.ndarray:
    """:func:`band_power_gain` in dB."""
    return 10.0 * np.log10(np.maximum(band_power_gain(bands, sample_rate), 1e-30))


@lru_cache(maxsize=8)
def k_weighting_band_gain(sample_rate: int) -> np.ndarray:
    """BS.1770-4 K-weighting power gain averaged over each analysis band, shape ``(bands,)``.

    Used to turn band energies into (K-weighted) loudness changes.
    """
    points = band_points_hz(sample_rate)
    total = np.ones_like(points)
    for section in k_weighting_sos(sample_rate):
        total = total * _power_response(section[:3], section[3:], points, sample_rate)
    out = total.mean(axis=1)
    assert len(out) == N_BANDS
    return out


def weighted_band_power_gain(bands, sample_rate: int) -> np.ndarray:
    """Power gain of the chain times K-weighting, averaged over each band (for loudness)."""
    points = band_points_hz(sample_rate)
    total = np.ones_like(points)
    for section in k_weighting_sos(sample_rate):
        total = total * _power_response(section[:3], section[3:], points, sample_rate)
    for band in bands:
        b, a = biquad(band, sample_rate)
        total = total * _power_response(b, a, points, sample_rate)
    return total.mean(axis=1)
