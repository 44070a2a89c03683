"""`mixbridge watch --target reaper --review` as a separate process, driven the way a producer drives it:
the simulator renders (the bounce script's model) → the pass is held for review → the Lua scripts'
requests ("Accept all pending", "Revert AI pass") arrive through REAPER's ExtState over the web interface
→ the session changes, and the reply lands in ExtState for the script to show.

Real processes (simulator, watcher CLI), real sockets, real files and filesystem events."""
from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bridge.daw.commands import ExtStateCommands
from bridge.synth import StemSpec, write_session
from tests.reaper_sim.fixtures import REPO_ROOT, running_sim

GUIDS = {"Kick": "{BBBBBBBB-0000-4000-8000-000000000001}", "Bass_DI": "{BBBBBBBB-0000-4000-8000-000000000002}",
         "Keys": "{BBBBBBBB-0000-4000-8000-000000000003}"}


def _project(tmp_path: Path) -> dict:
    specs = [StemSpec("Kick", "kick", -18.0, seed=1), StemSpec("Bass_DI", "bass", -19.0, seed=4),
             StemSpec("Keys", "keys", -21.0, pan=0.35, seed=7, problems=("too_hot",))]
    paths = write_session(tmp_path / "sources", specs, duration_s=8.0)
    (tmp_path / "song").mkdir()
    return {"name": "Song.rpp", "path": str(tmp_path / "song" / "Song.rpp"),
            "tracks": [{"name": s.name, "guid": GUIDS[s.name], "vol": 1.0, "selected": True, "source": str(p)}
                       for s, p in zip(specs, paths)]}


def _wait(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # polling a condition inside a deadline, not synchronisation by sleep
    raise AssertionError(f"timed out waiting for {what}")


def _track(sim, name: str) -> dict:
    return next(t for t in sim.control.dump()["tracks"] if t["name"] == name)


def _request(web_port: int, text: str) -> None:
    """What MixBridge_request.lua does: append "<seq> <command>" to ExtState mixbridge/requests."""
    current = ExtStateCommands("127.0.0.1", web_port).get("requests") or ""
    value = ";".join(x for x in (current, text) if x)
    url = f"http://127.0.0.1:{web_port}/_/SET/EXTSTATE/mixbridge/requests/" + urllib.parse.quote(value, safe="")
    with urllib.request.urlopen(url, timeout=5) as reply:
        reply.read()


def test_review_mode_and_script_requests_accept_all_then_revert(tmp_path):
    project = _project(tmp_path)
    render_dir = tmp_path / "song" / "MixBridge stems"
    render_dir.mkdir()
    # --verbose: the simulator logs each web request, which shows when the watcher has started polling.
    with running_sim(project, tmp_path / "sim", extra_args=("--verbose",)) as sim:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "bridge", "watch", str(render_dir), "--target", "reaper",
             "--web-port", str(sim.web_port), "--review", "--jobs", "1"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: "queue.Queue[str]" = queue.Queue()
        seen: list[str] = []
        threading.Thread(target=lambda: [lines.put(x) for x in watcher.stdout], daemon=True).start()

        def line_with(text: str) -> str | None:
            while True:
                try:
                    seen.append(lines.get_nowait())
                except queue.Empty:
                    break
            return next((x for x in seen if text in x), None)

        try:
            _wait(lambda: line_with("watching"), 30, "the watcher to start")
            outcome = sim.control.bounce()
            assert outcome["error"] is None
            pass_line = _wait(lambda: line_with("pass 1: 3 stems"), 60, "pass 1")
            assert "0 moves applied" in pass_line and "waiting for review" in pass_line, pass_line
            # Three stems and no vocal: Kick and Bass_DI sit where their roles put them against each other,
            # so the balance is built on them and the plan pulls the 9 dB hot Keys down (docs/suggestions.md).
            assert all(_track(sim, n)["vol"] == 1.0 and not _track(sim, n)["fx"] for n in GUIDS), \
                "review mode: nothing written before it is accepted"

            # The bridge ignores requests already queued when it first polls (a script run while no
            # bridge was listening must not fire later by surprise), so wait until it has polled twice.
            polls = lambda: sim.stderr_text().count("GET /_/GET/EXTSTATE/mixbridge/requests ")  # noqa: E731
            _wait(lambda: polls() >= 2, 30, "the watcher to poll the script requests")
            _request(sim.web_port, "1 accept_all")
            keys = _wait(lambda: (lambda t: t if t["vol"] < 0.5 else None)(_track(sim, "Keys")), 30,
                         "Accept all pending to pull Keys down")
            assert keys["ext"]["mixbridge/provenance"] == "ai"
            reply = _wait(lambda: ExtStateCommands("127.0.0.1", sim.web_port).get("reply"), 10, "the reply")
            assert reply.startswith("1 accepted"), reply
            undo = [u["name"] for u in sim.control.dump()["undo"]["history"]]
            assert any(name.startswith("MixBridge: AI pass 1") for name in undo), undo

            _request(sim.web_port, "2 revert")
            _wait(lambda: _track(sim, "Keys")["vol"] == 1.0, 30, "Revert AI pass to restore the fader")
            assert all(not [fx for fx in _track(sim, n)["fx"] if "MixBridge" in (fx.get("renamed") or "")]
                       for n in GUIDS), "no AI FX left"
            assert {_track(sim, n)["ext"].get("mixbridge/provenance") for n in GUIDS} == {"manual"}
            _wait(lambda: (ExtStateCommands("127.0.0.1", sim.web_port).get("reply") or "").startswith("2 "),
                  10, "the revert reply")
        except AssertionError:
            line_with("")
            raise AssertionError("watcher output:\n" + "".join(seen)
                                 + "\nrequests: " + repr(ExtStateCommands("127.0.0.1", sim.web_port).get("requests")))
        finally:
            watcher.send_signal(signal.SIGINT)
            try:
                code = watcher.wait(timeout=20)
            except subprocess.TimeoutExpired:
                watcher.kill()
                raise
        assert code == 0, "\n".join(seen)
