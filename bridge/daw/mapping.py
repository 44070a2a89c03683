"""Plan units (dB, Hz, ms, Q) to REAPER's parameter values, and back.  Pure.

Parameter layouts and mappings are REAPER's stock ReaEQ and ReaComp (reaper.md section 3).  Every
value a target writes is converted here and nowhere else; the OSC target uses the same functions.

No mapping here is confirmed by Cockos (docs/reaper-setup.md lists each with its evidence), so the
reapy target reads every FX value it writes back through ``TrackFX_GetFormattedParamValue`` and
compares REAPER's display with :func:`display_expectation` in display units; a difference rolls the
pass back (``E_DAW_VERIFY``) and says which mapping REAPER disagrees with.
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


#: ReaEQ's bandwidth slider spans 0..4 octaves (a public table read from a live REAPER: 0.5 = 2.00 oct).
REAEQ_BW_FULL_SCALE_OCT = 4.0


def reaeq_bandwidth_octaves(q: float) -> float:
    """The bandwidth ReaEQ shows for a Q, in octaves (clamped to the slider's 0..4)."""
    return min(REAEQ_BW_FULL_SCALE_OCT, max(0.0, q_to_bandwidth_octaves(q)))


def reaeq_bandwidth_normalized(q: float) -> Normalized:
    """ReaEQ "BW" (or "Q-…") for a Q: ``normalized = octaves / 4`` (read back in octaves)."""
    return Normalized(reaeq_bandwidth_octaves(q) / REAEQ_BW_FULL_SCALE_OCT)


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
    """ReaEQ parameter name of a default instance for ``kind`` in ("Freq", "Gain", "BW") of 1-based ``band``."""
    return f"{kind}-{REAEQ_BANDS[band - 1]}"


# --- parameter layouts: index by layout, checked against the names REAPER shows --------------------

#: Name prefixes of a ReaEQ band's three parameters; the third is "BW" or, following the band type
#: in some REAPER versions, "Q" (a live zone file shows "Q-Low Shelf", a live table "BW-Low Shelf").
REAEQ_KIND_PREFIXES = {"freq_hz": ("Freq",), "gain_db": ("Gain",), "q": ("BW", "Q")}
REAEQ_KIND_OFFSET = {"freq_hz": 0, "gain_db": 1, "q": 2}
#: Band-type labels names may follow (``BANDTYPEx`` code -> label; band N > 1 adds " N").
REAEQ_TYPE_LABELS = {"0": "Low Shelf", "1": "High Shelf", "4": "High Pass", "8": "Band"}
#: Stock ReaComp and the polarity JSFX: key param -> (0-based index, name).
REACOMP_LAYOUT = {"threshold_db": (0, "Threshold"), "ratio": (1, "Ratio"), "attack_ms": (2, "Attack"),
                  "release_ms": (3, "Release"), "makeup_db": (11, "Wet")}
POLARITY_LAYOUT = {"left": (0, "Invert left"), "right": (1, "Invert right")}


def _eq_band_kind(param: str) -> tuple[int, str]:
    return int(param[4:param.index("_")]), param[param.index("_") + 1:]


def layout_index(target: str, param: str) -> int:
    """0-based index of an AI FX parameter in the stock layout (``eq``/``comp``/``polarity`` keys)."""
    if target == "eq":
        band, kind = _eq_band_kind(param)
        if not 1 <= band <= len(REAEQ_BANDS):
            raise KeyError(param)
        return (band - 1) * 3 + REAEQ_KIND_OFFSET[kind]
    if target == "comp":
        return REACOMP_LAYOUT[param][0]
    if target == "polarity":
        return POLARITY_LAYOUT[param][0]
    raise KeyError(param)


def layout_problem(target: str, param: str, names: list[str], band_types: dict[int, str] | None = None) -> str | None:
    """Why the parameter names REAPER shows do not hold the stock layout for this key (None: they do).

    Resolved by name *and* verified by index: the name at the layout index must be the expected
    kind (for ReaEQ: the band's three names share one label), and a name the bridge expects for
    this parameter (the default table's, or one following the band's current type) must not sit
    at another index.  ``band_types``: 1-based band -> ``BANDTYPEx`` code, as read now.
    """
    index = layout_index(target, param)
    if index >= len(names):
        return f"has {len(names)} parameters; the layout needs parameter {index}"
    shown = names[index]
    if target != "eq":
        expected = (REACOMP_LAYOUT if target == "comp" else POLARITY_LAYOUT)[param][1]
        if shown != expected:
            return f"parameter {index} is {shown!r} where the stock layout has {expected!r}"
        return None
    band, kind = _eq_band_kind(param)
    prefix, _, label = shown.partition("-")
    if prefix not in REAEQ_KIND_PREFIXES[kind] or not label:
        return f"parameter {index} is {shown!r}, not band {band}'s {kind.split('_')[0]} ({'/'.join(REAEQ_KIND_PREFIXES[kind])}-...)"
    first = (band - 1) * 3
    labels = {names[j].partition("-")[2] for j in range(first, first + 3)}
    if len(labels) != 1:
        return f"band {band}'s parameters {first}-{first + 2} are {names[first:first + 3]!r}: not one band"
    band_type = (band_types or {}).get(band)
    expected = {f"{p}-{REAEQ_BANDS[band - 1]}" for p in REAEQ_KIND_PREFIXES[kind]}
    if band_type in REAEQ_TYPE_LABELS:
        typed = REAEQ_TYPE_LABELS[band_type] + ("" if band == 1 else f" {band}")
        expected |= {f"{p}-{typed}" for p in REAEQ_KIND_PREFIXES[kind]}
    for name in sorted(expected):
        if name in names and names.index(name) != index:
            return f"{name!r} is parameter {names.index(name)}, where the stock layout puts it at {index}"
    return None


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


#: Display tolerances per unit: REAPER's display rounding (one decimal for dB, Hz, ratios and
#: times, two for octaves) plus the float error of the mappings.  Hz and ms are also relative.
DISPLAY_TOLERANCE = {"Hz": 0.05, "dB": 0.15, "oct": 0.02, ":1": 0.06, "ms": 0.06}
DISPLAY_RELATIVE = {"Hz": 0.005, "ms": 0.005}


def display_expectation(key: str, value: float) -> tuple[float, str] | None:
    """What REAPER's display of AI FX parameter ``key`` must show after writing plan ``value``:
    ``(number, unit)`` in display units, clamped as :func:`fx_normalized` clamps; None for a
    parameter without a display to compare (the polarity JSFX's switches)."""
    target, param = key.split(".", 1)
    v = float(value)
    if target == "eq":
        kind = param[param.index("_") + 1:]
        if kind == "freq_hz":
            return min(max(v, 20.0), 24000.0), "Hz"
        if kind == "gain_db":
            return max(min(v, 12.0), -60.0), "dB"
        return reaeq_bandwidth_octaves(v), "oct"
    if target == "comp":
        if param == "threshold_db":
            return min(v, 6.0), "dB"
        if param == "ratio":
            return min(max(v, 1.0), 100.0), ":1"
        if param == "attack_ms":
            return min(max(v, 0.0), 500.0), "ms"
        if param == "release_ms":
            return min(max(v, 0.0), 5000.0), "ms"
        if param == "makeup_db":
            return min(v, 6.0), "dB"
    return None


def parse_display(text: str, unit: str) -> float | None:
    """The number in REAPER's display text of a parameter in ``unit`` ("1.2k" Hz, "2.00 oct", "4.0:1").

    None when the text does not carry that unit where a unit is required (a bandwidth shown as
    something other than octaves cannot be compared with the model).
    """
    lowered = text.strip().lower()
    if unit == "oct" and "oct" not in lowered:
        return None
    number = parse_formatted(text)
    if number is None or math.isinf(number):
        return number
    if unit == "Hz" and re.search(r"\dk", lowered.replace(" ", "")):
        number *= 1000.0
    return number


def display_matches(shown: float | None, expected: float, unit: str) -> bool:
    if shown is None or math.isnan(shown):
        return False
    if math.isinf(shown) or math.isinf(expected):
        return shown == expected
    tolerance = max(DISPLAY_TOLERANCE[unit], DISPLAY_RELATIVE.get(unit, 0.0) * abs(expected))
    return abs(shown - expected) <= tolerance
