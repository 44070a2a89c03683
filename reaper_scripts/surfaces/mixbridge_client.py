"""A small MixBridge control-surface client with python-osc: subscribe, print feedback, accept by id.

    python reaper_scripts/surfaces/mixbridge_client.py                    # list pending, watch feedback
    python reaper_scripts/surfaces/mixbridge_client.py --accept Kick/masking/0

Talks to ``mixbridge surface`` (default 127.0.0.1:9100).  The address space is in docs/osc.md.
"""
from __future__ import annotations

import argparse
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="where 'mixbridge surface' listens")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--listen", type=int, default=9101, help="our port for feedback")
    parser.add_argument("--accept", metavar="ID", help="accept this suggestion (e.g. Kick/masking/0)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to print feedback")
    args = parser.parse_args()

    dispatcher = Dispatcher()
    dispatcher.map("/mixbridge/suggestion", lambda _a, sid, slot, idx, code, state, summary:
                   print(f"  [{slot}.{idx}] {sid} ({code}, {state}): {summary}"))
    dispatcher.map("/mixbridge/suggestions/end", lambda _a, n: print(f"  {n} pending"))
    dispatcher.set_default_handler(lambda address, *values: print(address, *values))
    server = BlockingOSCUDPServer(("127.0.0.1", args.listen), dispatcher)
    server.timeout = 0.1
    client = SimpleUDPClient(args.host, args.port)
    # Replies to a list go to the port a request came from: send it from our listening socket.
    server.socket.sendto(_message("/mixbridge/suggestions/list"), (args.host, args.port))
    client.send_message("/mixbridge/subscribe", args.listen)
    if args.accept:
        client.send_message("/mixbridge/accept", args.accept)
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            server.handle_request()
    finally:
        client.send_message("/mixbridge/unsubscribe", args.listen)
        server.server_close()


def _message(address: str, *values) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address=address)
    for v in values:
        builder.add_arg(v)
    return builder.build().dgram


if __name__ == "__main__":
    main()
