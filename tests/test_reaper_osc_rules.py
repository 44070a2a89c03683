"""The simulator's OSC surface behaves as REAPER's ``csurf_osc.cpp`` says, seen from liblo's oscsend/oscdump.

Each test pins one rule read in REAPER's surface code (github justinfrankel/reaper-sdk,
``reaper-plugins/reaper_csurf/csurf_osc.cpp``, 7.78); the function is named in the test.  oscsend is
the device writing, oscdump the device receiving feedback; nothing here uses python-osc.

"Nothing was sent" is never waited for: a mute write on a track nobody else touches is echoed by
REAPER (``b`` flag), so its echo is a marker, and feedback of one surface arrives in order.
"""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reaper_sim.fixtures import running_sim
from tests.test_osc_target import OscDump, free_udp_port, wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("oscdump") and shutil.which("oscsend")),
                                reason="liblo-tools (oscsend, oscdump) not installed")

SHIPPED = Path(__file__).resolve().parents[1] / "reaper_scripts" / "MixBridge.ReaperOSC"
PROJECT = {"tracks": [{"name": "Kick", "vol": 0.5}, {"name": "Bass", "fx": [{"name": "VST: ReaComp (Cockos)"}]},
                      {"name": "Vox"}, {"name": "Marker"}]}


class Device:
    """A simulator with the given pattern file, oscsend to it, oscdump for its feedback."""

    def __init__(self, sim, dump: OscDump) -> None:
        self.sim, self.dump = sim, dump
        self._marker_state = 0

    def send(self, *args: str) -> None:
        subprocess.run(["oscsend", "127.0.0.1", str(self.sim.osc_port), *args], check=True, timeout=5)

    def sent_after(self, action) -> list[tuple[str, str, list[str]]]:
        """Run ``action``, then toggle the marker track's mute; return what REAPER sent before the echo."""
        start = len(self.dump.messages())
        action()
        self._marker_state ^= 1
        self.send("/track/4/mute", "f", str(self._marker_state))
        echo = ("/track/4/mute", "f", [f"{self._marker_state:.6f}"])
        wait_for(lambda: echo in self.dump.messages()[start:], 5.0, "the marker's echo")
        got = self.dump.messages()[start:]
        return got[:got.index(echo)]


@pytest.fixture
def device_for(tmp_path):
    opened = []

    def start(pattern_text: str):
        pattern = tmp_path / f"p{len(opened)}.ReaperOSC"
        pattern.write_text(pattern_text)
        dump = OscDump(free_udp_port())
        context = running_sim(PROJECT, tmp_path / f"sim{len(opened)}", extra_args=(
            "--osc-port", "0", "--osc-feedback", f"127.0.0.1:{dump.port}", "--osc-pattern", str(pattern)))
        sim = context.__enter__()
        opened.append((context, dump))
        wait_for(lambda: ("/track/4/name", "s", ['"Marker"']) in dump.messages(), 5.0, "initial feedback")
        return Device(sim, dump)

    yield start
    for context, dump in opened:
        context.__exit__(None, None, None)
        dump.close()


def test_master_fader_in_db_both_ways_with_feedback(device_for):
    # ProcessTrackAction treats MASTER_ keys like TRACK_ ones (tidx 0): f is dB.  SetSurfaceVolumeImpl
    # passes the master's dB to MASTER_VOLUME's f patterns.  The shipped pattern file has the dB form.
    device = device_for(SHIPPED.read_text())
    assert ("/master/volume/db", "f", ["0.000000"]) in device.dump.messages()
    got = device.sent_after(lambda: device.send("/master/volume/db", "f", "-3"))
    assert math.isclose(device.sim.control.dump()["master"]["vol_db"], -3.0, abs_tol=1e-6)
    assert not any(a == "/master/volume/db" for a, _, _ in got)  # no echo of the address handled
    got = device.sent_after(lambda: device.sim.control.set_track("master", "D_VOL", 0.5))
    assert ("/master/volume/db", "f", ["-6.020600"]) in got  # a change by hand is fed back in dB


def test_b_flags_are_echoed_and_take_exactly_0_or_1(device_for):
    # TriggerMessage: b 1.0 -> set, 0.0 -> clear, any other value -> nothing.  SetSurfaceVal's
    # antifeedback skips only flags other than t and b, so a mute write comes straight back.
    device = device_for(SHIPPED.read_text())
    got = device.sent_after(lambda: device.send("/track/1/mute", "f", "0.5"))
    assert device.sim.control.dump()["tracks"][0]["mute"] is False
    assert not any(a == "/track/1/mute" for a, _, _ in got)
    got = device.sent_after(lambda: device.send("/track/1/mute", "f", "1"))
    assert device.sim.control.dump()["tracks"][0]["mute"] is True
    assert ("/track/1/mute", "f", ["1.000000"]) in got
    got = device.sent_after(lambda: device.send("/track/2/fx/1/bypass", "f", "0"))
    assert ("/track/2/fx/1/bypass", "f", ["0.000000"]) in got  # FX_BYPASS b: echoed too (0 = bypassed)


def test_a_dropped_echo_leaves_the_cache_cleared_so_the_next_report_is_sent(device_for):
    # ProcessMessage clears the incoming address's last value before handling it; the dropped
    # echo does not store one.  A bank select (SetTrackListChange) re-reports the bank through the
    # cache: only that cleared address goes out again, with the value the device itself wrote.
    device = device_for(SHIPPED.read_text())
    got = device.sent_after(lambda: device.send("/track/3/volume/db", "f", "-6"))
    assert not any(a == "/track/3/volume/db" for a, _, _ in got)
    got = device.sent_after(lambda: device.send("/device/track/bank/select", "i", "1"))
    assert got == [("/track/3/volume/db", "f", ["-6.000000"])]
    # the same for a b write that changed nothing: no echo then, but the cache is cleared all the same
    got = device.sent_after(lambda: device.send("/track/1/mute", "f", "0"))
    assert not any(a == "/track/1/mute" for a, _, _ in got)
    got = device.sent_after(lambda: device.send("/device/track/count", "i", "128"))
    assert got == [("/track/1/mute", "f", ["0.000000"])]
    # and a change back to the old value by hand is sent (the cleared entry matches nothing)
    device.sent_after(lambda: device.send("/track/3/volume/db", "f", "-3"))
    got = device.sent_after(lambda: device.sim.control.set_track("Vox", "D_VOL", 1.0))
    assert ("/track/3/volume/db", "f", ["0.000000"]) in got


def test_a_bank_past_the_end_selects_the_last_bank(device_for):
    # ProcessStateAction, _TRACK_BANK_SELECT: bankstart = (B-1)*count, clamped to numtracks-1 and
    # rounded down to a multiple of count.  4 tracks, 3 a bank: bank 5 is bank 2 (track 4 alone).
    device = device_for(SHIPPED.read_text())
    device.send("/device/track/count", "i", "3")
    start = len(device.dump.messages())
    device.send("/device/track/bank/select", "i", "5")
    wait_for(lambda: ("/track/1/name", "s", ['"Marker"']) in device.dump.messages()[start:], 5.0,
             "bank 2's first track")
    device.send("/track/1/volume/db", "f", "-1")
    wait_for(lambda: math.isclose(device.sim.control.dump()["tracks"][3]["vol_db"], -1.0, abs_tol=1e-6),
             5.0, "the write to land on track 4")


def test_one_bad_pattern_makes_reaper_drop_the_whole_file(device_for, tmp_path):
    # LoadCfgContext stops at a pattern with a flag outside nfbtrsi (or not starting with '/') and
    # empties the configuration: REAPER then uses Default.ReaperOSC, not the rest of this file.
    pattern = tmp_path / "bad.ReaperOSC"
    pattern.write_text(SHIPPED.read_text() + "\nTRACK_SOLO x/track/@/solo\n")
    dump = OscDump(free_udp_port())
    try:
        with running_sim(PROJECT, tmp_path / "badsim", extra_args=(
                "--osc-port", "0", "--osc-feedback", f"127.0.0.1:{dump.port}",
                "--osc-pattern", str(pattern))) as sim:
            wait_for(lambda: "rejected as a whole" in sim.stderr_text(), 5.0, "the rejection")
            subprocess.run(["oscsend", "127.0.0.1", str(sim.osc_port), "/track/1/volume/db", "f", "-1"],
                           check=True, timeout=5)
            wait_for(lambda: "no active pattern matches" in sim.stderr_text(), 5.0, "the write to be refused")
            assert sim.control.dump()["tracks"][0]["vol"] == 0.5
            assert dump.messages() == []  # no patterns, no feedback
    finally:
        dump.close()


def test_the_osc_target_reads_a_session_of_exactly_two_banks_once(tmp_path):
    from bridge.daw.osc_target import OscTarget

    listen = free_udp_port()
    project = {"tracks": [{"name": f"T{i:02d}"} for i in range(1, 17)]}
    with running_sim(project, tmp_path / "sim",
                     extra_args=("--osc-port", "0", "--osc-feedback", f"127.0.0.1:{listen}")) as sim:
        target = OscTarget(port=sim.osc_port, listen_port=listen, state_path=tmp_path / "st.json", bank_size=8,
                           settle_s=0.06, timeout_s=3.0)
        try:
            tracks = target.session()
        finally:
            target.close()
    assert sorted(tracks) == list(range(1, 17))
