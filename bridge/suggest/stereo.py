"""Polarity and width: decided from the low-band correlation, before the level/EQ search.  Pure.

Flipping a channel or narrowing changes no band energy the predicted mix works on (band energies
are means over channels), so these fixes are decided on their own, with the same move costs and the
same hysteresis as every other move, and explained with their predicted correlation.

* An **inverted channel**: the part's own lowest octave (where even a wide source is nearly mono)
  correlates at or below :data:`INVERTED_LOW_CORRELATION`; or, with no usable low band, the whole
  part at or below :data:`INVERTED_CORRELATION`.  Flip the right channel: every band's correlation
  changes sign.
* **Diffuse out-of-phase content** (correlation at or below :data:`PHASE_CORRELATION` while the low
  band is not inverted): narrow it until its correlation is :data:`NARROW_TARGET_CORRELATION`.
* **A low end that is not mono** on kick and bass (low-band correlation below 0.8): mono width.
* **A centre role that is wide** (side share above 0.3): narrow to a side share of 0.1.
"""
from __future__ import annotations

import math

import numpy as np

from ..analyze.stem import StemAnalysis
from .model import Effect, Finding, StemView
from .roles import BASS, KICK, PROFILES, NEUTRAL, label

INVERTED_LOW_CORRELATION = -0.5
INVERTED_CORRELATION = -0.8
PHASE_CORRELATION = -0.3
NARROW_TARGET_CORRELATION = 0.2
LOW_MONO_CORRELATION = 0.8
CENTRE_MAX_WIDTH, CENTRE_TARGET_WIDTH = 0.3, 0.1
#: Bands within this many dB of the part's loudest band count as its content.
CONTENT_WITHIN_DB = 30.0


def low_band_correlation(analysis: StemAnalysis) -> float | None:
    """Correlation of the part's own lowest octave of content (energy-weighted over its bands)."""
    st = analysis.stereo
    if st is None:
        return None
    levels = [v if v is not None else -999.0 for v in analysis.spectrum.band_db]
    top = max(levels)
    chosen = []
    for b, (level, corr) in enumerate(zip(levels, st.band_correlation)):
        if corr is None or level < top - CONTENT_WITHIN_DB:
            continue
        chosen.append((b, level, corr))
        if len(chosen) == 3:
            break
    if not chosen:
        return None
    weights = np.array([10.0 ** (lv / 10.0) for _, lv, _ in chosen])
    corrs = np.array([c for _, _, c in chosen])
    return float((weights * corrs).sum() / weights.sum())


def _narrowed_correlation(correlation: float, width: float) -> float:
    """Correlation after REAPER's width scales the side signal by ``width`` (equal L/R energies)."""
    side_over_mid = (1.0 - correlation) / max(1.0 + correlation, 1e-6)
    s = side_over_mid * width * width
    return (1.0 - s) / (1.0 + s)


def stereo_decision(view: StemView) -> tuple[str, dict, Finding, tuple[Effect, ...], float] | None:
    """(kind, content, finding, effects, confidence) for one stem's polarity/width move, or ``None``.

    ``kind`` is ``"polarity"`` (content ``{"channel": "right"}``) or ``"width"`` (``{"width": w}``).
    """
    a = view.analysis
    if a is None or a.stereo is None or a.stereo.correlation is None or a.faults.silent:
        return None
    st = a.stereo
    corr = st.correlation
    low = low_band_correlation(a)
    balanced = abs(st.balance_db or 0.0) < 6.0
    evidence = {"correlation": round(corr, 3), "low_band_correlation": None if low is None else round(low, 3),
                "correlation_low_150hz": st.correlation_low, "width": st.width, "mono_loss_db": st.mono_loss_db,
                "balance_db": st.balance_db}
    inverted = balanced and ((low is not None and low <= INVERTED_LOW_CORRELATION)
                             or (low is None and corr <= INVERTED_CORRELATION))
    if inverted:
        after = -corr
        msg = (f"{view.name}: L/R correlation {corr:+.2f}, its lowest octave {low if low is not None else corr:+.2f} "
               f"— one channel is polarity-inverted (a wide part still correlates in its low end); "
               f"folded to mono it loses {abs(st.mono_loss_db or 0.0):.0f} dB. Flip the right channel's polarity")
        effects = (Effect(f"{view.name} L/R correlation", "correlation", round(corr, 2), round(after, 2), "correlation"),)
        return "polarity", {"channel": "right"}, Finding("phase", "problem", msg, evidence), effects, 0.9
    if corr <= PHASE_CORRELATION:
        side_over_mid = (1.0 - corr) / max(1.0 + corr, 1e-6)
        target_ratio = (1.0 - NARROW_TARGET_CORRELATION) / (1.0 + NARROW_TARGET_CORRELATION)
        width = round(min(1.0, math.sqrt(target_ratio / side_over_mid)), 2)
        after = _narrowed_correlation(corr, width)
        msg = (f"{view.name}: L/R correlation {corr:+.2f} while its lowest octave is "
               f"{'not measurable' if low is None else f'{low:+.2f}'} — diffuse out-of-phase content, not an inverted "
               f"channel; it cancels in mono. Narrow to {width * 100:.0f}% width")
        effects = (Effect(f"{view.name} L/R correlation", "correlation", round(corr, 2), round(after, 2), "correlation"),)
        return "width", {"width": width}, Finding("phase", "warning", msg, evidence), effects, 0.6
    if view.role == NEUTRAL or view.manual:
        return None
    if view.role in (BASS, KICK) and st.correlation_low is not None and st.correlation_low < LOW_MONO_CORRELATION:
        msg = (f"{view.name}: low-end correlation {st.correlation_low:.2f}; keep the low end mono — "
               f"set the track to mono width")
        effects = (Effect(f"{view.name} low-end correlation", "correlation", round(st.correlation_low, 2), 1.0, "correlation"),)
        return "width", {"width": 0.0}, Finding("low_end_width", "warning", msg, evidence), effects, 0.7
    profile = PROFILES.get(view.role, PROFILES[NEUTRAL])
    if profile.centre and st.width is not None and st.width > CENTRE_MAX_WIDTH:
        side, mid = st.width, 1.0 - st.width
        w = round(math.sqrt(CENTRE_TARGET_WIDTH * mid / ((1.0 - CENTRE_TARGET_WIDTH) * side)), 2)
        msg = (f"{view.name}: width {st.width:.2f} is wide for a {label(view.role)}, which usually sits centred; "
               f"narrow to {w * 100:.0f}% width")
        effects = (Effect(f"{view.name} side share", "width", round(st.width, 2), CENTRE_TARGET_WIDTH, ""),)
        return "width", {"width": w}, Finding("width", "warning", msg, evidence), effects, 0.5
    return None
