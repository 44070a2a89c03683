"""Write a MixPlan into REAPER through reapy: one pass, one undo point, all or nothing.

A transport: it reads the session (track values, the AI FX's parameters, the ``P_EXT`` tags), asks
:func:`bridge.daw.reconcile.reconcile_track` what to write, and writes exactly that.

The bridge never touches the session's own FX.  Its EQ and compressor moves go on stock ReaEQ and
ReaComp instances it adds and renames ("AI EQ (MixBridge)", "AI Comp (MixBridge)") and reuses on
later passes.  Track volume, pan, width and polarity are set natively; section automation becomes
points on the track's volume envelope.  Every value is converted by :mod:`bridge.daw.mapping` and
verified by reading REAPER's value back.

If REAPER errors or the connection drops mid-pass, everything already written is restored (on a new
connection if need be) and the error is raised: the session ends fully applied or as it was.  Only
a lost connection or a timeout is :class:`~bridge.errors.DawUnavailable` / ``DawTimeout`` (which a
watcher queues and retries); REAPER answering with an error is ``DawRefused``; anything else is a
bug and surfaces as itself, after the rollback.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UNREACHABLE, DawVerifyError, TargetNotFound
from ..settings import Connection
from . import mapping as m
from .base import ApplyReport
from .reapy_conn import ReapyConnection
from .reconcile import ABSENT, AUTOMATION_KEY, TrackDecision, Write, keys_to_read, reconcile_track
from .tagging import PASS, PLAN, PRE_AI, PREFIX, PROVENANCE, STATE, UNTOUCHED, TrackTag

DEFAULTS = Connection()
NULL_SUFFIX = "0x0000000000000000"
EXT_SECTION = "mixbridge"
#: Tolerance for "is this still the value we wrote" on raw/normalized values.
RAW_TOLERANCE = 1e-4
#: Track-native parameters: plan param -> REAPER track attribute.
TRACK_PARAMS = {"volume_db": "D_VOL", "pan": "D_PAN", "width": "D_WIDTH", "polarity": "B_PHASE"}
#: Formatted read-back tolerance per unit.
#: REAPER displays one decimal, so the tolerance covers the display rounding too.
VERIFY_TOLERANCE = {"Hz": 0.01, "dB": 0.15, ":1": 0.06, "ms": 0.6}
AI_FX = {"eq": (m.AI_EQ_NAME, m.REAEQ), "comp": (m.AI_COMP_NAME, m.REACOMP),
         "polarity": (m.AI_POLARITY_NAME, m.POLARITY_JSFX)}


@dataclass
class _Track:
    index: int
    ptr: str
    guid: str
    name: str


class _Journal:
    """Undo actions for everything written in this pass, replayed in reverse on failure."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, undo: Callable[[], None]) -> None:
        self.steps.append((what, undo))


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
                _fx_param(target, param) if not (target == "eq" and param.endswith("_type")) else None
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
        return abs(a - b) <= RAW_TOLERANCE * max(1.0, abs(b))


class ReaperTarget:
    """The reapy target.  ``conn`` must be connected (:meth:`ReapyConnection.connect`)."""

    kind = "reaper"
    capabilities = ReapyCapabilities()

    def __init__(self, conn: ReapyConnection):
        self.conn = conn
        # Per-pass caches: where the AI FX sit (kept in step with every add and delete), which
        # plug-in each is, each plug-in's parameter layout, and the session's tracks.
        self._fx_index: dict[tuple[str, str], int] = {}
        self._fx_plugin: dict[tuple[str, int], str] = {}
        self._layouts: dict[str, dict[str, int]] = {}
        self._session: list[_Track] | None = None
        self._selected: list[str] | None = None
        self._verified = self._unverifiable = 0

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
                self._fx_index[(ptr, rest[3])] = fx
            if ok and rest[3] == renamed:
                found = fx
        self._fx_index.setdefault((ptr, renamed), found)
        return found

    def _forget_fx(self) -> None:
        self._fx_index.clear()
        self._fx_plugin.clear()
        self._session = None
        self._selected = None

    def _param(self, ptr: str, fx: int, name: str) -> int:
        """Parameter index by name, resolved at write time (never a hard-coded index alone).

        The first instance of each AI FX in a pass is scanned in full; other instances of the same
        plug-in reuse its layout after checking the one name they need.
        """
        plugin = self._c("TrackFX_GetFXName", ptr, fx, "", 256)[3] if (ptr, fx) not in self._fx_plugin else None
        if plugin is not None:
            self._fx_plugin[(ptr, fx)] = plugin
        plugin = self._fx_plugin[(ptr, fx)]
        layout = self._layouts.get(plugin)
        if layout is None:
            layout = {}
            for p in range(int(self._c("TrackFX_GetNumParams", ptr, fx))):
                layout.setdefault(self._c("TrackFX_GetParamName", ptr, fx, p, "", 256)[4], p)
            self._layouts[plugin] = layout
        if name not in layout:
            raise TargetNotFound(f"{plugin!r} has no parameter named {name!r}")
        return layout[name]

    # --- the pass -------------------------------------------------------------------------------------

    def _decide(self, plan: dict[str, Any], reenable) -> tuple[list[tuple[_Track, TrackDecision]], list[str]]:
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
            readings = {key: self._read(track, key) for key in keys_to_read(tp, tag)
                        if self.capabilities.refuses(key) is None}
            decisions.append((track, reconcile_track(track.name, tp, tag, readings, self.capabilities, reenable)))
        return decisions, missing

    def apply(self, plan: dict[str, Any], reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport:
        """Apply one plan (the JSON document) as one undo point; see the module docstring."""
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        journal = _Journal()
        block = _Block(self)
        self._forget_fx()
        self._verified = self._unverifiable = 0
        writes: list[Write] = []
        try:
            with self.conn.held():
                decisions, missing = self._decide(plan, reenable)
                previous = self._proj_ext("pass")
                number = (int(previous) if previous.isdigit() else 0) + 1
                touched = 0
                for track, decision in decisions:
                    if not (decision.touched or decision.tag_changed):
                        continue
                    block.open()
                    befores = self._write(track, decision, journal)
                    writes += decision.writes
                    if decision.points is not None:
                        writes.append(Write(track.name, AUTOMATION_KEY, len(decision.points) or None, None))
                    touched += bool(decision.writes or decision.points is not None)
                    self._write_tag(track, decision.finish(befores, pass_number=number,
                                                           plan_id=plan.get("id", "")), journal)
                undo = ""
                if block.is_open:
                    self._set_proj_ext("pass", str(number), journal)
                    undo = f"MixBridge: AI pass {number} — {touched} tracks"
                    block.close(undo)
                else:
                    number -= 1
        except BaseException:
            self._roll_back(journal, block)
            raise
        return ApplyReport(
            self.kind, number, undo, tuple(writes),
            overrides=tuple(o for _, d in decisions for o in d.overrides),
            pending=tuple(p for _, d in decisions for p in d.pending),
            unchanged=tuple((d.track, k) for _, d in decisions for k in d.unchanged),
            missing_tracks=tuple(missing), provenance={d.track: d.tag.provenance for _, d in decisions},
            verified=self._verified, unverifiable=self._unverifiable,
            round_trips=self.conn.round_trips - trips0, seconds=time.perf_counter() - started)

    def _proj_ext(self, key: str) -> str:
        return self._c("GetProjExtState", 0, EXT_SECTION, key, "", 64)[4]

    def _set_proj_ext(self, key: str, value: str, journal: _Journal | None = None) -> None:
        old = self._proj_ext(key)
        if journal is not None:
            journal.add("project ext", lambda: self._c("SetProjExtState", 0, EXT_SECTION, key, old))
        self._c("SetProjExtState", 0, EXT_SECTION, key, value)

    def _write_tag(self, track: _Track, tag: TrackTag, journal: _Journal) -> None:
        # pre_ai last: the bounce script renders the pre-AI mix from it (empty deletes the key).
        for key, value in ((PROVENANCE, tag.provenance), (PASS, str(tag.pass_number)), (PLAN, tag.plan_id),
                           (STATE, tag.state_json()), (PRE_AI, tag.pre_ai_text(TRACK_PARAMS))):
            old = self._ext(track.ptr, key)
            if old == value:
                continue
            journal.add("tag", lambda p=track.ptr, k=key, o=old: self._set_ext(p, k, o))
            self._set_ext(track.ptr, key, value)

    # --- reading what is there ------------------------------------------------------------------------

    def _read(self, track: _Track, key: str) -> Any:
        """The current raw value of ``key``, or ``ABSENT`` when its AI FX is not on the track."""
        value = self._current_raw(track, key)
        return ABSENT if value is None else value

    def _current_raw(self, track: _Track, key: str) -> float | None:
        target, param = key.split(".", 1)
        if target == "track":
            return float(self._c("GetMediaTrackInfo_Value", track.ptr, TRACK_PARAMS[param]))
        fx_name = {"eq": m.AI_EQ_NAME, "comp": m.AI_COMP_NAME, "polarity": m.AI_POLARITY_NAME}[target]
        fx = self._find_fx(track.ptr, fx_name)
        if fx < 0:
            return None
        if target == "eq" and param.endswith("_type"):
            band = int(param[4:param.index("_")])
            return float(self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDTYPE{band - 1}", "", 16)[4] or 0)
        return float(self._c("TrackFX_GetParamNormalized", track.ptr, fx, self._param(track.ptr, fx, _fx_param(target, param))))

    # --- writing ----------------------------------------------------------------------------------------

    def _ensure_fx(self, track: _Track, target: str, journal: _Journal) -> int:
        renamed, plugin = {"eq": (m.AI_EQ_NAME, m.REAEQ), "comp": (m.AI_COMP_NAME, m.REACOMP),
                           "polarity": (m.AI_POLARITY_NAME, m.POLARITY_JSFX)}[target]
        fx = self._find_fx(track.ptr, renamed)
        if fx >= 0:
            return fx
        count = int(self._c("TrackFX_GetCount", track.ptr))

        def remove(p=track.ptr, n=count):
            if int(self._c("TrackFX_GetCount", p)) > n:
                self._c("TrackFX_Delete", p, n)
            self._forget_fx()
        journal.add(f"add {renamed}", remove)  # before the call: a cut-off pass still removes it
        fx = int(self._c("TrackFX_AddByName", track.ptr, plugin, False, -1))
        if fx < 0:
            raise TargetNotFound(f"track {track.name!r}: REAPER could not add {plugin!r}")
        self._c("TrackFX_SetNamedConfigParm", track.ptr, fx, "renamed_name", renamed)
        self._fx_index[(track.ptr, renamed)] = fx
        return fx

    def _write(self, track: _Track, decision: TrackDecision, journal: _Journal) -> dict[str, float]:
        """Make the decision's writes, each journalled before it is made; returns the pre-AI raw
        values of keys whose AI FX had to be added first."""
        befores: dict[str, float] = {}
        for w in decision.writes:
            target, param = w.key.split(".", 1)
            if target == "track":
                attr = TRACK_PARAMS[param]
                journal.add(w.key, lambda p=track.ptr, a=attr, b=w.current: self._c("SetMediaTrackInfo_Value", p, a, b))
                self._c("SetMediaTrackInfo_Value", track.ptr, attr, w.raw)
                back = float(self._c("GetMediaTrackInfo_Value", track.ptr, attr))
                if abs(back - w.raw) > RAW_TOLERANCE * max(1.0, abs(w.raw)):
                    raise DawVerifyError(f"track {track.name!r}: {attr} reads back {back}, wrote {w.raw}")
                self._verified += 1
                continue
            fx = self._ensure_fx(track, target, journal)
            if target == "eq" and param.endswith("_type"):
                band = int(param[4:param.index("_")])
                old_type = self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDTYPE{band - 1}", "", 16)[4]
                old_on = self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDENABLED{band - 1}", "", 16)[4]
                journal.add(w.key, lambda p=track.ptr, f=fx, b=band, t=old_type, o=old_on: (
                    self._c("TrackFX_SetNamedConfigParm", p, f, f"BANDTYPE{b - 1}", t),
                    self._c("TrackFX_SetNamedConfigParm", p, f, f"BANDENABLED{b - 1}", o)))
                self._c("TrackFX_SetNamedConfigParm", track.ptr, fx, f"BANDTYPE{band - 1}", str(int(w.raw)))
                self._c("TrackFX_SetNamedConfigParm", track.ptr, fx, f"BANDENABLED{band - 1}",
                        old_on if w.restore else "1")
                if w.current is ABSENT:
                    befores[w.key] = float(old_type or 0)
                continue
            index = self._param(track.ptr, fx, _fx_param(target, param))
            old = w.current if isinstance(w.current, float) else float(
                self._c("TrackFX_GetParamNormalized", track.ptr, fx, index))
            journal.add(w.key, lambda p=track.ptr, f=fx, i=index, o=old: self._c("TrackFX_SetParamNormalized", p, f, i, o))
            self._c("TrackFX_SetParamNormalized", track.ptr, fx, index, w.raw)
            if w.current is ABSENT:
                befores[w.key] = old
            self._verify(track, fx, index, w.key, w.value, w.unit)
        if decision.points is not None:
            self._write_points(track, decision.old_tag.points, decision.points, journal)
        return befores

    def _verify(self, track: _Track, fx: int, index: int, key: str, value: Any, unit: str) -> None:
        """Read REAPER's formatted value back and compare with what the plan asked for."""
        if value is None or unit not in VERIFY_TOLERANCE or key.endswith("_q"):
            self._unverifiable += 1
            return
        text = self._c("TrackFX_GetFormattedParamValue", track.ptr, fx, index, "", 64)[4]
        shown = m.parse_formatted(text)
        expected = float(value)
        tolerance = VERIFY_TOLERANCE[unit] * (max(1.0, abs(expected)) if unit == "Hz" else 1.0)
        if shown is None or abs(shown - expected) > tolerance:
            raise DawVerifyError(f"track {track.name!r}: {key} shows {text!r} after writing {value} {unit}")
        self._verified += 1

    def _volume_envelope(self, track: _Track, journal: _Journal) -> str:
        env = self._c("GetTrackEnvelopeByName", track.ptr, "Volume")
        if not str(env).endswith(NULL_SUFFIX):
            return env
        journal.add("show volume envelope", lambda: self._toggle_volume_envelope(track))
        self._toggle_volume_envelope(track)
        env = self._c("GetTrackEnvelopeByName", track.ptr, "Volume")
        if str(env).endswith(NULL_SUFFIX):
            raise TargetNotFound(f"track {track.name!r}: no volume envelope after showing it")
        return env

    def _toggle_volume_envelope(self, track: _Track) -> None:
        """Run "Track: Toggle track volume envelope visible" on this track alone, keeping the selection."""
        if self._selected is None:
            self._selected = [t.ptr for t in self.tracks() if self._c("IsTrackSelected", t.ptr)]
        selected = self._selected
        for ptr in selected:
            self._c("SetTrackSelected", ptr, False)
        self._c("SetTrackSelected", track.ptr, True)
        self._c("Main_OnCommand", 40406, 0)
        self._c("SetTrackSelected", track.ptr, False)
        for ptr in selected:
            self._c("SetTrackSelected", ptr, True)

    def _write_points(self, track: _Track, old: list[list[float]], points, journal: _Journal) -> None:
        """Replace the envelope points the bridge added last time (and only those) with ``points``."""
        env = self._volume_envelope(track, journal)
        mode = int(self._c("GetEnvelopeScalingMode", env))
        old = [list(p) for p in old]
        points = [list(p) for p in points]

        def undo(env=env, new=points, old=old, mode=mode):
            for t, _ in new:
                self._c("DeleteEnvelopePointRange", env, t - 1e-4, t + 1e-4)
            for t, db in old:
                self._c("InsertEnvelopePoint", env, float(t),
                        float(self._c("ScaleToEnvelopeMode", mode, m.db_to_fader_gain(db))), 0, 0.0, False, True)
            self._c("Envelope_SortPoints", env)
        # Registered before the first write: a pass cut off halfway through the points still
        # knows how to take them out again.
        journal.add("envelope points", undo)
        for t, _ in old:
            self._c("DeleteEnvelopePointRange", env, t - 1e-4, t + 1e-4)
        for t, db in points:
            value = float(self._c("ScaleToEnvelopeMode", mode, m.db_to_fader_gain(db)))
            self._c("InsertEnvelopePoint", env, float(t), value, 0, 0.0, False, True)
        self._c("Envelope_SortPoints", env)

    # --- failure ----------------------------------------------------------------------------------------

    def _roll_back(self, journal: _Journal, block: "_Block") -> bool:
        """Undo this pass's writes, reconnecting once if the connection is gone."""
        if not journal.steps and not block.is_open:
            return True
        for attempt in range(2):
            try:
                if self.conn.dead:
                    self.conn.connect()
                with self.conn.held():
                    for _, undo in reversed(journal.steps):
                        undo()
                    block.close("MixBridge: AI pass rolled back")
                self._forget_fx()
                return True
            except UNREACHABLE:
                if attempt:
                    return False
        return False

    # --- revert and A/B -----------------------------------------------------------------------------------

    def revert(self, only_track: str | None = None) -> ApplyReport:
        """Restore the exact pre-AI values, remove the AI FX and points; leave manual changes alone.

        A revert is the reconciliation of an empty plan (every key the bridge owns goes back), except
        that an AI FX the producer did not tune is deleted outright instead of reset.
        """
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        journal = _Journal()
        block = _Block(self, freeze_ui=False)
        self._forget_fx()
        self._verified = self._unverifiable = 0
        writes: list[Write] = []
        decisions: list[TrackDecision] = []
        try:
            with self.conn.held():
                empty = {"status": "ai", "changes": [], "automation": []}
                for track in self.tracks():
                    if only_track is not None and track.name != only_track:
                        continue
                    tag = self.read_tag(track.ptr)
                    if not tag.written and not tag.points:
                        continue
                    readings = {key: self._read(track, key) for key in tag.written}
                    decision = reconcile_track(track.name, empty, tag, readings, self.capabilities)
                    decisions.append(decision)
                    block.open()
                    kept = {k.split(".", 1)[0] for k in decision.tag.overrides}
                    deleted = {t for t in AI_FX if t not in kept}
                    restores = tuple(w for w in decision.writes if w.key.split(".", 1)[0] not in deleted
                                     and not w.key.endswith("_type"))
                    self._write(track, TrackDecision(track.name, restores, None, (), (), (), decision.tag), journal)
                    writes += restores
                    for target in sorted(deleted):
                        fx = self._find_fx(track.ptr, AI_FX[target][0])
                        if fx >= 0:
                            self._c("TrackFX_Delete", track.ptr, fx)
                            self._forget_fx()
                            writes += [w for w in decision.writes if w.key.startswith(target + ".")]
                    if tag.points:
                        env = self._c("GetTrackEnvelopeByName", track.ptr, "Volume")
                        if not str(env).endswith(NULL_SUFFIX):
                            for t, _ in tag.points:
                                self._c("DeleteEnvelopePointRange", env, t - 1e-4, t + 1e-4)
                        writes.append(Write(track.name, AUTOMATION_KEY, None, None))
                    after = decision.finish()
                    after.written.clear()  # the bridge gives everything up; the producer's overrides stay theirs
                    after.points = []
                    after.provenance = after.derive_provenance()
                    self._write_tag(track, after, journal)
                undo = ""
                if block.is_open:
                    undo = "MixBridge: revert AI" + (f" on {only_track}" if only_track else " pass")
                    block.close(undo)
        except BaseException:
            self._roll_back(journal, block)
            raise
        return ApplyReport(self.kind, 0, undo, tuple(writes), overrides=tuple(o for d in decisions for o in d.overrides),
                           provenance={d.track: ("manual" if d.tag.overrides else "untouched") for d in decisions},
                           verified=self._verified, round_trips=self.conn.round_trips - trips0,
                           seconds=time.perf_counter() - started)

    def provenance(self) -> dict[str, str]:
        """Track name -> ``ai`` / ``manual`` / ``hybrid`` from each track's ``P_EXT`` tag (one read each)."""
        self._forget_fx()
        with self.conn.held():
            return {t.name: self._ext(t.ptr, PROVENANCE) or UNTOUCHED for t in self.tracks()}

    def close(self) -> None:
        self.conn.close()

    def ab_toggle(self, delta_lu: float) -> dict[str, Any]:
        """Toggle between the pre-AI (A) and AI (B) states, level-matched on the master fader.

        A sets every AI-written track parameter back to its pre-AI value and bypasses the AI FX; B
        restores them.  ``delta_lu`` is the AI pass's loudness change estimated from the analysis;
        A plays with the master raised by it (B untouched), so both play at the same loudness.
        Toggling twice restores every value exactly.  Envelope points stay (documented).
        """
        self._forget_fx()
        with self.conn.held():
            state = self._proj_ext("ab") or "B"
            going = "A" if state == "B" else "B"
            self._c("Undo_BeginBlock2", 0)
            master = self._c("GetMasterTrack", 0)
            for track in self.tracks():
                tag = self.read_tag(track.ptr)
                for key, written in tag.written.items():
                    target, param = key.split(".", 1)
                    if key in tag.overrides:
                        continue
                    if target == "track":
                        raw = written.before_raw if going == "A" else written.raw
                        self._c("SetMediaTrackInfo_Value", track.ptr, TRACK_PARAMS[param], raw)
                for name in (m.AI_EQ_NAME, m.AI_COMP_NAME, m.AI_POLARITY_NAME):
                    fx = self._find_fx(track.ptr, name)
                    if fx >= 0:
                        self._c("TrackFX_SetEnabled", track.ptr, fx, going == "B")
            if going == "A":
                before = float(self._c("GetMediaTrackInfo_Value", master, "D_VOL"))
                self._set_proj_ext("ab_master", repr(before))
                self._c("SetMediaTrackInfo_Value", master, "D_VOL", before * m.db_to_fader_gain(delta_lu))
            else:
                saved = self._proj_ext("ab_master")
                if saved:
                    self._c("SetMediaTrackInfo_Value", master, "D_VOL", float(saved))
            self._set_proj_ext("ab", going)
            self._c("Undo_EndBlock2", 0, f"MixBridge: A/B → {going} ({'pre-AI' if going == 'A' else 'AI'})", -1)
        return {"state": going, "compensation_db": round(delta_lu if going == "A" else 0.0, 2)}


class _Block:
    """One undo block (and, for a pass, PreventUIRefresh) opened at most once and closed at most once."""

    def __init__(self, target: ReaperTarget, freeze_ui: bool = True):
        self.target, self.freeze_ui = target, freeze_ui
        self.is_open = False
        self._frozen = False

    def open(self) -> None:
        if self.is_open:
            return
        self.target._c("Undo_BeginBlock2", 0)
        self.is_open = True
        if self.freeze_ui:
            self.target._c("PreventUIRefresh", 1)
            self._frozen = True

    def close(self, name: str) -> None:
        if not self.is_open:
            return
        if self._frozen:
            self.target._c("PreventUIRefresh", -1)
            self._frozen = False
        self.target._c("Undo_EndBlock2", 0, name, -1)
        self.is_open = False


class LazyReaperTarget:
    """:class:`ReaperTarget` that connects on first use and reconnects after a failure.

    Creating it never touches the network.  Every call that finds no live connection tries to
    connect; if REAPER is down the call raises :class:`~bridge.errors.DawUnavailable` and the
    next call tries again.  Not thread-safe on its own (see :mod:`bridge.daw.base`); the lock here
    only keeps a reconnect and a call from interleaving.
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


def _fx_param(target: str, param: str) -> str:
    if target == "eq":
        band = int(param[4:param.index("_")])
        kind = {"freq_hz": "Freq", "gain_db": "Gain", "q": "BW"}[param[param.index("_") + 1:]]
        return m.eq_param_name(kind, band)
    if target == "comp":
        return {"threshold_db": "Threshold", "ratio": "Ratio", "attack_ms": "Attack", "release_ms": "Release",
                "makeup_db": "Wet"}[param]
    if target == "polarity":
        return {"left": "Invert left", "right": "Invert right"}[param]
    raise KeyError(param)


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
