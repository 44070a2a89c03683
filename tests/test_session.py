"""The session core: one loop for every command, one record per pass, one story in console, notes and journal.

Each test names the issue-12 promise it checks.  The stems are the synthetic session (known planted
problems, short), analysed with ``jobs=1``; assertions read the pass record and the notes' model,
not HTML fragments.
"""
from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.console import Console
from bridge.daw.plan_target import PlanTarget
from bridge.daw.reapy_target import ReaperTarget
from bridge.errors import PlanStale
from bridge.notes.model import compare_bounces
from bridge.notes.render import SECTION_TITLES, build_notes, render_markdown
from bridge.session import Session, notes_input
from bridge.settings import Settings, load_roles
from bridge.synth import default_session, write_session
from bridge.watch import Watcher
from bridge.watch.state import read_journal
from tests.conftest import watch_settings

STEM_S = 6.0
FAST = dict(settle_s=0.3, poll_s=0.05, stable_polls=2, jobs=1, incomplete_timeout_s=5.0, manifest_timeout_s=20.0,
            manifest_grace_s=2.0, stop_timeout_s=15.0)


@pytest.fixture(scope="module")
def stems(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stems")
    write_session(folder, default_session(), duration_s=STEM_S)
    return folder


def _one_off(folder: Path, **kw) -> Session:
    """What ``mixbridge plan`` builds: no state folder, the plan target in memory."""
    return Session(Settings(folder, stateful=False, jobs=1, roles=load_roles(folder), **kw))


def test_one_tag_vocabulary_under_plan_and_under_watch(stems, tmp_path):
    """Issue 12: the same stems were tagged manual under demo/watch and untouched under plan."""
    plan_tags = _one_off(stems).run_pass().provenance
    watched = tmp_path / "watched"
    watched.mkdir()
    for p in stems.glob("*.wav"):
        (watched / p.name).write_bytes(p.read_bytes())
    watch_tags = Session(Settings(watched, jobs=1)).run_pass().provenance  # the watcher's stateful plan target
    assert plan_tags == watch_tags
    assert set(plan_tags.values()) <= {"ai", "hybrid", "manual", "untouched"}
    assert "untouched" in plan_tags.values() and "ai" in plan_tags.values()


def test_the_plan_target_says_proposed_never_written_to_reaper(stems):
    record = _one_off(stems).run_pass()
    assert record.state == "proposed" and record.written
    notes = notes_input(record)
    assert notes.outcome == "proposed"
    md = render_markdown(notes)
    assert SECTION_TITLES["proposed"] in md and SECTION_TITLES["applied"] not in md
    assert "made in REAPER" not in md and "written to REAPER" not in md


def test_console_notes_and_journal_count_the_same_changes(tmp_path):
    """Issue 12: one pass reported 8 moves on the console, 7 writes in the notes and 9 in the journal."""
    renders = tmp_path / "renders"
    renders.mkdir()
    w = Watcher(watch_settings(renders, **FAST), console=Console(io.StringIO(), tty=False)).start()
    try:
        write_session(renders, default_session()[4:8], duration_s=STEM_S)
        assert w.wait_for(lambda: w.passes, 60)
    finally:
        w.stop(15.0)
    record = w.passes[0]
    n = record.counts.changes
    assert n == len(record.written) > 0
    line = next(x for x in w.console.lines if x.startswith("pass 1:"))
    assert f"{n} changes proposed (no DAW target)" in line
    (applied,) = [r for r in read_journal(renders / ".mixbridge" / "journal.jsonl") if r["event"] == "applied"]
    assert applied["changes"] == n
    notes = notes_input(record)
    assert len(notes.applied) == n
    assert f"{n} changes proposed (no DAW target) in this pass" in render_markdown(notes)
    report = json.loads((renders / ".mixbridge" / "passes" / "0001" / "report.json").read_text())
    assert report["counts"]["changes"] == n


def test_moves_written_in_an_earlier_pass_are_not_proposed_again(stems, tmp_path):
    """Issue 12: moves already written in pass 1 were listed as proposed in pass 2."""
    folder = tmp_path / "again"
    write_session(folder, default_session()[:5], duration_s=STEM_S)
    session = Session(Settings(folder, jobs=1))
    first = session.run_pass(1)
    second = session.run_pass(2)
    assert first.written and second.written == ()
    assert len(second.unchanged) == len(first.written)
    notes = notes_input(second)
    assert notes.applied == () and len(notes.unchanged) == len(first.written)
    md = render_markdown(notes)
    assert SECTION_TITLES["proposed"] not in md
    assert "already in place" in md


def test_changes_since_the_previous_bounce_list_an_eq_frequency_move(stems):
    """Issue 12: an EQ move that changed from 355 Hz to 1.8 kHz was missing from the changes."""
    record = _one_off(stems).run_pass()
    track = next(t for t in record.plan.tracks if any(c.param.endswith("_freq_hz") for c in t.changes))
    change = next(c for c in track.changes if c.param.endswith("_freq_hz"))
    moved = replace(track, changes=tuple(replace(c, value=1800.0) if c is change else c for c in track.changes))
    later = replace(record.plan, tracks=tuple(moved if t is track else t for t in record.plan.tracks))
    diff = compare_bounces(record.result, record.plan, record.result, later)
    assert [(m.track, m.param, m.before, m.after) for m in diff.moves_changed] == [
        (track.name, change.param, change.value, 1800.0)]
    assert not diff.findings_added and not diff.suggestions_added, "nothing is new but the changed move"
    blocks = build_notes(replace(notes_input(record), changes_since_previous=diff))
    assert any("1.8 kHz" in str(b) for b in blocks)


def test_plan_command_plans_carry_the_manifests_guids(tmp_path):
    from bridge.cli import main
    from bridge.manifest import ManifestStem, write_manifest

    folder = tmp_path / "stems"
    paths = write_session(folder, default_session()[:3], duration_s=STEM_S)
    guids = {p.stem: "{%08d-0000-4000-8000-000000000000}" % k for k, p in enumerate(paths)}
    write_manifest(folder, [ManifestStem(guids[p.stem], f"{p.stem} (track)", p, 48000) for p in paths])
    plan = tmp_path / "plan.json"
    assert main(["plan", str(folder), "--json", str(plan), "--jobs", "1"], out=io.StringIO()) == 0
    doc = json.loads(plan.read_text())
    assert {t["stem"]: t["guid"] for t in doc["tracks"]} == guids
    assert all(t["name"].endswith("(track)") for t in doc["tracks"])
    assert doc["stems_folder"] == str(folder.resolve())


def test_apply_notes_describe_the_plan_that_was_applied(stems, tmp_path):
    """Issue 12: apply --notes analysed and planned again with default roles."""
    roles = tmp_path / "roles.toml"
    roles.write_text('manual = ["Keys"]\n[roles]\n"Bass_DI" = "keys"\n')
    made = Session(Settings(stems, stateful=False, jobs=1, roles=load_roles(stems, roles))).run_pass()
    doc = dict(made.plan_doc)
    session = Session(Settings(stems, stateful=False, jobs=1), target=PlanTarget(None))
    record = session.with_report(session.record_for_applied(doc), session.apply(doc))
    keys = record.plan.track("Keys")
    assert keys.status == "manual" and not keys.changes, "the roles recorded in the plan, not the defaults"
    assert record.plan.track("Bass_DI").role == "keys"
    stale = json.loads(json.dumps(doc))
    next(t for t in stale["tracks"] if t["changes"])["changes"][0]["value"] = 99.0
    with pytest.raises(PlanStale):
        session.record_for_applied(stale)


class _Overlap:
    """A target that fails if two calls are inside it at once."""

    kind = "plan"

    def __init__(self):
        self.inner, self.inside, self.overlaps = PlanTarget(None), 0, 0
        self.gate = threading.Barrier(2, timeout=5)

    def apply(self, plan, reenable=frozenset()):
        self.inside += 1
        self.overlaps += self.inside > 1
        try:
            return self.inner.apply(plan, reenable)
        finally:
            self.inside -= 1

    def close(self):
        pass


def test_every_target_call_holds_the_one_lock():
    target = _Overlap()
    session = Session(Settings(stateful=False), target=target)
    doc = {"schema_version": 1, "id": "x", "tracks": [{"name": "A", "status": "ai", "changes": [
        {"target": "track", "param": "volume_db", "value": -3.0, "unit": "dB"}]}]}
    errors = []

    def worker():
        try:
            target.gate.wait()
            for _ in range(200):
                session.apply(doc)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and target.overlaps == 0


class _BuggyConn:
    """A reapy connection whose REAPER is fine but whose caller (our code) has a bug: a TypeError."""

    round_trips = 0
    dead = False

    def call(self, name, *args):
        if name == "CountTracks":
            raise TypeError("a bug in the bridge")
        if name == "GetProjExtState":
            return (0, 0, *args[1:3], "", args[4])  # nothing journalled, no A/B state
        return 0

    def held(self):
        import contextlib

        return contextlib.nullcontext(self)


def test_a_bug_in_a_pass_surfaces_as_itself_not_as_reaper_unavailable():
    """Issue 12: ``except (BridgeError, Exception)`` turned any bug into E_DAW_UNAVAILABLE, queued forever."""
    with pytest.raises(TypeError, match="a bug"):
        ReaperTarget(_BuggyConn()).apply({"tracks": []})
