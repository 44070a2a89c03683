"""Issue 11 item 3: the producer's edits are never overwritten (reapy target, against the simulator).

A/B is part of the reconciliation: a fader moved by hand while listening to A (pre-AI) is the
producer's, and a pass applied while on A is held for B instead of being taken for overrides.
Volume-envelope points are compared one by one with what the bridge wrote: an edited point makes
the track hybrid and is never written or deleted again, also not by ``revert``.
"""
from __future__ import annotations

import copy
import json

import pytest

from bridge.daw.reconcile import AUTOMATION_KEY
from tests.reaper_sim.fixtures import running_sim
from tests.test_reapy_target import PLAN, PROJECT, apply, bridge, track

VOLUME = 10 ** (-6 / 20)  # Keys' fader after the plan's -6 dB


@pytest.fixture
def sim(tmp_path):
    with running_sim(PROJECT, tmp_path / "sim") as running:
        yield running


def _write(tmp_path, plan, name="plan.json"):
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return path


def _ab(sim, plan_file):
    done = bridge("ab", "--web-port", str(sim.web_port), "--plan", str(plan_file))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _state(track_state):
    return json.loads(track_state["ext"]["mixbridge/state"])


def _volume_points(track_state):
    (env,) = [e for e in track_state["envelopes"] if e["chunk"] == "<VOLENV2"]
    return [(p["time"], p["value"]) for p in env["points"]]


def test_a_fader_moved_by_hand_on_a_survives_switching_to_b(sim, tmp_path):
    plan_file = _write(tmp_path, PLAN)
    apply(sim, plan_file, tmp_path)
    applied = sim.control.dump()
    assert "A (pre-AI)" in _ab(sim, plan_file)
    assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(1.0)
    sim.control.set_track("Keys", "D_VOL", 0.7)  # the producer, listening to A
    out = _ab(sim, plan_file)
    assert "B (AI)" in out and "manual: Keys:track.volume_db was moved by hand" in out, out
    b = sim.control.dump()
    keys = track(b, "Keys")
    assert keys["vol"] == pytest.approx(0.7), "the hand move on A was reset by B"
    assert keys["ext"]["mixbridge/provenance"] == "hybrid"
    assert "track.volume_db" in _state(keys)["overrides"]
    assert track(b, "Guitar")["width"] == pytest.approx(0.5), "the other AI values are back"
    assert b["master"]["vol"] == applied["master"]["vol"], "the level match is taken off exactly"
    # ... and it stays the producer's: the next pass and the next A/B leave it alone
    report = apply(sim, plan_file, tmp_path)
    assert not any(w["track"] == "Keys" and w["param"] == "track.volume_db" for w in report["writes"])
    _ab(sim, plan_file)
    assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(0.7)
    _ab(sim, plan_file)
    assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(0.7)


def test_a_pass_applied_on_a_is_held_for_b_not_taken_for_producer_overrides(sim, tmp_path):
    plan_file = _write(tmp_path, PLAN)
    apply(sim, plan_file, tmp_path)
    _ab(sim, plan_file)  # now on A: pre-AI faders, AI FX bypassed
    same = apply(sim, plan_file, tmp_path)
    assert same["overrides"] == [] and same["writes"] == [], same
    changed = copy.deepcopy(PLAN)
    changed["id"] = "testplan00000002"
    changed["tracks"][0]["changes"][0]["value"] = -4.0  # Keys' fader
    report = apply(sim, _write(tmp_path, changed, "plan2.json"), tmp_path)
    assert report["overrides"] == [], "AI values read on A were taken for the producer's"
    on_a = sim.control.dump()
    keys = track(on_a, "Keys")
    assert keys["vol"] == pytest.approx(1.0), "a pass on A must not make A play the AI's fader"
    assert all(not f["enabled"] for f in keys["fx"])
    written = _state(keys)["written"]["track.volume_db"]
    assert written["value"] == -4.0 and written["raw"] == pytest.approx(10 ** (-4 / 20))
    assert keys["ext"]["mixbridge/provenance"] == "ai" and _state(keys)["overrides"] == {}
    assert "B (AI)" in _ab(sim, plan_file)
    b = track(sim.control.dump(), "Keys")
    assert b["vol"] == pytest.approx(10 ** (-4 / 20)), "B plays the pass applied while on A"
    assert all(f["enabled"] for f in b["fx"])


def test_an_edited_ai_envelope_point_is_the_producers_in_the_next_pass_and_in_revert(sim, tmp_path):
    plan_file = _write(tmp_path, PLAN)
    apply(sim, plan_file, tmp_path)
    written = _volume_points(track(sim.control.dump(), "Lead_Vocal"))
    assert [t for t, _ in written] == [11.95, 12.05, 19.95, 20.05]
    edited_value = written[1][1] * 0.9
    sim.control.edit_envelope_point("Lead_Vocal", 1, value=edited_value)  # the producer lowers the boost
    sim.control.edit_envelope_point("Lead_Vocal", 3, delete=True)  # ... and deletes the last point
    report = apply(sim, plan_file, tmp_path)
    vocal = track(sim.control.dump(), "Lead_Vocal")
    assert vocal["ext"]["mixbridge/provenance"] == "hybrid"
    assert any(o["track"] == "Lead_Vocal" and o["param"] == AUTOMATION_KEY for o in report["overrides"]), report
    assert sorted(_state(vocal)["overrides"]["automation"]["times"]) == [12.05, 20.05]
    assert _volume_points(vocal) == [written[0], (12.05, edited_value), written[2]], \
        "the next pass rewrote or re-added a point the producer edited"
    # a plan with new points keeps away from the producer's (pending), replaces only the bridge's own
    moved = copy.deepcopy(PLAN)
    moved["tracks"][2]["automation"][0]["points"] = [[11.95, 0.0], [12.05, 3.0], [19.95, 3.0], [20.05, 0.0]]
    report = apply(sim, _write(tmp_path, moved, "plan2.json"), tmp_path)
    pending = {(p["track"], p["param"]) for p in report["pending"]}
    assert ("Lead_Vocal", AUTOMATION_KEY) in pending
    points = _volume_points(track(sim.control.dump(), "Lead_Vocal"))
    assert (12.05, edited_value) in points and not any(t == 20.05 for t, _ in points)
    assert len(points) == 3 and points[2][1] != written[2][1], "the bridge's own 19.95 s point follows the plan"
    done = bridge("revert", "--web-port", str(sim.web_port))
    assert done.returncode == 0, done.stderr
    vocal = track(sim.control.dump(), "Lead_Vocal")
    assert _volume_points(vocal) == [(12.05, edited_value)], "revert deleted the producer's point or left the bridge's"
    assert vocal["ext"]["mixbridge/provenance"] == "manual"


def test_an_ai_fx_tuned_by_hand_while_the_bridge_was_away_stays_the_producers(tmp_path):
    """REAPER stalls mid-pass past the budget; while the bridge is away the producer tunes the AI EQ the
    cut-off pass had added.  The rollback takes everything else back but leaves that EQ, as theirs."""
    from tests.test_reapy_target import fx as ai_fx

    plan_file = _write(tmp_path, PLAN)
    with running_sim(PROJECT, tmp_path / "sim") as sim:
        sim.control.arm("stall", on_function="TrackFX_SetParamNormalized", seconds=30)
        done = bridge("apply", str(plan_file), "--web-port", str(sim.web_port), "--timeout", "0.3")
        assert done.returncode == 4 and "E_DAW_ROLLBACK_PENDING" in done.stderr, done.stderr
        sim.control.release()
        gain = 4  # band 2 gain, a parameter the cut-off pass had not written yet
        sim.control.set_fx_param("Keys", "AI EQ (MixBridge)", gain, normalized=0.123)
        done = bridge("revert", "--web-port", str(sim.web_port))
        assert done.returncode == 0 and "first finished an interrupted pass" in done.stdout, done.stdout + done.stderr
        keys = track(sim.control.dump(), "Keys")
        assert ai_fx(keys, "AI Comp (MixBridge)") is None and ai_fx(keys, "AI EQ (MixBridge)") is None
        (eq,) = keys["fx"]
        assert eq["name"] == "VST: ReaEQ (Cockos)" and not eq.get("renamed"), "the producer's EQ now"
        assert eq["params"][gain]["normalized"] == pytest.approx(0.123)
        assert keys["vol"] == pytest.approx(1.0) and "mixbridge/provenance" not in keys["ext"]
