"""Fault-schedule soak of the reapy target against the simulator (issue 11, "fault-schedule soak").

One *schedule* is: a starting session (fresh, applied, on A, with the producer's edits), one
bridge operation (apply, a changed apply, revert, A/B), one fault armed at a chosen RPR call of
that operation (a dropped connection, a stall past the budget, a late answer, reapy's server
dying, REAPER dying), the producer's edits while the bridge is away, sometimes a second fault
during the recovery, and the recovery (the next connection).  After it the session must be

- fully applied (the operation's clean result) or untouched (as before), compared field by
  field with both, the producer's edits left out of the comparison and checked on their own;
- undo-balanced (no open undo block), PreventUIRefresh-balanced (count 0), no journal left;
- with every edit of the producer intact (before the operation and while the bridge was away).

Everything is seeded (``random.Random(seed)``): the same seed gives the same schedules.  Manual
edits cannot land *inside* a pass: during a HOLD REAPER's main thread runs reapy's loop, so
neither its UI nor the simulator's control channel can change anything until it ends.  They land
between the fault and the next connection, which is where a producer works while the bridge is
away.  A REAPER that dies loses its unsaved project: for ``die`` the checks are a clean error
within the time bound and a working pass after the restart.

Used by ``tests/test_fault_soak.py`` (a bounded subset in the default run, 200 behind ``-m soak``)
and ``benchmarks/soak_faults.py`` (the figures).
"""
from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bridge.daw.reapy_conn import ReapyConnection
from bridge.daw.reapy_target import ReaperTarget
from bridge.errors import BridgeError, DawError
from tests.reaper_sim.fixtures import REPO_ROOT, RunningSim, running_sim

ACTIVATION = REPO_ROOT / "reaper_scripts" / "MixBridge_Start_bridge_server.py"
#: The faulted operation's call deadline (its budget is 3x): small, so stalls past it are quick.
FAULT_TIMEOUT_S = 0.2
#: Deadline for everything that is not the fault under test (setup, references, recovery).
CALM_TIMEOUT_S = 5.0
#: How long one schedule may take at most (the bound of every wait in it).
SCHEDULE_LIMIT_S = 20.0
FAULTS = ("drop", "stall_past", "stall_late", "kill_server", "die")
#: Relative frequency of each fault in a soak (REAPER dying needs a restart: rarer).
FAULT_WEIGHTS = {"drop": 30, "stall_past": 20, "stall_late": 15, "kill_server": 25, "die": 10}

PROJECT = {"tracks": [
    {"name": "Keys", "guid": "{4B3C0E7A-0000-4000-8000-000000000001}"},
    {"name": "Guitar", "guid": "{4B3C0E7A-0000-4000-8000-000000000002}"},
    {"name": "Lead_Vocal", "guid": "{4B3C0E7A-0000-4000-8000-000000000003}"},
    {"name": "Bass", "guid": "{4B3C0E7A-0000-4000-8000-000000000004}"},
]}


def _change(target, param, value, unit=""):
    return {"target": target, "param": param, "value": value, "unit": unit, "reason": "soak"}


PLAN = {
    "schema_version": 1, "id": "soakplan00000001", "analysis_id": "a", "mix": {"findings": []},
    "tracks": [
        {"name": "Keys", "status": "ai", "findings": [], "automation": [], "changes": [
            _change("track", "volume_db", -6.0, "dB"), _change("eq", "band1_type", "highpass"),
            _change("eq", "band1_freq_hz", 100.0, "Hz"), _change("eq", "band2_freq_hz", 400.0, "Hz"),
            _change("eq", "band2_gain_db", -3.0, "dB"), _change("eq", "band2_q", 1.4),
            _change("comp", "threshold_db", -20.0, "dB"), _change("comp", "ratio", 2.0, ":1")]},
        {"name": "Guitar", "status": "ai", "findings": [], "automation": [], "changes": [
            {**_change("track", "polarity", 1, "flag"), "channel": "right"}, _change("track", "width", 0.5)]},
        {"name": "Lead_Vocal", "status": "ai", "findings": [], "changes": [_change("track", "pan", 0.1)],
         "automation": [{"param": "volume_db", "reason": "section_level",
                         "points": [[11.95, 0.0], [12.05, 6.0], [19.95, 6.0], [20.05, 0.0]]}]},
        {"name": "Bass", "status": "untouched", "findings": [], "changes": [], "automation": []},
    ],
}


def _changed_plan() -> dict[str, Any]:
    """A second pass: other values, a band type and a compressor setting dropped, new points."""
    plan = copy.deepcopy(PLAN)
    plan["id"] = "soakplan00000002"
    keys = plan["tracks"][0]
    keys["changes"] = [c for c in keys["changes"] if c["param"] != "ratio"]
    for c in keys["changes"]:
        if c["param"] == "volume_db":
            c["value"] = -4.0
        if c["param"] == "band2_gain_db":
            c["value"] = -5.0
    plan["tracks"][1]["changes"].append(_change("track", "pan", -0.2))
    plan["tracks"][2]["automation"][0]["points"] = [[11.95, 0.0], [12.05, 3.0], [19.95, 3.0], [20.05, 0.0]]
    plan["tracks"][3] = {"name": "Bass", "status": "ai", "findings": [], "automation": [],
                         "changes": [_change("comp", "threshold_db", -18.0, "dB")]}
    return plan


PLAN2 = _changed_plan()
#: Operations by name: what the bridge does in the faulted call.
OPERATIONS = ("apply", "apply2", "revert", "ab")
#: Starting sessions and the operations that make sense on each.
SETUPS = {
    "fresh": ("apply", "apply2"),
    "applied": ("apply2", "revert", "ab"),
    "on_a": ("apply2", "revert", "ab"),
    "edited": ("apply2", "revert", "ab"),
    "edited_on_a": ("apply2", "ab"),
}
DELTA_LU = -2.5


# --- the producer's edits ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Edit:
    """One edit by hand.  ``kind``: ``track`` (``key`` of ``track`` set to ``value``), ``fx``
    (parameter ``index`` of the FX renamed ``fx`` to normalized ``value``), ``point`` (the volume
    point at ``time_s`` to stored ``value``)."""

    kind: str
    track: str
    key: str = ""
    value: float = 0.0
    fx: str = ""
    index: int = -1
    time_s: float = 0.0

    def make(self, sim: RunningSim, state: dict[str, Any]) -> bool:
        """Make it; False when there is nothing to edit in ``state`` (no such FX or point)."""
        track = _track(state, self.track)
        if self.kind == "track":
            sim.control.set_track(self.track, self.key, self.value)
        elif self.kind == "fx":
            if _fx(track, self.fx) is None:
                return False
            sim.control.set_fx_param(self.track, self.fx, self.index, normalized=self.value)
        else:
            points = _points(track)
            index = next((i for i, (t, _) in enumerate(points) if abs(t - self.time_s) < 1e-9), None)
            if index is None:
                return False
            sim.control.edit_envelope_point(self.track, index, value=self.value)
        return True

    def intact(self, state: dict[str, Any]) -> str | None:
        """None when ``state`` still shows the edit, else what is wrong."""
        track = _track(state, self.track)
        if self.kind == "track":
            shown = track[{"D_VOL": "vol", "D_WIDTH": "width", "D_PAN": "pan"}[self.key]]
        elif self.kind == "fx":
            fx = _fx(track, self.fx)
            shown = None if fx is None else fx["params"][self.index]["normalized"]
        else:
            shown = next((v for t, v in _points(track) if abs(t - self.time_s) < 1e-9), None)
        if shown is None or not math.isclose(shown, self.value, rel_tol=1e-6, abs_tol=1e-9):
            return f"{self} shows {shown}"
        return None

    def mask(self, state: dict[str, Any]) -> None:
        """Leave the edited field out of a state for the comparison (in place)."""
        track = _track(state, self.track)
        if self.kind == "track":
            track.pop({"D_VOL": "vol", "D_WIDTH": "width", "D_PAN": "pan"}[self.key], None)
            track.pop("vol_db", None)
        elif self.kind == "fx":
            track["fx"] = [f for f in track["fx"] if not _is(f, self.fx)]
        else:
            for env in track["envelopes"]:
                env["points"] = [p for p in env["points"] if abs(p["time"] - self.time_s) >= 1e-9]
            # the producer's point keeps its envelope shown: without it, an empty envelope is none
            track["envelopes"] = [e for e in track["envelopes"] if e["points"]]


def _edits_by_hand(rng: random.Random, count: int) -> tuple[Edit, ...]:
    """Random edits of what the bridge writes (a fader, a width, an AI EQ gain, an AI point)."""
    menu = [
        lambda: Edit("track", rng.choice(["Keys", "Guitar", "Lead_Vocal"]), "D_VOL", round(rng.uniform(0.1, 0.4), 6)),
        lambda: Edit("track", "Guitar", "D_WIDTH", round(rng.uniform(-0.9, -0.1), 6)),
        lambda: Edit("fx", "Keys", fx="AI EQ (MixBridge)", index=4, value=round(rng.uniform(0.05, 0.3), 6)),
        lambda: Edit("point", "Lead_Vocal", time_s=rng.choice([12.05, 19.95]), value=round(rng.uniform(300, 600), 3)),
    ]
    return tuple(rng.choice(menu)() for _ in range(count))


#: The producer's edits in the ``edited`` setups (made before the faulted operation).
SETUP_EDITS = {
    "edited": (Edit("track", "Keys", "D_VOL", 0.3), Edit("point", "Lead_Vocal", time_s=12.05, value=512.0)),
    "edited_on_a": (Edit("track", "Guitar", "D_WIDTH", -0.4),),
}


# --- states ----------------------------------------------------------------------------------------------------

def _track(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in state["tracks"] if t["name"] == name)


def _fx(track: dict[str, Any], renamed: str) -> dict[str, Any] | None:
    return next((f for f in track["fx"] if _is(f, renamed)), None)


def _is(fx: dict[str, Any], renamed: str) -> bool:
    """The AI FX, or the one a rollback left to the producer under its plug-in's own name."""
    return fx.get("renamed") == renamed or (not fx.get("renamed") and "ReaEQ" in fx["name"] and "EQ" in renamed)


def _points(track: dict[str, Any]) -> list[tuple[float, float]]:
    return [(p["time"], p["value"]) for e in track["envelopes"] if e["chunk"] == "<VOLENV2" for p in e["points"]]


def _strip(value: Any, top: bool = True) -> Any:
    """No pointers; no GUIDs below the tracks (an FX added again gets a new one)."""
    if isinstance(value, dict):
        return {k: _strip(v, False) for k, v in value.items()
                if k != "address" and not (k == "guid" and not top)}
    if isinstance(value, list):
        return [_strip(v, top) for v in value]
    return value


def session_of(state: dict[str, Any], edits: tuple[Edit, ...] = ()) -> dict[str, Any]:
    """What "the session" is for the comparison: tracks, master, project ext state; no pointers,
    no undo history, an empty hidden envelope the same as none, the producer's edits left out."""
    out = {"tracks": [_strip(t) for t in state["tracks"]], "master": _strip(state["master"]),
           # an ext-state section without keys is no section (REAPER deletes a key set to "")
           "proj_ext": {k: v for k, v in state["proj_ext"].items() if v}}
    for track in out["tracks"]:
        track["envelopes"] = [e for e in track["envelopes"] if e["visible"] or e["points"]]
    for edit in edits:
        edit.mask(out)
    return out


def differences(a: dict[str, Any], b: dict[str, Any], path: str = "") -> list[str]:
    """Where two JSON values differ (paths), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: {'missing' if k not in a else a[k]!r} vs {'missing' if k not in b else b[k]!r}")
            else:
                out += differences(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


# --- schedules ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    index: int
    seed: int
    setup: str
    op: str
    fault: str
    #: 1-based RPR call of the operation the fault fires before (may be past its last call).
    at_call: int
    edits: tuple[Edit, ...]
    #: A dropped connection at this RPR call of the first recovery (0: none).
    recovery_drop_at: int = 0

    def describe(self) -> str:
        return (f"#{self.index} seed {self.seed}: {self.setup} → {self.op}, {self.fault} at call {self.at_call}"
                f", {len(self.edits)} edits" + (f", drop at recovery call {self.recovery_drop_at}"
                                               if self.recovery_drop_at else ""))


def schedules(seed: int, count: int, calls: dict[tuple[str, str], int]) -> list[Schedule]:
    """``count`` schedules from ``seed``; ``calls[(setup, op)]`` is the operation's clean call count.

    Fault positions are stratified over each operation's calls (so every part of a pass is hit,
    the first calls and the last two included) and jittered by the seed.
    """
    rng = random.Random(seed)
    combos = [(s, op) for s, ops in SETUPS.items() for op in ops]
    rng.shuffle(combos)
    kinds = _smooth_round_robin(FAULT_WEIGHTS, count, rng.randrange(len(FAULT_WEIGHTS)))
    per_combo = Counter()
    out = []
    planned = [combos[i % len(combos)] for i in range(count)]
    totals = Counter(planned)
    for i, (setup, op) in enumerate(planned):
        n = calls[(setup, op)]
        slot = per_combo[(setup, op)]
        per_combo[(setup, op)] += 1
        slots = totals[(setup, op)]
        # slot k of `slots` covers calls [1 + k*n/slots, (k+1)*n/slots]; with enough schedules the
        # last two slots are the last two calls exactly (issue 11: a drop there unbalanced the pass)
        low = 1 + slot * n // slots
        at_call = rng.randint(low, max(low, (slot + 1) * n // slots))
        if slots > 3 and slot >= slots - 2:
            at_call = n - (slots - 1 - slot)
        fault = kinds[i]
        edits = _edits_by_hand(rng, rng.choice([0, 1, 1, 2]))
        recovery = rng.randint(1, 40) if fault != "die" and rng.random() < 0.15 else 0
        out.append(Schedule(i, seed, setup, op, fault, at_call, edits, recovery))
    return out


def sweep(setup: str, op: str, fault: str, calls: dict[tuple[str, str], int]) -> list[Schedule]:
    """One schedule per RPR call of the operation: ``fault`` before call 1, 2, ... n (no edits)."""
    return [Schedule(k - 1, 0, setup, op, fault, k, ()) for k in range(1, calls[(setup, op)] + 1)]


def _smooth_round_robin(weights: dict[str, int], count: int, start: int) -> list[str]:
    """``count`` kinds in proportion to ``weights``, evenly spread (every kind within a few
    schedules, so a short run has them all); ``start`` rotates which comes first."""
    names = list(weights)
    names = names[start:] + names[:start]
    total = sum(weights.values())
    current = dict.fromkeys(names, 0)
    out = []
    for _ in range(count):
        for name in names:
            current[name] += weights[name]
        pick = max(names, key=lambda n: current[n])
        current[pick] -= total
        out.append(pick)
    return out


# --- running -------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    schedule: Schedule
    error: str = ""  # the bridge's error code, "" when the operation went through
    message: str = ""
    result: str = ""  # applied | untouched | crashed (die) | not fired
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    recoveries: int = 0


def _connect(sim: RunningSim, timeout_s: float) -> ReaperTarget:
    conn = ReapyConnection("127.0.0.1", sim.web_port, timeout_s)
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    return ReaperTarget(conn)


def _run_op(target: ReaperTarget, op: str) -> Any:
    if op == "apply":
        return target.apply(PLAN)
    if op == "apply2":
        return target.apply(PLAN2)
    if op == "revert":
        return target.revert()
    return target.ab_toggle(DELTA_LU)


class Soak:
    """One simulator (restarted after a ``die``), the setup states and the clean references."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._stack = contextlib.ExitStack()
        self._starts = 0
        self.sim = self._start()
        self.setups: dict[str, dict[str, Any]] = {}
        self.references: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: dict[tuple[str, str], int] = {}
        #: How long each clean operation took (setups, references): the same-run baseline.
        self.clean_seconds: list[float] = []
        self._prepare()

    def _start(self) -> RunningSim:
        self._starts += 1
        cm = running_sim(PROJECT, self.workdir / f"sim{self._starts}",
                         extra_args=("--activation-script", str(ACTIVATION)), state_out=False)
        sim = cm.__enter__()
        self._stack = contextlib.ExitStack()
        self._stack.push(cm.__exit__)
        return sim

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "Soak":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- setups and references ---------------------------------------------------------------------

    def _calm(self, op: str) -> None:
        target = _connect(self.sim, CALM_TIMEOUT_S)
        started = time.monotonic()
        try:
            _run_op(target, op)
        finally:
            target.close()
        self.clean_seconds.append(time.monotonic() - started)

    def _load(self, state: dict[str, Any]) -> None:
        self.sim.control.load({k: state[k] for k in ("tracks", "master", "proj_ext")})

    def _prepare(self) -> None:
        self.sim.control.load(PROJECT)
        self.setups["fresh"] = self.sim.control.dump()
        self._calm("apply")
        self.setups["applied"] = self.sim.control.dump()
        self._calm("ab")
        self.setups["on_a"] = self.sim.control.dump()
        for name, base in (("edited", "applied"), ("edited_on_a", "on_a")):
            self._load(self.setups[base])
            state = self.sim.control.dump()
            for edit in SETUP_EDITS[name]:
                assert edit.make(self.sim, state), edit
            self.setups[name] = self.sim.control.dump()
        for setup, ops in SETUPS.items():
            for op in ops:
                self._load(self.setups[setup])
                self.sim.control.calls(reset=True)
                self._calm(op)
                used = self.sim.control.calls(reset=True)["counts"]
                self.calls[(setup, op)] = sum(used.values()) - 1  # GetAppVersion, before the HOLD
                after = self.sim.control.dump()
                for edit in SETUP_EDITS.get(setup, ()):
                    assert edit.intact(after) is None, f"clean {op} on {setup}: {edit.intact(after)}"
                self.references[(setup, op)] = after

    # --- one schedule -------------------------------------------------------------------------------------

    def run(self, s: Schedule) -> Outcome:
        started = time.monotonic()
        out = Outcome(s)
        try:
            self._run(s, out)
        except AssertionError as exc:
            out.problems.append(str(exc))
        out.seconds = time.monotonic() - started
        if out.seconds > SCHEDULE_LIMIT_S:
            out.problems.append(f"took {out.seconds:.1f} s (limit {SCHEDULE_LIMIT_S:g} s)")
        return out

    def _run(self, s: Schedule, out: Outcome) -> None:
        sim = self.sim
        before = self.setups[s.setup]
        self._load(before)
        target = _connect(sim, FAULT_TIMEOUT_S)
        fault = {"stall_past": "stall", "stall_late": "stall"}.get(s.fault, s.fault)
        seconds = {"stall_past": 60.0, "stall_late": FAULT_TIMEOUT_S * 2}.get(s.fault)
        sim.control.calls(reset=True)
        sim.control.arm(fault, at_call=s.at_call + 1, seconds=seconds)  # +1: held()'s GetAppVersion
        op_started = time.monotonic()
        try:
            _run_op(target, s.op)
        except BridgeError as exc:
            out.error = exc.code
            out.message = exc.line()
            if not isinstance(exc, DawError):
                out.problems.append(f"{s.op} failed with {exc.code}, not a REAPER error: {exc}")
        except Exception as exc:  # noqa: BLE001 - what the soak is for: report, never a traceback
            out.problems.append(f"{s.op} raised {type(exc).__name__}: {exc}")
        finally:
            target.close()
        budget = 3 * FAULT_TIMEOUT_S
        if time.monotonic() - op_started > budget * 3 + 2 * CALM_TIMEOUT_S:
            out.problems.append(f"{s.op} took {time.monotonic() - op_started:.1f} s under a {s.fault}")
        if s.fault == "die":
            self._after_death(s, out)
            return
        sim.control.disarm()
        sim.control.release()  # the producer closes the dialog (a stall past the budget ends)
        state = sim.control.dump()
        made = tuple(e for e in s.edits if e.make(sim, state))  # while the bridge is away
        out.recoveries = self._recover(s)
        after = sim.control.dump()
        self._check(s, out, after, made)

    def _server_alive(self) -> bool:
        return bool(self.sim.control.reapy_state()["loop_running"])

    def _recover(self, s: Schedule) -> int:
        """The next connection finishes what the pass left (with the producer restarting reapy's
        server when it died); a drop at ``recovery_drop_at`` cuts the first recovery off."""
        attempts = 0
        deadline = time.monotonic() + SCHEDULE_LIMIT_S
        drop_at = s.recovery_drop_at
        while True:
            attempts += 1
            if not self._server_alive():
                self.sim.control.activate()  # 'MixBridge: Start bridge server'
            try:
                target = _connect(self.sim, CALM_TIMEOUT_S)
            except DawError:
                assert time.monotonic() < deadline, "REAPER never came back for the recovery"
                continue
            if drop_at:
                self.sim.control.arm("drop", at_call=drop_at)
            try:
                target.provenance()  # recovers first
                self.sim.control.disarm()
                return attempts
            except DawError:
                drop_at = 0
                assert time.monotonic() < deadline, "the recovery never finished"
            finally:
                target.close()

    def _check(self, s: Schedule, out: Outcome, after: dict[str, Any], made: tuple[Edit, ...]) -> None:
        problems = out.problems
        if after["undo"]["open_block_depth"] != 0:
            problems.append(f"undo block left open (depth {after['undo']['open_block_depth']})")
        if after["ui_refresh_prevent_count"] != 0:
            problems.append(f"PreventUIRefresh count {after['ui_refresh_prevent_count']}")
        if "pending" in after["proj_ext"].get("mixbridge", {}):
            problems.append("the journal is still in the project")
        for edit in _last_per_field(SETUP_EDITS.get(s.setup, ()) + made):
            why = edit.intact(after)
            if why is not None:
                problems.append(f"a producer's edit was overwritten: {why}")
        actual = session_of(after, made)
        untouched = differences(actual, session_of(self.setups[s.setup], made))
        applied = differences(actual, session_of(self.references[(s.setup, s.op)], made))
        if not untouched:
            out.result = "untouched"
        elif not applied:
            out.result = "applied"
        else:
            problems.append("neither untouched nor fully applied: vs before " + "; ".join(untouched[:4])
                            + " | vs applied " + "; ".join(applied[:4]))

    def _died(self) -> bool:
        """Whether the ``die`` fault fired (then the process is gone, or going within moments)."""
        try:
            if self.sim.control.dump()["armed_faults"]:
                return False  # the operation made fewer calls than the fault waited for
        except OSError:
            pass
        self.sim.process.wait(timeout=5.0)
        return True

    def _after_death(self, s: Schedule, out: Outcome) -> None:
        """REAPER crashed: its unsaved state is gone.  The bridge said so cleanly (checked above);
        a restarted REAPER with the saved project takes a pass."""
        died = self._died()
        out.result = "crashed" if died else "not fired"
        if died:
            if not out.error:
                out.problems.append("REAPER died mid-pass and the bridge reported nothing")
            self._stack.close()
            self.sim = self._start()
            self._load(self.setups[s.setup])
            try:
                self._calm(s.op)
            except DawError as exc:
                out.problems.append(f"after a restart the pass failed: {exc}")
            return
        self.sim.control.disarm()
        out.recoveries = self._recover(s)
        self._check(s, out, self.sim.control.dump(), ())


def _last_per_field(edits: tuple[Edit, ...]) -> list[Edit]:
    """The edit that counts for each field (a later edit of the same field replaces an earlier one)."""
    last = {(e.kind, e.track, e.key, e.fx, e.index, e.time_s): e for e in edits}
    return list(last.values())


@dataclass
class Figures:
    outcomes: list[Outcome]
    seconds: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.problems]

    def summary(self) -> str:
        results = Counter(o.result or "failed" for o in self.outcomes)
        faults = Counter(o.schedule.fault for o in self.outcomes)
        errors = Counter(o.error or "none" for o in self.outcomes)
        ops = Counter(o.schedule.op for o in self.outcomes)
        slowest = max((o.seconds for o in self.outcomes), default=0.0)
        lines = [
            f"{len(self.outcomes)} schedules in {self.seconds:.1f} s "
            f"({self.seconds / max(1, len(self.outcomes)):.2f} s each, slowest {slowest:.2f} s); "
            f"{len(self.failed)} failed",
            "results: " + ", ".join(f"{k} {v}" for k, v in sorted(results.items())),
            "faults: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())),
            "operations: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())),
            "bridge errors: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())),
            f"producer edits while the bridge was away: {sum(len(o.schedule.edits) for o in self.outcomes)}; "
            f"second faults during recovery: {sum(bool(o.schedule.recovery_drop_at) for o in self.outcomes)}",
        ]
        for o in self.failed[:10]:
            lines.append(f"FAILED {o.schedule.describe()}: {'; '.join(o.problems)[:600]}")
        return "\n".join(lines)


def soak(workdir: Path, seed: int, count: int) -> Figures:
    started = time.monotonic()
    with Soak(workdir) as runner:
        outcomes = [runner.run(s) for s in schedules(seed, count, runner.calls)]
    return Figures(outcomes, time.monotonic() - started)


def iter_soak(workdir: Path, seed: int, count: int) -> Iterator[Outcome]:
    with Soak(workdir) as runner:
        for s in schedules(seed, count, runner.calls):
            yield runner.run(s)
