"""Pytest fixtures and helpers: a real simulator subprocess and reapy client subprocesses.

Use from any test module (no conftest needed)::

    from tests.reaper_sim.fixtures import reaper_sim, sim_project  # noqa: F401

    def test_something(reaper_sim):
        outcome = run_reapy_client(reaper_sim, "result['n'] = RPR.CountTracks(0)")
        assert outcome.result == {"n": 3}

Override ``sim_project`` in a module to change the project the fixture loads.
Every wait here has a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from .control import ControlClient

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Main-loop rate for tests: fast enough that un-batched reapy calls cost ~2 ms.
TEST_HZ = 500.0

DEFAULT_PROJECT: dict[str, Any] = {
    "name": "Song.rpp",
    "tracks": [
        {"name": "Kick", "guid": "{11111111-1111-4111-8111-111111111111}", "vol": 1.0},
        {"name": "Bass", "guid": "{22222222-2222-4222-8222-222222222222}", "vol": 0.5,
         "fx": [{"name": "VST: ReaComp (Cockos)"}]},
        {"name": "Lead Vox", "guid": "{33333333-3333-4333-8333-333333333333}", "pan": -0.25},
    ],
    "markers": [{"pos": 12.0, "name": "Drop"}],
    "regions": [{"start": 0.0, "end": 8.0, "name": "Intro"},
                {"start": 8.0, "end": 24.0, "name": "Verse"}],
}


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class RunningSim:
    """A live simulator process and its ports (from the READY line)."""

    process: subprocess.Popen
    web_port: int
    server_port: int
    control_port: int
    stderr_path: Path
    state_out: Path | None
    stdout_pump: threading.Thread | None = None
    #: UDP port of the OSC surface (``--osc-port``), None when it was not started.
    osc_port: int | None = None

    @property
    def control(self) -> ControlClient:
        return ControlClient(self.control_port, timeout_s=5.0)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_exit(self, timeout_s: float) -> int:
        """Exit status, waiting at most ``timeout_s``."""
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """Graceful shutdown (writes --state-out); kill if it does not exit in time."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                ControlClient(self.control_port, timeout_s=1.0).shutdown()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self.stdout_pump is not None:
            self.stdout_pump.join(timeout_s)  # EOF follows the exit
        self.process.stdout.close()
        return self.process.returncode


def _read_ready_line(process: subprocess.Popen,
                     timeout_s: float) -> tuple[str, threading.Thread]:
    # A reader thread turns the blocking pipe into a queue we can wait on with a deadline;
    # it keeps draining stdout afterwards so the child never blocks on a full pipe.
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for raw in process.stdout:
            lines.put(raw.decode(errors="replace"))
        lines.put(None)

    pump_thread = threading.Thread(target=pump, name="reaper-sim-stdout", daemon=True)
    pump_thread.start()
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"simulator printed no READY line within {timeout_s} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError("simulator exited before READY")
        if line.startswith("READY "):
            return line, pump_thread


@contextlib.contextmanager
def running_sim(project: dict[str, Any] | Path, workdir: Path, *, hz: float = TEST_HZ,
                ready_timeout_s: float = 15.0, extra_args: tuple[str, ...] = (),
                state_out: bool = True) -> Iterator[RunningSim]:
    """Start ``python -m tests.reaper_sim`` and yield it once READY; stop it afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(project, Path):
        project_path = project
    else:
        project_path = workdir / "project.json"
        project_path.write_text(json.dumps(project))
    state_path = workdir / "state_out.json" if state_out else None
    stderr_path = workdir / "sim_stderr.txt"
    command = [sys.executable, "-m", "tests.reaper_sim", "--project", str(project_path),
               "--hz", str(hz), *extra_args]
    if state_path is not None:
        command += ["--state-out", str(state_path)]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=_child_env(),
                                   stdout=subprocess.PIPE, stderr=stderr)
    sim = None
    try:
        try:
            line, pump_thread = _read_ready_line(process, ready_timeout_s)
        except (TimeoutError, RuntimeError) as error:
            process.kill()
            process.wait(timeout=5)
            process.stdout.close()
            raise RuntimeError(f"{error}; stderr:\n{stderr_path.read_text()}") from None
        fields = dict(item.split("=", 1) for item in line.split()[1:])
        sim = RunningSim(process=process, web_port=int(fields["web_port"]),
                         server_port=int(fields["server_port"]),
                         control_port=int(fields["control_port"]),
                         stderr_path=stderr_path, state_out=state_path,
                         stdout_pump=pump_thread,
                         osc_port=int(fields["osc_port"]) if "osc_port" in fields else None)
        yield sim
    finally:
        if sim is not None:
            sim.stop()


@dataclass
class ClientOutcome:
    """What a reapy client subprocess did."""

    returncode: int | None
    result: dict[str, Any] | None
    stdout: str
    stderr: str
    timed_out: bool


_CLIENT_PRELUDE = """\
import json, sys
from tests.reaper_sim.client import call_with_deadline, connect_reapy
from tests.reaper_sim.control import ControlClient
reapy = connect_reapy({web_port})
RPR = reapy.reascript_api
control = ControlClient({control_port})
result = {{}}
"""
_CLIENT_EPILOGUE = """
print("RESULT " + json.dumps(result, default=repr), flush=True)
"""


def run_reapy_client(sim: RunningSim, body: str, timeout_s: float = 20.0) -> ClientOutcome:
    """Run ``body`` in a fresh Python process holding a stock reapy client.

    ``body`` sees ``reapy``, ``RPR`` (``reapy.reascript_api``), ``control`` (a
    :class:`ControlClient`), ``call_with_deadline`` and a dict ``result`` that is
    sent back as JSON. The subprocess is killed at ``timeout_s``: reapy's client
    has no timeouts of its own.
    """
    script = (_CLIENT_PRELUDE.format(web_port=sim.web_port, control_port=sim.control_port)
              + textwrap.dedent(body) + _CLIENT_EPILOGUE)
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=_child_env(),
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as expired:
        return ClientOutcome(None, None, _text(expired.stdout), _text(expired.stderr), True)
    stdout = _text(done.stdout)
    result = None
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return ClientOutcome(done.returncode, result, stdout, _text(done.stderr), False)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def expect_result(outcome: ClientOutcome) -> dict[str, Any]:
    """The client's ``result``, or a failure that shows what the client printed."""
    if outcome.timed_out or outcome.returncode != 0 or outcome.result is None:
        pytest.fail(f"reapy client failed (timed_out={outcome.timed_out}, "
                    f"rc={outcome.returncode}):\n{outcome.stdout}\n{outcome.stderr}")
    return outcome.result


@pytest.fixture
def sim_project() -> dict[str, Any]:
    """Project the ``reaper_sim`` fixture loads; override to change it."""
    return copy.deepcopy(DEFAULT_PROJECT)


@pytest.fixture
def reaper_sim(tmp_path: Path, sim_project: dict[str, Any]) -> Iterator[RunningSim]:
    """A simulator subprocess, READY, stopped (or killed) at teardown."""
    with running_sim(sim_project, tmp_path / "reaper_sim") as sim:
        yield sim
