"""The notes' four pictures, as hand-written inline SVG (no plotting library).

Each chart is a pure function of the analysis (and the plan) returning one ``<svg>`` element as
a string: the same input always gives the same bytes.  Every chart carries a ``<title>`` and a
``<desc>`` (read by screen readers, shown as a tooltip), every row or cell its own ``<title>``
with the exact figures, and text is dark on a white ground.  All coordinates are in px.
"""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..analyze.session import SectionLevels
from ..analyze.spectrum import BAND_CENTERS_HZ
from ..suggest.plan import LEVEL_TOLERANCE_LU as GAIN_DEADBAND_LU

if TYPE_CHECKING:
    from ..pipeline import SessionResult
    from ..suggest.plan import MixPlan

#: Chart titles; the notes and the tests refer to charts by these.
TITLES = {
    "loudness": "Loudness per stem against its target",
    "spectrum": "Spectral balance of the mix",
    "masking": "Masking map between stem pairs",
    "timeline": "Mix loudness over time",
}

# Colours: dark ink on white; data hues chosen to stay apart for the common colour-vision
# deficiencies (blue against orange/brown), and told apart by dash pattern as well.
INK, MUTED, GRID, PAPER = "#1b1b1b", "#555555", "#d9d9d2", "#ffffff"
BAR_OK, BAR_OFF, TARGET = "#5b84b8", "#d08a3c", "#7a1f1f"
MIX_LINE, REF_LINE, ERROR_INK = "#1f4e79", "#a0522d", "#8b1a1a"
SECTION_FILLS = ("#eaf0f7", "#f6f1e4")
#: Masking shades, light to dark, and the lower edge of each bin (dB of overlap).
MASK_SHADES = ("#fde7cf", "#fbb677", "#f0792b", "#c8500f", "#7f2d06")
MASK_EDGES_DB = (0.0, 6.0, 12.0, 24.0, 48.0)
MASK_EMPTY = "#f2f2ee"

FONT = "Helvetica, Arial, sans-serif"
FONT_PX = 12
#: A rough advance width per character, for laying out labels without measuring fonts.
CHAR_PX = 6.8
#: Longest stem label drawn in full; longer ones are shortened (the row's tooltip has the name).
MAX_LABEL_CHARS = 30
#: Masking rows drawn at most (strongest pairs first).
MAX_MASKING_ROWS = 30
#: Span of the spectrum and timeline y axes, dB/LU.
SPECTRUM_SPAN_DB = 60.0
TIMELINE_SPAN_LU = 42.0
#: Seconds per short-term loudness value (the shared 100 ms grid).
GRID_S = 0.1

#: Bands labelled on frequency axes: the octave centres.
_OCTAVE_LABELS = {31.5: "31.5", 63: "63", 125: "125", 250: "250", 500: "500", 1000: "1k", 2000: "2k",
                  4000: "4k", 8000: "8k", 16000: "16k"}


# --- SVG primitives -----------------------------------------------------------------------------

def _n(value: float) -> str:
    """A coordinate with one decimal, trailing zeros dropped: stable text for stable output."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _attrs(attrs: dict[str, object]) -> str:
    out = []
    for key, value in attrs.items():
        if value is None:
            continue
        text = _n(value) if isinstance(value, float) else str(value)
        out.append(f' {key.rstrip("_").replace("_", "-")}="{_esc(text)}"')
    return "".join(out)


def _el(tag: str, children: str | None = None, **attrs: object) -> str:
    if children is None:
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{children}</{tag}>"


def _title(text: str) -> str:
    return f"<title>{_esc(text)}</title>"


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = FONT_PX, fill: str = INK,
          weight: str | None = None, style: str | None = None) -> str:
    return _el("text", _esc(text), x=float(x), y=float(y), text_anchor=anchor if anchor != "start" else None,
               font_size=size if size != FONT_PX else None, fill=fill, font_weight=weight, font_style=style)


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, width: float = 1.0,
          dash: str | None = None) -> str:
    return _el("line", x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), stroke=stroke,
               stroke_width=float(width), stroke_dasharray=dash)


def _path(points: Iterable[tuple[float, float] | None]) -> str:
    """An SVG path through the points, lifting the pen at each ``None`` (a gap in the data)."""
    out, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        out.append(f"{'L' if pen_down else 'M'}{_n(point[0])} {_n(point[1])}")
        pen_down = True
    return " ".join(out)


def _svg(kind: str, width: float, height: float, desc: str, body: list[str]) -> str:
    """The chart's outer element: size, accessible name and description, white ground."""
    ident = f"chart-{kind}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
            f'width="{_n(width)}" height="{_n(height)}" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc" font-family="{FONT}" font-size="{FONT_PX}" '
            f'class="chart {ident}">')
    return "\n".join([head, f'<title id="{ident}-title">{_esc(TITLES[kind])}</title>',
                      f'<desc id="{ident}-desc">{_esc(desc)}</desc>',
                      _el("rect", width=float(width), height=float(height), fill=PAPER)] + body + ["</svg>"])


def _label(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


def _label_width(labels: Sequence[str], floor_px: float = 60.0) -> float:
    """Room for right-aligned row labels (already shortened), px."""
    return max([floor_px] + [len(label) * CHAR_PX + 14.0 for label in labels])


def _fmt(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f} {unit}" if signed else f"{value:.1f} {unit}"


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> list[str]:
    """A row of legend entries; each is (swatch SVG at (0,0)-(16,10), label)."""
    out = []
    for swatch, label in entries:
        out.append(f'<g transform="translate({_n(x)} {_n(y - 9)})">{swatch}</g>')
        out.append(_text(x + 21, y, label, size=11))
        x += 21 + len(label) * CHAR_PX * 0.92 + 18
    return out


def _empty(kind: str, message: str) -> str:
    """A chart with nothing to draw still says so, under the same title."""
    return _svg(kind, 520, 60, message, [_text(16, 35, message, fill=MUTED, style="italic")])


# --- (a) loudness per stem against its target ---------------------------------------------------

def stem_targets_lufs(result: SessionResult, plan: MixPlan) -> dict[str, float | None]:
    """Each stem's target integrated loudness, as the plan judged it (``TrackPlan.target_lufs``).

    Stems judged as part of a source group, silent or failed stems have none.
    """
    targets = {t.name: t.target_lufs for t in plan.tracks}
    return {stem.name: targets.get(stem.name) if stem.analysis is not None
            and stem.analysis.loudness.integrated_lufs is not None else None for stem in result.stems}


def _lufs_axis(values: Sequence[float]) -> tuple[float, float]:
    """Axis ends on a 6 LU grid with room around the data, at least 24 LU wide."""
    if not values:
        return -48.0, 0.0
    low = math.floor((min(values) - 3.0) / 6.0) * 6.0
    high = math.ceil((max(values) + 2.0) / 6.0) * 6.0
    if high - low < 24.0:
        low = high - 24.0
    return low, high


def _loudness_row(name: str, lufs: float | None, target: float | None, status: str) -> tuple[str, str, bool]:
    """(tooltip, right-hand text, within the deadband) for one stem."""
    if status == "silent":
        return f"{name}: silent (nothing reaches -70 LUFS)", "silent", True
    if status != "ok":
        return f"{name}: not analysed ({status})", f"not analysed ({status})", True
    if target is None:
        return f"{name}: {_fmt(lufs, 'LUFS')} integrated", _fmt(lufs, "LUFS"), True
    off = lufs - target
    side = "above" if off > 0 else "below"
    tip = f"{name}: {_fmt(lufs, 'LUFS')} integrated, target {_fmt(target, 'LUFS')} ({abs(off):.1f} LU {side})"
    return tip, f"{_fmt(lufs, 'LUFS')} (target {target:.1f})", abs(off) < GAIN_DEADBAND_LU


def _loudness_bar(row: tuple[str, float | None, float | None, str], y: float, left: float, note_x: float,
                  x: Callable[[float], float]) -> str:
    """One stem's row: label, bar from the axis start, target tick, and the figures in words."""
    name, lufs, target, status = row
    tip, note, close = _loudness_row(name, lufs, target, status)
    parts = [_title(tip), _text(left - 8, y + 16, _label(name), anchor="end")]
    if lufs is not None:
        parts.append(_el("rect", x=float(left), y=y + 6.0, width=max(x(lufs) - left, 1.0), height=12.0,
                         fill=BAR_OK if close else BAR_OFF))
    if target is not None:
        parts.append(_line(x(target), y + 2, x(target), y + 22, stroke=TARGET, width=3.0))
    fill = INK if status == "ok" else MUTED if status == "silent" else ERROR_INK
    parts.append(_text(note_x, y + 16, note, fill=fill, style=None if status == "ok" else "italic"))
    return _el("g", "".join(parts))


def loudness_chart(result: SessionResult, plan: MixPlan) -> str:
    """Horizontal bars of each stem's integrated loudness, with a tick at its target.

    Parameters
    ----------
    result : SessionResult
    plan : MixPlan
        Supplies roles, anchor and role offsets for the targets.

    Returns
    -------
    str
        One ``<svg>`` element.  Silent and failed stems get a row that says so, without a bar.
    """
    if not result.stems:
        return _empty("loudness", "no stems")
    targets = stem_targets_lufs(result, plan)
    rows = []
    for stem in result.stems:
        if stem.error is not None:
            rows.append((stem.name, None, None, stem.error.code))
        elif stem.analysis.loudness.integrated_lufs is None:
            rows.append((stem.name, None, None, "silent"))
        else:
            rows.append((stem.name, stem.analysis.loudness.integrated_lufs, targets.get(stem.name), "ok"))
    values = [v for _, lufs, target, _ in rows for v in (lufs, target) if v is not None]
    low, high = _lufs_axis(values)
    left, plot_w, right_w, row_h, top = _label_width([_label(r[0]) for r in rows]), 400.0, 190.0, 24.0, 40.0
    width, height = left + plot_w + right_w, top + row_h * len(rows) + 44.0

    def x(lufs: float) -> float:
        return left + (min(max(lufs, low), high) - low) / (high - low) * plot_w

    body = _legend(left, 18, [
        (_el("rect", width=16.0, height=10.0, fill=BAR_OK), f"within {GAIN_DEADBAND_LU:.0f} LU of target"),
        (_el("rect", width=16.0, height=10.0, fill=BAR_OFF), f"{GAIN_DEADBAND_LU:.0f} LU or more off"),
        (_line(8, -1, 8, 11, stroke=TARGET, width=3.0), "target")])
    bottom = top + row_h * len(rows)
    for tick in range(int(low), int(high) + 1, 6):
        body.append(_line(x(tick), top - 4, x(tick), bottom, stroke=GRID))
        body.append(_text(x(tick), bottom + 16, f"{tick}", anchor="middle", size=11, fill=MUTED))
    body.append(_text(left + plot_w / 2, bottom + 34, "integrated loudness, LUFS", anchor="middle", fill=MUTED))
    for k, row in enumerate(rows):
        body.append(_loudness_bar(row, top + k * row_h, left, left + plot_w + 10, x))
    anchor = plan.anchor
    against = ("no anchor: no stem was measurable" if anchor is None else
               f"targets are the lead vocal {anchor.stem} ({anchor.lufs:.1f} LUFS) plus each role's offset"
               if anchor.kind == "lead_vocal" else "targets are set against the summed mix plus each role's offset")
    desc = (f"Integrated loudness of {len(rows)} stems as horizontal bars on a {low:.0f} to {high:.0f} LUFS axis, "
            f"with a tick at each stem's target; {against}.")
    return _svg("loudness", width, height, desc, body)


# --- (b) spectral balance -----------------------------------------------------------------------

def _relative(band_db: Sequence[float | None], integrated_lufs: float | None) -> list[float | None]:
    """Band levels relative to the integrated loudness, so tracks at any level compare."""
    if integrated_lufs is None:
        return [None] * len(band_db)
    return [round(v - integrated_lufs, 2) if v is not None else None for v in band_db]


def _band_axis(x0: float, plot_w: float, bottom: float) -> tuple[list[str], list[float]]:
    """Octave labels under a 31-band axis, and the x centre of each band."""
    step = plot_w / len(BAND_CENTERS_HZ)
    centres = [x0 + (k + 0.5) * step for k in range(len(BAND_CENTERS_HZ))]
    out = []
    for k, hz in enumerate(BAND_CENTERS_HZ):
        label = _OCTAVE_LABELS.get(float(hz))
        if label:
            out.append(_text(centres[k], bottom + 16, label, anchor="middle", size=11, fill=MUTED))
    out.append(_text(x0 + plot_w / 2, bottom + 34, "frequency, Hz (1/3-octave bands)", anchor="middle", fill=MUTED))
    return out, centres


def spectrum_chart(result: SessionResult, plan: MixPlan) -> str:
    """The mix's 31-band spectrum relative to its integrated loudness, and the reference's.

    Both curves are normalised the way :mod:`bridge.suggest.reference` compares them (band dB
    minus integrated LUFS), so a gap between them is a tonal difference, not a level one.
    Values below the axis floor are drawn on it.
    """
    summed = result.mix.summed
    if summed is None or summed.loudness.integrated_lufs is None:
        return _empty("spectrum", "no mix to measure: every stem failed or is silent")
    mix = _relative(summed.spectrum.band_db, summed.loudness.integrated_lufs)
    ref = plan.reference
    reference = _relative(ref.reference_band_db, ref.integrated_lufs) if ref is not None else None
    values = [v for v in mix + (reference or []) if v is not None]
    high = math.ceil(max(values) / 6.0) * 6.0 if values else 0.0
    low = high - SPECTRUM_SPAN_DB
    left, plot_w, plot_h, top = 56.0, 558.0, 240.0, 40.0
    width, height, bottom = left + plot_w + 20.0, top + plot_h + 44.0, top + plot_h

    def y(db: float) -> float:
        return top + (high - min(max(db, low), high)) / SPECTRUM_SPAN_DB * plot_h

    entries = [(_line(0, 5, 16, 5, stroke=MIX_LINE, width=2.5), f"mix ({summed.loudness.integrated_lufs:.1f} LUFS)")]
    if ref is not None:
        entries.append((_line(0, 5, 16, 5, stroke=REF_LINE, width=2.5, dash="5 3"),
                        f"reference {_label(ref.name)} ({_fmt(ref.integrated_lufs, 'LUFS')})"))
    body = _legend(left, 18, entries)
    for db in range(int(low), int(high) + 1, 12):
        body.append(_line(left, y(db), left + plot_w, y(db)))
        body.append(_text(left - 6, y(db) + 4, f"{db}", anchor="end", size=11, fill=MUTED))
    body.append(_el("text", _esc("dB re integrated loudness"), x=14.0, y=top + plot_h / 2, fill=MUTED,
                    text_anchor="middle", transform=f"rotate(-90 14 {_n(top + plot_h / 2)})"))
    axis, centres = _band_axis(left, plot_w, bottom)
    body += axis
    if any(v < low for v in values):
        body.append(_text(left + plot_w - 4, bottom - 6, f"lower values drawn at {low:.0f} dB", anchor="end",
                          size=11, fill=MUTED, style="italic"))
    curves = [(mix, MIX_LINE, None, "mix")] + ([(reference, REF_LINE, "5 3", "reference")] if reference else [])
    for values_db, colour, dash, what in curves:
        points = [(centres[k], y(v)) if v is not None else None for k, v in enumerate(values_db)]
        tip = f"{what}: " + ", ".join(f"{hz:g} Hz {v:+.1f} dB"
                                      for hz, v in zip(BAND_CENTERS_HZ, values_db) if v is not None)
        body.append(_el("path", _title(tip), d=_path(points), fill="none", stroke=colour, stroke_width=2.5,
                        stroke_dasharray=dash, stroke_linejoin="round"))
    desc = ("Level of the summed mix in 31 third-octave bands from 20 Hz to 20 kHz, relative to its integrated "
            "loudness" + (f", with the reference {ref.name} normalised the same way" if ref is not None else "")
            + f"; y axis {low:.0f} to {high:.0f} dB.")
    return _svg("spectrum", width, height, desc, body)


# --- (c) masking map ----------------------------------------------------------------------------

def _mask_shade(overlap_db: float) -> str:
    shade = MASK_SHADES[0]
    for edge, colour in zip(MASK_EDGES_DB, MASK_SHADES):
        if overlap_db >= edge:
            shade = colour
    return shade


def _mask_legend() -> list[tuple[str, str]]:
    entries = []
    for k, (edge, colour) in enumerate(zip(MASK_EDGES_DB, MASK_SHADES)):
        upper = MASK_EDGES_DB[k + 1] if k + 1 < len(MASK_EDGES_DB) else None
        label = f"{edge:.0f}-{upper:.0f} dB" if upper is not None else f"{edge:.0f}+ dB"
        entries.append((_el("rect", width=16.0, height=10.0, fill=colour), "<6 dB" if k == 0 else label))
    return entries


def masking_chart(result: SessionResult) -> str:
    """Rows of stem pairs ("Kick vs Bass_DI": the first is masked by the second), columns of the
    31 bands, each cell shaded by that band's mean overlap (MSR + clarity margin, dB).

    Only the :data:`MAX_MASKING_ROWS` strongest pairs are drawn; the description counts the rest.
    """
    pairs = result.mix.masking
    if not pairs:
        return _empty("masking", "no significant masking between stems")
    shown = pairs[:MAX_MASKING_ROWS]
    labels = [f"{p.masked} vs {p.masker}" for p in shown]
    cell, top = 17.0, 62.0
    left = _label_width([_label_pair(p.masked, p.masker) for p in shown], 120.0) * 11 / FONT_PX
    plot_w = cell * len(BAND_CENTERS_HZ)
    width, height = left + plot_w + 20.0, top + cell * len(shown) + 44.0
    bottom = top + cell * len(shown)
    body = [_text(left, 18, "overlap of the masked stem in each band (darker: more masked)", size=11, fill=MUTED)]
    body += _legend(left, 40, _mask_legend())
    axis, _ = _band_axis(left, plot_w, bottom)
    body += axis
    for k, (pair, label) in enumerate(zip(shown, labels)):
        y = top + k * cell
        summary = (f"{pair.masked} is masked by {pair.masker} at {pair.band_low_hz:.0f}-{pair.band_high_hz:.0f} Hz: "
                   f"{pair.overlap_db:.1f} dB overlap, {pair.time_fraction * 100:.0f}% of the time"
                   + (" (both ways)" if pair.mutual else ""))
        row_label = _label_pair(pair.masked, pair.masker)
        cells = [_title(summary), _text(left - 8, y + 12.5, row_label, anchor="end", size=11)]
        for b, (hz, overlap) in enumerate(zip(BAND_CENTERS_HZ, pair.band_overlap_db)):
            rect = dict(x=left + b * cell, y=y, width=cell, height=cell, stroke=PAPER, stroke_width=1.0)
            if overlap is None:
                cells.append(_el("rect", fill=MASK_EMPTY, **rect))
            else:
                cells.append(_el("rect", _title(f"{label}, {hz:g} Hz: {overlap:.1f} dB overlap"),
                                 fill=_mask_shade(overlap), **rect))
        body.append(_el("g", "".join(cells)))
    more = len(pairs) - len(shown)
    desc = (f"{len(shown)} stem pairs with significant masking, strongest first, against 31 bands from 20 Hz to "
            f"20 kHz; darker cells mean more overlap" + (f"; {more} weaker pairs are not drawn" if more > 0 else "")
            + ".")
    return _svg("masking", width, height, desc, body)


def _label_pair(masked: str, masker: str) -> str:
    """A row label that fits: each name shortened on its own, so both stay recognisable."""
    half = MAX_LABEL_CHARS // 2 + 2
    def cut(name: str) -> str:
        return name if len(name) <= half else name[: half - 1] + "…"
    return f"{cut(masked)} vs {cut(masker)}"


# --- (d) loudness over time ---------------------------------------------------------------------

def _time_step(duration_s: float) -> float:
    """A tick spacing giving at most about twelve ticks."""
    for step in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0):
        if duration_s / step <= 12.0:
            return step
    return 600.0


def _clock(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _section_band(level: SectionLevels, fill: str, x0: float, x1: float, top: float, height: float) -> str:
    """A shaded section with its name and mix loudness, shortened to what fits its width."""
    s = level.section
    room = x1 - x0 - 6.0
    label = f"{s.name} · {level.mix_lufs:.1f} LUFS" if level.mix_lufs is not None else s.name
    if len(label) * CHAR_PX * 0.92 > room:
        label = _label(s.name) if len(_label(s.name)) * CHAR_PX * 0.92 <= room else ""
    tip = f"section {s.name}: {s.start_s:.1f}-{s.end_s:.1f} s, mix {_fmt(level.mix_lufs, 'LUFS')}"
    return _el("g", _title(tip) + _el("rect", x=x0, y=top, width=max(x1 - x0, 0.5), height=height, fill=fill)
               + (_text(x0 + 4, top + 14, label, size=11) if label else ""))


def timeline_chart(result: SessionResult) -> str:
    """The mix's short-term loudness (3 s window, every 100 ms) with the sections shaded.

    Value ``t`` of the series is the window ending at ``(t + 1) * 100 ms`` (see
    :class:`~bridge.analyze.stem.LoudnessMeasures`) and is drawn at that time.  Each section is
    labelled with its name and the mix's loudness inside it; a dashed line marks the mix's
    integrated loudness.
    """
    summed = result.mix.summed
    series = summed.loudness.short_term_lufs if summed is not None else ()
    values = [v for v in series if v is not None]
    if not values:
        return _empty("timeline", "no mix loudness to draw: the mix is silent or shorter than 3 s")
    sections = result.mix.sections
    duration = max([len(series) * GRID_S] + [s.section.end_s for s in sections])
    high = math.ceil((max(values) + 1.0) / 6.0) * 6.0
    low = max(math.floor(min(values) / 6.0) * 6.0, high - TIMELINE_SPAN_LU)
    left, plot_w, plot_h, top = 56.0, 640.0, 200.0, 36.0
    width, height, bottom = left + plot_w + 20.0, top + plot_h + 44.0, top + plot_h
    integrated = summed.loudness.integrated_lufs

    def x(seconds: float) -> float:
        return left + min(max(seconds, 0.0), duration) / duration * plot_w

    def y(lufs: float) -> float:
        return top + (high - min(max(lufs, low), high)) / (high - low) * plot_h

    entries = [(_line(0, 5, 16, 5, stroke=MIX_LINE, width=2.0), "short-term loudness (3 s window)")]
    if integrated is not None:
        entries.append((_line(0, 5, 16, 5, stroke=MUTED, width=1.2, dash="4 3"), f"integrated {integrated:.1f} LUFS"))
    body = _legend(left, 18, entries)
    body += [_section_band(level, SECTION_FILLS[k % 2], x(level.section.start_s), x(level.section.end_s), top,
                           plot_h) for k, level in enumerate(sections)]
    for lufs in range(int(low), int(high) + 1, 6):
        body.append(_line(left, y(lufs), left + plot_w, y(lufs)))
        body.append(_text(left - 6, y(lufs) + 4, f"{lufs}", anchor="end", size=11, fill=MUTED))
    step = _time_step(duration)
    ticks = [k * step for k in range(int(duration // step) + 1)]
    for t in ticks:
        body.append(_line(x(t), bottom, x(t), bottom + 4, stroke=MUTED))
        body.append(_text(x(t), bottom + 16, _clock(t), anchor="middle", size=11, fill=MUTED))
    body.append(_text(left + plot_w / 2, bottom + 34, "time", anchor="middle", fill=MUTED))
    body.append(_el("text", _esc("short-term loudness, LUFS"), x=14.0, y=top + plot_h / 2, fill=MUTED,
                    text_anchor="middle", transform=f"rotate(-90 14 {_n(top + plot_h / 2)})"))
    if integrated is not None:
        body.append(_el("g", _title(f"integrated loudness {integrated:.1f} LUFS")
                        + _line(left, y(integrated), left + plot_w, y(integrated), stroke=MUTED, width=1.2,
                                dash="4 3")))
    points = [(x((k + 1) * GRID_S), y(v)) if v is not None else None for k, v in enumerate(series)]
    body.append(_el("path", _title(f"short-term loudness, {min(values):.1f} to {max(values):.1f} LUFS"),
                    d=_path(points), fill="none", stroke=MIX_LINE, stroke_width=2.0, stroke_linejoin="round"))
    names = ", ".join(f"{s.section.name} {s.section.start_s:.0f}-{s.section.end_s:.0f} s" for s in sections)
    desc = (f"Short-term loudness of the mix over {duration:.1f} s, from {min(values):.1f} to {max(values):.1f} LUFS"
            + (f"; sections: {names}" if names else "") + ".")
    return _svg("timeline", width, height, desc, body)


def all_charts(result: SessionResult, plan: MixPlan) -> dict[str, str]:
    """The four charts by key (the keys of :data:`TITLES`), in the order the notes show them."""
    return {"loudness": loudness_chart(result, plan), "spectrum": spectrum_chart(result, plan),
            "masking": masking_chart(result), "timeline": timeline_chart(result)}
