"""Feedback notes for whoever gives mix feedback or masters the track: Markdown and HTML twins.

:func:`build_notes` turns a :class:`~bridge.notes.model.NotesInput` into document blocks once;
:func:`render_markdown` and :func:`render_html` write them out; :func:`write_notes` is the only
function here that touches the filesystem.  Output is deterministic: no clock is read, and
everything is listed in plan (stem) order.

Order of the notes: summary; each track with its tag, moves and reasons; the charts; the
reference comparison; errors and skipped stems; then, only when the later stages filled them,
what was written to REAPER, the producer's overrides, changes since the previous bounce, and
moves that could not be applied.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..files import write_atomic
from ..suggest.plan import MixPlan
from ..suggest.reference import ReferenceComparison
from ..suggest.model import TrackPlan
from . import charts
from .document import (Block, Bullets, Figure, Heading, Listen, Paragraph, Section, Span, Table, text, to_html,
                       to_markdown)
from .model import PROVENANCES, ChangesSincePrevious, NotesInput, PlanItem, RenderLinks
from .texts import (TAG_LABELS, TAG_MEANINGS, describe_param, fmt_db, fmt_hz, fmt_lu, fmt_lufs, fmt_value, join,
                    plural, track_moves, used_findings)

#: Headings of the sections that appear only when the later stages filled them.
SECTION_TITLES = {
    "applied": "Written to REAPER",
    "proposed": "Proposed (no DAW target)",
    "overrides": "Producer overrides",
    "changes_since_previous": "Changes since the previous bounce",
    "pending": "Moves not applied",
}
#: Chart captions, by the keys of :data:`bridge.notes.charts.TITLES`.
CAPTIONS = {
    "loudness": "Each bar is a stem's integrated loudness; the dark tick is its target (the anchor plus the "
                "role's offset). Orange bars sit far enough off target for a fader move.",
    "spectrum": "Tonal balance of the summed mix, band level minus integrated loudness, so curves at different "
                "levels compare. The dashed curve is the reference, normalised the same way.",
    "masking": "Where stems cover each other: each row is a pair (the first is masked by the second), each "
               "column a third-octave band; darker cells mean more overlap.",
    "timeline": "Short-term loudness of the mix (3 s window) with the sections shaded and their loudness.",
}
_SILENT = "silent: nothing reaches -70 LUFS (muted at render, or an empty track)"
#: What happened to this pass's changes, by ``NotesInput.outcome``.
OUTCOME_WORDS = {"written": "written to REAPER", "proposed": "proposed (no DAW target)",
                 "queued": "queued (REAPER unreachable)", "held": "held for review", "failed": "not applied",
                 "": "applied"}


def _code(value: str) -> Span:
    return Span(value, "code")


def _tag(provenance: str) -> Span:
    return Span(TAG_LABELS[provenance], f"tag-{provenance}")


# --- header and summary -------------------------------------------------------------------------

def _header(notes: NotesInput) -> list[Block]:
    title = "Mix notes" + (f": {notes.title}" if notes.title else "")
    ids = text("analysis ", _code(notes.plan.analysis_id or "-"), " · plan ", _code(notes.plan.id or "-"))
    if notes.generated_at:
        ids += text(f" · written {notes.generated_at}")
    blocks: list[Block] = [Heading(1, text(title)), Paragraph(ids)]
    if notes.review_url:
        blocks.append(Paragraph(text(Span("Review:", "strong"), " hear, accept and reject each suggestion on the ",
                                     Span("review page", href=notes.review_url),
                                     " (while mixbridge runs)")))
    return blocks


def _mix_line(notes: NotesInput) -> tuple[Span, ...]:
    summed = notes.result.mix.summed
    if summed is None or summed.loudness.integrated_lufs is None:
        return text(Span("Mix:", "strong"), " ", "nothing measurable: every stem failed or is silent")
    lv, ld = summed.levels, summed.loudness
    lra = fmt_db(ld.lra_lu, signed=False, unit="LU")
    return text(Span("Mix:", "strong"), " ", f"{fmt_lufs(ld.integrated_lufs)} integrated, true peak "
                f"{fmt_db(lv.true_peak_dbtp, unit='dBTP')}, loudness range {lra}, "
                f"peak-to-loudness ratio {fmt_db(lv.plr_db, signed=False)}")


def _stems_line(notes: NotesInput) -> tuple[Span, ...]:
    stems = notes.result.stems
    failed = sum(1 for s in stems if s.error is not None)
    silent = sum(1 for s in stems if s.analysis is not None and s.analysis.faults.silent)
    return text(Span("Stems:", "strong"), " ", f"{len(stems)} found, {len(stems) - failed} analysed, {failed} failed"
                + (f", {silent} silent" if silent else ""))


def _moves_line(notes: NotesInput) -> tuple[Span, ...]:
    sections = notes.result.mix.sections
    per_track = {t.name: len(track_moves(t, sections)) for t in notes.plan.tracks}
    moves, tracks = sum(per_track.values()), sum(1 for n in per_track.values() if n)
    line = f"{moves} in the plan on {plural(tracks, 'track')}"
    extra = []
    if notes.applied or notes.outcome in ("written", "proposed"):
        extra.append(f"{plural(len(notes.applied), 'change')} {OUTCOME_WORDS[notes.outcome]} in this pass")
    if notes.unchanged:
        extra.append(f"{len(notes.unchanged)} already in place from an earlier pass")
    if notes.pending:
        extra.append(f"{len(notes.pending)} not applied")
    if notes.overrides:
        extra.append(f"{len(notes.overrides)} overridden by the producer")
    amount = notes.plan.settings.amount
    if amount < 1.0:
        extra.append(f"moves scaled to {amount * 100:.0f}%")
    return text(Span("AI moves:", "strong"), " ", line + ("; " + ", ".join(extra) if extra else ""))


def _tags_line(notes: NotesInput) -> tuple[Span, ...]:
    counts = {tag: 0 for tag in PROVENANCES}
    for track in notes.plan.tracks:
        counts[notes.provenance_of(track.name)] += 1
    return text(Span("Tracks:", "strong"), " ", ", ".join(f"{counts[t]} {TAG_LABELS[t]}" for t in PROVENANCES))


def _anchor_line(plan: MixPlan) -> tuple[Span, ...] | None:
    anchor = plan.anchor
    if anchor is None:
        return None
    if anchor.kind == "lead_vocal":
        return text(Span("Balance:", "strong"), " stem levels are set against the lead vocal ",
                    _code(anchor.stem or ""), f" ({fmt_lufs(anchor.lufs)}) plus each role's offset")
    return text(Span("Balance:", "strong"), " ", "no lead vocal, so stem levels are set against the mix "
                f"(anchor {fmt_lufs(anchor.lufs)}) plus each role's offset")


def _reference_line(ref: ReferenceComparison | None) -> tuple[Span, ...] | None:
    if ref is None:
        return None
    delta = ref.loudness_delta_lu
    how = "" if delta is None else f", {abs(delta):.1f} LU {'louder' if delta > 0 else 'quieter'} than the mix"
    return text(Span("Reference:", "strong"), " ", _code(ref.name), f" at {fmt_lufs(ref.integrated_lufs)}{how}")


def _summary(notes: NotesInput) -> list[Block]:
    lines = [_mix_line(notes), _stems_line(notes), _moves_line(notes), _tags_line(notes),
             _anchor_line(notes.plan), _reference_line(notes.plan.reference)]
    blocks: list[Block] = [Heading(2, text("Summary")), Bullets(tuple(line for line in lines if line))]
    if notes.plan.mix_findings:
        blocks.append(Paragraph(text(Span("On the whole mix:", "strong"))))
        blocks.append(Bullets(tuple(text(Span(f.severity, "em"), f": {f.message}") for f in notes.plan.mix_findings)))
    return blocks


# --- tracks -------------------------------------------------------------------------------------

def _facts(notes: NotesInput, track: TrackPlan, targets: dict[str, float | None]) -> tuple[Span, ...]:
    """Role and levels, or why the stem was not measured."""
    stem = next((s for s in notes.result.stems if s.name == track.name), None)
    role = track.role.replace('_', ' ')
    role += (f", heard {track.role_probability:.2f}" if track.role_source == "heard" and track.role_probability is not None
             else f" ({track.role_source})")
    if stem is None:
        return text(f"role: {role} · not in this analysis")
    if stem.error is not None:
        return text(f"role: {role} · not analysed: ", _code(stem.error.code), f" {stem.error.message}")
    a = stem.analysis
    if a.loudness.integrated_lufs is None:
        return text(f"role: {role} · {_SILENT}")
    target = targets.get(track.name)
    level = f"{fmt_lufs(a.loudness.integrated_lufs)} integrated"
    if target is not None:
        off = a.loudness.integrated_lufs - target
        level += f" (target {fmt_lufs(target)}, " + ("on target)" if abs(off) < 0.05 else f"{fmt_lu(off)} from it)")
    return text(f"role: {role} · {level} · true peak {fmt_db(a.levels.true_peak_dbtp, unit='dBTP')}")


def _move_items(notes: NotesInput, track: TrackPlan) -> tuple[tuple[Span, ...], ...]:
    items = []
    for move in track_moves(track, notes.result.mix.sections):
        why = "; ".join(move.why) if move.why else "no finding recorded"
        sure = f" (confidence {move.confidence * 100:.0f}%)" if move.confidence is not None else ""
        items.append(text(Span(move.what, "strong"), f" — why: {why}{sure}"))
    return tuple(items)


def _track_section(notes: NotesInput, track: TrackPlan, targets: dict[str, float | None]) -> Section:
    provenance = notes.provenance_of(track.name)
    blocks: list[Block] = [Heading(3, text(_code(track.name), " ", _tag(provenance))),
                           Paragraph(_facts(notes, track, targets))]
    moves = _move_items(notes, track)
    applied, pending = notes.applied_to(track.name), notes.pending_for(track.name)
    in_place = notes.unchanged_of(track.name)
    if moves:
        state = [f"{plural(len(applied), 'change')} {OUTCOME_WORDS[notes.outcome]}"] if applied else []
        state += [f"{len(in_place)} already in place"] if in_place else []
        state += [f"{len(pending)} not applied"] if pending else []
        label = f"Moves ({', '.join(state)})" if state else "Proposed moves"
        blocks += [Paragraph(text(Span(label, "strong"))), Bullets(moves)]
    elif track.status == "manual":
        blocks.append(Paragraph(text("Left to the producer: the plan proposes no moves on this track.")))
    elif track.status == "untouched" and track.findings == ():
        blocks.append(Paragraph(text("Nothing to change.")))
    used = used_findings(track)
    seen = [f for f in track.findings if f.message not in used and f.code != "unreadable"]
    if seen:
        blocks.append(Paragraph(text(Span("Also seen" if moves else "Seen", "strong"))))
        blocks.append(Bullets(tuple(text(Span(f.severity, "em"), f": {f.message}") for f in seen)))
    overrides = notes.overrides_of(track.name)
    if overrides:
        blocks.append(Paragraph(text(Span("Changed by the producer", "strong"))))
        blocks.append(Bullets(tuple(
            text(f"{describe_param(o.param)}: AI {fmt_value(o.param, o.from_value, o.unit)}"
                 f" → producer {fmt_value(o.param, o.to_value, o.unit)}") for o in overrides)))
    return Section("track", tuple(blocks))


def _tracks(notes: NotesInput, targets: dict[str, float | None]) -> list[Block]:
    legend = "; ".join(f"{TAG_LABELS[t]}: {TAG_MEANINGS[t]}" for t in PROVENANCES)
    return ([Heading(2, text("Tracks")), Paragraph(text(f"Tags — {legend}."))]
            + [_track_section(notes, t, targets) for t in notes.plan.tracks])


# --- pictures -----------------------------------------------------------------------------------

def _loudness_table(notes: NotesInput, targets: dict[str, float | None]) -> Table:
    rows = []
    for stem in notes.result.stems:
        if stem.error is not None:
            rows.append((text(_code(stem.name)), text("not analysed"), text("-"), text("-"),
                         text(_code(stem.error.code))))
            continue
        lufs = stem.analysis.loudness.integrated_lufs
        target = targets.get(stem.name)
        off = fmt_lu(lufs - target) if lufs is not None and target is not None else "-"
        rows.append((text(_code(stem.name)), text(fmt_lufs(lufs) if lufs is not None else "silent"),
                     text(fmt_lufs(target) if target is not None else "-"), text(off),
                     text(fmt_db(stem.analysis.levels.true_peak_dbtp, unit="dBTP"))))
    return Table(("Stem", "Integrated", "Target", "From target", "True peak"), tuple(rows),
                 (False, True, True, True, True))


def _masking_table(notes: NotesInput) -> list[Block]:
    pairs = notes.result.mix.masking[:charts.MAX_MASKING_ROWS]
    if not pairs:
        return [Paragraph(text("No significant masking between stems."))]
    rows = tuple((text(_code(p.masked), " vs ", _code(p.masker)),
                  text(f"{fmt_hz(p.band_low_hz)}-{fmt_hz(p.band_high_hz)}"), text(fmt_db(p.overlap_db, signed=False)),
                  text(f"{p.time_fraction * 100:.0f}%"), text("yes" if p.mutual else "no")) for p in pairs)
    return [Table(("Masked vs masker", "Range", "Overlap", "Of the time", "Both ways"), rows,
                  (False, False, True, True, False))]


def _sections_table(notes: NotesInput) -> list[Block]:
    sections = notes.result.mix.sections
    if not sections:
        return []
    rows = tuple((text(lv.section.name), text(f"{lv.section.start_s:.1f} s"), text(f"{lv.section.end_s:.1f} s"),
                  text(fmt_lufs(lv.mix_lufs) if lv.mix_lufs is not None else "-"), text(lv.section.source))
                 for lv in sections)
    return [Table(("Section", "Start", "End", "Mix loudness", "From"), rows, (False, True, True, True, False))]


def _pictures(notes: NotesInput, targets: dict[str, float | None]) -> list[Block]:
    svg = charts.all_charts(notes.result, notes.plan)
    fallbacks = {
        "loudness": (Paragraph(text("The charts are in the HTML twin of these notes; their figures follow.")),
                     Paragraph(text(Span(charts.TITLES["loudness"], "strong"))), _loudness_table(notes, targets)),
        "spectrum": (),
        "masking": (Paragraph(text(Span(charts.TITLES["masking"], "strong"))), *_masking_table(notes)),
        "timeline": (Paragraph(text(Span("Sections", "strong"))), *_sections_table(notes)),
    }
    return [Heading(2, text("Pictures"))] + [Figure(svg[key], f"{charts.TITLES[key]}. {CAPTIONS[key]}", fallbacks[key])
                                            for key in charts.TITLES]


# --- reference ----------------------------------------------------------------------------------

def _pair_row(label: str, mix: float | None, reference: float | None, unit: str) -> tuple[tuple[Span, ...], ...]:
    delta = fmt_db(reference - mix, unit=unit) if mix is not None and reference is not None else "-"
    return (text(label), text(fmt_db(mix, signed=False, unit=unit)), text(fmt_db(reference, signed=False, unit=unit)),
            text(delta))


def _reference(notes: NotesInput) -> list[Block]:
    ref = notes.plan.reference
    if ref is None:
        return []
    delta = ref.loudness_delta_lu
    loudness = (f"The reference measures {fmt_lufs(ref.integrated_lufs)}, the mix {fmt_lufs(ref.mix_integrated_lufs)}"
                + ("" if delta is None else f": the reference is {abs(delta):.1f} LU "
                   f"{'louder' if delta > 0 else 'quieter'}") + ". Bands are compared at matched loudness "
                "(each band's level minus the track's integrated loudness).")
    bands = []
    for b in ref.bands:
        if b.delta_db is None:
            verdict = "-"
        elif abs(b.delta_db) < 1.5:
            verdict = f"{fmt_db(b.delta_db)} (close)"
        else:
            verdict = f"{fmt_db(b.delta_db)} (reference has {'more' if b.delta_db > 0 else 'less'})"
        bands.append((text(b.name), text(f"{fmt_hz(b.low_hz)}-{fmt_hz(b.high_hz)}"),
                      text(fmt_db(b.mix_db, signed=False)), text(fmt_db(b.reference_db, signed=False)), text(verdict)))
    shape = (_pair_row("width (side/mid)", ref.mix_side_mid_db, ref.reference_side_mid_db, "dB"),
             _pair_row("loudness range (LRA)", ref.mix_lra_lu, ref.reference_lra_lu, "LU"),
             _pair_row("peak-to-loudness ratio (PLR)", ref.mix_plr_db, ref.reference_plr_db, "dB"),
             _pair_row("integrated loudness", ref.mix_integrated_lufs, ref.integrated_lufs, "LUFS"))
    return [Heading(2, text("Reference: ", _code(ref.name))), Paragraph(text(loudness)),
            Table(("Band", "Range", "Mix", "Reference", "Reference minus mix"), tuple(bands),
                  (False, False, True, True, True)),
            Table(("Measure", "Mix", "Reference", "Reference minus mix"), shape, (False, True, True, True))]


# --- listening ----------------------------------------------------------------------------------

def _listen(notes: NotesInput) -> list[Block]:
    """The AI pass rendered offline: hear it before (or without) REAPER, level-matched."""
    r = notes.render
    if r is None:
        return []
    level = f" at {fmt_lufs(r.before_lufs)}" if r.before_lufs is not None else ""
    caption = (f"Both mixes play{level}: the AI pass is level-matched ({r.match_gain_db:+.1f} dB), so what you "
               "hear is the balance and tone, not loudness. Rendered offline as REAPER would play the moves "
               "(docs/render.md).")
    blocks: list[Block] = [Heading(2, text("Hear the AI pass")), Listen(r.before_path, r.after_path, caption)]
    if r.stems_dir:
        blocks.append(Paragraph(text("Every processed stem (the AI-only version of each track) is in ",
                                     _code(r.stems_dir), ".")))
    return blocks


def relative_links(notes: NotesInput, folder: Path) -> NotesInput:
    """``notes`` with its rendered-audio paths as URLs relative to ``folder`` (where the notes are written)."""
    from dataclasses import replace  # noqa: PLC0415
    from urllib.parse import quote  # noqa: PLC0415

    r = notes.render
    if r is None:
        return notes

    def url(path: str) -> str:
        if not path or not Path(path).is_absolute():
            return path
        return quote(Path(os.path.relpath(path, folder)).as_posix())

    stems = os.path.relpath(r.stems_dir, folder) if r.stems_dir and Path(r.stems_dir).is_absolute() else r.stems_dir
    return replace(notes, render=RenderLinks(url(r.before_path), url(r.after_path), r.before_lufs, r.match_gain_db,
                                             Path(stems).as_posix() if stems else ""))


# --- problems and later stages ------------------------------------------------------------------

def _problems(notes: NotesInput) -> list[Block]:
    items = []
    for stem in notes.result.stems:
        if stem.error is not None:
            items.append(text(_code(stem.name), " — ", _code(stem.error.code), f": {stem.error.message}"))
        elif stem.analysis is not None and stem.analysis.faults.silent:
            items.append(text(_code(stem.name), " — ", _code("silent"), f": skipped, {_SILENT}"))
    if not items:
        return []
    return [Heading(2, text("Errors and skipped stems")),
            Paragraph(text("These stems add nothing to the mix sum and get no moves; "
                           "the rest were analysed as usual.")),
            Bullets(tuple(items))]


def _applied(notes: NotesInput) -> list[Block]:
    if not notes.applied:
        return []
    rows = tuple((text(_code(a.track)), text(describe_param(a.param)),
                  text(fmt_value(a.param, a.value_before, a.unit) if a.value_before is not None else "not set"),
                  text(fmt_value(a.param, a.value_written, a.unit))) for a in notes.applied)
    proposed = notes.outcome == "proposed"
    return [Heading(2, text(SECTION_TITLES["proposed" if proposed else "applied"])),
            Table(("Track", "Parameter", "Before", "Proposed" if proposed else "Written"), rows,
                  (False, False, True, True))]


def _overrides(notes: NotesInput) -> list[Block]:
    if not notes.overrides:
        return []
    rows = tuple((text(_code(o.track)), text(describe_param(o.param)), text(fmt_value(o.param, o.from_value, o.unit)),
                  text(fmt_value(o.param, o.to_value, o.unit))) for o in notes.overrides)
    return [Heading(2, text(SECTION_TITLES["overrides"])),
            Paragraph(text("Parameters the producer set by hand after the AI wrote them; "
                           "the producer's value stands.")),
            Table(("Track", "Parameter", "AI value", "Producer's value"), rows, (False, False, True, True))]


def _items(label: str, items: tuple[PlanItem, ...]) -> list[Block]:
    if not items:
        return []
    return [Paragraph(text(Span(label, "strong"))),
            Bullets(tuple(text(_code(i.track), f": {i.message}") for i in items))]


def _since_previous(notes: NotesInput) -> list[Block]:
    diff: ChangesSincePrevious | None = notes.changes_since_previous
    if diff is None:
        return []
    blocks: list[Block] = [Heading(2, text(SECTION_TITLES["changes_since_previous"]))]
    if diff.previous_id:
        blocks.append(Paragraph(text("Compared with analysis ", _code(diff.previous_id), ".")))
    if diff.empty:
        return blocks + [Paragraph(text("Nothing changed."))]
    if diff.reanalysed:
        blocks.append(Paragraph(text(Span("Re-analysed:", "strong"), " ", join(diff.reanalysed))))
    if diff.level_changes:
        blocks.append(Table(("Track", "Level change"), tuple((text(_code(c.track)), text(fmt_lu(c.change_lu)))
                                                             for c in diff.level_changes), (False, True)))
    if diff.moves_changed:
        blocks.append(Paragraph(text(Span("Moves changed:", "strong"))))
        blocks.append(Table(("Track", "Parameter", "Before", "Now"), tuple(
            (text(_code(c.track)), text(describe_param(c.param)), text(_move_value(c.param, c.before, c.unit)),
             text(_move_value(c.param, c.after, c.unit))) for c in diff.moves_changed), (False, False, True, True)))
    blocks += _items("New findings", diff.findings_added) + _items("Findings gone", diff.findings_dropped)
    blocks += _items("New suggestions", diff.suggestions_added)
    blocks += _items("Suggestions dropped", diff.suggestions_dropped)
    return blocks


def _move_value(param: str, value, unit: str) -> str:
    if value is None:
        return "not planned"
    if isinstance(value, tuple):
        return plural(len(value), "point")
    return fmt_value(param, value, unit)


def _pending(notes: NotesInput) -> list[Block]:
    if not notes.pending:
        return []
    rows = tuple((text(_code(p.track)), text(describe_param(p.param)), text(fmt_value(p.param, p.value, p.unit)),
                  text(p.why) + (text(" (", _code(p.code), ")") if p.code else ())) for p in notes.pending)
    return [Heading(2, text(SECTION_TITLES["pending"])),
            Paragraph(text("Planned moves that could not be written: make them by hand, "
                           "or fix the cause and apply again.")),
            Table(("Track", "Parameter", "Wanted", "Why"), rows, (False, False, True, False))]


# --- entry points -------------------------------------------------------------------------------

def build_notes(notes: NotesInput) -> list[Block]:
    """The notes as document blocks (pure)."""
    targets = charts.stem_targets_lufs(notes.result, notes.plan)
    return (_header(notes) + _summary(notes) + _listen(notes) + _tracks(notes, targets) + _pictures(notes, targets)
            + _reference(notes) + _problems(notes) + _applied(notes) + _overrides(notes)
            + _since_previous(notes) + _pending(notes))


def page_title(notes: NotesInput) -> str:
    return "Mix notes" + (f": {notes.title}" if notes.title else "")


def render_markdown(notes: NotesInput) -> str:
    """The notes as GitHub-flavoured Markdown (charts replaced by tables of their figures)."""
    return to_markdown(build_notes(notes))


def render_html(notes: NotesInput) -> str:
    """The notes as one self-contained HTML page: inline CSS and SVG, no scripts; one link, to the
    review page while it runs."""
    return to_html(build_notes(notes), page_title(notes))


def write_notes(notes: NotesInput, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the notes to ``path`` and its twin beside it.

    Parameters
    ----------
    notes : NotesInput
    path : path
        HTML when it ends in ``.html`` (or ``.htm``), Markdown otherwise.  The twin has the same
        stem and the other extension (``.md`` or ``.html``).

    Returns
    -------
    (Path, Path)
        The Markdown file and the HTML file, in that order; each replaced atomically
        (:func:`bridge.files.write_atomic`), so a reader never sees half a page.
    """
    path = Path(path)
    notes = relative_links(notes, path.parent)
    blocks = build_notes(notes)  # once: the charts are the costly part
    if path.suffix.lower() in (".html", ".htm"):
        html_path, md_path = path, path.with_suffix(".md")
    else:
        md_path, html_path = path, path.with_suffix(".html")
    write_atomic(md_path, to_markdown(blocks))
    write_atomic(html_path, to_html(blocks, page_title(notes)))
    return md_path, html_path
