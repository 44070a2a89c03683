# @description MixBridge: Start bridge server (reapy's distant API, bound to 127.0.0.1 only)
# @version 0.1.0
# @author MixBridge
# @about
#   A drop-in replacement for reapy's own activate_reapy_server.py. It starts the same reapy
#   server, publishes its port in the same ext-state key ("reapy"/"server_port"), so a stock
#   reapy client (and MixBridge) connects exactly as before. The one difference: it listens on
#   127.0.0.1 only. reapy's server executes any Python function a client names, and reapy binds
#   0.0.0.0, which exposes that to the whole network; this script does not.
#
#   Install: Actions > Show action list > New action > Load ReaScript..., pick this file. Then
#   point reapy's auto-activation at it (docs/reaper-setup.md, step 4), or run it once per session.
"""MixBridge's reapy server activation, loopback only (a Python ReaScript, run inside REAPER)."""

import reapy
from reapy.tools.network import Server

LOOPBACK = "127.0.0.1"


class LoopbackServer(Server):
    """reapy's server with its listening address forced to loopback."""

    def bind(self, address):
        _, port = address
        return super().bind((LOOPBACK, port))


SERVER = None


def serve_once_then_defer():
    # One round of reapy's server work per REAPER defer tick, exactly like reapy's own loop.
    SERVER.accept()
    SERVER.send_results(SERVER.process_requests(SERVER.get_requests()))
    reapy.defer(serve_once_then_defer)


def main(port=None):
    """Start the server on reapy's port (2306), publish it, and keep it running via defer."""
    global SERVER
    port = reapy.config.REAPY_SERVER_PORT if port is None else port
    SERVER = LoopbackServer(port)
    reapy.set_ext_state("reapy", "server_port", port)
    reapy.at_exit(reapy.delete_ext_state, "reapy", "server_port")
    serve_once_then_defer()
    return port


if __name__ == "__main__":
    main()
