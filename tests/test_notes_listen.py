"""The notes play the AI pass: rendered offline, level-matched, linked so the links resolve where the notes are.

Issue 10: "The demo writes them too, and the notes link them with a level-matched before/after player."
"""
from __future__ import annotations

import html.parser
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.analyze.loudness import channel_weights, gating_blocks, integrated_lufs
from bridge.analyze.features import FeatureExtractor
from bridge.notes.render import render_markdown, write_notes
from bridge.session import Session, notes_input
from bridge.settings import Settings, load_roles
from bridge.stems import open_stem, read_blocks
from bridge.synth import default_session, write_session

STEM_S = 6.0


class _Audio(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.buttons = 0
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.sources.append(dict(attrs)["src"])
        elif tag == "button":
            self.buttons += 1
        elif tag == "script":
            self.scripts += 1


def _lufs(path: Path) -> float:
    info = open_stem(path)
    extractor = FeatureExtractor(info.sample_rate, info.channels)
    for block in read_blocks(info):
        extractor.feed(block)
    features = extractor.finish()
    return integrated_lufs(gating_blocks(features.subhop_power), channel_weights(features.channels))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One pass of the synthesised session (planted problems: the plan has moves), rendered."""
    folder = tmp_path_factory.mktemp("stems with space")
    write_session(folder, default_session(), duration_s=STEM_S)
    session = Session(Settings(folder, stateful=False, jobs=1, roles=load_roles(folder), render=True))
    record = session.run_pass()
    return folder, session.render_pass(record, folder.parent / f"{folder.name} render")


def test_the_notes_link_two_level_matched_mixes_that_exist_where_the_notes_are(rendered, tmp_path):
    folder, record = rendered
    assert record.render is not None, "a plan with moves is rendered"
    notes_dir = tmp_path / "deep" / "notes"
    _, html_path = write_notes(notes_input(record), notes_dir / "notes.html")
    parsed = _Audio()
    parsed.feed(html_path.read_text(encoding="utf-8"))
    assert len(parsed.sources) == 2 and parsed.buttons == 1 and parsed.scripts == 1
    before, after = (notes_dir / unquote(src) for src in parsed.sources)
    assert before.resolve() == Path(record.render.before_path).resolve()
    assert after.resolve() == Path(record.render.after_path).resolve()
    # Level-matched: the two mixes measure the same integrated loudness, and the plan did change the mix.
    assert abs(_lufs(before) - _lufs(after)) < 0.1
    assert abs(_lufs(before) - record.render.before_lufs) < 0.05
    assert abs(record.render.match_gain_db) > 0.05


def test_the_markdown_twin_links_the_same_files(rendered, tmp_path):
    _, record = rendered
    text = render_markdown(notes_input(record))
    assert "before (pre-AI)" in text and "after (AI pass)" in text
    assert record.render.before_path in text.replace("%20", " ") or "mix_before.wav" in text


def test_notes_without_a_render_have_no_player_and_no_script(rendered, tmp_path):
    from dataclasses import replace

    _, record = rendered
    _, html_path = write_notes(notes_input(replace(record, render=None)), tmp_path / "notes.html")
    parsed = _Audio()
    parsed.feed(html_path.read_text(encoding="utf-8"))
    assert parsed.sources == [] and parsed.scripts == 0


def test_a_plan_without_moves_is_not_rendered(tmp_path):
    folder = tmp_path / "quiet"
    specs = [s for s in default_session() if s.name == "Lead_Vocal"]
    write_session(folder, specs, duration_s=STEM_S)
    session = Session(Settings(folder, stateful=False, jobs=1, render=True, amount=0.0))
    record = session.run_pass()
    assert session.render_pass(record, tmp_path / "out").render is None
    assert not (tmp_path / "out").exists()
