"""What every DAW target offers, the DAW-less plan target, and :func:`make_target`.

A *target* is where an accepted plan lands: REAPER over reapy (``reaper``), REAPER's own OSC
surface (``osc``, :mod:`bridge.daw.osc_target`) or nothing but files (``plan``).  All of them share
the semantics of :meth:`ReaperTarget.apply <bridge.daw.reapy_target.ReaperTarget.apply>`:

- ``apply(plan)`` is idempotent and *cumulative*: a key the target wrote before that is absent from
  the new plan goes back to its pre-AI value, so the plan passed in always holds everything that
  should be in place;
- provenance (``ai`` / ``manual`` / ``hybrid``) is kept per track with :class:`~.tagging.TrackTag`.

:func:`make_target` never fails because REAPER is down: the DAW targets connect on first use and
reconnect after a failure; a call made while REAPER is down raises
:class:`~bridge.errors.DawUnavailable` so the caller can queue and retry.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from ..errors import DawTimeout, DawUnavailable
from .tagging import AI, MANUAL, TrackTag, Written

TARGET_KINDS = ("reaper", "osc", "plan")
APPLIED_PLAN_NAME = "applied-plan.json"
PLAN_TAGS_NAME = "plan-tags.json"


@dataclass
class PassReport:
    """What one pass did, for the console and the notes."""

    pass_number: int = 0
    undo_name: str = ""
    writes: list[dict[str, Any]] = field(default_factory=list)
    skipped_same: int = 0
    overrides: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    missing_tracks: list[str] = field(default_factory=list)
    verified: int = 0
    unverifiable: int = 0
    round_trips: int = 0
    seconds: float = 0.0
    rolled_back: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@runtime_checkable
class Target(Protocol):
    """A place a plan is written to; see the module docstring for the shared semantics."""

    kind: str

    def apply(self, plan: dict, reenable: set[str] | None = None) -> PassReport: ...

    def revert(self, only_track: str | None = None) -> PassReport: ...

    def ab_toggle(self, delta_lu: float) -> dict: ...

    def provenance(self) -> dict[str, str]: ...

    def close(self) -> None: ...


def plan_keys(track_plan: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """One track's plan changes as ``{key: (value, unit)}`` with the keys of :mod:`.tagging`."""
    out: dict[str, tuple[Any, str]] = {}
    for c in track_plan.get("changes", []):
        if c.get("target") == "track" and c.get("param") == "polarity":
            channel = c.get("channel", "both")
            out["track.polarity" if channel == "both" else f"polarity.{channel}"] = (c.get("value"), "flag")
        else:
            out[f"{c.get('target')}.{c.get('param')}"] = (c.get("value"), c.get("unit", ""))
    return out


class PlanTarget:
    """No DAW: "applying" records the plan and the tags in files, with the same semantics.

    Parameters
    ----------
    state_dir : Path or None
        Where ``applied-plan.json`` and ``plan-tags.json`` go (normally ``<stems>/.mixbridge/``);
        ``None`` keeps everything in memory.

    Notes
    -----
    Everything it "writes" is ``ai``; there is no producer to override anything, so ``hybrid``
    never appears.  A key is "written" when its value differs from the last applied one; a key that
    disappears from the plan is reported as restored.
    """

    kind = "plan"

    def __init__(self, state_dir: Path | None = None):
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._lock = threading.Lock()
        self._tags: dict[str, TrackTag] = {}
        self._pass = 0
        self._ab = "B"
        self._applied: dict[str, Any] | None = None
        self._load()

    # --- persistence ------------------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / PLAN_TAGS_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self._pass = int(data.get("pass", 0) or 0)
        self._ab = "A" if data.get("ab") == "A" else "B"
        for name, t in (data.get("tracks") or {}).items():
            self._tags[name] = TrackTag.from_ext(t.get("provenance", ""), str(t.get("pass", "")),
                                                 t.get("plan", ""), json.dumps(t.get("state") or {}))

    def _save(self) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tags = {"schema": "mixbridge-plan-tags", "pass": self._pass, "ab": self._ab,
                "tracks": {name: {"provenance": t.provenance, "pass": t.pass_number, "plan": t.plan_id,
                                  "state": json.loads(t.state_json())}
                           for name, t in sorted(self._tags.items())}}
        _write_atomic(self.state_dir / PLAN_TAGS_NAME, json.dumps(tags, indent=1, sort_keys=True))
        if self._applied is not None:
            _write_atomic(self.state_dir / APPLIED_PLAN_NAME, json.dumps(self._applied, indent=1, sort_keys=True))
        else:
            (self.state_dir / APPLIED_PLAN_NAME).unlink(missing_ok=True)

    # --- the Target protocol ------------------------------------------------------------------------

    def apply(self, plan: dict, reenable: set[str] | None = None) -> PassReport:
        with self._lock:
            report = PassReport(pass_number=self._pass + 1)
            touched = 0
            for tp in plan.get("tracks", []):
                name = tp.get("name", "")
                tag = self._tags.get(name, TrackTag())
                wanted = {} if tp.get("status") == "manual" else plan_keys(tp)
                changed = False
                for key, (value, unit) in sorted(wanted.items()):
                    old = tag.written.get(key)
                    if old is not None and old.value == value:
                        report.skipped_same += 1
                        continue
                    tag.written[key] = Written(value, _as_raw(value), 0.0, unit)
                    report.writes.append({"track": name, "param": key, "value": value})
                    changed = True
                for key in sorted(set(tag.written) - set(wanted)):
                    del tag.written[key]
                    report.writes.append({"track": name, "param": key, "value": None, "restored": True})
                    changed = True
                points = [list(map(float, p)) for a in tp.get("automation", []) for p in a.get("points", [])]
                if points != tag.points:
                    tag.points = points
                    report.writes.append({"track": name, "param": "automation.volume_db", "points": len(points)})
                    changed = True
                if changed:
                    touched += 1
                    tag.pass_number = report.pass_number
                    tag.plan_id = plan.get("id", "")
                tag.provenance = AI if (tag.written or tag.points) else MANUAL
                self._tags[name] = tag
            if touched:
                self._pass = report.pass_number
                report.undo_name = f"MixBridge: AI pass {self._pass} — {touched} tracks"
            else:
                report.pass_number = self._pass
            self._applied = plan
            self._save()
            return report

    def revert(self, only_track: str | None = None) -> PassReport:
        with self._lock:
            report = PassReport(pass_number=self._pass)
            for name, tag in sorted(self._tags.items()):
                if only_track is not None and name != only_track:
                    continue
                for key in sorted(tag.written):
                    report.writes.append({"track": name, "param": key, "restored": True})
                if tag.points:
                    report.writes.append({"track": name, "param": "automation.volume_db", "restored": True})
                self._tags[name] = TrackTag(provenance=MANUAL)
            if report.writes:
                report.undo_name = "MixBridge: revert AI" + (f" on {only_track}" if only_track else " pass")
            if only_track is None:
                self._applied = None
                self._ab = "B"
            self._save()
            return report

    def ab_toggle(self, delta_lu: float) -> dict:
        with self._lock:
            self._ab = "A" if self._ab == "B" else "B"
            self._save()
            return {"state": self._ab, "compensation_db": round(delta_lu if self._ab == "A" else 0.0, 2)}

    def provenance(self) -> dict[str, str]:
        with self._lock:
            return {name: tag.provenance for name, tag in self._tags.items()}

    def applied_plan(self) -> dict[str, Any] | None:
        """The last plan document applied (``None`` after a full revert)."""
        with self._lock:
            return self._applied

    def close(self) -> None:
        pass


def _as_raw(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class LazyReaperTarget:
    """:class:`~.reapy_target.ReaperTarget` that connects on first use and reconnects after a failure.

    Creating it never touches the network.  Every call that finds no live connection tries to
    connect; if REAPER is down the call raises :class:`~bridge.errors.DawUnavailable` and the
    next call tries again.
    """

    kind = "reaper"

    def __init__(self, host: str = "127.0.0.1", web_port: int = 2307, timeout_s: float = 5.0):
        self.host = host
        self.web_port = web_port
        self.timeout_s = timeout_s
        self._inner: Any = None
        self._lock = threading.Lock()

    def _target(self) -> Any:
        if self._inner is not None and not self._inner.conn.dead:
            return self._inner
        from .reapy_conn import ReapyConnection  # noqa: PLC0415 - reapy loads only when needed
        from .reapy_target import ReaperTarget  # noqa: PLC0415

        if self._inner is not None:
            self._inner.conn.close()
            self._inner = None
        self._inner = ReaperTarget(ReapyConnection(self.host, self.web_port, self.timeout_s).connect())
        return self._inner

    def _run(self, call: Callable[[Any], Any]) -> Any:
        with self._lock:
            try:
                return call(self._target())
            except (DawUnavailable, DawTimeout):
                # Drop the connection: the next call reconnects from scratch.
                if self._inner is not None:
                    self._inner.conn.dead = True
                raise

    def apply(self, plan: dict, reenable: set[str] | None = None) -> PassReport:
        return self._run(lambda t: t.apply(plan, reenable=reenable))

    def revert(self, only_track: str | None = None) -> PassReport:
        return self._run(lambda t: t.revert(only_track))

    def ab_toggle(self, delta_lu: float) -> dict:
        return self._run(lambda t: t.ab_toggle(delta_lu))

    def provenance(self) -> dict[str, str]:
        return self._run(lambda t: t.provenance())

    def close(self) -> None:
        with self._lock:
            if self._inner is not None:
                self._inner.conn.close()
                self._inner = None


def make_target(kind: str, *, host: str = "127.0.0.1", web_port: int = 2307, osc_port: int = 8000,
                osc_listen: int = 9000, timeout_s: float = 5.0, state_dir: Path | None = None) -> Target:
    """The target named ``kind`` (``reaper``, ``osc`` or ``plan``); never connects here.

    Raises
    ------
    ValueError
        ``kind`` is not one of :data:`TARGET_KINDS`.
    """
    if kind == "reaper":
        return LazyReaperTarget(host, web_port, timeout_s)
    if kind == "plan":
        return PlanTarget(state_dir)
    if kind == "osc":
        from .osc_target import OscTarget  # noqa: PLC0415 - pythonosc loads only when needed

        kwargs: dict[str, Any] = {"host": host, "port": osc_port, "listen_port": osc_listen, "timeout_s": timeout_s}
        if state_dir is not None:
            kwargs["state_path"] = Path(state_dir) / "osc-state.json"
        return OscTarget(**kwargs)
    raise ValueError(f"unknown target {kind!r} (one of {', '.join(TARGET_KINDS)})")
