"""What the review page shows and does: the session core and the control surface's review state, as JSON.

One place decides.  The page holds no review logic: every decision is a command of the same
:class:`~bridge.control.controller.SessionController` the OSC surface drives (``accept``,
``reject``, ``accept_track``, ``reject_track``, ``set_amount``, ``ab``, ``revert``, ``refresh``),
which changes its :class:`~bridge.suggest.review.Review` and applies the accepted part through the
:class:`~bridge.session.Session` (the one lock around the target; under ``watch`` the pass is recorded
anew and its notes rewritten).  What the page shows per track is the controller's
:meth:`~bridge.suggest.review.Review.track_summaries`, as on a surface; the moves are described by the
notes' own wording (:mod:`bridge.notes.texts`).

Actions run on one worker thread, in order (REAPER may take seconds; a request never waits on it),
from a bounded queue.  Each names the plan it was made on: if a new pass or amount replaced that plan
meanwhile, the controller does nothing and says so (:meth:`SessionController.run_on`).

Live updates: the controller's feedback, the session's records (an accept, a new pass) and the renders
bump :attr:`ReviewState.version`; the page's event stream sends a new snapshot for each version.
The listeners only bump the version (they may be called with the session's lock held).
"""
from __future__ import annotations

import logging
import math
import queue
import threading
from typing import Any, Callable, Mapping

from ..suggest.review import ACCEPTED, Review

log = logging.getLogger("mixbridge.review")

#: Actions waiting at most; a full queue refuses the next (HTTP 503).
ACTION_QUEUE_SIZE = 64
#: Actions the page may ask for -> (controller command, the payload fields it takes).
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "accept": ("accept", ("id",)),
    "reject": ("reject", ("id",)),
    "accept_track": ("accept_track", ("slot",)),
    "reject_track": ("reject_track", ("slot",)),
    "amount": ("set_amount", ("value",)),
    "ab": ("ab", ()),
    "revert": ("revert", ()),
    "refresh": ("refresh", ()),
}
#: Renders the snapshot lists (the newest ones).
RENDERS_SHOWN = 16
MAX_ID_LENGTH = 128
MAX_IDS = 512


class ActionRefused(ValueError):
    """A malformed action or render request (HTTP 400/409); ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ReviewState:
    """The page's view of one session; see the module docstring.

    Parameters
    ----------
    session : bridge.session.Session
    controller : bridge.control.controller.SessionController
        The review state (shared with the OSC surface when it runs too); its target is ``session``.
    renders : RenderCache, optional
        Offline renders for "Hear it" (none without a stems folder).
    notes : callable, optional
        Returns the current pass's notes as HTML (``None`` when there are none).
    """

    def __init__(self, session: Any, controller: Any, renders: Any = None,
                 notes: Callable[[], str | None] | None = None):
        self.session = session
        self.controller = controller
        self.renders = renders
        self.notes = notes
        self._cond = threading.Condition()
        self._version = 0
        self._snapshot: tuple[int, dict[str, Any]] | None = None
        self._seq = 0
        #: (sequence, track name -> tag) from the newest record, and from the controller's last read.
        self._record_prov: tuple[int, dict[str, str]] = (0, {})
        self._controller_prov: tuple[int, dict[str, str]] = (0, {})
        self._actions: queue.Queue = queue.Queue(maxsize=ACTION_QUEUE_SIZE)
        self._queued = self._done = 0
        self._stopping = False
        self._worker: threading.Thread | None = None
        controller.add_listener(self._controller_changed)
        session.on_record(self._record_changed)
        session.on_pass(self._record_changed)
        if session.last is not None:
            self._record_changed(session.last)
        if renders is not None:
            renders.on_change = lambda entry: self.bump()

    # --- life cycle -----------------------------------------------------------------------------------

    def start(self) -> "ReviewState":
        self._worker = threading.Thread(target=self._work, name="mixbridge-review-actions", daemon=True)
        self._worker.start()
        if self.renders is not None:
            self.renders.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        try:
            self._actions.put_nowait(None)
        except queue.Full:
            pass
        if self._worker is not None:
            self._worker.join(timeout_s)
        if self.renders is not None:
            self.renders.stop(timeout_s)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def idle(self) -> bool:
        """No action waiting or running, no render under way."""
        return self._done == self._queued and (self.renders is None or self.renders.idle)

    # --- change tracking (listeners only note; they may hold the session's lock) --------------------------

    def bump(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def _next_seq(self) -> int:
        with self._cond:
            self._seq += 1
            return self._seq

    def _controller_changed(self, changes: list[tuple[str, tuple[Any, ...]]]) -> None:
        if any(addr.endswith("/provenance") for addr, _ in changes) or self.controller.provenance:
            prov = dict(self.controller.provenance)
            if prov != self._controller_prov[1]:
                self._controller_prov = (self._next_seq(), prov)
        self.bump()

    def _record_changed(self, record: Any) -> None:
        tracks = getattr(record, "tracks", {}) or {}
        names = {stem: ref.track for stem, ref in tracks.items()}
        self._record_prov = (self._next_seq(), {names.get(stem, stem): tag
                                                for stem, tag in (record.provenance or {}).items()})
        self.bump()

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait_newer(self, version: int, timeout_s: float) -> int:
        """Wait until the version passes ``version`` (or the deadline, or stopping); returns the version."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > version or self._stopping, timeout_s)
            return self._version

    # --- actions ---------------------------------------------------------------------------------------

    def act(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Queue one action of the page (``{"action", "plan", ...}``); returns ``{"queued": n}``.

        Raises
        ------
        ActionRefused
            An unknown action, a missing or malformed field (400); a full queue (503).
        """
        name = payload.get("action")
        if name not in ACTIONS:
            raise ActionRefused(f"unknown action {name!r}")
        plan_id = payload.get("plan")
        if not isinstance(plan_id, str) or len(plan_id) > MAX_ID_LENGTH:
            raise ActionRefused("'plan' must name the plan the page shows")
        command, fields = ACTIONS[name]
        values = tuple(_field(payload, f) for f in fields)
        with self._cond:
            try:
                self._actions.put_nowait((plan_id, command, values))
            except queue.Full as exc:
                raise ActionRefused(f"{ACTION_QUEUE_SIZE} actions are waiting; try again", 503) from exc
            self._queued += 1
            number = self._queued
        self.bump()
        return {"queued": number}

    def _work(self) -> None:
        while True:
            job = self._actions.get()
            if job is None:
                return
            plan_id, command, values = job
            try:
                self.controller.run_on(plan_id, command, values)  # never raises: errors become the status
            except Exception:  # noqa: BLE001 - belt and braces: the worker must outlive a bug
                log.exception("review action %s failed", command)
            finally:
                with self._cond:
                    self._done += 1
                self.bump()

    # --- renders ------------------------------------------------------------------------------------------

    def render(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The render of the plan state with exactly the suggestions ``payload["ids"]`` accepted.

        Raises
        ------
        ActionRefused
            No renders (404), a plan that is no longer the page's (409), unknown ids (400).
        """
        if self.renders is None:
            raise ActionRefused("no stems folder: nothing to render", 404)
        review = self.controller.review
        if payload.get("plan") != str(review.plan.get("id", "")):
            raise ActionRefused("the plan changed since the page showed it", 409)
        ids = payload.get("ids")
        if not isinstance(ids, list) or len(ids) > MAX_IDS or not all(
                isinstance(i, str) and len(i) <= MAX_ID_LENGTH for i in ids):
            raise ActionRefused("'ids' must be a list of suggestion ids")
        known = {s.id for s in review.suggestions}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ActionRefused(f"no suggestion {unknown[0]!r} in the plan")
        ids = sorted(set(ids))
        doc = Review(review.plan, {i: ACCEPTED for i in ids}).plan_for_target()
        return self.renders.request(doc, tuple(ids)).as_dict()

    def render_status(self, key: str) -> dict[str, Any] | None:
        entry = self.renders.get(key) if self.renders is not None else None
        return None if entry is None else entry.as_dict()

    # --- the snapshot ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, for the current version (computed once per version)."""
        version = self.version
        cached = self._snapshot
        if cached is not None and cached[0] == version:
            return cached[1]
        snap = self._build(version)
        self._snapshot = (version, snap)
        return snap

    def provenance(self) -> dict[str, str]:
        """Track name -> tag: the newest of the last record's (an apply, a new pass) and the controller's
        last read of the target (after a decision, a revert)."""
        (rs, rec), (cs, ctl) = self._record_prov, self._controller_prov
        return {**ctl, **rec} if rs > cs else {**rec, **ctl}

    def _build(self, version: int) -> dict[str, Any]:
        c = self.controller
        review: Review = c.review
        record = self.session.last
        plan = review.plan
        provenance = self.provenance()
        summaries = review.track_summaries(provenance, c.track_info)
        sections = record.result.mix.sections if record is not None else ()
        by_track: dict[str, list] = {}
        for s in review.suggestions:
            by_track.setdefault(s.track, []).append(s)
        tracks = []
        for summary, tp in zip(summaries, plan.get("tracks", [])):
            tracks.append(_track_view(summary, tp, by_track.get(summary.name, []), review, sections,
                                      provenance.get(summary.name) or "untouched"))
        renders = []
        if self.renders is not None:
            newest = sorted(self.renders.entries(), key=lambda e: e.used_s)[-RENDERS_SHOWN:]
            renders = [{"key": e.key, "status": e.status, "error": e.error} for e in newest]
        mix = plan.get("mix") or {}
        return {
            "version": version,
            "plan": {"id": str(plan.get("id", "")), "schema_version": plan.get("schema_version"),
                     "estimated_ai_delta_lu": mix.get("estimated_ai_delta_lu")},
            "pass": None if record is None else {"number": record.number, "apply": record.state,
                                                 "error": record.error},
            "target": getattr(self.session, "kind", ""),
            "status": c.status, "ab": c.ab_state, "compensation_db": round(float(c.compensation_db), 2),
            "amount": c.amount, "can_replan": c.replan_fn is not None,
            "pending": len(review.pending()), "accepted": list(review.accepted_ids),
            "actions": {"queued": self._queued, "done": self._done},
            "notes": self.notes is not None and record is not None,
            "hear": self.renders is not None,
            "renders": renders,
            "mix_findings": [_finding(f) for f in mix.get("findings", [])],
            "tracks": tracks,
        }


def _field(payload: Mapping[str, Any], name: str) -> Any:
    value = payload.get(name)
    if name == "id":
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            raise ActionRefused("'id' must be a suggestion id")
        return value
    if name == "slot":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
            raise ActionRefused("'slot' must be a track slot (1-based)")
        return value
    if name == "value":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            raise ActionRefused("'value' must be an amount between 0 and 1")
        return float(value)
    raise ActionRefused(f"unknown field {name!r}")


# --- describing the plan --------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _evidence(evidence: Any) -> list[list[str]]:
    """A finding's evidence numbers as ``[label, value with unit]`` pairs (non-numbers left out)."""
    from ..notes.texts import fmt_value  # noqa: PLC0415

    out = []
    for key, value in (evidence or {}).items() if isinstance(evidence, Mapping) else ():
        number = _number(value)
        if number is None:
            continue
        text = fmt_value(key, number)
        out.append([key.replace("_", " "), text if text != "none" else f"{number:g}"])
    return out


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": f.get("code", ""), "severity": f.get("severity", ""), "message": f.get("message", ""),
            "evidence": _evidence(f.get("evidence"))}


def _effects(item: Mapping[str, Any]) -> list[str]:
    """Predicted effects of a suggestion (plan schema 2), as text; tolerant of strings and records."""
    raw = item.get("predicted_effects") or item.get("effects") or []
    out = []
    for e in raw if isinstance(raw, list) else []:
        if isinstance(e, str):
            out.append(e)
        elif isinstance(e, Mapping):
            before, after = _number(e.get("before")), _number(e.get("after"))
            unit = str(e.get("unit", ""))
            subject = str(e.get("subject") or e.get("metric") or "")
            if before is not None and after is not None:
                out.append(f"{subject}: {before:.1f} {unit} → {after:.1f} {unit}".replace("  ", " ").strip())
            elif e.get("text"):
                out.append(str(e["text"]))
    return out


def _moves(tp: Mapping[str, Any], sid: str, sections: Any) -> list[str]:
    """The suggestion's moves in the notes' words ("EQ band 2: peak -6.0 dB at 110 Hz (Q 0.7)")."""
    from ..notes.texts import describe_automation, describe_changes  # noqa: PLC0415
    from ..suggest.model import Automation, Change  # noqa: PLC0415
    from ..suggest.review import suggestion_id_of as _suggestion_id  # noqa: PLC0415 - the one rule

    known = {"target", "param", "value", "unit", "reason", "suggestion"}
    changes = [Change(str(c.get("target", "")), str(c.get("param", "")), c.get("value"), str(c.get("unit", "")),
                      str(c.get("reason", "")), _suggestion_id(tp, c), {k: v for k, v in c.items() if k not in known})
               for c in tp.get("changes", []) if _suggestion_id(tp, c) == sid]
    out = [what for what, _, _ in describe_changes(changes)]
    for a in tp.get("automation", []):
        if _suggestion_id(tp, a) != sid:
            continue
        points = tuple((float(t), float(v)) for t, v in a.get("points", []))
        out.append(describe_automation(Automation(str(a.get("param", "")), points, str(a.get("reason", "")), sid),
                                       sections))
    return out


def _track_view(summary: Any, tp: Mapping[str, Any], suggestions: list, review: Review, sections: Any,
                tag: str) -> dict[str, Any]:
    findings = [f for f in tp.get("findings", []) if isinstance(f, Mapping)]
    listed = {s.get("id"): s for s in tp.get("suggestions", []) if isinstance(s, Mapping)}
    used: set[int] = set()
    items = []
    for s in suggestions:
        item = listed.get(s.id, {})
        why = next((k for k, f in enumerate(findings) if f.get("code") == s.code and f.get("message") == s.summary),
                   next((k for k, f in enumerate(findings) if f.get("code") == s.code and k not in used), None))
        finding = findings[why] if why is not None else {}
        if why is not None:
            used.add(why)
        items.append({"id": s.id, "index": s.index, "code": s.code, "state": review.state(s.id),
                      "summary": s.summary, "has_moves": s.has_moves, "confidence": _number(item.get("confidence")),
                      "why": finding.get("message") or s.summary, "severity": finding.get("severity", ""),
                      "evidence": _evidence(finding.get("evidence")),
                      "moves": _moves(tp, s.id, sections), "predicted": _effects(item),
                      "objective_gain": _number(item.get("objective_gain"))})
    return {"slot": summary.slot, "name": summary.name, "stem": tp.get("stem") or summary.name,
            "role": tp.get("role", ""), "status": tp.get("status", ""), "provenance": tag,
            "lufs": None if summary.integrated_lufs is None else round(summary.integrated_lufs, 1),
            "target_lufs": _number(tp.get("target_lufs")), "predicted_lufs": _number(tp.get("predicted_lufs")),
            "pending": summary.pending, "top_finding": summary.top_finding,
            "suggestions": items,
            "observations": [_finding(f) for k, f in enumerate(findings) if k not in used]}
