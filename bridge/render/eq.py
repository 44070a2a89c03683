"""ReaEQ bands as RBJ biquads (Audio EQ Cookbook), and a streaming filter over them.  Pure.

The plan speaks in Q; the DAW targets hand ReaEQ a bandwidth in octaves
(:func:`bridge.daw.mapping.q_to_bandwidth_octaves`), clamped by the same normalised mapping they
write with.  A band here is designed from what REAPER would hold: the clamped frequency, gain and
bandwidth.  How ReaEQ itself turns a bandwidth into coefficients is not published; the RBJ forms
used here, and the conversions below, are the documented assumption (docs/render.md):

* ``peak`` ("Band"), ``notch``, ``bandpass``: the cookbook's bandwidth form,
  ``alpha = sin(w0) * sinh(ln2 / 2 * BW * w0 / sin(w0))``; the peak's gain at its centre is exactly
  the band gain.
* ``lowshelf``, ``highshelf``, ``highpass``, ``lowpass``: the cookbook's Q form, with the Q that the
  bandwidth stands for (``Q = 1 / (2 sinh(ln2 / 2 * BW))``, the inverse of the mapping, so an
  unclamped plan Q comes back unchanged).  High and low pass are 2-pole (12 dB/octave); with
  Q = 0.71 their -3 dB point is the band frequency.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..daw import mapping

#: Band kinds the renderer designs, by the plan's ``bandN_type`` names ("band" is ReaEQ's name for peak).
BAND_KINDS = ("highpass", "lowshelf", "peak", "highshelf", "lowpass", "notch", "bandpass")
_ALIASES = {"band": "peak", "hipass": "highpass", "lopass": "lowpass", "loshelf": "lowshelf", "hishelf": "highshelf"}
#: Kinds whose gain parameter is ignored (the plan writes 0 dB for them).
GAINLESS = frozenset({"highpass", "lowpass", "notch", "bandpass"})
#: Highest band frequency as a fraction of the sample rate (ReaEQ's own limit is not documented).
MAX_FREQ_FRACTION = 0.499
#: A state value below this is flushed to zero between blocks (keeps decays out of subnormal floats).
_FLUSH = 1e-150


def band_kind(name: str) -> str | None:
    """The renderer's kind for a plan band type, or None when it is not a ReaEQ band type we model."""
    kind = _ALIASES.get(str(name).lower(), str(name).lower())
    return kind if kind in BAND_KINDS else None


@dataclass(frozen=True, slots=True)
class EqBand:
    """One ReaEQ band as REAPER holds it.

    Attributes
    ----------
    kind : str
        One of :data:`BAND_KINDS`.
    freq_hz : float
        Centre (peak, notch, band pass), corner (pass filters) or half-gain (shelves) frequency.
    gain_db : float
        Ignored for :data:`GAINLESS` kinds.
    bandwidth_oct : float
        ReaEQ's "BW" in octaves.
    """

    kind: str
    freq_hz: float
    gain_db: float
    bandwidth_oct: float

    @property
    def q(self) -> float:
        """The Q this bandwidth stands for (inverse of :func:`mapping.q_to_bandwidth_octaves`)."""
        return 1.0 / (2.0 * math.sinh(math.log(2.0) / 2.0 * self.bandwidth_oct))


def reaper_band(kind: str, freq_hz: float, gain_db: float, q: float) -> EqBand:
    """A plan band (kind, Hz, dB, Q) -> the band REAPER holds after the targets' clamped mapping.

    Frequency is clamped to 20 Hz .. 24 kHz, gain to -60 .. +12 dB and bandwidth to 0 .. 4 octaves,
    exactly as :mod:`bridge.daw.mapping` writes them.
    """
    freq = mapping.reaeq_freq_hz(mapping.reaeq_freq_normalized(float(freq_hz)))
    gain = 0.0 if kind in GAINLESS else mapping.reaeq_gain_db(mapping.reaeq_gain_normalized(float(gain_db)))
    bandwidth = 4.0 * mapping.reaeq_bandwidth_normalized(float(q))
    return EqBand(kind, freq, gain, max(bandwidth, 1e-3))


def biquad(band: EqBand, sample_rate: int) -> np.ndarray:
    """RBJ cookbook coefficients of one band, normalised, as one scipy ``sos`` row ``(6,)``.

    Parameters
    ----------
    band : EqBand
    sample_rate : int
        Hz.  A frequency at or above ``0.499 * sample_rate`` is taken as ``0.499 * sample_rate``.
    """
    f0 = min(band.freq_hz, MAX_FREQ_FRACTION * sample_rate)
    w0 = 2.0 * math.pi * f0 / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    a_gain = 10.0 ** (band.gain_db / 40.0)
    kind = band.kind
    if kind in ("peak", "notch", "bandpass"):
        alpha = sw * math.sinh(math.log(2.0) / 2.0 * band.bandwidth_oct * w0 / sw)
    else:
        alpha = sw / (2.0 * band.q)
    if kind == "peak":
        b = (1.0 + alpha * a_gain, -2.0 * cw, 1.0 - alpha * a_gain)
        a = (1.0 + alpha / a_gain, -2.0 * cw, 1.0 - alpha / a_gain)
    elif kind == "notch":
        b = (1.0, -2.0 * cw, 1.0)
        a = (1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    elif kind == "bandpass":  # constant 0 dB peak gain
        b = (alpha, 0.0, -alpha)
        a = (1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    elif kind == "highpass":
        b = ((1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0)
        a = (1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    elif kind == "lowpass":
        b = ((1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0)
        a = (1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    elif kind in ("lowshelf", "highshelf"):
        s = 1.0 if kind == "lowshelf" else -1.0  # the high shelf is the low shelf with cos(w0) negated
        root = 2.0 * math.sqrt(a_gain) * alpha
        ap, am = a_gain + 1.0, a_gain - 1.0
        b = (a_gain * (ap - s * am * cw + root), s * 2.0 * a_gain * (am - s * ap * cw), a_gain * (ap - s * am * cw - root))
        a = (ap + s * am * cw + root, -s * 2.0 * (am + s * ap * cw), ap + s * am * cw - root)
    else:
        raise ValueError(f"not a band kind: {kind!r}")
    return np.array([b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]])


def response_db(band: EqBand, sample_rate: int, freqs_hz: np.ndarray) -> np.ndarray:
    """The band's magnitude response in dB at ``freqs_hz`` (for tests and the docs)."""
    _, h = signal.sosfreqz(biquad(band, sample_rate)[None, :], worN=np.asarray(freqs_hz, float), fs=sample_rate)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-300))


class StreamingEq:
    """A chain of bands applied to ``(frames, channels)`` blocks, state carried between blocks.

    Runs in float64; the result does not depend on how the stream is cut into blocks (beyond
    rounding).  An empty band list passes audio through untouched.
    """

    def __init__(self, bands: tuple[EqBand, ...] | list[EqBand], sample_rate: int, channels: int):
        self.bands = tuple(bands)
        self._sos = np.array([biquad(b, sample_rate) for b in self.bands]) if self.bands else None
        self._zi = np.zeros((len(self.bands), 2, channels)) if self.bands else None

    def process(self, block: np.ndarray) -> np.ndarray:
        """Filter one block, shape ``(frames, channels)``; returns float64 of the same shape."""
        block = np.asarray(block, dtype=np.float64)
        if self._sos is None or len(block) == 0:
            return block
        out, self._zi = signal.sosfilt(self._sos, block, axis=0, zi=self._zi)
        self._zi[np.abs(self._zi) < _FLUSH] = 0.0
        return out
