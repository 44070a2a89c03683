"""The watch loop with real files and real filesystem events (watchdog's inotify observer).

Every wait is a condition with a deadline (``Watcher.wait_for`` / ``_until``); nothing sleeps to
synchronise.  The only sleeps are inside writer threads, where they *are* the thing under test
(a render that takes its time).  Every watcher is stopped by the fixture, whatever the test did.
"""
from __future__ import annotations

import dataclasses

import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.console import Console
from bridge.daw.plan_target import PlanTarget
from bridge.errors import DawUnavailable
from bridge.synth import default_session, write_session
from bridge.watch import Watcher
from bridge.tracks import ManifestEntry, compile_pattern, map_tracks
from bridge.watch.filters import classify
from bridge.watch.settle import BAD, COMPLETE, PENDING, CompletenessTracker
from bridge.watch.state import Journal, StateFolder, read_journal, recover
from tests.conftest import wait_until, watch_settings

REPO = Path(__file__).resolve().parents[1]
FS = 48000
STEM_S = 6.0
DEADLINE_S = 60.0

FAST = dict(settle_s=0.3, poll_s=0.05, stable_polls=2, jobs=1, incomplete_timeout_s=5.0,
            manifest_timeout_s=20.0, manifest_grace_s=2.0, retry_initial_s=0.05, retry_max_s=0.2,
            stop_timeout_s=15.0)


def _until(condition, timeout_s: float = DEADLINE_S, what: str = "condition") -> None:
    wait_until(condition, timeout_s, what)


def _events(folder: Path, kind: str | None = None) -> list[dict]:
    records = read_journal(folder / ".mixbridge" / "journal.jsonl")
    return [r for r in records if kind is None or r["event"] == kind]


@pytest.fixture
def renders(tmp_path) -> Path:
    folder = tmp_path / "renders"
    folder.mkdir()
    return folder


@pytest.fixture
def watcher(renders):
    """``start(**settings) -> Watcher``; every watcher started is stopped at the end."""
    started: list[Watcher] = []

    def start(target=None, folder: Path | None = None, **overrides) -> Watcher:
        settings = watch_settings(folder or renders, **{**FAST, **overrides})
        w = Watcher(settings, target=target, console=Console(io.StringIO(), tty=False))
        started.append(w)
        return w.start()

    yield start
    for w in started:
        w.stop(15.0)


def _stems(folder: Path, n: int = 3, duration_s: float = STEM_S) -> list[Path]:
    """The first ``n`` stems of the synthetic session, the Snare 9 dB too hot and rumble under the Hats
    (moves to plan)."""
    planted = {"Snare": ("too_hot",), "Hats": ("rumble_dc",)}
    specs = [dataclasses.replace(s, problems=s.problems + planted.get(s.name, ())) for s in default_session()[:n]]
    return write_session(folder, specs, duration_s=duration_s)


def _wav_header(frames: int, channels: int, rate: int, placeholder: bool) -> bytes:
    """A 16-bit PCM WAV header; REAPER (and libsndfile) write zero sizes first and fix them at the end."""
    data_bytes = frames * channels * 2
    riff = 0 if placeholder else 36 + data_bytes
    data = 0 if placeholder else data_bytes
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", data)


def _pcm16(seconds: float, freq_hz: float = 220.0, db: float = -20.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    x = 10 ** (db / 20) * np.sin(2 * np.pi * freq_hz * t)
    return (np.stack([x, x], axis=1) * 32767).astype("<i2")


# --- unit: what is watched, when a file is complete, how tracks map, what a restart does ------------

@pytest.mark.parametrize("name, kind", [
    ("Kick.wav", "stem"), ("Vox.FLAC", "stem"), ("Song.rpp", None), ("Song.rpp-bak", None),
    ("Kick.wav.reapeaks", None), ("render_stats.html", None), ("render_stats_2.html", None),
    ("Kick.wav.tmp", None), (".Kick.wav", None), (".mixbridge/cache/x.wav", None), ("notes.txt", None),
    ("mixbridge-bounce.json", "manifest"), ("mixbridge-bounce.json.tmp", None), ("sub/Kick.wav", None),
    ("mixbridge-plan.json", None), ("Kick.mp3", None),
])
def test_only_stems_and_the_manifest_are_watched(tmp_path, name, kind):
    assert classify(tmp_path / name, tmp_path, recursive=False) == kind


def test_recursive_watch_sees_sub_folders_but_never_hidden_ones(tmp_path):
    assert classify(tmp_path / "sub" / "Kick.wav", tmp_path, recursive=True) == "stem"
    assert classify(tmp_path / ".hidden" / "Kick.wav", tmp_path, recursive=True) is None
    assert classify(tmp_path / ".mixbridge" / "passes" / "a.wav", tmp_path, recursive=True) is None


def test_tracker_waits_for_a_stable_size_and_a_consistent_header():
    sizes = {"x": (10, 1)}
    checks = []

    def check(path):
        checks.append(path)
        if sizes["x"][0] < 30:
            from bridge.errors import StemReadError
            raise StemReadError("half written", code="E_STEM_TRUNCATED")

    t = CompletenessTracker(poll_s=1.0, stable_polls=2, incomplete_timeout_s=100.0,
                            stat=lambda p: sizes["x"], check=check)
    p = Path("x")
    t.touch(p, 0.0)
    for now in (0.0, 1.0):
        t.poll(now)
    assert t.status(p) == PENDING and not checks  # one unchanged look is not enough
    t.poll(2.0)
    assert t.status(p) == PENDING and len(checks) == 1  # stable, but the header disagrees
    sizes["x"] = (30, 2)
    t.poll(3.0)
    t.poll(4.0)
    assert t.status(p) == PENDING  # grew: stability starts over
    t.poll(5.0)
    assert t.status(p) == COMPLETE


def test_tracker_gives_up_on_a_file_that_stays_truncated():
    from bridge.errors import StemReadError

    def check(path):
        raise StemReadError("cut off", code="E_STEM_TRUNCATED")

    t = CompletenessTracker(poll_s=1.0, stable_polls=1, incomplete_timeout_s=5.0, stat=lambda p: (10, 1), check=check)
    t.touch(Path("x"), 0.0)
    for now in range(0, 5):
        t.poll(float(now))
    assert t.status(Path("x")) == PENDING
    t.poll(6.0)
    assert t.status(Path("x")) == BAD and t.files[Path("x")].error.code == "E_STEM_TRUNCATED"


def test_tracks_map_by_manifest_then_pattern_then_name(tmp_path):
    kick, vox, gtr = tmp_path / "Kick.wav", tmp_path / "Vox_03.wav", tmp_path / "Gtr.wav"
    manifest = {kick: ManifestEntry(kick, "Kick In", "{GUID-1}")}
    refs = map_tracks([kick, vox, gtr], manifest, compile_pattern(r"(?P<track>.+?)_\d+"))
    assert (refs["Kick"].track, refs["Kick"].guid, refs["Kick"].source) == ("Kick In", "{GUID-1}", "manifest")
    assert (refs["Vox_03"].track, refs["Vox_03"].source) == ("Vox", "pattern")
    assert (refs["Gtr"].track, refs["Gtr"].source) == ("Gtr", "name")


def test_recovery_reruns_an_unfinished_pass_once_and_never_a_finished_one(tmp_path):
    state = StateFolder(tmp_path)
    state.ensure()
    j = Journal(state.journal_path)
    j.write("pass_started", **{"pass": 1})
    j.write("pass_done", **{"pass": 1})
    j.write("pass_started", **{"pass": 2})
    j.close()
    rec = recover(state)
    assert rec.rerun is not None and rec.rerun["pass"] == 2 and rec.next_pass == 3
    # The re-run itself crashed: it is not tried a third time.
    j = Journal(state.journal_path)
    j.write("pass_rerun", **{"pass": 2})
    j.write("pass_started", **{"pass": 2})
    j.close()
    rec = recover(state)
    assert rec.rerun is None and rec.abandoned == [2]


def test_a_torn_journal_line_is_skipped_and_not_glued_to_the_next(tmp_path):
    state = StateFolder(tmp_path)
    state.ensure()
    state.journal_path.write_text('{"event":"pass_started","pass":1}\n{"event":"pass_do', encoding="utf-8")
    j = Journal(state.journal_path)
    j.write("pass_done", **{"pass": 1})
    j.close()
    assert [r["event"] for r in read_journal(state.journal_path)] == ["pass_started", "pass_done"]


# --- end to end: real files, real events ----------------------------------------------------------

def test_a_bounce_becomes_one_pass_with_plan_and_notes(watcher, renders):
    w = watcher()
    paths = _stems(renders, 3)
    assert w.wait_for(lambda: w.passes, DEADLINE_S), "no pass"
    assert w.wait_for(lambda: w.idle, DEADLINE_S)
    assert len(w.passes) == 1, [p.bounce.reason for p in w.passes]
    outcome = w.passes[0]
    assert sorted(s.name for s in outcome.result.stems) == sorted(p.stem for p in paths)
    assert outcome.state == "proposed" and outcome.counts.changes > 0
    pass_dir = renders / ".mixbridge" / "passes" / "0001"
    for name in ("plan.json", "notes.html", "notes.md", "report.json"):
        assert (pass_dir / name).is_file(), name
    plan = json.loads((renders / "mixbridge-plan.json").read_text())
    assert {t["name"] for t in plan["tracks"]} == {p.stem for p in paths}
    assert plan["applied"]["writes"], "the plan target's writes are recorded in the plan"
    assert (renders / "mixbridge-notes.html").is_file()
    last = json.loads((renders / ".mixbridge" / "last-pass.json").read_text())
    assert last["pass"] == 1 and set(last["stems"]) == {p.name for p in paths}
    kinds = [r["event"] for r in _events(renders) if r.get("pass") == 1]
    assert kinds[0] == "pass_started" and kinds[-1] == "pass_done" and "applied" in kinds
    line = next(x for x in w.console.lines if x.startswith("pass 1:"))
    assert line.startswith(outcome.line) and " proposed (no DAW target)" in line and "notes.html" in line


def test_watch_markers_give_the_passes_their_sections(watcher, renders, tmp_path):
    """``watch --markers FILE``: the producer's regions name the sections every pass judges."""
    from bridge.cli import _settings, build_parser

    markers = tmp_path / "regions.csv"
    markers.write_text("#,Name,Start,End\nR1,Verse,0.0,1.5\nR2,Chorus,1.5,3.0\n")
    args = build_parser()[0].parse_args(["watch", str(renders), "--markers", str(markers)])
    settings = _settings(args, stems=renders)
    assert settings.markers and [m[0] for m in settings.markers] == ["Verse", "Chorus"]
    w = watcher(markers=settings.markers)
    _stems(renders, 2)
    assert w.wait_for(lambda: w.passes, DEADLINE_S), "no pass"
    sections = [s.section for s in w.passes[0].result.mix.sections]
    assert [(s.name, s.start_s) for s in sections] == [("Verse", 0.0), ("Chorus", 1.5)]


def test_a_second_bounce_reports_what_changed(watcher, renders):
    w = watcher()
    _stems(renders, 3)
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    spec = default_session()[0]
    write_session(renders, [type(spec)(spec.name, spec.role, spec.level_db + 6.0, seed=spec.seed)], duration_s=STEM_S)
    assert w.wait_for(lambda: len(w.passes) >= 2, DEADLINE_S)
    assert w.passes[1].reanalysed == (spec.name,), "only the re-bounced stem is decoded again"
    changes = w.passes[1].changes
    assert changes is not None and any(c.track == spec.name and c.change_lu > 4 for c in changes.level_changes)
    notes = (renders / ".mixbridge" / "passes" / "0002" / "notes.md").read_text()
    assert "Changes since the previous bounce" in notes


def test_a_stem_written_slowly_in_chunks_is_never_analysed_early(watcher, renders):
    audio = _pcm16(STEM_S)
    chunks = np.array_split(audio, 5)
    path = renders / "Slow.wav"
    done = threading.Event()
    finished_at: list[float] = []

    def write_slowly():
        with open(path, "wb") as fh:
            fh.write(_wav_header(0, 2, FS, placeholder=True))
            for chunk in chunks:
                fh.write(chunk.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
                # Longer than the settle window and the stability check: only the header tells.
                time.sleep(0.5)
            fh.seek(0)
            fh.write(_wav_header(len(audio), 2, FS, placeholder=False))
        finished_at.append(time.monotonic())
        done.set()

    seen: list[tuple[float, object]] = []
    w = watcher()
    w.on_pass = lambda outcome: seen.append((time.monotonic(), outcome))
    _stems(renders, 1)
    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert done.wait(DEADLINE_S)
        assert w.wait_for(lambda: any("Slow" in {s.name for s in o.result.stems} for _, o in seen), DEADLINE_S)
    finally:
        writer.join(DEADLINE_S)
    for when, outcome in seen:
        slow = [s for s in outcome.result.stems if s.name == "Slow"]
        if slow:
            assert when >= finished_at[0]
            assert slow[0].error is None, slow[0].error
            assert slow[0].info.frames == len(audio)
    started = [r for r in _events(renders, "pass_started") if "Slow.wav" in r["stems"]]
    assert all(r["stems"]["Slow.wav"][0] == path.stat().st_size for r in started)


def test_a_corrupt_file_in_a_bounce_is_an_error_line_and_the_rest_is_planned(watcher, renders):
    w = watcher()
    paths = _stems(renders, 3)
    (renders / "Broken.wav").write_bytes(b"this is not a wave file at all " * 200)
    assert w.wait_for(lambda: w.passes and len(w.passes[-1].result.stems) == 4, DEADLINE_S)
    outcome = w.passes[-1]
    broken = [s for s in outcome.result.stems if s.name == "Broken"]
    assert broken[0].error.code == "E_NOT_AUDIO"
    assert {s.name for s in outcome.result.ok} == {p.stem for p in paths}
    notes = (renders / "mixbridge-notes.md").read_text()
    assert "Broken" in notes and "E_NOT_AUDIO" in notes
    assert w.alive
    report = json.loads((renders / ".mixbridge" / "passes" / f"{outcome.number:04d}" / "report.json").read_text())
    assert [s["error"]["code"] for s in report["stems"] if not s["ok"]] == ["E_NOT_AUDIO"]


def _manifest(folder: Path, entries: list[tuple[str, str, str]], bounce_id: str) -> Path:
    from bridge.manifest import ManifestStem, write_manifest

    return write_manifest(folder, [ManifestStem(guid, name, folder / file, FS) for file, name, guid in entries],
                          bounce_id=bounce_id)


def test_a_manifest_bounce_waits_for_every_listed_file_and_carries_the_guids(watcher, renders):
    specs = default_session()[:3]
    entries = [(f"{s.name}.wav", f"{s.name} track", "{0000000%d-AAAA-BBBB-CCCC-DDDDDDDDDDDD}" % i)
               for i, s in enumerate(specs)]
    w = watcher()
    write_session(renders, specs[:2], duration_s=STEM_S)
    _manifest(renders, entries, "20261121T100000Z-0001")
    assert w.wait_for(lambda: _events(renders, "bounce_seen"), DEADLINE_S)
    assert not w.passes, "the pass started before the third listed file existed"
    write_session(renders, specs[2:], duration_s=STEM_S)
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    assert w.wait_for(lambda: w.idle, DEADLINE_S)
    assert len(w.passes) == 1
    outcome = w.passes[0]
    assert outcome.bounce.reason == "manifest" and outcome.bounce.id == "20261121T100000Z-0001"
    assert len(outcome.result.ok) == 3
    plan = json.loads((renders / "mixbridge-plan.json").read_text())
    by_stem = {t.get("stem", t["name"]): t for t in plan["tracks"]}
    for file, name, guid in entries:
        track = by_stem[Path(file).stem]
        assert track["name"] == name and track["guid"] == guid


def test_a_manifest_file_that_never_arrives_is_an_error_in_the_notes(watcher, renders):
    specs = default_session()[:2]
    w = watcher(manifest_timeout_s=1.0)
    write_session(renders, specs, duration_s=STEM_S)
    _manifest(renders, [(f"{s.name}.wav", s.name, "") for s in specs] + [("Ghost.wav", "Ghost", "")],
              "20261121T100000Z-0002")
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    outcome = w.passes[0]
    ghost = [s for s in outcome.result.stems if s.name == "Ghost"]
    assert ghost and ghost[0].error.code == "E_STEM_MISSING"
    assert len(outcome.result.ok) == 2
    assert "E_STEM_MISSING" in (renders / "mixbridge-notes.md").read_text()


class FlakyTarget:
    """A plan target that is "down" for its first ``failures`` calls."""

    kind = "flaky"

    def __init__(self, state_dir: Path, failures: int):
        self.inner = PlanTarget(state_dir)
        self.failures = failures
        self.calls = 0
        self.applied = 0

    def apply(self, plan, reenable=None):
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise DawUnavailable("test: REAPER is down")
        self.applied += 1
        return self.inner.apply(plan, reenable)

    def revert(self, only_track=None):
        return self.inner.revert(only_track)

    def ab_toggle(self, delta_lu):
        return self.inner.ab_toggle(delta_lu)

    def provenance(self):
        return self.inner.provenance()

    def close(self):
        pass


def test_a_target_that_is_down_gets_the_plan_once_it_is_back(watcher, renders, tmp_path):
    target = FlakyTarget(tmp_path / "flaky", failures=4)
    w = watcher(target=target)
    _stems(renders, 2)
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    assert w.passes[0].state in ("queued", "applied", "proposed")
    assert w.wait_for(lambda: target.applied == 1 and w.queued is None, DEADLINE_S)
    assert w.wait_for(lambda: w.idle, DEADLINE_S)
    assert target.calls == 5 and target.applied == 1
    outcome = w.passes[0]
    assert outcome.state in ("applied", "proposed") and outcome.report.writes
    assert len(_events(renders, "apply_queued")) == 1
    assert len(_events(renders, "apply_retry")) == 4
    assert len([r for r in _events(renders, "applied") if r["pass"] == 1]) == 1
    lines = w.console.lines
    assert sum("not answering" in line for line in lines) == 1, lines
    assert sum("REAPER is back" in line for line in lines) == 1, lines
    plan = json.loads((renders / ".mixbridge" / "passes" / "0001" / "plan.json").read_text())
    assert plan["applied"]["writes"], "the notes and plan were rewritten once the plan landed"


def test_review_mode_holds_moves_until_accepted(watcher, renders):
    w = watcher(review=True)
    _stems(renders, 2)
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    outcome = w.passes[0]
    assert outcome.held and outcome.counts.changes == 0
    assert outcome.state == "held"
    assert not (renders / ".mixbridge" / "applied-plan.json").exists(), "nothing accepted: the target is untouched"
    assert "waiting for your review" in (renders / "mixbridge-notes.md").read_text()
    reply = w.request("accept_all", wait_s=DEADLINE_S)
    assert reply and reply.startswith("accepted"), reply
    outcome = w.passes[0]  # the pass's record after the accept
    assert outcome.state == "proposed" and outcome.counts.changes > 0 and not outcome.held
    applied = json.loads((renders / ".mixbridge" / "applied-plan.json").read_text())
    assert any(t["changes"] for t in applied["tracks"])


_STUCK = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from bridge.console import Console
    from bridge.settings import Settings, WatchTimings
    from bridge.watch import Watcher

    class Stuck:
        kind = "stuck"
        def apply(self, plan, reenable=None):
            Path(sys.argv[2]).write_text("applying")
            threading.Event().wait()  # the test kills the process here, mid-pass
        def provenance(self):
            return {{}}
        def close(self):
            pass

    w = Watcher(Settings(Path(sys.argv[1]), jobs=1, timings=WatchTimings(settle_s=0.3, poll_s=0.05)), target=Stuck(),
                console=Console(open("/dev/null", "w")))
    w.start()
    threading.Event().wait()
""")


def test_a_restart_mid_pass_reruns_it_once_and_a_finished_pass_is_not_repeated(watcher, renders, tmp_path):
    _stems(renders, 2)
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK.format(repo=str(REPO)))
    marker = tmp_path / "applying"
    proc = subprocess.Popen([sys.executable, str(script), str(renders), str(marker)])
    try:
        _until(lambda: marker.exists() or proc.poll() is not None, DEADLINE_S, "the pass to reach the target")
        assert proc.poll() is None, "the watcher process died on its own"
    finally:
        proc.kill()
        proc.wait(DEADLINE_S)
    assert [r["pass"] for r in _events(renders, "pass_started")] == [1]
    assert not _events(renders, "pass_done")

    w = watcher()
    assert w.wait_for(lambda: w.passes, DEADLINE_S)
    assert w.wait_for(lambda: w.idle, DEADLINE_S)
    assert [p.number for p in w.passes] == [1]
    assert [r["pass"] for r in _events(renders, "pass_rerun")] == [1]
    assert [r["pass"] for r in _events(renders, "pass_done")] == [1]
    w.stop()

    again = watcher()
    assert again.wait_for(lambda: again.idle, DEADLINE_S)
    assert again.passes == []
    assert len(_events(renders, "pass_started")) == 2  # the killed one and its re-run, nothing more


def test_a_burst_of_200_files_is_a_bounded_number_of_passes(watcher, renders):
    w = watcher(settle_s=0.5)
    t = np.arange(int(0.5 * 8000)) / 8000
    for i in range(200):
        sf.write(str(renders / f"burst_{i:03d}.wav"), 0.1 * np.sin(2 * np.pi * (100 + 7 * i) * t), 8000,
                 subtype="PCM_16")
    assert w.wait_for(lambda: w.passes and len(w.passes[-1].result.stems) == 200, DEADLINE_S)
    assert w.wait_for(lambda: w.idle, DEADLINE_S)
    assert 1 <= len(w.passes) <= 3, [len(p.result.stems) for p in w.passes]
    assert w.alive and w.observer_alive
    assert not w.passes[-1].result.failed


def test_stop_is_clean_and_bounded_even_mid_bounce(watcher, renders):
    w = watcher()
    _stems(renders, 3)
    w.wait_for(lambda: _events(renders, "pass_started"), DEADLINE_S)
    began = time.monotonic()
    assert w.stop(15.0)
    assert time.monotonic() - began < 15.0
    assert not w.alive and not w.observer_alive
    assert _events(renders)[-1]["event"] == "watch_stopped"
    assert w._journal.closed


def test_ctrl_c_stops_the_cli_watcher(renders):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "watch", str(renders), "--settle", "0.3", "--jobs", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        _until(lambda: any(line.startswith("watching") for line in lines) or proc.poll() is not None,
               DEADLINE_S, "the watcher to start")
        _stems(renders, 2)
        _until(lambda: any(line.startswith("pass 1:") and "→ notes" in line for line in lines), DEADLINE_S,
               "the first pass")
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15.0)
        assert time.monotonic() - began < 15.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE_S)
    reader.join(5.0)
    assert code == 0, "".join(lines)
    assert any(line.rstrip().endswith("stopped after 1 pass") for line in lines), lines  # not "1 passes"
    assert _events(renders)[-1]["event"] == "watch_stopped"
