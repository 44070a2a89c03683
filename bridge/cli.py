"""Command line: ``mixbridge <command>``.  Thin: parse, build the :class:`~bridge.settings.Settings`,
run the :class:`~bridge.session.Session`, print.

The exit status comes from the error's class (:class:`~bridge.errors.ExitStatus`); every failure a
user can cause is one line ``mixbridge: E_CODE: message`` on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import difflib
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Sequence, TextIO

from . import __version__
from .errors import BridgeError, ExitStatus, NoStems, PassInterrupted, PathNotFound, UsageError
from .settings import Connection, ReviewPageOptions, Settings, SurfaceOptions, WatchTimings, load_roles

DEFAULTS = Connection()


# --- from arguments to settings ------------------------------------------------------------------

def check_paths(paths: Sequence[str]) -> tuple[Path, ...]:
    """Every path must exist; a path with a space that was not quoted gets a hint.

    Raises
    ------
    PathNotFound
        ``E_PATH_NOT_FOUND``, naming the first missing path.
    """
    out = []
    for k, raw in enumerate(paths):
        path = Path(raw).expanduser()
        if path.exists():
            out.append(path)
            continue
        for end in range(len(paths), k + 1, -1):
            joined = " ".join(paths[k:end])
            if Path(joined).expanduser().exists():
                raise PathNotFound(f"{raw!r}; did you mean {joined!r}? a path with spaces needs quotes: "
                                   f"\"{joined}\"")
        raise PathNotFound(repr(raw))
    return tuple(out)


def _connection(args) -> Connection:
    given = {f: getattr(args, f, None) for f in ("host", "web_port", "osc_port", "osc_listen", "osc_rate")}
    given["timeout_s"] = getattr(args, "timeout", None)
    return Connection(**{k: v for k, v in given.items() if v is not None})


def _single_folder(paths: Sequence[Path]) -> Path | None:
    folders = [p for p in paths if p.is_dir()]
    return folders[0] if len(folders) == 1 else None


def _settings(args, *, stems: Path | None, paths: tuple[Path, ...] = (), stateful: bool = True,
              **extra) -> Settings:
    """The one Settings of a command: its options, the roles config beside the stems, ``--roles``."""
    from .markers import read_markers

    markers = getattr(args, "markers", None)
    return Settings(stems=stems, paths=paths, stateful=stateful, target=getattr(args, "target", "plan"),
                    connection=_connection(args), roles=load_roles(stems, getattr(args, "roles", None)),
                    amount=getattr(args, "amount", 1.0), jobs=getattr(args, "jobs", None),
                    reference=Path(args.reference) if getattr(args, "reference", None) else None,
                    markers=tuple(read_markers(markers)) if markers else None,
                    recursive=getattr(args, "recursive", False), **extra)


def _console(out: TextIO, *, watch: bool = False):
    from .console import Console

    return Console(out, progress_on_pipe=watch)


def _progress(out: TextIO, settings: Settings):
    """A console showing ``analysing 3/10 Kick, ETA 4 s`` on a terminal (nothing in a pipe); its callback."""
    from .stems import find_stems

    console = _console(out)
    console.pass_started(0, len(find_stems(settings.inputs, recursive=settings.recursive)))
    return console, lambda s: console.stem_done(s.name, s.error.code if s.error else None)


def _analysis_status(result) -> ExitStatus:
    if not result.ok:
        return ExitStatus.NOTHING_USABLE
    return ExitStatus.SOME_FAILED if result.failed else ExitStatus.OK


# --- commands ------------------------------------------------------------------------------------

def _start_workers_early(args) -> None:
    """Start the analysis fork server before this process imports numpy and the session (a full
    pass on more than one worker starts its pool anyway; this only moves its imports earlier)."""
    one_file = len(args.paths) == 1 and not Path(args.paths[0]).is_dir()
    if getattr(args, "jobs", None) != 1 and not one_file:
        from .forkserver import start_early

        start_early()


def cmd_analyze(args, out: TextIO) -> ExitStatus:
    _start_workers_early(args)
    from .report import table, write_json
    from .session import Session

    paths = check_paths(args.paths)
    session = Session(_settings(args, stems=_single_folder(paths), paths=paths, stateful=False))
    console, progress = _progress(out, session.settings)
    result = session.analyse(progress=progress)
    console.close()
    print(table(result), file=out)
    if args.json:
        write_json(result, args.json)
        print(f"\nfull result: {args.json}", file=out)
    return _analysis_status(result)


def cmd_plan(args, out: TextIO) -> ExitStatus:
    _start_workers_early(args)
    from .report import table
    from .session import Session, notes_input

    paths = check_paths(args.paths)
    session = Session(_settings(args, stems=_single_folder(paths), paths=paths, stateful=False))
    console, progress = _progress(out, session.settings)
    record = session.run_pass(1, progress=progress)
    console.close()
    print(table(record.result), file=out)
    if not record.result.ok:
        raise NoStems("no stem could be analysed, so no plan was written (" + ", ".join(
            f"{f.name}: {f.code}" for f in record.failed[:5]) + ")")
    Path(args.json).write_text(json.dumps(record.plan_doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print("", file=out)
    print(plan_summary(record.plan), file=out)
    print(record.line, file=out)
    print(f"\nplan: {args.json} (id {record.plan.id})", file=out)
    if args.notes:
        from .notes.render import write_notes

        written = write_notes(notes_input(record), args.notes)
        print("notes: " + ", ".join(str(p) for p in written), file=out)
    return _analysis_status(record.result)


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


def _daw_session(args, plan_doc: dict | None = None):
    """A session on a DAW target; its state folder is ``--stems``, else the folder the plan records."""
    from .plandoc import stems_folder
    from .session import Session

    stems = check_paths([args.stems])[0] if getattr(args, "stems", None) else (
        stems_folder(plan_doc) if plan_doc is not None else None)
    return Session(_settings(args, stems=stems))


def cmd_apply(args, out: TextIO) -> ExitStatus:
    from .plandoc import load_plan

    doc = load_plan(args.plan)
    session = _daw_session(args, doc)
    pre = None
    if args.notes:
        if session.settings.stems is None:
            raise UsageError("--notes needs --stems DIR (the bounce the plan came from)")
        pre = session.record_for_applied(doc)  # checked before REAPER is touched
    report = session.apply(doc, reenable=frozenset(args.reenable or ()))
    if getattr(report, "recovered", ""):
        print(f"first finished an interrupted pass: {report.recovered}", file=out)
    print(f"{report.undo_name or 'nothing to write'}: {len(report.written)} changes written, "
          f"{len(report.restored)} restored, {len(report.unchanged)} already in place, "
          f"{len(report.overrides)} producer overrides kept, {report.verified} verified, "
          f"{report.round_trips} round trips, {report.seconds * 1000:.0f} ms", file=out)
    for o in report.overrides:
        print(f"  manual: {o.track} {o.key} changed by the producer from {o.from_value} to {o.to_value}", file=out)
    for p in report.pending:
        print(f"  pending: {p.track} {p.key}: {p.why}", file=out)
    for name in report.missing_tracks:
        print(f"  not in the session: {name}", file=out)
    if args.report:
        Path(args.report).write_text(json.dumps(report.as_dict(), indent=1, default=str), encoding="utf-8")
    if pre is not None:
        from .notes.render import write_notes
        from .session import notes_input

        written = write_notes(notes_input(session.with_report(pre, report)), args.notes)
        print("notes: " + ", ".join(str(p) for p in written), file=out)
    return ExitStatus.OK


def cmd_revert(args, out: TextIO) -> ExitStatus:
    report = _daw_session(args).revert(args.track)
    if getattr(report, "recovered", ""):
        print(f"first finished an interrupted pass: {report.recovered}", file=out)
    print(f"{report.undo_name or 'nothing to revert'}: {len(report.writes)} values restored, "
          f"{len(report.overrides)} manual changes left alone", file=out)
    for p in report.pending:
        print(f"  pending: {p.track} {p.key}: {p.why}", file=out)
    return ExitStatus.OK


def cmd_ab(args, out: TextIO) -> ExitStatus:
    from .plandoc import estimated_delta_lu, load_plan

    doc = load_plan(args.plan) if args.plan else None
    state = _daw_session(args, doc).ab_toggle(estimated_delta_lu(doc))
    if state.get("recovered"):
        print(f"first finished an interrupted pass: {state['recovered']}", file=out)
    label = "A (pre-AI)" if state["state"] == "A" else "B (AI)"
    print(f"now playing {label}; level matched by {state['compensation_db']:+.1f} dB on the master", file=out)
    for moved in state.get("overrides") or ():
        print(f"  manual: {moved} was moved by hand; left where it is (the producer's from now on)", file=out)
    return ExitStatus.OK


def _until_signalled(stop: threading.Event, alive=lambda: True) -> None:
    """Wait for Ctrl-C or SIGTERM (or ``alive()`` turning false), handlers restored afterwards."""
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.25):
            if not alive():
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _surface_options(args) -> SurfaceOptions:
    return SurfaceOptions(enabled=True, bind=args.bind, port=args.port, allow=tuple(args.allow or ()))


def _page_options(args) -> ReviewPageOptions:
    return ReviewPageOptions(enabled=True, bind=args.page_bind, port=args.page_port,
                             allow=tuple(args.page_allow or ()))


def cmd_watch(args, out: TextIO) -> ExitStatus:
    """Watch a render folder and run a pass per bounce until Ctrl-C (docs/workflow.md)."""
    import logging

    from .watch import Watcher

    folder = check_paths([args.dir])[0]
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t = WatchTimings()
    settings = _settings(args, stems=folder, review=args.review, name_pattern=args.name_pattern, render=args.render,
                         timings=replace(t, settle_s=args.settle if args.settle is not None else t.settle_s),
                         surface=_surface_options(args) if args.surface else SurfaceOptions(),
                         page=_page_options(args) if args.review_page else ReviewPageOptions())
    watcher = Watcher(settings, console=_console(out, watch=True))
    stop = threading.Event()
    try:
        try:
            watcher.start()
        except OSError as exc:
            if isinstance(exc, BridgeError):  # E_SURFACE_EXPOSED is a PermissionError too
                raise
            raise UsageError(f"cannot start the watcher's servers: {exc}") from exc
    except BaseException:
        watcher.stop()  # nothing started (another watcher holds the folder, an unusable state folder)
        raise
    try:
        _until_signalled(stop, lambda: watcher.alive)
    finally:
        busy = watcher.busy
        clean = watcher.stop()
    n = len(watcher.passes)
    print(f"mixbridge watch: stopped after {n} {'pass' if n == 1 else 'passes'}"
          + ("; the pass under way will re-run on the next start" if busy or not clean else ""), file=out, flush=True)
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
    from .control.controller import SessionController
    from .control.server import SurfaceServer
    from .plandoc import load_plan, stems_folder
    from .session import Session

    if not args.stems and not args.plan:
        raise UsageError("surface needs a STEMS_DIR to analyse or --plan PLAN")
    doc = load_plan(args.plan) if args.plan else None
    if args.stems:
        stems = check_paths([args.stems])[0]
    else:
        stems = stems_folder(doc) or Path(args.plan).resolve().parent
    session = Session(_settings(args, stems=stems, review=True, surface=_surface_options(args)))
    controller = SessionController(session, doc or {"tracks": []}, {})
    session.reviewer = controller
    if args.stems:
        number = [1]

        def reanalyse():
            number[0] += 1
            record = session.finish_pass(session.run_pass(number[0], apply=False))
            return dict(record.plan_doc), session.track_info(record)

        controller.reanalyse_fn, controller.replan_fn = reanalyse, session.replan
        session.run_pass(1)  # review mode: the target is untouched until something is accepted
    server = SurfaceServer(controller, bind=args.bind, port=args.port, allow=args.allow or ())
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.bind}:{args.port}: {exc}") from exc
    host, port = server.address
    counters = _serve_until_signalled(
        server, session, out, f"mixbridge surface: listening on udp://{host}:{port} (target {args.target}, "
        f"{len(controller.review.plan.get('tracks', []))} tracks, {len(controller.review.suggestions)} "
        f"suggestions; Ctrl-C stops)")
    print(f"mixbridge surface: stopped ({counters['commands']} commands, {counters['refused']} refused)",
          file=out, flush=True)
    return ExitStatus.OK


def _serve_until_signalled(server, session, out: TextIO, line: str) -> dict[str, int]:
    """Print ``line``, serve until Ctrl-C or SIGTERM, stop the server and the session; the server's counters."""
    try:
        print(line, file=out, flush=True)
        _until_signalled(threading.Event())
    finally:
        server.stop()
        session.close()
    return server.counters


def cmd_review(args, out: TextIO) -> ExitStatus:
    """Serve the review page for a plan until Ctrl-C: hear, accept and reject each suggestion (docs/review.md)."""
    from .control.controller import SessionController
    from .errors import PlanStale
    from .plandoc import load_plan
    from .session import Session
    from .web.server import serve_review_page

    doc = load_plan(args.plan)
    stems = check_paths([args.stems])[0]
    if not stems.is_dir():
        raise UsageError(f"{stems}: not a folder")
    session = Session(_settings(args, stems=stems, review=True, page=_page_options(args)))
    controller = SessionController(session, doc, {})
    session.reviewer = controller
    if not args.no_analysis:
        console, progress = _progress(out, session.settings)
        try:
            record = session.record_for_applied(doc)  # analysed and planned again: notes, loudness, amount
        except PlanStale as exc:
            console.close()
            print(f"mixbridge review: {exc.line()}; reviewing the plan as it is (no notes, no amount)", file=out)
        else:
            console.close()
            session.finish_pass(record)
            controller.update(dict(record.plan_doc), session.track_info(record))
            controller.replan_fn = session.replan
    try:
        server = serve_review_page(session, controller, session.settings.page, stems=stems,
                                   renders_dir=session.settings.state.renders_dir)
    except OSError as exc:
        if isinstance(exc, BridgeError):  # E_SURFACE_EXPOSED is a PermissionError too
            raise
        raise UsageError(f"cannot listen on {args.page_bind}:{args.page_port}: {exc}") from exc
    counters = _serve_until_signalled(server, session, out, f"mixbridge review: {server.url} (target {args.target}, "
                                      f"{len(controller.review.suggestions)} suggestions; Ctrl-C stops)")
    print(f"mixbridge review: stopped ({counters['actions']} actions, {counters['refused']} requests refused)",
          file=out, flush=True)
    return ExitStatus.OK


def cmd_install_scripts(args, out: TextIO) -> ExitStatus:
    """Copy the in-REAPER files into REAPER's resource path and say which actions to add (docs/scripts.md)."""
    from .install import actions_to_add, default_resource_path, install_scripts

    resource = Path(args.resource_path).expanduser() if args.resource_path else default_resource_path()
    steps = install_scripts(resource, dry_run=args.dry_run, force=args.force)
    verb = "would be " if args.dry_run else ""
    print(f"REAPER resource path: {resource}", file=out)
    for step in steps:
        note = f" (your version kept as {step.backup})" if step.backup else ""
        print(f"  {verb}{step.action:9} {step.dest}{note}", file=out)
    if not args.dry_run:
        print(f"\nNext, in REAPER: Actions > Show action list > New action > Load ReaScript..., and load these "
              f"from {resource / 'Scripts' / 'MixBridge'} (docs/scripts.md):", file=out)
        for action in actions_to_add():
            print(f"  {action}", file=out)
    return ExitStatus.OK


# --- the parser ------------------------------------------------------------------------------------

def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="mixbridge",
        description="Analyse REAPER stem bounces and suggest mix moves.")
    parser.add_argument("--version", action="version", version=f"mixbridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, func, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kwargs)
        p.set_defaults(func=func)
        commands[name] = p
        return p

    analyze = command("analyze", cmd_analyze, help="measure stems and the session they make together")
    analyze.add_argument("paths", nargs="+", help="stem files and/or folders of stems (WAV, FLAC, AIFF)")
    analyze.add_argument("--json", metavar="OUT", help="write the full result as JSON (schema_version 1)")
    analyze.add_argument("--markers", metavar="FILE", help="sections: REAPER marker/region CSV export or JSON")
    analyze.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    analyze.add_argument("--recursive", action="store_true", help="look for stems in sub-folders too")

    plan = command("plan", cmd_plan, help="analyse stems and propose mix moves as a reviewable plan")
    plan.add_argument("paths", nargs="+", help="stem files and/or folders of stems")
    plan.add_argument("--json", metavar="PLAN", required=True, help="write the plan here (docs/plan-json.md)")
    plan.add_argument("--notes", metavar="NOTES", help="write feedback notes (.html or .md; the twin is written too)")
    plan.add_argument("--reference", metavar="REF", help="a reference track to steer tonal balance towards")
    plan.add_argument("--amount", type=float, default=1.0, help="scale every move, 0..1 (0: findings only)")
    plan.add_argument("--roles", metavar="FILE", help="roles file (TOML/JSON): stem roles, offsets, manual tracks")
    plan.add_argument("--markers", metavar="FILE", help="sections: REAPER marker/region CSV export or JSON")
    plan.add_argument("--jobs", type=int, default=None)
    plan.add_argument("--recursive", action="store_true")

    def connection_options(p):
        """How to reach REAPER; the defaults are bridge.settings.Connection's (the only ones)."""
        p.add_argument("--host", help=f"REAPER's host (default {DEFAULTS.host})")
        p.add_argument("--web-port", type=int, help=f"REAPER web interface port (default {DEFAULTS.web_port})")
        p.add_argument("--osc-port", type=int, help=f"REAPER's OSC listen port, --target osc (default {DEFAULTS.osc_port})")
        p.add_argument("--listen", "--osc-listen", dest="osc_listen", type=int,
                       help=f"port on 127.0.0.1 for REAPER's OSC feedback, --target osc (default {DEFAULTS.osc_listen})")
        p.add_argument("--timeout", type=float, help=f"seconds to wait for each REAPER call (default {DEFAULTS.timeout_s:g})")
        p.add_argument("--osc-rate", type=float,
                       help=f"max OSC messages per second, --target osc (default {DEFAULTS.osc_rate:g})")

    def surface_options(p, note=""):
        defaults = SurfaceOptions()
        p.add_argument("--bind", default=defaults.bind, help="control surface address (default loopback only)" + note)
        p.add_argument("--port", type=int, default=defaults.port,
                       help=f"control surface UDP port (default {defaults.port})" + note)
        p.add_argument("--allow", nargs="+", metavar="HOST",
                       help="surface hosts allowed to send (required for a non-loopback --bind)")

    def page_options(p):
        defaults = ReviewPageOptions()
        p.add_argument("--page-bind", default=defaults.bind,
                       help="review page address (default loopback only; another needs --page-allow)")
        p.add_argument("--page-port", type=int, default=defaults.port,
                       help=f"review page TCP port (default {defaults.port}; 0 picks a free one)")
        p.add_argument("--page-allow", nargs="+", metavar="HOST",
                       help="hosts allowed to open the review page (required for a non-loopback --page-bind)")

    def reaper_options(p, stems_help: str):
        p.add_argument("--target", choices=["reaper", "osc"], default="reaper",
                       help="where to write: reaper (reapy, everything) or osc (REAPER's OSC surface; "
                            "see docs/reaper-osc.md for what OSC cannot do)")
        connection_options(p)
        p.add_argument("--stems", metavar="DIR", help=stems_help)

    apply = command("apply", cmd_apply, help="write a plan into the REAPER session (one undo point)")
    apply.add_argument("plan", help="a plan written by 'mixbridge plan --json' (or a watcher's pass)")
    reaper_options(apply, "the stems the plan came from: --notes analyses them; their .mixbridge/ holds the OSC "
                          "target's tags (default: the folder the plan records)")
    apply.add_argument("--reenable", nargs="*", metavar="TRACK:PARAM",
                       help="let the bridge write parameters the producer had taken over")
    apply.add_argument("--report", metavar="FILE", help="write what the pass did as JSON")
    apply.add_argument("--notes", metavar="NOTES", help="write feedback notes for this pass (needs the stems)")
    apply.add_argument("--reference", metavar="REF", help="the reference track the plan was made with (for --notes)")
    apply.add_argument("--jobs", type=int, default=None)

    revert = command("revert", cmd_revert, help="restore the pre-AI values and remove the AI FX (one undo point)")
    reaper_options(revert, "the stems folder whose .mixbridge/ holds the OSC target's tags (--target osc)")
    revert.add_argument("--track", help="only this track")

    ab = command("ab", cmd_ab, help="toggle between the pre-AI and AI states, level-matched")
    reaper_options(ab, "the stems folder whose .mixbridge/ holds the OSC target's tags (--target osc)")
    ab.add_argument("--plan", help="the applied plan (its loudness estimate sets the level match)")

    surface = command("surface", cmd_surface, help="serve /mixbridge OSC to control surfaces: review and accept "
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

    watch = command("watch", cmd_watch, help="watch a render folder: analyse, plan and apply every bounce "
                                             "(docs/workflow.md)")
    watch.add_argument("dir", metavar="DIR", help="the folder REAPER renders the stems into")
    watch.add_argument("--target", choices=["reaper", "osc", "plan"], default="plan",
                       help="where plans land (plan: files beside the stems, no DAW; the default)")
    watch.add_argument("--reference", metavar="REF", help="a reference track to steer tonal balance towards")
    watch.add_argument("--amount", type=float, default=1.0, help="scale every move, 0..1")
    watch.add_argument("--roles", metavar="FILE", help="roles file over DIR's mixbridge.toml (read once at start)")
    watch.add_argument("--markers", metavar="FILE",
                       help="sections: REAPER marker/region CSV export or JSON (read once at start)")
    watch.add_argument("--surface", action="store_true", help="also serve the OSC control surface (docs/osc.md)")
    watch.add_argument("--review-page", action="store_true",
                       help="also serve the review page: hear, accept and reject each suggestion in a browser "
                            "(docs/review.md)")
    watch.add_argument("--review", action=argparse.BooleanOptionalAction, default=None,
                       help="hold suggestions until accepted (default: on with --surface or --review-page)")
    watch.add_argument("--recursive", action="store_true", help="watch sub-folders too")
    watch.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                       help=f"without a bounce manifest, a bounce is complete this long after the last file event "
                            f"(default {WatchTimings().settle_s:g})")
    watch.add_argument("--name-pattern", metavar="RE",
                       help="map file names to track names, e.g. '(?P<track>.+?)_\\d+'")
    watch.add_argument("--render", action="store_true",
                       help="also render each pass offline (docs/render.md): level-matched before/after mixes the "
                            "notes can play, and the processed stems, in the pass folder")
    watch.add_argument("--verbose", action="store_true", help="log what the watcher does")
    connection_options(watch)
    surface_options(watch, note="; with --surface")
    page_options(watch)
    watch.add_argument("--jobs", type=int, default=None)

    review = command("review", cmd_review, help="serve the review page for a plan: hear, accept and reject each "
                                                "suggestion in a browser (docs/review.md)")
    review.add_argument("plan", help="a plan written by 'mixbridge plan --json' (or a watcher's pass)")
    review.add_argument("--stems", required=True, metavar="DIR", help="the stems the plan came from (rendered to "
                        "hear each suggestion; their .mixbridge/ keeps the renders)")
    review.add_argument("--target", choices=["reaper", "osc", "plan"], default="reaper",
                        help="where accepted suggestions land (plan: files in .mixbridge/, no DAW)")
    review.add_argument("--reference", metavar="REF", help="the reference track the plan was made with")
    review.add_argument("--no-analysis", action="store_true",
                        help="do not analyse the stems again (no notes, no amount; starts at once)")
    connection_options(review)
    page_options(review)
    review.add_argument("--jobs", type=int, default=None)

    render = command("render", cmd_render, help="apply a plan to the stems offline, as REAPER would: processed stems "
                                           "and level-matched before/after mixes (docs/render.md)")
    render.add_argument("plan", help="a plan written by 'mixbridge plan --json' (schema 1 or 2)")
    render.add_argument("stems", help="the stems folder the plan came from")
    render.add_argument("--out", required=True, metavar="DIR", help="where stems/, mix_before.wav, mix_after.wav "
                        "and render.json go")
    render.add_argument("--no-mixes", action="store_true", help="only the processed stems")
    render.add_argument("--pcm24", action="store_true", help="write the stems as 24-bit PCM (default 32-bit float)")

    demo = command("demo", cmd_demo, help="the full loop with no REAPER: synthesise a session with known problems, "
                                          "bounce it into a watched folder, plan, notes, re-bounce one stem")
    demo.add_argument("--dir", help="where to write the session (default: a new temporary folder)")
    demo.add_argument("--seconds", type=float, default=40.0, help="song length (default 40 s)")
    demo.add_argument("--jobs", type=int, default=None)

    install = command("install-scripts", cmd_install_scripts,
                      help="copy the ReaScripts, JSFX and OSC pattern file into REAPER's resource path")
    install.add_argument("--resource-path", metavar="DIR",
                         help="REAPER's resource path (default: the OS default, created if missing; "
                              "Options > Show REAPER resource path shows yours)")
    install.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")
    install.add_argument("--force", action="store_true", help="replace files you edited without a backup")
    return parser, commands


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; a mistyped option is reported by its subcommand's parser (its usage, a suggestion)."""
    parser, commands = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        sub = commands[args.command]
        known = [o for action in sub._actions for o in action.option_strings]
        hints = []
        for extra in extras:
            close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1) if extra.startswith("-") else []
            hints.append(f"{extra} (did you mean {close[0]}?)" if close else extra)
        sub.error("unrecognized arguments: " + " ".join(hints))
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse(argv)
    out = out or sys.stdout
    try:
        return int(args.func(args, out))
    except BridgeError as exc:
        print(f"mixbridge: {exc.line()}", file=sys.stderr)
        return int(exc.exit_status)
    except (KeyboardInterrupt, PassInterrupted):
        print("mixbridge: interrupted; nothing was left half-written (run the command again to redo it)",
              file=sys.stderr)
        return int(ExitStatus.OK)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return int(ExitStatus.OK)
