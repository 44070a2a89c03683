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

    if getattr(args, "target", "reaper") == "osc":
        from .daw.osc_target import DEFAULT_STATE_PATH, OscTarget

        return OscTarget(args.host, args.osc_port, args.osc_listen, args.timeout,
                         max_msgs_per_s=args.osc_rate, state_path=args.osc_state or DEFAULT_STATE_PATH)

    return ReaperTarget(ReapyConnection(args.host, args.web_port, args.timeout).connect())


def _load_plan(path: str) -> dict:
    import json

    from .errors import InputFileError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: {exc}", code="E_PLAN") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") not in (1, 2) or not isinstance(doc.get("tracks"), list):
        raise InputFileError(f"{path}: not a MixBridge plan (schema_version 1 or 2)", code="E_PLAN")
    return doc


def cmd_apply(args, out: TextIO) -> ExitStatus:
    import json

    plan = _load_plan(args.plan)
    if args.target not in ("reaper", "osc"):
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
    for p in report.pending:
        print(f"  pending: {p['track']} {p['param']}: {p['why']}", file=out)
    return ExitStatus.OK


def cmd_ab(args, out: TextIO) -> ExitStatus:
    delta = float(_load_plan(args.plan)["mix"].get("estimated_ai_delta_lu") or 0.0) if args.plan else 0.0
    state = _reaper(args).ab_toggle(delta)
    label = "A (pre-AI)" if state["state"] == "A" else "B (AI)"
    where = "every track fader" if args.target == "osc" else "the master"
    print(f"now playing {label}; level matched by {state['compensation_db']:+.1f} dB on {where}", file=out)
    return ExitStatus.OK


def cmd_watch(args, out: TextIO) -> ExitStatus:
    """Watch a render folder and run a pass per bounce until Ctrl-C (docs/workflow.md)."""
    import logging
    import signal
    import threading

    from .watch import Console, Watcher, WatchSettings
    from .watch.bounce import compile_pattern

    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"mixbridge: {folder}: not a folder", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        compile_pattern(args.name_pattern)
    except ValueError as exc:
        print(f"mixbridge: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    if not 0.0 <= args.amount <= 1.0:
        print("mixbridge: --amount must be between 0 and 1", file=sys.stderr)
        return ExitStatus.USAGE
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = WatchSettings(
        folder=folder, target=args.target, recursive=args.recursive,
        reference=Path(args.reference) if args.reference else None, amount=args.amount,
        review=args.review, surface=args.surface, surface_bind=args.bind, surface_port=args.port,
        surface_allow=tuple(args.allow or ()), settle_s=args.settle, name_pattern=args.name_pattern,
        jobs=args.jobs, host=args.host, web_port=args.web_port, osc_port=args.osc_port,
        osc_listen=args.osc_listen, timeout_s=args.timeout)
    watcher = Watcher(settings, console=Console(out))
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.start()
        while not stop.wait(0.25):
            if not watcher.alive:
                break
    finally:
        clean = watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"mixbridge watch: stopped after {len(watcher.passes)} passes"
          + ("" if clean else " (the pass under way will run again on the next start)"), file=out, flush=True)
    return ExitStatus.OK if watcher.crashed is None else ExitStatus.SOME_FAILED


def cmd_render(args, out: TextIO) -> ExitStatus:
    """Apply a plan to the stems offline, as REAPER would; processed stems and before/after mixes (docs/render.md)."""
    from .render.render import render_plan

    result = render_plan(args.plan, args.stems, args.out, mixes=not args.no_mixes,
                         subtype="PCM_24" if args.pcm24 else "FLOAT")
    for s in result.stems:
        what = "; ".join(s.moves) if s.status == "processed" else s.reason
        print(f"  {s.name}: {s.status}" + (f" ({what})" if what else ""), file=out)
        for note in s.ignored:
            print(f"    not modelled: {note}", file=out)
    for name in result.missing_tracks:
        print(f"  plan track {name}: no stem of that name", file=out)
    if result.mix_after is not None:
        def lufs(v):
            return "silent" if v is None else f"{v:.1f} LUFS"
        change = (f", the plan changes it by {result.after_unmatched_lufs - result.before_lufs:+.1f} LU"
                  if result.before_lufs is not None and result.after_unmatched_lufs is not None else "")
        print(f"mixes: {result.mix_before} ({lufs(result.before_lufs)}) and {result.mix_after} "
              f"({lufs(result.after_lufs)}, level-matched{change})", file=out)
    print(f"rendered {len(result.processed)} of {len(result.stems)} stems into {Path(args.out) / 'stems'} "
          f"in {result.seconds:.1f} s", file=out)
    if len(result.failed) == len(result.stems):
        return ExitStatus.NOTHING_USABLE
    return ExitStatus.SOME_FAILED if result.failed else ExitStatus.OK


def cmd_demo(args, out: TextIO) -> ExitStatus:
    """The full loop on files, no REAPER: synthesise, bounce, watch, plan, notes, re-bounce one stem."""
    from .demo import run_demo

    return ExitStatus(run_demo(Path(args.dir) if args.dir else None, args.seconds, args.jobs, out))


def cmd_surface(args, out: TextIO) -> ExitStatus:
    """Serve the /mixbridge OSC address space to control surfaces until Ctrl-C (docs/osc.md)."""
    import signal
    import threading

    from .control.controller import SessionController, track_info_from_result
    from .control.server import SurfaceServer
    from .daw.base import make_target

    if not args.stems and not args.plan:
        print("mixbridge: surface needs a STEMS_DIR to analyse or --plan PLAN", file=sys.stderr)
        return ExitStatus.USAGE
    if not 0.0 <= args.amount <= 1.0:
        print("mixbridge: --amount must be between 0 and 1", file=sys.stderr)
        return ExitStatus.USAGE
    reanalyse = replan = None
    if args.stems:
        from .config import RoleConfig, read_config
        from .pipeline import analyze_session, plan_session
        from .suggest.plan import plan_dict

        roles = RoleConfig().merged(read_config(args.stems)) if Path(args.stems).is_dir() else RoleConfig()
        latest: dict = {}

        def analyse() -> None:
            result = analyze_session([args.stems], jobs=args.jobs)
            if not result.ok:
                raise BridgeError(f"nothing usable in {args.stems}", code="E_NO_STEMS")
            latest["result"] = result

        def replan(amount: float):
            result = latest["result"]
            return plan_dict(plan_session(result, roles, amount=amount)), track_info_from_result(result)

        def reanalyse():
            analyse()
            return replan(controller.amount)

        analyse()
        plan_doc, track_info = replan(args.amount)
        state_dir = Path(args.stems) / ".mixbridge"
    else:
        plan_doc, track_info = _load_plan(args.plan), {}
        state_dir = Path(args.plan).resolve().parent / ".mixbridge"
    target = make_target(args.target, host=args.host, web_port=args.web_port, osc_port=args.osc_port,
                         osc_listen=args.osc_listen, timeout_s=args.timeout, state_dir=state_dir)
    controller = SessionController(target, plan_doc, track_info, reanalyse=reanalyse, replan=replan)
    server = SurfaceServer(controller, bind=args.bind, port=args.port, allow=args.allow or ())
    stop = threading.Event()
    try:
        server.start()
    except OSError as exc:
        print(f"mixbridge: cannot listen on {args.bind}:{args.port}: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        host, port = server.address
        print(f"mixbridge surface: listening on udp://{host}:{port} (target {args.target}, "
              f"{len(plan_doc.get('tracks', []))} tracks, {len(controller.review.suggestions)} suggestions; "
              f"Ctrl-C stops)", file=out, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        target.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counters = server.counters
    print(f"mixbridge surface: stopped ({counters['commands']} commands, {counters['refused']} refused)",
          file=out, flush=True)
    return ExitStatus.OK


def cmd_install_scripts(args, out: TextIO) -> ExitStatus:
    """Copy the in-REAPER files into REAPER's resource path (docs/scripts.md)."""
    from .install import default_resource_path, install_scripts

    resource = Path(args.resource_path).expanduser() if args.resource_path else default_resource_path()
    try:
        steps = install_scripts(resource, dry_run=args.dry_run, force=args.force)
    except FileNotFoundError as exc:
        hint = "" if args.resource_path else " (is REAPER installed? pass --resource-path DIR)"
        print(f"mixbridge: {exc}{hint}", file=sys.stderr)
        return ExitStatus.USAGE
    verb = "would be " if args.dry_run else ""
    print(f"REAPER resource path: {resource}", file=out)
    for step in steps:
        note = f" (your version kept as {step.backup})" if step.backup else ""
        print(f"  {verb}{step.action:9} {step.dest}{note}", file=out)
    if not args.dry_run:
        print("\nNext, in REAPER: Actions > Show action list > New action > Load ReaScript..., pick the "
              f"MixBridge_*.lua files in {resource / 'Scripts' / 'MixBridge'} (docs/scripts.md).", file=out)
    return ExitStatus.OK


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
    plan.add_argument("--json", metavar="PLAN", required=True, help="write the plan here (schema_version 2)")
    plan.add_argument("--notes", metavar="NOTES", help="write feedback notes (.html or .md; the twin is written too)")
    plan.add_argument("--reference", metavar="REF", help="a reference track to steer tonal balance towards")
    plan.add_argument("--amount", type=float, default=1.0, help="scale every move, 0..1 (0: findings only)")
    plan.add_argument("--roles", metavar="FILE", help="roles file (TOML/JSON): stem roles, offsets, manual tracks")
    plan.add_argument("--markers", metavar="FILE", help="sections: REAPER marker/region CSV export or JSON")
    plan.add_argument("--jobs", type=int, default=None)
    plan.add_argument("--recursive", action="store_true")
    plan.set_defaults(func=cmd_plan)

    def connection_options(p):
        """How to reach REAPER: reapy over its web interface, or REAPER's OSC surface."""
        p.add_argument("--host", default="127.0.0.1", help="REAPER's host (default loopback)")
        p.add_argument("--web-port", type=int, default=2307, help="REAPER web interface port (reapy's 2307)")
        p.add_argument("--osc-port", type=int, default=8000, help="REAPER's OSC listen port (--target osc)")
        p.add_argument("--listen", "--osc-listen", dest="osc_listen", type=int, default=9000,
                       help="port on 127.0.0.1 for REAPER's OSC feedback (--target osc)")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each REAPER call")

    def surface_options(p, note=""):
        p.add_argument("--bind", default="127.0.0.1", help="control surface address (default loopback only)" + note)
        p.add_argument("--port", type=int, default=9100, help="control surface UDP port (default 9100)" + note)
        p.add_argument("--allow", nargs="+", metavar="HOST",
                       help="surface hosts allowed to send (required for a non-loopback --bind)")

    def reaper_options(p):
        p.add_argument("--target", choices=["reaper", "osc"], default="reaper",
                       help="where to write: reaper (reapy, everything) or osc (REAPER's OSC surface; "
                            "see docs/reaper-osc.md for what OSC cannot do)")
        connection_options(p)
        p.add_argument("--osc-rate", type=float, default=200.0, help="max OSC messages per second (--target osc)")
        p.add_argument("--osc-state", type=Path, default=None,
                       help="local tag file of the OSC target (default .mixbridge/osc-state.json)")

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

    surface = sub.add_parser("surface", help="serve /mixbridge OSC to control surfaces: review and accept "
                                             "suggestions (docs/osc.md)")
    surface.add_argument("stems", nargs="?", metavar="STEMS_DIR", help="analyse and plan these stems "
                         "(re-analyse and the amount work on them)")
    surface.add_argument("--plan", help="review this plan instead of analysing stems")
    surface.add_argument("--amount", type=float, default=1.0, help="starting amount, 0..1 (with STEMS_DIR)")
    surface.add_argument("--target", choices=["reaper", "osc", "plan"], default="reaper",
                         help="where accepted suggestions land (plan: files in .mixbridge/, no DAW)")
    connection_options(surface)
    surface_options(surface)
    surface.add_argument("--jobs", type=int, default=None)
    surface.set_defaults(func=cmd_surface)

    watch = sub.add_parser("watch", help="watch a render folder: analyse, plan and apply every bounce "
                                         "(docs/workflow.md)")
    watch.add_argument("dir", metavar="DIR", help="the folder REAPER renders the stems into")
    watch.add_argument("--target", choices=["reaper", "osc", "plan"], default="plan",
                       help="where plans land (plan: files beside the stems, no DAW; the default)")
    watch.add_argument("--reference", metavar="REF", help="a reference track to steer tonal balance towards")
    watch.add_argument("--amount", type=float, default=1.0, help="scale every move, 0..1")
    watch.add_argument("--surface", action="store_true", help="also serve the OSC control surface (docs/osc.md)")
    watch.add_argument("--review", action=argparse.BooleanOptionalAction, default=None,
                       help="hold suggestions until accepted (default: on with --surface)")
    watch.add_argument("--recursive", action="store_true", help="watch sub-folders too")
    watch.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                       help="without a bounce manifest, a bounce is complete this long after the last file event")
    watch.add_argument("--name-pattern", metavar="RE",
                       help="map file names to track names, e.g. '(?P<track>.+?)_\\d+'")
    watch.add_argument("--verbose", action="store_true", help="log what the watcher does")
    connection_options(watch)
    surface_options(watch, note="; with --surface")
    watch.add_argument("--jobs", type=int, default=None)
    watch.set_defaults(func=cmd_watch)

    render = sub.add_parser("render", help="apply a plan to the stems offline, as REAPER would: processed stems "
                                           "and level-matched before/after mixes (docs/render.md)")
    render.add_argument("plan", help="a plan written by 'mixbridge plan --json' (schema 1 or 2)")
    render.add_argument("stems", help="the stems folder the plan came from")
    render.add_argument("--out", required=True, metavar="DIR", help="where stems/, mix_before.wav, mix_after.wav "
                        "and render.json go")
    render.add_argument("--no-mixes", action="store_true", help="only the processed stems")
    render.add_argument("--pcm24", action="store_true", help="write the stems as 24-bit PCM (default 32-bit float)")
    render.set_defaults(func=cmd_render)

    demo = sub.add_parser("demo", help="the full loop with no REAPER: synthesise a session with known problems, "
                                           "bounce it into a watched folder, plan, notes, re-bounce one stem")
    demo.add_argument("--dir", help="where to write the session (default: a new temporary folder)")
    demo.add_argument("--seconds", type=float, default=40.0, help="song length (default 40 s)")
    demo.add_argument("--jobs", type=int, default=None)
    demo.set_defaults(func=cmd_demo)

    install = sub.add_parser("install-scripts", help="copy the ReaScripts, JSFX and OSC pattern file into "
                                                     "REAPER's resource path")
    install.add_argument("--resource-path", metavar="DIR",
                         help="REAPER's resource path (default: the OS default; Options > Show REAPER "
                              "resource path shows yours)")
    install.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")
    install.add_argument("--force", action="store_true", help="replace files you edited without a backup")
    install.set_defaults(func=cmd_install_scripts)
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
