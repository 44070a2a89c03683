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
    DAW_UNAVAILABLE = 4  # REAPER not running, not reachable, or stopped answering


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


def cmd_plan(args, out: TextIO) -> ExitStatus:
    from .config import RoleConfig, read_config, read_roles_file
    from .markers import read_markers
    from .pipeline import analyze_session, plan_session
    from .report import table
    from .suggest.plan import plan_json

    if not 0.0 <= args.amount <= 1.0:
        print("mixbridge: --amount must be between 0 and 1", file=sys.stderr)
        return ExitStatus.USAGE
    markers = read_markers(args.markers) if args.markers else None
    roles = RoleConfig()
    for path in args.paths:
        if Path(path).is_dir():
            roles = roles.merged(read_config(path))
    if args.roles:
        roles = roles.merged(read_roles_file(args.roles))
    result = analyze_session(args.paths, markers=markers, jobs=args.jobs, recursive=args.recursive)
    if not result.stems:
        print("mixbridge: E_NO_STEMS: no audio stems found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return ExitStatus.NOTHING_USABLE
    plan = plan_session(result, roles, amount=args.amount, reference_path=args.reference)
    Path(args.json).write_text(plan_json(plan), encoding="utf-8")
    print(table(result), file=out)
    print("", file=out)
    print(plan_summary(plan), file=out)
    print(f"\nplan: {args.json} (id {plan.id})", file=out)
    if args.notes:
        from .notes.render import write_notes
        from .notes.model import NotesInput

        written = write_notes(NotesInput(result, plan), args.notes)
        print("notes: " + ", ".join(str(p) for p in written), file=out)
    return _analysis_status(result)


def plan_summary(plan) -> str:
    """One line per track with moves or findings: what the plan proposes, in words."""
    lines = [f"plan ({len([t for t in plan.tracks if t.status == 'ai'])} tracks with AI moves, "
             f"amount {plan.settings.amount:g}):"]
    for t in plan.tracks:
        if not t.findings:
            continue
        lines.append(f"  {t.name} [{t.role}, {t.status}]")
        for f in t.findings:
            lines.append(f"    - {f.message}")
    for f in plan.mix_findings:
        lines.append(f"  mix: {f.message}")
    return "\n".join(lines)


def _reaper(args):
    from .daw.reapy_conn import ReapyConnection
    from .daw.reapy_target import ReaperTarget

    return ReaperTarget(ReapyConnection(args.host, args.web_port, args.timeout).connect())


def _load_plan(path: str) -> dict:
    import json

    from .errors import InputFileError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: {exc}", code="E_PLAN") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get("tracks"), list):
        raise InputFileError(f"{path}: not a MixBridge plan (schema_version 1)", code="E_PLAN")
    return doc


def cmd_apply(args, out: TextIO) -> ExitStatus:
    import json

    plan = _load_plan(args.plan)
    if args.target != "reaper":
        print(f"mixbridge: target {args.target!r} is not available yet", file=sys.stderr)
        return ExitStatus.USAGE
    target = _reaper(args)
    report = target.apply(plan, reenable=set(args.reenable or []))
    print(f"{report.undo_name or 'nothing to write'}: {len(report.writes)} writes, "
          f"{report.skipped_same} already in place, {len(report.overrides)} producer overrides kept, "
          f"{report.verified} verified, {report.round_trips} round trips, {report.seconds * 1000:.0f} ms", file=out)
    for o in report.overrides:
        print(f"  manual: {o['track']} {o['param']} changed by the producer from {o['from']} to {o['to']}", file=out)
    for p in report.pending:
        print(f"  pending: {p['track']} {p['param']}: {p['why']}", file=out)
    for name in report.missing_tracks:
        print(f"  not in the session: {name}", file=out)
    if args.report:
        Path(args.report).write_text(json.dumps(report.as_dict(), indent=1, default=str), encoding="utf-8")
    if args.notes:
        written = _pass_notes(args, plan, report)
        print("notes: " + ", ".join(str(p) for p in written), file=out)
    return ExitStatus.OK


def _pass_notes(args, plan_doc: dict, report) -> list:
    """Feedback notes for an applied pass: the plan's findings plus what was written, what the
    producer overrode (from what to what) and what is pending."""
    from .notes.model import AppliedChange, NotesInput, Override, PendingMove
    from .notes.render import write_notes
    from .pipeline import analyze_session, plan_session

    if not args.stems:
        raise SystemExit("mixbridge: --notes needs --stems DIR (the bounce the plan came from)")
    result = analyze_session([args.stems], jobs=args.jobs)
    plan = plan_session(result, amount=float(plan_doc.get("settings", {}).get("amount", 1.0)))
    provenance = {}
    for o in report.overrides:
        provenance[o["track"]] = "hybrid"
    notes = NotesInput(
        result, plan,
        applied=tuple(AppliedChange(w["track"], w["param"], w.get("value"), None, "")
                      for w in report.writes if "value" in w),
        overrides=tuple(Override(o["track"], o["param"], o["from"], o["to"]) for o in report.overrides),
        pending=tuple(PendingMove(p["track"], p["param"], p["value"], p["why"]) for p in report.pending),
        provenance=provenance)
    return write_notes(notes, args.notes)


def cmd_revert(args, out: TextIO) -> ExitStatus:
    report = _reaper(args).revert(args.track)
    print(f"{report.undo_name or 'nothing to revert'}: {len(report.writes)} values restored, "
          f"{len(report.overrides)} manual changes left alone", file=out)
    return ExitStatus.OK


def cmd_ab(args, out: TextIO) -> ExitStatus:
    delta = float(_load_plan(args.plan)["mix"].get("estimated_ai_delta_lu") or 0.0) if args.plan else 0.0
    state = _reaper(args).ab_toggle(delta)
    label = "A (pre-AI)" if state["state"] == "A" else "B (AI)"
    print(f"now playing {label}; level matched by {state['compensation_db']:+.1f} dB on the master", file=out)
    return ExitStatus.OK


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

    from .notes.model import NotesInput
    from .notes.render import write_notes
    from .pipeline import plan_session
    from .suggest.plan import plan_json

    plan = plan_session(result)
    (folder / "plan.json").write_text(plan_json(plan), encoding="utf-8")
    written = write_notes(NotesInput(result, plan), folder / "notes.html")
    print("", file=out)
    print(plan_summary(plan), file=out)
    print(f"\nin {folder}:\n  stems, analysis.json, plan.json (id {plan.id})\n  notes: "
          + ", ".join(Path(p).name for p in written), file=out)
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

    plan = sub.add_parser("plan", help="analyse stems and propose mix moves as a reviewable plan")
    plan.add_argument("paths", nargs="+", help="stem files and/or folders of stems")
    plan.add_argument("--json", metavar="PLAN", required=True, help="write the plan here (schema_version 1)")
    plan.add_argument("--notes", metavar="NOTES", help="write feedback notes (.html or .md; the twin is written too)")
    plan.add_argument("--reference", metavar="REF", help="a reference track to steer tonal balance towards")
    plan.add_argument("--amount", type=float, default=1.0, help="scale every move, 0..1 (0: findings only)")
    plan.add_argument("--roles", metavar="FILE", help="roles file (TOML/JSON): stem roles, offsets, manual tracks")
    plan.add_argument("--markers", metavar="FILE", help="sections: REAPER marker/region CSV export or JSON")
    plan.add_argument("--jobs", type=int, default=None)
    plan.add_argument("--recursive", action="store_true")
    plan.set_defaults(func=cmd_plan)

    def reaper_options(p):
        p.add_argument("--target", choices=["reaper"], default="reaper", help="where to write (reapy)")
        p.add_argument("--host", default="127.0.0.1", help="REAPER's host (default loopback)")
        p.add_argument("--web-port", type=int, default=2307, help="REAPER web interface port (reapy's 2307)")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each REAPER call")

    apply = sub.add_parser("apply", help="write a plan into the REAPER session (one undo point)")
    apply.add_argument("plan", help="a plan written by 'mixbridge plan --json'")
    reaper_options(apply)
    apply.add_argument("--reenable", nargs="*", metavar="TRACK:PARAM",
                       help="let the bridge write parameters the producer had taken over")
    apply.add_argument("--report", metavar="FILE", help="write what the pass did as JSON")
    apply.add_argument("--notes", metavar="NOTES", help="write feedback notes for this pass (needs --stems)")
    apply.add_argument("--stems", metavar="DIR", help="the stems the plan came from (for --notes)")
    apply.add_argument("--jobs", type=int, default=None)
    apply.set_defaults(func=cmd_apply)

    revert = sub.add_parser("revert", help="restore the pre-AI values and remove the AI FX (one undo point)")
    reaper_options(revert)
    revert.add_argument("--track", help="only this track")
    revert.set_defaults(func=cmd_revert)

    ab = sub.add_parser("ab", help="toggle between the pre-AI and AI states, level-matched")
    reaper_options(ab)
    ab.add_argument("--plan", help="the applied plan (its loudness estimate sets the level match)")
    ab.set_defaults(func=cmd_ab)

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
        if exc.code in ("E_DAW_UNAVAILABLE", "E_DAW_TIMEOUT", "E_TARGET_NOT_FOUND", "E_DAW_VERIFY"):
            return int(ExitStatus.DAW_UNAVAILABLE)
        return int(ExitStatus.USAGE)
    except KeyboardInterrupt:
        print("mixbridge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return int(ExitStatus.OK)
