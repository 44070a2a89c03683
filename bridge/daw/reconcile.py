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

Keys name one parameter: ``track.volume_db``, ``eq.band2_gain_db``, ``comp.ratio``, ``polarity.right``;
the volume automation of a track is :data:`AUTOMATION_KEY`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

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
    """

    track: str
    key: str
    value: Any
    raw: float | None
    current: Reading = None
    unit: str = ""

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
        The volume-envelope points to write in place of the bridge's earlier ones; ``None``: leave them.
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

    @property
    def touched(self) -> bool:
        """Whether the pass writes or learns anything here (its pass number goes on the tag)."""
        return bool(self.writes or self.points is not None or self.overrides)

    @property
    def tag_changed(self) -> bool:
        return (self.tag.state_json() != self.old_tag.state_json()
                or self.tag.provenance != self.old_tag.provenance)

    def finish(self, befores: Mapping[str, float] | None = None, *, pass_number: int = 0,
               plan_id: str = "") -> TrackTag:
        """The tag to store: ``befores`` gives the pre-AI raw value of keys whose AI FX the transport
        had to add first (their reading was :data:`ABSENT`); touched tracks get the pass and plan."""
        tag = copy.deepcopy(self.tag)
        for key, before in (befores or {}).items():
            if key in tag.written and tag.written[key].before_raw is None:
                w = tag.written[key]
                tag.written[key] = Written(w.value, w.raw, float(before), w.unit)
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


def reconcile_track(name: str, track_doc: Mapping[str, Any], tag: TrackTag, readings: Mapping[str, Reading],
                    caps: Capabilities, reenable: frozenset[str] | set[str] = frozenset()) -> TrackDecision:
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
        Current raw values of :func:`keys_to_read` (missing = not observable).
    caps : Capabilities
        The transport's.
    reenable : set of str
        ``"track:key"`` overrides the producer hands back to the bridge.
    """
    old = tag
    tag = copy.deepcopy(tag)
    opt_out = track_doc.get("status") == "manual"
    overrides: list[Override] = []
    for key, written in sorted(tag.written.items()):
        if key in tag.overrides:
            if f"{name}:{key}" in reenable:
                del tag.overrides[key]
            continue
        if caps.refuses(key) is not None:
            continue  # this transport cannot read it back
        current = readings.get(key)
        if current is ABSENT:
            tag.overrides[key] = {"from": written.value, "to": "removed"}
        elif current is None or caps.same(key, current, written.raw):
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
        before = tag.written[key].before_raw if key in tag.written else (current if _is_reading(current) else None)
        raw = caps.to_raw(key, want.value, before)
        if _is_reading(current) and caps.same(key, current, raw):
            unchanged.append(key)  # a value already there before the bridge came stays the producer's
            continue
        writes.append(Write(name, key, want.value, raw, current, want.unit))
        tag.written[key] = Written(want.value, raw, before, want.unit)

    for key, written in sorted(old.written.items(), key=lambda kv: write_order(kv[0])):
        if key in wanted or key in tag.overrides or caps.refuses(key) is not None:
            continue
        current = readings.get(key)
        if current is not ABSENT and (written.before_raw is None or current is None
                                      or not caps.same(key, current, written.before_raw)):
            writes.append(Write(name, key, None, written.before_raw, current, written.unit))
        tag.written.pop(key, None)

    points = () if opt_out else wanted_points(track_doc)
    new_points = None
    why_points = caps.refuses(AUTOMATION_KEY)
    if points and why_points is not None:
        pending.append(Pending(name, AUTOMATION_KEY, len(points), why_points))
    elif why_points is None and list(map(list, points)) != [list(p) for p in tag.points] and "automation" not in tag.overrides:
        new_points = points
        tag.points = [list(p) for p in points]
    tag.opt_out = opt_out
    tag.provenance = tag.derive_provenance()
    return TrackDecision(name, tuple(writes), new_points, tuple(overrides), tuple(pending), tuple(unchanged),
                         tag, old)
