"""Volume-envelope fader scaling (``ScaleToEnvelopeMode``/``ScaleFromEnvelopeMode``).

A volume envelope in fader-scaling mode (``GetEnvelopeScalingMode`` = 1) stores
points as fader positions on REAPER's 0..1000 slider scale, not as linear gain
(reaper.md 2.4: ``ScaleToEnvelopeMode(1, 0.5) = 592.4`` displays as -6.02 dB).

REAPER's closed-form ``DB2SLIDER`` curve is not public (reaper.md 1.5, 7), so
this module is an explicit approximation:

* exact at every anchor reaper.md documents: -150 dB, -144 dB, -6.02 dB (592.4),
  0 dB (716), +12 dB (1000);
* below -144 dB, the low-end law reaper.md derived from two anchors,
  ``slider = 794.956 * 10**(dB / 60)``;
* between anchors, linear in dB; above +12 dB, the last segment extended
  (REAPER allows values above 1000).

It is monotonic and exactly invertible, so a bridge that scales with
``ScaleToEnvelopeMode`` and reads back with ``ScaleFromEnvelopeMode``
round-trips; a bridge that writes raw gain into a fader-scaled envelope
produces a wildly wrong level, which is the mistake worth catching. Values
between anchors are NOT REAPER's; do not assert them against real REAPER.
"""

from __future__ import annotations

import bisect
import math

from .fx_layouts import amplitude_to_db, db_to_amplitude

#: Scaling modes returned by ``GetEnvelopeScalingMode``.
SCALING_NONE = 0
SCALING_FADER = 1

#: Low-end law coefficient (slider units): ``794.956 * 10**(dB/60)``.
_LOW_END_COEFF = 794.956
_LOW_END_DB_PER_DECADE = 60.0

#: (dB, slider) anchors from reaper.md 1.5, ascending.
_ANCHORS: tuple[tuple[float, float], ...] = (
    (-144.0, 3.1647785560398),
    (20.0 * math.log10(0.5), 592.4),
    (0.0, 716.0),
    (12.0, 1000.0),
)
_ANCHOR_DB = [db for db, _ in _ANCHORS]
_ANCHOR_SLIDER = [slider for _, slider in _ANCHORS]


def _slider_from_db(db: float) -> float:
    if db == -math.inf:
        return 0.0
    if db <= _ANCHOR_DB[0]:
        return _LOW_END_COEFF * 10.0 ** (db / _LOW_END_DB_PER_DECADE)
    # Segment index; past the last anchor, extend the last segment.
    i = min(bisect.bisect_right(_ANCHOR_DB, db), len(_ANCHORS) - 1)
    (db0, s0), (db1, s1) = _ANCHORS[i - 1], _ANCHORS[i]
    return s0 + (db - db0) * (s1 - s0) / (db1 - db0)


def _db_from_slider(slider: float) -> float:
    if slider <= 0.0:
        return -math.inf
    if slider <= _ANCHOR_SLIDER[0]:
        return _LOW_END_DB_PER_DECADE * math.log10(slider / _LOW_END_COEFF)
    i = min(bisect.bisect_right(_ANCHOR_SLIDER, slider), len(_ANCHORS) - 1)
    (db0, s0), (db1, s1) = _ANCHORS[i - 1], _ANCHORS[i]
    return db0 + (slider - s0) * (db1 - db0) / (s1 - s0)


def scale_to_envelope_mode(scaling_mode: int, value: float) -> float:
    """``ScaleToEnvelopeMode``: linear gain (1.0 = 0 dB) to a stored envelope value.

    Parameters
    ----------
    scaling_mode : int
        0 = no scaling (identity), 1 = fader scaling.
    value : float
        Linear gain.

    Returns
    -------
    float
        Value to store in an envelope point (slider units 0..1000 in mode 1).
    """
    if scaling_mode == SCALING_FADER:
        return _slider_from_db(amplitude_to_db(value))
    return value


def scale_from_envelope_mode(scaling_mode: int, value: float) -> float:
    """``ScaleFromEnvelopeMode``: stored envelope value back to linear gain."""
    if scaling_mode == SCALING_FADER:
        return db_to_amplitude(_db_from_slider(value))
    return value


def gains_from_sliders(sliders):
    """:func:`scale_from_envelope_mode` (fader mode) over a numpy array of slider values."""
    import numpy as np

    sliders = np.asarray(sliders, dtype=float)
    db = np.full(sliders.shape, -np.inf)
    low = (sliders > 0.0) & (sliders <= _ANCHOR_SLIDER[0])
    db[low] = _LOW_END_DB_PER_DECADE * np.log10(sliders[low] / _LOW_END_COEFF)
    high = sliders > _ANCHOR_SLIDER[0]
    # Piecewise linear in dB between anchors, the last segment extended (as _db_from_slider).
    s0, s1 = _ANCHOR_SLIDER[-2], _ANCHOR_SLIDER[-1]
    d0, d1 = _ANCHOR_DB[-2], _ANCHOR_DB[-1]
    inside = np.interp(sliders[high], _ANCHOR_SLIDER, _ANCHOR_DB)
    above = sliders[high] > s1
    inside[above] = d0 + (sliders[high][above] - s0) * (d1 - d0) / (s1 - s0)
    db[high] = inside
    return np.where(np.isfinite(db), 10.0 ** (db / 20.0), 0.0)
