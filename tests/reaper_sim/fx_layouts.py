"""Parameter layouts and value mappings of the stock FX the simulator knows.

Everything here is written from ``/work/shared/reference/reaper.md`` section 3,
independently of the bridge's own mappings, so that the simulator is a second
opinion rather than a copy.

Value model
-----------
REAPER exposes three views of one FX parameter:

* **raw** (``TrackFX_GetParam``/``SetParam``): a value inside the range that
  ``TrackFX_GetParam`` reports through ``minvalOut``/``maxvalOut``;
* **normalized** (``TrackFX_GetParamNormalized``/``SetParamNormalized``, and the
  OSC ``n`` flag): ``(raw - min) / (max - min)``, which is also how reapy's
  ``FXParam.normalized`` computes it;
* **formatted** (``TrackFX_GetFormattedParamValue``): display text.

Only the formatted view needs plug-in knowledge. A parameter with no published
display mapping (toggles, ReaComp's filters, ...) has no formatter here, and the
simulator refuses to format it instead of inventing text. The display *strings*
(``"%.1f"``, ``"-inf"``, ``"4.0:1"``, ``"2.00 oct"``) are the simulator's choice:
the sources give numeric mappings and example texts, not REAPER's formatting code.

Names and variants
------------------
ReaEQ's parameter names follow each band's type (:func:`reaeq_param_name`): a
control-surface zone file generated from a live REAPER names a default instance's
third parameter "Q-Low Shelf", where another table read from a live REAPER says
"BW-Low Shelf".  The simulator follows the band type by default (the harder case
for a bridge that resolves parameters by name) and keeps the fixed names as the
variant ``reaeq-names-fixed``.

Where published mappings conflict (docs/reaper-setup.md), the one the bridge
models is the default and the others are variants a simulator process can be
started with (``--fx-variant NAME``, :data:`VARIANTS`), so a test can show the
bridge noticing a REAPER whose display differs from its model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

#: Formatter from a raw parameter value to REAPER-style display text.
Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One FX parameter: name, raw range, default and optional display mapping.

    Parameters
    ----------
    name : str
        Name returned by ``TrackFX_GetParamName``.
    min_raw, max_raw : float
        Raw range reported by ``TrackFX_GetParam``.
    default_raw : float
        Raw value of a freshly instantiated FX (simulator choice where
        reaper.md gives no default).
    format_raw : callable or None
        Raw value to display text; None when reaper.md has no confirmed mapping.
    """

    name: str
    min_raw: float = 0.0
    max_raw: float = 1.0
    default_raw: float = 0.0
    format_raw: Formatter | None = None

    def to_normalized(self, raw: float) -> float:
        """Map a raw value to 0..1 (linear in the raw range)."""
        return (raw - self.min_raw) / (self.max_raw - self.min_raw)

    def from_normalized(self, normalized: float) -> float:
        """Map a 0..1 value to the raw range (linear)."""
        return self.min_raw + normalized * (self.max_raw - self.min_raw)

    def clamp_raw(self, raw: float) -> float:
        """Clamp to the raw range; REAPER plug-ins never hold out-of-range values."""
        return min(max(raw, self.min_raw), self.max_raw)


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A plug-in the simulated REAPER can instantiate.

    Parameters
    ----------
    name : str
        Full name as ``TrackFX_GetFXName`` returns it, e.g. ``"VST: ReaEQ (Cockos)"``.
    params : tuple of ParamSpec
        Parameter layout in index order.
    named_config_defaults : mapping
        Plug-in specific ``TrackFX_Get/SetNamedConfigParm`` keys and their defaults.
    named_config_values : mapping
        Allowed values per named-config key; a key missing here accepts any text.
    """

    name: str
    params: tuple[ParamSpec, ...]
    named_config_defaults: Mapping[str, str] = field(default_factory=dict)
    named_config_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: ``namer(index, named_config)`` -> the name REAPER shows now; None = the spec's fixed name.
    namer: Callable[[int, Mapping[str, str]], str] | None = None

    def param_name(self, index: int, config: Mapping[str, str] | None = None) -> str:
        """``TrackFX_GetParamName``: the parameter's name given the instance's named config."""
        if self.namer is not None:
            return self.namer(index, config if config is not None else self.named_config_defaults)
        return self.params[index].name

    def __deepcopy__(self, memo: dict) -> PluginSpec:
        # Immutable and compared by identity: undo snapshots must share it.
        return self

    @property
    def type_prefix(self) -> str:
        """Type prefix without the colon, e.g. ``"VST"``."""
        return self.name.split(":", 1)[0]

    @property
    def bare_name(self) -> str:
        """Name without the type prefix, e.g. ``"ReaEQ (Cockos)"``."""
        return self.name.split(": ", 1)[1]

    @property
    def short_name(self) -> str:
        """Name without prefix and vendor, e.g. ``"ReaEQ"``."""
        return self.bare_name.split(" (", 1)[0]

    def param_index_from_ident(self, ident: str) -> int:
        """Index for ``TrackFX_GetParamFromIdent`` idents ``:wet``/``:bypass``/``:delta``.

        REAPER appends Bypass/Wet/Delta after the plug-in's own parameters, so the
        *last* parameter with that name is the one the ident means (ReaComp also
        has its own "Wet" at index 11).
        """
        wanted = {":wet": "Wet", ":bypass": "Bypass", ":delta": "Delta"}.get(ident)
        if wanted is None:
            return -1
        for index in range(len(self.params) - 1, -1, -1):
            if self.params[index].name == wanted:
                return index
        return -1


# --------------------------------------------------------------------------
# Display helpers
# --------------------------------------------------------------------------

def _format_db(db: float) -> str:
    return "-inf" if db == -math.inf else f"{db:.1f}"


def amplitude_to_db(amplitude: float) -> float:
    """Linear amplitude to dB; 0 maps to -inf."""
    return -math.inf if amplitude <= 0.0 else 20.0 * math.log10(amplitude)


def db_to_amplitude(db: float) -> float:
    """dB to linear amplitude; -inf maps to 0."""
    return 0.0 if db == -math.inf else 10.0 ** (db / 20.0)


# --------------------------------------------------------------------------
# ReaEQ (reaper.md 3.2)
# --------------------------------------------------------------------------

#: Frequency curve constants: ``Hz = 20 + 23980 * (401**x - 1) / 400``.
_REAEQ_FREQ_MIN_HZ = 20.0
_REAEQ_FREQ_SPAN_HZ = 23980.0
_REAEQ_FREQ_BASE = 401.0


def reaeq_freq_hz_from_normalized(normalized: float) -> float:
    """ReaEQ band frequency in Hz from its normalized value (reaper.md 3.2)."""
    return _REAEQ_FREQ_MIN_HZ + _REAEQ_FREQ_SPAN_HZ * (
        _REAEQ_FREQ_BASE ** normalized - 1.0) / (_REAEQ_FREQ_BASE - 1.0)


def reaeq_normalized_from_freq_hz(freq_hz: float) -> float:
    """Inverse of :func:`reaeq_freq_hz_from_normalized`."""
    return math.log((freq_hz - _REAEQ_FREQ_MIN_HZ) * (_REAEQ_FREQ_BASE - 1.0)
                    / _REAEQ_FREQ_SPAN_HZ + 1.0) / math.log(_REAEQ_FREQ_BASE)


def reaeq_gain_db_from_normalized(normalized: float) -> float:
    """ReaEQ band gain in dB from its normalized value.

    reaper.md 3.2: ``norm = amp / 2`` up to unity, then ``norm = 0.5 + (amp - 1) / 6``
    up to amp 4 (+12.04 dB); 0.5 is 0 dB.
    """
    if normalized <= 0.5:
        amplitude = 2.0 * normalized
    else:
        amplitude = 1.0 + 6.0 * (normalized - 0.5)
    return amplitude_to_db(amplitude)


def reaeq_normalized_from_gain_db(gain_db: float) -> float:
    """Inverse of :func:`reaeq_gain_db_from_normalized`."""
    amplitude = db_to_amplitude(gain_db)
    if amplitude <= 1.0:
        return amplitude / 2.0
    return 0.5 + (amplitude - 1.0) / 6.0


# ReaEQ band frequency and gain have raw range 0..1, so raw == normalized.
# The "raw 0.25 = 0 dB" claim in reaper.md is UNCONFIRMED and not modelled.
def _format_reaeq_freq(raw: float) -> str:
    return f"{reaeq_freq_hz_from_normalized(raw):.1f}"


def _format_reaeq_gain(raw: float) -> str:
    return _format_db(reaeq_gain_db_from_normalized(raw))


def _format_linear_gain(raw: float) -> str:
    return _format_db(amplitude_to_db(raw))


#: Bandwidth: ``octaves = 4 * normalized`` (a public table read from a live REAPER: 0.5 = 2.00 oct,
#: 0.295 = 1.18 oct, 0.2 = 0.80 oct; a preset converter's range 0.01..4 octaves).
REAEQ_BW_FULL_SCALE_OCT = 4.0


def _format_reaeq_bw(raw: float) -> str:
    return f"{raw * REAEQ_BW_FULL_SCALE_OCT:.2f} oct"


def _reaeq_band(label: str, freq_hz: float, gain_format: Formatter) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec(f"Freq-{label}", default_raw=reaeq_normalized_from_freq_hz(freq_hz),
                  format_raw=_format_reaeq_freq),
        ParamSpec(f"Gain-{label}", default_raw=0.5, format_raw=gain_format),
        ParamSpec(f"BW-{label}", default_raw=0.5, format_raw=_format_reaeq_bw),
    )


#: Band-type label of a ReaEQ band (``BANDTYPEx`` code -> label); band N > 1 adds " N".
REAEQ_TYPE_LABELS = {"0": "Low Shelf", "1": "High Shelf", "4": "High Pass", "8": "Band"}


def reaeq_param_name(index: int, config: Mapping[str, str]) -> str:
    """ReaEQ's parameter names following the band types (the simulator's default).

    Band ``b`` (1-based) of type ``t`` is labelled ``REAEQ_TYPE_LABELS[t]`` plus ``" b"`` for
    ``b > 1`` (which reproduces every default name of both public tables: "Low Shelf",
    "Band 2", "High Shelf 4", "High Pass 5"), and its third parameter is "BW" for a band and
    "Q" for shelves and passes (the live zone file's "Q-Low Shelf").  The rule beyond those
    names is the simulator's assumption.
    """
    if index >= 15:
        return REAEQ.params[index].name
    band, kind = divmod(index, 3)
    band_type = config.get(f"BANDTYPE{band}", REAEQ.named_config_defaults[f"BANDTYPE{band}"])
    label = REAEQ_TYPE_LABELS.get(band_type, "Band") + ("" if band == 0 else f" {band + 1}")
    prefix = ("Freq", "Gain", "BW" if band_type == "8" else "Q")[kind]
    return f"{prefix}-{label}"


#: ReaEQ band types for ``BANDTYPEx`` that reaper.md confirms (LowShelf,
#: HighShelf, HighPass, Band). The extra values a preset converter uses are
#: UNCONFIRMED and rejected.
REAEQ_BAND_TYPES = {"low_shelf": "0", "high_shelf": "1", "high_pass": "4", "band": "8"}

def _reaeq(gain_format: Formatter = _format_reaeq_gain,
           namer: Callable[[int, Mapping[str, str]], str] | None = None) -> PluginSpec:
    return PluginSpec(
        name="VST: ReaEQ (Cockos)",
        namer=namer,
        params=(
            *_reaeq_band("Low Shelf", 100.0, gain_format),
            *_reaeq_band("Band 2", 500.0, gain_format),
            *_reaeq_band("Band 3", 2000.0, gain_format),
            *_reaeq_band("High Shelf 4", 10000.0, gain_format),
            *_reaeq_band("High Pass 5", 50.0, gain_format),
            ParamSpec("Global Gain", 0.0, 4.0, 1.0, _format_linear_gain),
            ParamSpec("Bypass"),
            ParamSpec("Wet", default_raw=1.0),
            ParamSpec("Delta"),
        ),
        named_config_defaults={
            # Band x is 0-based; the high-pass band is reported disabled by default.
            "BANDTYPE0": "0", "BANDTYPE1": "8", "BANDTYPE2": "8",
            "BANDTYPE3": "1", "BANDTYPE4": "4",
            "BANDENABLED0": "1", "BANDENABLED1": "1", "BANDENABLED2": "1",
            "BANDENABLED3": "1", "BANDENABLED4": "0",
        },
        named_config_values={
            **{f"BANDTYPE{band}": frozenset(REAEQ_BAND_TYPES.values()) for band in range(5)},
            **{f"BANDENABLED{band}": frozenset({"0", "1"}) for band in range(5)},
        },
    )


def _reaeq_gain_db_linear(raw: float) -> str:
    """Variant ``reaeq-gain-db-linear``: above 0 dB a script's ``norm = 0.5 + dB/48``."""
    if raw <= 0.5:
        return _format_reaeq_gain(raw)
    return _format_db((raw - 0.5) * 48.0)


# --------------------------------------------------------------------------
# ReaComp (reaper.md 3.1)
# --------------------------------------------------------------------------

#: Ratio: ``norm = (ratio - 1) / 99``; whether 1.0 is 100:1 or "inf" is
#: conflicting (variant ``reacomp-ratio-inf``), so 1.0 is shown as 100:1.
_REACOMP_RATIO_SPAN = 99.0
#: Attack and release full scale. reaper.md reports a conflict (an adapter says
#: 500 ms / 5000 ms, a table says 1000 ms for both: variant
#: ``reacomp-times-1000ms``); the adapter's values agree with ReaComp's
#: documented defaults (0.006 -> 3 ms, 0.020 -> 100 ms).
REACOMP_ATTACK_FULL_SCALE_MS = 500.0
REACOMP_RELEASE_FULL_SCALE_MS = 5000.0


def reacomp_ratio_from_normalized(normalized: float) -> float:
    """Compression ratio (x:1) from the Ratio parameter's normalized value."""
    return 1.0 + _REACOMP_RATIO_SPAN * normalized


def reacomp_normalized_from_ratio(ratio: float) -> float:
    """Inverse of :func:`reacomp_ratio_from_normalized`."""
    return (ratio - 1.0) / _REACOMP_RATIO_SPAN


def _format_ratio(raw: float) -> str:
    return f"{reacomp_ratio_from_normalized(raw):.1f}:1"


def _format_ratio_inf_top(raw: float) -> str:
    return "inf:1" if raw >= 1.0 else _format_ratio(raw)


def _ms_formatter(full_scale_ms: float) -> Formatter:
    return lambda raw: f"{raw * full_scale_ms:.1f}"


def _reacomp(ratio_format: Formatter = _format_ratio,
             attack_ms: float = REACOMP_ATTACK_FULL_SCALE_MS,
             release_ms: float = REACOMP_RELEASE_FULL_SCALE_MS,
             wet_max_raw: float = 2.0) -> PluginSpec:
    return PluginSpec(
        name="VST: ReaComp (Cockos)",
        params=(
            # Threshold raw is linear amplitude 0..2 (norm = amp / 2, 0.5 = 0 dB).
            ParamSpec("Threshold", 0.0, 2.0, 1.0, _format_linear_gain),
            ParamSpec("Ratio", default_raw=reacomp_normalized_from_ratio(4.0),
                      format_raw=ratio_format),
            ParamSpec("Attack", default_raw=0.006, format_raw=_ms_formatter(attack_ms)),
            ParamSpec("Release", default_raw=0.020, format_raw=_ms_formatter(release_ms)),
            ParamSpec("Pre-comp"),
            ParamSpec("resvd"),
            ParamSpec("Lowpass"),
            ParamSpec("Hipass"),
            ParamSpec("SignIn"),
            ParamSpec("AudIn"),
            ParamSpec("Dry", 0.0, 2.0, 0.0, _format_linear_gain),
            ParamSpec("Wet", 0.0, wet_max_raw, 1.0, _format_linear_gain),
            ParamSpec("Filter Preview"),
            ParamSpec("RMS size", 0.0, 10.0, 0.0),
            ParamSpec("Knee"),
            ParamSpec("Auto Make Up Gain"),
            ParamSpec("Auto Release"),
            ParamSpec("Legacy Attack/Knee Options"),
            ParamSpec("Deprecated Broken Anti-Alias"),
            ParamSpec("Multichannel Mode"),
            ParamSpec("Metering Index"),
            ParamSpec("Bypass"),
            ParamSpec("Wet", default_raw=1.0),
            ParamSpec("Delta"),
        ),
    )


#: The bridge's own JSFX as REAPER lists it once installed under Effects/MixBridge/
#: (reaper_scripts/Effects/MixBridge/channel_polarity.jsfx): two enum sliders, in
#: slider units (reaper.md 4: JSFX params report slider units and ranges).
MIXBRIDGE_POLARITY = PluginSpec(
    name="JS: MixBridge/channel_polarity",
    params=(
        ParamSpec("Invert left", 0.0, 1.0, 0.0, lambda raw: "Inverted" if raw >= 0.5 else "Normal"),
        ParamSpec("Invert right", 0.0, 1.0, 0.0, lambda raw: "Inverted" if raw >= 0.5 else "Normal"),
    ),
)

#: The published alternatives a simulator can be started with (``--fx-variant``), each the
#: other side of a conflict in docs/reaper-setup.md.
VARIANTS: dict[str, str] = {
    "reaeq-names-fixed": "ReaEQ parameter names never follow the band type ('BW-Low Shelf' always)",
    "reaeq-gain-db-linear": "ReaEQ gain above 0 dB is norm = 0.5 + dB/48 (a script's mapping)",
    "reacomp-ratio-inf": "ReaComp ratio 1.0 is inf:1 (a public table)",
    "reacomp-times-1000ms": "ReaComp attack and release both span 0..1000 ms (a public table)",
    "reacomp-wet-unity": "ReaComp Wet is 0..1 linear (1 = 0 dB: no make-up above unity)",
}


def build_catalog(variants: frozenset[str] | set[str] = frozenset()) -> tuple[PluginSpec, ...]:
    """The installed plug-ins, with the given :data:`VARIANTS` of their layouts."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown FX variants {sorted(unknown)}; known {sorted(VARIANTS)}")
    reaeq = _reaeq(_reaeq_gain_db_linear if "reaeq-gain-db-linear" in variants else _format_reaeq_gain,
                   None if "reaeq-names-fixed" in variants else reaeq_param_name)
    reacomp = _reacomp(_format_ratio_inf_top if "reacomp-ratio-inf" in variants else _format_ratio,
                       1000.0 if "reacomp-times-1000ms" in variants else REACOMP_ATTACK_FULL_SCALE_MS,
                       1000.0 if "reacomp-times-1000ms" in variants else REACOMP_RELEASE_FULL_SCALE_MS,
                       1.0 if "reacomp-wet-unity" in variants else 2.0)
    return (reaeq, reacomp, MIXBRIDGE_POLARITY)


#: Every plug-in the simulated REAPER has installed (:func:`use_variants` replaces them).
CATALOG: tuple[PluginSpec, ...] = build_catalog()
REAEQ, REACOMP = CATALOG[0], CATALOG[1]


def use_variants(variants: frozenset[str] | set[str]) -> None:
    """Install the plug-ins with these variants (a simulator process does this once, at start)."""
    global CATALOG, REAEQ, REACOMP
    CATALOG = build_catalog(variants)
    REAEQ, REACOMP = CATALOG[0], CATALOG[1]

#: Type prefixes ``TrackFX_AddByName`` accepts (reaper.md 2.2) and the plug-in
#: type each one selects. ``VST2:`` is an alias of ``VST:`` for VST2 plug-ins.
_PREFIX_TYPES = {"VST": "VST", "VST2": "VST", "VST3": "VST3", "AU": "AU",
                 "JS": "JS", "DX": "DX", "CLAP": "CLAP"}


def find_plugin(query: str) -> PluginSpec | None:
    """Resolve a ``TrackFX_AddByName`` name to an installed plug-in.

    Accepts, case-insensitively, the full name (``"VST: ReaEQ (Cockos)"``),
    the name without type prefix (``"ReaEQ (Cockos)"``) or without vendor
    (``"ReaEQ"``), optionally prefixed with a type (``"VST:ReaEQ"``).
    REAPER's own matching rules are not documented in reaper.md; this is
    deliberately exact rather than substring-based, so a misspelt name fails
    the way an uninstalled plug-in does.

    Returns
    -------
    PluginSpec or None
        None when no installed plug-in matches (REAPER then returns -1).
    """
    text = query.strip()
    wanted_type = None
    head, sep, tail = text.partition(":")
    if sep and head.strip().upper() in _PREFIX_TYPES:
        wanted_type = _PREFIX_TYPES[head.strip().upper()]
        text = tail.strip()
    folded = text.casefold()
    for plugin in CATALOG:
        if wanted_type is not None and plugin.type_prefix != wanted_type:
            continue
        if folded in (plugin.bare_name.casefold(), plugin.short_name.casefold(),
                      plugin.name.casefold()):
            return plugin
    return None


def plugin_by_name(full_name: str) -> PluginSpec:
    """Exact lookup by full name, for loading project files."""
    for plugin in CATALOG:
        if plugin.name == full_name:
            return plugin
    raise KeyError(f"plug-in {full_name!r} is not installed in reaper_sim "
                   f"(known: {[p.name for p in CATALOG]})")
