"""Write a MixPlan into REAPER through reapy: one pass, one undo point, all or nothing.

A transport: it reads the session (track values, the AI FX's parameters, the volume envelope, the
``P_EXT`` tags, the A/B state), asks :mod:`bridge.daw.reconcile` what to write, and writes exactly
that.

The bridge never touches the session's own FX.  Its EQ and compressor moves go on stock ReaEQ and
ReaComp instances it adds and renames ("AI EQ (MixBridge)", "AI Comp (MixBridge)") and reuses on
later passes.  Track volume, pan, width and polarity are set natively; section automation becomes
points on the track's volume envelope.  Every parameter is found by its stock layout index and
checked against the names REAPER shows (:func:`bridge.daw.mapping.layout_problem`; ReaEQ's names are
read again after a band-type change), and every value written is read back: track values raw, FX
values as REAPER *displays* them, compared in display units with the bridge's model
(:func:`bridge.daw.mapping.display_expectation`).

All or nothing: the journal in the project
------------------------------------------
Every change is an :class:`Op` recorded in the project (``SetProjExtState("mixbridge", "pending")``)
*before* it is made, so the project itself always knows what a cut-off pass left.  A pass is::

    record(phase begin) → Undo_BeginBlock2 → record(phase open) → per track: record its ops → make them
    → Undo_EndBlock2(name) → clear the record

If REAPER refuses a call, a value does not verify, or REAPER answers a call late (within the
budget), the pass's ops are undone at once on the same connection.  If the connection is gone, the
bridge reconnects once and undoes them from the project's record; when that is impossible too
(REAPER stays away past the budget, or reapy's server in REAPER stopped) it raises
:class:`~bridge.errors.RollbackPending` saying which tracks are fully applied, need rollback or are
untouched, and the next connection (any command: ``apply``, ``revert``, ``ab``, a watcher's retry)
finishes the rollback before anything else (:meth:`ReaperTarget.recover`).  A revert is finished
rather than undone (its deletions cannot be undone and finishing it is what was asked for), an A/B
toggle is undone.  Undoing and finishing are idempotent: each op checks what REAPER shows first, and
leaves a value alone that is neither the old nor the new one (the producer's).

PreventUIRefresh is not used: during a pass REAPER's main thread stays in reapy's hold loop, so the
UI cannot redraw between the bridge's calls anyway, and its count cannot be read back, so a call
whose answer was lost could never be balanced.  The undo block's end is observable: an outermost
``Undo_EndBlock2`` records a point, and :meth:`ReaperTarget._block_open` probes with a nested
block whether a cut-off pass left one open.

Only a lost connection or a timeout is :class:`~bridge.errors.DawUnavailable` / ``DawTimeout``
(which a watcher queues and retries); REAPER answering with an error is ``DawRefused``; anything
else is a bug and surfaces as itself, after the rollback.
"""
from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterable

from ..errors import UNREACHABLE, BridgeError, DawRefused, DawStaleServer, DawVerifyError, RollbackPending, TargetNotFound
from ..settings import Connection
from . import mapping as m
from .base import ApplyReport
from .reapy_conn import RESTART_HINT, ReapyConnection, preflight
from .reconcile import (ABSENT, AUTOMATION_KEY, Override, TrackDecision, Write, ab_master, keys_to_read,
                        reconcile_ab, reconcile_track)
from .tagging import AI_POINTS, PASS, PLAN, PRE_AI, PREFIX, PROVENANCE, STATE, UNTOUCHED, TrackTag

DEFAULTS = Connection()
NULL_SUFFIX = "0x0000000000000000"
EXT_SECTION = "mixbridge"
#: The project's journal of the pass under way (``SetProjExtState(proj, "mixbridge", "pending")``).
PENDING_KEY = "pending"
#: Buffer for reading the journal back (it holds every op of a pass).
PENDING_BUFFER = 1 << 22
#: Tolerance for "is this still the value we wrote" on raw/normalized values.
RAW_TOLERANCE = 1e-4
#: Track-native parameters: plan param -> REAPER track attribute.
TRACK_PARAMS = {"volume_db": "D_VOL", "pan": "D_PAN", "width": "D_WIDTH", "polarity": "B_PHASE"}
AI_FX = {"eq": (m.AI_EQ_NAME, m.REAEQ), "comp": (m.AI_COMP_NAME, m.REACOMP),
         "polarity": (m.AI_POLARITY_NAME, m.POLARITY_JSFX)}
#: Tag keys in the order they are written: ``pre_ai`` and ``ai_points`` last (the bounce script reads them).
TAG_KEYS = (PROVENANCE, PASS, PLAN, STATE, PRE_AI, AI_POINTS)
#: A recovery ends at most this many undo blocks (the pass's, and probes of cut-off recoveries).
MAX_NESTED_BLOCKS = 8
#: Track states in a :class:`~bridge.errors.RollbackPending` message.
APPLIED, ROLLBACK, UNTOUCHED_STATE = "applied", "rollback", "untouched"


@dataclass
class _Track:
    index: int
    ptr: str
    guid: str
    name: str


@dataclass
class Op:
    """One change to REAPER, journalled in the project before it is made (see the module docstring).

    ``kind``: ``value`` (a track attribute ``key``), ``fx_add`` (plug-in ``key`` renamed ``fx`` at
    ``index``), ``param`` (parameter ``index`` of FX ``fx``; plan ``plan_key``/``value`` for the
    display check), ``config`` (named config ``key``), ``fx_enable``, ``fx_delete`` (``old`` holds
    the bridge's parameter values at decision time), ``ext`` (tag ``key``), ``proj_ext``,
    ``select`` (``old``: the selected track GUIDs), ``env_show`` (the volume envelope shown),
    ``env_hide`` (a revert hides the envelope the bridge showed, once it has no points),
    ``points`` (``old``: the bridge's points taken out, ``new``: the points put in, each
    ``[time_s, stored value]``).  ``track`` is a GUID, ``"master"`` or empty.
    """

    kind: str
    track: str = ""
    name: str = ""
    key: str = ""
    fx: str = ""
    index: int = -1
    old: Any = None
    new: Any = None
    plan_key: str = ""
    value: Any = None

    def doc(self) -> dict[str, Any]:
        defaults = {f.name: f.default for f in fields(self)}
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Op":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass
class Journal:
    """The ops of one pass, as recorded in the project."""

    kind: str  # apply | revert | ab
    undo: str
    tracks: dict[str, str] = field(default_factory=dict)  # GUID -> name, in pass order
    ops: list[Op] = field(default_factory=list)
    phase: str = ""  # "" (nothing recorded), begin, open
    close: str = ""  # the name a recovery closes the block with
    recorded: int = 0  # ops in the project's record
    done: int = 0  # ops this process saw completed
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def text(self) -> str:
        return json.dumps({"v": 1, "id": self.id, "kind": self.kind, "undo": self.undo, "phase": self.phase,
                           "close": self.close, "tracks": self.tracks, "ops": [o.doc() for o in self.ops]},
                          separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_text(cls, text: str) -> "Journal | None":
        try:
            doc = json.loads(text)
            journal = cls(doc["kind"], doc.get("undo", ""), dict(doc.get("tracks") or {}),
                          [Op.from_doc(o) for o in doc.get("ops") or []], doc.get("phase", ""),
                          doc.get("close", ""), id=doc.get("id", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        journal.recorded = len(journal.ops)
        return journal

    def states(self) -> dict[str, str]:
        """Track name -> applied / rollback / untouched, from what this process saw done."""
        out = {}
        for guid, name in self.tracks.items():
            mine = [i for i, op in enumerate(self.ops) if op.track == guid]
            if not mine or mine[0] > self.done:
                out[name] = UNTOUCHED_STATE  # not even the first of its ops was under way
            elif mine[-1] < self.done:
                out[name] = APPLIED
            else:
                out[name] = ROLLBACK
        return out


class ReapyCapabilities:
    """The reapy target writes every key the plan uses; raw values are REAPER's."""

    kind = "reaper"

    def refuses(self, key: str) -> str | None:
        if key == AUTOMATION_KEY:
            return None
        target, _, param = key.partition(".")
        if target == "track" and param in TRACK_PARAMS:
            return None
        if target in AI_FX:
            try:
                m.layout_index(target, param) if not (target == "eq" and param.endswith("_type")) else None
            except (KeyError, ValueError, IndexError):
                return f"the reapy target has no REAPER parameter for {key}"
            return None
        return f"the reapy target has no REAPER parameter for {key}"

    def missing_fx(self, key: str) -> str | None:
        return None  # it adds the AI FX

    def to_raw(self, key: str, value: Any, before_raw: float | None) -> float:
        return _to_raw(key, value, before_raw)

    def to_plan(self, key: str, raw: float, before_raw: float | None) -> Any:
        return _human(key, raw, before_raw)

    def same(self, key: str, a: float, b: float) -> bool:
        return _same(a, b)


def _same(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= RAW_TOLERANCE * max(1.0, abs(float(b)))


class ReaperTarget:
    """The reapy target.  ``conn`` must be connected (:meth:`ReapyConnection.connect`)."""

    kind = "reaper"
    capabilities = ReapyCapabilities()

    def __init__(self, conn: ReapyConnection):
        self.conn = conn
        # Per-pass caches: where the AI FX sit (kept in step with every add and delete), each
        # instance's parameter names and band types, and the session's tracks.
        self._fx_index: dict[tuple[str, str], int] = {}
        self._names: dict[tuple[str, int], list[str]] = {}
        self._band_types: dict[tuple[str, int], dict[int, str]] = {}
        self._session: list[_Track] | None = None
        self._verified = self._unverifiable = 0
        #: What the last :meth:`recover` finished ("" when there was nothing to finish).
        self.recovered = ""

    # --- small RPR helpers ----------------------------------------------------------------------

    def _c(self, name: str, *args: Any) -> Any:
        return self.conn.call(name, *args)

    def tracks(self) -> list[_Track]:
        if self._session is not None:
            return self._session
        out = []
        for i in range(int(self._c("CountTracks", 0))):
            ptr = self._c("GetTrack", 0, i)
            guid = self._c("GetSetMediaTrackInfo_String", ptr, "GUID", "", False)[3]
            name = self._c("GetTrackName", ptr, "", 2048)[2]
            out.append(_Track(i, ptr, guid, name))
        self._session = out
        return out

    def _ptr(self, guid: str) -> str | None:
        if guid == "master":
            return self._c("GetMasterTrack", 0)
        return next((t.ptr for t in self.tracks() if t.guid == guid), None)

    def _ext(self, ptr: str, key: str) -> str:
        return self._c("GetSetMediaTrackInfo_String", ptr, PREFIX + key, "", False)[3]

    def _set_ext(self, ptr: str, key: str, value: str) -> None:
        self._c("GetSetMediaTrackInfo_String", ptr, PREFIX + key, value, True)

    def read_tag(self, ptr: str) -> TrackTag:
        return TrackTag.from_ext(self._ext(ptr, PROVENANCE), self._ext(ptr, PASS), self._ext(ptr, PLAN),
                                 self._ext(ptr, STATE))

    def _find_fx(self, ptr: str, renamed: str) -> int:
        if (ptr, renamed) in self._fx_index:
            return self._fx_index[(ptr, renamed)]
        found = -1
        for fx in range(int(self._c("TrackFX_GetCount", ptr))):
            ok, *rest = self._c("TrackFX_GetNamedConfigParm", ptr, fx, "renamed_name", "", 256)
            if ok and rest[3]:
                self._fx_index.setdefault((ptr, rest[3]), fx)
            if ok and rest[3] == renamed and found < 0:
                found = fx
        self._fx_index[(ptr, renamed)] = found
        return found

    def _forget_fx(self) -> None:
        self._fx_index.clear()
        self._names.clear()
        self._band_types.clear()
        self._session = None

    def _proj_ext(self, key: str, size: int = 4096) -> str:
        return self._c("GetProjExtState", 0, EXT_SECTION, key, "", size)[4]

    # --- parameters: stock layout index, checked against REAPER's names ------------------------------

    def _param_names(self, ptr: str, fx: int) -> list[str]:
        if (ptr, fx) not in self._names:
            self._names[(ptr, fx)] = [self._c("TrackFX_GetParamName", ptr, fx, p, "", 256)[4]
                                      for p in range(int(self._c("TrackFX_GetNumParams", ptr, fx)))]
        return self._names[(ptr, fx)]

    def _eq_band_types(self, ptr: str, fx: int) -> dict[int, str]:
        if (ptr, fx) not in self._band_types:
            self._band_types[(ptr, fx)] = {
                b: self._c("TrackFX_GetNamedConfigParm", ptr, fx, f"BANDTYPE{b - 1}", "", 16)[4]
                for b in range(1, len(m.REAEQ_BANDS) + 1)}
        return self._band_types[(ptr, fx)]

    def _param_index(self, track_name: str, ptr: str, fx: int, target: str, param: str) -> int:
        """The parameter's stock layout index, once REAPER's names confirm the layout."""
        names = self._param_names(ptr, fx)
        problem = m.layout_problem(target, param, names)
        if problem is None and target == "eq":  # a ReaEQ by its names: now its band types can be asked
            problem = m.layout_problem(target, param, names, self._eq_band_types(ptr, fx))
        if problem is not None:
            raise TargetNotFound(f"track {track_name!r}: {AI_FX[target][0]} {problem} (cannot write {target}.{param})")
        return m.layout_index(target, param)

    # --- reading what is there ------------------------------------------------------------------------

    def _read(self, track: _Track, key: str) -> Any:
        """The current raw value of ``key`` (``ABSENT`` when its AI FX is not on the track); the
        volume envelope's points for :data:`AUTOMATION_KEY`."""
        if key == AUTOMATION_KEY:
            return self._envelope_points(track.ptr)
        target, param = key.split(".", 1)
        if target == "track":
            return float(self._c("GetMediaTrackInfo_Value", track.ptr, TRACK_PARAMS[param]))
        fx = self._find_fx(track.ptr, AI_FX[target][0])
        if fx < 0:
            return ABSENT
        if target == "eq" and param.endswith("_type"):
            band = int(param[4:param.index("_")])
            self._param_index(track.name, track.ptr, fx, "eq", f"band{band}_freq_hz")  # a ReaEQ first
            return float(self._eq_band_types(track.ptr, fx)[band] or 0)
        index = self._param_index(track.name, track.ptr, fx, target, param)
        return float(self._c("TrackFX_GetParamNormalized", track.ptr, fx, index))

    def _volume_envelope(self, ptr: str) -> str | None:
        env = self._c("GetTrackEnvelopeByName", ptr, "Volume")
        return None if str(env).endswith(NULL_SUFFIX) else env

    def _envelope_points(self, ptr: str) -> tuple[tuple[float, float], ...]:
        env = self._volume_envelope(ptr)
        if env is None:
            return ()
        out = []
        for i in range(int(self._c("CountEnvelopePoints", env))):
            got = self._c("GetEnvelopePoint", env, i, 0.0, 0.0, 0, 0.0, False)
            out.append((float(got[3]), float(got[4])))
        return tuple(out)

    def _ab_state(self) -> str:
        return "A" if self._proj_ext("ab") == "A" else "B"

    # --- the journal ---------------------------------------------------------------------------------

    def _record(self, journal: Journal) -> None:
        self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, journal.text())
        journal.recorded = len(journal.ops)

    def _begin(self, journal: Journal) -> None:
        journal.phase = "begin"
        self._record(journal)
        self._c("Undo_BeginBlock2", 0)
        journal.phase = "open"
        self._record(journal)

    def _run(self, journal: Journal, ops: list[Op]) -> None:
        """Record ``ops`` in the project, then make them in order."""
        if not ops:
            return
        journal.ops += ops
        self._record(journal)
        for op in ops:
            self._do(op)
            journal.done += 1

    def _end(self, journal: Journal) -> None:
        self._c("Undo_EndBlock2", 0, journal.undo, -1)
        journal.phase = "closed"
        self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, "")

    def _transact(self, journal: Journal, ops: list[Op]) -> None:
        """``ops`` as one undo point: begin, record and make them, end."""
        self._begin(journal)
        self._run(journal, ops)
        self._end(journal)

    def _pending(self) -> tuple[Journal | None, str]:
        text = self._proj_ext(PENDING_KEY, PENDING_BUFFER)
        return (Journal.from_text(text) if text else None), text

    def recover(self) -> str:
        """Finish what a cut-off pass left (its journal in the project); call inside a HOLD.

        Returns what was done ("" when nothing was pending).  The undo block a cut-off pass left
        open is closed; an apply or A/B toggle is undone, a revert is finished.
        """
        self.recovered = ""
        journal, text = self._pending()
        if journal is None:
            if text:  # unreadable: nothing sane to undo, do not let it block every pass
                self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, "")
            return ""
        self._forget_fx()
        if not self._block_open(journal):
            # The pass (or an earlier recovery) closed its undo block: everything it recorded is done.
            self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, "")
            self.recovered = f"{journal.undo or journal.kind}: had finished"
            return self.recovered
        journal.phase = "open"  # a block is open (the pass's, or a cut-off recovery's probe)
        forward = journal.kind == "revert"
        journal.close = journal.close or (f"{journal.undo} (finished after an interruption)" if forward
                                         else f"{journal.undo or 'MixBridge'} (rolled back after an interruption)")
        self._record(journal)
        self._unwind(journal, forward)
        self.recovered = journal.close
        return self.recovered

    def _block_open(self, journal: Journal) -> bool:
        """Whether the cut-off pass's undo block is still open (its End call may have been lost).

        ``Undo_CanUndo2`` naming the pass means its block closed (a pass's name is never recorded
        otherwise: its block closes either with it or with the rollback's name).  Otherwise a
        nested probe block tells (:meth:`_probe_open`).  A recovery's own close name proves
        nothing: an earlier recovery of the same pass number recorded the same name.
        """
        if journal.phase not in ("begin", "open"):
            return False
        if journal.undo and self._last_undo() == journal.undo:
            return False
        return self._probe_open(journal)

    def _probe_open(self, journal: Journal) -> bool:
        """Whether an undo block is open: Begin + a change + End records a point of its own only
        when none was.  Its change (a key on the master set and cleared) leaves nothing behind, and
        a probe cut off in the middle is closed like the pass's block (:meth:`_close_blocks`)."""
        probe = f"MixBridge: checked an interrupted pass ({journal.id})"
        master = self._c("GetMasterTrack", 0)
        self._c("Undo_BeginBlock2", 0)
        self._set_ext(master, "probe", journal.id)
        self._set_ext(master, "probe", "")
        self._c("Undo_EndBlock2", 0, probe, -1)
        return self._last_undo() != probe

    def _close_blocks(self, journal: Journal, name: str) -> None:
        """End undo blocks until the outermost one closes under ``name`` (exactly one point).

        Usually one End: the pass's block.  A recovery cut off inside its probe left one more
        open; each End that records no point was a nested one.  When the last point already has
        this name, the name cannot tell, and a probe does.
        """
        for _ in range(MAX_NESTED_BLOCKS):
            before = self._last_undo()
            self._c("Undo_EndBlock2", 0, name, -1)
            if before != name:
                if self._last_undo() == name:
                    return
            elif not self._probe_open(journal):
                return
        raise DawRefused(f"undo blocks stay open after {MAX_NESTED_BLOCKS} Undo_EndBlock2 calls")

    def _last_undo(self) -> str:
        try:
            return str(self._c("Undo_CanUndo2", 0))
        except DawRefused:  # REAPER's wrapper fails on a NULL name: nothing to undo
            return ""

    def _unwind(self, journal: Journal, forward: bool) -> None:
        """Undo (or, for a revert, finish) every recorded op, close the block, clear the record."""
        ops = journal.ops[:journal.recorded]
        errors = []
        for op in (ops if forward else reversed(ops)):
            try:
                self._redo(op) if forward else self._undo(op)
            except DawRefused as exc:  # one op REAPER refuses must not keep the rest in place
                errors.append(str(exc))
        # "begin": Undo_BeginBlock2 was sent, its answer not seen: a probe says whether it ran.
        if journal.phase == "open" or (journal.phase == "begin" and self._probe_open(journal)):
            self._close_blocks(journal, journal.close or f"{journal.undo} rolled back")
        self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, "")
        journal.phase = "closed"
        self._forget_fx()
        if errors:
            raise DawRefused(f"{len(errors)} step(s) could not be undone: {errors[0]}")

    def _failed(self, journal: Journal | None, exc: BaseException) -> None:
        """After ``exc`` in a pass: undo it now if possible, else say exactly what is left.

        Returns normally when the pass was unwound (the caller re-raises ``exc``); raises
        :class:`RollbackPending` when REAPER stays out of reach.
        """
        if journal is None or not journal.phase or journal.phase == "closed":
            self._explain_loss(exc)
            return
        forward = journal.kind == "revert"
        if journal.close == "":
            journal.close = (f"{journal.undo} (finished after an error)" if forward
                             else f"{journal.undo} (rolled back)")
        if not self.conn.dead:
            try:
                with self.conn.held():
                    if self._block_open(journal):
                        journal.phase = "open"
                        self._unwind(journal, forward)
                        return
                    # the pass's own Undo_EndBlock2 went through (its answer came late): it is complete
                    self._c("SetProjExtState", 0, EXT_SECTION, PENDING_KEY, "")
                    journal.phase = "closed"
            except UNREACHABLE:
                pass
            else:
                self._had_finished(journal, exc)
                return
        states = journal.states()
        try:
            self.conn.connect()
            with self.conn.held():
                finished = self.recover().endswith(": had finished")
        except UNREACHABLE as again:
            why = again.detail if isinstance(again, DawStaleServer) else ""
            listed = ", ".join(f"{name} {'needs rollback' if s == ROLLBACK else 'fully applied' if s == APPLIED else s}"
                               for name, s in states.items())
            cause = getattr(exc, "detail", "") or str(exc)
            verb = "finishes it" if forward else "rolls it back"
            raise RollbackPending(f"{cause}; {journal.undo or journal.kind} is journalled in the project: {listed}; "
                                  f"the next connection (or 'mixbridge revert') {verb}"
                                  + (f"; {why}" if why else f"; if REAPER is up, {RESTART_HINT}"),
                                  tracks=states) from exc
        if finished:
            self._had_finished(journal, exc)

    @staticmethod
    def _had_finished(journal: Journal, exc: BaseException) -> None:
        """The pass went through although a call of it failed (the failure was its last answer)."""
        if isinstance(exc, BridgeError) and not isinstance(exc, RollbackPending):
            raise type(exc)(f"{getattr(exc, 'detail', '') or exc}; but the pass had gone through: "
                            f"{journal.undo or journal.kind} is fully applied") from exc

    def _explain_loss(self, exc: BaseException) -> None:
        """A connection lost before anything was written: nothing to undo, but reapy's server in
        REAPER may have died with it (reapy 0.10 does when a HOLD loses its client); if so, say
        that and how to restart it instead of a bare "lost"."""
        if not (self.conn.dead and isinstance(exc, UNREACHABLE) and self.conn.reapy is not None):
            return
        try:
            preflight(self.conn.host, self.conn.web_port, min(self.conn.timeout_s, 2.0))
        except DawStaleServer as stale:
            cause = getattr(exc, "detail", "") or str(exc)
            raise DawStaleServer(f"{cause}; nothing was written; {stale.detail}") from exc
        except Exception:  # noqa: BLE001 - REAPER gone altogether: the original error says enough
            return

    # --- making, undoing and finishing one op ----------------------------------------------------------

    def _do(self, op: Op) -> None:
        """Make ``op`` (the pass's own first attempt); track and FX values are read back."""
        ptr = self._ptr(op.track) if op.track else None
        if op.kind == "value":
            self._c("SetMediaTrackInfo_Value", ptr, op.key, float(op.new))
            back = float(self._c("GetMediaTrackInfo_Value", ptr, op.key))
            if not _same(back, op.new):
                raise DawVerifyError(f"track {op.name!r}: {op.key} reads back {back}, wrote {op.new}")
            self._verified += 1
        elif op.kind == "fx_add":
            fx = int(self._c("TrackFX_AddByName", ptr, op.key, False, -1))
            if fx < 0:
                raise TargetNotFound(f"track {op.name!r}: REAPER could not add {op.key!r}")
            if fx != op.index:
                raise DawVerifyError(f"track {op.name!r}: REAPER added {op.key!r} at {fx}, not at the end ({op.index})")
            self._c("TrackFX_SetNamedConfigParm", ptr, fx, "renamed_name", op.fx)
            self._fx_index[(ptr, op.fx)] = fx
        elif op.kind == "param":
            fx = self._find_fx(ptr, op.fx)
            target, param = op.plan_key.split(".", 1)
            index = self._param_index(op.name, ptr, fx, target, param)  # names may have followed a type change
            self._c("TrackFX_SetParamNormalized", ptr, fx, index, float(op.new))
            self._verify(op, ptr, fx, index)
        elif op.kind == "config":
            fx = self._find_fx(ptr, op.fx)
            self._c("TrackFX_SetNamedConfigParm", ptr, fx, op.key, str(op.new))
            back = self._c("TrackFX_GetNamedConfigParm", ptr, fx, op.key, "", 16)[4]
            if back != str(op.new):
                raise DawVerifyError(f"track {op.name!r}: {op.fx} {op.key} reads back {back!r}, wrote {op.new!r}")
            self._verified += op.key.startswith("BANDTYPE")
            self._names.pop((ptr, fx), None)  # ReaEQ's names follow the band type: read them again
            self._band_types.pop((ptr, fx), None)
        elif op.kind == "env_show":
            self._show_volume_envelope(ptr)
            if self._volume_envelope(ptr) is None:
                raise TargetNotFound(f"track {op.name!r}: no volume envelope after showing it")
        elif op.kind == "select":
            pass  # the selection the next op changes and puts back; undone by restoring it
        else:
            self._redo(op, first=True)

    def _undo(self, op: Op) -> None:
        """Take ``op`` back if it is in place (idempotent; a value that is neither old nor new stays).

        An AI FX the cut-off pass added is deleted, unless the producer tuned a parameter of it
        while the bridge was away: then it stays, renamed back to the plug-in's own name, so it is
        the producer's like any FX of theirs (the bridge never writes to it again).
        """
        ptr = self._ptr(op.track) if op.track else None
        if op.track and ptr is None:
            return  # the track is gone
        if op.kind == "value":
            current = float(self._c("GetMediaTrackInfo_Value", ptr, op.key))
            if _same(current, op.new) and not _same(current, op.old):
                self._c("SetMediaTrackInfo_Value", ptr, op.key, float(op.old))
        elif op.kind == "fx_add":
            if op.index < int(self._c("TrackFX_GetCount", ptr)):
                renamed = self._c("TrackFX_GetNamedConfigParm", ptr, op.index, "renamed_name", "", 256)[4]
                plugin = self._c("TrackFX_GetFXName", ptr, op.index, "", 256)[3]
                bare = op.key.split(":", 1)[-1].split(" (")[0].strip()
                if renamed == op.fx and self._tuned_by_hand(op, ptr):
                    self._c("TrackFX_SetNamedConfigParm", ptr, op.index, "renamed_name", "")
                elif renamed == op.fx or (renamed == "" and bare in plugin):
                    self._c("TrackFX_Delete", ptr, op.index)
            self._forget_fx()
        elif op.kind in ("param", "config", "fx_enable"):
            fx = self._find_fx(ptr, op.fx)
            if fx < 0:
                return
            current = self._fx_value(op, ptr, fx)
            if _equal(current, op.new) and not _equal(current, op.old):
                self._set_fx_value(op, ptr, fx, op.old)
        elif op.kind in ("ext", "proj_ext"):
            current = self._ext(ptr, op.key) if op.kind == "ext" else self._proj_ext(op.key)
            if current == op.new and current != op.old:
                self._set_text(op, ptr, op.old)
        elif op.kind == "select":
            wanted = set(op.old or ())
            for t in self.tracks():
                if bool(self._c("IsTrackSelected", t.ptr)) != (t.guid in wanted):
                    self._c("SetTrackSelected", t.ptr, t.guid in wanted)
        elif op.kind == "env_show":
            self._hide_empty_envelope(ptr)
        elif op.kind == "points":
            self._swap_points(ptr, take_out=op.new, put_in=op.old)
        # fx_delete is never undone (a revert is finished instead)

    def _tuned_by_hand(self, added: Op, ptr: str) -> bool:
        """Whether any parameter of the FX ``added`` put in differs from a fresh instance's (the
        undo of the pass's values runs first, so only the producer's changes are left).  The fresh
        instance is added at the end of the chain, read and deleted again."""
        count = int(self._c("TrackFX_GetNumParams", ptr, added.index))
        fresh = int(self._c("TrackFX_AddByName", ptr, added.key, False, -1))
        if fresh < 0:
            return False
        try:
            defaults = [float(self._c("TrackFX_GetParamNormalized", ptr, fresh, p)) for p in range(count)]
        finally:
            self._c("TrackFX_Delete", ptr, fresh)
        return any(not _same(self._c("TrackFX_GetParamNormalized", ptr, added.index, p), d)
                   for p, d in enumerate(defaults))

    def _redo(self, op: Op, first: bool = False) -> None:
        """Make ``op`` if it is not in place yet (idempotent; finishing a revert, or a first attempt)."""
        ptr = self._ptr(op.track) if op.track else None
        if op.track and ptr is None:
            return
        if op.kind == "value":
            current = float(self._c("GetMediaTrackInfo_Value", ptr, op.key))
            if first or (_same(current, op.old) and not _same(current, op.new)):
                self._c("SetMediaTrackInfo_Value", ptr, op.key, float(op.new))
        elif op.kind in ("param", "config", "fx_enable"):
            fx = self._find_fx(ptr, op.fx)
            if fx < 0:
                return
            if first or _equal(self._fx_value(op, ptr, fx), op.old):
                self._set_fx_value(op, ptr, fx, op.new)
        elif op.kind in ("ext", "proj_ext"):
            current = self._ext(ptr, op.key) if op.kind == "ext" else self._proj_ext(op.key)
            if first or current == op.old:
                self._set_text(op, ptr, op.new)
        elif op.kind == "fx_delete":
            fx = self._find_fx(ptr, op.fx)
            if fx >= 0 and all(_same(self._c("TrackFX_GetParamNormalized", ptr, fx, int(i)), v)
                               for i, v in (op.old or {}).items()):
                self._c("TrackFX_Delete", ptr, fx)
            self._forget_fx()
        elif op.kind == "points":
            self._swap_points(ptr, take_out=op.old, put_in=op.new)
        elif op.kind == "env_hide":
            self._hide_empty_envelope(ptr)

    def _hide_empty_envelope(self, ptr: str) -> None:
        env = self._volume_envelope(ptr)
        if env is not None and int(self._c("CountEnvelopePoints", env)) == 0:
            self._c("GetSetEnvelopeInfo_String", env, "VISIBLE", "0", True)

    def _fx_value(self, op: Op, ptr: str, fx: int) -> Any:
        if op.kind == "param":
            return float(self._c("TrackFX_GetParamNormalized", ptr, fx, op.index))
        if op.kind == "config":
            return self._c("TrackFX_GetNamedConfigParm", ptr, fx, op.key, "", 16)[4]
        return bool(self._c("TrackFX_GetEnabled", ptr, fx))

    def _set_fx_value(self, op: Op, ptr: str, fx: int, value: Any) -> None:
        if op.kind == "param":
            self._c("TrackFX_SetParamNormalized", ptr, fx, op.index, float(value))
        elif op.kind == "config":
            self._c("TrackFX_SetNamedConfigParm", ptr, fx, op.key, str(value))
            self._names.pop((ptr, fx), None)
            self._band_types.pop((ptr, fx), None)
        else:
            self._c("TrackFX_SetEnabled", ptr, fx, bool(value))

    def _set_text(self, op: Op, ptr: str | None, value: str) -> None:
        if op.kind == "ext":
            self._set_ext(ptr, op.key, value)
        else:
            self._c("SetProjExtState", 0, EXT_SECTION, op.key, value)

    def _swap_points(self, ptr: str, take_out: Iterable, put_in: Iterable) -> None:
        """Delete the points of ``take_out`` that are there, insert those of ``put_in`` that are not."""
        env = self._volume_envelope(ptr)
        if env is None:
            return
        here = self._envelope_points(ptr)
        changed = False
        for t, v in take_out or ():
            if any(_point_is(p, t, v) for p in here):
                self._c("DeleteEnvelopePointRange", env, float(t) - 1e-6, float(t) + 1e-6)
                changed = True
        here = self._envelope_points(ptr) if changed else here
        for t, v in put_in or ():
            if not any(_point_is(p, t, v) for p in here) and not math.isnan(float(v)):
                self._c("InsertEnvelopePoint", env, float(t), float(v), 0, 0.0, False, True)
                changed = True
        if changed:
            self._c("Envelope_SortPoints", env)

    def _show_volume_envelope(self, ptr: str) -> None:
        """Run "Track: Toggle track volume envelope visible" (40406) on this track alone; the
        selection is put back (journalled by the ``select`` op before it)."""
        selected = [t.ptr for t in self.tracks() if self._c("IsTrackSelected", t.ptr)]
        for other in selected:
            self._c("SetTrackSelected", other, False)
        self._c("SetTrackSelected", ptr, True)
        self._c("Main_OnCommand", 40406, 0)
        self._c("SetTrackSelected", ptr, False)
        for other in selected:
            self._c("SetTrackSelected", other, True)

    def _verify(self, op: Op, ptr: str, fx: int, index: int) -> None:
        """Compare REAPER's display of a written FX value with the bridge's model, in display units."""
        expected = m.display_expectation(op.plan_key, op.value) if op.value is not None else None
        if expected is None:
            back = float(self._c("TrackFX_GetParamNormalized", ptr, fx, index))
            if not _same(back, op.new):
                raise DawVerifyError(f"track {op.name!r}: {op.plan_key} reads back {back}, wrote {op.new}")
            self._verified += 1
            return
        number, unit = expected
        text = self._c("TrackFX_GetFormattedParamValue", ptr, fx, index, "", 64)[4]
        shown = m.parse_display(text, unit)
        if not m.display_matches(shown, number, unit):
            raise DawVerifyError(
                f"track {op.name!r}: {op.plan_key} shows {text!r} in REAPER where the bridge's mapping "
                f"expects {number:.4g} {unit} (plan {op.value}); REAPER maps this parameter differently "
                f"(docs/reaper-setup.md), so the pass was rolled back")
        self._verified += 1

    # --- the pass -------------------------------------------------------------------------------------

    def _decide(self, plan: dict[str, Any], reenable, ab: str) -> tuple[list[tuple[_Track, TrackDecision]], list[str]]:
        """Read every plan track's tag and values and reconcile them."""
        session = self.tracks()
        by_guid = {t.guid: t for t in session}
        by_name: dict[str, _Track] = {}
        for t in session:
            by_name.setdefault(t.name, t)
        decisions, missing = [], []
        for tp in plan.get("tracks", []):
            track = by_guid.get(tp.get("guid") or "") or by_name.get(tp.get("name", ""))
            if track is None:
                if tp.get("changes") or tp.get("automation"):
                    missing.append(tp.get("name", ""))
                continue
            tag = self.read_tag(track.ptr)
            keys = {k for k in keys_to_read(tp, tag) if self.capabilities.refuses(k) is None}
            if tag.points or tp.get("automation"):
                keys.add(AUTOMATION_KEY)
            readings = {key: self._read(track, key) for key in keys}
            decisions.append((track, reconcile_track(track.name, tp, tag, readings, self.capabilities, reenable, ab)))
        return decisions, missing

    def apply(self, plan: dict[str, Any], reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport:
        """Apply one plan (the JSON document) as one undo point; see the module docstring."""
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        self._forget_fx()
        self._verified = self._unverifiable = 0
        writes: list[Write] = []
        journal: Journal | None = None
        try:
            with self.conn.held():
                self.recover()
                ab = self._ab_state()
                decisions, missing = self._decide(plan, reenable, ab)
                number = (int(p) if (p := self._proj_ext("pass")).isdigit() else 0) + 1
                todo = [(t, d) for t, d in decisions if d.touched or d.tag_changed]
                touched = sum(bool(d.writes or d.points is not None) for _, d in todo)
                undo = ""
                if todo:
                    undo = f"MixBridge: AI pass {number} — {touched} tracks"
                    journal = Journal("apply", undo, {t.guid: t.name for t, _ in todo})
                    self._begin(journal)
                    for track, decision in todo:
                        self._apply_track(track, decision, journal, number, plan.get("id", ""), ab)
                        writes += decision.writes
                        if decision.points is not None:
                            writes.append(Write(track.name, AUTOMATION_KEY, len(decision.points) or None, None))
                    self._run(journal, [Op("proj_ext", key="pass", old=self._proj_ext("pass"), new=str(number))])
                    self._end(journal)
                else:
                    number -= 1
        except BaseException as exc:
            self._failed(journal, exc)
            raise
        return ApplyReport(
            self.kind, number, undo, tuple(writes),
            overrides=tuple(o for _, d in decisions for o in d.overrides),
            pending=tuple(p for _, d in decisions for p in d.pending),
            unchanged=tuple((d.track, k) for _, d in decisions for k in d.unchanged),
            missing_tracks=tuple(missing), provenance={d.track: d.tag.provenance for _, d in decisions},
            verified=self._verified, unverifiable=self._unverifiable,
            round_trips=self.conn.round_trips - trips0, seconds=time.perf_counter() - started,
            recovered=self.recovered)

    def _apply_track(self, track: _Track, decision: TrackDecision, journal: Journal, number: int, plan_id: str,
                     ab: str) -> None:
        """One track's ops: first what gives the values a place (AI FX, the envelope), then the values
        and the tag, each batch journalled before it is made."""
        t = dict(track=track.guid, name=track.name)
        structure: list[Op] = []
        count = None
        for target in sorted({w.key.split(".", 1)[0] for w in decision.writes if not w.restore} & set(AI_FX)):
            renamed, plugin = AI_FX[target]
            if self._find_fx(track.ptr, renamed) >= 0:
                continue
            count = int(self._c("TrackFX_GetCount", track.ptr)) if count is None else count
            structure.append(Op("fx_add", key=plugin, fx=renamed, index=count, **t))
            if ab == "A":  # A plays pre-AI: a new AI FX starts bypassed, as A/B would have left it
                structure.append(Op("fx_enable", fx=renamed, old=True, new=False, **t))
            count += 1
        if decision.points is not None and self._volume_envelope(track.ptr) is None:
            structure += [Op("select", old=[x.guid for x in self.tracks() if self._c("IsTrackSelected", x.ptr)], **t),
                          Op("env_show", **t)]
        self._run(journal, structure)

        values: list[Op] = []
        befores: dict[str, float] = {}
        for w in decision.writes:
            if w.deferred:
                continue  # B's value, kept in the tag while the session plays A
            target, param = w.key.split(".", 1)
            if target == "track":
                values.append(Op("value", key=TRACK_PARAMS[param], old=w.current, new=w.raw, plan_key=w.key, **t))
                continue
            renamed = AI_FX[target][0]
            fx = self._find_fx(track.ptr, renamed)
            if target == "eq" and param.endswith("_type"):
                band = int(param[4:param.index("_")])
                old_type = self._eq_band_types(track.ptr, fx)[band]
                old_on = self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDENABLED{band - 1}", "", 16)[4]
                if w.current is ABSENT:
                    befores[w.key] = float(old_type or 0)
                values.append(Op("config", key=f"BANDTYPE{band - 1}", fx=renamed, old=old_type,
                                 new=str(int(w.raw)), plan_key=w.key, **t))
                values.append(Op("config", key=f"BANDENABLED{band - 1}", fx=renamed, old=old_on,
                                 new=old_on if w.restore else "1", plan_key=w.key, **t))
                continue
            index = m.layout_index(target, param)
            old = w.current if isinstance(w.current, float) else float(
                self._c("TrackFX_GetParamNormalized", track.ptr, fx, index))
            if w.current is ABSENT:
                befores[w.key] = old
            values.append(Op("param", fx=renamed, index=index, old=old, new=w.raw, plan_key=w.key, value=w.value, **t))
        point_values = None
        if decision.points is not None:
            env = self._volume_envelope(track.ptr)
            mode = int(self._c("GetEnvelopeScalingMode", env))
            point_values = [float(self._c("ScaleToEnvelopeMode", mode, m.db_to_fader_gain(db)))
                            for _, db in decision.points]
            values.append(Op("points", old=[list(p) for p in decision.remove_points],
                             new=[[tt, v] for (tt, _), v in zip(decision.points, point_values)], **t))
        tag = decision.finish(befores, pass_number=number, plan_id=plan_id, point_values=point_values)
        tag.envelope_shown = tag.envelope_shown or any(op.kind == "env_show" for op in structure)
        values += self._tag_ops(track, tag)
        self._run(journal, values)

    def _tag_ops(self, track: _Track, tag: TrackTag, remove: bool = False) -> list[Op]:
        """The ``ext`` ops that make the track's tag ``tag`` (``remove``: delete every key: an empty
        value deletes a ``P_EXT`` key, an assumption listed in docs/reaper-setup.md)."""
        new = {PROVENANCE: tag.provenance, PASS: str(tag.pass_number), PLAN: tag.plan_id, STATE: tag.state_json(),
               PRE_AI: tag.pre_ai_text(TRACK_PARAMS), AI_POINTS: tag.ai_points_text()}
        if remove:
            new = dict.fromkeys(new, "")
        ops = []
        for key in TAG_KEYS:
            old = self._ext(track.ptr, key)
            if old != new[key]:
                ops.append(Op("ext", track=track.guid, name=track.name, key=key, old=old, new=new[key]))
        return ops

    # --- revert and A/B -----------------------------------------------------------------------------------

    def revert(self, only_track: str | None = None) -> ApplyReport:
        """Restore the exact pre-AI values, remove the AI FX and the bridge's intact points; leave
        the producer's changes (values, tuned AI FX, edited points) alone.

        A revert is the reconciliation of an empty plan (every key the bridge owns goes back), except
        that an AI FX the producer did not tune is deleted outright instead of reset.  All its ops
        are journalled before the first is made, so a cut-off revert is finished later.
        """
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        self._forget_fx()
        self._verified = self._unverifiable = 0
        writes: list[Write] = []
        decisions: list[TrackDecision] = []
        journal: Journal | None = None
        try:
            with self.conn.held():
                self.recover()
                ops: list[Op] = []
                empty = {"status": "ai", "changes": [], "automation": []}
                ab = self._ab_state()
                tracks: dict[str, str] = {}
                for track in self.tracks():
                    if only_track is not None and track.name != only_track:
                        continue
                    tag = self.read_tag(track.ptr)
                    if not tag.written and not tag.points:
                        continue
                    keys = {k for k in tag.written if self.capabilities.refuses(k) is None} | {AUTOMATION_KEY}
                    readings = {key: self._read(track, key) for key in keys}
                    decision = reconcile_track(track.name, empty, tag, readings, self.capabilities, ab=ab)
                    decisions.append(decision)
                    tracks[track.guid] = track.name
                    track_ops, track_writes = self._revert_ops(track, decision, readings)
                    ops += track_ops
                    writes += track_writes
                undo = ""
                if ops:
                    undo = "MixBridge: revert AI" + (f" on {only_track}" if only_track else " pass")
                    journal = Journal("revert", undo, tracks)
                    journal.ops = []
                    self._transact(journal, ops)
        except BaseException as exc:
            self._failed(journal, exc)
            raise
        return ApplyReport(self.kind, 0, undo, tuple(writes), overrides=tuple(o for d in decisions for o in d.overrides),
                           provenance={d.track: ("manual" if d.tag.overrides else "untouched") for d in decisions},
                           verified=self._verified, round_trips=self.conn.round_trips - trips0,
                           seconds=time.perf_counter() - started, recovered=self.recovered)

    def _revert_ops(self, track: _Track, decision: TrackDecision, readings: dict[str, Any]) -> tuple[list[Op], list[Write]]:
        t = dict(track=track.guid, name=track.name)
        ops: list[Op] = []
        kept = {k.split(".", 1)[0] for k in decision.tag.overrides if k != AUTOMATION_KEY}
        deleted = {target for target in AI_FX if target not in kept}
        restores = [w for w in decision.writes if w.key.split(".", 1)[0] not in deleted and not w.key.endswith("_type")]
        writes = list(restores)
        for w in restores:
            target, param = w.key.split(".", 1)
            if target == "track":
                if not w.deferred:
                    ops.append(Op("value", key=TRACK_PARAMS[param], old=w.current, new=w.raw, **t))
            elif isinstance(w.current, float):
                ops.append(Op("param", fx=AI_FX[target][0], index=m.layout_index(target, param), old=w.current,
                              new=w.raw, plan_key=w.key, **t))
        for target in sorted(deleted):
            renamed = AI_FX[target][0]
            if self._find_fx(track.ptr, renamed) < 0:
                continue
            snapshot = {str(m.layout_index(target, k.split(".", 1)[1])): readings[k]
                        for k in decision.old_tag.written if k.startswith(target + ".") and not k.endswith("_type")
                        and isinstance(readings.get(k), float)}
            ops.append(Op("fx_delete", fx=renamed, old=snapshot, **t))
            writes += [w for w in decision.writes if w.key.startswith(target + ".")]
        ours = [list(p) for p in decision.remove_points]
        if ours:
            ops.append(Op("points", old=ours, new=[], **t))
            writes.append(Write(track.name, AUTOMATION_KEY, None, None))
        if decision.old_tag.envelope_shown:
            ops.append(Op("env_hide", **t))  # hidden again if nothing but the bridge's points was on it
        after = decision.finish()
        after.written.clear()  # the bridge gives everything up; the producer's overrides stay theirs
        after.points = []
        after.provenance = after.derive_provenance()
        # Nothing left to remember (no producer override): the tag goes, the track is as before the bridge.
        ops += self._tag_ops(track, after, remove=not after.overrides and not after.opt_out)
        return ops, writes

    def provenance(self) -> dict[str, str]:
        """Track name -> ``ai`` / ``manual`` / ``hybrid`` from each track's ``P_EXT`` tag (one read each)."""
        self._forget_fx()
        with self.conn.held():
            self.recover()
            return {t.name: self._ext(t.ptr, PROVENANCE) or UNTOUCHED for t in self.tracks()}

    def close(self) -> None:
        self.conn.close()

    def ab_toggle(self, delta_lu: float) -> dict[str, Any]:
        """Toggle between the pre-AI (A) and AI (B) states, level-matched on the master fader.

        A sets every AI-written track value back to its pre-AI value and bypasses the AI FX; B puts
        the AI values back and enables them (:func:`~bridge.daw.reconcile.reconcile_ab`: a value
        moved by hand since the last toggle is the producer's and stays).  ``delta_lu`` is the AI
        pass's loudness change estimated from the analysis; A plays with the master moved by it,
        so both sides play at the same loudness (:func:`~bridge.daw.reconcile.ab_master`).
        Toggling twice restores every value exactly.  Envelope points stay (documented).
        """
        self._forget_fx()
        journal: Journal | None = None
        found: list[Override] = []
        try:
            with self.conn.held():
                self.recover()
                going = "A" if self._ab_state() == "B" else "B"
                ops: list[Op] = []
                tracks: dict[str, str] = {}
                for track in self.tracks():
                    tag = self.read_tag(track.ptr)
                    if not tag.written:
                        continue
                    t = dict(track=track.guid, name=track.name)
                    keys = [k for k in tag.written if k.startswith("track.")]
                    readings = {k: self._read(track, k) for k in keys}
                    decision = reconcile_ab(track.name, tag, readings, self.capabilities, going)
                    found += decision.overrides
                    ops += [Op("value", key=TRACK_PARAMS[w.key.split(".", 1)[1]], old=w.current, new=w.raw, **t)
                            for w in decision.writes]
                    for renamed, _ in AI_FX.values():
                        fx = self._find_fx(track.ptr, renamed)
                        if fx >= 0 and bool(self._c("TrackFX_GetEnabled", track.ptr, fx)) == (going == "A"):
                            ops.append(Op("fx_enable", fx=renamed, old=going == "A", new=going == "B", **t))
                    if decision.tag_changed:
                        ops += self._tag_ops(track, decision.tag)
                    tracks[track.guid] = track.name
                master = self._c("GetMasterTrack", 0)
                current = float(self._c("GetMediaTrackInfo_Value", master, "D_VOL"))
                saved = self._proj_ext("ab_master")
                target = ab_master(going, current, float(saved) if saved else None, delta_lu,
                                   lambda gain, db: gain * m.db_to_fader_gain(db))
                if target != current:
                    ops.append(Op("value", track="master", name="MASTER", key="D_VOL", old=current, new=target))
                ops.append(Op("proj_ext", key="ab_master", old=saved, new=repr(current) if going == "A" else ""))
                ops.append(Op("proj_ext", key="ab", old=self._proj_ext("ab"), new=going))
                journal = Journal("ab", f"MixBridge: A/B → {going} ({'pre-AI' if going == 'A' else 'AI'})", tracks)
                self._transact(journal, ops)
        except BaseException as exc:
            self._failed(journal, exc)
            raise
        return {"state": going, "compensation_db": round(delta_lu if going == "A" else 0.0, 2),
                "overrides": [f"{o.track}:{o.key}" for o in found], "recovered": self.recovered}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return _same(a, b)
    return str(a) == str(b)


def _point_is(point: tuple[float, float], time_s: float, value: float) -> bool:
    if abs(point[0] - float(time_s)) > 1e-6:
        return False
    return math.isnan(float(value)) or abs(point[1] - float(value)) <= 1e-6 * max(1.0, abs(float(value)))


class LazyReaperTarget:
    """:class:`ReaperTarget` that connects on first use and reconnects after a failure.

    Creating it never touches the network.  Every call that finds no live connection tries to
    connect; if REAPER is down the call raises :class:`~bridge.errors.DawUnavailable` and the
    next call tries again (and, once connected, first finishes any rollback a cut-off pass left).
    Not thread-safe on its own (see :mod:`bridge.daw.base`); the lock here only keeps a reconnect
    and a call from interleaving.
    """

    kind = "reaper"
    capabilities = ReapyCapabilities()

    def __init__(self, host: str = DEFAULTS.host, web_port: int = DEFAULTS.web_port,
                 timeout_s: float = DEFAULTS.timeout_s):
        self.host = host
        self.web_port = web_port
        self.timeout_s = timeout_s
        self._inner: ReaperTarget | None = None
        self._lock = threading.Lock()

    def _target(self) -> ReaperTarget:
        if self._inner is not None and not self._inner.conn.dead:
            return self._inner
        if self._inner is not None:
            self._inner.conn.close()
            self._inner = None
        conn = ReapyConnection(self.host, self.web_port, self.timeout_s)
        try:
            conn.connect()
        except BaseException:
            conn.close()  # its worker thread must not outlive a failed connect
            raise
        self._inner = ReaperTarget(conn)
        return self._inner

    def _run(self, call: Callable[[ReaperTarget], Any]) -> Any:
        with self._lock:
            try:
                return call(self._target())
            except UNREACHABLE:
                # Drop the connection: the next call reconnects from scratch.
                if self._inner is not None:
                    self._inner.conn.dead = True
                raise

    def apply(self, plan: dict, reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport:
        return self._run(lambda t: t.apply(plan, reenable=reenable))

    def revert(self, only_track: str | None = None) -> ApplyReport:
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


def _to_raw(key: str, value: Any, before: float | None) -> float:
    target, param = key.split(".", 1)
    if target == "track":
        if param == "volume_db":
            return (before if before is not None else 1.0) * m.db_to_fader_gain(float(value))
        return float(value)
    if target == "eq" and param.endswith("_type"):
        return float(m.REAEQ_BAND_TYPE[value])
    return float(m.fx_normalized(key, value))


def _human(key: str, raw: float, before: float | None) -> Any:
    """A raw value in plan units, for the notes ("the producer moved it from -3.0 to -1.5 dB")."""
    if key == "track.volume_db":
        return round(m.fader_gain_to_db(raw / before) if before else m.fader_gain_to_db(raw), 2)
    if key.startswith("track.") or key.endswith("_type"):
        return round(raw, 4)
    return m.fx_plan_value(key, raw)
