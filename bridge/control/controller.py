"""The session a control surface reviews: one plan, its review state, and the target it lands in.

:class:`SessionController` turns validated surface commands into review decisions, applies the
accepted plan through the target (which tags the tracks exactly as ``mixbridge apply`` does) and
publishes the feedback state.  It never raises into the server: an error from the target (REAPER
down, a timeout) becomes the status line, starting with its error code, and the review keeps the
decisions that did land.

Feedback is published as ``(address, args)`` pairs; only the addresses whose value changed since
the last publication are sent to the listeners (the server coalesces and throttles them).
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable, Mapping

from ..errors import BridgeError
from ..suggest.review import ACCEPTED, Review
from . import addresses as a

log = logging.getLogger("mixbridge.surface")
Message = tuple[str, tuple[Any, ...]]
#: ``reanalyse()`` / ``replan(amount)`` may hand back a new ``(plan_doc, track_info)``, or ``None``
#: when they call :meth:`SessionController.update` themselves.
Refresh = tuple[dict, Mapping[str, Mapping[str, Any]]] | None


def track_info_from_result(result: Any) -> dict[str, dict[str, Any]]:
    """``{stem name: {"integrated_lufs": ...}}`` from a :class:`bridge.pipeline.SessionResult`."""
    out: dict[str, dict[str, Any]] = {}
    for stem in getattr(result, "stems", ()):
        analysis = getattr(stem, "analysis", None)
        lufs = analysis.loudness.integrated_lufs if analysis is not None else None
        out[stem.name] = {"integrated_lufs": lufs}
    return out


def _cut(text: str, limit: int = a.MAX_FEEDBACK_STRING_BYTES) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit - 3].decode("utf-8", "ignore") + "..."


class SessionController:
    """Review state + target + feedback for one session.

    Parameters
    ----------
    target : bridge.daw.base.Target
        Where accepted suggestions land.
    plan_doc : dict
        The full plan (``docs/plan-json.md``).
    track_info : mapping
        ``{track name: {"integrated_lufs": float | None}}`` (see :func:`track_info_from_result`).
    reanalyse, replan : callable, optional
        Supplied by the owner (the CLI or the watcher): analyse the stems again / replan at a new
        amount.  Without them those commands answer that there is nothing to redo.
    """

    def __init__(self, target: Any, plan_doc: dict, track_info: Mapping[str, Mapping[str, Any]] | None = None,
                 reanalyse: Callable[[], Refresh] | None = None,
                 replan: Callable[[float], Refresh] | None = None):
        self.target = target
        self.review = Review(plan_doc)
        self.track_info = dict(track_info or {})
        self.reanalyse_fn = reanalyse
        self.replan_fn = replan
        self.amount = float((plan_doc.get("settings") or {}).get("amount", 1.0))
        self.ab_state = "B"
        self.compensation_db = 0.0
        self.status = "ready"
        self.provenance: dict[str, str] = {}
        self._provenance_loaded = False
        self._lock = threading.RLock()
        self._listeners: list[Callable[[list[Message]], None]] = []
        self._published: dict[str, tuple[Any, ...]] = {}

    # --- feedback ---------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[list[Message]], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def state_messages(self) -> list[Message]:
        """Every feedback address with its current value (a full dump), in a stable order."""
        with self._lock:
            summaries = self.review.track_summaries(self.provenance, self.track_info)
            out: list[Message] = [(f"{a.PREFIX}/tracks/count", (len(summaries),))]
            for s in summaries:
                base = f"{a.PREFIX}/track/{s.slot}"
                lufs = a.NO_LUFS if s.integrated_lufs is None else round(max(a.NO_LUFS, s.integrated_lufs), 1)
                out += [(f"{base}/name", (_cut(s.name),)), (f"{base}/provenance", (s.provenance,)),
                        (f"{base}/lufs", (float(lufs),)), (f"{base}/finding", (_cut(s.top_finding),)),
                        (f"{base}/pending", (s.pending,))]
            out += [(f"{a.PREFIX}/pending", (len(self.review.pending()),)),
                    (f"{a.PREFIX}/ab", (self.ab_state,)),
                    (f"{a.PREFIX}/ab/compensation_db", (float(self.compensation_db),)),
                    (f"{a.PREFIX}/amount", (float(self.amount),)),
                    (f"{a.PREFIX}/status", (_cut(self.status),))]
            return out

    def _publish(self) -> None:
        state = self.state_messages()
        changed = [(addr, args) for addr, args in state if self._published.get(addr) != args]
        self._published = dict(state)
        if changed:
            for listener in list(self._listeners):
                listener(changed)

    # --- commands -----------------------------------------------------------------------------------------

    def run(self, command: str, values: tuple[Any, ...] = ()) -> list[Message]:
        """Run one validated command; returns the messages for the requester alone (lists, pong).

        Never raises: an error becomes the status line.
        """
        with self._lock:
            try:
                replies = getattr(self, "cmd_" + command)(*values) or []
            except BridgeError as exc:
                self.status = f"{exc.code}: {command} failed: {exc.detail or exc.message}"
                replies = []
            except Exception as exc:  # noqa: BLE001 - a surface command must never take the server down
                log.exception("surface command %s failed", command)
                self.status = f"E_BRIDGE: {command} failed: {type(exc).__name__}: {exc}"
                replies = []
            self._publish()
            return replies

    def run_on(self, plan_id: str, command: str, values: tuple[Any, ...] = ()) -> bool:
        """Run ``command`` only if the review is still on the plan ``plan_id`` (the review page names
        suggestions and track slots of the plan it showed).  Returns whether it ran; if a new pass or
        amount replaced the plan meanwhile, nothing is done and the status line says so."""
        with self._lock:
            if str(self.review.plan.get("id", "")) != plan_id:
                self.status = f"{command} not done: the plan changed (a new pass or amount) since the page showed it"
                self._publish()
                return False
            self.run(command, values)
            return True

    def cmd_refresh(self) -> None:
        """Check REAPER: what is accepted lands again (applies are idempotent and cumulative), so a value
        the producer changed by hand is found and kept (the track turns hybrid); nothing else is written."""
        if not self.review.accepted_ids:
            self._refresh_provenance()
            self.status = "checked REAPER: nothing accepted yet"
            return
        report = self.target.apply(self.review.plan_for_target())
        self._refresh_provenance()
        kept, written = len(report.overrides), len(report.written)
        self.status = (f"checked REAPER: {kept} manual {'change' if kept == 1 else 'changes'} kept, "
                       f"{written} {'value' if written == 1 else 'values'} written")

    def cmd_ping(self) -> list[Message]:
        return [(f"{a.PREFIX}/pong", ())]

    def cmd_dump(self) -> list[Message]:
        self._load_provenance()
        return self.state_messages()

    def cmd_list_tracks(self) -> list[Message]:
        return [m for m in self.cmd_dump() if m[0].startswith(f"{a.PREFIX}/track")]

    def cmd_list_suggestions(self, slot: int | None = None) -> list[Message]:
        track = self.review.track_name(slot) if slot is not None else None
        if slot is not None and track is None:
            self.status = f"E_OSC_MESSAGE: no track in slot {slot}"
            return [(f"{a.PREFIX}/suggestions/end", (0,))]
        listed = self.review.pending(track)
        out: list[Message] = [(f"{a.PREFIX}/suggestion", (_cut(s.id, a.MAX_STRING_BYTES), s.track_slot, s.index,
                                                          s.code, self.review.state(s.id), _cut(s.summary)))
                              for s in listed]
        return out + [(f"{a.PREFIX}/suggestions/end", (len(listed),))]

    def cmd_list_track_suggestions(self, slot: int) -> list[Message]:
        return self.cmd_list_suggestions(slot)

    def cmd_accept(self, suggestion_id: str) -> None:
        if self.review.find(suggestion_id) is None:
            self.status = f"E_OSC_MESSAGE: no suggestion {suggestion_id!r}"
            return
        self._decide(self.review.accept(suggestion_id), f"accepted {suggestion_id}")

    def cmd_reject(self, suggestion_id: str) -> None:
        if self.review.find(suggestion_id) is None:
            self.status = f"E_OSC_MESSAGE: no suggestion {suggestion_id!r}"
            return
        self._decide(self.review.reject(suggestion_id), f"rejected {suggestion_id}")

    def _at(self, slot: int, index: int):
        found = self.review.at(slot, index)
        if found is None:
            self.status = f"E_OSC_MESSAGE: track {slot} has no suggestion {index}"
        return found

    def cmd_accept_index(self, slot: int, index: int) -> None:
        s = self._at(slot, index)
        if s is not None:
            self.cmd_accept(s.id)

    def cmd_reject_index(self, slot: int, index: int) -> None:
        s = self._at(slot, index)
        if s is not None:
            self.cmd_reject(s.id)

    def _track(self, slot: int) -> str | None:
        name = self.review.track_name(slot)
        if name is None:
            self.status = f"E_OSC_MESSAGE: no track in slot {slot}"
        return name

    def cmd_accept_track(self, slot: int) -> None:
        name = self._track(slot)
        if name is not None:
            n = len(self.review.pending(name))
            self._decide(self.review.accept_track(name), f"accepted {n} suggestions on {name}")

    def cmd_reject_track(self, slot: int) -> None:
        name = self._track(slot)
        if name is not None:
            self._decide(self.review.reject_track(name), f"rejected every suggestion on {name}")

    def cmd_accept_all(self) -> None:
        n = len(self.review.pending())
        self._decide(self.review.accept_all(), f"accepted {n} suggestions")

    def cmd_reject_all(self) -> None:
        self._decide(self.review.reject_all(), "rejected every suggestion")

    def _decide(self, review: Review, what: str) -> None:
        """Apply ``review``'s accepted plan; keep it only if the target took it."""
        if review.accepted_ids == self.review.accepted_ids:
            self.review = review  # nothing to write (pending <-> rejected)
            self.status = what
            return
        report = self.target.apply(review.plan_for_target())  # raises: the old review stays
        self.review = review
        self.status = f"{what} ({len(report.writes)} writes)"
        self._refresh_provenance()

    def cmd_set_amount(self, amount: float) -> None:
        amount = round(float(amount), 3)
        if self.replan_fn is None:
            self.amount = amount
            self.status = f"amount {amount:g} noted; no stems to replan (started with --plan)"
            return
        refreshed = self.replan_fn(amount)
        self.amount = amount
        if refreshed is not None:
            self.update(*refreshed)
        self._reapply()
        self.status = f"amount {amount:g}: replanned"

    def cmd_ab(self) -> None:
        delta = float((self.review.plan.get("mix") or {}).get("estimated_ai_delta_lu") or 0.0)
        if not math.isfinite(delta):
            delta = 0.0
        result = self.target.ab_toggle(delta)
        self.ab_state = "A" if result.get("state") == "A" else "B"
        self.compensation_db = float(result.get("compensation_db") or 0.0)
        self.status = (f"A/B: now {self.ab_state} ({'pre-AI' if self.ab_state == 'A' else 'AI'}), "
                       f"level matched by {self.compensation_db:+.1f} dB")

    def cmd_revert(self) -> None:
        report = self.target.revert()
        self.review = self.review.unaccept_all()
        self.ab_state, self.compensation_db = "B", 0.0
        self.status = f"reverted: {len(report.writes)} values restored"
        self._refresh_provenance()

    def cmd_reanalyse(self) -> None:
        if self.reanalyse_fn is None:
            self.status = "nothing to re-analyse (started with --plan, no stems folder)"
            return
        refreshed = self.reanalyse_fn()
        if refreshed is not None:
            self.update(*refreshed)
        self._reapply()
        self.status = f"re-analysed: {len(self.review.pending())} suggestions pending"

    def _reapply(self) -> None:
        """After a new plan: what was accepted lands again with the new values."""
        if self.review.accepted_ids:
            self.target.apply(self.review.plan_for_target())
            self._refresh_provenance()

    # --- provenance -------------------------------------------------------------------------------------

    def _refresh_provenance(self) -> None:
        try:
            self.provenance = dict(self.target.provenance())
            self._provenance_loaded = True
        except BridgeError as exc:
            log.info("provenance unavailable: %s", exc)

    def _load_provenance(self) -> None:
        if not self._provenance_loaded:
            self._refresh_provenance()

    # --- owner side ---------------------------------------------------------------------------------------

    def update(self, plan_doc: dict, track_info: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """A new plan (after a re-analysis or a new pass): decisions carry over by suggestion id."""
        with self._lock:
            self.review = self.review.updated(plan_doc)
            if track_info is not None:
                self.track_info = dict(track_info)
            self.amount = float((plan_doc.get("settings") or {}).get("amount", self.amount))
            self._publish()

    def record_accept_all(self) -> dict:
        """Mark every pending suggestion accepted *without* applying it (the owner applies and
        reports itself, e.g. the watcher for the Lua "Accept all pending" request); returns the
        plan document of everything accepted."""
        with self._lock:
            self.review = self.review.accept_all()
            return self.review.plan_for_target()

    def accepted(self) -> tuple[str, ...]:
        with self._lock:
            return self.review.accepted_ids

    def states(self) -> dict[str, str]:
        """Suggestion id -> pending/accepted/rejected."""
        with self._lock:
            return {s.id: self.review.state(s.id) for s in self.review.suggestions}


__all__ = ["SessionController", "track_info_from_result", "ACCEPTED"]
