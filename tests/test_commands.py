"""ExtStateCommands against the simulator's web interface (real HTTP on 127.0.0.1)."""
from __future__ import annotations

import socket
import time
import urllib.parse
import urllib.request

from bridge.daw.commands import (MAX_COMMAND_BYTES, Command, ExtStateCommands, parse_extstate_reply, parse_requests,
                                 set_command, unescape_extstate)
from tests.reaper_sim.fixtures import running_sim


def web(sim, command: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{sim.web_port}/_/{command}", timeout=10) as response:
        return response.read().decode()


def script_leaves(sim, requests: str) -> None:
    """What the Lua request script does to the ExtState (SetExtState mixbridge/requests)."""
    web(sim, "SET/EXTSTATE/mixbridge/requests/" + urllib.parse.quote(requests, safe=""))


def test_parsing_helpers():
    assert parse_requests("3 ab; 4 revert;bad;5;x y;6 accept_all") == [
        Command(3, "ab"), Command(4, "revert"), Command(6, "accept_all")]
    assert unescape_extstate(r"a\tb\nc\\d\q") == "a\tb\nc\\d\\q"
    assert parse_extstate_reply("EXTSTATE\tmixbridge\trequests\t1 ab\n", "mixbridge", "requests") == "1 ab"
    assert parse_extstate_reply("EXTSTATE\tother\trequests\t1 ab\n", "mixbridge", "requests") is None


def test_polls_each_request_once_and_replies(tmp_path):
    with running_sim({"tracks": [{"name": "Keys"}]}, tmp_path / "sim") as sim:
        commands = ExtStateCommands(web_port=sim.web_port)
        script_leaves(sim, "1 ab")
        assert commands.poll() == [], "left before the bridge listened: stale, never run"
        assert commands.available
        script_leaves(sim, "1 ab;2 revert;3 accept_all;4 bogus")
        assert commands.poll() == [Command(2, "revert"), Command(3, "accept_all")]
        assert commands.get("reply") == "4 unknown command 'bogus'"
        assert commands.poll() == [], "each sequence number once"
        script_leaves(sim, "3 accept_all;5 ab;5 ab")
        assert commands.poll() == [Command(5, "ab")]
        assert commands.reply(5, "A/B: now A\t(pre-AI); master +1.5 dB / ok \\ done\n")
        assert web(sim, "GET/EXTSTATE/mixbridge/reply") == \
            "EXTSTATE\tmixbridge\treply\t5 A/B: now A (pre-AI); master +1.5 dB / ok \\\\ done\n"
        assert commands.get("reply") == "5 A/B: now A (pre-AI); master +1.5 dB / ok \\ done"
        script_leaves(sim, "1 revert")  # REAPER's persisted counter was reset
        assert commands.poll() == [Command(1, "revert")]


def test_never_raises_when_reaper_is_down():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    commands = ExtStateCommands(web_port=port, timeout_s=0.5)
    started = time.monotonic()
    assert commands.poll() == []
    assert commands.reply(1, "x") is False
    assert not commands.available and commands.last_error
    assert time.monotonic() - started < 3.0


def test_a_long_reply_is_cut_to_fit_reapers_command_buffer_not_mid_escape(tmp_path):
    """REAPER copies each command into ``char want[1024]`` before decoding (csurf_www.cpp): a long reply
    (a revert of many tracks, non-ASCII track names) must arrive whole up to a clean cut."""
    long_text = "revert: " + ", ".join(f"Gitarre Überblendung {i} zurückgesetzt" for i in range(60))
    assert len(set_command("reply", long_text)) <= MAX_COMMAND_BYTES < 1024
    assert set_command("reply", "short") == "SET/EXTSTATE/mixbridge/reply/short"
    with running_sim({"tracks": [{"name": "Keys"}]}, tmp_path / "sim") as sim:
        commands = ExtStateCommands(web_port=sim.web_port)
        assert commands.reply(7, long_text)
        got = commands.get("reply")
        assert got.endswith("…") and long_text.startswith(got[len("7 "):-1]) and len(got) > 200, got
