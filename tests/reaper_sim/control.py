"""The test control channel: line-delimited JSON over TCP on 127.0.0.1.

Each request is one JSON object on one line; each reply is one line,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.

=================  ==================================================  ==========================
``cmd``            fields                                              result
=================  ==================================================  ==========================
``ping``                                                               ``"pong"``
``dump``                                                               project state (JSON)
``calls``          ``reset`` (bool, optional)                          ``{"counts", "log"}``
``set_track``      ``track``, ``key`` (``D_VOL``...), ``value``,       undo point name
                   ``undo_name`` (optional)
``set_fx_param``   ``track``, ``fx``, ``param``, ``normalized`` or     undo point name
                   ``raw``, ``undo_name`` (optional)
``stall``          ``seconds`` (optional; omitted = until release)     ``null``
``release``                                                            ``null``
``drop``                                                               connections dropped
``reapy_state``                                                        ``{"loop_running",
                                                                       "listening_ports",
                                                                       "server_port", ...}``
``load``           ``project`` (project JSON)                          ``null`` (a fresh project)
``activate``                                                           ``reapy_state`` after the
                                                                       producer runs the activation
``kill_server``                                                        ``null`` (server loop dies)
``bounce``                                                             ``{"manifest", "stems",
                                                                       "error"}`` (render.py)
``die``            ``exit_code`` (optional)                            (process exits)
``arm``            ``fault`` (stall/drop/die/kill_server),             the armed fault
                   ``on_function`` or
                   ``at_call``, ``seconds``, ``exit_code``
``disarm``                                                             faults removed
``shutdown``                                                           ``null`` (then exits 0,
                                                                       writing --state-out)
=================  ==================================================  ==========================

``track`` is a 0-based index, ``"master"``, a GUID or a name; ``fx`` an index or a
(display/plug-in) name; ``param`` an index or a parameter name. Manual edits
("by hand", as a producer would in REAPER's UI) run on REAPER's main thread and
add an undo point, but are not counted as RPR calls.

``dump``, ``calls``, manual edits and ``drop`` need REAPER's main thread, so
they wait (and time out) while it is stalled or held by a reapy client
(``with reapy.inside_reaper()``), just as REAPER's UI would.
"""

from __future__ import annotations

import json
import socket
import socketserver
from typing import Any

from .faults import DEFAULT_DIE_EXIT_CODE


class ControlError(RuntimeError):
    """The simulator rejected a control command."""


# --------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------

class ControlServer(socketserver.ThreadingTCPServer):
    """Serves control commands against a ``server.Sim``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, sim: Any, port: int = 0) -> None:
        self.sim = sim
        super().__init__((host, port), _ControlHandler)

    def execute(self, request: dict[str, Any]) -> Any:
        sim = self.sim
        cmd = request.get("cmd")
        if cmd == "ping":
            return "pong"
        if cmd == "dump":
            return sim.dump()
        if cmd == "calls":
            return sim.calls(reset=bool(request.get("reset", False)))
        if cmd == "set_track":
            return sim.set_track_value(request["track"], request["key"], float(request["value"]),
                                       request.get("undo_name"))
        if cmd == "set_fx_param":
            return sim.set_fx_param(request["track"], request["fx"], request["param"],
                                    normalized=request.get("normalized"), raw=request.get("raw"),
                                    undo_name=request.get("undo_name"))
        if cmd == "edit_envelope_point":
            return sim.edit_envelope_point(request["track"], int(request["index"]),
                                           request.get("envelope") or "<VOLENV2", request.get("time_s"),
                                           request.get("value"), bool(request.get("delete")),
                                           request.get("undo_name"))
        if cmd == "stall":
            sim.faults.stall(request.get("seconds"))
            return None
        if cmd == "release":
            sim.faults.release()
            return None
        if cmd == "drop":
            return sim.drop()
        if cmd == "reapy_state":
            return sim.reapy_state()
        if cmd == "load":
            return sim.load(request["project"])
        if cmd == "activate":
            return sim.activate()
        if cmd == "kill_server":
            return sim.kill_server()
        if cmd == "bounce":
            return sim.bounce()
        if cmd == "arm":
            fault = sim.faults.arm(request["fault"], on_function=request.get("on_function"),
                                   at_call=request.get("at_call"), seconds=request.get("seconds"),
                                   exit_code=int(request.get("exit_code", DEFAULT_DIE_EXIT_CODE)))
            return fault.describe()
        if cmd == "disarm":
            return sim.faults.disarm()
        if cmd == "shutdown":
            sim.shutdown()
            return None
        raise ControlError(f"unknown control command {cmd!r}")


class _ControlHandler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        for line in self.rfile:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if request.get("cmd") == "die":
                    # Answer first so the client knows the request arrived.
                    self._send({"ok": True, "result": "dying"})
                    self.server.sim.die_now(int(request.get("exit_code", DEFAULT_DIE_EXIT_CODE)))
                reply = {"ok": True, "result": self.server.execute(request)}
            except Exception as error:  # every failure becomes a reply, never a dead thread
                reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            self._send(reply)

    def _send(self, reply: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(reply, allow_nan=True).encode() + b"\n")
        self.wfile.flush()


# --------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------

class ControlClient:
    """Talks to a simulator's control port; every call has a socket timeout.

    Parameters
    ----------
    port : int
        ``control_port`` from the simulator's READY line.
    timeout_s : float
        Per-request timeout; a stalled simulator makes state commands time out.
    """

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.port = port
        self.timeout_s = timeout_s

    def request(self, cmd: str, **fields: Any) -> Any:
        """Send one command on a fresh connection and return its result.

        Raises
        ------
        ControlError
            The simulator answered with an error.
        TimeoutError
            No answer within ``timeout_s``.
        """
        payload = json.dumps({"cmd": cmd, **fields}).encode() + b"\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout_s) as sock:
            sock.sendall(payload)
            with sock.makefile("rb") as stream:
                line = stream.readline()
        if not line:
            raise ConnectionError(f"simulator closed the control connection during {cmd!r}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise ControlError(reply["error"])
        return reply["result"]

    def ping(self) -> str:
        return self.request("ping")

    def dump(self) -> dict[str, Any]:
        return self.request("dump")

    def calls(self, reset: bool = False) -> dict[str, Any]:
        return self.request("calls", reset=reset)

    def set_track(self, track: int | str, key: str, value: float,
                  undo_name: str | None = None) -> str:
        """Change a track value as a producer would by hand (e.g. ``D_VOL``)."""
        return self.request("set_track", track=track, key=key, value=value, undo_name=undo_name)

    def set_fx_param(self, track: int | str, fx: int | str, param: int | str, *,
                     normalized: float | None = None, raw: float | None = None,
                     undo_name: str | None = None) -> str:
        """Change an FX parameter by hand."""
        return self.request("set_fx_param", track=track, fx=fx, param=param,
                            normalized=normalized, raw=raw, undo_name=undo_name)

    def edit_envelope_point(self, track: int | str, index: int, *, time_s: float | None = None,
                            value: float | None = None, delete: bool = False, envelope: str = "<VOLENV2",
                            undo_name: str | None = None) -> str:
        """Move, change or delete an envelope point by hand (``value``: the stored value)."""
        return self.request("edit_envelope_point", track=track, index=index, envelope=envelope, time_s=time_s,
                            value=value, delete=delete, undo_name=undo_name)

    def stall(self, seconds: float | None = None) -> None:
        self.request("stall", seconds=seconds)

    def release(self) -> None:
        self.request("release")

    def drop(self) -> int:
        return self.request("drop")

    def reapy_state(self) -> dict[str, Any]:
        """reapy's server inside the simulator: loop running, listening ports, published server_port."""
        return self.request("reapy_state")

    def load(self, project: dict[str, Any]) -> None:
        """Replace the project with a fresh one (undo history and counters reset)."""
        self.request("load", project=project)

    def activate(self) -> dict[str, Any]:
        """Run the reapy activation action, as the producer would in REAPER; reapy's state after it."""
        return self.request("activate")

    def kill_server(self) -> None:
        """End reapy's server loop inside REAPER (a stale server: port open and published, nobody serving)."""
        self.request("kill_server")

    def bounce(self) -> dict[str, Any]:
        """Run MixBridge's bounce script (stems of the selected tracks, then the manifest)."""
        return self.request("bounce")

    def die(self, exit_code: int = DEFAULT_DIE_EXIT_CODE) -> None:
        """Kill the simulator now (the caller should then wait for the process)."""
        try:
            self.request("die", exit_code=exit_code)
        except (ConnectionError, OSError):
            pass  # the process may vanish before the reply is read

    def arm(self, fault: str, *, on_function: str | None = None, at_call: int | None = None,
            seconds: float | None = None,
            exit_code: int = DEFAULT_DIE_EXIT_CODE) -> dict[str, Any]:
        """Arm a one-shot fault: ``"stall"``, ``"drop"``, ``"die"`` or ``"kill_server"``."""
        return self.request("arm", fault=fault, on_function=on_function, at_call=at_call,
                            seconds=seconds, exit_code=exit_code)

    def disarm(self) -> int:
        return self.request("disarm")

    def shutdown(self) -> None:
        self.request("shutdown")
