"""The in-memory REAPER project: pure data, JSON load/dump and undo snapshots.

Nothing here knows about reapy, sockets or the ReaScript calling convention;
``api.py`` layers REAPER's function semantics on top, and a future OSC surface
or stem renderer would use the same objects.

Pointers
--------
Every object REAPER hands out a pointer for (project, track, envelope, track
GUID) carries an ``address`` allocated once from :class:`AddressAllocator` and
never reused. Undo snapshots deep-copy objects *with* their addresses, so a
track that survives an undo keeps its ``MediaTrack*``; a track created after the
snapshot disappears and its pointer becomes invalid, as in REAPER.

Mutable model objects compare by identity (``eq=False``): two tracks with equal
fields are still two tracks, and ``list.index``/``remove`` must find *this* one.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import fx_layouts
from .fader_scaling import SCALING_FADER, SCALING_NONE

GUID_RE = re.compile(r"^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$")

#: Built-in track envelopes: chunk name -> (envelope name, default scaling mode).
#: Chunk names from reaper.md 5; the names from reaper.md 2.4.
TRACK_ENVELOPES: dict[str, tuple[str, int]] = {
    "<VOLENV2": ("Volume", SCALING_FADER),
    "<VOLENV": ("Volume (Pre-FX)", SCALING_FADER),
    "<VOLENV3": ("Trim Volume", SCALING_FADER),
    "<PANENV2": ("Pan", SCALING_NONE),
    "<WIDTHENV2": ("Width", SCALING_NONE),
    "<MUTEENV": ("Mute", SCALING_NONE),
}
#: Chunk name of FX-parameter envelopes.
FX_ENVELOPE_CHUNK = "<PARMENV"


def new_guid() -> str:
    """A REAPER-style GUID string ``{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}``."""
    return "{" + str(uuid.uuid4()).upper() + "}"


class AddressAllocator:
    """Hands out fake, never-reused 64-bit object addresses."""

    def __init__(self, start: int = 0x0000_0000_1A00_0000, step: int = 0x40):
        self._counter = itertools.count(start, step)

    def __call__(self) -> int:
        return next(self._counter)


@dataclass(slots=True, eq=False)
class EnvelopePoint:
    """One envelope point; ``value`` is the raw stored value (see scaling mode)."""

    time_s: float
    value: float
    shape: int = 0
    tension: float = 0.0
    selected: bool = False


@dataclass(slots=True, eq=False)
class Envelope:
    """A track or FX-parameter envelope.

    An envelope object exists (``GetTrackEnvelopeByName`` returns it) once it has been
    shown; a REAPER volume envelope exists only after that (reaper.md 2.4).  ``active``
    is REAPER's "active" state (``GetSetEnvelopeInfo_String(env, "ACTIVE", ...)``, SDK
    header): an inactive envelope keeps its points but does not play.
    """

    address: int
    guid: str
    chunk_name: str
    name: str
    scaling_mode: int
    visible: bool = True
    points: list[EnvelopePoint] = field(default_factory=list)
    active: bool = True
    #: For FX-parameter envelopes: (FX GUID, parameter index).
    fx_param: tuple[str, int] | None = None

    def sort_points(self) -> None:
        """Sort by time; stable, so equal times keep insertion order."""
        self.points.sort(key=lambda point: point.time_s)


@dataclass(slots=True, eq=False)
class FxInstance:
    """One FX in a track's chain."""

    guid: str
    plugin: fx_layouts.PluginSpec
    params_raw: list[float]
    renamed: str = ""
    enabled: bool = True
    named_config: dict[str, str] = field(default_factory=dict)
    #: FX-parameter envelopes by parameter index.
    envelopes: dict[int, Envelope] = field(default_factory=dict)

    @classmethod
    def create(cls, plugin: fx_layouts.PluginSpec) -> FxInstance:
        """A fresh instance with the plug-in's defaults."""
        return cls(guid=new_guid(), plugin=plugin,
                   params_raw=[p.default_raw for p in plugin.params],
                   named_config=dict(plugin.named_config_defaults))

    @property
    def display_name(self) -> str:
        """Name shown in the chain: the instance rename if any, else the plug-in name."""
        return self.renamed or self.plugin.name

    def set_raw(self, index: int, raw: float) -> None:
        self.params_raw[index] = self.plugin.params[index].clamp_raw(raw)

    def get_normalized(self, index: int) -> float:
        return self.plugin.params[index].to_normalized(self.params_raw[index])

    def set_normalized(self, index: int, normalized: float) -> None:
        spec = self.plugin.params[index]
        self.params_raw[index] = spec.clamp_raw(spec.from_normalized(normalized))

    def param_name(self, index: int) -> str:
        """The name REAPER shows for parameter ``index`` now (ReaEQ's follow the band types)."""
        return self.plugin.param_name(index, self.named_config)

    def param_index(self, ref: int | str) -> int:
        """Parameter index from an index or an exact parameter name (first match).

        A name is looked up among the names shown now, then among the default-table names
        (``"BW-Low Shelf"``), so test projects and control commands can use either.
        """
        if isinstance(ref, int):
            if not 0 <= ref < len(self.params_raw):
                raise IndexError(f"{self.plugin.name} has no parameter {ref}")
            return ref
        for index in range(len(self.params_raw)):
            if self.param_name(index) == ref:
                return index
        for index, spec in enumerate(self.plugin.params):
            if spec.name == ref:
                return index
        raise KeyError(f"{self.plugin.name} has no parameter named {ref!r}")


@dataclass(slots=True, eq=False)
class Track:
    """A track (or the master track when ``is_master``)."""

    address: int
    guid_address: int
    guid: str
    name: str = ""
    vol: float = 1.0
    pan: float = 0.0
    width: float = 1.0
    phase_inverted: bool = False
    mute: bool = False
    solo: int = 0
    selected: bool = False
    fx_enabled: bool = True
    fxs: list[FxInstance] = field(default_factory=list)
    #: Active built-in envelopes by chunk name, in creation order.
    envelopes: dict[str, Envelope] = field(default_factory=dict)
    #: ``P_EXT:<key>`` values.
    ext: dict[str, str] = field(default_factory=dict)
    is_master: bool = False
    #: Audio file the simulator renders this track's stem from (render.py); "" = silence.
    source: str = ""

    def all_envelopes(self) -> Iterator[Envelope]:
        """Built-in envelopes, then FX-parameter envelopes, in chain order."""
        yield from self.envelopes.values()
        for fx in self.fxs:
            yield from fx.envelopes.values()


@dataclass(slots=True, eq=False)
class Marker:
    """A marker or region; ``number`` is the displayed index REAPER calls markrgnindexnumber."""

    number: int
    is_region: bool
    pos_s: float
    end_s: float = 0.0
    name: str = ""
    color: int = 0


@dataclass(slots=True)
class ProjectState:
    """Everything an undo point restores."""

    tracks: list[Track]
    master: Track
    markers: list[Marker]
    #: ``SetProjExtState`` data: extname -> key -> value.
    proj_ext: dict[str, dict[str, str]]


@dataclass(slots=True)
class UndoEntry:
    """One named undo point with the states before and after it."""

    name: str
    flags: int
    before: ProjectState
    after: ProjectState


class UndoHistory:
    """REAPER-style undo: named points holding project-state snapshots.

    Nested ``Undo_BeginBlock``/``Undo_EndBlock`` pairs collapse into the outermost
    block, whose end name is the one recorded. Undo restores the snapshot taken
    when the block began; redo restores the one taken when it ended.
    """

    def __init__(self) -> None:
        self.entries: list[UndoEntry] = []
        self.redo_entries: list[UndoEntry] = []
        self.depth = 0
        self._before: ProjectState | None = None

    def begin(self, state: ProjectState) -> None:
        if self.depth == 0:
            self._before = copy.deepcopy(state)
        self.depth += 1

    def end(self, name: str, flags: int, state: ProjectState) -> bool:
        """Close one block level; returns True when the outermost block closed."""
        if self.depth == 0:
            raise RuntimeError("Undo_EndBlock without a matching Undo_BeginBlock")
        self.depth -= 1
        if self.depth:
            return False
        assert self._before is not None
        self.record(name, flags, self._before, state)
        self._before = None
        return True

    def record(self, name: str, flags: int, before: ProjectState, after: ProjectState) -> None:
        self.entries.append(UndoEntry(name, flags, before, copy.deepcopy(after)))
        self.redo_entries.clear()

    def last_name(self) -> str | None:
        return self.entries[-1].name if self.entries else None

    def next_redo_name(self) -> str | None:
        return self.redo_entries[-1].name if self.redo_entries else None

    def undo(self) -> ProjectState | None:
        """Pop the last point; returns the state to restore, or None if nothing to undo."""
        if not self.entries:
            return None
        entry = self.entries.pop()
        self.redo_entries.append(entry)
        return copy.deepcopy(entry.before)

    def redo(self) -> ProjectState | None:
        if not self.redo_entries:
            return None
        entry = self.redo_entries.pop()
        self.entries.append(entry)
        return copy.deepcopy(entry.after)


class Project:
    """The one open project.

    Parameters
    ----------
    name : str
        File name ``GetProjectName`` reports (``""`` for an unsaved project).
    path : str
        Full path ``EnumProjects`` reports.
    """

    def __init__(self, name: str = "", path: str = "", allocate: AddressAllocator | None = None) -> None:
        self.allocate = allocate or AddressAllocator()
        self.address = self.allocate()
        self.name = name
        self.path = path
        self.state = ProjectState(tracks=[], master=self.new_track(is_master=True),
                                  markers=[], proj_ext={})
        self.undo = UndoHistory()
        self.console: list[str] = []
        self.ui_refresh_prevent_count = 0

    # -- construction -----------------------------------------------------

    def new_track(self, name: str = "", guid: str | None = None,
                  is_master: bool = False) -> Track:
        return Track(address=self.allocate(), guid_address=self.allocate(),
                     guid=guid or new_guid(), name=name, is_master=is_master)

    def new_envelope(self, chunk_name: str) -> Envelope:
        name, scaling_mode = TRACK_ENVELOPES[chunk_name]
        return Envelope(address=self.allocate(), guid=new_guid(), chunk_name=chunk_name,
                        name=name, scaling_mode=scaling_mode)

    def new_fx_envelope(self, fx: FxInstance, param_index: int) -> Envelope:
        # REAPER's naming of FX envelopes is not in reaper.md; the name is left
        # empty and GetEnvelopeName refuses it (see api.py).
        return Envelope(address=self.allocate(), guid=new_guid(),
                        chunk_name=FX_ENVELOPE_CHUNK, name="",
                        scaling_mode=SCALING_NONE, fx_param=(fx.guid, param_index))

    # -- lookups ----------------------------------------------------------

    @property
    def tracks(self) -> list[Track]:
        return self.state.tracks

    @property
    def master(self) -> Track:
        return self.state.master

    @property
    def markers(self) -> list[Marker]:
        return self.state.markers

    def all_tracks(self) -> Iterator[Track]:
        """Master first, then tracks in order."""
        yield self.state.master
        yield from self.state.tracks

    def track_at(self, address: int) -> Track | None:
        return next((t for t in self.all_tracks() if t.address == address), None)

    def track_with_guid_address(self, address: int) -> Track | None:
        return next((t for t in self.all_tracks() if t.guid_address == address), None)

    def envelope_at(self, address: int) -> tuple[Track, Envelope] | None:
        for track in self.all_tracks():
            for envelope in track.all_envelopes():
                if envelope.address == address:
                    return track, envelope
        return None

    def find_track(self, ref: int | str) -> Track:
        """Resolve a control-channel track reference.

        ``ref`` is a 0-based index, ``"master"``, a GUID ``"{...}"`` or a track name.
        """
        if isinstance(ref, int):
            if not 0 <= ref < len(self.tracks):
                raise IndexError(f"no track at index {ref}")
            return self.tracks[ref]
        if ref == "master":
            return self.master
        for track in self.tracks:
            if track.guid == ref.upper() or track.name == ref:
                return track
        raise KeyError(f"no track named or with GUID {ref!r}")

    # -- undo -------------------------------------------------------------

    def snapshot(self) -> ProjectState:
        return copy.deepcopy(self.state)

    def replace_with(self, other: Project) -> None:
        """Become ``other`` (the control command ``load``): state, undo history, counters."""
        self.name, self.path = other.name, other.path
        self.state, self.undo = other.state, other.undo
        self.console, self.ui_refresh_prevent_count = other.console, other.ui_refresh_prevent_count

    def restore(self, state: ProjectState) -> None:
        self.state = state

    # -- JSON -------------------------------------------------------------

    @classmethod
    def from_json(cls, data: dict[str, Any], allocate: AddressAllocator | None = None) -> Project:
        """Build a project from the file format documented in the package docstring.

        ``allocate``: the allocator of a project this one replaces (the control command
        ``load``), so no pointer of the old project is ever reused.
        """
        _check_keys("project", data, {"name", "path", "tracks", "master", "markers",
                                      "regions", "proj_ext"}, _DUMP_ONLY_PROJECT_KEYS)
        project = cls(name=data.get("name", ""), path=data.get("path", ""), allocate=allocate)
        if "master" in data:
            _load_track_fields(project, project.master, data["master"], is_master=True)
        for item in data.get("tracks", []):
            track = project.new_track()
            _load_track_fields(project, track, item, is_master=False)
            project.tracks.append(track)
        for item in data.get("markers", []):
            _check_keys("marker", item, {"pos", "name", "number", "color"}, {"is_region", "end"})
            project.markers.append(Marker(
                number=item.get("number", next_marker_number(project.markers, False)),
                is_region=False, pos_s=float(item["pos"]), name=item.get("name", ""),
                color=int(item.get("color", 0))))
        for item in data.get("regions", []):
            _check_keys("region", item, {"start", "end", "name", "number", "color"}, {"is_region"})
            project.markers.append(Marker(
                number=item.get("number", next_marker_number(project.markers, True)),
                is_region=True, pos_s=float(item["start"]), end_s=float(item["end"]),
                name=item.get("name", ""), color=int(item.get("color", 0))))
        project.state.proj_ext = {section: dict(values) for section, values
                                  in data.get("proj_ext", {}).items()}
        return project

    def to_json(self) -> dict[str, Any]:
        """Dump the state; the result loads back with :meth:`from_json`."""
        return {
            "name": self.name,
            "path": self.path,
            "master": _dump_track(self.master),
            "tracks": [_dump_track(track) for track in self.tracks],
            "markers": [{"number": m.number, "pos": m.pos_s, "name": m.name, "color": m.color}
                        for m in sorted_markers(self.markers) if not m.is_region],
            "regions": [{"number": m.number, "start": m.pos_s, "end": m.end_s,
                         "name": m.name, "color": m.color}
                        for m in sorted_markers(self.markers) if m.is_region],
            "proj_ext": copy.deepcopy(self.state.proj_ext),
            "undo": {
                "history": [{"name": e.name, "flags": e.flags} for e in self.undo.entries],
                "redo": [{"name": e.name, "flags": e.flags}
                         for e in reversed(self.undo.redo_entries)],
                "open_block_depth": self.undo.depth,
            },
            "console": list(self.console),
            "ui_refresh_prevent_count": self.ui_refresh_prevent_count,
        }


def sorted_markers(markers: list[Marker]) -> list[Marker]:
    """Markers and regions in REAPER's enumeration order: by position, then number."""
    return sorted(markers, key=lambda m: (m.pos_s, m.is_region, m.number))


def next_marker_number(markers: list[Marker], is_region: bool) -> int:
    """Lowest unused displayed number >= 1 among markers or among regions."""
    used = {m.number for m in markers if m.is_region == is_region}
    return next(n for n in itertools.count(1) if n not in used)


# -- JSON helpers -----------------------------------------------------------

_DUMP_ONLY_PROJECT_KEYS = {"undo", "console", "ui_refresh_prevent_count", "ext_state",
                           "armed_faults"}
_TRACK_KEYS = {"name", "guid", "vol", "pan", "width", "phase", "mute", "solo",
               "selected", "fx_enabled", "fx", "envelopes", "ext", "source"}
_DUMP_ONLY_TRACK_KEYS = {"address", "vol_db"}


def _check_keys(what: str, data: dict[str, Any], allowed: set[str],
                ignored: set[str] = frozenset()) -> None:
    # A typo in a test project must fail loudly, not silently become a default.
    unknown = set(data) - allowed - ignored
    if unknown:
        raise ValueError(f"unknown {what} keys {sorted(unknown)}; allowed {sorted(allowed)}")


def _guid_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    if not GUID_RE.match(value.upper()):
        raise ValueError(f"bad GUID {value!r}; expected {{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}")
    return value.upper()


def _load_track_fields(project: Project, track: Track, data: dict[str, Any],
                       is_master: bool) -> None:
    _check_keys("track", data, _TRACK_KEYS, _DUMP_ONLY_TRACK_KEYS)
    if is_master and data.get("name"):
        raise ValueError("the master track has no name")
    if "guid" in data:
        track.guid = _guid_or_none(data["guid"])
    track.name = data.get("name", "")
    track.vol = float(data.get("vol", 1.0))
    track.pan = float(data.get("pan", 0.0))
    track.width = float(data.get("width", 1.0))
    track.phase_inverted = bool(data.get("phase", False))
    track.mute = bool(data.get("mute", False))
    track.solo = int(data.get("solo", 0))
    track.selected = bool(data.get("selected", False))
    track.fx_enabled = bool(data.get("fx_enabled", True))
    track.ext = {str(k): str(v) for k, v in data.get("ext", {}).items()}
    track.source = str(data.get("source", ""))
    for fx_data in data.get("fx", []):
        track.fxs.append(_load_fx(project, fx_data))
    for env_data in data.get("envelopes", []):
        _load_envelope(project, track, env_data)


def _load_fx(project: Project, data: dict[str, Any]) -> FxInstance:
    _check_keys("fx", data, {"name", "renamed", "enabled", "params", "config",
                             "guid", "envelopes"})
    fx = FxInstance.create(fx_layouts.plugin_by_name(data["name"]))
    if "guid" in data:
        fx.guid = _guid_or_none(data["guid"])
    fx.renamed = data.get("renamed", "")
    fx.enabled = bool(data.get("enabled", True))
    for key, value in data.get("config", {}).items():
        if key not in fx.plugin.named_config_defaults:
            raise ValueError(f"{fx.plugin.name} has no named config {key!r}")
        fx.named_config[key] = str(value)
    params = data.get("params", {})
    # Params come as {"name or index": {"raw"|"normalized": x}} or as the dump's list.
    items = (((p["index"], p) for p in params) if isinstance(params, list)
             else ((int(k) if k.isdigit() else k, v) for k, v in params.items()))
    for ref, value in items:
        index = fx.param_index(ref)
        if "raw" in value:
            fx.set_raw(index, float(value["raw"]))
        elif "normalized" in value:
            fx.set_normalized(index, float(value["normalized"]))
        else:
            raise ValueError(f"param {ref!r} needs 'raw' or 'normalized'")
    for env_data in data.get("envelopes", []):
        _check_keys("fx envelope", env_data, {"param", "points", "visible"}, {"address"})
        envelope = project.new_fx_envelope(fx, fx.param_index(env_data["param"]))
        envelope.visible = bool(env_data.get("visible", True))
        envelope.points = [_load_point(p) for p in env_data.get("points", [])]
        fx.envelopes[envelope.fx_param[1]] = envelope
    return fx


def _load_envelope(project: Project, track: Track, data: dict[str, Any]) -> None:
    _check_keys("envelope", data, {"name", "chunk", "visible", "scaling_mode", "points", "active"},
                {"address"})
    chunk = data.get("chunk") or next(
        (c for c, (name, _) in TRACK_ENVELOPES.items() if name == data.get("name")), None)
    if chunk not in TRACK_ENVELOPES:
        raise ValueError(f"unknown track envelope {data!r}; known {TRACK_ENVELOPES}")
    envelope = project.new_envelope(chunk)
    envelope.visible = bool(data.get("visible", True))
    envelope.active = bool(data.get("active", True))
    envelope.scaling_mode = int(data.get("scaling_mode", envelope.scaling_mode))
    envelope.points = [_load_point(p) for p in data.get("points", [])]
    envelope.sort_points()
    track.envelopes[chunk] = envelope


def _load_point(data: dict[str, Any]) -> EnvelopePoint:
    _check_keys("envelope point", data, {"time", "value", "shape", "tension", "selected"})
    return EnvelopePoint(time_s=float(data["time"]), value=float(data["value"]),
                         shape=int(data.get("shape", 0)),
                         tension=float(data.get("tension", 0.0)),
                         selected=bool(data.get("selected", False)))


def _dump_point(point: EnvelopePoint) -> dict[str, Any]:
    return {"time": point.time_s, "value": point.value, "shape": point.shape,
            "tension": point.tension, "selected": point.selected}


def _dump_track(track: Track) -> dict[str, Any]:
    data: dict[str, Any] = {
        "address": f"0x{track.address:016X}",
        "guid": track.guid,
        "vol": track.vol,
        # Convenience for test assertions; ignored on load.
        "vol_db": None if track.vol <= 0 else 20.0 * math.log10(track.vol),
        "pan": track.pan, "width": track.width, "phase": track.phase_inverted,
        "mute": track.mute, "solo": track.solo, "selected": track.selected,
        "fx_enabled": track.fx_enabled,
        "fx": [_dump_fx(fx) for fx in track.fxs],
        "envelopes": [{"name": e.name, "chunk": e.chunk_name, "visible": e.visible,
                       "active": e.active, "scaling_mode": e.scaling_mode,
                       "points": [_dump_point(p) for p in e.points]}
                      for e in track.envelopes.values()],
        "ext": dict(track.ext),
        "source": track.source,
    }
    if not track.is_master:
        data["name"] = track.name
    return data


def _dump_fx(fx: FxInstance) -> dict[str, Any]:
    params = []
    for index, spec in enumerate(fx.plugin.params):
        raw = fx.params_raw[index]
        params.append({"index": index, "name": fx.param_name(index), "raw": raw,
                       "normalized": spec.to_normalized(raw),
                       "formatted": spec.format_raw(raw) if spec.format_raw else None})
    return {
        "name": fx.plugin.name, "guid": fx.guid, "renamed": fx.renamed,
        "enabled": fx.enabled, "params": params, "config": dict(fx.named_config),
        "envelopes": [{"param": index, "visible": e.visible,
                       "points": [_dump_point(p) for p in e.points]}
                      for index, e in fx.envelopes.items()],
    }
