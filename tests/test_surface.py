"""The control-surface server on real loopback UDP, with independent OSC peers (python-osc, liblo's
oscsend/oscdump) and, end to end, the REAPER simulator."""
from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.control import server as srv
from bridge.control.controller import SessionController
from bridge.control.server import SurfaceServer
from bridge.daw.plan_target import PlanTarget
from bridge.errors import BridgeError
from tests.test_review import PLAN
from tests.conftest import wait_until as wait_for

OSCSEND, OSCDUMP = shutil.which("oscsend"), shutil.which("oscdump")
needs_liblo = pytest.mark.skipif(not (OSCSEND and OSCDUMP), reason="liblo-tools (oscsend, oscdump) not installed")
TRACK_INFO = {"Kick": {"integrated_lufs": -14.3}, "Vox": {"integrated_lufs": -18.25}, "Gtr": {"integrated_lufs": None}}



def osc(address, *args):
    """Encode with python-osc (an independent implementation)."""
    b = OscMessageBuilder(address=address)
    for v in args:
        b.add_arg(v)
    return b.build().dgram


class Peer:
    """A surface: one UDP socket that sends with python-osc and collects every decoded message."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.messages: list[tuple[float, str, list]] = []
        self.datagrams: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            items = [m for m in OscBundle(data)] if data.startswith(b"#bundle") else [OscMessage(data)]
            with self._lock:
                self.datagrams.append((now, len(items)))
                self.messages += [(now, m.address, list(m.params)) for m in items]

    def send(self, server, data):
        self.sock.sendto(data, server.address)

    def values(self, address):
        with self._lock:
            return [p for _, a, p in self.messages if a == address]

    def last(self, address):
        v = self.values(address)
        return v[-1] if v else None

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def surface(tmp_path):
    target = PlanTarget(tmp_path / "state")
    controller = SessionController(target, copy.deepcopy(PLAN), TRACK_INFO)
    server = SurfaceServer(controller, port=0).start()
    peers: list[Peer] = []

    def peer(host="127.0.0.1"):
        p = Peer(host)
        peers.append(p)
        return p
    yield server, controller, target, peer
    for p in peers:
        p.close()
    server.stop()


def ping_answered(server, peer):
    before = len(peer.values("/mixbridge/pong"))
    peer.send(server, osc("/mixbridge/ping"))
    wait_for(lambda: len(peer.values("/mixbridge/pong")) > before, what="pong")
    return True


# --- the address space with a python-osc peer ----------------------------------------------------------------

def test_subscribe_gets_a_full_dump_and_feedback_on_every_change(surface):
    server, controller, target, peer = surface
    p = peer()
    p.send(server, osc("/mixbridge/subscribe", p.port))
    wait_for(lambda: p.last("/mixbridge/status"), what="the dump")
    assert p.last("/mixbridge/tracks/count") == [4]
    assert [p.last(f"/mixbridge/track/{n}/name") for n in range(1, 5)] == [["Kick"], ["Vox"], ["Gtr"], ["Bass"]]
    assert p.last("/mixbridge/track/1/lufs")[0] == pytest.approx(-14.3, abs=1e-4)
    assert p.last("/mixbridge/track/3/lufs") == [-70.0]
    assert p.last("/mixbridge/track/1/finding") == ["Kick is 6 LU too loud"]
    assert p.last("/mixbridge/track/3/pending") == [2] and p.last("/mixbridge/pending") == [5]
    assert p.last("/mixbridge/ab") == ["B"] and p.last("/mixbridge/amount") == [1.0]
    p.send(server, osc("/mixbridge/accept/index", 3, 2))  # Gtr's second suggestion: width
    wait_for(lambda: p.last("/mixbridge/track/3/pending") == [1], what="pending count")
    wait_for(lambda: p.last("/mixbridge/track/3/provenance") == ["ai"], what="provenance")
    assert p.last("/mixbridge/status") == ["accepted Gtr/width/1 (1 writes)"]
    assert target.applied_plan()["tracks"][2]["changes"] == [PLAN["tracks"][2]["changes"][1]]
    p.send(server, osc("/mixbridge/ab", 1))
    wait_for(lambda: p.last("/mixbridge/ab") == ["A"], what="A/B")
    assert p.last("/mixbridge/ab/compensation_db") == [-2.0]


def test_lists_and_bulk_decisions(surface):
    server, controller, target, peer = surface
    p = peer()
    p.send(server, osc("/mixbridge/track/suggestions/list", 1))
    wait_for(lambda: p.values("/mixbridge/suggestions/end"), what="end of list")
    assert p.values("/mixbridge/suggestion") == [
        ["Kick/too_loud/0", 1, 1, "too_loud", "pending", "turn Kick down"],
        ["Kick/masking/1", 1, 2, "masking", "pending", "cut Kick at 110 Hz"]]
    p.send(server, osc("/mixbridge/track/accept", 1.0, 1.0))  # a float-only surface button
    p.send(server, osc("/mixbridge/reject", "Vox/section_level/0"))
    p.send(server, osc("/mixbridge/accept/all", 0))  # button release: ignored
    wait_for(lambda: controller.states()["Vox/section_level/0"] == "rejected", what="reject")
    assert controller.accepted() == ("Kick/too_loud/0", "Kick/masking/1")
    p.send(server, osc("/mixbridge/accept/all"))
    wait_for(lambda: len(controller.accepted()) == 4, what="accept all")
    assert server.counters["ignored_release"] == 1
    p.send(server, osc("/mixbridge/revert", True))
    wait_for(lambda: controller.accepted() == (), what="revert")
    assert set(target.provenance().values()) == {"untouched"}


def test_an_error_from_the_target_becomes_the_status_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    from bridge.daw.targets import make_target
    from bridge.settings import Connection, Settings

    controller = SessionController(make_target(Settings(target="reaper", connection=Connection(web_port=dead_port, timeout_s=1.0))), copy.deepcopy(PLAN))
    with SurfaceServer(controller, port=0) as server:
        p = Peer()
        try:
            p.send(server, osc("/mixbridge/subscribe", p.port))
            p.send(server, osc("/mixbridge/accept", "Kick/masking/1"))
            status = wait_for(lambda: (p.last("/mixbridge/status") or [""])[0].startswith("E_DAW_UNAVAILABLE")
                              and p.last("/mixbridge/status"), timeout_s=15, what="error status")
            assert "accept failed" in status[0]
            assert controller.accepted() == (), "an accept that did not land is not recorded"
            assert ping_answered(server, p)
        finally:
            p.close()


# --- liblo peers ---------------------------------------------------------------------------------------------

@needs_liblo
def test_a_command_sent_with_oscsend_works(surface):
    server, controller, target, peer = surface
    host, port = server.address
    subprocess.run([OSCSEND, host, str(port), "/mixbridge/accept", "s", "Kick/masking/1"], check=True, timeout=10)
    wait_for(lambda: controller.accepted() == ("Kick/masking/1",), what="accept via oscsend")
    subprocess.run([OSCSEND, host, str(port), "/mixbridge/accept/index", "ii", "2", "1"], check=True, timeout=10)
    subprocess.run([OSCSEND, host, str(port), "/mixbridge/amount", "f", "0.25"], check=True, timeout=10)
    wait_for(lambda: controller.amount == 0.25 and len(controller.accepted()) == 2, what="index + amount")
    assert target.provenance() == {"Kick": "ai", "Vox": "ai", "Gtr": "untouched", "Bass": "untouched"}


@needs_liblo
def test_an_oscdump_subscriber_receives_the_feedback_decoded_exactly(surface, tmp_path):
    server, controller, target, peer = surface
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dump_port = s.getsockname()[1]
    out_path = tmp_path / "oscdump.txt"
    with open(out_path, "wb") as out:
        dump = subprocess.Popen([OSCDUMP, "-L", str(dump_port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        p = peer()
        # oscdump is up once it receives something: probe it until a probe shows.
        wait_for(lambda: p.sock.sendto(osc("/probe"), ("127.0.0.1", dump_port)) and "/probe" in out_path.read_text(),
                 what="oscdump listening")
        p.send(server, osc("/mixbridge/subscribe", dump_port))
        p.send(server, osc("/mixbridge/accept", "Kick/masking/1"))
        wait_for(lambda: '/mixbridge/status s "accepted Kick/masking/1 (4 writes)"' in out_path.read_text(),
                 what="status in oscdump")
        lines = [line.split(" ", 1)[1] for line in out_path.read_text().splitlines() if " /mixbridge/" in line]
        for expected in ('/mixbridge/tracks/count i 4', '/mixbridge/track/1/name s "Kick"',
                         '/mixbridge/track/1/lufs f -14.300000', '/mixbridge/track/2/lufs f -18.200001',
                         '/mixbridge/track/3/lufs f -70.000000', '/mixbridge/track/1/finding s "Kick is 6 LU too loud"',
                         '/mixbridge/track/1/provenance s "ai"', '/mixbridge/track/1/pending i 1',
                         '/mixbridge/pending i 4', '/mixbridge/ab s "B"', '/mixbridge/amount f 1.000000'):
            assert expected in lines, (expected, lines)
    finally:
        dump.terminate()
        dump.wait(5)


# --- bad input -------------------------------------------------------------------------------------------------

def _bundle(*elements, depth_tag=b"#bundle\x00"):
    out = depth_tag + struct.pack(">Q", 1)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


BAD = {
    "malformed": [b"garbage", b"/mixbridge/ping\x00", b"\x00\x00\x00\x00", b"/mix\x00\x00\x00\x00,s\x00\x00",
                  _bundle(b"\x00\x00\x00\x01")],
    "unknown_address": [osc("/mixbridge/format_disk", "/"), osc("/mixbridge/*"), osc("/track/1/volume", 0.5)],
    "bad_type": [osc("/mixbridge/accept", 3), osc("/mixbridge/amount", "1"), osc("/mixbridge/track/accept", 1.5),
                 b"/mixbridge/accept\x00\x00\x00,b\x00\x00\x00\x00\x00\x04abcd"],
    "bad_arg_count": [osc("/mixbridge/accept"), osc("/mixbridge/accept/index", 1),
                      osc("/mixbridge/amount", 0.5, 0.5, 0.5)],
    "out_of_range": [osc("/mixbridge/amount", 1.5), osc("/mixbridge/amount", float("nan")),
                     osc("/mixbridge/track/accept", 0), osc("/mixbridge/subscribe", 70000),
                     osc("/mixbridge/accept", "bad\nid")],
    "string_too_long": [osc("/mixbridge/accept", "x" * 200)],
    "oversized": [osc("/mixbridge/accept", "y" * 3000)],
    "bundle_too_large": [_bundle(*[osc("/mixbridge/ping")] * 40)],
    "bundle_too_deep": [_bundle(_bundle(_bundle(osc("/mixbridge/ping"))))],
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_kind_of_bad_message_is_counted_and_never_reaches_the_target(surface, kind):
    server, controller, target, peer = surface
    p = peer()
    for packet in BAD[kind]:
        p.send(server, packet)
    wait_for(lambda: server.counters[kind] == len(BAD[kind]), what=f"{kind} counted")
    assert ping_answered(server, p)
    counters = server.counters
    assert counters["refused"] == len(BAD[kind]) and counters["commands"] == 0
    assert target.applied_plan() is None and controller.accepted() == ()


def test_the_allow_list_drops_and_counts_other_hosts(tmp_path):
    controller = SessionController(PlanTarget(None), copy.deepcopy(PLAN))
    with SurfaceServer(controller, bind="127.0.0.1", port=0, allow=["127.0.0.2"]) as server:
        stranger, friend = Peer("127.0.0.1"), Peer("127.0.0.2")
        try:
            stranger.send(server, osc("/mixbridge/accept/all"))
            stranger.send(server, osc("/mixbridge/ping"))
            wait_for(lambda: server.counters["dropped_not_allowed"] == 2, what="drops counted")
            assert ping_answered(server, friend)
            assert stranger.values("/mixbridge/pong") == [] and controller.accepted() == ()
        finally:
            stranger.close()
            friend.close()


def test_a_lan_bind_without_an_allow_list_is_refused():
    with pytest.raises(BridgeError) as caught:
        SurfaceServer(SessionController(PlanTarget(None), PLAN), bind="0.0.0.0", port=0)
    assert caught.value.code == "E_SURFACE_EXPOSED"


# --- throttle and coalescing ---------------------------------------------------------------------------------

def test_a_burst_of_1000_changes_is_throttled_and_the_last_value_wins(surface):
    server, controller, target, peer = surface
    p = peer()
    p.send(server, osc("/mixbridge/subscribe", p.port))
    wait_for(lambda: p.last("/mixbridge/status"), what="the dump")
    wait_for(lambda: not server._subscribers[("127.0.0.1", p.port)], what="dump flushed")
    start = time.monotonic()
    before = len(p.messages)
    for i in range(1, 1001):
        controller.run("set_amount", (i / 1000,))
    burst_s = time.monotonic() - start
    wait_for(lambda: p.last("/mixbridge/amount") == [1.0], what="the last value")
    wait_for(lambda: not server._subscribers[("127.0.0.1", p.port)], what="outbox drained")
    elapsed_s = time.monotonic() - start
    ticks = elapsed_s / srv.FLUSH_INTERVAL_S + 2
    amounts = p.values("/mixbridge/amount")
    received = len(p.messages) - before
    assert len(amounts) <= ticks, f"{len(amounts)} amount messages in {elapsed_s:.3f} s ({burst_s:.3f} s burst)"
    assert received <= srv.MAX_MESSAGES_PER_FLUSH * ticks
    assert received < 1000 * 2, "2000 changes (amount + status) were coalesced"
    assert all(n <= srv.MAX_MESSAGES_PER_FLUSH for _, n in p.datagrams)
    assert p.last("/mixbridge/status") == ["amount 1 noted; no stems to replan (started with --plan)"]


# --- fuzz ------------------------------------------------------------------------------------------------------

def _fuzz_packets(rng: random.Random, n: int):
    valid = [osc("/mixbridge/ping"), osc("/mixbridge/accept", "Kick/masking/1"), osc("/mixbridge/amount", 0.5),
             osc("/mixbridge/accept/index", 1, 2), osc("/mixbridge/subscribe", 9999), osc("/mixbridge/dump"),
             _bundle(osc("/mixbridge/ping"), osc("/mixbridge/reject/all"))]
    for i in range(n):
        kind = i % 5
        if kind == 0:
            yield bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
        elif kind == 1:  # flipped bytes in a valid packet
            p = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                p[rng.randrange(len(p))] = rng.getrandbits(8)
            yield bytes(p)
        elif kind == 2:  # cut short or padded out
            p = rng.choice(valid)
            yield p[:rng.randrange(len(p))] if rng.random() < 0.5 else p + bytes(rng.randrange(1, 9))
        elif kind == 3:  # plausible addresses with random type tags and payloads
            tags = "".join(rng.choice("ifsdhTFNbcm[]") for _ in range(rng.randrange(0, 6)))
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
            addr = rng.choice(["/mixbridge/accept", "/mixbridge/amount", "/mixbridge/track/accept", "/mixbridge/x"])
            yield osc(addr)[:-4] + (("," + tags).encode() + b"\x00" * (4 - (len(tags) + 1) % 4)) + body
        else:  # bundles with lying sizes
            inner = rng.choice(valid)
            yield b"#bundle\x00" + bytes(8) + struct.pack(">i", rng.randrange(-5, 200)) + inner


def test_fuzz_ten_thousand_bad_packets_and_the_server_still_answers(surface):
    server, controller, target, peer = surface
    p = peer()
    rng = random.Random(20261121)
    started = time.monotonic()
    sent = 0
    for packet in _fuzz_packets(rng, 10_000):
        p.send(server, packet[:60000])
        sent += 1
        if sent % 200 == 0:  # keep within the socket buffer: wait for the server to catch up
            wait_for(lambda: server.counters["packets"] >= sent, timeout_s=10, what="server keeps up")
    wait_for(lambda: server.counters["packets"] == sent, timeout_s=10, what="all packets seen")
    assert time.monotonic() - started < 30
    assert all(t.is_alive() for t in server._threads)
    assert ping_answered(server, p)
    counters = server.counters
    assert counters["internal_errors"] == 0
    assert counters["refused"] > 5000, counters


# --- end to end with the REAPER simulator --------------------------------------------------------------------

E2E_PLAN = {
    "schema_version": 1, "id": "e2eplan000000001", "analysis_id": "a", "settings": {"amount": 1.0},
    "mix": {"findings": [], "estimated_ai_delta_lu": -2.5},
    "tracks": [
        {"name": "Keys", "status": "ai", "findings": [], "automation": [], "changes": [
            {"target": "track", "param": "volume_db", "value": -6.0, "unit": "dB", "reason": "too_loud",
             "suggestion": "Keys/too_loud/0"},
            {"target": "eq", "param": "band2_type", "value": "peak", "unit": "", "reason": "masking",
             "suggestion": "Keys/masking/1"},
            {"target": "eq", "param": "band2_freq_hz", "value": 400.0, "unit": "Hz", "reason": "masking",
             "suggestion": "Keys/masking/1"},
            {"target": "eq", "param": "band2_gain_db", "value": -3.0, "unit": "dB", "reason": "masking",
             "suggestion": "Keys/masking/1"},
            {"target": "eq", "param": "band2_q", "value": 1.4, "unit": "", "reason": "masking",
             "suggestion": "Keys/masking/1"}],
         "suggestions": [{"id": "Keys/too_loud/0", "code": "too_loud", "summary": "Keys down 6 dB", "has_moves": True},
                         {"id": "Keys/masking/1", "code": "masking", "summary": "cut 400 Hz", "has_moves": True}]},
        {"name": "Guitar", "status": "ai", "findings": [], "automation": [], "changes": [
            {"target": "track", "param": "width", "value": 0.5, "unit": "", "reason": "width",
             "suggestion": "Guitar/width/0"}],
         "suggestions": [{"id": "Guitar/width/0", "code": "width", "summary": "narrow", "has_moves": True}]},
        {"name": "Bass", "status": "untouched", "findings": [], "changes": [], "automation": [], "suggestions": []},
    ],
}
E2E_PROJECT = {"tracks": [{"name": n} for n in ("Keys", "Guitar", "Bass")]}


def start_surface_process(tmp_path, *args):
    """``python -m bridge surface ...`` as its own process; returns it and the port from its one line."""
    from tests.reaper_sim.fixtures import REPO_ROOT

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "surface", "--port", "0", *args], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=open(tmp_path / "surface_stderr.txt", "wb"),
                            text=True)
    line = proc.stdout.readline()  # bounded: the process prints it right after binding, or exits
    if "listening on udp://" not in line:
        proc.kill()
        raise AssertionError(f"no listening line: {line!r} {(tmp_path / 'surface_stderr.txt').read_text()}")
    port = int(line.split("udp://", 1)[1].split()[0].rsplit(":", 1)[1])
    return proc, port


def test_end_to_end_a_surface_accepts_one_suggestion_and_only_it_lands_tagged(tmp_path):
    from tests.reaper_sim.fixtures import running_sim

    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(E2E_PLAN))
    with running_sim(E2E_PROJECT, tmp_path / "sim") as sim:
        before = sim.control.dump()
        proc, port = start_surface_process(tmp_path, "--plan", str(plan_path), "--target", "reaper",
                                           "--web-port", str(sim.web_port))
        p = Peer()
        try:
            server = type("S", (), {"address": ("127.0.0.1", port)})
            p.send(server, osc("/mixbridge/subscribe", p.port))
            p.send(server, osc("/mixbridge/accept", "Keys/too_loud/0"))
            wait_for(lambda: p.last("/mixbridge/status") and p.last("/mixbridge/status")[0].startswith("accepted"),
                     timeout_s=30, what="accepted status")
            wait_for(lambda: p.last("/mixbridge/track/1/provenance") == ["ai"], what="provenance feedback")
            state = sim.control.dump()
            keys, guitar, bass = state["tracks"]
            assert keys["vol"] == pytest.approx(10 ** (-6 / 20), rel=1e-6)
            assert keys["ext"].get("mixbridge/provenance") == "ai"
            assert json.loads(keys["ext"]["mixbridge/state"])["written"].keys() == {"track.volume_db"}
            assert not any(f.get("renamed") == "AI EQ (MixBridge)" for f in keys["fx"]), "the EQ was not accepted"
            assert guitar["width"] == before["tracks"][1]["width"] and guitar["fx"] == before["tracks"][1]["fx"]
            assert guitar["ext"].get("mixbridge/provenance") != "ai" and bass["ext"].get("mixbridge/provenance") != "ai"
            for t_before, t_after in zip(before["tracks"][1:], state["tracks"][1:]):
                assert {k: v for k, v in t_after.items() if k != "ext"} == {k: v for k, v in t_before.items() if k != "ext"}
        finally:
            p.close()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0 and "stopped" in out


# --- the shipped layout and the docs follow the one table ------------------------------------------------------

def test_the_open_stage_control_layout_and_the_docs_use_only_addresses_from_the_table():
    from bridge.control.addresses import BY_ADDRESS, FEEDBACK, validate
    from bridge.control.osc import OscMessage as Decoded
    from tests.reaper_sim.fixtures import REPO_ROOT

    session = json.loads((REPO_ROOT / "reaper_scripts/surfaces/mixbridge.json").read_text())
    assert session["createdWith"] == "Open Stage Control" and session["type"] == "session"
    feedback = {a for a, _, _ in FEEDBACK}
    for w in session["content"]["widgets"]:
        generic = "/".join("N" if part.isdigit() else part for part in w["address"].split("/"))
        if w["type"] == "text":
            assert generic in feedback, w
        else:
            args = list(w["preArgs"]) + ([w["on"]] if w["type"] == "button" else [0.5])
            types = "".join("i" if isinstance(v, int) else "f" for v in args)
            assert w["address"] in BY_ADDRESS and validate(Decoded(w["address"], types, tuple(args))), w
    docs = (REPO_ROOT / "docs/osc.md").read_text()
    assert all(f"`{a}`" in docs for a in list(BY_ADDRESS) + sorted(feedback))
