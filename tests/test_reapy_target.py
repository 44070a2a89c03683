"""The reapy target against the headless REAPER simulator: real processes, real sockets, stock reapy."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.reaper_sim.fixtures import REPO_ROOT, run_reapy_client, running_sim

PLAN = {
    "schema_version": 1, "id": "testplan00000001", "analysis_id": "a",
    "mix": {"findings": [], "estimated_ai_delta_lu": -2.5},
    "tracks": [
        {"name": "Keys", "role": "keys", "status": "ai", "findings": [], "automation": [], "changes": [
            {"target": "track", "param": "volume_db", "value": -6.0, "unit": "dB", "reason": "too_loud"},
            {"target": "eq", "param": "band1_type", "value": "highpass", "unit": "", "reason": "low_rumble"},
            {"target": "eq", "param": "band1_freq_hz", "value": 100.0, "unit": "Hz", "reason": "low_rumble"},
            {"target": "eq", "param": "band1_gain_db", "value": 0.0, "unit": "dB", "reason": "low_rumble"},
            {"target": "eq", "param": "band1_q", "value": 0.71, "unit": "", "reason": "low_rumble"},
            {"target": "eq", "param": "band2_type", "value": "peak", "unit": "", "reason": "masking"},
            {"target": "eq", "param": "band2_freq_hz", "value": 400.0, "unit": "Hz", "reason": "masking"},
            {"target": "eq", "param": "band2_gain_db", "value": -3.0, "unit": "dB", "reason": "masking"},
            {"target": "eq", "param": "band2_q", "value": 1.4, "unit": "", "reason": "masking"},
            {"target": "comp", "param": "threshold_db", "value": -20.0, "unit": "dB", "reason": "dynamics"},
            {"target": "comp", "param": "ratio", "value": 2.0, "unit": ":1", "reason": "dynamics"},
            {"target": "comp", "param": "attack_ms", "value": 10.0, "unit": "ms", "reason": "dynamics"},
            {"target": "comp", "param": "release_ms", "value": 100.0, "unit": "ms", "reason": "dynamics"},
            {"target": "comp", "param": "makeup_db", "value": 2.0, "unit": "dB", "reason": "dynamics"}]},
        {"name": "Guitar", "role": "guitar", "status": "ai", "findings": [], "automation": [], "changes": [
            {"target": "track", "param": "polarity", "value": 1, "unit": "flag", "reason": "phase", "channel": "right"},
            {"target": "track", "param": "width", "value": 0.5, "unit": "", "reason": "width"}]},
        {"name": "Lead_Vocal", "role": "lead_vocal", "status": "ai", "findings": [], "changes": [],
         "automation": [{"param": "volume_db", "reason": "section_level",
                         "points": [[11.95, 0.0], [12.05, 6.0], [19.95, 6.0], [20.05, 0.0]]}]},
        {"name": "Bass", "role": "bass", "status": "untouched", "findings": [], "changes": [], "automation": []},
    ],
}
PROJECT = {"tracks": [{"name": n} for n in ("Keys", "Guitar", "Lead_Vocal", "Bass")]}


def bridge(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout_s)


@pytest.fixture
def sim(tmp_path):
    with running_sim(PROJECT, tmp_path / "sim") as running:
        yield running


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    return path


def apply(sim, plan_file, tmp_path, *extra: str) -> dict:
    report = tmp_path / "report.json"
    done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--report", str(report), *extra)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(report.read_text())


def track(state, name):
    return next(t for t in state["tracks"] if t["name"] == name)


def fx(track_state, renamed):
    return next((f for f in track_state["fx"] if f.get("renamed") == renamed), None)


def param(fx_state, name):
    return next(p for p in fx_state["params"] if p["name"] == name)


def test_apply_writes_the_plan_as_one_named_undo_point(sim, plan_file, tmp_path):
    report = apply(sim, plan_file, tmp_path)
    state = sim.control.dump()
    keys = track(state, "Keys")
    assert keys["vol"] == pytest.approx(10 ** (-6 / 20), rel=1e-6)
    eq = fx(keys, "AI EQ (MixBridge)")
    assert eq is not None and eq["name"] == "VST: ReaEQ (Cockos)"
    assert eq["config"]["BANDTYPE0"] == "4" and eq["config"]["BANDENABLED0"] == "1"
    # band 1 retyped to a high-pass: REAPER's names follow the type (the simulator models it)
    assert [p["name"] for p in eq["params"][:3]] == ["Freq-High Pass", "Gain-High Pass", "Q-High Pass"]
    assert float(param(eq, "Freq-High Pass")["formatted"]) == pytest.approx(100.0, abs=0.5)
    assert param(eq, "Q-High Pass")["formatted"] == "1.89 oct"  # Q 0.71, read back in octaves
    assert param(eq, "BW-Band 2")["formatted"] == "1.01 oct"
    assert float(param(eq, "Freq-Band 2")["formatted"]) == pytest.approx(400.0, abs=1.0)
    assert float(param(eq, "Gain-Band 2")["formatted"]) == pytest.approx(-3.0, abs=0.1)
    comp = fx(keys, "AI Comp (MixBridge)")
    assert param(comp, "Ratio")["formatted"] == "2.0:1"
    assert float(param(comp, "Threshold")["formatted"]) == pytest.approx(-20.0, abs=0.1)
    guitar = track(state, "Guitar")
    assert guitar["width"] == 0.5 and not guitar["phase"], "one channel flips, not the whole track"
    polarity = fx(guitar, "AI Polarity (MixBridge)")
    assert param(polarity, "Invert right")["raw"] == 1.0 and param(polarity, "Invert left")["raw"] == 0.0
    vocal = track(state, "Lead_Vocal")
    (env,) = [e for e in vocal["envelopes"] if e.get("name") == "Volume" or e.get("chunk") == "<VOLENV2"]
    assert len(env["points"]) == 4
    assert [t["ext"].get("mixbridge/provenance") for t in state["tracks"]] == ["ai", "ai", "ai", None]  # Bass untouched
    undo = state["undo"]["history"] if "undo" in state else state["undo_history"]
    names = [u["name"] if isinstance(u, dict) else u for u in undo]
    assert names[-1] == "MixBridge: AI pass 1 — 3 tracks", names
    assert state["undo"]["open_block_depth"] == 0 and state["ui_refresh_prevent_count"] == 0
    assert "pending" not in state["proj_ext"].get("mixbridge", {}), "the journal is cleared"
    assert report["round_trips"] > 0 and report["verified"] == 16, "every written value is read back (12 FX values, 2 band types, 2 track values)"
    assert report["unverifiable"] == 0


def test_same_plan_twice_writes_nothing(sim, plan_file, tmp_path):
    apply(sim, plan_file, tmp_path)
    before = sim.control.dump()
    second = apply(sim, plan_file, tmp_path)
    assert second["writes"] == [] and second["undo_name"] == "" and len(second["unchanged"]) >= 8
    after = sim.control.dump()
    assert after["tracks"] == before["tracks"]


def test_a_manual_edit_survives_a_reapply_and_makes_the_track_hybrid(sim, plan_file, tmp_path):
    apply(sim, plan_file, tmp_path)
    sim.control.set_track("Keys", "D_VOL", 0.8)
    report = apply(sim, plan_file, tmp_path)
    state = sim.control.dump()
    keys = track(state, "Keys")
    assert keys["vol"] == pytest.approx(0.8), "the producer's fader stays"
    assert keys["ext"]["mixbridge/provenance"] == "hybrid"
    overrides = json.loads(keys["ext"]["mixbridge/state"])["overrides"]
    assert overrides["track.volume_db"]["from"] == -6.0
    assert overrides["track.volume_db"]["to"] == pytest.approx(-1.94, abs=0.01)
    assert {o["param"] for o in report["overrides"]} == {"track.volume_db"}


def test_revert_restores_pre_ai_values_and_leaves_manual_changes(sim, plan_file, tmp_path):
    initial = sim.control.dump()
    apply(sim, plan_file, tmp_path)
    sim.control.set_track("Guitar", "D_WIDTH", 0.8)
    done = bridge("revert", "--web-port", str(sim.web_port))
    assert done.returncode == 0, done.stderr
    state = sim.control.dump()
    keys = track(state, "Keys")
    assert keys["vol"] == pytest.approx(1.0) and keys["fx"] == []
    guitar = track(state, "Guitar")
    assert guitar["width"] == pytest.approx(0.8), "manual width left alone"
    assert fx(guitar, "AI Polarity (MixBridge)") is None
    vocal = track(state, "Lead_Vocal")
    assert all(not e["points"] for e in vocal["envelopes"])
    bass_before, bass_after = dict(track(initial, "Bass")), dict(track(state, "Bass"))
    assert bass_after.pop("ext") == {}, "left alone, never tagged"
    bass_before.pop("ext")
    assert bass_before == bass_after


def test_ab_is_level_matched_and_toggling_twice_restores_exactly(sim, plan_file, tmp_path):
    apply(sim, plan_file, tmp_path)
    applied = sim.control.dump()
    done = bridge("ab", "--web-port", str(sim.web_port), "--plan", str(plan_file))
    assert done.returncode == 0 and "A (pre-AI)" in done.stdout and "-2.5 dB" in done.stdout, done.stdout
    a = sim.control.dump()
    assert track(a, "Keys")["vol"] == pytest.approx(1.0)
    assert all(not f["enabled"] for f in track(a, "Keys")["fx"])
    assert a["master"]["vol"] == pytest.approx(applied["master"]["vol"] * 10 ** (-2.5 / 20))
    done = bridge("ab", "--web-port", str(sim.web_port), "--plan", str(plan_file))
    assert done.returncode == 0 and "B (AI)" in done.stdout
    b = sim.control.dump()
    assert b["tracks"] == applied["tracks"] and b["master"]["vol"] == applied["master"]["vol"]


def test_tags_are_readable_with_plain_reascript(sim, plan_file, tmp_path):
    apply(sim, plan_file, tmp_path)
    outcome = run_reapy_client(sim, """
tr = RPR.GetTrack(0, 0)
result["prov"] = RPR.GetSetMediaTrackInfo_String(tr, "P_EXT:mixbridge/provenance", "", False)[3]
result["pass"] = RPR.GetSetMediaTrackInfo_String(tr, "P_EXT:mixbridge/pass", "", False)[3]
result["state"] = RPR.GetSetMediaTrackInfo_String(tr, "P_EXT:mixbridge/state", "", False)[3]
""")
    assert outcome.result is not None, outcome.stderr
    assert outcome.result["prov"] == "ai" and outcome.result["pass"] == "1"
    written = json.loads(outcome.result["state"])["written"]
    assert written["track.volume_db"]["value"] == -6.0 and written["track.volume_db"]["before_raw"] == 1.0


ACTIVATION = REPO_ROOT / "reaper_scripts" / "MixBridge_Start_bridge_server.py"


def visible(track_state):
    # Showing a volume envelope creates it; hiding it again leaves an empty, hidden envelope,
    # which REAPER treats as no envelope (nothing drawn, nothing played).
    return dict(track_state, envelopes=[e for e in track_state["envelopes"] if e["visible"] or e["points"]])


@pytest.mark.parametrize("function", ["TrackFX_AddByName", "TrackFX_SetParamNormalized", "SetMediaTrackInfo_Value",
                                      "InsertEnvelopePoint", "GetSetMediaTrackInfo_String", "Undo_EndBlock2"])
def test_connection_lost_mid_pass_is_rolled_back_by_the_next_connection(tmp_path, plan_file, function):
    """A connection lost in the HOLD kills reapy 0.10's server in REAPER (the simulator runs its code):
    the bridge says what is left and how to restart the server; the next connection rolls it back."""
    with running_sim(PROJECT, tmp_path / "sim", extra_args=("--activation-script", str(ACTIVATION))) as sim:
        initial = sim.control.dump()
        sim.control.arm("drop", on_function=function)
        done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "1")
        assert done.returncode == 4, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        if function == "Undo_EndBlock2":  # its answer was lost, not the pass: nothing to roll back
            assert "E_DAW_ROLLBACK_PENDING" in done.stderr and "Keys fully applied" in done.stderr, done.stderr
        elif function == "GetSetMediaTrackInfo_String":  # its first call reads a GUID: nothing written yet
            assert "E_DAW_STALE_SERVER" in done.stderr and "nothing was written" in done.stderr, done.stderr
        else:
            assert "E_DAW_ROLLBACK_PENDING" in done.stderr and "needs rollback" in done.stderr, done.stderr
        assert "MixBridge: Start bridge server" in done.stderr
        assert not sim.control.reapy_state()["loop_running"]
        assert sim.control.activate()["loop_running"], "the shipped script closes the stopped server"
        revert = bridge("revert", "--web-port", str(sim.web_port), "--timeout", "1")
        assert revert.returncode == 0, revert.stdout + revert.stderr
        if function != "GetSetMediaTrackInfo_String":
            assert "first finished an interrupted pass" in revert.stdout, revert.stdout
        state = sim.control.dump()
        assert state["undo"]["open_block_depth"] == 0 and state["ui_refresh_prevent_count"] == 0
        assert "pending" not in state["proj_ext"].get("mixbridge", {})
        for before, after in zip(initial["tracks"], state["tracks"]):
            assert visible(after) == before, f"{before['name']} was left half-written"
        apply(sim, plan_file, tmp_path)  # and the next pass goes through
        assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(10 ** (-6 / 20))


def test_a_stale_server_is_named_with_how_to_restart_it(sim, plan_file):
    sim.control.kill_server()
    done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "1")
    assert done.returncode == 4 and "E_DAW_STALE_SERVER" in done.stderr, done.stderr
    assert "MixBridge: Start bridge server" in done.stderr and "Traceback" not in done.stderr
    # reapy's own activation cannot start again while the dead server holds the port
    assert not sim.control.activate()["loop_running"]


def test_stall_past_the_budget_leaves_reapers_side_alive_and_the_journal_finishes_later(tmp_path, plan_file):
    with running_sim(PROJECT, tmp_path / "sim") as sim:
        initial = sim.control.dump()
        sim.control.arm("stall", on_function="TrackFX_SetParamNormalized", seconds=30)
        done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "0.5")
        assert done.returncode == 4 and "E_DAW_ROLLBACK_PENDING" in done.stderr, done.stderr
        assert "Keys needs rollback" in done.stderr and "Guitar untouched" in done.stderr
        sim.control.release()
        wait_until(lambda: sim.control.reapy_state()["connections"] <= 1, 5.0)
        assert sim.control.reapy_state()["loop_running"], "the HOLD ended when REAPER came back"
        report = apply(sim, plan_file, tmp_path)
        assert report["recovered"].startswith("MixBridge: AI pass 1"), report["recovered"]
        state = sim.control.dump()
        assert state["undo"]["open_block_depth"] == 0
        names = [u["name"] for u in state["undo"]["history"]]
        assert names[-2:] == ["MixBridge: AI pass 1 — 3 tracks (rolled back after an interruption)",
                              "MixBridge: AI pass 1 — 3 tracks"], names
        assert len(initial["undo"]["history"]) == 0


def test_a_late_answer_within_the_budget_rolls_back_at_once(tmp_path, plan_file):
    with running_sim(PROJECT, tmp_path / "sim") as sim:
        initial = sim.control.dump()
        sim.control.arm("stall", on_function="TrackFX_SetParamNormalized", seconds=0.8)
        done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "0.5")
        assert done.returncode == 4 and "E_DAW_TIMEOUT" in done.stderr, done.stderr
        state = sim.control.dump()
        assert state["undo"]["open_block_depth"] == 0 and sim.control.reapy_state()["loop_running"]
        for before, after in zip(initial["tracks"], state["tracks"]):
            assert visible(after) == before


def test_reaper_dying_mid_pass_is_a_clear_error(sim, plan_file):
    sim.control.arm("die", on_function="TrackFX_SetParamNormalized")
    done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "3")
    assert done.returncode == 4 and "E_DAW" in done.stderr and "Traceback" not in done.stderr


def test_stalled_reaper_times_out(sim, plan_file):
    sim.control.arm("stall", on_function="CountTracks", seconds=20)
    done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "1", timeout_s=40)
    assert done.returncode == 4 and ("E_DAW_TIMEOUT" in done.stderr or "E_DAW_UNAVAILABLE" in done.stderr), done.stderr
    sim.control.release()


def test_reaper_not_running_is_a_clear_message(plan_file, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = bridge("apply", str(plan_file), "--web-port", str(port))
    assert done.returncode == 4
    assert "REAPER is not running" in done.stderr and "Traceback" not in done.stderr


def test_missing_track_is_reported_not_fatal(tmp_path, plan_file):
    with running_sim({"tracks": [{"name": "Keys"}]}, tmp_path / "sim2") as sim:
        report = apply(sim, plan_file, tmp_path)
        assert set(report["missing_tracks"]) == {"Guitar", "Lead_Vocal"}
        assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(10 ** (-6 / 20))


def test_mixbridge_loopback_activation_script_serves_a_stock_client(tmp_path, plan_file):
    """The shipped 'Start bridge server' ReaScript, run inside the simulator as REAPER would run it."""
    script = REPO_ROOT / "reaper_scripts" / "MixBridge_Start_bridge_server.py"
    with running_sim(PROJECT, tmp_path / "sim3", extra_args=("--activation-script", str(script))) as sim:
        report = apply(sim, plan_file, tmp_path)
        assert report["undo_name"].startswith("MixBridge: AI pass 1")
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout \
            if Path("/usr/bin/ss").exists() or Path("/bin/ss").exists() else ""
        for line in listening.splitlines():
            if f"pid={sim.process.pid}," in line:
                assert "127.0.0.1:" in line, f"the simulator's server listens beyond loopback: {line}"


def test_pass_notes_say_what_the_producer_overrode(tmp_path):
    from bridge.pipeline import analyze_session, plan_session
    from bridge.suggest.plan import plan_json
    from bridge.synth import default_session, write_session

    stems = tmp_path / "stems"
    write_session(stems, default_session(problems=True), duration_s=16.0)
    plan = plan_session(analyze_session([stems], jobs=1))
    (tmp_path / "plan.json").write_text(plan_json(plan))
    project = {"tracks": [{"name": t.name} for t in plan.tracks]}
    with running_sim(project, tmp_path / "sim4") as sim:
        apply(sim, tmp_path / "plan.json", tmp_path)
        sim.control.set_track("Keys", "D_VOL", 0.5)
        notes = tmp_path / "notes.md"
        done = bridge("apply", str(tmp_path / "plan.json"), "--web-port", str(sim.web_port),
                      "--notes", str(notes), "--stems", str(stems), "--jobs", "1")
        assert done.returncode == 0, done.stderr
    text = notes.read_text()
    overrides = text[text.lower().index("overrid"):]
    assert "`Keys`" in overrides and "-6.0" in overrides.replace("−", "-"), overrides[:800]
    assert "### `Keys` **hybrid**" in text, "the track is tagged hybrid in the notes"
