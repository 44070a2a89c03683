# @description MixBridge: Start bridge server (reapy's distant API, bound to 127.0.0.1 only)
# @version 0.2.0
# @author MixBridge
# @about
#   A drop-in replacement for reapy's own activate_reapy_server.py. It starts the same reapy
#   server, publishes its port in the same ext-state key ("reapy"/"server_port"), so a stock
#   reapy client (and MixBridge) connects exactly as before. Two differences:
#
#   * it listens on 127.0.0.1 only. reapy's server executes any Python function a client names,
#     and reapy binds 0.0.0.0, which exposes that to the whole network; this script does not;
#   * it first closes any reapy server still open in REAPER's Python (its own earlier run, or
#     reapy's activate_reapy_server.py). reapy 0.10's server stops for good when a connection is
#     lost during a MixBridge pass, but its socket stays open and holds the port (MixBridge then
#     says "a stale server"): running this action again frees the port and starts a new server,
#     no REAPER restart needed.
#
#   Install: Actions > Show action list > New action > Load ReaScript..., pick this file. Then
#   point reapy's auto-activation at it (docs/reaper-setup.md, step 4), or run it once per session.
"""MixBridge's reapy server activation, loopback only (a Python ReaScript, run inside REAPER)."""

import gc
import sys
import types

import reapy
from reapy.tools.network import Server

LOOPBACK = "127.0.0.1"
#: Shared by every run of this script in REAPER's one Python: which server is the current one.
REGISTRY = "__mixbridge_bridge_server__"


class LoopbackServer(Server):
    """reapy's server with its listening address forced to loopback."""

    def bind(self, address):
        _, port = address
        return super().bind((LOOPBACK, port))


SERVER = None


def _registry():
    registry = sys.modules.get(REGISTRY)
    if registry is None:
        registry = types.ModuleType(REGISTRY)
        registry.generation = 0
        sys.modules[REGISTRY] = registry
    return registry


def _retire(server):
    """Make a server inert (a loop still calling it does nothing) and close its sockets."""
    server.accept = lambda *args, **kwargs: None
    server.get_requests = lambda: {}
    server.process_requests = lambda requests: {}
    server.send_results = lambda results: None
    for connection in list(getattr(server, "connections", {}).values()):
        try:
            connection.close()
        except OSError:
            pass
    server.connections = {}
    try:
        server.close()
    except OSError:
        pass


def close_leftovers():
    """Close every reapy server still open in this Python; returns how many.

    A server whose loop died (a connection lost during a HOLD) is still referenced by the dead
    loop's script, so it is found among the live objects; one whose loop still runs is made inert
    first, so that loop keeps deferring harmlessly instead of failing on a closed socket.
    """
    closed = 0
    for obj in gc.get_objects():
        try:
            if isinstance(obj, Server) and obj._socket.fileno() >= 0:
                _retire(obj)
                closed += 1
        except Exception:  # an object half torn down: not ours to judge
            continue
    return closed


def serve_once_then_defer(generation):
    # One round of reapy's server work per REAPER defer tick, exactly like reapy's own loop;
    # a loop of an earlier run stops once a newer run took over.
    if _registry().generation != generation or SERVER is None:
        return
    SERVER.accept()
    SERVER.send_results(SERVER.process_requests(SERVER.get_requests()))
    reapy.defer(serve_once_then_defer, generation)


def main(port=None):
    """Close leftover servers, start one on reapy's port (2306), publish it, keep it running via defer."""
    global SERVER
    port = reapy.config.REAPY_SERVER_PORT if port is None else port
    registry = _registry()
    registry.generation += 1
    closed = close_leftovers()
    SERVER = LoopbackServer(port)
    registry.server = SERVER
    reapy.set_ext_state("reapy", "server_port", port)
    reapy.at_exit(reapy.delete_ext_state, "reapy", "server_port")
    if closed:
        reapy.print(f"MixBridge: closed {closed} stopped reapy server(s); the bridge server runs on port {port}\n")
    serve_once_then_defer(registry.generation)
    return port


if __name__ == "__main__":
    main()
