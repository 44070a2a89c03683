"""THE loop, used by every command: analyse → plan → map tracks → apply through a target → review → notes.

``watch``, ``plan``, ``apply``, ``surface`` and ``demo`` all run their passes through one
:class:`Session`.  A pass produces one frozen :class:`PassRecord`: what was analysed, the stems that
failed (with their codes), the plan, what the target wrote, restored, found overridden, left
pending or held for review, provenance per track, and what changed since the previous pass.  The
console line (:func:`bridge.console.pass_summary`), the notes (:func:`notes_input`), the journal and
``report.json`` (:func:`record_doc`) are all made from it, so their counts agree by construction.

Thread safety
-------------
A :class:`Session` may be used from several threads (``watch --surface``: the watcher's worker and
the surface's worker).  Every call into the target, and every change of :attr:`Session.last`, holds
:attr:`Session.lock` (re-entrant); analysis runs outside it.  Listeners added with
:meth:`Session.on_record` (and :meth:`Session.on_pass`) are called with the lock held, on the thread
that made the record: they must not wait for another thread that may want the lock (the review page's
listeners only note that something changed).

How a surface applies one accepted suggestion
---------------------------------------------
The control surface's :class:`~bridge.control.controller.SessionController` is handed the session as
its target: accepting suggestion ``s`` calls ``session.apply(review.accept(s).plan_for_target())``.
That applies the whole accepted part (targets apply cumulatively) under the lock and, when the
document belongs to the last pass, records a new :class:`PassRecord` for that pass (same number, new
writes, fewer held) and hands it to the listeners (the watcher rewrites that pass's notes).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import UNREACHABLE, BridgeError, NoStems, PassInterrupted, PlanStale, StemMissing
from typing import TYPE_CHECKING

from .model import SessionResult, StemResult
from .plandoc import moves_of, stem_name
from .settings import Settings

if TYPE_CHECKING:  # the notes (and the analysis they import) load only when a pass is described
    from .notes.model import ChangesSincePrevious, NotesInput

log = logging.getLogger("mixbridge.session")

#: Why a move is not in REAPER, per apply state (the notes' "Moves not applied" section).
WHY_HELD = "waiting for your review: accept it on the control surface or run 'MixBridge: Accept all pending'"
WHY_QUEUED = "REAPER could not be reached; the plan is queued and will be written when it answers"
#: Apply states of a pass.
STATES = ("applied", "proposed", "queued", "held", "failed", "none")


# --- the record -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FailedStem:
    name: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Held:
    """A suggestion with moves that waits for the producer's review."""

    track: str
    suggestion: str
    code: str
    summary: str


@dataclass(frozen=True, slots=True)
class PassCounts:
    """The numbers every report of a pass shows (console, notes, journal, ``report.json``)."""

    stems: int
    analysed: int
    failed: int
    reanalysed: int | None
    cached: int | None
    findings: int
    changes: int  # written this pass (applied/proposed), or waiting (queued/failed)
    restored: int
    unchanged: int
    overrides: int
    pending: int
    held: int


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan and its document, with the tracks mapped to REAPER (``stem name -> TrackRef``)."""

    plan: Any  # bridge.suggest.plan.MixPlan
    doc: Mapping[str, Any]
    tracks: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PassRecord:
    """Everything one pass did; see the module docstring.

    Attributes
    ----------
    number : int
        The pass number (the watcher's; 1 for a one-off command).
    target : str
        The target's kind.
    result : SessionResult
    plan : MixPlan
    plan_doc : mapping
        The full plan document, track names and GUIDs mapped to REAPER.
    tracks : mapping
        Stem name -> :class:`~bridge.watch.bounce.TrackRef`.
    state : str
        One of :data:`STATES`: ``applied`` (a DAW target took it), ``proposed`` (the ``plan`` target:
        nothing written to a DAW), ``queued`` (REAPER unreachable), ``held`` (review mode, nothing
        accepted yet), ``failed`` (the target refused: ``error``), ``none`` (not applied).
    applied_doc : mapping or None
        What went to the target (in review mode, the accepted part).
    report : ApplyReport or None
        The target's report.
    held : tuple of Held
    provenance : mapping
        Stem name -> ``ai`` / ``hybrid`` / ``manual`` / ``untouched``.
    changes : ChangesSincePrevious or None
        Against the previous pass of the same session.
    bounce : Bounce or None
        The watcher's bounce.
    render : RenderLinks or None
        The pass rendered offline by :func:`bridge.render.render_plan` (:meth:`Session.render_pass`).
    """

    number: int
    target: str
    result: SessionResult
    plan: Any
    plan_doc: Mapping[str, Any]
    tracks: Mapping[str, Any]
    state: str = "none"
    applied_doc: Mapping[str, Any] | None = None
    report: Any = None
    error: str | None = None
    held: tuple[Held, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    changes: "ChangesSincePrevious | None" = None
    bounce: Any = None
    seconds: float = 0.0
    render: Any = None  # notes.model.RenderLinks: the pass rendered offline (Settings.render)

    @property
    def failed(self) -> tuple[FailedStem, ...]:
        return tuple(FailedStem(s.name, s.error.code, s.error.message) for s in self.result.failed)

    @property
    def written(self) -> tuple:
        return self.report.written if self.report is not None else ()

    @property
    def restored(self) -> tuple:
        return self.report.restored if self.report is not None else ()

    @property
    def overrides(self) -> tuple:
        return self.report.overrides if self.report is not None else ()

    @property
    def pending(self) -> tuple:
        return self.report.pending if self.report is not None else ()

    @property
    def unchanged(self) -> tuple:
        return self.report.unchanged if self.report is not None else ()

    @property
    def reanalysed(self) -> tuple[str, ...] | None:
        if not self.result.reanalysed and not self.result.cached:
            return None
        return tuple(self.result.reanalysed)

    @property
    def cached(self) -> tuple[str, ...] | None:
        return None if self.reanalysed is None else tuple(self.result.cached)

    @property
    def findings(self) -> int:
        return sum(len(t.findings) for t in self.plan.tracks) + len(self.plan.mix_findings)

    @property
    def stem_of(self) -> dict[str, str]:
        """REAPER track name -> stem name (the notes speak in stem names)."""
        return {ref.track: ref.stem for ref in self.tracks.values()}

    @property
    def line(self) -> str:
        """The console's line for this pass (without the notes path)."""
        from .console import pass_summary  # noqa: PLC0415

        return pass_summary(self)

    @property
    def counts(self) -> PassCounts:
        r = self.result
        if self.state in ("queued", "failed"):
            changes = len(moves_of(self.applied_doc or self.plan_doc))
        else:
            changes = len(self.written)
        return PassCounts(
            stems=len(r.stems), analysed=len(r.ok), failed=len(r.failed),
            reanalysed=None if self.reanalysed is None else len(self.reanalysed),
            cached=None if self.cached is None else len(self.cached),
            findings=self.findings, changes=changes, restored=len(self.restored), unchanged=len(self.unchanged),
            overrides=len(self.overrides), pending=len(self.pending) + len(self.report.missing_tracks if self.report else ()),
            held=len(self.held))


# --- the session ----------------------------------------------------------------------------------

class Session:
    """One stems folder (or set of paths), one target, one lock.  See the module docstring.

    Parameters
    ----------
    settings : Settings
    target : Target, optional
        Defaults to :func:`bridge.daw.targets.make_target` of the settings (never connects).
    reviewer : object, optional
        In review mode, what holds the review decisions: the control surface's controller
        (``update(plan_doc, track_info)``, ``review``, ``record_accept_all()``); by default the
        session keeps a :class:`~bridge.suggest.review.Review` itself.
    """

    def __init__(self, settings: Settings, target: Any = None, reviewer: Any = None):
        self.settings = settings
        if target is None:
            from .daw.targets import make_target  # noqa: PLC0415

            target = make_target(settings)
        self.target = target
        self.reviewer = reviewer
        self.lock = threading.RLock()
        self.last: PassRecord | None = None
        #: Masking results per pair of stem contents, kept for the session's life (a watcher's
        #: re-bounce with one changed stem recomputes only that stem's pairs).
        self.masking_memo: dict = {}
        #: Stem file -> manifest entry (track name and GUID), remembered across bounces.
        self.track_memory: dict[Path, Any] = {}
        self._listeners: list[Callable[[PassRecord], None]] = []
        self._pass_listeners: list[Callable[[PassRecord], None]] = []
        self._review = None
        self._applied_once = False
        self._cache = None
        self._remember_manifest()

    # --- stages -----------------------------------------------------------------------------------

    def _remember_manifest(self) -> None:
        """GUIDs for ``plan``/``apply`` too: the stems folder's bounce manifest, when there is one."""
        from .manifest import MANIFEST_NAME  # noqa: PLC0415
        from .tracks import read_bounce_manifest  # noqa: PLC0415

        stems = self.settings.stems
        if stems is None or not (Path(stems) / MANIFEST_NAME).is_file():
            return
        try:
            manifest = read_bounce_manifest(Path(stems) / MANIFEST_NAME)
        except BridgeError as exc:
            log.info("bounce manifest ignored: %s", exc)
            return
        self.remember(manifest.stems)

    def remember(self, entries: Sequence[Any]) -> None:
        """Manifest entries (file, track name, GUID): later passes map those files to those tracks."""
        for entry in entries:
            self.track_memory[Path(entry.file)] = entry

    @property
    def cache(self):
        """The analysis cache in the state folder (``None`` without one)."""
        state = self.settings.state
        if self._cache is None and state is not None:
            from .cache import AnalysisCache  # noqa: PLC0415

            self._cache = AnalysisCache(state.cache_dir)
        return self._cache

    def analyse(self, paths: Sequence[Path] | None = None, *, missing: Sequence[Path] = (),
                progress: Callable[[StemResult], None] | None = None) -> SessionResult:
        """Analyse the stems (through the cache when there is a state folder).

        Files a manifest listed but that never arrived (``missing``) become failed stems
        (``E_STEM_MISSING``), so the notes list them with the other errors.

        Raises
        ------
        NoStems
            ``E_NO_STEMS``: nothing to analyse.
        """
        from .pipeline import WorkerInterrupted, analyze_session  # noqa: PLC0415 - loads only when analysing

        s = self.settings
        paths = list(paths if paths is not None else s.inputs)
        try:
            result = analyze_session(paths, markers=list(s.markers) if s.markers else None, jobs=s.jobs,
                                     progress=progress, recursive=s.recursive, cache=self.cache,
                                     masking_memo=self.masking_memo)
        except WorkerInterrupted as exc:  # Ctrl-C reached a worker before this process noticed
            raise PassInterrupted() from exc
        if missing:
            from .files import display  # noqa: PLC0415
            from .tracks import stem_label  # noqa: PLC0415

            extra = tuple(StemResult(stem_label(p), p, None, None,
                                     StemMissing(f"{display(p.name)}: listed in the manifest, not on disk"))
                          for p in missing)
            result = replace(result, stems=tuple(result.stems) + extra)
        if not result.stems:
            raise NoStems("in " + ", ".join(map(str, paths)))
        return result

    def plan(self, result: SessionResult, *, amount: float | None = None, roles: Any = None) -> Planned:
        """Plan an analysis with the session's roles and map the tracks to REAPER (GUIDs from manifests)."""
        from .pipeline import plan_session  # noqa: PLC0415
        from .suggest.plan import plan_dict  # noqa: PLC0415
        from .tracks import apply_track_map, compile_pattern, map_tracks  # noqa: PLC0415

        s = self.settings
        plan = plan_session(result, roles if roles is not None else s.roles,
                            amount=s.amount if amount is None else amount, reference_path=s.reference)
        tracks = map_tracks([st.path for st in result.stems], dict(self.track_memory), compile_pattern(s.name_pattern))
        doc = apply_track_map(plan_dict(plan), tracks)
        if s.stems is not None:
            doc["stems_folder"] = str(Path(s.stems).resolve())
        return Planned(plan, doc, tracks)

    def track_info(self, record: PassRecord) -> dict[str, dict[str, Any]]:
        """``{REAPER track name: {"integrated_lufs"}}`` for a control surface."""
        out = {}
        for st in record.result.stems:
            ref = record.tracks.get(st.name)
            name = ref.track if ref is not None else st.name
            out[name] = {"integrated_lufs": st.analysis.loudness.integrated_lufs if st.analysis is not None else None}
        return out

    # --- one pass -----------------------------------------------------------------------------------

    def run_pass(self, number: int = 1, *, paths: Sequence[Path] | None = None, missing: Sequence[Path] = (),
                 bounce: Any = None, progress: Callable[[StemResult], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, apply: bool = True) -> PassRecord:
        """Analyse, plan, map and apply one pass; returns (and keeps as :attr:`last`) its record.

        Raises
        ------
        PassInterrupted
            ``should_stop()`` turned true during the analysis (whatever the analysis then raised:
            Ctrl-C reaches the worker processes too).
        """
        started = time.monotonic()
        try:
            result = self.analyse(paths, missing=missing, progress=progress)
        except BaseException as exc:
            # Ctrl-C reaches the worker processes too: their SystemExit, or a broken pool, is the same stop.
            if should_stop is not None and should_stop() or isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise PassInterrupted() from exc
            raise
        if should_stop is not None and should_stop():
            raise PassInterrupted()
        planned = self.plan(result)
        previous = self.last
        changes = None
        if previous is not None:
            from .notes.model import compare_bounces  # noqa: PLC0415

            changes = compare_bounces(previous.result, previous.plan, result, planned.plan,
                                      reanalysed=None if not (result.reanalysed or result.cached) else result.reanalysed)
        record = PassRecord(number, self.target.kind, result, planned.plan, planned.doc, planned.tracks,
                            changes=changes, bounce=bounce, provenance=self._provenance_of(planned.doc, None))
        if not apply:
            return record  # the owner checks it, then calls apply_pass and finish_pass
        return self.finish_pass(self.apply_pass(record), seconds=time.monotonic() - started)

    def apply_pass(self, record: PassRecord) -> PassRecord:
        """The review step and the apply of a planned pass (see :meth:`apply_record`)."""
        doc, held = self._reviewed(record)
        return self.apply_record(record, doc, held=held, notify=False)

    def finish_pass(self, record: PassRecord, seconds: float | None = None) -> PassRecord:
        """Keep ``record`` as the session's last pass (what the next one is compared with)."""
        if seconds is not None:
            record = replace(record, seconds=seconds)
        with self.lock:
            self.last = record
            for listener in list(self._pass_listeners):
                listener(record)
        return record

    def render_pass(self, record: PassRecord, out_dir: Path) -> PassRecord:
        """Render the pass offline (:mod:`bridge.render`) into ``out_dir``: the processed stems and two
        level-matched mixes, before and after, for the notes' player.

        What is rendered is what the pass put in place (the accepted part in review mode), or the whole
        plan when nothing reached the target (queued, held, failed): the producer hears the proposal.
        A render that fails is logged and left out; it never fails the pass.
        """
        from .notes.model import RenderLinks  # noqa: PLC0415
        from .render import render_plan  # noqa: PLC0415

        placed = record.state in ("applied", "proposed") and record.applied_doc is not None
        doc = record.applied_doc if placed else record.plan_doc
        paths = [s.path for s in record.result.stems if s.error is None]
        if not paths or not moves_of(doc):
            return record
        try:
            out = render_plan(doc, paths, out_dir)
        except BridgeError as exc:
            log.warning("pass %d not rendered: %s", record.number, exc.line())
            return record
        if out.mix_before is None or out.mix_after is None:
            return record
        links = RenderLinks(str(out.mix_before), str(out.mix_after), out.before_lufs, out.match_gain_db,
                            str(Path(out.out_dir) / "stems"))
        return replace(record, render=links)

    def _reviewed(self, record: PassRecord) -> tuple[dict[str, Any], tuple[Held, ...]]:
        """Review mode: carry the decisions over to the new plan; the target gets the accepted part."""
        if not self.settings.review_mode:
            return dict(record.plan_doc), ()
        from .suggest.review import Review  # noqa: PLC0415

        if self.reviewer is not None:
            self.reviewer.update(dict(record.plan_doc), self.track_info(record))
            review = self.reviewer.review
        else:
            self._review = Review(dict(record.plan_doc)) if self._review is None else self._review.updated(dict(record.plan_doc))
            review = self._review
        return review.plan_for_target(), _held(review)

    def apply_record(self, record: PassRecord, doc: Mapping[str, Any], *, held: tuple[Held, ...] | None = None,
                     reenable: frozenset[str] | set[str] = frozenset(), notify: bool = True) -> PassRecord:
        """Apply ``doc`` for ``record``'s pass; returns the record with the outcome.

        REAPER unreachable → ``queued``; the target refusing (any other :class:`BridgeError`) →
        ``failed``.  Anything else is a bug and propagates.  In review mode, a document with nothing
        accepted does not touch a target this session has not written to yet (``held``).
        """
        held = record.held if held is None else held
        accepted = (doc.get("review") or {}).get("accepted")
        with self.lock:
            if accepted == [] and not self._applied_once and not reenable:
                new = replace(record, state="held", applied_doc=doc, held=held, report=None, error=None)
            else:
                try:
                    report = self.target.apply(dict(doc), reenable=frozenset(reenable))
                except UNREACHABLE as exc:
                    new = replace(record, state="queued", applied_doc=doc, held=held, error=exc.line())
                except BridgeError as exc:
                    new = replace(record, state="failed", applied_doc=doc, held=held, error=exc.line())
                else:
                    self._applied_once = True
                    state = "proposed" if self.target.kind == "plan" else "applied"
                    new = replace(record, state=state, applied_doc=doc, held=held, report=report, error=None,
                                  provenance=self._provenance_of(record.plan_doc, report))
            if self.last is not None and self.last.number == record.number:
                self.last = new
            if notify:
                for listener in list(self._listeners):
                    listener(new)
        return new

    def _provenance_of(self, plan_doc: Mapping[str, Any], report: Any) -> dict[str, str]:
        """Stem name -> tag: the target's after this apply; before any apply, what the plan implies."""
        out = {}
        for tp in plan_doc.get("tracks", []):
            stem = stem_name(tp)
            if report is not None and tp.get("name") in report.provenance:
                out[stem] = report.provenance[tp["name"]]
            else:
                out[stem] = "manual" if tp.get("status") == "manual" else "untouched"
        return out

    def on_record(self, listener: Callable[[PassRecord], None]) -> None:
        """Call ``listener`` with every record an apply outside :meth:`run_pass` makes (see the docstring)."""
        self._listeners.append(listener)

    def on_pass(self, listener: Callable[[PassRecord], None]) -> None:
        """Call ``listener`` with every record :meth:`finish_pass` keeps as the last pass (a new bounce, a
        re-analysis), with the lock held, on the thread that finished it (the review page listens)."""
        self._pass_listeners.append(listener)

    # --- the target, locked (also the control surface's "target") --------------------------------------

    kind = property(lambda self: self.target.kind)

    def apply(self, doc: Mapping[str, Any], reenable: frozenset[str] | set[str] = frozenset()) -> Any:
        """Apply a plan document through the target (the lock held); returns the target's report.

        When ``doc`` is (part of) the last pass's plan, the last record is updated and the listeners
        are told.  Raises what the target raises.
        """
        with self.lock:
            last = self.last
            if last is not None and doc.get("id") == last.plan_doc.get("id"):
                held = _held_from_doc(last.plan_doc, doc)
                new = self.apply_record(last, doc, held=held, reenable=reenable)
                if new.state in ("queued", "failed"):
                    raise _error_of(new)
                return new.report
            report = self.target.apply(dict(doc), reenable=frozenset(reenable))
            self._applied_once = True
            return report

    def accept_all(self) -> PassRecord | None:
        """"Accept all pending": every held suggestion, and the overrides the target left pending."""
        with self.lock:
            last = self.last
            if last is None:
                return None
            if self.reviewer is not None:
                doc = self.reviewer.record_accept_all()
            elif self._review is not None:
                self._review = self._review.accept_all()
                doc = self._review.plan_for_target()
            else:
                doc = dict(last.applied_doc or last.plan_doc)
            reenable = {f"{p.track}:{p.key}" for p in last.pending}
            if not last.held and not reenable:
                return last
            return self.apply_record(last, doc, held=(), reenable=reenable)

    def revert(self, only_track: str | None = None) -> Any:
        with self.lock:
            report = self.target.revert(only_track)
            if self._review is not None:
                self._review = self._review.unaccept_all()
            return report

    def ab_toggle(self, delta_lu: float | None = None) -> dict:
        from .plandoc import estimated_delta_lu  # noqa: PLC0415

        with self.lock:
            if delta_lu is None:
                delta_lu = estimated_delta_lu(self.last.plan_doc if self.last is not None else None)
            return self.target.ab_toggle(delta_lu)

    def provenance(self) -> dict[str, str]:
        with self.lock:
            return dict(self.target.provenance())

    def close(self) -> None:
        with self.lock:
            self.target.close()

    # --- replanning for a surface --------------------------------------------------------------------------

    def replan(self, amount: float) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
        """The last analysis planned again at ``amount``: ``(plan_doc, track_info)`` (the surface's amount fader)."""
        with self.lock:
            last = self.last
        if last is None:
            return None
        planned = self.plan(last.result, amount=amount)
        record = replace(last, plan=planned.plan, plan_doc=planned.doc, tracks=planned.tracks)
        with self.lock:
            self.last = record
        return dict(planned.doc), self.track_info(record)

    # --- apply --notes: the plan that was applied, described --------------------------------------------

    def record_for_applied(self, doc: Mapping[str, Any]) -> PassRecord:
        """A record for ``mixbridge apply --notes``: the stems analysed again and planned with the
        roles, amount and settings *recorded in the applied plan*, checked to give exactly its moves.

        Raises
        ------
        PlanStale
            ``E_PLAN_STALE``: the stems (or the reference) no longer give the plan that was applied.
        """
        from .config import RoleConfig  # noqa: PLC0415

        settings = doc.get("settings") or {}
        if doc.get("reference") and self.settings.reference is None:
            raise PlanStale("the plan was made with a reference track: pass it with --reference REF")
        roles = RoleConfig({stem_name(t): t["role"] for t in doc.get("tracks", [])
                            if t.get("role") and t.get("role_source", "inferred") != "inferred"},
                           {stem_name(t): t["role_source"] for t in doc.get("tracks", [])
                            if t.get("role_source", "inferred") != "inferred"},
                           {k: float(v) for k, v in (settings.get("role_offsets") or {}).items()},
                           tuple(settings.get("manual") or ()))
        result = self.analyse()
        planned = self.plan(result, amount=float(settings.get("amount", 1.0)), roles=roles)
        wanted, now = moves_of(doc), moves_of(planned.doc)
        differ = sorted({k for k in set(wanted) | set(now) if wanted.get(k) != now.get(k)})
        if differ:
            shown = ", ".join(f"{t} {k}" for t, k in differ[:3]) + (" ..." if len(differ) > 3 else "")
            raise PlanStale(f"{len(differ)} moves differ ({shown}); write the notes with "
                            "'mixbridge plan --notes' from the stems as they are now")
        return PassRecord(1, self.target.kind, result, planned.plan, dict(doc), planned.tracks,
                          provenance=self._provenance_of(doc, None))

    def with_report(self, record: PassRecord, report: Any) -> PassRecord:
        """``record`` once ``report`` (an apply of its plan document) has landed."""
        return replace(record, state="proposed" if report.target == "plan" else "applied",
                       applied_doc=record.plan_doc, report=report,
                       provenance=self._provenance_of(record.plan_doc, report))


def _held(review: Any) -> tuple[Held, ...]:
    return tuple(Held(sg.track, sg.id, sg.code, sg.summary) for sg in review.pending() if sg.has_moves)


def _held_from_doc(plan_doc: Mapping[str, Any], doc: Mapping[str, Any]) -> tuple[Held, ...]:
    """The suggestions of ``plan_doc`` with moves that ``doc`` (a review's accepted part) leaves out."""
    from .suggest.review import Review  # noqa: PLC0415

    accepted = (doc.get("review") or {}).get("accepted")
    if accepted is None:
        return ()
    review = Review(dict(plan_doc), {sid: "accepted" for sid in accepted})
    return _held(review)


def _error_of(record: PassRecord) -> BridgeError:
    from .errors import DawRefused, DawUnavailable  # noqa: PLC0415

    code, _, message = (record.error or "").partition(": ")
    cls = DawUnavailable if record.state == "queued" else DawRefused
    return cls(message or code)


# --- what the record becomes ------------------------------------------------------------------------

def _notes_param(key: str) -> str:
    """``eq.band2_gain_db`` → ``band2_gain_db``: the notes name parameters as the plan does."""
    if key.startswith("automation."):
        return "volume_automation"
    head, _, tail = key.partition(".")
    return tail if head in ("track", "eq", "comp") and tail else key


#: How the notes describe where the changes went, per apply state.
NOTES_OUTCOME = {"applied": "written", "proposed": "proposed", "queued": "queued", "held": "held",
                 "failed": "failed", "none": ""}


def notes_input(record: PassRecord, title: str = "", review_url: str = "") -> "NotesInput":
    """The notes of a pass, from its record alone (``review_url``: the review page, while it runs)."""
    from .notes.model import AppliedChange, NotesInput, Override as NotesOverride, PendingMove  # noqa: PLC0415

    stem_of = record.stem_of

    def stem(track: str) -> str:
        return stem_of.get(track, track)

    applied = []
    for w in record.written:
        unit = "points" if w.key.startswith("automation.") else w.unit
        applied.append(AppliedChange(stem(w.track), _notes_param(w.key), w.value, None, unit))
    overrides = tuple(NotesOverride(stem(o.track), _notes_param(o.key), o.from_value, o.to_value)
                      for o in record.overrides)
    pending = [PendingMove(stem(p.track), _notes_param(p.key), p.value, p.why, p.code) for p in record.pending]
    if record.report is not None:
        pending += [PendingMove(stem(name), "track", None, "no track of that name or GUID in the REAPER project",
                                "E_TARGET_NOT_FOUND") for name in record.report.missing_tracks]
    held_ids = {h.suggestion for h in record.held}
    if record.state in ("queued", "failed") or held_ids:
        why = WHY_QUEUED if record.state == "queued" else (record.error or "not applied")
        code = "E_DAW_UNAVAILABLE" if record.state == "queued" else ""
        for tp in record.plan_doc.get("tracks", []):
            for c in tp.get("changes", []):
                if record.state in ("queued", "failed"):
                    pending.append(PendingMove(stem_name(tp), c.get("param", ""), c.get("value"), why, code,
                                               c.get("unit", "")))
                elif c.get("suggestion") in held_ids:
                    pending.append(PendingMove(stem_name(tp), c.get("param", ""), c.get("value"), WHY_HELD, "",
                                               c.get("unit", "")))
    known = {s.name for s in record.result.stems}
    provenance = {s: tag for s, tag in record.provenance.items() if s in known}
    unchanged = tuple((stem(t), _notes_param(k)) for t, k in record.unchanged)
    return NotesInput(record.result, record.plan, applied=tuple(applied), overrides=overrides,
                      changes_since_previous=record.changes, pending=tuple(pending), provenance=provenance,
                      title=title, outcome=NOTES_OUTCOME.get(record.state, ""), unchanged=unchanged,
                      render=record.render, review_url=review_url)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def filled_plan_doc(record: PassRecord) -> dict[str, Any]:
    """The plan document with the later stages' fields filled (``docs/plan-json.md``)."""
    doc = dict(record.plan_doc)
    report = record.report
    if report is not None:
        full = report.as_dict()
        doc["applied"] = {"pass": report.pass_number, "undo": report.undo_name, "state": record.state,
                          "writes": full["writes"]}
        doc["overrides"] = full["overrides"]
        doc["pending"] = full["pending"]
    else:
        doc["applied"] = None
        doc["pending"] = [{"track": h.track, "suggestion": h.suggestion, "code": h.code, "summary": h.summary,
                           "why": WHY_HELD} for h in record.held]
    doc["changes_since_previous"] = None if record.changes is None else _jsonable(dataclasses.asdict(record.changes))
    return doc


def record_doc(record: PassRecord) -> dict[str, Any]:
    """``report.json`` of a pass (schema ``mixbridge-pass-report`` 2)."""
    stems = []
    for s in record.result.stems:
        ref = record.tracks.get(s.name)
        entry = {"name": s.name, "file": str(s.path), "track": ref.track if ref else s.name,
                 "guid": ref.guid if ref else "", "ok": s.error is None}
        if s.info is not None:
            entry.update(sample_rate=s.info.sample_rate, channels=s.info.channels, frames=s.info.frames)
        if s.error is not None:
            entry["error"] = s.error.as_dict()
        stems.append(entry)
    b = record.bounce
    return {
        "schema": "mixbridge-pass-report", "schema_version": 2, "pass": record.number,
        "bounce": None if b is None else {"id": b.id, "reason": b.reason,
                                          "manifest": str(b.manifest) if b.manifest else None,
                                          "missing": [str(p) for p in b.missing], "fingerprints": b.fingerprints},
        "stems": stems,
        "reanalysed": None if record.reanalysed is None else list(record.reanalysed),
        "cached": None if record.cached is None else list(record.cached),
        "timings": _jsonable(record.result.timings),
        "plan_id": record.plan.id, "analysis_id": record.plan.analysis_id,
        "counts": dataclasses.asdict(record.counts),
        "target": record.target, "apply": record.state, "apply_error": record.error,
        "target_report": None if record.report is None else record.report.as_dict(),
        "held": [dataclasses.asdict(h) for h in record.held],
        "provenance": dict(record.provenance),
        "seconds": round(record.seconds, 3),
    }
