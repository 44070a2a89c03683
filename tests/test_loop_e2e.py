"""The whole loop, end to end, against the REAPER simulator process (issue 6, "Tests — End to end").

bounce in REAPER (the simulator renders its tracks' sources, then writes the manifest) → the watcher
sees it → analysis → the ``reaper`` target writes through a stock reapy client over real sockets →
tags; then a manual edit and a re-bounce with one stem changed; then a revert.

The three tests share one simulator and one watcher (module fixture) because each step is the state
the next starts from; each test asks the :class:`Loop` for the step it needs, and a step runs its
predecessors first if they have not run, so any single test also runs alone.

The sources are the synthetic session (:func:`bridge.synth.default_session`, 8 s), whose planted
problems have known findings: Keys is 9 dB too hot (a volume move on Keys), rumble and DC under
Pad_Strings (an AI EQ high-pass on Pad_Strings), Guitar_Rhythm has one channel inverted (the AI
polarity plug-in), ...
Every wait is a condition with a deadline; nothing sleeps to synchronise.
"""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.daw import mapping as m
from bridge.synth import default_session, write_session
from bridge.console import Console
from bridge.watch import Watcher
from tests.conftest import watch_settings
from tests.reaper_sim.control import ControlClient
from tests.reaper_sim.fixtures import running_sim
from tests.reaper_sim.render import DEFAULT_SUBDIR

#: One simulator and one watcher serve the module's tests in turn (a module fixture that connects
#: lazily, during the first test): the leak check cannot tell its threads from a test's.
pytestmark = pytest.mark.allow_leaks
DURATION_S = 8.0
PASS_TIMEOUT_S = 30.0
KEYS_PRE_AI_VOL = 0.9  # not unity, so "back to pre-AI" is a value that could be missed
MANUAL_EQ_NORMALIZED = 0.4  # the producer's Pad_Strings band-1 gain (about -1.9 dB; the AI wrote 0 dB on its high-pass)
FAST = dict(settle_s=0.3, poll_s=0.05, stable_polls=2, jobs=1, incomplete_timeout_s=10.0,
            manifest_timeout_s=20.0, manifest_grace_s=5.0, retry_initial_s=0.1, retry_max_s=0.5,
            commands_poll_s=0.5, stop_timeout_s=15.0, timeout_s=10.0)
PROVENANCE = "mixbridge/provenance"


def guid(index: int) -> str:
    return "{E2E0%04d-0000-4000-8000-%012d}" % (index, index)


def track_state(dump: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in dump["tracks"] if t["name"] == name)


def ai_fx(track: dict[str, Any], renamed: str) -> dict[str, Any] | None:
    return next((f for f in track["fx"] if f.get("renamed") == renamed), None)


def fx_param(fx: dict[str, Any], name: str | int) -> dict[str, Any]:
    """By name, or by index (ReaEQ's names follow the band type, so the bridge's keys go by layout index)."""
    if isinstance(name, int):
        return fx["params"][name]
    return next(p for p in fx["params"] if p["name"] == name)


def section(markdown: str, heading: str) -> str:
    """From ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(heading)
    ends = [markdown.find("\n" + "#" * n + " ", start + 1) for n in range(1, len(level) + 1)]
    ends = [e for e in ends if e >= 0]
    return markdown[start:min(ends) if ends else len(markdown)]


def planned(doc: dict[str, Any], track: str, param: str) -> Any:
    """The value the pass's plan holds for ``track``'s ``param`` (``None`` if absent)."""
    for tp in doc["tracks"]:
        if tp["name"] == track:
            for c in tp.get("changes", []):
                if c["param"] == param:
                    return c["value"]
    return None


class Loop:
    """One simulator, one watcher, and the loop's steps, each run once and in order."""

    def __init__(self, root: Path, sim, watcher: Watcher, sources: dict[str, Path]):
        self.root, self.sim, self.watcher, self.sources = root, sim, watcher, sources
        self.steps: dict[str, Any] = {}

    @property
    def control(self) -> ControlClient:
        return ControlClient(self.sim.control_port, timeout_s=60.0)  # a bounce renders before answering

    def dump(self) -> dict[str, Any]:
        return self.sim.control.dump()

    def bounce_and_wait(self) -> Any:
        """Bounce all selected tracks in the simulator; return the watcher's pass for that bounce."""
        w = self.watcher
        before = len(w.passes)
        outcome = self.control.bounce()
        assert outcome["error"] is None, outcome
        ok = w.wait_for(lambda: len(w.passes) > before or w.crashed is not None or w.errors, PASS_TIMEOUT_S)
        assert w.crashed is None and not w.errors, (w.crashed, w.errors)
        assert ok, f"no pass within {PASS_TIMEOUT_S} s of the bounce"
        assert len(w.passes) == before + 1, [p.line for p in w.passes]
        result = w.passes[-1]
        assert result.bounce.reason == "manifest" and result.bounce.manifest == Path(outcome["manifest"])
        assert result.state == "applied", result.error
        return result

    # --- the steps ------------------------------------------------------------------------------------

    def first(self) -> dict[str, Any]:
        if "first" not in self.steps:
            self.steps["first"] = {"before": self.dump()}
            self.steps["first"].update(outcome=self.bounce_and_wait(), after=self.dump())
        return self.steps["first"]

    def second(self) -> dict[str, Any]:
        if "second" not in self.steps:
            first = self.first()
            eq_gain = m.layout_index("eq", "band1_gain_db")
            written = fx_param(ai_fx(track_state(first["after"], "Pad_Strings"), m.AI_EQ_NAME), eq_gain)
            self.sim.control.set_fx_param("Pad_Strings", m.AI_EQ_NAME, eq_gain, normalized=MANUAL_EQ_NORMALIZED)
            edited = self.dump()
            # A new take on Keys: same role and problem, different notes; every other source untouched.
            keys_spec = next(s for s in default_session() if s.name == "Keys")
            write_session(self.sources["Keys"].parent, [dataclasses.replace(keys_spec, seed=77)],
                          duration_s=DURATION_S)
            self.steps["second"] = {"written_eq": written, "edited": edited, "outcome": self.bounce_and_wait(),
                                    "after": self.dump()}
        return self.steps["second"]

    def third(self) -> dict[str, Any]:
        if "third" not in self.steps:
            self.second()
            reply = self.watcher.request("revert", wait_s=PASS_TIMEOUT_S)
            self.steps["third"] = {"reply": reply, "after": self.dump()}
        return self.steps["third"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    specs = default_session()
    paths = write_session(root / "sources", specs, duration_s=DURATION_S)
    sources = {s.name: p for s, p in zip(specs, paths)}
    song = root / "song"
    stems = song / DEFAULT_SUBDIR
    stems.mkdir(parents=True)  # the watched folder exists before the first bounce, as after setup
    project = {"name": "Song.rpp", "path": str(song / "Song.rpp"),
               "tracks": [{"name": s.name, "guid": guid(i), "selected": True, "source": str(sources[s.name]),
                           "vol": KEYS_PRE_AI_VOL if s.name == "Keys" else 1.0}
                          for i, s in enumerate(specs, start=1)]}
    with running_sim(project, root / "sim") as sim:
        settings = watch_settings(stems, target="reaper", web_port=sim.web_port, **FAST)
        watcher = Watcher(settings, console=Console(io.StringIO(), tty=False))
        try:
            watcher.start()
            yield Loop(root, sim, watcher, sources)
        finally:
            assert watcher.stop(15.0), "the watcher stopped cleanly"


# --- 1. bounce → watch → analyse → write → tag ---------------------------------------------------------

def test_a_bounce_in_the_simulator_is_analysed_written_and_tagged(loop):
    step = loop.first()
    outcome, before, after = step["outcome"], step["before"], step["after"]
    assert len(outcome.result.stems) == 10 and not outcome.result.failed
    assert {ref.guid for ref in outcome.tracks.values()} == {guid(i) for i in range(1, 11)}, "mapped by manifest GUID"

    keys_db = planned(outcome.plan_doc, "Keys", "volume_db")
    assert keys_db is not None and keys_db < -6.0, "the planted +9 dB on Keys is found"
    keys = track_state(after, "Keys")
    assert keys["vol"] == pytest.approx(KEYS_PRE_AI_VOL * m.db_to_fader_gain(keys_db), rel=1e-6)
    assert "mixbridge/pre_ai" in keys["ext"] and f"D_VOL={KEYS_PRE_AI_VOL}" in keys["ext"]["mixbridge/pre_ai"]

    moved = {tp["name"] for tp in outcome.plan_doc["tracks"] if tp["changes"] or tp["automation"]}
    assert {"Keys", "Pad_Strings", "Guitar_Rhythm"} <= moved
    for t in after["tracks"]:  # a track the pass leaves alone gets no tag: untouched
        assert t["ext"].get(PROVENANCE) == ("ai" if t["name"] in moved else None), t["name"]
    assert outcome.provenance == {t["name"]: ("ai" if t["name"] in moved else "untouched") for t in after["tracks"]}
    pad_eq = ai_fx(track_state(after, "Pad_Strings"), m.AI_EQ_NAME)
    assert pad_eq is not None
    assert float(fx_param(pad_eq, m.layout_index("eq", "band1_gain_db"))["formatted"]) == pytest.approx(
        planned(outcome.plan_doc, "Pad_Strings", "band1_gain_db"), abs=0.1)
    assert ai_fx(track_state(after, "Guitar_Rhythm"), m.AI_POLARITY_NAME) is not None

    history = [u["name"] for u in after["undo"]["history"]]
    assert outcome.report.undo_name.startswith("MixBridge: AI pass 1") and history[-1] == outcome.report.undo_name
    assert len(history) == len(before["undo"]["history"]) + 2, "the bounce's undo point, then the pass's"

    notes_md = Path(loop.watcher.files[outcome.number]["notes_md"])
    assert notes_md.is_file() and Path(loop.watcher.files[outcome.number]["notes"]).is_file()
    assert notes_md.parent == loop.root / "song" / DEFAULT_SUBDIR / ".mixbridge" / "passes" / "0001"
    assert "Keys" in notes_md.read_text(encoding="utf-8")
    report = json.loads(Path(loop.watcher.files[outcome.number]["report"]).read_text())
    assert report["target"] == "reaper" and report["apply"] == "applied"
    assert report["target_report"]["undo_name"] == outcome.report.undo_name


# --- 2. manual edit → re-bounce with one stem changed --------------------------------------------------

def test_a_rebounce_with_one_changed_stem_reanalyses_it_alone_and_keeps_the_manual_edit(loop):
    step = loop.second()
    outcome, edited, after = step["outcome"], step["edited"], step["after"]
    assert outcome.number == 2
    assert outcome.reanalysed == ("Keys",)
    assert sorted(outcome.cached) == sorted(s.name for s in default_session() if s.name != "Keys")
    assert "(1 re-analysed, 9 cached)" in outcome.line and "1 manual override kept" in outcome.line

    eq_gain = m.layout_index("eq", "band1_gain_db")
    manual = fx_param(ai_fx(track_state(edited, "Pad_Strings"), m.AI_EQ_NAME), eq_gain)
    assert manual["normalized"] == pytest.approx(MANUAL_EQ_NORMALIZED)
    assert manual["normalized"] != pytest.approx(step["written_eq"]["normalized"], abs=1e-3), "really an edit"
    kept = fx_param(ai_fx(track_state(after, "Pad_Strings"), m.AI_EQ_NAME), eq_gain)
    assert kept == manual, "the producer's value survives the pass"

    pad = track_state(after, "Pad_Strings")
    assert pad["ext"][PROVENANCE] == "hybrid" and outcome.provenance["Pad_Strings"] == "hybrid"
    assert track_state(after, "Keys")["ext"][PROVENANCE] == "ai"
    (override,) = outcome.report.overrides
    assert override.track == "Pad_Strings" and override.key == "eq.band1_gain_db"
    ai_db = planned(loop.first()["outcome"].plan_doc, "Pad_Strings", "band1_gain_db")
    assert override.from_value == pytest.approx(ai_db)
    producer_db = float(manual["formatted"].split()[0])
    assert override.to_value == pytest.approx(producer_db, abs=0.1)

    # The changed stem's new plan reached REAPER, relative to the same pre-AI fader.
    keys_db = planned(outcome.plan_doc, "Keys", "volume_db")
    assert keys_db is not None
    assert track_state(after, "Keys")["vol"] == pytest.approx(KEYS_PRE_AI_VOL * m.db_to_fader_gain(keys_db),
                                                             rel=1e-6)

    notes = Path(loop.watcher.files[outcome.number]["notes_md"]).read_text(encoding="utf-8")
    overrides = section(notes, "## Producer overrides")
    (row,) = [line for line in overrides.splitlines() if line.startswith("| `Pad_Strings`")]
    assert row == f"| `Pad_Strings` | EQ band 1 gain | {ai_db:+.1f} dB | {producer_db:+.1f} dB |", row
    bass_notes = section(notes, "### `Pad_Strings`")
    assert bass_notes.startswith("### `Pad_Strings` **hybrid**")
    assert f"EQ band 1 gain: AI {ai_db:+.1f} dB → producer {producer_db:+.1f} dB" in bass_notes
    assert "**Re-analysed:** Keys\n" in section(notes, "## Changes since the previous bounce")


# --- 3. revert after all of that -----------------------------------------------------------------------

def test_revert_restores_pre_ai_removes_ai_fx_and_leaves_the_manual_edit(loop):
    step = loop.third()
    after, manual = step["after"], loop.second()["edited"]
    assert step["reply"] is not None and step["reply"].startswith("reverted"), step["reply"]

    keys = track_state(after, "Keys")
    assert keys["vol"] == pytest.approx(KEYS_PRE_AI_VOL, abs=1e-9), "the exact pre-AI fader"
    for name in ("Guitar_Rhythm", "Keys", "Synth_Lead"):
        t = track_state(after, name)
        assert not [f for f in t["fx"] if f.get("renamed") in (m.AI_EQ_NAME, m.AI_COMP_NAME, m.AI_POLARITY_NAME)], name
    for t in after["tracks"]:  # the producer's Pad_Strings EQ edit makes it theirs; the rest has nothing of the AI
        assert t["ext"].get(PROVENANCE) in (("manual",) if t["name"] == "Pad_Strings" else (None, "untouched")), t["name"]
        assert "mixbridge/pre_ai" not in t["ext"], f"{t['name']}: nothing of ours left for the bounce to undo"

    # The producer tuned the Pad_Strings EQ: it stays, with their value; only the bridge's own values go.
    eq_gain = m.layout_index("eq", "band1_gain_db")
    pad_eq = ai_fx(track_state(after, "Pad_Strings"), m.AI_EQ_NAME)
    assert pad_eq is not None
    assert fx_param(pad_eq, eq_gain) == fx_param(ai_fx(track_state(manual, "Pad_Strings"), m.AI_EQ_NAME), eq_gain)
    freq = fx_param(pad_eq, m.layout_index("eq", "band1_freq_hz"))
    assert float(freq["formatted"]) == pytest.approx(100.0, abs=0.5), "the AI's corner back to the plug-in default"
    assert after["undo"]["history"][-1]["name"] == "MixBridge: revert AI pass"
    assert [t["vol"] for t in after["tracks"] if t["name"] != "Keys"] == [1.0] * 9
