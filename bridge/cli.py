"""Command line: ``mixbridge <command>``.  Thin: parse, call the pipeline, print, pick an exit status."""
from __future__ import annotations

import argparse
import sys
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Sequence, TextIO

from . import __version__
from .errors import BridgeError


class ExitStatus(IntEnum):
    """Process exit codes (documented in README.md)."""

    OK = 0
    SOME_FAILED = 1  # some stems could not be analysed; the rest were
    USAGE = 2  # bad command line or unreadable side file (argparse uses 2 as well)
    NOTHING_USABLE = 3  # no stem could be analysed


def _analysis_status(result) -> ExitStatus:
    if not result.ok:
        return ExitStatus.NOTHING_USABLE
    return ExitStatus.SOME_FAILED if result.failed else ExitStatus.OK


def cmd_analyze(args, out: TextIO) -> ExitStatus:
    from .markers import read_markers
    from .pipeline import analyze_session
    from .report import table, write_json

    markers = read_markers(args.markers) if args.markers else None
    result = analyze_session(args.paths, markers=markers, jobs=args.jobs, recursive=args.recursive)
    if not result.stems:
        print("mixbridge: E_NO_STEMS: no audio stems found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return ExitStatus.NOTHING_USABLE
    print(table(result), file=out)
    if args.json:
        write_json(result, args.json)
        print(f"\nfull result: {args.json}", file=out)
    return _analysis_status(result)


def cmd_demo(args, out: TextIO) -> ExitStatus:
    from .pipeline import analyze_session
    from .report import table, write_json
    from .synth import default_session, write_session

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mixbridge-demo-"))
    print(f"Synthesising a 10-stem session with planted mix problems in {folder} ...", file=out)
    write_session(folder, default_session(), duration_s=args.seconds)
    result = analyze_session([folder], jobs=args.jobs)
    print(table(result), file=out)
    write_json(result, folder / "analysis.json")
    print(f"\nstems and full result (analysis.json) are in {folder}", file=out)
    return _analysis_status(result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixbridge",
        description="Analyse REAPER stem bounces and suggest mix moves.")
    parser.add_argument("--version", action="version", version=f"mixbridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="measure stems and the session they make together")
    analyze.add_argument("paths", nargs="+", help="stem files and/or folders of stems (WAV, FLAC, AIFF)")
    analyze.add_argument("--json", metavar="OUT", help="write the full result as JSON (schema_version 1)")
    analyze.add_argument("--markers", metavar="FILE", help="sections: REAPER marker/region CSV export or JSON")
    analyze.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    analyze.add_argument("--recursive", action="store_true", help="look for stems in sub-folders too")
    analyze.set_defaults(func=cmd_analyze)

    demo = sub.add_parser("demo", help="synthesise a small session with known problems and analyse it (no REAPER)")
    demo.add_argument("--dir", help="where to write the session (default: a new temporary folder)")
    demo.add_argument("--seconds", type=float, default=40.0, help="song length (default 40 s)")
    demo.add_argument("--jobs", type=int, default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        return int(args.func(args, out))
    except BridgeError as exc:
        print(f"mixbridge: {exc.code}: {exc.message}", file=sys.stderr)
        return int(ExitStatus.USAGE)
    except KeyboardInterrupt:
        print("mixbridge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return int(ExitStatus.OK)
