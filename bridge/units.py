"""Units and conversions.  A value's unit is in its name everywhere else; this module holds the maths.

REAPER's 0..1 parameter domain is its own type, :class:`Normalized`; only a DAW target produces it.
"""
from __future__ import annotations

import math
from typing import NewType

import numpy as np

Db = NewType("Db", float)
Hz = NewType("Hz", float)
Normalized = NewType("Normalized", float)

#: Level below which a power is treated as digital silence (about -300 dB).
POWER_FLOOR = 1e-30


def gain_to_db(gain: float) -> float | None:
    """Amplitude ratio to dB; ``None`` for a zero or negative gain (undefined, never ``-inf``)."""
    if not gain > 0.0 or not math.isfinite(gain):
        return None
    return 20.0 * math.log10(gain)


def db_to_gain(db: float) -> float:
    """dB to amplitude ratio."""
    return 10.0 ** (db / 20.0)


def power_to_db(power: float) -> float | None:
    """Power (mean square) to dB; ``None`` when the power is zero (undefined, never ``-inf``)."""
    if not power > POWER_FLOOR or not math.isfinite(power):
        return None
    return 10.0 * math.log10(power)


def power_to_db_array(power: np.ndarray, floor_db: float = -200.0) -> np.ndarray:
    """Vectorised power to dB with a floor, for internal arrays that must stay finite."""
    return 10.0 * np.log10(np.maximum(power, 10.0 ** (floor_db / 10.0)))


def finite_or_none(value: float | None, ndigits: int | None = None) -> float | None:
    """Map NaN and infinities to ``None`` so the JSON contract never carries them."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, ndigits) if ndigits is not None else value
