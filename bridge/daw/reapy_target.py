"""Write a MixPlan into REAPER through reapy: one pass, one undo point, all or nothing.

The bridge never touches the session's own FX.  Its EQ and compressor moves go on stock ReaEQ and
ReaComp instances it adds and renames ("AI EQ (MixBridge)", "AI Comp (MixBridge)") and reuses on
later passes.  Track volume, pan, width and polarity are set natively; section automation becomes
points on the track's volume envelope.  Every value is converted by :mod:`bridge.daw.mapping` and
verified by reading REAPER's formatted value back.

Before writing, the pass reads what it wrote last time (:mod:`bridge.daw.tagging`) and compares it
with the session: a parameter the producer changed is theirs from then on, never written again, and
the track becomes ``hybrid``.  Writes are relative to the pre-AI values, so applying the same plan
twice writes nothing the second time.

If REAPER errors or the connection drops mid-pass, everything already written is restored (on a new
connection if need be) and the error is reported: the session ends fully applied or as it was.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import BridgeError, DawTimeout, DawUnavailable, DawVerifyError, TargetNotFound
from . import mapping as m
from .base import PassReport  # noqa: F401 - moved; re-exported for older imports
from .reapy_conn import ReapyConnection
from .tagging import AI, HYBRID, MANUAL, PASS, PLAN, PRE_AI, PREFIX, PROVENANCE, STATE, TrackTag, Written

NULL_SUFFIX = "0x0000000000000000"
EXT_SECTION = "mixbridge"
#: Tolerance for "is this still the value we wrote" on raw/normalized values.
RAW_TOLERANCE = 1e-4
#: Track-native parameters: plan param -> REAPER track attribute.
TRACK_PARAMS = {"volume_db": "D_VOL", "pan": "D_PAN", "width": "D_WIDTH", "polarity": "B_PHASE"}
#: Formatted read-back tolerance per unit.
#: REAPER displays one decimal, so the tolerance covers the display rounding too.
VERIFY_TOLERANCE = {"Hz": 0.01, "dB": 0.15, ":1": 0.06, "ms": 0.6}


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


class ReaperTarget:
    """The reapy target.  ``conn`` must be connected (:meth:`ReapyConnection.connect`)."""

    kind = "reaper"

    def __init__(self, conn: ReapyConnection):
        self.conn = conn
        # Per-pass caches: where the AI FX sit (kept in step with every add and delete), which
        # plug-in each is, each plug-in's parameter layout, and the session's tracks.
        self._fx_index: dict[tuple[str, str], int] = {}
        self._fx_plugin: dict[tuple[str, int], str] = {}
        self._layouts: dict[str, dict[str, int]] = {}
        self._session: list[_Track] | None = None
        self._selected: list[str] | None = None

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

    # --- planning the writes ----------------------------------------------------------------------

    @staticmethod
    def desired(track_plan: dict[str, Any]) -> dict[str, tuple[Any, str]]:
        """Plan changes of one track -> {key: (value, unit)}; keys as in :mod:`tagging`."""
        out: dict[str, tuple[Any, str]] = {}
        for c in track_plan.get("changes", []):
            if c["target"] == "track" and c["param"] == "polarity":
                channel = c.get("channel", "both")
                out["track.polarity" if channel == "both" else f"polarity.{channel}"] = (c["value"], "flag")
            else:
                out[f"{c['target']}.{c['param']}"] = (c["value"], c.get("unit", ""))
        return out

    # --- the pass -------------------------------------------------------------------------------------

    def apply(self, plan: dict[str, Any], reenable: set[str] | None = None) -> PassReport:
        """Apply one plan (the JSON document) as one undo point; see the module docstring."""
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        report = PassReport()
        journal = _Journal()
        block_open = False
        reenable = reenable or set()
        self._forget_fx()
        try:
            with self.conn.held():
                session = self.tracks()
                by_guid = {t.guid: t for t in session}
                by_name: dict[str, _Track] = {}
                for t in session:
                    by_name.setdefault(t.name, t)
                work = []
                for tp in plan.get("tracks", []):
                    track = by_guid.get(tp.get("guid", "")) or by_name.get(tp["name"])
                    if track is None:
                        if tp.get("changes") or tp.get("automation"):
                            report.missing_tracks.append(tp["name"])
                        continue
                    work.append((tp, track))
                previous_pass = self._proj_ext("pass")
                report.pass_number = (int(previous_pass) if previous_pass.isdigit() else 0) + 1
                touched = 0
                for tp, track in work:
                    tag = self.read_tag(track.ptr)
                    seen = len(report.overrides)
                    self._detect_overrides(track, tag, report, reenable)
                    plan_writes = self._plan_track(tp, track, tag, report)
                    if not plan_writes and len(report.overrides) == seen:
                        continue
                    if not block_open:
                        self._c("Undo_BeginBlock2", 0)
                        self._c("PreventUIRefresh", 1)
                        block_open = True
                    if plan_writes:
                        self._write_track(tp, track, tag, plan_writes, journal, report)
                        touched += 1
                    tag.pass_number = report.pass_number
                    tag.plan_id = plan.get("id", "")
                    tag.provenance = tag.derive_provenance()
                    self._write_tag(track, tag, journal)
                for tp, track in work:  # tracks the plan leaves alone are the producer's
                    if tp.get("status") in ("manual", "untouched") and not self._ext(track.ptr, PROVENANCE):
                        if block_open:
                            old = ""
                            self._set_ext(track.ptr, PROVENANCE, MANUAL)
                            journal.add("provenance", lambda p=track.ptr, o=old: self._set_ext(p, PROVENANCE, o))
                if block_open:
                    self._set_proj_ext("pass", str(report.pass_number), journal)
                    report.undo_name = f"MixBridge: AI pass {report.pass_number} — {touched} tracks"
                    self._c("PreventUIRefresh", -1)
                    self._c("Undo_EndBlock2", 0, report.undo_name, -1)
                    block_open = False
        except (BridgeError, Exception) as exc:  # noqa: BLE001 - anything mid-pass must roll back
            report.error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
            report.rolled_back = self._roll_back(journal, block_open)
            report.round_trips = self.conn.round_trips - trips0
            report.seconds = time.perf_counter() - started
            if isinstance(exc, BridgeError):
                exc.report = report  # type: ignore[attr-defined]
                raise
            raise DawUnavailable(f"REAPER refused a call mid-pass ({exc}); the pass was rolled back") from exc
        report.round_trips = self.conn.round_trips - trips0
        report.seconds = time.perf_counter() - started
        return report

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

    def _detect_overrides(self, track: _Track, tag: TrackTag, report: PassReport, reenable: set[str]) -> None:
        """A value that differs from what the bridge wrote was changed by the producer: theirs now."""
        for key, written in tag.written.items():
            if key in tag.overrides:
                if f"{track.name}:{key}" in reenable:
                    del tag.overrides[key]
                continue
            current = self._current_raw(track, key)
            if current is None:
                tag.overrides[key] = {"from": written.value, "to": "removed"}
            elif abs(current - written.raw) > RAW_TOLERANCE * max(1.0, abs(written.raw)):
                tag.overrides[key] = {"from": written.value, "to": _human(key, current, written.before_raw)}
            else:
                continue
            report.overrides.append({"track": track.name, "param": key, **tag.overrides[key]})

    def _plan_track(self, tp: dict[str, Any], track: _Track, tag: TrackTag,
                    report: PassReport) -> dict[str, tuple[float, Any, str, float | None]]:
        """{key: (raw target, plan value, unit, current raw)} to write; skips equal values and overrides."""
        wanted = self.desired(tp)
        if tp.get("status") == "manual":
            tag.opt_out = True
            wanted = {}
        out: dict[str, tuple[float, Any, str]] = {}
        for key, (value, unit) in wanted.items():
            if key in tag.overrides:
                report.pending.append({"track": tp["name"], "param": key, "value": value,
                                       "why": "the producer changed it by hand; re-enable to let the bridge write it"})
                continue
            current = self._current_raw(track, key)
            before = tag.written[key].before_raw if key in tag.written else current
            raw = _to_raw(key, value, before)
            if current is not None and abs(current - raw) <= RAW_TOLERANCE * max(1.0, abs(raw)):
                report.skipped_same += 1
                continue
            out[key] = (raw, value, unit, current)
        # Keys written before but no longer in the plan go back to their pre-AI value.
        for key, written in tag.written.items():
            if key not in wanted and key not in tag.overrides:
                current = self._current_raw(track, key)
                if current is not None and abs(current - written.before_raw) > RAW_TOLERANCE:
                    out[key] = (written.before_raw, None, written.unit, current)
        points = [list(map(float, p)) for a in tp.get("automation", []) for p in a["points"]]
        if points != tag.points and "automation" not in tag.overrides:
            out["automation.volume"] = (0.0, points, "dB", None)
        return out

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

    def _write_track(self, tp: dict[str, Any], track: _Track, tag: TrackTag,
                     writes: dict[str, tuple[float, Any, str, float | None]], journal: _Journal,
                     report: PassReport) -> None:
        for key in sorted(writes, key=_write_order):
            raw, value, unit, before = writes[key]
            if key == "automation.volume":
                self._write_points(track, tag, value, journal)
                report.writes.append({"track": track.name, "param": "automation.volume_db", "points": len(value)})
                continue
            target, param = key.split(".", 1)
            if target == "track":
                attr = TRACK_PARAMS[param]
                journal.add(key, lambda p=track.ptr, a=attr, b=before: self._c("SetMediaTrackInfo_Value", p, a, b))
                self._c("SetMediaTrackInfo_Value", track.ptr, attr, raw)
                back = float(self._c("GetMediaTrackInfo_Value", track.ptr, attr))
                if abs(back - raw) > RAW_TOLERANCE * max(1.0, abs(raw)):
                    raise DawVerifyError(f"track {track.name!r}: {attr} reads back {back}, wrote {raw}")
                report.verified += 1
            else:
                fx = self._ensure_fx(track, target, journal)
                if target == "eq" and param.endswith("_type"):
                    band = int(param[4:param.index("_")])
                    old_type = self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDTYPE{band - 1}", "", 16)[4]
                    old_on = self._c("TrackFX_GetNamedConfigParm", track.ptr, fx, f"BANDENABLED{band - 1}", "", 16)[4]
                    code = str(int(raw))
                    journal.add(key, lambda p=track.ptr, f=fx, b=band, t=old_type, o=old_on: (
                        self._c("TrackFX_SetNamedConfigParm", p, f, f"BANDTYPE{b - 1}", t),
                        self._c("TrackFX_SetNamedConfigParm", p, f, f"BANDENABLED{b - 1}", o)))
                    self._c("TrackFX_SetNamedConfigParm", track.ptr, fx, f"BANDTYPE{band - 1}", code)
                    self._c("TrackFX_SetNamedConfigParm", track.ptr, fx, f"BANDENABLED{band - 1}",
                            "1" if value is not None else old_on)
                    before = float(old_type or 0)
                else:
                    index = self._param(track.ptr, fx, _fx_param(target, param))
                    old = before if before is not None else float(
                        self._c("TrackFX_GetParamNormalized", track.ptr, fx, index))
                    journal.add(key, lambda p=track.ptr, f=fx, i=index, o=old:
                                self._c("TrackFX_SetParamNormalized", p, f, i, o))
                    self._c("TrackFX_SetParamNormalized", track.ptr, fx, index, raw)
                    before = old if before is None else before
                    self._verify(track, fx, index, key, value, unit, report)
            if key in tag.written:
                before = tag.written[key].before_raw
            if value is None:
                tag.written.pop(key, None)
            else:
                tag.written[key] = Written(value, raw, before if before is not None else raw, unit)
            report.writes.append({"track": track.name, "param": key, "value": value, "raw": raw})

    def _verify(self, track: _Track, fx: int, index: int, key: str, value: Any, unit: str,
                report: PassReport) -> None:
        """Read REAPER's formatted value back and compare with what the plan asked for."""
        if value is None or unit not in VERIFY_TOLERANCE or key.endswith("_q"):
            report.unverifiable += 1
            return
        text = self._c("TrackFX_GetFormattedParamValue", track.ptr, fx, index, "", 64)[4]
        shown = m.parse_formatted(text)
        expected = float(value)
        tolerance = VERIFY_TOLERANCE[unit] * (max(1.0, abs(expected)) if unit == "Hz" else 1.0)
        if shown is None or abs(shown - expected) > tolerance:
            raise DawVerifyError(f"track {track.name!r}: {key} shows {text!r} after writing {value} {unit}")
        report.verified += 1

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

    def _write_points(self, track: _Track, tag: TrackTag, points: list[list[float]], journal: _Journal) -> None:
        env = self._volume_envelope(track, journal)
        mode = int(self._c("GetEnvelopeScalingMode", env))
        old = list(tag.points)

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
        for t, _ in old:  # remove what the bridge added last time, and only that
            self._c("DeleteEnvelopePointRange", env, t - 1e-4, t + 1e-4)
        for t, db in points:
            value = float(self._c("ScaleToEnvelopeMode", mode, m.db_to_fader_gain(db)))
            self._c("InsertEnvelopePoint", env, float(t), value, 0, 0.0, False, True)
        self._c("Envelope_SortPoints", env)
        tag.points = points

    # --- failure ----------------------------------------------------------------------------------------

    def _roll_back(self, journal: _Journal, block_open: bool) -> bool:
        """Undo this pass's writes, reconnecting once if the connection is gone."""
        if not journal.steps and not block_open:
            return True
        for attempt in range(2):
            try:
                if self.conn.dead:
                    self.conn.connect()
                with self.conn.held():
                    for _, undo in reversed(journal.steps):
                        undo()
                    if block_open:
                        self._c("PreventUIRefresh", -1)
                        self._c("Undo_EndBlock2", 0, "MixBridge: AI pass rolled back", -1)
                self._forget_fx()
                return True
            except (DawUnavailable, DawTimeout, ConnectionError, OSError):
                if attempt:
                    return False
        return False

    # --- revert and A/B -----------------------------------------------------------------------------------

    def revert(self, only_track: str | None = None) -> PassReport:
        """Restore the exact pre-AI values, remove the AI FX and points; leave manual changes alone."""
        started = time.perf_counter()
        trips0 = self.conn.round_trips
        report = PassReport()
        journal = _Journal()
        block_open = False
        self._forget_fx()
        try:
            with self.conn.held():
                for track in self.tracks():
                    if only_track is not None and track.name != only_track:
                        continue
                    tag = self.read_tag(track.ptr)
                    if not tag.written and not tag.points:
                        continue
                    self._detect_overrides(track, tag, report, set())
                    if not block_open:
                        self._c("Undo_BeginBlock2", 0)
                        block_open = True
                    kept_fx: set[str] = set()
                    for key, written in sorted(tag.written.items(), key=lambda kv: _write_order(kv[0])):
                        if key in tag.overrides:
                            kept_fx.add(key.split(".", 1)[0])
                            continue
                        target, param = key.split(".", 1)
                        if target == "track":
                            attr = TRACK_PARAMS[param]
                            old = float(self._c("GetMediaTrackInfo_Value", track.ptr, attr))
                            self._c("SetMediaTrackInfo_Value", track.ptr, attr, written.before_raw)
                            journal.add(key, lambda p=track.ptr, a=attr, o=old: self._c("SetMediaTrackInfo_Value", p, a, o))
                        report.writes.append({"track": track.name, "param": key, "restored": written.before_raw})
                    for target, name in (("eq", m.AI_EQ_NAME), ("comp", m.AI_COMP_NAME),
                                         ("polarity", m.AI_POLARITY_NAME)):
                        fx = self._find_fx(track.ptr, name)
                        if fx < 0:
                            continue
                        if target in kept_fx:
                            # The producer tuned this FX: keep it, reset only what is still ours.
                            for key, written in tag.written.items():
                                if key.startswith(target + ".") and key not in tag.overrides and not key.endswith("_type"):
                                    index = self._param(track.ptr, fx, _fx_param(target, key.split(".", 1)[1]))
                                    self._c("TrackFX_SetParamNormalized", track.ptr, fx, index, written.before_raw)
                            continue
                        self._c("TrackFX_Delete", track.ptr, fx)
                        self._forget_fx()
                    if tag.points:
                        env = self._c("GetTrackEnvelopeByName", track.ptr, "Volume")
                        if not str(env).endswith(NULL_SUFFIX):
                            for t, _ in tag.points:
                                self._c("DeleteEnvelopePointRange", env, t - 1e-4, t + 1e-4)
                    new = TrackTag(provenance=MANUAL, overrides=tag.overrides)
                    self._write_tag(track, new, journal)
                if block_open:
                    report.undo_name = "MixBridge: revert AI" + (f" on {only_track}" if only_track else " pass")
                    self._c("Undo_EndBlock2", 0, report.undo_name, -1)
                    block_open = False
        except Exception as exc:  # noqa: BLE001
            report.error = str(exc)
            report.rolled_back = self._roll_back(journal, block_open)
            raise
        report.round_trips = self.conn.round_trips - trips0
        report.seconds = time.perf_counter() - started
        return report

    def provenance(self) -> dict[str, str]:
        """Track name -> ``ai`` / ``manual`` / ``hybrid`` from each track's ``P_EXT`` tag (one read each)."""
        self._forget_fx()
        with self.conn.held():
            return {t.name: self._ext(t.ptr, PROVENANCE) or MANUAL for t in self.tracks()}

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


def _human(key: str, raw: float, before: float) -> Any:
    """A raw value in plan units, for the notes ("the producer moved it from -3.0 to -1.5 dB")."""
    if key == "track.volume_db":
        return round(m.fader_gain_to_db(raw / before) if before else m.fader_gain_to_db(raw), 2)
    if key.startswith("track.") or key.endswith("_type"):
        return round(raw, 4)
    return m.fx_plan_value(key, raw)


def _write_order(key: str) -> tuple[int, str]:
    """Band types before their values (a type change can re-scale REAPER's display)."""
    return (0 if key.endswith("_type") else 1, key)
