"""Plan units (dB, Hz, ms, Q) to REAPER's parameter values, and back.  Pure.

Parameter layouts and mappings are REAPER's stock ReaEQ and ReaComp (reaper.md section 3).  Every
value a target writes is converted here and nowhere else; the OSC target uses the same functions.

Mappings marked "assumed" are not confirmed by REAPER's documentation; they are written, but a
formatted read-back cannot verify them (see docs/reaper-setup.md).
"""
from __future__ import annotations

import math
import re

from ..units import Normalized

#: Names of the FX the bridge adds; reused on later passes.  The suffix is the visible tag.
AI_EQ_NAME = "AI EQ (MixBridge)"
AI_COMP_NAME = "AI Comp (MixBridge)"
AI_POLARITY_NAME = "AI Polarity (MixBridge)"
REAEQ = "ReaEQ (Cockos)"
REACOMP = "ReaComp (Cockos)"
#: The JSFX the bridge ships (reaper_scripts/Effects/MixBridge/channel_polarity.jsfx).
POLARITY_JSFX = "JS:MixBridge/channel_polarity"

#: ReaEQ bands of a default instance, 1-based, and their parameter name suffixes.
REAEQ_BANDS = ("Low Shelf", "Band 2", "Band 3", "High Shelf 4", "High Pass 5")
#: ``BANDTYPEx`` codes confirmed in reaper.md 3.2.
REAEQ_BAND_TYPE = {"lowshelf": "0", "highshelf": "1", "highpass": "4", "peak": "8"}


def reaeq_freq_normalized(freq_hz: float) -> Normalized:
    """ReaEQ frequency: ``x = ln((Hz - 20) * 400 / 23980 + 1) / ln(401)`` (1.0 = 24 kHz)."""
    hz = min(max(freq_hz, 20.0), 24000.0)
    return Normalized(math.log((hz - 20.0) * 400.0 / 23980.0 + 1.0) / math.log(401.0))


def reaeq_freq_hz(normalized: float) -> float:
    return 20.0 + 23980.0 * (401.0 ** normalized - 1.0) / 400.0


def reaeq_gain_normalized(gain_db: float) -> Normalized:
    """ReaEQ gain: ``amp / 2`` up to 0 dB, ``0.5 + (amp - 1) / 6`` above (reaper.md 3.2)."""
    amp = 10.0 ** (max(min(gain_db, 12.0), -60.0) / 20.0)
    return Normalized(amp / 2.0 if amp <= 1.0 else 0.5 + (amp - 1.0) / 6.0)


def reaeq_gain_db(normalized: float) -> float:
    amp = normalized * 2.0 if normalized <= 0.5 else 1.0 + (normalized - 0.5) * 6.0
    return 20.0 * math.log10(max(amp, 1e-9))


def q_to_bandwidth_octaves(q: float) -> float:
    """Bandwidth in octaves of a peaking band of quality ``q`` (RBJ): 2/ln2 · asinh(1/(2q))."""
    return 2.0 / math.log(2.0) * math.asinh(1.0 / (2.0 * max(q, 0.05)))


def reaeq_bandwidth_normalized(q: float) -> Normalized:
    """ReaEQ "BW" for a Q.  Assumed mapping: normalized = octaves / 4 (REAPER's BW slider spans
    0-4 octaves); reaper.md marks the mapping unconfirmed, so it is not verified on read-back."""
    return Normalized(min(1.0, max(0.0, q_to_bandwidth_octaves(q) / 4.0)))


def reacomp_threshold_normalized(threshold_db: float) -> Normalized:
    """ReaComp threshold: raw linear amplitude 0..2, ``norm = 10^(dB/20) / 2`` (0.5 = 0 dB)."""
    return Normalized(min(1.0, 10.0 ** (min(threshold_db, 6.0) / 20.0) / 2.0))


def reacomp_ratio_normalized(ratio: float) -> Normalized:
    return Normalized(min(1.0, max(0.0, (ratio - 1.0) / 99.0)))


def reacomp_attack_normalized(attack_ms: float) -> Normalized:
    return Normalized(min(1.0, max(0.0, attack_ms / 500.0)))


def reacomp_release_normalized(release_ms: float) -> Normalized:
    return Normalized(min(1.0, max(0.0, release_ms / 5000.0)))


def reacomp_wet_normalized(makeup_db: float) -> Normalized:
    """Make-up gain through ReaComp's Wet (raw linear 0..2, ``norm = amp / 2``; up to +6 dB)."""
    return Normalized(min(1.0, 10.0 ** (min(makeup_db, 6.0) / 20.0) / 2.0))


def db_to_fader_gain(db: float) -> float:
    """Track ``D_VOL`` is a linear gain (1.0 = 0 dB)."""
    return 10.0 ** (db / 20.0)


def fader_gain_to_db(gain: float) -> float:
    return 20.0 * math.log10(max(gain, 1e-12))


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_formatted(text: str) -> float | None:
    """The first number in a REAPER-formatted value ("1000.0", "-6.0 dB", "4.0:1", "-inf")."""
    if "inf" in text.lower():
        return -math.inf if "-" in text else math.inf
    match = _NUMBER.search(text.replace(",", "."))
    return float(match.group()) if match else None


def eq_param_name(kind: str, band: int) -> str:
    """ReaEQ parameter name for ``kind`` in ("Freq", "Gain", "BW") of 1-based ``band``."""
    return f"{kind}-{REAEQ_BANDS[band - 1]}"


def fx_normalized(key: str, value: float) -> Normalized:
    """An AI FX parameter in plan units (``eq.band2_gain_db`` -6.0, ``comp.ratio`` 2.0) -> its 0..1 value.

    Shared by every target.  Keys as in :mod:`bridge.daw.tagging`; EQ band types are not parameters
    (they are ReaEQ named config) and polarity flags are 0/1.
    """
    target, param = key.split(".", 1)
    if target == "eq":
        kind = param[param.index("_") + 1:]
        return {"freq_hz": reaeq_freq_normalized, "gain_db": reaeq_gain_normalized,
                "q": reaeq_bandwidth_normalized}[kind](float(value))
    if target == "comp":
        return {"threshold_db": reacomp_threshold_normalized, "ratio": reacomp_ratio_normalized,
                "attack_ms": reacomp_attack_normalized, "release_ms": reacomp_release_normalized,
                "makeup_db": reacomp_wet_normalized}[param](float(value))
    if target == "polarity":
        return Normalized(1.0 if value else 0.0)
    raise KeyError(key)


def fx_plan_value(key: str, normalized: float) -> float:
    """The inverse of :func:`fx_normalized`, rounded for the notes ("moved from -6.0 to -1.9 dB")."""
    target, param = key.split(".", 1)
    if target == "eq":
        kind = param[param.index("_") + 1:]
        if kind == "freq_hz":
            return round(reaeq_freq_hz(normalized), 1)
        if kind == "gain_db":
            return round(reaeq_gain_db(normalized), 2)
        return round(normalized, 4)
    if target == "comp":
        return round({"threshold_db": lambda r: 20 * math.log10(max(r * 2, 1e-9)), "ratio": lambda r: 1 + 99 * r,
                      "attack_ms": lambda r: r * 500, "release_ms": lambda r: r * 5000,
                      "makeup_db": lambda r: 20 * math.log10(max(r * 2, 1e-9))}[param](normalized), 2)
    return round(normalized, 4)
