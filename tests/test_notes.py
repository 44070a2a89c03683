"""Feedback notes: one self-contained HTML page and its Markdown twin, from a real analysed session.

A short synthetic session (the demo's ten stems with their problems, 24 s) is rendered, analysed
and planned once per module, with two extra files: ``bad.wav`` (text, so ``E_NOT_AUDIO``) and a
stem named ``A&B <lead>`` (HTML-special characters).  A copy of one stem, moved elsewhere, is
the reference track.
"""
from __future__ import annotations

import html
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from bridge.analyze.sections import Section
from bridge.analyze.session import SectionLevels
from bridge.notes import (AppliedChange, ChangesSincePrevious, LevelChange, NotesInput, Override, PendingMove,
                          PlanItem, compare_bounces, render_html, render_markdown, write_notes)
from bridge.notes.charts import TITLES
from bridge.notes.document import md_escape
from bridge.notes.render import SECTION_TITLES
from bridge.notes.texts import TAG_LABELS, describe_automation, fmt_db, fmt_value
from bridge.pipeline import SessionResult, analyze_session, plan_session
from bridge.suggest.model import Automation
from bridge.suggest.plan import MixPlan
from bridge.synth import default_session, write_session

SESSION_S = 24.0
SPECIAL_NAME = "A&B <lead>"
REFERENCE_NAME = "Reference Mix"
SVG_NS = "{http://www.w3.org/2000/svg}"
#: Provenance a track gets from the plan alone, by plan status.
STATUS_TAG = {"ai": "ai", "manual": "manual", "untouched": "untouched", "error": "untouched"}


@dataclass(frozen=True)
class Session:
    result: SessionResult
    plan: MixPlan
    plan_with_reference: MixPlan


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    folder = tmp_path_factory.mktemp("stems")
    write_session(folder, default_session(), duration_s=SESSION_S)
    (folder / "bad.wav").write_text("this is not audio\n", encoding="utf-8")
    shutil.copy(folder / "Keys.wav", folder / f"{SPECIAL_NAME}.wav")
    reference = tmp_path_factory.mktemp("reference") / f"{REFERENCE_NAME}.wav"
    shutil.copy(folder / "Snare.wav", reference)
    result = analyze_session([folder], jobs=1)
    return Session(result, plan_session(result), plan_session(result, reference_path=reference))


@pytest.fixture(scope="module")
def notes(session) -> NotesInput:
    return NotesInput(session.result, session.plan)


@pytest.fixture(scope="module")
def page(notes) -> str:
    return render_html(notes)


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def heading(name: str, provenance: str) -> str:
    """The HTML heading of a track: its name, then its tag."""
    return (f'<h3><code>{html.escape(name)}</code> '
            f'<span class="tag tag-{provenance}">{TAG_LABELS[provenance]}</span></h3>')


# --- one self-contained file --------------------------------------------------------------------

def test_html_is_one_file_with_no_external_references(notes, tmp_path):
    md_path, html_path = write_notes(notes, tmp_path / "notes.html")
    page = html_path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "notes.md"]
    assert not re.search(r"\b(src|href)\s*=", page, flags=re.I), "the page links to something"
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, flags=re.I)
    assert "url(" not in page and "@import" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, f"unexpected URLs: {urls}"  # the SVG namespace name only
    assert len(svgs(page)) == 4, "the four charts are inline <svg> elements"


def test_html_names_every_stem_with_its_provenance_tag(session, page):
    for track in session.plan.tracks:
        assert heading(track.name, STATUS_TAG[track.status]) in page, f"{track.name}: heading or tag missing"
    tags = {STATUS_TAG[t.status] for t in session.plan.tracks}
    assert {"ai", "untouched"} <= tags, "the session should exercise more than one tag"
    assert {s.name for s in session.result.stems} == {t.name for t in session.plan.tracks}


def test_broken_stem_is_listed_with_its_error_code(session, page):
    failed = session.result.failed
    assert [s.name for s in failed] == ["bad"] and failed[0].error.code == "E_NOT_AUDIO"
    errors = page.split("<h2>Errors and skipped stems</h2>", 1)
    assert len(errors) == 2, "no errors section"
    assert "<code>bad</code> — <code>E_NOT_AUDIO</code>" in errors[1]


def test_four_charts_carry_their_titles(page):
    for key, title in TITLES.items():
        assert f'<title id="chart-{key}-title">{html.escape(title)}</title>' in page, f"chart {key} missing"


def test_charts_are_valid_xml_with_accessible_names(page):
    for svg in svgs(page):
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG_NS}svg"
        assert root.get("role") == "img"
        title = root.find(f"{SVG_NS}title")
        assert title is not None and title.text in TITLES.values()
        label_ids = root.get("aria-labelledby").split()
        assert {el.get("id") for el in root if el.get("id")} >= set(label_ids)


def test_html_is_deterministic(session, page):
    again = render_html(NotesInput(session.result, session.plan))
    assert again == page


# --- Markdown twin ------------------------------------------------------------------------------

def test_markdown_twin_mentions_the_same_tracks_and_tags(notes, session, tmp_path):
    md_path, html_path = write_notes(notes, tmp_path / "mix.md")
    assert (md_path, html_path) == (tmp_path / "mix.md", tmp_path / "mix.html")
    markdown, page = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    for track in session.plan.tracks:
        tag = TAG_LABELS[STATUS_TAG[track.status]]
        assert f"### `{track.name}` **{tag}**" in markdown, f"{track.name} missing from the Markdown"
    assert "`E_NOT_AUDIO`" in markdown
    assert page == render_html(notes) and markdown == render_markdown(notes)


def test_markdown_escapes_markup():
    assert md_escape("*x* _y_ Bass_DI <b> a|b") == r"\*x\* \_y\_ Bass_DI \<b\> a\|b"


# --- escaping -----------------------------------------------------------------------------------

def test_special_characters_in_stem_names_are_escaped(session, page):
    assert SPECIAL_NAME in {s.name for s in session.result.stems}
    assert "A&amp;B &lt;lead&gt;" in page
    assert "<lead>" not in page and "A&B" not in page, "a raw stem name reached the HTML"
    assert f"`{SPECIAL_NAME}`" in render_markdown(NotesInput(session.result, session.plan))


# --- later-stage sections -----------------------------------------------------------------------

LATER = {
    "applied": {"applied": [AppliedChange("Kick", "volume_db", -6.4, 0.0)]},
    "overrides": {"overrides": [Override("Bass_DI", "band2_gain_db", -6.0, -3.0)]},
    "changes_since_previous": {"changes_since_previous": ChangesSincePrevious(
        "prev0001", level_changes=[LevelChange("Kick", -6.4)], findings_dropped=[PlanItem("Kick", "too_loud", "gone")],
        reanalysed=["Kick"])},
    "pending": {"pending": [PendingMove("Snare", "band1_freq_hz", 100.0, "OSC cannot add FX", "E_TARGET_NOT_FOUND")]},
}


def test_later_stage_sections_are_absent_by_default(page, notes):
    markdown = render_markdown(notes)
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" not in page and f"## {title}" not in markdown


@pytest.mark.parametrize("field", sorted(LATER))
def test_later_stage_section_appears_only_when_filled(session, field):
    filled = NotesInput(session.result, session.plan, **LATER[field])
    page, markdown = render_html(filled), render_markdown(filled)
    for other, title in SECTION_TITLES.items():
        present = other == field
        assert (f"<h2>{title}</h2>" in page) is present, f"{title!r} with only {field} filled"
        assert (f"## {title}" in markdown) is present


def test_override_makes_an_ai_track_hybrid_and_shows_both_values(session):
    filled = NotesInput(session.result, session.plan, **LATER["overrides"])
    page = render_html(filled)
    assert session.plan.track("Bass_DI").status == "ai"
    assert heading("Bass_DI", "hybrid") in page
    section = page.split(f"<h2>{SECTION_TITLES['overrides']}</h2>", 1)[1]
    assert "EQ band 2 gain" in section and "-6.0 dB" in section and "-3.0 dB" in section


def test_pending_shows_why_and_code(session):
    page = render_html(NotesInput(session.result, session.plan, **LATER["pending"]))
    section = page.split(f"<h2>{SECTION_TITLES['pending']}</h2>", 1)[1]
    assert "OSC cannot add FX" in section and "E_TARGET_NOT_FOUND" in section and "100 Hz" in section


# --- provenance ---------------------------------------------------------------------------------

def test_provenance_derivation_and_explicit_tags(session):
    untouched = next(t.name for t in session.plan.tracks if t.status == "untouched")
    notes = NotesInput(session.result, session.plan, overrides=[Override(untouched, "volume_db", 0.0, 2.0)],
                       provenance={"Kick": "manual"})
    assert notes.provenance_of(untouched) == "manual", "a producer edit on an untouched track is manual"
    assert notes.provenance_of("Kick") == "manual", "an explicit tag wins"
    assert notes.provenance_of("Snare") == STATUS_TAG[session.plan.track("Snare").status]
    with pytest.raises(ValueError):
        NotesInput(session.result, session.plan, provenance={"Kick": "robot"})


# --- reference ----------------------------------------------------------------------------------

def test_reference_section_appears_with_a_reference(session, page):
    with_ref = render_html(NotesInput(session.result, session.plan_with_reference))
    title = f"<h2>Reference: <code>{REFERENCE_NAME}</code></h2>"
    assert title in with_ref and title not in page
    section = with_ref.split(title, 1)[1].split("<h2>", 1)[0]
    for band in session.plan_with_reference.reference.bands:
        assert f"<td>{band.name}</td>" in section
    for measure in ("width (side/mid)", "loudness range (LRA)", "peak-to-loudness ratio (PLR)"):
        assert measure in section
    spectrum = next(s for s in svgs(with_ref) if "chart-spectrum" in s)
    assert f"reference {REFERENCE_NAME}" in spectrum, "the reference curve is missing from the spectrum chart"


def test_compare_bounces_reports_new_reference_suggestions(session):
    same = compare_bounces(session.result, session.plan, session.result, session.plan)
    assert same.empty
    diff = compare_bounces(session.result, session.plan, session.result, session.plan_with_reference)
    assert diff.suggestions_added and {i.code for i in diff.suggestions_added} == {"reference"}
    assert not diff.suggestions_dropped and not diff.level_changes and not diff.reanalysed


# --- wording ------------------------------------------------------------------------------------

def test_values_carry_their_units():
    assert fmt_db(-3.5) == "-3.5 dB"
    assert fmt_value("band1_freq_hz", 100.0) == "100 Hz"
    assert fmt_value("ratio", 2.0) == "2.0:1"
    assert fmt_value("attack_ms", 10.0) == "10 ms"
    assert fmt_value("band1_type", "highpass") == "high-pass"


def test_volume_automation_is_summarised_by_section():
    sections = [SectionLevels(Section("Verse", 0.0, 8.0, "markers"), (), None),
                SectionLevels(Section("Chorus", 8.0, 16.0, "markers"), (), None)]
    envelope = Automation("volume_db", ((7.95, 0.0), (8.05, 4.5), (15.95, 4.5), (16.05, 0.0)), "section_level", "x")
    assert describe_automation(envelope, sections) == "volume automation: Chorus (8.0-16.0 s) +4.5 dB"
