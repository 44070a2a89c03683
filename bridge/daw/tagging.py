"""Provenance kept on each track in REAPER's ``P_EXT`` state: what the bridge wrote, and when.

Keys (readable with plain ReaScript, ``GetSetMediaTrackInfo_String(tr, "P_EXT:mixbridge/…", "", false)``):

- ``mixbridge/provenance``: ``ai``, ``hybrid``, ``manual`` or ``untouched`` (:data:`PROVENANCES`, the one
  vocabulary of the notes, the console, the surfaces and every target);
- ``mixbridge/pass``: the number of the last AI pass that wrote to the track;
- ``mixbridge/plan``: the id of the plan that pass applied;
- ``mixbridge/pre_ai``: the pre-AI raw values of the track attributes the bridge owns and the producer
  has not taken over, as ``D_VOL=0.5;D_PAN=0`` (no JSON: the Lua bounce script reads it to render the
  pre-AI mix); absent once nothing is owned (after a revert);
- ``mixbridge/ai_points``: the volume-envelope points the bridge wrote and still owns, as
  ``12.05:716.0;20.05:592.4`` (time in seconds, the envelope's stored value; no JSON: the Lua bounce
  script reads it to leave them out of the pre-AI render); absent when there are none;
- ``mixbridge/state``: JSON ``{"written": {key: {"value", "raw", "before_raw", "unit"}},
  "overrides": {key: {"from", "to"}}, "points": [[time_s, gain_db, stored value], ...],
  "opt_out": bool, "envelope_shown": true}`` (``envelope_shown`` only when the bridge made the volume
  envelope visible); ``overrides["automation"]["times"]`` lists the points the producer edited.

A *key* names one parameter the bridge owns: ``track.volume_db``, ``eq.band2_gain_db``,
``comp.ratio``, ``polarity.right``, ... .  Pure data and JSON here; the target reads and writes it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PREFIX = "P_EXT:mixbridge/"
PROVENANCE, PASS, PLAN, STATE = "provenance", "pass", "plan", "state"
PRE_AI = "pre_ai"
AI_POINTS = "ai_points"
AI, HYBRID, MANUAL, UNTOUCHED = "ai", "hybrid", "manual", "untouched"
#: Per-track provenance tags, in the order the notes count them.
PROVENANCES = (AI, HYBRID, MANUAL, UNTOUCHED)


@dataclass
class Written:
    """One parameter the bridge wrote: the value in plan units, the target's raw value, and the pre-AI raw
    value (``None`` where the target cannot know it: the ``plan`` target has no session to read)."""

    value: float | str
    raw: float
    before_raw: float | None
    unit: str = ""


@dataclass
class TrackTag:
    """Everything the bridge remembers about one track."""

    provenance: str = UNTOUCHED
    pass_number: int = 0
    plan_id: str = ""
    written: dict[str, Written] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: list[list[float]] = field(default_factory=list)
    opt_out: bool = False
    #: The bridge made the volume envelope visible (a revert hides it again once it is empty).
    envelope_shown: bool = False

    def state_json(self) -> str:
        doc = {
            "written": {k: {"value": w.value, "raw": w.raw, "before_raw": w.before_raw, "unit": w.unit}
                        for k, w in sorted(self.written.items())},
            "overrides": dict(sorted(self.overrides.items())),
            "points": self.points,
            "opt_out": self.opt_out,
        }
        if self.envelope_shown:
            doc["envelope_shown"] = True
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_ext(cls, provenance: str, pass_text: str, plan_id: str, state_text: str) -> "TrackTag":
        tag = cls(provenance=provenance if provenance in PROVENANCES else UNTOUCHED, plan_id=plan_id or "")
        try:
            tag.pass_number = int(pass_text) if pass_text else 0
        except ValueError:
            tag.pass_number = 0
        if state_text:
            try:
                data = json.loads(state_text)
            except ValueError:
                data = {}
            for key, w in (data.get("written") or {}).items():
                before = w.get("before_raw")
                tag.written[key] = Written(w.get("value"), float(w.get("raw", 0.0)),
                                           None if before is None else float(before), w.get("unit", ""))
            tag.overrides = dict(data.get("overrides") or {})
            tag.points = [list(p) for p in data.get("points") or []]
            tag.opt_out = bool(data.get("opt_out", False))
            tag.envelope_shown = bool(data.get("envelope_shown", False))
        return tag

    def pre_ai_text(self, track_attrs: dict[str, str]) -> str:
        """``D_VOL=0.5;D_PAN=0``: pre-AI raw values of the owned, not overridden track attributes.

        ``track_attrs`` maps a ``track.<param>`` param to REAPER's attribute (``volume_db`` ->
        ``D_VOL``); keys of other targets (FX) are not track attributes and are left out.
        """
        pairs = []
        for key, written in self.written.items():
            target, _, param = key.partition(".")
            if (target == "track" and param in track_attrs and key not in self.overrides
                    and written.before_raw is not None):
                pairs.append((track_attrs[param], written.before_raw))
        return ";".join(f"{attr}={float(raw)!r}" for attr, raw in sorted(pairs))

    def ai_points_text(self) -> str:
        """``12.05:716.0;20.05:592.4``: the bridge's points with their stored values (see the module docstring)."""
        return ";".join(f"{float(p[0])!r}:{float(p[2])!r}" for p in self.points if len(p) >= 3)

    def derive_provenance(self) -> str:
        """``manual`` when the producer opted the track out, else ``ai`` while the bridge owns
        something here, ``hybrid`` once the producer took over part of it, ``manual`` when the
        producer took over all of it, ``untouched`` when the bridge owns nothing."""
        if self.opt_out:
            return MANUAL
        if self.written or self.points:
            return HYBRID if self.overrides else AI
        return MANUAL if self.overrides else UNTOUCHED
