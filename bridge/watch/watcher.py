"""``mixbridge watch``: bounce in REAPER → analysis → plan → REAPER, hands-off.

The watcher decides *when* there is a bounce; :class:`bridge.session.Session` runs the pass
(analyse → plan → map tracks → apply → review), the same loop every other command uses.

Threads
-------
- the watchdog observer thread only puts paths on a queue (:mod:`.observer`);
- one worker thread does everything else, in order: drains the queue, follows files until they
  are complete (:mod:`.settle`), decides when a bounce is whole (manifest, else a settle window),
  runs the pass through the session, retries a plan REAPER did not take, and handles requests
  (accept all pending, A/B, revert) from the Lua scripts or the caller;
- the optional control surface server and review page (``--surface``, ``--review-page``) run their own
  threads and reach the target through the same session (whose lock serialises every target call; see
  :mod:`bridge.session`) and the same review state (one controller).

One worker keeps the order of things obvious (a pass never overlaps another) and lets events that
arrive during a pass simply wait in the queue: a burst of hundreds of files becomes one pass.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..console import Console
from ..errors import UNREACHABLE, BridgeError, DiskFull, PassInterrupted
from ..session import PassRecord, Session, filled_plan_doc, notes_input, record_doc
from ..settings import Settings
from ..tracks import BounceManifest, ManifestEntry, read_bounce_manifest
from .bounce import Bounce
from .filters import MANIFEST_NAME, classify
from .settle import PENDING, CompletenessTracker
from .state import Journal, StateFolder, WatchLock, recover, utc_now

log = logging.getLogger("mixbridge.watch")
# Quiet unless --verbose configures logging: the console line says what the producer needs.
log.addHandler(logging.NullHandler())

#: Written beside the stems by the ``plan`` target, where a producer looks.
PLAN_BESIDE_NAME = "mixbridge-plan.json"
NOTES_BESIDE_NAME = "mixbridge-notes.html"


@dataclass
class _Queued:
    """A plan REAPER did not take yet (``record`` is None for one found on disk at a restart)."""

    number: int
    doc: dict[str, Any]
    record: PassRecord | None
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
    settings : Settings
        ``settings.stems`` is the render folder; its timings are ``settings.timings``.
    target : Target, optional
        Use this target object instead of the one the settings name (tests, embedding).
    console : Console, optional
    on_pass : callable, optional
        Called on the worker thread with each finished :class:`~bridge.session.PassRecord`.

    Examples
    --------
    >>> with Watcher(Settings(Path("renders"))) as w:   # doctest: +SKIP
    ...     w.wait_for(lambda: w.passes, timeout_s=60)
    """

    def __init__(self, settings: Settings, target: Any = None, console: Console | None = None,
                 on_pass: Callable[[PassRecord], None] | None = None):
        if settings.stems is None:
            raise ValueError("the watcher needs settings.stems (the render folder)")
        self.settings = settings
        self.timings = settings.timings
        self.root = Path(settings.stems).resolve()
        self.console = console or Console()
        self.on_pass = on_pass
        self.state = StateFolder(self.root, notice=self.console.notice)
        self._lock: WatchLock | None = None
        self.events: "queue.Queue[Path]" = queue.Queue()
        t = self.timings
        self.tracker = CompletenessTracker(t.poll_s, t.stable_polls, t.incomplete_timeout_s)
        self.passes: list[PassRecord] = []
        self.errors: list[str] = []
        self._target = target
        self.session: Session | None = None
        self._journal: Journal | None = None
        self._observer = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._requests: "queue.Queue[tuple[str, tuple, threading.Event | None, list]]" = queue.Queue()
        self._batch: _Batch | None = None
        self._manifests: list[tuple[BounceManifest, float]] = []
        self._manifest_mode = False
        self._last: dict[str, Any] | None = None  # last-pass.json
        self._next_pass = 1
        self._rerun: int | None = None
        self._queued: _Queued | None = None
        self.controller = None
        self.surface = None
        self.review_page = None
        self._commands = None
        self._next_commands_s = 0.0
        self._busy = False
        self.files: dict[int, dict[str, str]] = {}  # pass number -> the files it wrote
        self.crashed: BaseException | None = None
        self._retry_at = 0.0  # a pass that hit a full disk runs again from this time (monotonic)
        self._disk_delay = 0.0
        self._abandoned_stems: dict | None = None

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> "Watcher":
        """Take the folder's lock, recover, start the observer and the worker.

        Raises
        ------
        WatchLocked
            ``E_WATCH_LOCKED``: another live watcher holds this folder (its PID is in the message).
        StateFolderError
            ``E_STATE_FOLDER``: ``.mixbridge`` cannot be created or written.
        """
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root}: not a folder")
        self.state.ensure()
        self._lock = WatchLock(self.state.dir / "watch.lock", self.state.notice)
        self._lock.acquire()
        try:
            self._start()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _start(self) -> None:
        rec = recover(self.state)  # before the journal opens: a bad one is moved aside first
        self._journal = Journal(self.state.journal_path, self.state.notice)
        self._last = rec.last_pass
        self._next_pass = rec.next_pass
        self._abandoned_stems = rec.abandoned_stems
        for n in rec.abandoned:
            self._journal.write("pass_abandoned", **{"pass": n, "why": "started twice without finishing"})
        if rec.rerun is not None:
            self._rerun = int(rec.rerun["pass"])
            self._journal.write("pass_rerun", **{"pass": self._rerun})
        self.session = Session(self.settings, self._target)
        self._target = self.session.target
        self.session.on_record(self._record_changed)
        if self._last is not None:
            self.session.remember([ManifestEntry(self.root / rel, info.get("track", ""), info.get("guid", ""))
                                   for rel, info in (self._last.get("tracks") or {}).items() if info.get("guid")])
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

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop the observer, let the worker finish its current step, close the journal.

        Returns whether everything ended within ``timeout_s`` (a pass interrupted mid-analysis is
        re-run on the next start).
        """
        timeout_s = self.timings.stop_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        clean = True
        if self._observer is not None:
            clean &= self._observer.stop(max(0.1, deadline - time.monotonic()))
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(max(0.1, deadline - time.monotonic()))
            clean &= not self._worker.is_alive()
        if self.surface is not None:
            self.surface.stop()
        if self.review_page is not None:
            self.review_page.stop(max(0.1, deadline - time.monotonic()))
        if self._journal is not None:
            self._journal.write("watch_stopped", clean=clean)
            if clean:
                self._journal.close()
        if clean and self.session is not None:
            self.session.close()
        if self._lock is not None and clean:
            self._lock.release()
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
    def busy(self) -> bool:
        """A pass is under way (stopping now leaves it to re-run on the next start)."""
        return self._busy

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
                    first = self.events.get(timeout=self.timings.poll_s)
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
                try:
                    self._retry_queued(now)
                except DiskFull as exc:
                    self.console.error(f"a queued plan could not be recorded: {exc.line()}")
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
        before = self._stat(path)
        try:
            manifest = read_bounce_manifest(path)
        except BridgeError as exc:
            if before is None or self._stat(path) != before:
                return  # rewritten while we read it: its next event brings the whole file
            self._journal.write("error", where="manifest", path=str(path), code=exc.code, message=exc.message)
            self.console.notice(f"{exc.code}: {exc.message} — ignoring this manifest; the stems are grouped "
                                f"by a {self.timings.settle_s:g} s settle window instead")
            self._manifest_mode = False
            return
        last_id = (self._last or {}).get("bounce_id")
        if manifest.bounce_id == last_id or any(m.bounce_id == manifest.bounce_id for m, _ in self._manifests):
            return  # the manifest of a bounce already handled (an extra event, or a restart)
        self._journal.write("bounce_seen", bounce=manifest.bounce_id, manifest=str(path),
                            stems=[str(e.file) for e in manifest.stems])
        self._manifests.append((manifest, now))
        for entry in manifest.stems:
            self.tracker.touch(entry.file, now, final=True)
        self.session.remember(manifest.stems)

    @staticmethod
    def _stat(path: Path) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino

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
        s = self.timings
        if now < self._retry_at:
            return None  # the disk was full: wait for the retry time
        if self._manifests:
            manifest, seen_s = self._manifests[-1]
            listed = [e.file for e in manifest.stems]
            waiting = [f for f in listed if self.tracker.status(f) == PENDING or not f.exists()]
            if waiting and now - seen_s < s.manifest_timeout_s:
                self.console.waiting(len(waiting))
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
        busy = self.tracker.pending()
        quiet = now - batch.last_s >= s.settle_s and not busy
        if not (quiet or forced):
            self.console.waiting(len(busy))
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
        if self._rerun is None and self._abandoned_stems is not None and self._fingerprints(paths) == self._abandoned_stems:
            # The same stems stopped the process twice: no third try on every restart (no crash loop).
            self.console.notice("the last pass on these stems was abandoned after stopping the watcher twice; "
                                "it runs again when a stem changes")
            return
        if not paths and self._rerun is None:
            return
        for p in paths:
            self.tracker.touch(p, now)
        # Written before we started: no settle wait, and no waiting for a manifest that came and went.
        self._batch = _Batch(now - self.timings.settle_s, now - self.timings.settle_s, no_grace=True)

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
            self.console.pass_started(number, len(bounce.paths))
            record = self.session.run_pass(number, paths=list(bounce.paths), missing=bounce.missing, bounce=bounce,
                                           progress=self._progress, should_stop=self._stop.is_set, apply=False)
            # A stem rewritten while we read it: this analysis is stale.  Drop it; the new events are queued.
            now_prints = self._fingerprints(list(bounce.paths))
            if now_prints != bounce.fingerprints:
                changed = sorted(k for k in set(now_prints) | set(bounce.fingerprints)
                                 if now_prints.get(k) != bounce.fingerprints.get(k))
                j.write("pass_superseded", **{"pass": number, "why": "stems changed during analysis",
                                              "changed": changed[:20]})
                self._rerun = number  # the same number, once the files settle
                return
            c = record.counts
            j.write("analysed", **{"pass": number, "stems": c.stems, "failed": c.failed,
                                   "reanalysed": list(record.reanalysed or ()), "cached": list(record.cached or ())})
            for stem in record.failed:
                j.write("stem_error", **{"pass": number, "stem": stem.name, "code": stem.code, "message": stem.message})
            record = self.session.apply_pass(record)
            self._journal_apply(record)
            record = self.session.finish_pass(record, seconds=time.monotonic() - started)
            self._finish(record)
            self._disk_ok()
        except PassInterrupted:
            j.write("pass_interrupted", **{"pass": number})
        except DiskFull as exc:
            self._disk_full(number, exc)
        except Exception as exc:  # noqa: BLE001 - one bad pass must not stop the watcher; a bug is shown in full
            log.exception("pass %d failed", number)
            j.write("pass_done", **{"pass": number, "status": "failed", "error": repr(exc),
                                    "trace": traceback.format_exc()[-2000:]})
            self.errors.append(f"pass {number}: {exc!r}")
            self.console.error(f"pass {number} failed: {exc!r} (a bug: the journal has the traceback; "
                               f"the watcher carries on)")
            self._last = dict(self._last or {}, stems=bounce.fingerprints, bounce_id=bounce.id)
        finally:
            self._busy = False
            with self._changed:
                self._changed.notify_all()

    def _disk_full(self, number: int, exc: DiskFull) -> None:
        """The pass hit a full disk: its scratch is gone (the pipeline removed it); say so once, try again later."""
        first = self._disk_delay == 0.0
        t = self.timings
        self._disk_delay = t.retry_initial_s * 4 if first else min(self._disk_delay * 2, max(t.retry_max_s, 1.0))
        self._retry_at = time.monotonic() + self._disk_delay
        self._journal.write("pass_deferred", **{"pass": number, "code": exc.code, "error": exc.line()})
        self._rerun = number
        if first:
            self.console.error(f"pass {number}: {exc.line()} (the watcher keeps running and tries again "
                               f"every {self._disk_delay:g}-{max(t.retry_max_s, 1.0):g} s)")

    def _disk_ok(self) -> None:
        if self._disk_delay:
            self._disk_delay, self._retry_at = 0.0, 0.0
            self.console.notice("there is room on the disk again: the pass ran")

    def _progress(self, stem) -> None:
        if self._stop.is_set():
            raise PassInterrupted()
        self.console.stem_done(stem.name, stem.error.code if stem.error is not None else None)

    def _journal_apply(self, record: PassRecord) -> None:
        """One journal line for an apply outcome, with the record's counts (the console's and the notes')."""
        c = record.counts
        if record.state == "queued":
            self._journal.write("apply_queued", **{"pass": record.number, "error": record.error})
            self._queue(record)
        elif record.state == "failed":
            self._journal.write("apply_failed", **{"pass": record.number, "error": record.error})
            self.console.error(f"pass {record.number}: the target refused the plan: {record.error}")
        elif record.state in ("applied", "proposed"):
            report = record.report
            self._journal.write("applied", **{"pass": record.number, "target": self.target_kind, "state": record.state,
                                              "undo": report.undo_name, "changes": c.changes, "restored": c.restored,
                                              "unchanged": c.unchanged, "overrides": c.overrides,
                                              "pending": c.pending, "held": c.held,
                                              "target_pass": report.pass_number})
        else:
            self._journal.write("apply_held", **{"pass": record.number, "held": c.held})

    def _queue(self, record: PassRecord) -> None:
        """REAPER is away: keep the newest plan (targets apply cumulatively) and retry with back-off."""
        if self._queued is not None and self._queued.number != record.number:
            self._journal.write("apply_superseded", **{"pass": self._queued.number, "by": record.number})
        first = self._queued is None
        delay = self.timings.retry_initial_s
        self._queued = _Queued(record.number, dict(record.applied_doc or record.plan_doc), record, delay,
                               time.monotonic() + delay)
        if first:
            self.console.notice(f"REAPER is not answering ({record.error}); pass {record.number}'s plan is "
                                f"queued and will be written when it is back")

    def _retry_queued(self, now: float) -> None:
        q = self._queued
        if q is None or now < q.next_try_s:
            return
        self._journal.write("apply_retry", **{"pass": q.number, "attempt": q.attempts + 1})
        if q.record is not None:
            record = self.session.apply_record(q.record, q.doc, notify=False)
            if record.state == "queued":
                delay = min(q.delay_s * 2, self.timings.retry_max_s)
                self._queued = _Queued(q.number, q.doc, record, delay, time.monotonic() + delay, q.attempts + 1)
                return
            self._journal_apply(record)
            if record.state in ("applied", "proposed"):
                self.console.notice(f"REAPER is back: pass {q.number} applied "
                                    f"({record.counts.changes} changes) after {q.attempts + 1} attempts")
            self._replace(self._write_outcome(record))
            self._queued = None  # only now: `queued is None` means the pass's files say what landed
        else:
            # A plan found on disk at a restart: no analysis in memory, so the notes stay as written.
            try:
                report = self.session.apply(q.doc)
            except UNREACHABLE:
                delay = min(q.delay_s * 2, self.timings.retry_max_s)
                self._queued = _Queued(q.number, q.doc, None, delay, time.monotonic() + delay, q.attempts + 1)
                return
            except BridgeError as exc:
                self._queued = None
                self._journal.write("apply_failed", **{"pass": q.number, "error": exc.line()})
                self.console.error(f"pass {q.number}: the target refused the queued plan: {exc.line()}")
                return
            self._journal.write("applied", **{"pass": q.number, "target": self.target_kind, "undo": report.undo_name,
                                              "changes": len(report.written), "restored": len(report.restored),
                                              "overrides": len(report.overrides), "pending": len(report.pending),
                                              "target_pass": report.pass_number})
            if self._last is not None and self._last.get("pass") == q.number:
                self._last = dict(self._last, applied=True, apply="applied")
                self.state.write_last_pass(self._last)
            self._queued = None
            self.console.notice(f"REAPER is back: pass {q.number}'s queued plan applied "
                                f"({len(report.written)} changes)")
        with self._changed:
            self._changed.notify_all()

    def _requeue_from_disk(self, number: int) -> None:
        """A restart found a plan REAPER never took: queue it again (notes are rewritten when it lands)."""
        try:
            doc = json.loads((self.state.pass_dir(number) / "plan.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self._journal.write("apply_requeued", **{"pass": number})
        for key in ("applied", "overrides", "pending", "changes_since_previous"):
            doc.pop(key, None)
        self._queued = _Queued(number, doc, None, self.timings.retry_initial_s, 0.0)
        self.console.notice(f"pass {number}'s plan never reached REAPER; it is queued again")

    # --- finishing ------------------------------------------------------------------------------------

    def _record_changed(self, record: PassRecord) -> None:
        """The session made a new record for a pass outside a pass (a surface accepted a suggestion)."""
        self._journal_apply(record)
        self._replace(self._write_outcome(record))

    def _replace(self, record: PassRecord) -> None:
        for k, old in enumerate(self.passes):
            if old.number == record.number:
                self.passes[k] = record

    def _write_outcome(self, record: PassRecord) -> PassRecord:
        """``plan.json``, ``notes.html``/``.md``, ``report.json`` (and the copies beside the stems), each
        journalled as it lands, then ``last-pass.json``."""
        from ..notes.render import write_notes  # noqa: PLC0415

        pass_dir = self.state.pass_dir(record.number)
        files: dict[str, str] = {}
        if self.settings.render and record.render is None and self.session is not None:
            record = self.session.render_pass(record, pass_dir / "render")

        def note(kind: str, path: Path) -> None:
            files[kind] = str(path)
            self._journal.write("file_written", **{"pass": record.number, "kind": kind, "path": str(path)})

        from ..files import write_atomic  # noqa: PLC0415

        plan_text = json.dumps(filled_plan_doc(record), indent=1, allow_nan=False) + "\n"
        note("plan", write_atomic(pass_dir / "plan.json", plan_text))
        notes = notes_input(record, title=f"pass {record.number}", review_url=self.review_url)
        md, html = write_notes(notes, pass_dir / "notes.html")
        note("notes_md", md)
        note("notes", html)
        if self.target_kind == "plan":
            note("plan_beside", write_atomic(self.root / PLAN_BESIDE_NAME, plan_text))
            note("notes_beside", write_notes(notes, self.root / NOTES_BESIDE_NAME)[1])
        note("report", write_atomic(pass_dir / "report.json",
                                    json.dumps(record_doc(record), indent=1, default=str) + "\n"))
        self.files[record.number] = files
        self._write_last(record, files)
        return record

    def _write_last(self, record: PassRecord, files: dict[str, str]) -> None:
        tracks = {}
        for s in record.result.stems:
            ref = record.tracks.get(s.name)
            if ref is None:
                continue
            try:
                rel = Path(s.path).resolve().relative_to(self.root).as_posix()
            except ValueError:
                continue
            tracks[rel] = {"stem": ref.stem, "track": ref.track, "guid": ref.guid, "source": ref.source}
        bounce = record.bounce
        self._last = {
            "schema": "mixbridge-last-pass", "pass": record.number, "bounce_id": bounce.id if bounce else "",
            "finished_at": utc_now(), "stems": bounce.fingerprints if bounce else {}, "plan_id": record.plan.id,
            "analysis_id": record.plan.analysis_id, "applied": record.state in ("applied", "proposed"),
            "apply": record.state, "held": bool(record.held) and record.state in ("applied", "proposed", "held"),
            "target": self.target_kind, "tracks": tracks, "notes": files.get("notes", ""),
        }
        self.state.write_last_pass(self._last)

    def _finish(self, record: PassRecord) -> None:
        record = self._write_outcome(record)
        self._journal.write("pass_done", **{"pass": record.number, "status": "ok", "plan": record.plan.id,
                                            "apply": record.state, "seconds": round(record.seconds, 3)})
        self.console.pass_line(record, self.files[record.number].get("notes", ""))
        self.passes.append(record)
        if self.on_pass is not None:
            self.on_pass(record)

    def line(self, record: PassRecord) -> str:
        """The console line of a pass (as printed when it finished)."""
        from ..console import pass_summary  # noqa: PLC0415

        return pass_summary(record)

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
                box.append(exc.line())
            finally:
                self._requests.task_done()
                if done is not None:
                    done.set()
                with self._changed:
                    self._changed.notify_all()

    def _do_request(self, name: str, *args: Any) -> str:
        self._journal.write("request", name=name)
        if name == "accept_all":
            # "Accept all pending" (Lua script, surface): the suggestions held for review, and the
            # moves the target left pending because the producer had changed those parameters by hand.
            last = self.session.last
            if last is None:
                return "nothing to accept yet"
            held = len(last.held)
            reenabled = len(last.pending)
            record = self.session.accept_all()
            if record is last:
                return "nothing pending"
            self._journal_apply(record)
            self._replace(self._write_outcome(record))
            if self.controller is not None:
                self.controller.update(dict(record.plan_doc))  # publishes the new state to the surface
            if record.state in ("queued", "failed"):
                return f"accepted; {record.error}"
            return (f"accepted {held} suggestions, re-enabled {reenabled} parameters: "
                    f"{record.counts.changes} changes written")
        if name == "ab":
            state = self.session.ab_toggle()
            return f"A/B: now {state['state']} ({state['compensation_db']:+.1f} dB)"
        if name == "revert":
            report = self.session.revert(*args)
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
        from ..daw.commands import ExtStateCommands  # noqa: PLC0415

        c = self.settings.connection
        self._commands = ExtStateCommands(c.host, c.web_port)

    def _poll_commands(self, now: float) -> None:
        if self._commands is None or now < self._next_commands_s:
            return
        self._next_commands_s = now + self.timings.commands_poll_s
        for cmd in self._commands.poll():  # never raises: REAPER down is an empty list
            try:
                reply = self._do_request(cmd.name)
            except BridgeError as exc:
                reply = exc.line()
            self.console.notice(f"REAPER asked: {cmd.name} → {reply}")
            self._commands.reply(cmd.seq, reply)

    @property
    def review_url(self) -> str:
        """The review page's address while it runs (the notes link to it), else ``""``."""
        return self.review_page.url if self.review_page is not None else ""

    def _start_surface(self) -> None:
        """``--surface`` / ``--review-page``: the control-surface server and the review page in this
        process, reviewing each new pass through one controller."""
        options, page = self.settings.surface, self.settings.page
        if not options.enabled and not page.enabled:
            return
        from ..control.controller import SessionController  # noqa: PLC0415
        from ..control.server import SurfaceServer  # noqa: PLC0415

        def reanalyse():
            self.request("reanalyse")  # the worker runs it as a pass, which updates the controller
            return None

        self.controller = SessionController(self.session, {"tracks": []}, {}, reanalyse=reanalyse,
                                            replan=self.session.replan)
        self.session.reviewer = self.controller
        if page.enabled:
            from ..web.server import serve_review_page  # noqa: PLC0415

            self.review_page = serve_review_page(self.session, self.controller, page, stems=self.root,
                                                 renders_dir=self.settings.state.renders_dir)
            self.console.notice(f"review page: {self.review_page.url}")
        if not options.enabled:
            return
        self.surface = SurfaceServer(self.controller, bind=options.bind, port=options.port, allow=options.allow)
        self.surface.start()
        host, port = self.surface.address
        self.console.notice(f"control surface on udp://{host}:{port}")
