"""``mixbridge watch``: bounce in REAPER → analysis → plan → REAPER, hands-off.

Threads
-------
- the watchdog observer thread only puts paths on a queue (:mod:`.observer`);
- one worker thread does everything else, in order: drains the queue, follows files until they
  are complete (:mod:`.settle`), decides when a bounce is whole (manifest, else a settle window),
  runs the pass (:mod:`.passes`), retries a plan REAPER did not take, and handles requests
  (accept all pending, A/B, revert) from the Lua scripts or the caller;
- the optional control surface server runs its own threads and talks to the same target.

One worker keeps the order of things obvious (a pass never overlaps another) and lets events that
arrive during a pass simply wait in the queue: a burst of hundreds of files becomes one pass.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BridgeError, DawTimeout, DawUnavailable
from .bounce import Bounce, BounceManifest, ManifestEntry, compile_pattern, read_bounce_manifest
from .console import Console
from .filters import MANIFEST_NAME, classify
from .passes import (PassInterrupted, PassOutcome, analyse, make_plan, write_pass_files)
from .settle import PENDING, CompletenessTracker
from .state import Journal, StateFolder, recover, utc_now

log = logging.getLogger("mixbridge.watch")
# Quiet unless --verbose configures logging: the console line says what the producer needs.
log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class WatchSettings:
    """Everything ``mixbridge watch`` can be told.  Times in seconds.

    Attributes
    ----------
    folder : Path
        The render folder to watch.
    target : str
        ``plan`` (no DAW; the default), ``reaper`` (reapy) or ``osc``.
    settle_s : float
        Without a manifest, a bounce is complete this long after the last file event.
    poll_s, stable_polls : float, int
        A file is stable when its size and mtime are unchanged for ``stable_polls`` looks ``poll_s`` apart.
    incomplete_timeout_s : float
        A stable file whose header still disagrees with its length is given up on (an error in
        the notes) after this long without growth.
    manifest_timeout_s : float
        How long a manifest's pass waits for the files it lists; the missing ones become errors.
    manifest_grace_s : float
        In a folder that has a manifest, stems that arrive without a new one wait this long for it
        before they are analysed anyway.
    max_batch_wait_s : float
        A stream of events that never settles still gets a pass this often.
    name_pattern : str or None
        A regular expression with a ``track`` group mapping file names to track names.
    review : bool
        Hold suggestions as pending until accepted (default on with ``surface``).
    retry_initial_s, retry_max_s : float
        Back-off for a plan REAPER did not take (doubling).
    """

    folder: Path
    target: str = "plan"
    recursive: bool = False
    reference: Path | None = None
    amount: float = 1.0
    review: bool | None = None
    surface: bool = False
    surface_bind: str = "127.0.0.1"
    surface_port: int = 9100
    surface_allow: tuple[str, ...] = ()
    settle_s: float = 2.0
    poll_s: float = 0.25
    stable_polls: int = 2
    incomplete_timeout_s: float = 30.0
    manifest_timeout_s: float = 60.0
    manifest_grace_s: float = 20.0
    max_batch_wait_s: float = 120.0
    name_pattern: str | None = None
    jobs: int | None = None
    host: str = "127.0.0.1"
    web_port: int = 2307
    osc_port: int = 8000
    osc_listen: int = 9000
    timeout_s: float = 5.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    commands_poll_s: float = 1.0
    stop_timeout_s: float = 10.0

    @property
    def review_mode(self) -> bool:
        return self.surface if self.review is None else self.review


@dataclass
class _Queued:
    """A plan REAPER did not take yet (``outcome`` is None for one found on disk at a restart)."""

    number: int
    doc: dict[str, Any]
    outcome: PassOutcome | None
    delay_s: float
    next_try_s: float
    attempts: int = 1


@dataclass
class _Batch:
    """Events since the last pass."""

    first_s: float
    last_s: float
    grace_noted: bool = False
    no_grace: bool = False  # stems found at start-up: their manifest (if any) came and went


class Watcher:
    """Watch a render folder and run a pass per bounce.  See the module docstring.

    Parameters
    ----------
    settings : WatchSettings
    target : Target, optional
        Use this target object instead of ``make_target(settings.target, ...)`` (tests, embedding).
    console : Console, optional
    on_pass : callable, optional
        Called on the worker thread with each finished :class:`PassOutcome`.

    Examples
    --------
    >>> with Watcher(WatchSettings(Path("renders"))) as w:   # doctest: +SKIP
    ...     w.wait_for(lambda: w.passes, timeout_s=60)
    """

    def __init__(self, settings: WatchSettings, target: Any = None, console: Console | None = None,
                 on_pass: Callable[[PassOutcome], None] | None = None):
        self.settings = settings
        self.root = Path(settings.folder).resolve()
        self.pattern = compile_pattern(settings.name_pattern)
        self.console = console or Console()
        self.on_pass = on_pass
        self.state = StateFolder(self.root)
        self.events: "queue.Queue[Path]" = queue.Queue()
        self.tracker = CompletenessTracker(settings.poll_s, settings.stable_polls, settings.incomplete_timeout_s)
        self.passes: list[PassOutcome] = []
        self.errors: list[str] = []
        self._target = target
        self._journal: Journal | None = None
        self._observer = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._requests: "queue.Queue[tuple[str, tuple, threading.Event | None, list]]" = queue.Queue()
        self._batch: _Batch | None = None
        self._manifests: list[tuple[BounceManifest, float]] = []
        self._manifest_mode = False
        self._track_memory: dict[Path, ManifestEntry] = {}
        self._last: dict[str, Any] | None = None  # last-pass.json
        self._previous: PassOutcome | None = None
        self._next_pass = 1
        self._rerun: int | None = None
        self._queued: _Queued | None = None
        self._review = None  # bridge.suggest.review.Review, review mode without a surface
        self.controller = None
        self.surface = None
        self._commands = None
        self._next_commands_s = 0.0
        self._busy = False
        self.crashed: BaseException | None = None

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> "Watcher":
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root}: not a folder")
        self.state.ensure()
        self._journal = Journal(self.state.journal_path)
        rec = recover(self.state)
        self._last = rec.last_pass
        self._next_pass = rec.next_pass
        for n in rec.abandoned:
            self._journal.write("pass_abandoned", **{"pass": n, "why": "started twice without finishing"})
        if rec.rerun is not None:
            self._rerun = int(rec.rerun["pass"])
            self._journal.write("pass_rerun", **{"pass": self._rerun})
        if self._last is not None:
            for rel, info in (self._last.get("tracks") or {}).items():
                if info.get("guid"):
                    self._track_memory[self.root / rel] = ManifestEntry(self.root / rel, info.get("track", ""),
                                                                        info.get("guid", ""))
        if self._target is None:
            from ..daw.base import make_target

            s = self.settings
            self._target = make_target(s.target, host=s.host, web_port=s.web_port, osc_port=s.osc_port,
                                       osc_listen=s.osc_listen, timeout_s=s.timeout_s, state_dir=self.state.dir)
        self._journal.write("watch_started", folder=str(self.root), target=self.target_kind,
                            review=self.settings.review_mode, pid=os.getpid())
        if rec.queued_apply is not None:
            self._requeue_from_disk(rec.queued_apply)
        self._start_surface()
        self._start_commands()
        from .observer import FolderObserver

        self._observer = FolderObserver(self.root, self.settings.recursive, self.events)
        self._observer.start()  # before the start-up scan, so nothing written meanwhile is missed
        self._scan_at_startup()
        self.console.watching(self.root, self.target_kind, self.settings.review_mode)
        self._worker = threading.Thread(target=self._run, name="mixbridge-watch", daemon=True)
        self._worker.start()
        return self

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop the observer, let the worker finish its current step, close the journal.

        Returns whether everything ended within ``timeout_s`` (a pass interrupted mid-analysis is
        re-run on the next start).
        """
        timeout_s = self.settings.stop_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        clean = True
        if self._observer is not None:
            clean &= self._observer.stop(max(0.1, deadline - time.monotonic()))
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(max(0.1, deadline - time.monotonic()))
            clean &= not self._worker.is_alive()
        if self.surface is not None:
            try:
                self.surface.stop()
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("surface stop failed")
        if self._journal is not None:
            self._journal.write("watch_stopped", clean=clean)
            if clean:
                self._journal.close()
        if clean and self._target is not None:
            try:
                self._target.close()
            except Exception:  # noqa: BLE001
                log.exception("target close failed")
        self.console.close()
        with self._changed:
            self._changed.notify_all()
        return clean

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive() and not self._stop.is_set()

    @property
    def idle(self) -> bool:
        """Nothing under way: no queued event, no file being followed, no bounce forming, no pass running."""
        return (self.events.unfinished_tasks == 0 and self._requests.unfinished_tasks == 0 and self._batch is None
                and not self._manifests and not self.tracker.busy() and not self._busy and self._rerun is None)

    @property
    def observer_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    @property
    def target(self) -> Any:
        return self._target

    @property
    def target_kind(self) -> str:
        return getattr(self._target, "kind", self.settings.target) if self._target is not None else self.settings.target

    @property
    def queued(self) -> int | None:
        """The pass whose plan waits for REAPER, if any."""
        return self._queued.number if self._queued is not None else None

    def wait_for(self, condition: Callable[[], Any], timeout_s: float) -> bool:
        """Wait until ``condition()`` is true (re-checked after every pass and request), or the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                if condition():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return bool(condition())
                self._changed.wait(min(left, 0.1))

    def request(self, name: str, *args: Any, wait_s: float | None = None) -> Any:
        """Run ``accept_all``, ``ab``, ``revert`` or ``reanalyse`` on the worker thread.

        With ``wait_s``, waits for it and returns its result (``None`` on timeout).
        """
        done = threading.Event() if wait_s is not None else None
        box: list = []
        self._requests.put((name, args, done, box))
        if done is not None and done.wait(wait_s):
            return box[0] if box else None
        return None

    # --- the worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    first = self.events.get(timeout=self.settings.poll_s)
                except queue.Empty:
                    first = None
                now = time.monotonic()
                got = 0
                if first is not None:
                    got = 1
                    self._event(first, now)
                    for _ in range(100_000):  # bounded drain; the rest waits for the next turn
                        try:
                            path = self.events.get_nowait()
                        except queue.Empty:
                            break
                        got += 1
                        self._event(path, now)
                self.tracker.poll(now)
                self._handle_requests()
                self._poll_commands(now)
                self._retry_queued(now)
                bounce = self._ready_bounce(now)
                if bounce is not None:
                    self._run_pass(bounce)
                for _ in range(got):  # only now are these events fully handled (see `idle`)
                    self.events.task_done()
        except BaseException as exc:  # noqa: BLE001 - record why the watcher died, then let it die
            self.crashed = exc
            log.exception("watcher worker crashed")
            if self._journal is not None:
                self._journal.write("error", where="worker", error=repr(exc), trace=traceback.format_exc()[-2000:])
            self.console.error(f"the watcher stopped: {exc!r}")
        finally:
            with self._changed:
                self._changed.notify_all()

    def _event(self, path: Path, now: float) -> None:
        kind = classify(path, self.root, self.settings.recursive)
        if kind == "manifest":
            self._manifest_event(path, now)
            return
        if kind != "stem":
            return
        self.tracker.touch(path, now)
        if self._batch is None:
            self._batch = _Batch(now, now)
        self._batch.last_s = now

    def _manifest_event(self, path: Path, now: float) -> None:
        if not path.is_file():
            return
        self._manifest_mode = True
        try:
            manifest = read_bounce_manifest(path)
        except BridgeError as exc:
            self._journal.write("error", where="manifest", path=str(path), code=exc.code, message=exc.message)
            self.console.notice(f"{exc.code}: {exc.message} — ignoring this manifest; the stems are grouped "
                                f"by a {self.settings.settle_s:g} s settle window instead")
            self._manifest_mode = False
            return
        last_id = (self._last or {}).get("bounce_id")
        if manifest.bounce_id == last_id or any(m.bounce_id == manifest.bounce_id for m, _ in self._manifests):
            return  # the manifest of a bounce already handled (an extra event, or a restart)
        self._journal.write("bounce_seen", bounce=manifest.bounce_id, manifest=str(path),
                            stems=[str(e.file) for e in manifest.stems])
        self._manifests.append((manifest, now))
        for entry in manifest.stems:
            self._track_memory[entry.file] = entry
            self.tracker.touch(entry.file, now, final=True)

    # --- deciding that a bounce is whole --------------------------------------------------------------

    def _listing(self) -> list[Path]:
        from ..stems import find_stems

        return [p for p in find_stems([self.root], recursive=self.settings.recursive)
                if classify(p, self.root, self.settings.recursive) == "stem"]

    def _fingerprints(self, paths: list[Path]) -> dict[str, list[int]]:
        out = {}
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            out[p.relative_to(self.root).as_posix()] = [st.st_size, st.st_mtime_ns]
        return out

    def _ready_bounce(self, now: float) -> Bounce | None:
        s = self.settings
        if self._manifests:
            manifest, seen_s = self._manifests[-1]
            listed = [e.file for e in manifest.stems]
            waiting = [f for f in listed if self.tracker.status(f) == PENDING or not f.exists()]
            if waiting and now - seen_s < s.manifest_timeout_s:
                return None
            superseded = [m.bounce_id for m, _ in self._manifests[:-1]]
            self._manifests.clear()
            for bid in superseded:
                self._journal.write("bounce_superseded", bounce=bid, by=manifest.bounce_id)
            missing = tuple(f for f in listed if not f.exists())
            unlisted_busy = set(self.tracker.pending()) - set(listed)
            paths = [p for p in self._listing() if p not in unlisted_busy]
            for f in listed:  # listed but not a stem by its ending: it goes in, so its error reaches the notes
                if f.exists() and f not in paths:
                    paths.append(f)
            self._batch = None if not unlisted_busy else self._batch
            return self._bounce(manifest.bounce_id, "manifest", paths, missing, manifest.path, force=True)
        batch = self._batch
        if batch is None and self._rerun is None:
            return None
        if batch is None:
            batch = self._batch = _Batch(now - s.settle_s, now - s.settle_s)
        forced = now - batch.first_s >= s.max_batch_wait_s
        quiet = now - batch.last_s >= s.settle_s and not self.tracker.busy()
        if not (quiet or forced):
            return None
        if (self._manifest_mode and not forced and not batch.no_grace and self._rerun is None
                and now - batch.last_s < s.manifest_grace_s):
            if not batch.grace_noted:
                batch.grace_noted = True
                log.info("stems changed; waiting up to %g s for the bounce manifest", s.manifest_grace_s)
            return None
        pending = set(self.tracker.pending())
        paths = [p for p in self._listing() if p not in pending]
        reason = "rerun" if self._rerun is not None else ("timeout" if forced and not quiet else "settle")
        self._batch = _Batch(batch.last_s, batch.last_s) if pending else None
        if self._manifest_mode and batch.grace_noted:
            self.console.notice(f"no bounce manifest arrived within {s.manifest_grace_s:g} s; "
                                "analysing the folder as it is")
        return self._bounce("", reason, paths, (), None, force=self._rerun is not None)

    def _bounce(self, bounce_id: str, reason: str, paths: list[Path], missing: tuple[Path, ...],
                manifest: Path | None, force: bool) -> Bounce | None:
        paths = sorted(set(paths))
        fingerprints = self._fingerprints(paths)
        if not force and self._last is not None and fingerprints == self._last.get("stems"):
            self.tracker.forget(paths)
            return None  # nothing changed since the last pass (a touch, our own files, a restart)
        if not paths and not missing:
            return None
        if not bounce_id:
            import hashlib
            import json

            digest = hashlib.sha256(json.dumps(fingerprints, sort_keys=True).encode()).hexdigest()[:12]
            bounce_id = f"settle-{digest}"
        self.tracker.forget(paths)
        return Bounce(bounce_id, reason, tuple(paths), missing, manifest, fingerprints)

    def _scan_at_startup(self) -> None:
        """Stems already there count as a bounce only if they differ from the last pass."""
        now = time.monotonic()
        manifest_path = self.root / MANIFEST_NAME
        if manifest_path.is_file():
            self._manifest_mode = True
            self._manifest_event(manifest_path, now)
            if self._manifests:
                return
        paths = self._listing()
        if self._rerun is None and self._last is not None and self._fingerprints(paths) == self._last.get("stems"):
            return
        if not paths and self._rerun is None:
            return
        for p in paths:
            self.tracker.touch(p, now)
        # Written before we started: no settle wait, and no waiting for a manifest that came and went.
        self._batch = _Batch(now - self.settings.settle_s, now - self.settings.settle_s, no_grace=True)

    # --- the pass -------------------------------------------------------------------------------------

    def _run_pass(self, bounce: Bounce) -> None:
        if self._rerun is not None:
            number, self._rerun = self._rerun, None
        else:
            number = self._next_pass
        self._next_pass = max(self._next_pass, number + 1)
        j = self._journal
        j.write("pass_started", **{"pass": number, "bounce": bounce.id, "reason": bounce.reason,
                                   "manifest": str(bounce.manifest) if bounce.manifest else None,
                                   "stems": bounce.fingerprints, "missing": [str(p) for p in bounce.missing]})
        started = time.monotonic()
        self._busy = True
        try:
            outcome = self._analyse_and_plan(number, bounce)
            if outcome is None:
                return
            self._apply(outcome)
            self._finish(outcome, started)
        except PassInterrupted:
            j.write("pass_interrupted", **{"pass": number})
        except Exception as exc:  # noqa: BLE001 - one bad pass must not stop the watcher
            log.exception("pass %d failed", number)
            j.write("pass_done", **{"pass": number, "status": "failed", "error": repr(exc),
                                    "trace": traceback.format_exc()[-2000:]})
            self.errors.append(f"pass {number}: {exc!r}")
            self.console.error(f"pass {number} failed: {exc!r} (the watcher carries on)")
            self._last = dict(self._last or {}, stems=bounce.fingerprints, bounce_id=bounce.id)
        finally:
            self._busy = False
            with self._changed:
                self._changed.notify_all()

    def _progress(self, stem) -> None:
        if self._stop.is_set():
            raise PassInterrupted()
        self.console.stem_done(stem.name, stem.error.code if stem.error is not None else None)

    def _analyse_and_plan(self, number: int, bounce: Bounce) -> PassOutcome | None:
        s = self.settings
        self.console.pass_started(number, len(bounce.paths))
        result = analyse(bounce, cache_dir=self.state.cache_dir, jobs=s.jobs, progress=self._progress)
        # A stem rewritten while we read it: this analysis is stale.  Drop it; the new events are queued.
        now_prints = self._fingerprints(list(bounce.paths))
        if now_prints != bounce.fingerprints:
            changed = sorted(set(now_prints.items()) ^ set((k, tuple(v)) for k, v in bounce.fingerprints.items()))
            self._journal.write("pass_superseded", **{"pass": number, "why": "stems changed during analysis",
                                                      "changed": [c[0] for c in changed][:20]})
            self._rerun = number  # the same number, once the files settle
            return None
        self._journal.write("analysed", **{"pass": number, "stems": len(result.stems), "failed": len(result.failed),
                                           "reanalysed": list(getattr(result, "reanalysed", ()) or ()),
                                           "cached": list(getattr(result, "cached", ()) or ())})
        for stem in result.failed:
            self._journal.write("stem_error", **{"pass": number, "stem": stem.name, "code": stem.error.code,
                                                 "message": stem.error.message})
        manifest_map = dict(self._track_memory)
        plan, doc, tracks = make_plan(result, self.root, reference=s.reference, amount=s.amount,
                                      pattern=self.pattern, manifest_map=manifest_map)
        outcome = PassOutcome(number, bounce, result, plan, doc, tracks)
        if self._previous is not None:
            from ..notes.model import compare_bounces

            outcome.changes = compare_bounces(self._previous.result, self._previous.plan, result, plan,
                                              reanalysed=outcome.reanalysed)
        return outcome

    # --- applying -------------------------------------------------------------------------------------

    def _review_plan(self, outcome: PassOutcome) -> dict[str, Any]:
        """Review mode: carry the decisions over to the new plan; the target gets the accepted part."""
        from ..suggest.review import Review

        if self.controller is not None:
            from ..control.controller import track_info_from_result

            self.controller.update(outcome.plan_doc, track_info_from_result(outcome.result))
            review = self.controller.review
        else:
            self._review = Review(outcome.plan_doc) if self._review is None else self._review.updated(outcome.plan_doc)
            review = self._review
        outcome.pending_review = tuple({"track": sg.track, "suggestion": sg.id, "code": sg.code,
                                        "summary": sg.summary} for sg in review.pending() if sg.has_moves)
        return review.plan_for_target()

    def _apply(self, outcome: PassOutcome) -> None:
        doc = self._review_plan(outcome) if self.settings.review_mode else outcome.plan_doc
        outcome.applied_doc = doc
        self._apply_doc(outcome, doc)

    def _apply_doc(self, outcome: PassOutcome, doc: dict[str, Any], retry: bool = False,
                   reenable: set[str] | None = None) -> bool:
        """One attempt; a DAW that is down queues the plan (returns False)."""
        j = self._journal
        try:
            report = self._target.apply(doc, reenable=reenable) if reenable else self._target.apply(doc)
        except (DawUnavailable, DawTimeout) as exc:
            outcome.apply_state, outcome.apply_error = "queued", f"{exc.code}: {exc.message}"
            if retry:
                return False  # still down: the caller backs off, quietly
            j.write("apply_queued", **{"pass": outcome.number, "code": exc.code, "message": exc.message})
            if self._queued is not None and self._queued.number != outcome.number:
                # apply() is cumulative: the newest plan holds everything, the older one is moot.
                j.write("apply_superseded", **{"pass": self._queued.number, "by": outcome.number})
            first = self._queued is None
            delay = self.settings.retry_initial_s
            self._queued = _Queued(outcome.number, doc, outcome, delay, time.monotonic() + delay)
            if first:
                self.console.notice(f"REAPER is not answering ({exc.code}); pass {outcome.number}'s plan is "
                                    f"queued and will be written when it is back")
            return False
        except BridgeError as exc:
            outcome.apply_state, outcome.apply_error = "failed", f"{exc.code}: {exc.message}"
            j.write("apply_failed", **{"pass": outcome.number, "code": exc.code, "message": exc.message})
            self.console.error(f"pass {outcome.number}: the target refused the plan: {exc.code}: {exc.message}")
            return False
        outcome.report, outcome.apply_state, outcome.apply_error = report, "applied", None
        j.write("applied", **{"pass": outcome.number, "target": self.target_kind, "undo": report.undo_name,
                              "writes": len(report.writes), "overrides": len(report.overrides),
                              "pending": len(report.pending), "target_pass": report.pass_number})
        try:
            outcome.provenance = dict(self._target.provenance())
        except (BridgeError, AttributeError) as exc:
            log.info("provenance unavailable: %s", exc)
        return True

    def _retry_queued(self, now: float) -> None:
        q = self._queued
        if q is None or now < q.next_try_s:
            return
        self._journal.write("apply_retry", **{"pass": q.number, "attempt": q.attempts + 1})
        if q.outcome is not None:
            self._queued = None
            if self._apply_doc(q.outcome, q.doc, retry=True):
                self.console.notice(f"REAPER is back: pass {q.number} applied "
                                    f"({q.outcome.moves} moves) after {q.attempts + 1} attempts")
                self._write_outcome(q.outcome)
            elif q.outcome.apply_state == "queued" and self._queued is None:
                delay = min(q.delay_s * 2, self.settings.retry_max_s)
                self._queued = _Queued(q.number, q.doc, q.outcome, delay, time.monotonic() + delay, q.attempts + 1)
            with self._changed:
                self._changed.notify_all()
            return
        # A plan found on disk at a restart: no analysis in memory, so the notes stay as written.
        try:
            report = self._target.apply(q.doc)
        except (DawUnavailable, DawTimeout):
            delay = min(q.delay_s * 2, self.settings.retry_max_s)
            self._queued = _Queued(q.number, q.doc, None, delay, time.monotonic() + delay, q.attempts + 1)
            return
        except BridgeError as exc:
            self._queued = None
            self._journal.write("apply_failed", **{"pass": q.number, "code": exc.code, "message": exc.message})
            self.console.error(f"pass {q.number}: the target refused the queued plan: {exc.code}: {exc.message}")
            return
        self._queued = None
        self._journal.write("applied", **{"pass": q.number, "target": self.target_kind, "undo": report.undo_name,
                                          "writes": len(report.writes), "overrides": len(report.overrides),
                                          "pending": len(report.pending), "target_pass": report.pass_number})
        if self._last is not None and self._last.get("pass") == q.number:
            self._last = dict(self._last, applied=True, apply="applied")
            self.state.write_last_pass(self._last)
        self.console.notice(f"REAPER is back: pass {q.number}'s queued plan applied ({len(report.writes)} writes)")
        with self._changed:
            self._changed.notify_all()

    def _requeue_from_disk(self, number: int) -> None:
        """A restart found a plan REAPER never took: queue it again (notes are rewritten when it lands)."""
        import json

        try:
            doc = json.loads((self.state.pass_dir(number) / "plan.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self._journal.write("apply_requeued", **{"pass": number})
        for key in ("applied", "overrides", "pending", "changes_since_previous"):
            doc.pop(key, None)
        self._queued = _Queued(number, doc, None, self.settings.retry_initial_s, 0.0)
        self.console.notice(f"pass {number}'s plan never reached REAPER; it is queued again")

    # --- finishing ------------------------------------------------------------------------------------

    def _write_outcome(self, outcome: PassOutcome) -> None:
        beside = self.root if self.target_kind == "plan" else None
        write_pass_files(outcome, self.state.pass_dir(outcome.number), self.target_kind, beside, self._journal)
        self._write_last(outcome)

    def _write_last(self, outcome: PassOutcome) -> None:
        tracks = {}
        for s in outcome.result.stems:
            ref = outcome.tracks.get(s.name)
            if ref is None:
                continue
            try:
                rel = Path(s.path).resolve().relative_to(self.root).as_posix()
            except ValueError:
                continue
            tracks[rel] = {"stem": ref.stem, "track": ref.track, "guid": ref.guid, "source": ref.source}
        self._last = {
            "schema": "mixbridge-last-pass", "pass": outcome.number, "bounce_id": outcome.bounce.id,
            "finished_at": utc_now(), "stems": outcome.bounce.fingerprints, "plan_id": outcome.plan.id,
            "analysis_id": outcome.plan.analysis_id, "applied": outcome.apply_state == "applied",
            "apply": outcome.apply_state, "held": bool(outcome.pending_review) and outcome.apply_state == "applied",
            "target": self.target_kind, "tracks": tracks, "notes": outcome.files.get("notes", ""),
        }
        self.state.write_last_pass(self._last)

    def _finish(self, outcome: PassOutcome, started: float) -> None:
        outcome.seconds = time.monotonic() - started
        self._write_outcome(outcome)
        self._journal.write("pass_done", **{"pass": outcome.number, "status": "ok", "plan": outcome.plan.id,
                                            "apply": outcome.apply_state, "seconds": round(outcome.seconds, 3)})
        state = {"applied": "applied", "queued": "queued (REAPER unreachable)", "failed": "not applied"}[
            outcome.apply_state] if outcome.apply_state in ("applied", "queued", "failed") else outcome.apply_state
        overrides = len(outcome.report.overrides) if outcome.report is not None else 0
        moves = outcome.moves
        if outcome.pending_review:
            state += f", {len(outcome.pending_review)} suggestions waiting for review"
        reanalysed, cached = outcome.reanalysed, outcome.cached
        outcome.line = self.console.pass_line(
            outcome.number, stems=len(outcome.result.stems),
            reanalysed=None if reanalysed is None else len(reanalysed),
            cached=None if cached is None else len(cached), failed=len(outcome.result.failed),
            findings=outcome.findings, moves=moves, moves_state=state, overrides=overrides,
            notes=outcome.files.get("notes", ""), seconds=outcome.seconds)
        self._previous = outcome
        self.passes.append(outcome)
        if self.on_pass is not None:
            self.on_pass(outcome)

    # --- requests: Lua scripts, the surface, the caller -------------------------------------------------

    def _handle_requests(self) -> None:
        while True:
            try:
                name, args, done, box = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(self._do_request(name, *args))
            except BridgeError as exc:
                box.append(f"{exc.code}: {exc.message}")
            finally:
                self._requests.task_done()
                if done is not None:
                    done.set()
                with self._changed:
                    self._changed.notify_all()

    def _do_request(self, name: str, *args: Any) -> str:
        self._journal.write("request", name=name)
        last = self.passes[-1] if self.passes else None
        if name == "accept_all":
            # "Accept all pending" (Lua script, surface): the suggestions held for review, and the
            # moves the target left pending because the producer had changed those parameters by hand.
            if last is None:
                return "nothing to accept yet"
            doc = last.applied_doc if last.applied_doc is not None else last.plan_doc
            held = len(last.pending_review)
            if self.controller is not None:
                # The watcher applies (and reports) itself; the controller only keeps the decisions.
                doc = self.controller.record_accept_all()
            elif self._review is not None:
                self._review = self._review.accept_all()
                doc = self._review.plan_for_target()
            reenable = {f"{p['track']}:{p['param']}" for p in (last.report.pending if last.report else [])}
            if not held and not reenable:
                return "nothing pending"
            last.pending_review = ()
            last.applied_doc = doc
            ok = self._apply_doc(last, doc, reenable=reenable)
            self._write_outcome(last)
            if self.controller is not None:
                self.controller.update(last.plan_doc)  # publishes the new state to the surface
            if not ok:
                return f"accepted; {last.apply_error}"
            return f"accepted {held} suggestions, re-enabled {len(reenable)} parameters: {last.moves} moves written"
        if name == "ab":
            delta = float(((last.plan_doc.get("mix") or {}).get("estimated_ai_delta_lu") or 0.0)) if last else 0.0
            state = self._target.ab_toggle(delta)
            return f"A/B: now {state['state']} ({state['compensation_db']:+.1f} dB)"
        if name == "revert":
            report = self._target.revert(*args)
            if self._review is not None:
                self._review = self._review.unaccept_all()
            return f"reverted: {len(report.writes)} values restored"
        if name == "reanalyse":
            paths = self._listing()
            self._run_pass(Bounce(f"reanalyse-{self._next_pass}", "reanalyse", tuple(paths), (), None,
                                  self._fingerprints(paths)))
            return "re-analysed"
        return f"unknown request {name!r}"

    def _start_commands(self) -> None:
        if self.target_kind not in ("reaper", "osc"):
            return
        try:
            from ..daw.commands import ExtStateCommands
        except ImportError:
            log.info("bridge.daw.commands not available: the Lua request scripts are not polled")
            return
        self._commands = ExtStateCommands(self.settings.host, self.settings.web_port)

    def _poll_commands(self, now: float) -> None:
        if self._commands is None or now < self._next_commands_s:
            return
        self._next_commands_s = now + self.settings.commands_poll_s
        try:
            commands = self._commands.poll()
        except Exception as exc:  # noqa: BLE001 - documented never to raise; belt and braces
            log.info("command poll failed: %s", exc)
            return
        for cmd in commands:
            try:
                reply = self._do_request(cmd.name)
            except BridgeError as exc:
                reply = f"{exc.code}: {exc.message}"
            self.console.notice(f"REAPER asked: {cmd.name} → {reply}")
            try:
                self._commands.reply(cmd.seq, reply)
            except Exception as exc:  # noqa: BLE001
                log.info("command reply failed: %s", exc)

    def _start_surface(self) -> None:
        """``--surface``: the control-surface server in this process, reviewing each new pass."""
        if not self.settings.surface:
            return
        try:
            from ..control.controller import SessionController, track_info_from_result
            from ..control.server import SurfaceServer
        except ImportError:
            self.console.notice("the control surface is not available in this build (bridge.control missing)")
            return

        def reanalyse():
            self.request("reanalyse")  # the worker runs it as a pass, which updates the controller
            return None

        def replan(amount: float):
            last = self.passes[-1] if self.passes else None
            if last is None:
                return None
            _, doc, _ = make_plan(last.result, self.root, reference=self.settings.reference, amount=amount,
                                  pattern=self.pattern, manifest_map=dict(self._track_memory))
            return doc, track_info_from_result(last.result)

        self.controller = SessionController(self._target, {"tracks": []}, {}, reanalyse=reanalyse, replan=replan)
        self.surface = SurfaceServer(self.controller, bind=self.settings.surface_bind,
                                     port=self.settings.surface_port, allow=tuple(self.settings.surface_allow))
        self.surface.start()
        host, port = getattr(self.surface, "address", (self.settings.surface_bind, self.settings.surface_port))
        self.console.notice(f"control surface on udp://{host}:{port}")
