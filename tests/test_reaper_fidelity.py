"""Issue 13, the bridge side: REAPER as REAPER is, against the simulator's published alternatives.

Each published disagreement about a mapping is a simulator variant (``--fx-variant``); the bridge
reads every FX value back as REAPER displays it, so a REAPER that maps a parameter differently
fails the pass with ``E_DAW_VERIFY`` and leaves the session as it was.  Also: parameters found by
layout index and checked by name, a 401 named and not retried, ``--host`` used for both of
reapy's connections.  Real processes and sockets on loopback addresses.
"""
from __future__ import annotations

import copy
import json
import socket
import time

import pytest

from bridge.daw import mapping as m
from bridge.daw import reapy_conn
from bridge.errors import UNREACHABLE, DawAuthRequired, DawStaleServer, DawUnavailable
from tests.reaper_sim.fixtures import running_sim
from tests.test_reapy_target import PLAN, PROJECT, bridge, fx, track, visible


def _plan_with(tmp_path, **values) -> str:
    """PLAN with some Keys changes set to other values (``band2_gain_db=4.0``)."""
    plan = copy.deepcopy(PLAN)
    for change in plan["tracks"][0]["changes"]:
        if change["param"] in values:
            change["value"] = values[change["param"]]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return str(path)


# One plan value per published mapping conflict that the two sides display differently.
CONFLICTS = {
    "reaeq-gain-db-linear": ("eq.band2_gain_db", {"band2_gain_db": 4.0}),
    "reacomp-ratio-inf": ("comp.ratio", {"ratio": 100.0}),
    "reacomp-times-1000ms": ("comp.attack_ms", {}),
    "reacomp-wet-unity": ("comp.makeup_db", {}),
}


@pytest.mark.parametrize("variant", sorted(CONFLICTS))
def test_a_reaper_that_maps_a_parameter_differently_rolls_the_pass_back(tmp_path, variant):
    key, values = CONFLICTS[variant]
    plan = _plan_with(tmp_path, **values)
    with running_sim(PROJECT, tmp_path / "sim", extra_args=("--fx-variant", variant)) as sim:
        initial = sim.control.dump()
        done = bridge("apply", plan, "--web-port", str(sim.web_port))
        assert done.returncode == 4 and "E_DAW_VERIFY" in done.stderr, done.stdout + done.stderr
        assert key in done.stderr and "maps this parameter differently" in done.stderr
        state = sim.control.dump()
        assert state["undo"]["open_block_depth"] == 0
        assert "pending" not in state["proj_ext"].get("mixbridge", {})
        for before, after in zip(initial["tracks"], state["tracks"]):
            assert visible(after) == before, f"{before['name']} kept part of a pass REAPER disagreed with"


def test_the_same_values_verify_on_the_default_mappings(tmp_path):
    """The plan values of the conflicts above go through where REAPER maps as the bridge does."""
    plan = _plan_with(tmp_path, band2_gain_db=4.0, ratio=100.0)
    with running_sim(PROJECT, tmp_path / "sim") as sim:
        done = bridge("apply", plan, "--web-port", str(sim.web_port))
        assert done.returncode == 0, done.stderr
        keys = track(sim.control.dump(), "Keys")
        comp = fx(keys, "AI Comp (MixBridge)")
        assert comp["params"][m.layout_index("comp", "ratio")]["formatted"] == "100.0:1"
        assert float(fx(keys, "AI EQ (MixBridge)")["params"][m.layout_index("eq", "band2_gain_db")]["formatted"]) \
            == pytest.approx(4.0, abs=0.1)


def test_reaeq_names_that_never_follow_the_band_type_are_found_by_the_same_layout(tmp_path):
    with running_sim(PROJECT, tmp_path / "sim", extra_args=("--fx-variant", "reaeq-names-fixed")) as sim:
        done = bridge("apply", _plan_with(tmp_path), "--web-port", str(sim.web_port))
        assert done.returncode == 0, done.stderr
        eq = fx(track(sim.control.dump(), "Keys"), "AI EQ (MixBridge)")
        assert [p["name"] for p in eq["params"][:3]] == ["Freq-Low Shelf", "Gain-Low Shelf", "BW-Low Shelf"]
        assert eq["config"]["BANDTYPE0"] == "4"  # a high-pass under the default table's names
        assert float(eq["params"][0]["formatted"]) == pytest.approx(100.0, abs=0.5)


def test_an_fx_renamed_like_the_bridges_but_of_another_layout_is_refused_not_written(tmp_path):
    """The producer renamed a ReaComp "AI EQ (MixBridge)": names at the layout indices disagree."""
    project = copy.deepcopy(PROJECT)
    project["tracks"][0]["fx"] = [{"name": "VST: ReaComp (Cockos)", "renamed": "AI EQ (MixBridge)"}]
    with running_sim(project, tmp_path / "sim") as sim:
        initial = sim.control.dump()
        done = bridge("apply", _plan_with(tmp_path), "--web-port", str(sim.web_port))
        assert done.returncode == 4 and "E_TARGET_NOT_FOUND" in done.stderr, done.stderr
        assert "'Threshold'" in done.stderr or "not band" in done.stderr, done.stderr
        state = sim.control.dump()
        assert state["undo"]["open_block_depth"] == 0
        for before, after in zip(initial["tracks"], state["tracks"]):
            assert visible(after) == before


def test_layout_problem_checks_names_at_the_layout_index():
    names = [f"{k}-{b}" for b in m.REAEQ_BANDS for k in ("Freq", "Gain", "BW")]
    assert m.layout_problem("eq", "band1_q", names) is None
    typed = ["Freq-High Pass", "Gain-High Pass", "Q-High Pass"] + names[3:]
    assert m.layout_problem("eq", "band1_q", typed, {1: "4"}) is None
    shuffled = [names[1], names[0]] + names[2:]
    assert "not band 1's freq" in m.layout_problem("eq", "band1_freq_hz", shuffled)
    mixed = names[:2] + ["BW-Band 2"] + names[3:]
    assert "not one band" in m.layout_problem("eq", "band1_q", mixed)
    assert m.layout_problem("comp", "ratio", ["Threshold", "Ratio"]) is None
    assert "stock layout" in m.layout_problem("comp", "ratio", ["Ratio", "Threshold"])
    assert "parameters" in m.layout_problem("comp", "makeup_db", ["Threshold", "Ratio"])


def test_a_password_on_the_web_interface_is_named_and_not_retried(tmp_path):
    with running_sim(PROJECT, tmp_path / "sim", extra_args=("--web-password", "mix:s3cret")) as sim:
        started = time.monotonic()
        done = bridge("apply", _plan_with(tmp_path), "--web-port", str(sim.web_port), "--timeout", "1")
        assert done.returncode == 4 and "E_DAW_AUTH" in done.stderr and "401" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and time.monotonic() - started < 10
        assert sim.control.dump()["undo"]["history"] == []
    assert not isinstance(DawAuthRequired("x"), UNREACHABLE), "a watcher must not queue and retry it forever"


def test_host_is_used_for_the_web_interface_and_reapys_client(tmp_path):
    """A REAPER on 127.0.0.2 only: reapy 0.10 alone would connect its client to localhost (127.0.0.1)."""
    with running_sim(PROJECT, tmp_path / "sim", extra_args=("--bind", "127.0.0.2")) as sim:
        with socket.socket() as probe:  # nothing of REAPER's on 127.0.0.1
            assert probe.connect_ex(("127.0.0.1", sim.server_port)) != 0
        report = tmp_path / "report.json"
        done = bridge("apply", _plan_with(tmp_path), "--host", "127.0.0.2", "--web-port", str(sim.web_port),
                      "--report", str(report))
        assert done.returncode == 0, done.stderr
        assert json.loads(report.read_text())["undo_name"].startswith("MixBridge: AI pass 1")
        assert track(sim.control.dump(), "Keys")["vol"] == pytest.approx(10 ** (-6 / 20))


def test_a_remote_host_whose_server_listens_on_loopback_only_says_how_to_forward(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    monkeypatch.setattr(reapy_conn, "is_loopback", lambda host: False)
    with pytest.raises(DawUnavailable) as raised:
        reapy_conn.probe_server("127.0.0.1", port, 1.0)
    assert not isinstance(raised.value, DawStaleServer) and "ssh -L" in raised.value.detail
    monkeypatch.undo()
    with pytest.raises(DawStaleServer):  # the same refusal on this machine: a stale server
        reapy_conn.probe_server("127.0.0.1", port, 1.0)
