"""The review state of one plan: which suggestions the producer accepted, rejected, or has yet to see.

Pure: a plan document (``docs/plan-json.md``) in, plan documents and small frozen records out.
A :class:`Review` is immutable; every decision returns a new one, so a control surface can hold
the current review and swap it only once the target has taken the matching plan.

Targets apply plans *cumulatively* (a key written earlier and absent from the new plan goes back
to its pre-AI value), so :meth:`Review.plan_for_target` always holds every accepted suggestion,
not just the newest one: accepting B after A sends A+B, rejecting A afterwards sends B alone.

Decisions in bulk (:meth:`Review.accept_track`, :meth:`Review.accept_all`) accept what is still
*pending*: a suggestion the producer rejected stays rejected until they accept that one alone.
Rejections in bulk reject pending and accepted alike ("no AI here").
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
STATES = (PENDING, ACCEPTED, REJECTED)
#: Finding severities, most severe first (top finding of a track).
SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggestion of the plan, addressable by id or by (track slot, index), both 1-based."""

    id: str
    track: str
    track_slot: int
    index: int
    code: str
    summary: str
    has_moves: bool


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """What a surface shows for one track."""

    slot: int
    name: str
    provenance: str
    integrated_lufs: float | None
    top_finding: str
    top_severity: str
    pending: int


def _suggestion_id(track: dict[str, Any], item: dict[str, Any]) -> str:
    """The suggestion a change belongs to; changes of older plans without one group by reason."""
    return item.get("suggestion") or f"{track.get('name', '')}/{item.get('reason') or 'change'}"


#: Which suggestion a change or automation lane belongs to (the one rule; the review page reads it too).
suggestion_id_of = _suggestion_id


def suggestions_of(plan: Mapping[str, Any]) -> tuple[Suggestion, ...]:
    """Every suggestion of ``plan``, in plan order (tracks, then their suggestions).

    Changes or automation naming a suggestion the track's ``suggestions`` list lacks still get one,
    so nothing in a plan is unreachable from a surface.
    """
    out: list[Suggestion] = []
    seen: set[str] = set()
    for slot, track in enumerate(plan.get("tracks", []), start=1):
        name = track.get("name", "")
        listed = [(s.get("id", ""), s.get("code", ""), s.get("summary", ""), bool(s.get("has_moves", True)))
                  for s in track.get("suggestions", [])]
        for item in list(track.get("changes", [])) + list(track.get("automation", [])):
            sid = _suggestion_id(track, item)
            if sid not in {s[0] for s in listed}:
                listed.append((sid, item.get("reason", ""), f"{name}: {item.get('reason', 'change')}", True))
        index = 0
        for sid, code, summary, has_moves in listed:
            if not sid or sid in seen:
                continue
            seen.add(sid)
            index += 1
            out.append(Suggestion(sid, name, slot, index, code, summary, has_moves))
    return tuple(out)


@dataclass(frozen=True)
class Review:
    """A plan and the state of each of its suggestions (missing from ``states`` = pending)."""

    plan: Mapping[str, Any]
    states: Mapping[str, str] = field(default_factory=dict)

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def suggestions(self) -> tuple[Suggestion, ...]:
        return suggestions_of(self.plan)

    def state(self, suggestion_id: str) -> str:
        return self.states.get(suggestion_id, PENDING)

    def find(self, suggestion_id: str) -> Suggestion | None:
        return next((s for s in self.suggestions if s.id == suggestion_id), None)

    def at(self, track_slot: int, index: int) -> Suggestion | None:
        """The ``index``-th suggestion (1-based) of the track in ``track_slot`` (1-based)."""
        return next((s for s in self.suggestions if s.track_slot == track_slot and s.index == index), None)

    def track_name(self, track_slot: int) -> str | None:
        tracks = self.plan.get("tracks", [])
        return tracks[track_slot - 1].get("name") if 1 <= track_slot <= len(tracks) else None

    def with_state(self, state: str) -> tuple[Suggestion, ...]:
        return tuple(s for s in self.suggestions if self.state(s.id) == state)

    def pending(self, track: str | None = None) -> tuple[Suggestion, ...]:
        return tuple(s for s in self.with_state(PENDING) if track is None or s.track == track)

    @property
    def accepted_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.with_state(ACCEPTED))

    # --- deciding --------------------------------------------------------------------------------------

    def _set(self, ids: Iterable[str], state: str) -> "Review":
        states = dict(self.states)
        for sid in ids:
            states[sid] = state
        return Review(self.plan, {k: v for k, v in states.items() if v != PENDING})

    def accept(self, suggestion_id: str) -> "Review":
        """Accept one suggestion.  Raises ``KeyError`` if the plan has no such suggestion."""
        self._require(suggestion_id)
        return self._set([suggestion_id], ACCEPTED)

    def reject(self, suggestion_id: str) -> "Review":
        self._require(suggestion_id)
        return self._set([suggestion_id], REJECTED)

    def reset(self, suggestion_id: str) -> "Review":
        self._require(suggestion_id)
        return self._set([suggestion_id], PENDING)

    def accept_track(self, track: str) -> "Review":
        return self._set([s.id for s in self.pending(track)], ACCEPTED)

    def reject_track(self, track: str) -> "Review":
        return self._set([s.id for s in self.suggestions if s.track == track], REJECTED)

    def accept_all(self) -> "Review":
        return self._set([s.id for s in self.pending()], ACCEPTED)

    def reject_all(self) -> "Review":
        return self._set([s.id for s in self.suggestions], REJECTED)

    def unaccept_all(self) -> "Review":
        """Accepted back to pending (after a revert took them out of the session)."""
        return self._set(self.accepted_ids, PENDING)

    def updated(self, plan: Mapping[str, Any]) -> "Review":
        """The same decisions on a new plan (a re-analysis or a new amount): kept by suggestion id."""
        ids = {s.id for s in suggestions_of(plan)}
        return Review(plan, {k: v for k, v in self.states.items() if k in ids})

    def _require(self, suggestion_id: str) -> None:
        if self.find(suggestion_id) is None:
            raise KeyError(suggestion_id)

    # --- what the target gets ----------------------------------------------------------------------------

    def plan_for_target(self) -> dict[str, Any]:
        """The plan document holding only the accepted suggestions' changes and automation.

        Every track stays in the document (with no changes if nothing of it is accepted), so the
        target reverts what it wrote there for a suggestion rejected since.
        """
        accepted = set(self.accepted_ids)
        doc = copy.deepcopy(dict(self.plan))
        for track in doc.get("tracks", []):
            track["changes"] = [c for c in track.get("changes", []) if _suggestion_id(track, c) in accepted]
            track["automation"] = [a for a in track.get("automation", []) if _suggestion_id(track, a) in accepted]
        doc["review"] = {"accepted": sorted(accepted)}
        return doc

    # --- what a surface shows ------------------------------------------------------------------------------

    def track_summaries(self, provenance: Mapping[str, str] | None = None,
                        track_info: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[TrackSummary, ...]:
        """Per track: name, provenance tag, integrated LUFS, most severe finding, pending count.

        ``provenance`` maps track names to ``ai``/``manual``/``hybrid`` (from the target; absent
        means the target has no tag: ``""``); ``track_info`` maps names to ``{"integrated_lufs"}``.
        """
        provenance = provenance or {}
        track_info = track_info or {}
        pending: dict[str, int] = {}
        for s in self.pending():
            pending[s.track] = pending.get(s.track, 0) + 1
        out = []
        for slot, track in enumerate(self.plan.get("tracks", []), start=1):
            name = track.get("name", "")
            findings = sorted(track.get("findings", []),
                              key=lambda f: SEVERITY_ORDER.get(f.get("severity", ""), 9))
            top = findings[0] if findings else {}
            lufs = (track_info.get(name) or {}).get("integrated_lufs")
            if lufs is not None and not math.isfinite(float(lufs)):
                lufs = None
            out.append(TrackSummary(slot, name, provenance.get(name, ""),
                                    None if lufs is None else float(lufs),
                                    top.get("message", ""), top.get("severity", ""), pending.get(name, 0)))
        return tuple(out)
