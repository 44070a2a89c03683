"""What every DAW target offers (:class:`Target`) and what one apply reports (:class:`ApplyReport`).

A *target* is where an accepted plan lands: REAPER over reapy (``reaper``,
:mod:`bridge.daw.reapy_target`), REAPER's own OSC surface (``osc``, :mod:`bridge.daw.osc_target`) or
nothing but files (``plan``, :mod:`bridge.daw.plan_target`).  Targets are *transports*: they read the
session and the tags, hand both to :func:`bridge.daw.reconcile.reconcile_track`, and write what it
decides.  So all of them share its semantics: ``apply(plan)`` is idempotent and cumulative, manual
edits win, and provenance is one of ``ai`` / ``hybrid`` / ``manual`` / ``untouched``.

:func:`bridge.daw.targets.make_target` builds one from the settings and never connects: the DAW
targets connect on first use; a call made while REAPER is down raises
:class:`~bridge.errors.DawUnavailable` so the caller can queue and retry.

Thread safety: a target is not thread-safe.  :class:`bridge.session.Session` holds the one lock
every call goes through (the watcher's worker and the control surface's worker share a target).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from .reconcile import AUTOMATION_KEY, Override, Pending, Write


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one apply (or revert) did to the session.

    Attributes
    ----------
    target : str
        The target's kind.
    pass_number : int
        The target's own pass counter (REAPER's project state for the DAW targets).
    undo_name : str
        The undo point's name; empty when nothing was written.
    writes : tuple of Write
        Every parameter write made, restores (``Write.restore``) and automation included.
    overrides, pending : tuples of Override, Pending
    unchanged : tuple of (track, key)
        Wanted values already in place (written by an earlier pass).
    missing_tracks : tuple of str
        Plan tracks with moves that are not in the session.
    provenance : mapping
        Track name -> ``ai`` / ``hybrid`` / ``manual`` / ``untouched`` after this apply, for every
        plan track the session has.
    """

    target: str
    pass_number: int = 0
    undo_name: str = ""
    writes: tuple[Write, ...] = ()
    overrides: tuple[Override, ...] = ()
    pending: tuple[Pending, ...] = ()
    unchanged: tuple[tuple[str, str], ...] = ()
    missing_tracks: tuple[str, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    verified: int = 0
    unverifiable: int = 0
    round_trips: int = 0
    seconds: float = 0.0
    #: What the connection finished first: a cut-off pass's rollback (or revert), "" when nothing was left.
    recovered: str = ""

    @property
    def written(self) -> tuple[Write, ...]:
        """The writes that set an AI value (not restores)."""
        return tuple(w for w in self.writes if not w.restore)

    @property
    def restored(self) -> tuple[Write, ...]:
        return tuple(w for w in self.writes if w.restore)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``apply --report``, ``report.json``'s ``target_report``)."""
        return {
            "target": self.target, "pass_number": self.pass_number, "undo_name": self.undo_name,
            "writes": [write_dict(w) for w in self.writes],
            "overrides": [{"track": o.track, "param": o.key, "from": o.from_value, "to": o.to_value}
                          for o in self.overrides],
            "pending": [{"track": p.track, "param": p.key, "value": p.value, "why": p.why, "code": p.code}
                        for p in self.pending],
            "unchanged": [{"track": t, "param": k} for t, k in self.unchanged],
            "missing_tracks": list(self.missing_tracks), "provenance": dict(self.provenance),
            "verified": self.verified, "unverifiable": self.unverifiable, "round_trips": self.round_trips,
            "seconds": round(self.seconds, 4), "recovered": self.recovered,
        }


def write_dict(w: Write) -> dict[str, Any]:
    out: dict[str, Any] = {"track": w.track, "param": w.key}
    if w.key == AUTOMATION_KEY:
        out["points"] = w.value
    elif w.restore:
        out["restored"] = True
        out["raw"] = w.raw
    else:
        out["value"] = w.value
        out["raw"] = w.raw
    return out


@runtime_checkable
class Target(Protocol):
    """A place a plan is written to; see the module docstring for the shared semantics."""

    kind: str

    def apply(self, plan: dict, reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport: ...

    def revert(self, only_track: str | None = None) -> ApplyReport: ...

    def ab_toggle(self, delta_lu: float) -> dict: ...

    def provenance(self) -> dict[str, str]: ...

    def close(self) -> None: ...
