"""The analysis as JSON (schema version 1, a public contract) and as a table for the terminal."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from . import __version__
from .analyze.spectrum import BAND_CENTERS_HZ
from .analyze.stem import StemAnalysis
from .model import SessionResult, StemResult

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    """Recursively make a value JSON-safe: tuples to lists, NaN/inf to ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _clean(value.item())
    return value


def _r(value: float | None, ndigits: int = 2) -> float | None:
    return round(value, ndigits) if isinstance(value, (int, float)) and math.isfinite(value) else None


def analysis_dict(a: StemAnalysis) -> dict[str, Any]:
    """The measures of one analysed stream (stem or mix) as plain data."""
    loud, lev, fault, spec, st = a.loudness, a.levels, a.faults, a.spectrum, a.stereo
    return {
        "integrated_lufs": _r(loud.integrated_lufs),
        "max_momentary_lufs": _r(loud.max_momentary_lufs),
        "max_short_term_lufs": _r(loud.max_short_term_lufs),
        "lra_lu": _r(loud.lra_lu),
        "sample_peak_dbfs": lev.sample_peak_dbfs,
        "true_peak_dbtp": lev.true_peak_dbtp,
        "correlation": _r(st.correlation, 3) if st else None,
        "levels": {"active_rms_dbfs": lev.active_rms_dbfs, "crest_db": lev.crest_db, "plr_db": lev.plr_db,
                   "rms_percentiles_dbfs": dict(zip(("p10", "p50", "p75", "p90", "p95"), lev.rms_percentiles_dbfs))},
        "faults": {
            "dc_offset": list(fault.dc_offset),
            "dc_offset_dbfs": fault.dc_offset_dbfs,
            "clip_runs": fault.clip.runs,
            "worst_clip_run_samples": fault.clip.worst_run_samples,
            "clipped_samples": fault.clip.clipped_samples,
            "active_fraction": fault.active_fraction,
            "silent": fault.silent,
        },
        "spectrum": {
            "band_db": list(spec.band_db),
            "rumble_db": spec.rumble_db,
            "useful_low_hz": spec.useful_low_hz,
            "centroid_hz": spec.centroid_hz,
            "band_db_over_time": [list(row) for row in spec.band_db_over_time],
        },
        "stereo": None if st is None else {
            "correlation": _r(st.correlation, 3),
            "correlation_low": _r(st.correlation_low, 3),
            "side_mid_ratio_db": _r(st.side_mid_ratio_db),
            "width": _r(st.width, 3),
            "balance_db": _r(st.balance_db),
            "pan": _r(st.pan, 3),
            "mono_loss_db": _r(st.mono_loss_db),
            "band_correlation": [_r(v, 3) for v in st.band_correlation],
            "band_width": [_r(v, 3) for v in st.band_width],
        },
        "series": {"momentary_lufs": list(loud.momentary_lufs), "short_term_lufs": list(loud.short_term_lufs)},
    }


def stem_dict(stem: StemResult) -> dict[str, Any]:
    info = stem.info
    out: dict[str, Any] = {
        "name": stem.name,
        "path": str(stem.path),
        "sample_rate": info.sample_rate if info else None,
        "channels": info.channels if info else None,
        "duration_s": round(info.duration_s, 4) if info else None,
        "format": info.format if info else None,
        "subtype": info.subtype if info else None,
    }
    keys = ("integrated_lufs", "max_momentary_lufs", "max_short_term_lufs", "lra_lu", "sample_peak_dbfs",
            "true_peak_dbtp", "correlation")
    if stem.analysis is not None:
        measures = analysis_dict(stem.analysis)
        out.update({k: measures[k] for k in keys})
        out.update({k: v for k, v in measures.items() if k not in keys})
    else:
        out.update({k: None for k in keys})
    out["error"] = stem.error.as_dict() if stem.error is not None else None
    return out


def session_dict(result: SessionResult) -> dict[str, Any]:
    """The full JSON document of ``mixbridge analyze --json`` (schema version 1)."""
    mix = result.mix
    mix_out: dict[str, Any] = {"sample_rate": mix.sample_rate}
    if mix.summed is not None:
        mix_out.update(analysis_dict(mix.summed))
    else:
        mix_out.update({"integrated_lufs": None, "true_peak_dbtp": None})
    mix_out["masking"] = [
        {"stems": [p.masked, p.masker], "masked": p.masked, "masker": p.masker,
         "band_low_hz": p.band_low_hz, "band_high_hz": p.band_high_hz, "centre_hz": p.centre_hz,
         "severity_db": p.overlap_db, "time_fraction": p.time_fraction, "mutual": p.mutual,
         "reverse_severity_db": p.reverse_overlap_db, "band_severity_db": list(p.band_overlap_db)}
        for p in mix.masking]
    mix_out["sections"] = [
        {"name": s.section.name, "start_s": round(s.section.start_s, 3), "end_s": round(s.section.end_s, 3),
         "source": s.section.source, "mix_lufs": s.mix_lufs,
         "stem_lufs": {name: value for name, value in s.stem_lufs}}
        for s in mix.sections]
    mix_out["alignment"] = list(mix.alignment)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "mixbridge", "version": __version__},
        "grid_s": 0.1,
        "band_centers_hz": [float(f) for f in BAND_CENTERS_HZ],
        "stems": [stem_dict(s) for s in result.stems],
        "mix": mix_out,
        "summary": {"stems": len(result.stems), "analysed": len(result.ok), "failed": len(result.failed)},
    }
    return _clean(doc)


def write_json(result: SessionResult, path: str | Path) -> None:
    """Write the document streaming: encoded piece by piece into the file, never as one string.

    Objects are indented one space per level; a list holding no object (a series, a spectrum,
    a pair of names) is one line.  Each such list goes through the json module's C encoder
    (``json.dump`` with an indent runs its pure-Python encoder value by value: 0.1 s per four
    stems, most of the serial tail's JSON time).
    """
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as fh:
        _write_value(fh, session_dict(result), 0)
        fh.write("\n")


_LEAF = json.JSONEncoder(separators=(", ", ": "))


def _write_value(fh, value: Any, depth: int) -> None:
    """``value`` as JSON into ``fh``: objects and lists of objects laid out, everything else inline."""
    inner = "\n" + " " * (depth + 1)
    if isinstance(value, dict) and value:
        fh.write("{")
        for i, (key, item) in enumerate(value.items()):
            fh.write(("," if i else "") + inner + _LEAF.encode(str(key)) + ": ")
            _write_value(fh, item, depth + 1)
        fh.write("\n" + " " * depth + "}")
    elif isinstance(value, (list, tuple)) and any(isinstance(item, dict) for item in value):
        fh.write("[")
        for i, item in enumerate(value):
            fh.write(("," if i else "") + inner)
            _write_value(fh, item, depth + 1)
        fh.write("\n" + " " * depth + "]")
    else:
        fh.write(_LEAF.encode(value))


def _fmt(value: float | None, width: int, ndigits: int = 1) -> str:
    return (f"{value:.{ndigits}f}" if value is not None else "-").rjust(width)


def stem_flags(a: StemAnalysis) -> list[str]:
    """Short tags for the table: what a mix engineer should look at first."""
    flags = []
    f = a.faults
    if f.silent:
        return ["SILENT"]
    if f.clip.runs:
        flags.append(f"CLIP x{f.clip.runs}")
    if a.levels.true_peak_dbtp is not None and a.levels.true_peak_dbtp > -1.0:
        flags.append("HOT")
    if f.dc_offset_dbfs is not None and f.dc_offset_dbfs > -50.0:
        flags.append("DC")
    if (a.spectrum.rumble_db is not None and a.spectrum.rumble_db > -25.0
            and (a.spectrum.useful_low_hz or 0.0) >= 63.0):
        flags.append("RUMBLE")
    if a.stereo is not None and a.stereo.correlation is not None and a.stereo.correlation < -0.2:
        flags.append("PHASE")
    return flags


def table(result: SessionResult) -> str:
    """A readable table: one row per stem, then the mix, masking and sections."""
    name_w = max([len(s.name) for s in result.stems] + [6])
    head = (f"{'stem'.ljust(name_w)}  {'LUFS':>6} {'maxM':>6} {'maxS':>6} {'LRA':>5} {'peak':>6} {'TP':>6} "
            f"{'PLR':>5} {'corr':>5} {'width':>5} {'act%':>4}  flags")
    lines = [head, "-" * len(head)]
    for s in result.stems:
        if s.analysis is None:
            lines.append(f"{s.name.ljust(name_w)}  ERROR {s.error.code}: {s.error.message}")
            continue
        a = s.analysis
        st = a.stereo
        lines.append(
            f"{s.name.ljust(name_w)}  {_fmt(a.loudness.integrated_lufs, 6)} {_fmt(a.loudness.max_momentary_lufs, 6)} "
            f"{_fmt(a.loudness.max_short_term_lufs, 6)} {_fmt(a.loudness.lra_lu, 5)} "
            f"{_fmt(a.levels.sample_peak_dbfs, 6)} {_fmt(a.levels.true_peak_dbtp, 6)} {_fmt(a.levels.plr_db, 5)} "
            f"{_fmt(st.correlation if st else None, 5, 2)} {_fmt(st.width if st else None, 5, 2)} "
            f"{a.faults.active_fraction * 100:4.0f}  {' '.join(stem_flags(a))}")
    mix = result.mix
    lines.append("-" * len(head))
    if mix.summed is not None:
        a = mix.summed
        st = a.stereo
        lines.append(
            f"{'MIX'.ljust(name_w)}  {_fmt(a.loudness.integrated_lufs, 6)} {_fmt(a.loudness.max_momentary_lufs, 6)} "
            f"{_fmt(a.loudness.max_short_term_lufs, 6)} {_fmt(a.loudness.lra_lu, 5)} "
            f"{_fmt(a.levels.sample_peak_dbfs, 6)} {_fmt(a.levels.true_peak_dbtp, 6)} {_fmt(a.levels.plr_db, 5)} "
            f"{_fmt(st.correlation if st else None, 5, 2)} {_fmt(st.width if st else None, 5, 2)} "
            f"{a.faults.active_fraction * 100:4.0f}  {' '.join(stem_flags(a))}")
    if mix.masking:
        lines.append("")
        lines.append("masking (strongest first):")
        for p in mix.masking[:10]:
            lines.append(f"  {p.masked} masked by {p.masker}: {p.band_low_hz:.0f}-{p.band_high_hz:.0f} Hz, "
                         f"{p.overlap_db:.1f} dB overlap, {p.time_fraction * 100:.0f}% of the time"
                         + (" (mutual)" if p.mutual else ""))
    if mix.sections:
        lines.append("")
        lines.append("sections:")
        for s in mix.sections:
            lines.append(f"  {s.section.name:<12} {s.section.start_s:7.1f}-{s.section.end_s:7.1f} s  "
                         f"mix {_fmt(s.mix_lufs, 6)} LUFS  ({s.section.source})")
    for note in mix.alignment:
        lines.append(f"aligned: {note}")
    return "\n".join(lines)


def analysis_id(result: SessionResult) -> str:
    """A content id of an analysis: the measured figures, independent of where the files live."""
    import hashlib
    import json

    doc = session_dict(result)
    for stem in doc["stems"]:
        stem.pop("path", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
