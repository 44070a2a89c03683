"""The notes' wording: values with their units, and plan changes as moves in plain words.

Kept apart from the layout so that Markdown and HTML say exactly the same thing, and so the
wording can change without touching either.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..analyze.session import SectionLevels
from ..suggest.model import Automation, Change, TrackPlan
from .model import ParamValue

#: Tag shown for each provenance, and what it means.
TAG_LABELS = {"ai": "AI-processed", "hybrid": "hybrid", "manual": "manual", "untouched": "untouched"}
TAG_MEANINGS = {
    "ai": "AI moves proposed or applied",
    "hybrid": "AI moves plus producer overrides",
    "manual": "left to the producer, or overridden by the producer",
    "untouched": "nothing to change",
}

#: Plan parameter names (and their prefixes) in words.
_PARAM_WORDS = {
    "volume_db": "fader", "pan": "pan", "width": "width", "polarity": "polarity",
    "threshold_db": "compressor threshold", "ratio": "compressor ratio", "attack_ms": "compressor attack",
    "release_ms": "compressor release", "makeup_db": "compressor make-up",
    "volume_automation": "volume automation", "volume_db_automation": "volume automation",
    "polarity_left": "polarity (left)", "polarity_right": "polarity (right)",
}
_BAND_FIELDS = {"type": "type", "freq_hz": "frequency", "gain_db": "gain", "q": "Q"}
_BAND_PARAM = re.compile(r"^band(\d+)_(type|freq_hz|gain_db|q)$")
_EQ_KINDS = {"highpass": "high-pass", "lowpass": "low-pass", "lowshelf": "low shelf",
             "highshelf": "high shelf", "peak": "peak"}
#: Gains within this of 0 dB are shown as no change in automation summaries.
_FLAT_DB = 0.05


# --- numbers ------------------------------------------------------------------------------------

def fmt_db(value: float | None, signed: bool = True, unit: str = "dB") -> str:
    """``-3.5 dB``; relative moves carry an explicit sign (``+3.2 dB``)."""
    if value is None:
        return "n/a"
    value = 0.0 if abs(value) < 0.05 else value  # no "-0.0"
    return f"{value:+.1f} {unit}" if signed else f"{value:.1f} {unit}"


def fmt_lufs(value: float | None) -> str:
    return fmt_db(value, signed=False, unit="LUFS")


def fmt_lu(value: float | None) -> str:
    return fmt_db(value, signed=True, unit="LU")


def fmt_hz(value: float | None) -> str:
    """``100 Hz``, ``1.25 kHz``."""
    if value is None:
        return "n/a"
    if value >= 1000.0:
        return f"{value / 1000.0:.3g} kHz"
    return f"{value:.0f} Hz"


def fmt_seconds(value: float) -> str:
    return f"{value:.1f} s"


def fmt_span(start_s: float, end_s: float) -> str:
    """``7.0-12.0 s``."""
    return f"{start_s:.1f}-{end_s:.1f} s"


def fmt_q(q: float) -> str:
    """A filter Q with up to two decimals and at least one: ``0.7``, ``1.05``, ``1.0``."""
    text = f"{q:.2f}"
    return text[:-1] if text.endswith("0") else text


def plural(count: int, noun: str) -> str:
    """``1 move``, ``3 moves``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def fmt_pan(value: float) -> str:
    """REAPER pan, -1 (left) .. +1 (right), as a percentage and side."""
    if abs(value) < 0.005:
        return "centre"
    return f"{abs(value) * 100:.0f}% {'right' if value > 0 else 'left'}"


def unit_of(param: str, unit: str = "") -> str:
    """The unit a parameter's value is in: the given one, else the one its name carries."""
    if unit:
        return unit
    for suffix, implied in (("_db", "dB"), ("_hz", "Hz"), ("_ms", "ms"), ("_lufs", "LUFS"), ("_lu", "LU")):
        if param.endswith(suffix):
            return implied
    return ":1" if param == "ratio" else ""


def fmt_value(param: str, value: ParamValue, unit: str = "") -> str:
    """A parameter value with its unit: ``-3.5 dB``, ``100 Hz``, ``2.0:1``, ``30% left``."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return _EQ_KINDS.get(value, value)
    unit = unit_of(param, unit)
    if unit == "dB":
        return fmt_db(value)
    if unit == "Hz":
        return fmt_hz(value)
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == ":1":
        return f"{value:.1f}:1"
    if unit in ("LUFS", "LU"):
        return fmt_db(value, signed=unit == "LU", unit=unit)
    if param == "pan":
        return fmt_pan(value)
    if param == "width":
        return f"{value * 100:.0f}%"
    if param == "polarity" or unit == "flag":
        return "inverted" if value else "normal"
    return f"{value:g} {unit}".strip()


def describe_param(param: str) -> str:
    """A plan parameter in words: ``band2_gain_db`` -> ``EQ band 2 gain``."""
    match = _BAND_PARAM.match(param)
    if match:
        return f"EQ band {match.group(1)} {_BAND_FIELDS[match.group(2)]}"
    return _PARAM_WORDS.get(param, param.replace("_", " "))


# --- moves --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Move:
    """One proposed move of a track, described.

    Attributes
    ----------
    what : str
        The move with its values ("peak -6.0 dB at 355 Hz (Q 1.05)").
    why : tuple of str
        The findings behind it (their messages).
    confidence : float or None
    """

    what: str
    why: tuple[str, ...]
    confidence: float | None


def _eq_band(fields: dict[str, ParamValue]) -> str:
    kind = str(fields.get("type", "peak"))
    freq = fields.get("freq_hz")
    where = f"at {fmt_hz(freq)}" if isinstance(freq, (int, float)) else ""
    if kind in ("highpass", "lowpass"):
        return f"{_EQ_KINDS[kind]} {where}".strip()
    gain = fields.get("gain_db")
    gain_text = fmt_db(gain) if isinstance(gain, (int, float)) else ""
    q = fields.get("q")
    q_text = f" (Q {fmt_q(q)})" if isinstance(q, (int, float)) and kind == "peak" else ""
    return f"{_EQ_KINDS.get(kind, kind)} {gain_text} {where}{q_text}".replace("  ", " ").strip()


def _comp(fields: dict[str, ParamValue]) -> str:
    parts = []
    if "ratio" in fields:
        parts.append(f"ratio {fmt_value('ratio', fields['ratio'])}")
    if "threshold_db" in fields:
        parts.append(f"threshold {fmt_db(fields['threshold_db'])}")
    if "attack_ms" in fields:
        parts.append(f"attack {fmt_value('attack_ms', fields['attack_ms'])}")
    if "release_ms" in fields:
        parts.append(f"release {fmt_value('release_ms', fields['release_ms'])}")
    if "makeup_db" in fields:
        parts.append(f"make-up {fmt_db(fields['makeup_db'])}")
    return "compressor: " + ", ".join(parts)


def _track_change(change: Change) -> str:
    if change.param == "volume_db":
        return f"fader {fmt_db(float(change.value))}"
    if change.param == "polarity":
        channel = change.extra.get("channel", "both")
        return "invert polarity" + ("" if channel == "both" else f" of the {channel} channel")
    if change.param == "pan":
        return f"pan {fmt_pan(float(change.value))}"
    if change.param == "width":
        return f"width {float(change.value) * 100:.0f}%"
    return f"{describe_param(change.param)} {fmt_value(change.param, change.value, change.unit)}"


def describe_changes(changes: Sequence[Change]) -> list[tuple[str, str, str]]:
    """Group a track's parameter changes into moves.

    Returns
    -------
    list of (what, suggestion id, reason)
        One entry per fader/pan/width/polarity change, per EQ band and per compressor, in plan
        order.
    """
    groups: dict[tuple[str, str], list[Change]] = {}
    for k, change in enumerate(changes):
        match = _BAND_PARAM.match(change.param) if change.target == "eq" else None
        key = ("eq", match.group(1)) if match else ("comp", "") if change.target == "comp" else ("track", str(k))
        groups.setdefault(key, []).append(change)
    out = []
    for (kind, number), group in groups.items():
        if kind == "eq":
            what = f"EQ band {number}: " + _eq_band({_BAND_PARAM.match(c.param).group(2): c.value for c in group})
        elif kind == "comp":
            what = _comp({c.param: c.value for c in group})
        else:
            what = _track_change(group[0])
        out.append((what, group[0].suggestion, group[0].reason))
    return out


def describe_automation(automation: Automation, sections: Sequence[SectionLevels]) -> str:
    """Volume automation summarised as the spans it holds a gain over, by section: ``B +9.3 dB``.

    The plan's envelopes are ramps into and out of plateaus; a plateau is two consecutive points
    at the same non-zero value.  Each is named by the section that holds its midpoint.
    """
    spans = []
    for (t0, v0), (t1, v1) in zip(automation.points, automation.points[1:]):
        if abs(v0 - v1) < 1e-9 and abs(v0) >= _FLAT_DB and t1 > t0:
            spans.append(_span_text(t0, t1, v0, sections))
    if not spans:
        return "volume automation: " + ", ".join(f"{fmt_seconds(t)} {fmt_db(v)}" for t, v in automation.points)
    return "volume automation: " + "; ".join(spans)


def _span_text(start_s: float, end_s: float, gain_db: float, sections: Sequence[SectionLevels]) -> str:
    middle = (start_s + end_s) / 2.0
    for level in sections:
        s = level.section
        if s.start_s <= middle < s.end_s:
            return f"{s.name} ({fmt_span(s.start_s, s.end_s)}) {fmt_db(gain_db)}"
    return f"{fmt_span(start_s, end_s)} {fmt_db(gain_db)}"


def track_moves(track: TrackPlan, sections: Sequence[SectionLevels]) -> list[Move]:
    """Every move the plan proposes for a track, with the findings behind it."""
    summaries = {s["id"]: s for s in track.suggestions}
    moves = []
    for what, sid, reason in describe_changes(track.changes):
        moves.append(Move(what, _why(track, sid, reason, summaries), _confidence(sid, summaries)))
    for auto in track.automation:
        moves.append(Move(describe_automation(auto, sections), _why(track, auto.suggestion, auto.reason, summaries),
                          _confidence(auto.suggestion, summaries)))
    return moves


def _why(track: TrackPlan, sid: str, reason: str, summaries: dict) -> tuple[str, ...]:
    """The finding behind a suggestion; for a combined fader move, every finding that fed it."""
    reasons = []
    if sid in summaries:
        reasons.append(summaries[sid]["summary"])
    codes = reason.split("+")
    if len(codes) > 1:
        reasons.extend(f.message for f in track.findings if f.code in codes and f.message not in reasons)
    return tuple(reasons)


def _confidence(sid: str, summaries: dict) -> float | None:
    return summaries[sid].get("confidence") if sid in summaries else None


def used_findings(track: TrackPlan) -> set[str]:
    """Messages of the findings that explain some move (the rest are observations only)."""
    moved = {c.suggestion for c in track.changes} | {a.suggestion for a in track.automation}
    used = {s["summary"] for s in track.suggestions if s["id"] in moved}
    for change in track.changes:
        codes = change.reason.split("+")
        if len(codes) > 1:
            used.update(f.message for f in track.findings if f.code in codes)
    return used


def join(words: Iterable[str]) -> str:
    """``a, b and c``."""
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
