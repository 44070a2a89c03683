"""``python -m tests.reaper_sim --project FILE.json [--web-port P] [--state-out FILE]``.

Prints one line ``READY web_port=N server_port=N control_port=N pid=N`` on
stdout once every socket listens, then serves until SIGTERM/SIGINT or the
control command ``shutdown`` (exit status 0, state written to ``--state-out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.reaper_sim",
                                     description="Headless REAPER simulator serving reapy.")
    parser.add_argument("--project", type=Path, required=True,
                        help="project JSON file (format: tests/reaper_sim/__init__.py)")
    parser.add_argument("--web-port", type=int, default=0,
                        help="web-interface port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--server-port", type=int, default=0,
                        help="reapy server port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--state-out", type=Path, default=None,
                        help="write the final project state as JSON here on exit")
    parser.add_argument("--hz", type=float, default=30.0,
                        help="main-loop ticks per second (REAPER defers at about 30)")
    parser.add_argument("--verbose", action="store_true", help="log web requests to stderr")
    parser.add_argument("--activation-script", type=Path, default=None,
                        help="start the reapy server with this ReaScript (it must define main(port)) "
                             "instead of replaying reapy's activate_reapy_server.py")
    parser.add_argument("--osc-port", type=int, default=None,
                        help="run REAPER's OSC surface on this UDP port of 127.0.0.1 (0 = a free port; "
                             "reported as osc_port=N in the READY line)")
    parser.add_argument("--osc-feedback", default=None, metavar="HOST:PORT",
                        help="where the OSC surface sends feedback (the device)")
    parser.add_argument("--osc-pattern", type=Path, default=None,
                        help="the .ReaperOSC pattern file (default: reaper_scripts/MixBridge.ReaperOSC)")
    parser.add_argument("--atexit-after-error", action="store_true",
                        help="run a script's at-exit code after a deferred script error (by default "
                             "REAPER is assumed not to, which leaves reapy's server_port published)")
    parser.add_argument("--web-password", default=None, metavar="USER:PASS",
                        help="protect the web interface as REAPER's user/password option does (401 otherwise)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="loopback address the web interface and OSC surface listen on (default 127.0.0.1)")
    parser.add_argument("--server-bind", default=None,
                        help="loopback address reapy's replayed server binds (default: --bind)")
    parser.add_argument("--fx-variant", action="append", default=[], metavar="NAME",
                        help="a published alternative FX layout or display (tests/reaper_sim/fx_layouts.py VARIANTS)")
    parser.add_argument("--render-block-frames", type=int, default=4096,
                        help="frames per block the render action writes (render.py)")
    parser.add_argument("--render-block-delay-ms", type=float, default=0.0,
                        help="pause after each rendered block, to render slowly in chunks")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Imported here: server.py must set up the fake REAPER before reapy loads.
    from .server import Sim, SimConfig

    feedback = None
    if args.osc_feedback:
        host, _, port = args.osc_feedback.rpartition(":")
        feedback = (host or "127.0.0.1", int(port))
    pattern = args.osc_pattern
    if args.osc_port is not None and pattern is None:
        pattern = Path(__file__).resolve().parents[2] / "reaper_scripts" / "MixBridge.ReaperOSC"
    config = SimConfig(project_path=args.project, web_port=args.web_port,
                       server_port=args.server_port, state_out=args.state_out,
                       hz=args.hz, verbose=args.verbose, activation_script=args.activation_script,
                       osc_port=args.osc_port, osc_feedback=feedback, osc_pattern=pattern,
                       render_block_frames=args.render_block_frames,
                       render_block_delay_s=args.render_block_delay_ms / 1000.0,
                       atexit_after_error=args.atexit_after_error, web_password=args.web_password,
                       bind=args.bind, server_bind=args.server_bind, fx_variants=frozenset(args.fx_variant))
    try:
        sim = Sim(config)
    except (ValueError, KeyError) as error:  # a bad project file, said plainly
        sys.stderr.write(f"reaper_sim: cannot load {args.project}: {error}\n")
        return 2
    return sim.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
