"""A track's volume envelope: points ``(time_s, value_db)`` as the DAW targets insert them.  Pure.

The targets insert every point with shape 0 (linear) into the track's "Volume" envelope, the
post-FX envelope that multiplies the fader (REAPER's default Trim/Read automation mode), each
value converted with ``ScaleToEnvelopeMode(GetEnvelopeScalingMode(env), gain)``.  A linear point
ramps linearly *in the stored, scaled value* to the next point; before the first point and after
the last the envelope holds their values.

Which stored domain that is depends on the envelope's scaling mode:

* ``"fader"`` (mode 1, the default here): values are fader positions.  REAPER's fader curve
  (``DB2SLIDER``) has no published closed form; around 0 dB it is close to linear in dB
  (reaper.md 1.5 anchors: 20.5 slider units per dB from -6 to 0 dB, 23.7 from 0 to +12 dB), so a
  ramp is modelled as linear in dB.  Constant stretches between ramps are exact either way.
* ``"amplitude"`` (mode 0): values are linear gains, and a ramp is linear in amplitude.
"""
from __future__ import annotations

import numpy as np

SCALINGS = ("fader", "amplitude")


class VolumeEnvelope:
    """Gain over time from envelope points.

    Parameters
    ----------
    points : sequence of (time_s, value_db)
        In any order (the targets call ``Envelope_SortPoints``); points at one time keep their order.
    sample_rate : int
        Hz; frame ``n`` of the stem is at ``n / sample_rate`` seconds (stems start at project time 0).
    scaling : {"fader", "amplitude"}
    """

    def __init__(self, points, sample_rate: int, scaling: str = "fader"):
        if scaling not in SCALINGS:
            raise ValueError(f"envelope scaling must be one of {SCALINGS}, not {scaling!r}")
        ordered = sorted(((float(t), float(v)) for t, v in points), key=lambda p: p[0])
        self.points = tuple(ordered)
        self.sample_rate = sample_rate
        self.scaling = scaling
        self._times = np.array([t for t, _ in ordered])
        values_db = np.array([v for _, v in ordered])
        self._values = values_db if scaling == "fader" else 10.0 ** (values_db / 20.0)

    def __bool__(self) -> bool:
        return bool(self.points)

    def gain(self, start_frame: int, frames: int) -> np.ndarray:
        """Linear gain for frames ``start_frame .. start_frame + frames - 1``, shape ``(frames,)``."""
        if not self.points:
            return np.ones(frames)
        first, last = start_frame / self.sample_rate, (start_frame + frames - 1) / self.sample_rate
        # Most blocks sit on a flat stretch (before the first point, after the last, or between two
        # equal points): one value for the whole block.
        i, j = np.searchsorted(self._times, [first, last], side="right")
        flat = i == j and (i == 0 or i == len(self._times) or self._values[i - 1] == self._values[i])
        if flat:
            value = float(self._values[min(i, len(self._values) - 1)])
            return np.full(frames, 10.0 ** (value / 20.0) if self.scaling == "fader" else value)
        t = (start_frame + np.arange(frames)) / self.sample_rate
        value = np.interp(t, self._times, self._values)
        return np.power(10.0, value / 20.0) if self.scaling == "fader" else value

    def gain_db_at(self, time_s: float) -> float:
        """The envelope's value in dB at one time (for tests and reports)."""
        if not self.points:
            return 0.0
        value = float(np.interp(time_s, self._times, self._values))
        return value if self.scaling == "fader" else 20.0 * float(np.log10(max(value, 1e-12)))
