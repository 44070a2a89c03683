"""What to write: the plan's wanted values against what the bridge wrote before and what the session holds.

Pure: plan documents, :class:`~.tagging.TrackTag` records and numbers in; frozen decisions out.  Every
target (reapy, OSC, the DAW-less ``plan`` target) reads the session, hands the readings to
:func:`reconcile_track` and writes what it returns; none of them decides anything of this itself.

The rules (docs/reaper-setup.md, "What the bridge writes"):

1. **Manual edits win.**  A parameter the bridge wrote whose session value no longer matches what it
   wrote was changed by the producer: it is theirs from then on (an *override*), never written
   again until re-enabled (``reenable`` holds ``"track:key"``), and the track becomes ``hybrid``.
   An AI FX the producer deleted counts as an override of each of its parameters ("removed").
2. **Relative to pre-AI.**  The first write of a parameter records the session's value before it
   (``before_raw``); later passes compute from that, so applying the same plan twice writes nothing
   the second time (the keys are *unchanged*).
3. **Cumulative.**  A key the bridge wrote that the new plan no longer holds goes back to its pre-AI
   value, so the plan handed in always says everything that should be in place.
4. **What a target cannot do is pending, with a reason, never dropped** (OSC adds no FX and writes no
   band types, polarity or envelopes); so is a key the producer owns.
5. A track the plan marks ``manual`` (the producer's list) gets nothing, and what the bridge wrote
   there goes back.
6. **A/B is part of the state** (``ab``): while the session plays A (pre-AI), a track value the
   bridge owns is expected at its pre-AI value, so a fader moved by hand on A is an override like
   any other, and a pass applied on A updates B's values in the tag without touching the session
   (``Write.deferred``): toggling back to B writes them (:func:`reconcile_ab`).
7. **Envelope points one by one.**  The volume-envelope points the bridge wrote are compared with
   the envelope point by point (time and stored value); a point the producer moved, changed or
   deleted is theirs: never written or deleted again (also not by a revert), the track becomes
   ``hybrid``, and a plan point at the time of one of theirs is pending.

Keys name one parameter: ``track.volume_db``, ``eq.band2_gain_db``, ``comp.ratio``, ``polarity.right``;
the volume automation of a track is :data:`AUTOMATION_KEY`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from .tagging import TrackTag, Written

AUTOMATION_KEY = "automation.volume_db"
#: Why a key the producer changed by hand is not written.
WHY_OVERRIDE = "the producer changed it by hand; re-enable to let the bridge write it"


class _Absent:
    """A reading: the AI FX that holds this parameter is not on the track."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
#: What a transport read for a key: its raw value, ``None`` (not observable), or :data:`ABSENT`.
Reading = Any


class Capabilities(Protocol):
    """What a transport can do and how its raw values relate to plan values (pure functions)."""

    kind: str

    def refuses(self, key: str) -> str | None:
        """Why this transport can neither write nor read ``key`` (``None``: it can);
        :data:`AUTOMATION_KEY` asks about the volume envelope."""

    def missing_fx(self, key: str) -> str | None:
        """Why ``key`` cannot be written while its AI FX is not on the track (``None``: the transport adds it)."""

    def to_raw(self, key: str, value: Any, before_raw: float | None) -> float:
        """The raw value to write for plan ``value`` of ``key``, given the pre-AI raw value."""

    def to_plan(self, key: str, raw: float, before_raw: float | None) -> Any:
        """A raw value in plan units, for the notes ("the producer moved it to -1.9 dB")."""

    def same(self, key: str, a: float, b: float) -> bool:
        """Whether two raw values of ``key`` are the same setting (the transport's precision)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """One value the plan asks for."""

    key: str
    value: Any
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Write:
    """One parameter write.  ``value`` is ``None`` for a restore to the pre-AI value.

    For :data:`AUTOMATION_KEY`, ``value`` is the number of points and ``raw`` is ``None``.
    ``deferred``: the session plays A (pre-AI), so the value goes into the tag as B's value and
    the session is left alone until the toggle back to B.
    """

    track: str
    key: str
    value: Any
    raw: float | None
    current: Reading = None
    unit: str = ""
    deferred: bool = False

    @property
    def restore(self) -> bool:
        return self.value is None


@dataclass(frozen=True, slots=True)
class Override:
    """A parameter the producer changed after the bridge wrote it."""

    track: str
    key: str
    from_value: Any
    to_value: Any


@dataclass(frozen=True, slots=True)
class Pending:
    """A wanted value that was not written, and why (``code``: a stable error code when one applies)."""

    track: str
    key: str
    value: Any
    why: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class TrackDecision:
    """Everything one pass does on one track (see the module docstring).

    Attributes
    ----------
    writes : tuple of Write
        In write order (band types before their values), restores included.
    points : tuple or None
        The volume-envelope points ``(time_s, gain_db)`` to write in place of the bridge's earlier
        ones; ``None``: leave them.
    remove_points : tuple
        The bridge's earlier points still intact in the envelope, ``(time_s, stored value)``: what
        writing ``points`` replaces (the producer's points are never in it).
    overrides : tuple of Override
        Detected in this pass.
    unchanged : tuple of str
        Keys already at the wanted value.
    tag : TrackTag
        The track's tag once the writes have landed (:meth:`finish` fills in pre-AI values the
        transport could only read after adding an FX).
    """

    track: str
    writes: tuple[Write, ...]
    points: tuple[tuple[float, float], ...] | None
    overrides: tuple[Override, ...]
    pending: tuple[Pending, ...]
    unchanged: tuple[str, ...]
    tag: TrackTag
    old_tag: TrackTag = field(repr=False, default_factory=TrackTag)
    remove_points: tuple[tuple[float, float], ...] = ()

    @property
    def touched(self) -> bool:
        """Whether the pass writes or learns anything here (its pass number goes on the tag)."""
        return bool(self.writes or self.points is not None or self.overrides)

    @property
    def tag_changed(self) -> bool:
        return (self.tag.state_json() != self.old_tag.state_json()
                or self.tag.provenance != self.old_tag.provenance)

    def finish(self, befores: Mapping[str, float] | None = None, *, pass_number: int = 0,
               plan_id: str = "", point_values: Sequence[float] | None = None) -> TrackTag:
        """The tag to store: ``befores`` gives the pre-AI raw value of keys whose AI FX the transport
        had to add first (their reading was :data:`ABSENT`); ``point_values`` the stored envelope
        value of each of :attr:`points` as the transport wrote it; touched tracks get the pass and plan."""
        tag = copy.deepcopy(self.tag)
        for key, before in (befores or {}).items():
            if key in tag.written and tag.written[key].before_raw is None:
                w = tag.written[key]
                tag.written[key] = Written(w.value, w.raw, float(before), w.unit)
        if point_values is not None and self.points is not None:
            tag.points = [[float(t), float(db), float(v)] for (t, db), v in zip(self.points, point_values)]
        if self.touched:
            tag.pass_number, tag.plan_id = pass_number, plan_id
        return tag


def wanted_changes(track_doc: Mapping[str, Any]) -> dict[str, Wanted]:
    """The plan's changes of one track as ``{key: Wanted}`` (the one plan-to-keys rule).

    Tolerant of fields it does not know (plan schema 1 and 2).
    """
    out: dict[str, Wanted] = {}
    for c in track_doc.get("changes") or []:
        target, param = c.get("target"), c.get("param")
        if not target or not param:
            continue
        if target == "track" and param == "polarity":
            channel = c.get("channel", "both")
            key = "track.polarity" if channel == "both" else f"polarity.{channel}"
            out[key] = Wanted(key, c.get("value"), "flag")
        else:
            key = f"{target}.{param}"
            out[key] = Wanted(key, c.get("value"), c.get("unit", "") or "")
    return out


def wanted_points(track_doc: Mapping[str, Any]) -> tuple[tuple[float, float], ...]:
    """The plan's volume automation of one track: ``(time_s, gain_db)`` points."""
    return tuple((float(p[0]), float(p[1])) for a in track_doc.get("automation") or []
                 if a.get("param", "volume_db") == "volume_db" for p in a.get("points") or [])


def keys_to_read(track_doc: Mapping[str, Any], tag: TrackTag) -> set[str]:
    """The keys a transport must read before :func:`reconcile_track`: wanted and written ones."""
    return set(wanted_changes(track_doc)) | set(tag.written)


def write_order(key: str) -> tuple[int, str]:
    """Band types before their values (a type change can re-scale REAPER's display)."""
    return (0 if key.endswith("_type") else 1, key)


def _is_reading(value: Reading) -> bool:
    return value is not None and value is not ABSENT


#: Two envelope points are the same point: times within this (seconds) ...
POINT_TIME_TOLERANCE_S = 1e-6
#: ... and stored values within this, relative (REAPER stores doubles; the bridge wrote them).
POINT_VALUE_TOLERANCE = 1e-6


def _point_at(points: Sequence[Sequence[float]], time_s: float) -> Sequence[float] | None:
    return next((p for p in points if abs(float(p[0]) - time_s) <= POINT_TIME_TOLERANCE_S), None)


def intact_points(tag: TrackTag, envelope: Sequence[tuple[float, float]] | None
                  ) -> tuple[list[list[float]], list[list[float]]]:
    """The bridge's points split into (still as written, changed or removed by the producer).

    ``envelope`` is the volume envelope's points ``(time_s, stored value)``; ``None`` when the
    transport cannot read it (every point counts as intact).  A point without its stored value
    (an older tag) is compared by time alone.
    """
    if envelope is None:
        return [list(p) for p in tag.points], []
    intact, edited = [], []
    for p in tag.points:
        found = _point_at(envelope, float(p[0]))
        same = found is not None and (len(p) < 3 or abs(float(found[1]) - float(p[2]))
                                      <= POINT_VALUE_TOLERANCE * max(1.0, abs(float(p[2]))))
        (intact if same else edited).append(list(p))
    return intact, edited


def reconcile_track(name: str, track_doc: Mapping[str, Any], tag: TrackTag, readings: Mapping[str, Reading],
                    caps: Capabilities, reenable: frozenset[str] | set[str] = frozenset(),
                    ab: str = "B") -> TrackDecision:
    """Decide one track's pass.

    Parameters
    ----------
    name : str
        The track's name in the session (overrides are re-enabled as ``"name:key"``).
    track_doc : mapping
        The plan's entry for the track (``docs/plan-json.md``).
    tag : TrackTag
        What the bridge wrote here before (not modified).
    readings : mapping
        Current raw values of :func:`keys_to_read` (missing = not observable); for
        :data:`AUTOMATION_KEY`, the volume envelope's points ``(time_s, stored value)``.
    caps : Capabilities
        The transport's.
    reenable : set of str
        ``"track:key"`` overrides the producer hands back to the bridge.
    ab : str
        ``"A"`` while the session plays the pre-AI state of an A/B comparison, else ``"B"``.
    """
    old = tag
    tag = copy.deepcopy(tag)
    opt_out = track_doc.get("status") == "manual"
    on_a = ab == "A"
    overrides: list[Override] = []
    for key, written in sorted(tag.written.items()):
        if key in tag.overrides:
            if f"{name}:{key}" in reenable:
                del tag.overrides[key]
            continue
        if caps.refuses(key) is not None:
            continue  # this transport cannot read it back
        current = readings.get(key)
        expected = _expected(key, written, on_a)
        if current is ABSENT:
            tag.overrides[key] = {"from": written.value, "to": "removed"}
        elif current is None or expected is None or caps.same(key, current, expected):
            continue
        else:
            tag.overrides[key] = {"from": written.value, "to": caps.to_plan(key, current, written.before_raw)}
        overrides.append(Override(name, key, written.value, tag.overrides[key]["to"]))

    wanted = {} if opt_out else wanted_changes(track_doc)
    writes: list[Write] = []
    pending: list[Pending] = []
    unchanged: list[str] = []
    for key in sorted(wanted, key=write_order):
        want = wanted[key]
        current = readings.get(key)
        why = WHY_OVERRIDE if key in tag.overrides else caps.refuses(key)
        if why is None and current is ABSENT:
            why = caps.missing_fx(key)
        if why is not None:
            pending.append(Pending(name, key, want.value, why))
            continue
        deferred = on_a and _plays_pre_ai_on_a(key)
        before = tag.written[key].before_raw if key in tag.written else (current if _is_reading(current) else None)
        raw = caps.to_raw(key, want.value, before)
        # On A the session shows the pre-AI value; B's value is what the tag holds.
        shown = (tag.written[key].raw if key in tag.written else None) if deferred else current
        if _is_reading(shown) and caps.same(key, shown, raw):
            unchanged.append(key)  # a value already there before the bridge came stays the producer's
            continue
        writes.append(Write(name, key, want.value, raw, current, want.unit, deferred))
        tag.written[key] = Written(want.value, raw, before, want.unit)

    for key, written in sorted(old.written.items(), key=lambda kv: write_order(kv[0])):
        if key in wanted or key in tag.overrides or caps.refuses(key) is not None:
            continue
        current = readings.get(key)
        deferred = on_a and _plays_pre_ai_on_a(key)  # A already plays the pre-AI value
        if not deferred and current is not ABSENT and (written.before_raw is None or current is None
                                                       or not caps.same(key, current, written.before_raw)):
            writes.append(Write(name, key, None, written.before_raw, current, written.unit))
        tag.written.pop(key, None)

    new_points, remove_points = _reconcile_points(name, track_doc, tag, readings, caps, opt_out, overrides, pending)
    tag.opt_out = opt_out
    tag.provenance = tag.derive_provenance()
    return TrackDecision(name, tuple(writes), new_points, tuple(overrides), tuple(pending), tuple(unchanged),
                         tag, old, remove_points)


def _plays_pre_ai_on_a(key: str) -> bool:
    """Keys A puts back to their pre-AI value (track values); AI FX are bypassed on A, not reset."""
    return key.startswith("track.")


def _expected(key: str, written: Written, on_a: bool) -> float | None:
    """The raw value a key the bridge owns should show now."""
    return written.before_raw if on_a and _plays_pre_ai_on_a(key) else written.raw


def _reconcile_points(name: str, track_doc: Mapping[str, Any], tag: TrackTag, readings: Mapping[str, Reading],
                      caps: Capabilities, opt_out: bool, overrides: list[Override], pending: list[Pending]
                      ) -> tuple[tuple[tuple[float, float], ...] | None, tuple[tuple[float, float], ...]]:
    """Rule 7 (module docstring): ``(points to own now or None, intact old points to replace)``."""
    wanted = () if opt_out else wanted_points(track_doc)
    why = caps.refuses(AUTOMATION_KEY)
    if why is not None:
        if wanted:
            pending.append(Pending(name, AUTOMATION_KEY, len(wanted), why))
        return None, ()
    intact, edited = intact_points(tag, readings.get(AUTOMATION_KEY))
    theirs = list((tag.overrides.get("automation") or {}).get("times") or [])
    if edited:
        theirs += [float(p[0]) for p in edited]
        tag.overrides["automation"] = {"from": len(tag.points), "to": f"{len(theirs)} points edited by the producer",
                                       "times": sorted(theirs)}
        overrides.append(Override(name, AUTOMATION_KEY, len(tag.points), tag.overrides["automation"]["to"]))
        tag.points = intact
    keep = []
    for t, db in wanted:
        if any(abs(t - x) <= POINT_TIME_TOLERANCE_S for x in theirs):
            pending.append(Pending(name, AUTOMATION_KEY, db, f"the producer edited the automation point at {t:g} s"))
        else:
            keep.append((t, db))
    if [(float(p[0]), float(p[1])) for p in intact] == keep:
        return None, ()
    tag.points = [[t, db] for t, db in keep]  # stored values filled in by TrackDecision.finish
    return tuple(keep), tuple((float(p[0]), float(p[2])) for p in intact if len(p) >= 3) + tuple(
        (float(p[0]), float("nan")) for p in intact if len(p) < 3)


@dataclass(frozen=True, slots=True)
class AbDecision:
    """One track's A/B toggle: the writes, the producer's moves found, and the tag after it."""

    track: str
    writes: tuple[Write, ...]
    overrides: tuple[Override, ...]
    tag: TrackTag
    old_tag: TrackTag = field(repr=False, default_factory=TrackTag)

    @property
    def tag_changed(self) -> bool:
        return self.tag.state_json() != self.old_tag.state_json() or self.tag.provenance != self.old_tag.provenance


def reconcile_ab(name: str, tag: TrackTag, readings: Mapping[str, Reading], caps: Capabilities,
                 going: str) -> AbDecision:
    """Toggle one track to ``going`` (``"A"``: pre-AI values, ``"B"``: the AI values).

    Only the track values the bridge owns move (:func:`_plays_pre_ai_on_a`); each must show the
    value of the state the session is leaving.  One that does not was moved by hand: it is the
    producer's from then on (an override, never reset by A or B), so a fader moved while
    listening to A survives the switch back to B.
    """
    tag = copy.deepcopy(tag)
    old = copy.deepcopy(tag)
    leaving_a = going == "B"
    writes: list[Write] = []
    overrides: list[Override] = []
    for key, written in sorted(tag.written.items()):
        if key in tag.overrides or not _plays_pre_ai_on_a(key) or caps.refuses(key) is not None:
            continue
        current = readings.get(key)
        if current is None or current is ABSENT or written.before_raw is None:
            continue
        expected = _expected(key, written, on_a=leaving_a)
        target = _expected(key, written, on_a=not leaving_a)
        if not caps.same(key, current, expected):
            tag.overrides[key] = {"from": written.value, "to": caps.to_plan(key, current, written.before_raw)}
            overrides.append(Override(name, key, written.value, tag.overrides[key]["to"]))
            continue
        if not caps.same(key, current, target):
            writes.append(Write(name, key, written.value if going == "B" else None, target, current, written.unit))
    tag.provenance = tag.derive_provenance()
    return AbDecision(name, tuple(writes), tuple(overrides), tag, old)


def ab_master(going: str, current: float, saved: float | None, delta_db: float,
              scale: Callable[[float, float], float]) -> float:
    """The master fader's value after the A/B toggle to ``going``.

    A plays ``delta_db`` louder (the AI pass's estimated loudness change, so both sides play equally
    loud); B takes the compensation off again: exactly the value saved on the way to A when the
    master was not touched since, else relative, so a master moved by hand while on A keeps that
    move on B.  ``scale(value, db)`` applies ``db`` to a master value (a gain or a dB reading).
    """
    if going == "A":
        return scale(current, delta_db)
    if saved is not None and abs(scale(saved, delta_db) - current) <= 1e-9 * max(1.0, abs(current)):
        return saved
    return scale(current, -delta_db)
