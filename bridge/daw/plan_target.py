"""The ``plan`` target: no DAW.  "Applying" records the plan and the tags in files, with the same reconciliation.

Its session is its own record: the reading of a key is the raw value it last recorded, so a plan
applied twice writes nothing the second time, a key dropped from the plan is *restored*, and
provenance comes out exactly as a DAW target's would with a producer who never touches anything.
Nothing is written anywhere but ``applied-plan.json`` and ``plan-tags.json`` in the state folder
(in memory without one): the notes call these writes *proposed (no DAW target)*.
"""
from __future__ import annotations

import json
import math
import time
import zlib
from pathlib import Path
from typing import Any

from ..files import write_atomic
from . import mapping as m
from .base import ApplyReport
from .reconcile import AUTOMATION_KEY, Write, keys_to_read, reconcile_track
from .tagging import TrackTag

APPLIED_PLAN_NAME = "applied-plan.json"
PLAN_TAGS_NAME = "plan-tags.json"


class PlanCapabilities:
    """Plan units are the raw values (band types and other words by a stable number)."""

    kind = "plan"

    def refuses(self, key: str) -> str | None:
        return None

    def missing_fx(self, key: str) -> str | None:
        return None

    def to_raw(self, key: str, value: Any, before_raw: float | None) -> float:
        if isinstance(value, str):
            code = m.REAEQ_BAND_TYPE.get(value)
            return float(code) if code is not None else float(zlib.crc32(value.encode("utf-8")))
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    def to_plan(self, key: str, raw: float, before_raw: float | None) -> Any:
        return raw

    def same(self, key: str, a: float, b: float) -> bool:
        return abs(a - b) <= 1e-9


class PlanTarget:
    """No DAW (see the module docstring).

    Parameters
    ----------
    state_dir : Path or None
        Where ``applied-plan.json`` and ``plan-tags.json`` go (the state folder); ``None`` keeps
        everything in memory (``mixbridge plan``).
    """

    kind = "plan"
    capabilities = PlanCapabilities()

    def __init__(self, state_dir: Path | None = None):
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._tags: dict[str, TrackTag] = {}
        self._pass = 0
        self._ab = "B"
        self._applied: dict[str, Any] | None = None
        self._load()

    # --- persistence ------------------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_dir is None:
            return
        from ..statefiles import load_json  # noqa: PLC0415 - validated; a bad file is moved aside

        def parse(data):
            tags = {name: TrackTag.from_ext(t.get("provenance", ""), str(t.get("pass", "")),
                                            t.get("plan", ""), json.dumps(t.get("state") or {}))
                    for name, t in (data.get("tracks") or {}).items()}
            return int(data.get("pass", 0) or 0), "A" if data.get("ab") == "A" else "B", tags

        loaded = load_json(self.state_dir / PLAN_TAGS_NAME, parse)
        if loaded is not None:
            self._pass, self._ab, self._tags = loaded

    def _save(self) -> None:
        if self.state_dir is None:
            return
        tags = {"schema": "mixbridge-plan-tags", "pass": self._pass, "ab": self._ab,
                "tracks": {name: {"provenance": t.provenance, "pass": t.pass_number, "plan": t.plan_id,
                                  "state": json.loads(t.state_json())}
                           for name, t in sorted(self._tags.items())}}
        write_atomic(self.state_dir / PLAN_TAGS_NAME, json.dumps(tags, indent=1, sort_keys=True))
        if self._applied is not None:
            write_atomic(self.state_dir / APPLIED_PLAN_NAME, json.dumps(self._applied, indent=1, sort_keys=True))
        else:
            (self.state_dir / APPLIED_PLAN_NAME).unlink(missing_ok=True)

    # --- the Target protocol ------------------------------------------------------------------------

    def apply(self, plan: dict, reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport:
        started = time.perf_counter()
        number = self._pass + 1
        writes: list[Write] = []
        unchanged: list[tuple[str, str]] = []
        provenance: dict[str, str] = {}
        touched = 0
        for tp in plan.get("tracks", []):
            name = tp.get("name", "")
            tag = self._tags.get(name, TrackTag())
            readings = {k: tag.written[k].raw for k in keys_to_read(tp, tag) if k in tag.written}
            decision = reconcile_track(name, tp, tag, readings, self.capabilities, reenable)
            writes += decision.writes
            if decision.points is not None:
                writes.append(Write(name, AUTOMATION_KEY, len(decision.points) or None, None))
            unchanged += [(name, k) for k in decision.unchanged]
            touched += decision.touched
            self._tags[name] = decision.finish(pass_number=number, plan_id=plan.get("id", ""))
            provenance[name] = self._tags[name].provenance
        if touched:
            self._pass = number
        self._applied = plan
        self._save()
        return ApplyReport(self.kind, self._pass, f"MixBridge: AI pass {self._pass} — {touched} tracks" if touched else "",
                           tuple(writes), unchanged=tuple(unchanged), provenance=provenance,
                           seconds=time.perf_counter() - started)

    def revert(self, only_track: str | None = None) -> ApplyReport:
        writes: list[Write] = []
        for name, tag in sorted(self._tags.items()):
            if only_track is not None and name != only_track:
                continue
            writes += [Write(name, key, None, w.before_raw, w.raw, w.unit) for key, w in sorted(tag.written.items())]
            if tag.points:
                writes.append(Write(name, AUTOMATION_KEY, None, None))
            self._tags[name] = TrackTag(overrides=tag.overrides)
            self._tags[name].provenance = self._tags[name].derive_provenance()
        if only_track is None:
            self._applied = None
            self._ab = "B"
        self._save()
        undo = ("MixBridge: revert AI" + (f" on {only_track}" if only_track else " pass")) if writes else ""
        return ApplyReport(self.kind, self._pass, undo, tuple(writes),
                           provenance={n: t.provenance for n, t in self._tags.items()})

    def ab_toggle(self, delta_lu: float) -> dict:
        self._ab = "A" if self._ab == "B" else "B"
        self._save()
        return {"state": self._ab, "compensation_db": round(delta_lu if self._ab == "A" else 0.0, 2)}

    def provenance(self) -> dict[str, str]:
        return {name: tag.provenance for name, tag in self._tags.items()}

    def applied_plan(self) -> dict[str, Any] | None:
        """The last plan document applied (``None`` after a full revert)."""
        return self._applied

    def close(self) -> None:
        pass
