"""The OSC target against the simulator's OSC surface, with liblo's oscsend/oscdump as independent peers.

Real UDP on 127.0.0.1 throughout.  A relay between the bridge and the simulator forwards every
packet verbatim and copies it to ``oscdump``, so what the bridge sends is decoded by a third OSC
implementation (liblo) and checked for exact addresses, types and values.
"""
from __future__ import annotations

import json
import math
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.daw.osc_target import OscTarget
from bridge.errors import DawUnavailable
from tests.reaper_sim.fixtures import expect_result, run_reapy_client, running_sim
from tests.conftest import wait_until as wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("oscdump") and shutil.which("oscsend")),
                                reason="liblo-tools (oscsend, oscdump) not installed")

EQ = {"name": "VST: ReaEQ (Cockos)", "renamed": "AI EQ (MixBridge)"}
PROJECT = {"tracks": [
    {"name": "Kick", "vol": 0.5},
    {"name": "Bass", "fx": [{"name": "VST: ReaComp (Cockos)"}, EQ]},
    {"name": "Vox"},
]}
PLAN = {"schema_version": 1, "id": "plan-1", "tracks": [
    {"name": "Kick", "status": "ai", "changes": [
        {"target": "track", "param": "volume_db", "value": -3.0, "unit": "dB"},
        {"target": "track", "param": "pan", "value": 0.2, "unit": ""}]},
    {"name": "Bass", "status": "ai", "changes": [
        {"target": "eq", "param": "band2_gain_db", "value": -4.0, "unit": "dB"},
        {"target": "eq", "param": "band2_freq_hz", "value": 250.0, "unit": "Hz"},
        {"target": "eq", "param": "band1_type", "value": "highpass", "unit": ""}]},
    {"name": "Vox", "status": "ai", "changes": [
        {"target": "comp", "param": "ratio", "value": 3.0, "unit": ":1"},
        {"target": "track", "param": "polarity", "value": 1, "unit": "flag", "channel": "both"}],
     "automation": [{"param": "volume_db", "points": [[1.0, 0.0], [2.0, 3.0]]}]},
]}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



class OscDump:
    """liblo's ``oscdump -L PORT`` as a subprocess; decoded lines land in a list."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()
        # Ready once it decodes a probe (oscdump prints nothing when it starts listening).
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        wait_for(lambda: probe.sendto(b"/probe\0\0,\0\0\0", ("127.0.0.1", port)) and
                 any("/probe" in line for line in self.snapshot()), 5.0, "oscdump to start")
        probe.close()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def messages(self) -> list[tuple[str, str, list[str]]]:
        """(address, types, values) of every decoded message except the probes."""
        out = []
        for line in self.snapshot():
            parts = line.split()
            if len(parts) >= 3 and parts[1] != "/probe":
                out.append((parts[1], parts[2], parts[3:]))
        return out

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Relay:
    """Forwards datagrams verbatim to ``dest`` and copies them to ``copy_to``; timestamps each."""

    def __init__(self, dest: tuple[str, int], copy_to: tuple[str, int] | None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.dest, self.copy_to = dest, copy_to
        self.arrivals: list[tuple[float, bytes]] = []
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.arrivals.append((time.monotonic(), data))
            self.sock.sendto(data, self.dest)
            if self.copy_to:
                self.sock.sendto(data, self.copy_to)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def osc_sim(tmp_path):
    listen = free_udp_port()
    with running_sim(PROJECT, tmp_path / "sim",
                     extra_args=("--osc-port", "0", "--osc-feedback", f"127.0.0.1:{listen}")) as sim:
        yield sim, listen


def _target(port: int, listen: int, tmp_path: Path, **kw) -> OscTarget:
    kw.setdefault("settle_s", 0.06)  # the simulator sends a whole refresh within one 10 ms step
    return OscTarget(port=port, listen_port=listen, timeout_s=3.0, state_path=tmp_path / "osc-state.json", **kw)


def _track(dump: dict, name: str) -> dict:
    return next(t for t in dump["tracks"] if t["name"] == name)


def _param(dump: dict, track: str, fx: str, name: str) -> float:
    fx_d = next(f for f in _track(dump, track)["fx"] if f["renamed"] == fx or f["name"] == fx)
    return next(p["normalized"] for p in fx_d["params"] if p["name"] == name)


def _sent(got: list, address: str) -> float:
    """The one float value oscdump decoded for ``address`` (exactly one message, type ``f``)."""
    hits = [(t, v) for a, t, v in got if a == address]
    assert len(hits) == 1 and hits[0][0] == "f" and len(hits[0][1]) == 1, (address, hits)
    return float(hits[0][1][0])


def test_what_the_bridge_sends_decodes_in_oscdump_exactly(osc_sim, tmp_path):
    sim, listen = osc_sim
    dump = OscDump(free_udp_port())
    relay = Relay(("127.0.0.1", sim.osc_port), ("127.0.0.1", dump.port))
    try:
        target = _target(relay.port, listen, tmp_path)
        report = target.apply(PLAN)
        target.close()
        assert report.verified == 4, report
        wait_for(lambda: len(dump.messages()) >= report.round_trips, 5.0, "oscdump to decode every packet")
        got = dump.messages()
    finally:
        relay.close()
        dump.close()
    assert ("/device/track/count", "i", ["128"]) in got
    assert ("/action", "i", ["41743"]) in got
    assert ("/device/track/bank/select", "i", ["1"]) in got
    # Kick's fader: -6.0206 dB before, plan -3 dB -> absolute -9.0206 dB, as a float, in dB.
    assert _sent(got, "/track/1/volume/db") == pytest.approx(-9.0206, abs=1e-5)
    assert _sent(got, "/track/1/pan") == pytest.approx(0.6, abs=1e-6)  # pan 0.2 -> (0.2 + 1) / 2
    # AI EQ is FX 2 on Bass (after the session's ReaComp); band 2 gain = param 5, freq = param 4.
    assert _sent(got, "/track/2/fx/2/fxparam/5/value") == pytest.approx(0.315479, abs=1e-6)  # -4 dB
    assert _sent(got, "/track/2/fx/2/fxparam/4/value") == pytest.approx(0.262964, abs=1e-6)  # 250 Hz
    fx_msgs = [g for g in got if "/fxparam/" in g[0]]
    assert fx_msgs and all(types == "f" for _, types, _ in fx_msgs)
    # nothing to Vox (no AI Comp there) and nothing the plan did not ask for
    assert not any(a.startswith("/track/3/") for a, _, _ in got)
    assert len(got) == report.round_trips


def test_oscsend_commands_and_reaper_feedback_rules(tmp_path):
    """oscsend (liblo) drives the simulator; oscdump is the device receiving its feedback."""
    pattern = tmp_path / "with-siblings.ReaperOSC"
    shipped = Path(__file__).resolve().parents[1] / "reaper_scripts" / "MixBridge.ReaperOSC"
    pattern.write_text(shipped.read_text() + "\nTRACK_VOLUME n/track/@/volume\nNOT_AN_ACTION n/x/@\n")
    dump = OscDump(free_udp_port())
    try:
        with running_sim(PROJECT, tmp_path / "sim", extra_args=(
                "--osc-port", "0", "--osc-feedback", f"127.0.0.1:{dump.port}", "--osc-pattern", str(pattern))) as sim:
            wait_for(lambda: ("/track/1/name", "s", ['"Kick"']) in dump.messages(), 5.0, "initial feedback")
            dump.lines.clear()

            def send(*args: str) -> None:
                subprocess.run(["oscsend", "127.0.0.1", str(sim.osc_port), *args], check=True, timeout=5)
            send("/track/3/volume/db", "f", "-6")
            send("/track/2/fx/2/fxparam/5/value", "i", "1")  # an int: REAPER ignores it
            send("/track/2/fx/2/fxparam/4/value", "f", "0.25")
            send("/track/2/fx/1/bypass", "f", "0")  # 0 = bypassed
            state = wait_for(lambda: (d := sim.control.dump()) and not _track(d, "Bass")["fx"][0]["enabled"] and d,
                             5.0, "the bypass to land")
            assert math.isclose(_track(state, "Vox")["vol_db"], -6.0, abs_tol=1e-6)
            assert math.isclose(_param(state, "Bass", EQ["renamed"], "Freq-Band 2"), 0.25, abs_tol=1e-6)
            assert _param(state, "Bass", EQ["renamed"], "Gain-Band 2") == 0.5  # int ignored: unchanged
            undo = [u["name"] for u in state["undo"]["history"]]
            assert undo == ["OSC: /track/3/volume/db", "OSC: /track/2/fx/2/fxparam/4/value",
                            "OSC: /track/2/fx/1/bypass"]
            wait_for(lambda: any(a == "/track/2/fx/1/bypass" for a, _, _ in dump.messages()), 5.0, "b echo")
            got = dump.messages()
            # no echo of the address just handled, but its sibling is sent
            assert not any(a == "/track/3/volume/db" for a, _, _ in got)
            assert any(a == "/track/3/volume" and t == "f" for a, t, _ in got)
            assert not any(a == "/track/2/fx/2/fxparam/4/value" for a, _, _ in got)
            assert ("/track/2/fx/1/bypass", "f", ["0.000000"]) in got  # b flags are echoed

            # a manual edit (control channel) produces feedback; 41743 resends everything
            dump.lines.clear()
            sim.control.set_track("Kick", "D_VOL", 0.25)
            wait_for(lambda: ("/track/1/volume/db", "f", ["-12.041200"]) in dump.messages(), 5.0, "manual feedback")
            dump.lines.clear()
            send("/action", "i", "41743")
            wait_for(lambda: ("/track/3/volume/db", "f", ["-6.000000"]) in dump.messages(), 5.0, "full refresh")
            stderr = sim.stderr_text()
        assert "FX parameter needs a float argument" in stderr
        assert "unknown action 'NOT_AN_ACTION'" in stderr
    finally:
        dump.close()


def test_write_by_osc_read_by_reapy_and_pending_moves(osc_sim, tmp_path):
    sim, listen = osc_sim
    target = _target(sim.osc_port, listen, tmp_path)
    report = target.apply(PLAN)
    target.close()
    outcome = run_reapy_client(sim, """
        tr = RPR.GetTrack(0, 0)
        result["kick_vol"] = RPR.GetMediaTrackInfo_Value(tr, "D_VOL")
        result["kick_pan"] = RPR.GetMediaTrackInfo_Value(tr, "D_PAN")
        bass = RPR.GetTrack(0, 1)
        result["gain"] = RPR.TrackFX_GetParamNormalized(bass, 1, 4)
        result["shown"] = RPR.TrackFX_GetFormattedParamValue(bass, 1, 4, "", 64)[4]
    """)
    got = expect_result(outcome)
    assert math.isclose(got["kick_vol"], 0.5 * 10 ** (-3 / 20), rel_tol=1e-5)
    assert math.isclose(got["kick_pan"], 0.2, abs_tol=1e-6)
    assert got["shown"].startswith("-4.0")
    why = {(p.track, p.key): p.why for p in report.pending}
    assert why[("Vox", "comp.ratio")].startswith("OSC cannot add FX") and "AI Comp (MixBridge)" in why[("Vox", "comp.ratio")]
    assert "polarity" in why[("Vox", "track.polarity")]
    assert "automation" in why[("Vox", "automation.volume_db")]
    assert "band type" in why[("Bass", "eq.band1_type")]
    state = json.loads((tmp_path / "osc-state.json").read_text())
    assert state["tracks"]["Kick"]["provenance"] == "ai"
    assert set(state["tracks"]["Bass"]["state"]["written"]) == {"eq.band2_gain_db", "eq.band2_freq_hz"}
    assert target.provenance() == {"Kick": "ai", "Bass": "ai"}


def test_hand_moved_parameter_is_the_producers(osc_sim, tmp_path):
    sim, listen = osc_sim
    target = _target(sim.osc_port, listen, tmp_path)
    first = target.apply(PLAN)
    assert len(first.writes) == 4
    again = target.apply(PLAN)
    assert again.writes == () and len(again.unchanged) == 4  # idempotent
    sim.control.set_fx_param("Bass", EQ["renamed"], "Gain-Band 2", normalized=0.7)
    third = target.apply(PLAN)
    target.close()
    assert third.writes == ()
    assert [(o.track, o.key) for o in third.overrides] == [("Bass", "eq.band2_gain_db")]
    assert math.isclose(_param(sim.control.dump(), "Bass", EQ["renamed"], "Gain-Band 2"), 0.7, abs_tol=1e-9)
    assert target.provenance()["Bass"] == "hybrid"


def test_session_bigger_than_the_bank(tmp_path):
    listen = free_udp_port()
    project = {"tracks": [{"name": f"T{i:02d}"} for i in range(1, 21)]}
    plan = {"schema_version": 1, "id": "big", "tracks": [
        {"name": name, "status": "ai", "changes": [{"target": "track", "param": "volume_db", "value": db, "unit": "dB"}]}
        for name, db in (("T03", -1.0), ("T12", -2.0), ("T19", -3.0))]}
    with running_sim(project, tmp_path / "sim",
                     extra_args=("--osc-port", "0", "--osc-feedback", f"127.0.0.1:{listen}")) as sim:
        target = _target(sim.osc_port, listen, tmp_path, bank_size=8)
        report = target.apply(plan)
        target.close()
        state = sim.control.dump()
    assert report.verified == 3 and report.missing_tracks == ()
    vols = {t["name"]: t["vol_db"] for t in state["tracks"]}
    assert math.isclose(vols["T03"], -1.0, abs_tol=1e-5)
    assert math.isclose(vols["T12"], -2.0, abs_tol=1e-5)
    assert math.isclose(vols["T19"], -3.0, abs_tol=1e-5)
    assert all(v == 0.0 for n, v in vols.items() if n not in ("T03", "T12", "T19"))


def test_rate_limit_is_honoured_at_the_receiver(tmp_path):
    listen = free_udp_port()
    project = {"tracks": [{"name": f"T{i:02d}"} for i in range(1, 16)]}
    plan = {"schema_version": 1, "id": "rate", "tracks": [
        {"name": f"T{i:02d}", "status": "ai", "changes": [
            {"target": "track", "param": "volume_db", "value": -1.0, "unit": "dB"},
            {"target": "track", "param": "pan", "value": 0.1, "unit": ""}]} for i in range(1, 16)]}
    rate = 50.0  # 30 writes take ~0.6 s; unthrottled they would leave within milliseconds
    with running_sim(project, tmp_path / "sim",
                     extra_args=("--osc-port", "0", "--osc-feedback", f"127.0.0.1:{listen}")) as sim:
        relay = Relay(("127.0.0.1", sim.osc_port), None)
        try:
            target = _target(relay.port, listen, tmp_path, max_msgs_per_s=rate, burst=1)
            report = target.apply(plan)
            target.close()
        finally:
            relay.close()
    assert len(report.writes) == 30
    stamps = [t for t, _ in relay.arrivals]
    assert len(stamps) == report.round_trips
    # In any window of 200 ms at most rate*0.2 + burst messages arrive (+3 for scheduling jitter).
    for i, start in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t - start < 0.2)
        assert in_window <= rate * 0.2 + 1 + 3, (i, in_window)
    writes = stamps[3:3 + 30]  # count, bank, refresh come first
    assert writes[-1] - writes[0] >= 29 / rate * 0.9


def test_no_feedback_is_daw_unavailable_quickly(tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # takes the packets, never answers
    try:
        target = _target(silent.getsockname()[1], free_udp_port(), tmp_path)
        target.timeout_s = 0.3
        started = time.monotonic()
        with pytest.raises(DawUnavailable) as error:
            target.apply(PLAN)
        assert time.monotonic() - started < 2.0
        assert error.value.code == "E_DAW_UNAVAILABLE"
        plan_path = tmp_path / "plan.json"
        plan_path.write_text(json.dumps(PLAN))
        started = time.monotonic()
        status = main(["apply", str(plan_path), "--target", "osc", "--osc-port", str(silent.getsockname()[1]),
                       "--listen", str(free_udp_port()), "--timeout", "0.3",
                       "--stems", str(tmp_path)], out=open("/dev/null", "w"))
        assert status == 4 and time.monotonic() - started < 2.0
    finally:
        silent.close()


def test_revert_and_ab_over_osc(osc_sim, tmp_path):
    sim, listen = osc_sim
    target = _target(sim.osc_port, listen, tmp_path)
    target.apply(PLAN)
    a = target.ab_toggle(1.5)
    state_a = sim.control.dump()
    b = target.ab_toggle(1.5)
    state_b = sim.control.dump()
    assert (a, b) == ({"state": "A", "compensation_db": 1.5, "overrides": []},
                      {"state": "B", "compensation_db": 0.0, "overrides": []})
    # A: pre-AI values, the compensation on the master only (folder/bus tracks stay right), AI EQ bypassed
    assert math.isclose(_track(state_a, "Kick")["vol_db"], -6.0206, abs_tol=1e-3)
    assert math.isclose(_track(state_a, "Vox")["vol_db"], 0.0, abs_tol=1e-4)
    assert math.isclose(state_a["master"]["vol_db"], 1.5, abs_tol=1e-4)
    assert _track(state_a, "Kick")["pan"] == pytest.approx(0.0, abs=1e-6)
    assert _track(state_a, "Bass")["fx"][1]["enabled"] is False
    # B: exactly the AI state again
    assert math.isclose(_track(state_b, "Kick")["vol_db"], -9.0206, abs_tol=1e-3)
    assert math.isclose(_track(state_b, "Vox")["vol_db"], 0.0, abs_tol=1e-4)
    assert _track(state_b, "Bass")["fx"][1]["enabled"] is True
    assert state_b["master"]["vol"] == pytest.approx(1.0, abs=1e-6)
    report = target.revert()
    target.close()
    after = sim.control.dump()
    assert math.isclose(_track(after, "Kick")["vol_db"], -6.0206, abs_tol=1e-3)
    assert _param(after, "Bass", EQ["renamed"], "Gain-Band 2") == pytest.approx(0.5, abs=1e-6)
    assert _track(after, "Bass")["fx"][1]["enabled"] is False  # OSC cannot remove it: bypassed, and said so
    assert any(p.why.startswith("OSC cannot remove FX") for p in report.pending)
    assert target.provenance() == {"Kick": "untouched", "Bass": "untouched"}  # nothing of the AI left


def test_a_fader_moved_by_hand_on_a_survives_b_over_osc_and_a_pass_on_a_waits_for_b(osc_sim, tmp_path):
    sim, listen = osc_sim
    target = _target(sim.osc_port, listen, tmp_path)
    try:
        target.apply(PLAN)
        target.ab_toggle(1.5)
        report = target.apply(dict(PLAN, id="plan-2"))  # a pass while on A: nothing taken for the producer's
        assert [o.key for o in report.overrides] == []
        sim.control.set_track("Kick", "D_VOL", 0.25)  # the producer, on A
        on_a = sim.control.dump()
        assert _track(on_a, "Kick")["vol"] == pytest.approx(0.25)
        assert _track(on_a, "Kick")["pan"] == pytest.approx(0.0, abs=1e-6), "A still plays the pre-AI pan"
        b = target.ab_toggle(1.5)
        assert b["overrides"] == ["Kick:track.volume_db"]
        state_b = sim.control.dump()
        assert _track(state_b, "Kick")["vol"] == pytest.approx(0.25), "B reset the hand move"
        assert _track(state_b, "Kick")["pan"] == pytest.approx(0.2, abs=1e-4)
        assert state_b["master"]["vol"] == pytest.approx(1.0, abs=1e-6)
        assert target.provenance()["Kick"] == "hybrid"
    finally:
        target.close()
