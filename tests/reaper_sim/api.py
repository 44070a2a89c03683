"""The RPR function table: REAPER's ReaScript semantics over the in-memory project.

Each modelled function is a method of :class:`ReaScriptApi` decorated with its C
signature as ``reaper_plugin_functions.h`` spells it (reaper.md 2). The
decorator reproduces what REAPER's generated Python wrapper (``reaper_python``,
seen in 0xf0f/reaper-api:reaper_python.py) does with that signature, so method
bodies deal only in model objects:

* arguments are coerced like ``ctypes`` would (an ``int`` parameter rejects
  ``1.5`` with ``TypeError``; ``const char*`` takes ``str(value)``);
* a function with any output parameter (``char*`` buffer, ``int*``,
  ``double*``, ``bool*``, ``const char**``) returns ``(retval, *args)`` with the
  outputs filled in, or just the arguments when it returns ``void``;
* ``bool`` results come back as ``int`` (the wrapper's ``c_byte`` restype);
  ``bool*`` outputs as ``int``;
* a string written into ``char* buf`` is cut to ``buf_sz - 1`` characters;
* ``const char**`` outputs are echoed *as passed*: the generated wrapper hands
  them to ``rpr_packp`` and returns the caller's argument, so
  ``EnumProjectMarkers*`` never returns marker names to Python;
* a ``const char*`` result that is NULL raises ``AttributeError`` exactly as the
  wrapper's ``str(r.decode())`` does (``Undo_CanUndo2`` with nothing to undo;
  reapy's ``Project.can_undo`` relies on it).

Pointers
--------
``(MediaTrack*)0x...``/``(TrackEnvelope*)0x...`` strings resolve to model
objects. A NULL object argument makes the function return its zero value (0,
0.0, False, a NULL pointer; outputs untouched), as REAPER's API does. A
dangling pointer, a pointer of the wrong type or a non-pointer raises
:class:`InvalidPointerError` instead: real REAPER would dereference garbage or
silently treat it as NULL, and either way the caller has a bug. ``ReaProject*``
accepts ``0``/``None``/NULL for the current project, as REAPER documents.

Strictness
----------
Anything not modelled raises :class:`UnmodelledCall` (an ``AttributeError``
subclass, so ``hasattr`` on the server-side ``reapy.reascript_api`` stays
truthful) naming the function, parameter name or action; it never silently
succeeds.
"""

from __future__ import annotations

import collections
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

from . import fader_scaling, fx_layouts, render
from .pointers import format_pointer, null_pointer, parse_pointer
from .project import (GUID_RE, EnvelopePoint, FxInstance, Marker, Project, Track,
                      next_marker_number, sorted_markers)


class UnmodelledCall(AttributeError):
    """A function, parameter name or action the simulator does not model."""


class InvalidPointerError(ValueError):
    """A pointer argument that is dangling, mistyped or not a pointer."""


# --------------------------------------------------------------------------
# Signature handling (what REAPER's generated Python wrapper does)
# --------------------------------------------------------------------------

_HANDLE_TYPES = {"MediaTrack*", "TrackEnvelope*", "ReaProject*"}
_OUTPUT_TYPES = {"char*", "int*", "double*", "bool*", "const char**"}
_SIGNATURE_RE = re.compile(r"^\s*(.+?)\s*\b(\w+)\((.*)\)\s*$")


@dataclass(frozen=True, slots=True)
class CParam:
    """One C parameter: ``ctype`` as in the SDK header, and its name."""

    ctype: str
    name: str

    @property
    def is_output(self) -> bool:
        return self.ctype in _OUTPUT_TYPES


@dataclass(frozen=True, slots=True)
class CSignature:
    """A parsed C signature such as ``int CountTracks(ReaProject* proj)``."""

    ret: str
    name: str
    params: tuple[CParam, ...]

    @classmethod
    def parse(cls, text: str) -> CSignature:
        match = _SIGNATURE_RE.match(text)
        if match is None:
            raise ValueError(f"bad signature {text!r}")
        ret, name, params_text = match.groups()
        params = []
        for chunk in filter(None, (c.strip() for c in params_text.split(","))):
            ctype, pname = chunk.rsplit(" ", 1)
            params.append(CParam(ctype.replace(" *", "*").strip(), pname))
        return cls(ret.replace(" *", "*"), name, tuple(params))

    @property
    def returns_tuple(self) -> bool:
        return any(p.is_output for p in self.params)


def rpr(signature: str) -> Callable[[Callable], Callable]:
    """Mark a :class:`ReaScriptApi` method as the body of an RPR function."""
    parsed = CSignature.parse(signature)

    def mark(body: Callable) -> Callable:
        if body.__name__ != parsed.name:
            raise ValueError(f"{body.__name__} declared as {parsed.name}")
        body.rpr_signature = parsed
        return body
    return mark


class _Null:
    """Marker for a NULL object argument."""


NULL = _Null()


def _coerce_int(value: Any, where: str) -> int:
    if isinstance(value, int):  # bool is an int, as for ctypes.c_int
        return int(value)
    raise TypeError(f"{where}: int expected, got {type(value).__name__} {value!r}")


def _coerce_double(value: Any, where: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"{where}: float expected, got {type(value).__name__} {value!r}")


def _zero_result(ctype: str) -> Any:
    if ctype in ("int", "bool"):
        return 0
    if ctype == "double":
        return 0.0
    return None  # pointers, const char*, void


class RprFunction:
    """Callable published as ``reaper_python.RPR_<name>``."""

    def __init__(self, api: ReaScriptApi, signature: CSignature, body: Callable):
        self.api = api
        self.signature = signature
        self.body = body
        self.__name__ = "RPR_" + signature.name
        self.__qualname__ = self.__name__
        self.__doc__ = f"reaper_sim model of {signature.ret} {signature.name}(...)"

    def __call__(self, *args: Any) -> Any:
        sig = self.signature
        self.api.before_call(sig.name, args)
        if len(args) != len(sig.params):
            raise TypeError(f"RPR_{sig.name}() takes {len(sig.params)} positional "
                            f"arguments but {len(args)} were given")
        converted = [self._convert(p, a) for p, a in zip(sig.params, args)]
        if any(c is NULL for c in converted):
            result = self._null_result()
        else:
            result = self.body(self.api, *converted)
        return self._build(args, result)

    def _convert(self, param: CParam, value: Any) -> Any:
        where = f"{self.signature.name}({param.name})"
        ctype = param.ctype
        if ctype in _HANDLE_TYPES:
            return self.api.resolve_handle(ctype, value, where)
        if ctype in ("int", "int*"):
            return _coerce_int(value, where)
        if ctype in ("double", "double*"):
            return _coerce_double(value, where)
        if ctype in ("bool", "bool*"):
            return bool(_coerce_int(value, where))
        if ctype in ("const char*", "char*"):
            return str(value)  # rpr_packsc/rpr_packs do str(v).encode()
        return value  # void*, const char**: passed through

    def _null_result(self) -> Any:
        zero = _zero_result(self.signature.ret)
        if not self.signature.returns_tuple:
            return zero
        return {} if self.signature.ret == "void" else (zero, {})

    def _build(self, args: tuple, result: Any) -> Any:
        sig = self.signature
        if not sig.returns_tuple:
            return self._convert_return(result)
        if sig.ret == "void":
            head, outs = (), result or {}
        else:
            retval, outs = result
            head = (self._convert_return(retval),)
        unknown = set(outs) - {p.name for p in sig.params if p.is_output}
        if unknown:
            raise AssertionError(f"{sig.name} body filled non-output params {unknown}")
        items = []
        for index, (param, arg) in enumerate(zip(sig.params, args)):
            if not param.is_output or param.ctype == "const char**":
                items.append(arg)  # echoed exactly as the caller passed it
                continue
            value = outs.get(param.name, arg)
            if param.ctype == "char*":
                value = str(value)
                if param.name in outs:
                    value = self._truncate(value, index, args)
            elif param.ctype == "double*":
                value = float(value)
            else:  # int*, bool*
                value = int(value)
            items.append(value)
        return (*head, *items)

    def _truncate(self, value: str, index: int, args: tuple) -> str:
        params = self.signature.params
        if index + 1 < len(params) and params[index + 1].name == params[index].name + "_sz":
            size = args[index + 1]
            return value[:max(int(size) - 1, 0)]
        return value

    def _convert_return(self, value: Any) -> Any:
        ret = self.signature.ret
        if ret == "void":
            return None
        if ret == "bool":
            return int(bool(value))
        if ret == "int":
            return int(value)
        if ret == "double":
            return float(value)
        if ret == "const char*":
            if value is None:
                # What REAPER's wrapper does with a NULL char*: str(None.decode()).
                raise AttributeError("'NoneType' object has no attribute 'decode'")
            return str(value)
        # Pointer results: the body returns an address (int) or None.
        return null_pointer(ret) if value is None else format_pointer(ret, value)


# --------------------------------------------------------------------------
# Actions (Main_OnCommand)
# --------------------------------------------------------------------------

#: Actions that show/hide a built-in envelope on the selected tracks
#: (reaper.md 2.4, [3P] IDs). The seam for other actions (render, ...) is
#: :meth:`ReaScriptApi.register_action`.
ENVELOPE_TOGGLE_ACTIONS = {
    40406: "<VOLENV2",   # Track: Toggle track volume envelope visible
    40407: "<PANENV2",   # Track: Toggle track pan envelope visible
    41870: "<WIDTHENV2",  # Track: Toggle track width envelope visible
    40867: "<MUTEENV",   # Track: Toggle track mute envelope visible
    42020: "<VOLENV3",   # Track: Toggle track trim envelope visible
}

#: ``GetMediaTrackInfo_Value`` parameters: name -> (getter, setter or None).
_TRACK_VALUES: dict[str, tuple[Callable[[Track], float], Callable[[Track, float], None] | None]] = {
    "D_VOL": (lambda t: t.vol, lambda t, v: setattr(t, "vol", v)),
    "D_PAN": (lambda t: t.pan, lambda t, v: setattr(t, "pan", v)),
    "D_WIDTH": (lambda t: t.width, lambda t, v: setattr(t, "width", v)),
    "B_PHASE": (lambda t: float(t.phase_inverted),
                lambda t, v: setattr(t, "phase_inverted", bool(v))),
    "B_MUTE": (lambda t: float(t.mute), lambda t, v: setattr(t, "mute", bool(v))),
    "I_SOLO": (lambda t: float(t.solo), lambda t, v: setattr(t, "solo", int(v))),
    "I_SELECTED": (lambda t: float(t.selected), lambda t, v: setattr(t, "selected", bool(v))),
    "I_FXEN": (lambda t: float(t.fx_enabled), lambda t, v: setattr(t, "fx_enabled", bool(v))),
}

#: FX index bits for record-input FX and container FX (reaper.md 2.2): not modelled.
_FX_SPECIAL_BITS = 0x1000000 | 0x2000000


class ReaScriptApi:
    """REAPER's API over one :class:`Project`.

    Parameters
    ----------
    project : Project
        The model every function reads and writes.
    resource_path : str
        What ``GetResourcePath`` returns; reapy probes ``<it>/Scripts`` for SWS,
        so it must not contain ``Scripts/sws_python.py``.
    before_call : callable, optional
        ``before_call(name, args)`` runs before every RPR call (fault injection,
        call statistics).
    """

    APP_VERSION = "7.0/reaper_sim"

    def __init__(self, project: Project, resource_path: str,
                 before_call: Callable[[str, tuple], None] | None = None) -> None:
        self.project = project
        self.resource_path = resource_path
        self.ext_state: dict[tuple[str, str], str] = {}
        self._before_call = before_call
        self.call_counts: collections.Counter[str] = collections.Counter()
        self.call_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.actions: dict[int, Callable[[], None]] = {
            action: (lambda chunk=chunk: self._toggle_envelope_on_selected(chunk))
            for action, chunk in ENVELOPE_TOGGLE_ACTIONS.items()
        }
        #: Named commands (``NamedCommandLookup``) -> command ids.
        self.named_commands: dict[str, int] = {}
        # Render settings, the render actions and MixBridge's bounce script (render.py).
        self.renderer = render.Renderer(self)
        for command in render.RENDER_ACTIONS:
            self.register_action(command, self.renderer.render)
        self.register_action(render.BOUNCE_COMMAND_ID, self.renderer.bounce,
                             name=render.BOUNCE_ACTION)

    # -- plumbing ---------------------------------------------------------

    def functions(self) -> dict[str, RprFunction]:
        """Every modelled function by name (without the ``RPR_`` prefix)."""
        table = {}
        for name in dir(type(self)):
            body = getattr(type(self), name)
            signature = getattr(body, "rpr_signature", None)
            if signature is not None:
                table[signature.name] = RprFunction(self, signature, body)
        return table

    def register_action(self, command_id: int, run: Callable[[], Any],
                        name: str | None = None) -> None:
        """Add a ``Main_OnCommand`` action (seam for render, OSC refresh, ...); ``name`` is its
        named command (``"_MIXBRIDGE_BOUNCE"``) for ``NamedCommandLookup`` and the web interface."""
        self.actions[command_id] = run
        if name is not None:
            self.named_commands[name] = command_id

    def run_named_action(self, name: str) -> Any:
        """Run an action by named command (``_NAME``) or number, returning what its model returns."""
        command = int(name) if name.isdigit() else self.named_commands.get(name)
        if command is None or command not in self.actions:
            raise UnmodelledCall(f"action {name!r} is not modelled (named: {sorted(self.named_commands)})")
        return self.actions[command]()

    def before_call(self, name: str, args: tuple) -> None:
        self.call_counts[name] += 1
        self.call_log.append({"function": name, "args": list(args)})
        if self._before_call is not None:
            self._before_call(name, args)

    def resolve_handle(self, ctype: str, value: Any, where: str) -> Any:
        """Turn a pointer argument into a model object, NULL or an error."""
        parsed = parse_pointer(value)
        if ctype == "ReaProject*":
            if value in (0, None) or (parsed is not None and parsed == (ctype, 0)):
                return self.project
            if parsed == (ctype, self.project.address):
                return self.project
            raise InvalidPointerError(f"{where}: {value!r} is not a valid ReaProject*")
        if value in (0, None) or (parsed is not None and parsed[1] == 0):
            return NULL
        if parsed is None:
            raise InvalidPointerError(f"{where}: {value!r} is not a {ctype} pointer string")
        if parsed[0] != ctype:
            raise InvalidPointerError(f"{where}: got a {parsed[0]} where {ctype} is expected")
        if ctype == "MediaTrack*":
            found = self.project.track_at(parsed[1])
        else:
            hit = self.project.envelope_at(parsed[1])
            found = hit[1] if hit else None
        if found is None:
            raise InvalidPointerError(
                f"{where}: {value} is dangling (deleted or never existed); "
                "real REAPER would dereference freed memory here")
        return found

    def _fx(self, track: Track, index: int) -> FxInstance | None:
        if index >= 0 and index & _FX_SPECIAL_BITS:
            raise UnmodelledCall(f"FX index 0x{index:X}: record-input/container FX are not modelled")
        return track.fxs[index] if 0 <= index < len(track.fxs) else None

    def _param(self, track: Track, fx_index: int, param: int) -> tuple[FxInstance, int] | None:
        fx = self._fx(track, fx_index)
        if fx is None or not 0 <= param < len(fx.params_raw):
            return None
        return fx, param

    def _format(self, fx: FxInstance, param: int, raw: float) -> str:
        spec = fx.plugin.params[param]
        if spec.format_raw is None:
            raise UnmodelledCall(
                f"formatted value of {fx.plugin.name} parameter {param} {spec.name!r}: "
                "reaper.md has no confirmed display mapping for it")
        return spec.format_raw(spec.clamp_raw(raw))

    def _toggle_envelope_on_selected(self, chunk: str) -> None:
        for track in self.project.tracks:
            if not track.selected:
                continue
            envelope = track.envelopes.get(chunk)
            if envelope is None:
                # Shown for the first time: REAPER creates it, with no points yet.
                track.envelopes[chunk] = self.project.new_envelope(chunk)
            elif envelope.points:
                # An envelope with points stays active (and audible) when hidden.
                envelope.visible = not envelope.visible
            elif envelope.visible:
                del track.envelopes[chunk]
            else:
                envelope.visible = True

    def _selected_tracks(self) -> list[Track]:
        return [t for t in self.project.tracks if t.selected]

    # -- projects and misc ------------------------------------------------

    @rpr("ReaProject* EnumProjects(int idx, char* projfnOutOptional, int projfnOutOptional_sz)")
    def EnumProjects(self, idx, projfnOutOptional, projfnOutOptional_sz):
        if idx in (-1, 0):
            return self.project.address, {"projfnOutOptional": self.project.path}
        return None, {}

    @rpr("void GetProjectName(ReaProject* proj, char* bufOut, int bufOut_sz)")
    def GetProjectName(self, proj, bufOut, bufOut_sz):
        return {"bufOut": proj.name}

    @rpr("void SelectProjectInstance(ReaProject* proj)")
    def SelectProjectInstance(self, proj):
        pass  # only one project is open

    @rpr("bool ValidatePtr(void* pointer, const char* ctypename)")
    def ValidatePtr(self, pointer, ctypename):
        return self._is_valid_pointer(pointer, ctypename)

    @rpr("bool ValidatePtr2(ReaProject* proj, void* pointer, const char* ctypename)")
    def ValidatePtr2(self, proj, pointer, ctypename):
        return self._is_valid_pointer(pointer, ctypename)

    def _is_valid_pointer(self, pointer: Any, ctypename: str) -> bool:
        # reapy passes the address as an int (ReapyObject._get_pointer_and_name);
        # scripts pass the pointer string.
        if isinstance(pointer, str):
            parsed = parse_pointer(pointer)
            if parsed is None:
                return False
            ctypename = parsed[0] if ctypename in ("", "void*") else ctypename
            address = parsed[1]
        elif isinstance(pointer, int):
            address = pointer
        else:
            return False
        if address == 0:
            return False
        if ctypename == "ReaProject*":
            return address == self.project.address
        if ctypename == "MediaTrack*":
            return self.project.track_at(address) is not None
        if ctypename == "TrackEnvelope*":
            return self.project.envelope_at(address) is not None
        return False  # no items, takes or sources exist in the simulator

    @rpr("const char* GetResourcePath()")
    def GetResourcePath(self):
        return self.resource_path

    @rpr("const char* GetAppVersion()")
    def GetAppVersion(self):
        return self.APP_VERSION

    @rpr("void ShowConsoleMsg(const char* msg)")
    def ShowConsoleMsg(self, msg):
        if msg == "":
            self.project.console.clear()  # documented: "" clears the console
        else:
            self.project.console.append(msg)

    @rpr("void PreventUIRefresh(int prevent_count)")
    def PreventUIRefresh(self, prevent_count):
        self.project.ui_refresh_prevent_count += prevent_count
        if self.project.ui_refresh_prevent_count < 0:
            # "always add then remove the same amount, or major disfunction will occur"
            raise RuntimeError("PreventUIRefresh count went negative: unbalanced calls")

    @rpr("void UpdateArrange()")
    def UpdateArrange(self):
        pass  # no UI to redraw

    @rpr("void UpdateTimeline()")
    def UpdateTimeline(self):
        pass

    @rpr("void TrackList_AdjustWindows(bool isMinor)")
    def TrackList_AdjustWindows(self, isMinor):
        pass

    @rpr("int NamedCommandLookup(const char* command_name)")
    def NamedCommandLookup(self, command_name):
        return self.named_commands.get(command_name, 0)  # 0: not found, as REAPER

    @rpr("double GetSetProjectInfo(ReaProject* project, const char* desc, double value, bool is_set)")
    def GetSetProjectInfo(self, project, desc, value, is_set):
        return self.renderer.info(desc, value, is_set)

    @rpr("bool GetSetProjectInfo_String(ReaProject* project, const char* desc, "
         "char* valuestrNeedBig, bool is_set)")
    def GetSetProjectInfo_String(self, project, desc, valuestrNeedBig, is_set):
        ok, value = self.renderer.info_string(desc, valuestrNeedBig, is_set)
        return ok, ({} if is_set else {"valuestrNeedBig": value})

    @rpr("void Main_OnCommand(int command, int flag)")
    def Main_OnCommand(self, command, flag):
        self._run_action(command)

    @rpr("void Main_OnCommandEx(int command, int flag, ReaProject* proj)")
    def Main_OnCommandEx(self, command, flag, proj):
        self._run_action(command)

    def _run_action(self, command: int) -> None:
        action = self.actions.get(command)
        if action is None:
            raise UnmodelledCall(f"Main_OnCommand action {command} is not modelled "
                                 f"(modelled: {sorted(self.actions)})")
        action()

    # -- ext state --------------------------------------------------------

    @rpr("void SetExtState(const char* section, const char* key, const char* value, bool persist)")
    def SetExtState(self, section, key, value, persist):
        self.ext_state[(section, key)] = value  # persistence = process lifetime

    @rpr("const char* GetExtState(const char* section, const char* key)")
    def GetExtState(self, section, key):
        return self.ext_state.get((section, key), "")

    @rpr("bool HasExtState(const char* section, const char* key)")
    def HasExtState(self, section, key):
        return (section, key) in self.ext_state

    @rpr("void DeleteExtState(const char* section, const char* key, bool persist)")
    def DeleteExtState(self, section, key, persist):
        self.ext_state.pop((section, key), None)

    @rpr("int SetProjExtState(ReaProject* proj, const char* extname, const char* key, const char* value)")
    def SetProjExtState(self, proj, extname, key, value):
        store = proj.state.proj_ext
        if key == "":
            store.pop(extname, None)  # documented: empty key deletes the whole extname
        elif value == "":
            store.get(extname, {}).pop(key, None)
        else:
            store.setdefault(extname, {})[key] = value
        # "Returns the size of the state for this extname": taken as total characters.
        return sum(len(k) + len(v) for k, v in store.get(extname, {}).items())

    @rpr("int GetProjExtState(ReaProject* proj, const char* extname, const char* key, "
         "char* valOutNeedBig, int valOutNeedBig_sz)")
    def GetProjExtState(self, proj, extname, key, valOutNeedBig, valOutNeedBig_sz):
        value = proj.state.proj_ext.get(extname, {}).get(key)
        if value is None:
            return 0, {"valOutNeedBig": ""}
        return len(value), {"valOutNeedBig": value}

    # -- tracks -----------------------------------------------------------

    @rpr("int CountTracks(ReaProject* projOptional)")
    def CountTracks(self, projOptional):
        return len(projOptional.tracks)

    @rpr("MediaTrack* GetTrack(ReaProject* proj, int trackidx)")
    def GetTrack(self, proj, trackidx):
        return proj.tracks[trackidx].address if 0 <= trackidx < len(proj.tracks) else None

    @rpr("MediaTrack* GetMasterTrack(ReaProject* proj)")
    def GetMasterTrack(self, proj):
        return proj.master.address

    @rpr("GUID* GetTrackGUID(MediaTrack* tr)")
    def GetTrackGUID(self, tr):
        # REAPER's Python wrapper returns a (GUID*) pointer, not "{...}" (reapy.md 3);
        # the text comes from GetSetMediaTrackInfo_String(tr, "GUID", "", False).
        return tr.guid_address

    @rpr("bool GetTrackName(MediaTrack* track, char* bufOut, int bufOut_sz)")
    def GetTrackName(self, track, bufOut, bufOut_sz):
        if track.is_master:
            return True, {"bufOut": "MASTER"}
        name = track.name or f"Track {self.project.tracks.index(track) + 1}"
        return True, {"bufOut": name}

    @rpr("bool GetSetMediaTrackInfo_String(MediaTrack* tr, const char* parmname, "
         "char* stringNeedBig, bool setNewValue)")
    def GetSetMediaTrackInfo_String(self, tr, parmname, stringNeedBig, setNewValue):
        if parmname == "P_NAME":
            if tr.is_master:
                return False, {}  # "on master returns NULL"
            if setNewValue:
                tr.name = stringNeedBig
                return True, {}
            return True, {"stringNeedBig": tr.name}
        if parmname == "GUID":
            if setNewValue:
                if not GUID_RE.match(stringNeedBig.upper()):
                    return False, {}
                tr.guid = stringNeedBig.upper()
                return True, {}
            return True, {"stringNeedBig": tr.guid}
        if parmname.startswith("P_EXT:"):
            key = parmname[len("P_EXT:"):]
            if not key:
                return False, {}
            if setNewValue:
                if stringNeedBig == "":
                    tr.ext.pop(key, None)  # an empty value deletes the key
                else:
                    tr.ext[key] = stringNeedBig
                return True, {}
            if key not in tr.ext:
                return False, {"stringNeedBig": ""}
            return True, {"stringNeedBig": tr.ext[key]}
        raise UnmodelledCall(f"GetSetMediaTrackInfo_String parmname {parmname!r} is not modelled")

    @rpr("double GetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname)")
    def GetMediaTrackInfo_Value(self, tr, parmname):
        if parmname == "IP_TRACKNUMBER":
            return -1.0 if tr.is_master else float(self.project.tracks.index(tr) + 1)
        if parmname not in _TRACK_VALUES:
            raise UnmodelledCall(f"GetMediaTrackInfo_Value parmname {parmname!r} is not modelled")
        return _TRACK_VALUES[parmname][0](tr)

    @rpr("bool SetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname, double newvalue)")
    def SetMediaTrackInfo_Value(self, tr, parmname, newvalue):
        if parmname == "IP_TRACKNUMBER":
            return False  # read-only
        if parmname not in _TRACK_VALUES:
            raise UnmodelledCall(f"SetMediaTrackInfo_Value parmname {parmname!r} is not modelled")
        _TRACK_VALUES[parmname][1](tr, newvalue)
        return True

    @rpr("void InsertTrackAtIndex(int idx, bool wantDefaults)")
    def InsertTrackAtIndex(self, idx, wantDefaults):
        # "this will be clamped to 0..GetNumTracks()"
        idx = min(max(idx, 0), len(self.project.tracks))
        self.project.tracks.insert(idx, self.project.new_track())

    @rpr("void DeleteTrack(MediaTrack* tr)")
    def DeleteTrack(self, tr):
        if not tr.is_master:
            self.project.tracks.remove(tr)

    @rpr("void SetTrackSelected(MediaTrack* track, bool selected)")
    def SetTrackSelected(self, track, selected):
        track.selected = selected

    @rpr("bool IsTrackSelected(MediaTrack* track)")
    def IsTrackSelected(self, track):
        return track.selected

    @rpr("int CountSelectedTracks(ReaProject* proj)")
    def CountSelectedTracks(self, proj):
        return len(self._selected_tracks())

    @rpr("MediaTrack* GetSelectedTrack(ReaProject* proj, int seltrackidx)")
    def GetSelectedTrack(self, proj, seltrackidx):
        selected = self._selected_tracks()
        return selected[seltrackidx].address if 0 <= seltrackidx < len(selected) else None

    # -- FX ---------------------------------------------------------------

    @rpr("int TrackFX_AddByName(MediaTrack* track, const char* fxname, bool recFX, int instantiate)")
    def TrackFX_AddByName(self, track, fxname, recFX, instantiate):
        if recFX:
            raise UnmodelledCall("TrackFX_AddByName with recFX=true: record/monitoring FX are not modelled")
        plugin = fx_layouts.find_plugin(fxname)
        if plugin is None:
            return -1  # not installed
        if instantiate >= 0:
            # 0: query only; > 0: add only if not found. Queries match the plug-in,
            # not instance renames.
            for index, fx in enumerate(track.fxs):
                if fx.plugin is plugin:
                    return index
            if instantiate == 0:
                return -1
        position = len(track.fxs)
        if instantiate <= -1000:
            position = min(-1000 - instantiate, len(track.fxs))
        track.fxs.insert(position, FxInstance.create(plugin))
        return position

    @rpr("int TrackFX_GetCount(MediaTrack* track)")
    def TrackFX_GetCount(self, track):
        return len(track.fxs)

    @rpr("bool TrackFX_GetFXName(MediaTrack* track, int fx, char* bufOut, int bufOut_sz)")
    def TrackFX_GetFXName(self, track, fx, bufOut, bufOut_sz):
        instance = self._fx(track, fx)
        if instance is None:
            return False, {}
        return True, {"bufOut": instance.display_name}

    @rpr("bool TrackFX_Delete(MediaTrack* track, int fx)")
    def TrackFX_Delete(self, track, fx):
        if self._fx(track, fx) is None:
            return False
        del track.fxs[fx]
        return True

    @rpr("bool TrackFX_GetEnabled(MediaTrack* track, int fx)")
    def TrackFX_GetEnabled(self, track, fx):
        instance = self._fx(track, fx)
        return instance is not None and instance.enabled

    @rpr("void TrackFX_SetEnabled(MediaTrack* track, int fx, bool enabled)")
    def TrackFX_SetEnabled(self, track, fx, enabled):
        instance = self._fx(track, fx)
        if instance is not None:
            instance.enabled = enabled

    @rpr("int TrackFX_GetNumParams(MediaTrack* track, int fx)")
    def TrackFX_GetNumParams(self, track, fx):
        instance = self._fx(track, fx)
        return 0 if instance is None else len(instance.params_raw)

    @rpr("bool TrackFX_GetParamName(MediaTrack* track, int fx, int param, char* bufOut, int bufOut_sz)")
    def TrackFX_GetParamName(self, track, fx, param, bufOut, bufOut_sz):
        hit = self._param(track, fx, param)
        if hit is None:
            return False, {}
        return True, {"bufOut": hit[0].param_name(param)}

    @rpr("double TrackFX_GetParam(MediaTrack* track, int fx, int param, "
         "double* minvalOut, double* maxvalOut)")
    def TrackFX_GetParam(self, track, fx, param, minvalOut, maxvalOut):
        hit = self._param(track, fx, param)
        if hit is None:
            return 0.0, {}
        spec = hit[0].plugin.params[param]
        return hit[0].params_raw[param], {"minvalOut": spec.min_raw, "maxvalOut": spec.max_raw}

    @rpr("bool TrackFX_SetParam(MediaTrack* track, int fx, int param, double val)")
    def TrackFX_SetParam(self, track, fx, param, val):
        hit = self._param(track, fx, param)
        if hit is None:
            return False
        hit[0].set_raw(param, val)
        return True

    @rpr("double TrackFX_GetParamNormalized(MediaTrack* track, int fx, int param)")
    def TrackFX_GetParamNormalized(self, track, fx, param):
        hit = self._param(track, fx, param)
        return 0.0 if hit is None else hit[0].get_normalized(param)

    @rpr("bool TrackFX_SetParamNormalized(MediaTrack* track, int fx, int param, double value)")
    def TrackFX_SetParamNormalized(self, track, fx, param, value):
        hit = self._param(track, fx, param)
        if hit is None:
            return False
        hit[0].set_normalized(param, value)
        return True

    @rpr("bool TrackFX_GetFormattedParamValue(MediaTrack* track, int fx, int param, "
         "char* bufOut, int bufOut_sz)")
    def TrackFX_GetFormattedParamValue(self, track, fx, param, bufOut, bufOut_sz):
        hit = self._param(track, fx, param)
        if hit is None:
            return False, {}
        return True, {"bufOut": self._format(hit[0], param, hit[0].params_raw[param])}

    @rpr("bool TrackFX_FormatParamValue(MediaTrack* track, int fx, int param, double val, "
         "char* bufOut, int bufOut_sz)")
    def TrackFX_FormatParamValue(self, track, fx, param, val, bufOut, bufOut_sz):
        hit = self._param(track, fx, param)
        if hit is None:
            return False, {}
        return True, {"bufOut": self._format(hit[0], param, val)}

    @rpr("bool TrackFX_FormatParamValueNormalized(MediaTrack* track, int fx, int param, "
         "double value, char* bufOut, int bufOut_sz)")
    def TrackFX_FormatParamValueNormalized(self, track, fx, param, value, bufOut, bufOut_sz):
        hit = self._param(track, fx, param)
        if hit is None:
            return False, {}
        spec = hit[0].plugin.params[param]
        return True, {"bufOut": self._format(hit[0], param, spec.from_normalized(value))}

    @rpr("bool TrackFX_GetNamedConfigParm(MediaTrack* track, int fx, const char* parmname, "
         "char* bufOutNeedBig, int bufOutNeedBig_sz)")
    def TrackFX_GetNamedConfigParm(self, track, fx, parmname, bufOutNeedBig, bufOutNeedBig_sz):
        instance = self._fx(track, fx)
        if instance is None:
            return False, {}
        if parmname == "renamed_name":
            return True, {"bufOutNeedBig": instance.renamed}
        if parmname in instance.named_config:
            return True, {"bufOutNeedBig": instance.named_config[parmname]}
        raise UnmodelledCall(f"TrackFX_GetNamedConfigParm {parmname!r} on "
                             f"{instance.plugin.name} is not modelled")

    @rpr("bool TrackFX_SetNamedConfigParm(MediaTrack* track, int fx, const char* parmname, "
         "const char* value)")
    def TrackFX_SetNamedConfigParm(self, track, fx, parmname, value):
        instance = self._fx(track, fx)
        if instance is None:
            return False
        if parmname == "renamed_name":
            instance.renamed = value  # "" removes the rename
            return True
        if parmname in instance.named_config:
            allowed = instance.plugin.named_config_values.get(parmname)
            if allowed is not None and value not in allowed:
                return False
            instance.named_config[parmname] = value
            return True
        raise UnmodelledCall(f"TrackFX_SetNamedConfigParm {parmname!r} on "
                             f"{instance.plugin.name} is not modelled")

    @rpr("int TrackFX_GetParamFromIdent(MediaTrack* track, int fx, const char* ident_str)")
    def TrackFX_GetParamFromIdent(self, track, fx, ident_str):
        instance = self._fx(track, fx)
        return -1 if instance is None else instance.plugin.param_index_from_ident(ident_str)

    # -- envelopes --------------------------------------------------------

    @rpr("TrackEnvelope* GetTrackEnvelopeByName(MediaTrack* track, const char* envname)")
    def GetTrackEnvelopeByName(self, track, envname):
        for envelope in track.envelopes.values():
            if envelope.name == envname:
                return envelope.address
        return None  # not shown/armed yet: REAPER returns NULL

    @rpr("TrackEnvelope* GetTrackEnvelopeByChunkName(MediaTrack* tr, const char* cfgchunkname_or_guid)")
    def GetTrackEnvelopeByChunkName(self, tr, cfgchunkname_or_guid):
        if cfgchunkname_or_guid.startswith("{"):
            for envelope in tr.all_envelopes():
                if envelope.guid == cfgchunkname_or_guid.upper():
                    return envelope.address
            return None
        envelope = tr.envelopes.get(cfgchunkname_or_guid)
        return None if envelope is None else envelope.address

    @rpr("int CountTrackEnvelopes(MediaTrack* track)")
    def CountTrackEnvelopes(self, track):
        return sum(1 for _ in track.all_envelopes())

    @rpr("TrackEnvelope* GetTrackEnvelope(MediaTrack* track, int envidx)")
    def GetTrackEnvelope(self, track, envidx):
        envelopes = list(track.all_envelopes())
        return envelopes[envidx].address if 0 <= envidx < len(envelopes) else None

    @rpr("bool GetEnvelopeName(TrackEnvelope* env, char* bufOut, int bufOut_sz)")
    def GetEnvelopeName(self, env, bufOut, bufOut_sz):
        if env.fx_param is not None:
            raise UnmodelledCall("GetEnvelopeName of an FX-parameter envelope: REAPER's "
                                 "naming is not in reaper.md")
        return True, {"bufOut": env.name}

    @rpr("bool GetSetEnvelopeInfo_String(TrackEnvelope* env, const char* parmname, "
         "char* stringNeedBig, bool setNewValue)")
    def GetSetEnvelopeInfo_String(self, env, parmname, stringNeedBig, setNewValue):
        # SDK header: ACTIVE / VISIBLE are "0"/"1" strings; GUID is read-only.
        if parmname in ("ACTIVE", "VISIBLE"):
            field = parmname.lower()
            if setNewValue:
                if stringNeedBig not in ("0", "1"):
                    return False, {}
                setattr(env, field, stringNeedBig == "1")
                return True, {}
            return True, {"stringNeedBig": "1" if getattr(env, field) else "0"}
        if parmname == "GUID":
            return (False, {}) if setNewValue else (True, {"stringNeedBig": env.guid})
        raise UnmodelledCall(f"GetSetEnvelopeInfo_String parmname {parmname!r} is not modelled")

    @rpr("TrackEnvelope* GetFXEnvelope(MediaTrack* track, int fxindex, int parameterindex, bool create)")
    def GetFXEnvelope(self, track, fxindex, parameterindex, create):
        hit = self._param(track, fxindex, parameterindex)
        if hit is None:
            return None
        fx, param = hit
        if param not in fx.envelopes:
            if not create:
                return None
            fx.envelopes[param] = self.project.new_fx_envelope(fx, param)
        return fx.envelopes[param].address

    @rpr("int CountEnvelopePoints(TrackEnvelope* envelope)")
    def CountEnvelopePoints(self, envelope):
        return len(envelope.points)

    @rpr("bool GetEnvelopePoint(TrackEnvelope* envelope, int ptidx, double* timeOut, "
         "double* valueOut, int* shapeOut, double* tensionOut, bool* selectedOut)")
    def GetEnvelopePoint(self, envelope, ptidx, timeOut, valueOut, shapeOut, tensionOut,
                         selectedOut):
        if not 0 <= ptidx < len(envelope.points):
            return False, {}
        point = envelope.points[ptidx]
        return True, {"timeOut": point.time_s, "valueOut": point.value, "shapeOut": point.shape,
                      "tensionOut": point.tension, "selectedOut": point.selected}

    @rpr("bool InsertEnvelopePoint(TrackEnvelope* envelope, double time, double value, int shape, "
         "double tension, bool selected, bool* noSortInOptional)")
    def InsertEnvelopePoint(self, envelope, time, value, shape, tension, selected,
                            noSortInOptional):
        envelope.points.append(EnvelopePoint(time, value, shape, tension, selected))
        if not noSortInOptional:
            envelope.sort_points()
        return True, {}

    @rpr("bool SetEnvelopePoint(TrackEnvelope* envelope, int ptidx, double* timeInOptional, "
         "double* valueInOptional, int* shapeInOptional, double* tensionInOptional, "
         "bool* selectedInOptional, bool* noSortInOptional)")
    def SetEnvelopePoint(self, envelope, ptidx, timeInOptional, valueInOptional,
                         shapeInOptional, tensionInOptional, selectedInOptional,
                         noSortInOptional):
        # From Python every optional is supplied (ctypes byref is never NULL).
        if not 0 <= ptidx < len(envelope.points):
            return False, {}
        point = envelope.points[ptidx]
        point.time_s, point.value = timeInOptional, valueInOptional
        point.shape, point.tension = shapeInOptional, tensionInOptional
        point.selected = selectedInOptional
        if not noSortInOptional:
            envelope.sort_points()
        return True, {}

    @rpr("bool DeleteEnvelopePointRange(TrackEnvelope* envelope, double time_start, double time_end)")
    def DeleteEnvelopePointRange(self, envelope, time_start, time_end):
        # Half-open [start, end): reaper.md does not say whether the end is inclusive.
        envelope.points = [p for p in envelope.points if not time_start <= p.time_s < time_end]
        return True

    @rpr("bool Envelope_SortPoints(TrackEnvelope* envelope)")
    def Envelope_SortPoints(self, envelope):
        envelope.sort_points()
        return True

    @rpr("int GetEnvelopeScalingMode(TrackEnvelope* env)")
    def GetEnvelopeScalingMode(self, env):
        return env.scaling_mode

    @rpr("double ScaleToEnvelopeMode(int scaling_mode, double val)")
    def ScaleToEnvelopeMode(self, scaling_mode, val):
        return fader_scaling.scale_to_envelope_mode(scaling_mode, val)

    @rpr("double ScaleFromEnvelopeMode(int scaling_mode, double val)")
    def ScaleFromEnvelopeMode(self, scaling_mode, val):
        return fader_scaling.scale_from_envelope_mode(scaling_mode, val)

    # -- undo -------------------------------------------------------------

    @rpr("void Undo_BeginBlock()")
    def Undo_BeginBlock(self):
        self.project.undo.begin(self.project.state)

    @rpr("void Undo_BeginBlock2(ReaProject* proj)")
    def Undo_BeginBlock2(self, proj):
        proj.undo.begin(proj.state)

    @rpr("void Undo_EndBlock(const char* descchange, int extraflags)")
    def Undo_EndBlock(self, descchange, extraflags):
        self.project.undo.end(descchange, extraflags, self.project.state)

    @rpr("void Undo_EndBlock2(ReaProject* proj, const char* descchange, int extraflags)")
    def Undo_EndBlock2(self, proj, descchange, extraflags):
        proj.undo.end(descchange, extraflags, proj.state)

    @rpr("const char* Undo_CanUndo2(ReaProject* proj)")
    def Undo_CanUndo2(self, proj):
        return proj.undo.last_name()  # None -> AttributeError, like REAPER's wrapper

    @rpr("const char* Undo_CanRedo2(ReaProject* proj)")
    def Undo_CanRedo2(self, proj):
        return proj.undo.next_redo_name()

    @rpr("int Undo_DoUndo2(ReaProject* proj)")
    def Undo_DoUndo2(self, proj):
        state = proj.undo.undo()
        if state is None:
            return 0
        proj.restore(state)
        return 1

    @rpr("int Undo_DoRedo2(ReaProject* proj)")
    def Undo_DoRedo2(self, proj):
        state = proj.undo.redo()
        if state is None:
            return 0
        proj.restore(state)
        return 1

    # -- markers and regions ----------------------------------------------

    def _add_marker(self, proj: Project, isrgn: bool, pos: float, rgnend: float, name: str,
                    wantidx: int, color: int) -> int:
        used = {m.number for m in proj.markers if m.is_region == isrgn}
        number = wantidx if wantidx >= 0 and wantidx not in used else next_marker_number(
            proj.markers, isrgn)
        proj.markers.append(Marker(number, isrgn, pos, rgnend if isrgn else 0.0, name, color))
        return number

    @rpr("int AddProjectMarker(ReaProject* proj, bool isrgn, double pos, double rgnend, "
         "const char* name, int wantidx)")
    def AddProjectMarker(self, proj, isrgn, pos, rgnend, name, wantidx):
        return self._add_marker(proj, isrgn, pos, rgnend, name, wantidx, 0)

    @rpr("int AddProjectMarker2(ReaProject* proj, bool isrgn, double pos, double rgnend, "
         "const char* name, int wantidx, int color)")
    def AddProjectMarker2(self, proj, isrgn, pos, rgnend, name, wantidx, color):
        return self._add_marker(proj, isrgn, pos, rgnend, name, wantidx, color)

    @rpr("int CountProjectMarkers(ReaProject* proj, int* num_markersOut, int* num_regionsOut)")
    def CountProjectMarkers(self, proj, num_markersOut, num_regionsOut):
        regions = sum(1 for m in proj.markers if m.is_region)
        markers = len(proj.markers) - regions
        return len(proj.markers), {"num_markersOut": markers, "num_regionsOut": regions}

    def _enum_marker(self, proj: Project, idx: int) -> tuple[int, dict[str, Any]]:
        ordered = sorted_markers(proj.markers)
        if not 0 <= idx < len(ordered):
            return 0, {}  # 0 when done
        m = ordered[idx]
        # nameOut is const char**: echoed as passed (see module docstring).
        return idx + 1, {"isrgnOut": m.is_region, "posOut": m.pos_s, "rgnendOut": m.end_s,
                         "markrgnindexnumberOut": m.number, "colorOut": m.color}

    @rpr("int EnumProjectMarkers(int idx, bool* isrgnOut, double* posOut, double* rgnendOut, "
         "const char** nameOut, int* markrgnindexnumberOut)")
    def EnumProjectMarkers(self, idx, isrgnOut, posOut, rgnendOut, nameOut,
                           markrgnindexnumberOut):
        retval, outs = self._enum_marker(self.project, idx)
        outs.pop("colorOut", None)
        return retval, outs

    @rpr("int EnumProjectMarkers2(ReaProject* proj, int idx, bool* isrgnOut, double* posOut, "
         "double* rgnendOut, const char** nameOut, int* markrgnindexnumberOut)")
    def EnumProjectMarkers2(self, proj, idx, isrgnOut, posOut, rgnendOut, nameOut,
                            markrgnindexnumberOut):
        retval, outs = self._enum_marker(proj, idx)
        outs.pop("colorOut", None)
        return retval, outs

    @rpr("int EnumProjectMarkers3(ReaProject* proj, int idx, bool* isrgnOut, double* posOut, "
         "double* rgnendOut, const char** nameOut, int* markrgnindexnumberOut, int* colorOut)")
    def EnumProjectMarkers3(self, proj, idx, isrgnOut, posOut, rgnendOut, nameOut,
                            markrgnindexnumberOut, colorOut):
        return self._enum_marker(proj, idx)

    @rpr("bool DeleteProjectMarker(ReaProject* proj, int markrgnindexnumber, bool isrgn)")
    def DeleteProjectMarker(self, proj, markrgnindexnumber, isrgn):
        for marker in proj.markers:
            if marker.number == markrgnindexnumber and marker.is_region == isrgn:
                proj.markers.remove(marker)
                return True
        return False

    @rpr("bool SetProjectMarker3(ReaProject* proj, int markrgnindexnumber, bool isrgn, double pos, "
         "double rgnend, const char* name, int color)")
    def SetProjectMarker3(self, proj, markrgnindexnumber, isrgn, pos, rgnend, name, color):
        for marker in proj.markers:
            if marker.number == markrgnindexnumber and marker.is_region == isrgn:
                marker.pos_s, marker.color = pos, color
                marker.end_s = rgnend if isrgn else 0.0
                if name:
                    # An empty name keeps the old one; only SetProjectMarker4's
                    # flag can clear a name.
                    marker.name = name
                return True
        return False


def modelled_function_names() -> list[str]:
    """Names the simulator publishes, sorted (what ``reapy.reascript_api`` exposes)."""
    return sorted(name for name in dir(ReaScriptApi)
                  if getattr(getattr(ReaScriptApi, name), "rpr_signature", None))


def resource_path_for(pid: int) -> str:
    """``GetResourcePath`` of one simulator process: a path that is never created.

    Nothing in the simulator reads or writes there; reapy only probes
    ``<it>/Scripts`` for ``sws_python`` during import, which must fail (no SWS),
    and a missing directory guarantees that without leaving files behind.
    """
    return os.path.join(tempfile.gettempdir(), f"reaper_sim_{pid}_resource")
