"""Rendering stems: the RENDER_* project settings, the render action, and MixBridge's bounce script.

What is modelled (reaper.md 2.6 and 6):

* ``GetSetProjectInfo`` / ``GetSetProjectInfo_String`` for the render keys in :data:`NUMERIC` and
  :data:`STRINGS`, plus the read-only ``RENDER_TARGETS``. Any other key raises ``UnmodelledCall``.
* Actions 42230 and 41824 ("render project, using the most recent render settings", with and without
  auto-close): synchronous, like REAPER (the call returns when the files are written). Only the
  settings the bounce uses are modelled: ``RENDER_SETTINGS`` = 2 (stems of the selected tracks),
  ``RENDER_BOUNDSFLAG`` = 1 (entire project), a WAV ``RENDER_FORMAT`` (``"evaw"`` or a base64 WAV
  configuration), a ``RENDER_PATTERN`` made of literal text, ``$track`` and ``$project``. Anything else
  raises ``UnmodelledCall`` rather than rendering something REAPER would not.
* The named action :data:`BOUNCE_ACTION` does what ``reaper_scripts/MixBridge_Bounce selected tracks
  as stems.lua`` does: pick the watched folder, set the render settings, bypass the AI FX and put the
  ``P_EXT:mixbridge/pre_ai`` values on every track, render, restore all of it, then write the bounce
  manifest last (atomically, through :func:`bridge.manifest.write_manifest`).

The audio model
---------------
A track's source audio is the file named by its project-JSON ``"source"`` (a test gives it). A stem
is ``source x D_VOL x volume envelope``, negated when ``B_PHASE`` is set, silent when muted, written
as 24-bit PCM WAV (REAPER's default WAV sink) at the sources' sample rate, mono sources on both
channels. The project length is the longest source; shorter sources and tracks without a source are
padded with silence. The track's **Volume** envelope plays when it is active and has points: before
the first point its first value, after the last its last, between points linear (shape 0) or held
(shape 1) in the stored fader-scaled value, then turned into gain by ``ScaleFromEnvelopeMode`` (the
interpolation domain is the simulator's choice; REAPER's is not published).
**Not processed**: FX (none of them, AI or not), pan, width, pan law, other envelopes, sends and
folder routing. ``$track`` becomes the track name with ``\\ / : * ? " < > |`` replaced by ``_`` (REAPER's
exact sanitising is UNCONFIRMED, reaper.md 6).

Files are written in blocks, every stem of the render side by side, directly at their final path,
flushed after each block, so a watcher sees them grow; ``block_delay_s`` slows that down for tests of
"never analysed early".
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

if TYPE_CHECKING:  # pragma: no cover
    from .api import ReaScriptApi
    from .project import Track

#: Numeric render settings and their defaults in a fresh project.
NUMERIC: dict[str, float] = {"RENDER_SETTINGS": 0.0, "RENDER_BOUNDSFLAG": 1.0, "RENDER_ADDTOPROJ": 0.0,
                             "RENDER_SRATE": 0.0, "RENDER_CHANNELS": 2.0}
#: String render settings; the default format is a base64 WAV sink configuration.
STRINGS: dict[str, str] = {"RENDER_FILE": "", "RENDER_PATTERN": "", "RENDER_FORMAT": "ZXZhdxgAAQ=="}
RENDER_ACTIONS = (42230, 41824)
#: Named command of the modelled bounce script (``/_/_MIXBRIDGE_BOUNCE`` on the web interface).
BOUNCE_ACTION = "_MIXBRIDGE_BOUNCE"
BOUNCE_COMMAND_ID = 65001
DEFAULT_SUBDIR = "MixBridge stems"
AI_FX_NAMES = ("AI EQ (MixBridge)", "AI Comp (MixBridge)", "AI Polarity (MixBridge)")
OWNED_ATTRS = ("D_VOL", "D_PAN", "D_WIDTH", "B_PHASE")
_ILLEGAL = re.compile(r'[\\/:*?"<>|]')
_WILDCARD = re.compile(r"\$(\w+)")


class Renderer:
    """Render settings of the one project, and the render/bounce actions over :class:`ReaScriptApi`.

    Parameters
    ----------
    api : ReaScriptApi
        Its ``project``, ``ext_state`` and ``UnmodelledCall`` semantics are used.
    block_frames : int
        Frames per written block.
    block_delay_s : float
        Pause after each block (emulates render time; the main thread is busy meanwhile, as REAPER's).
    """

    def __init__(self, api: ReaScriptApi, block_frames: int = 4096, block_delay_s: float = 0.0) -> None:
        self.api = api
        self.numeric = dict(NUMERIC)
        self.strings = dict(STRINGS)
        self.block_frames = block_frames
        self.block_delay_s = block_delay_s

    # -- GetSetProjectInfo* ---------------------------------------------------------------

    def info(self, key: str, value: float, is_set: bool) -> float:
        if key not in self.numeric:
            raise self._unmodelled(f"GetSetProjectInfo {key!r} is not modelled "
                                   f"(modelled: {sorted(self.numeric)})")
        if is_set:
            self.numeric[key] = float(value)
        return self.numeric[key]

    def info_string(self, key: str, value: str, is_set: bool) -> tuple[bool, str]:
        if key == "RENDER_TARGETS":
            if is_set:
                return False, value  # read-only
            return True, ";".join(str(p) for p, _ in self._plan_targets())
        if key not in self.strings:
            raise self._unmodelled(f"GetSetProjectInfo_String {key!r} is not modelled "
                                   f"(modelled: {sorted(self.strings)} and RENDER_TARGETS)")
        if is_set:
            self.strings[key] = value
            return True, value
        return True, self.strings[key]

    # -- rendering ---------------------------------------------------------------------------

    def project_dir(self) -> Path | None:
        path = self.api.project.path
        return Path(path).parent if path else None

    def _unmodelled(self, message: str) -> Exception:
        from .api import UnmodelledCall
        return UnmodelledCall(message)

    def _render_dir(self) -> Path:
        configured = self.strings["RENDER_FILE"]
        base = self.project_dir()
        if not configured:
            if base is None:
                raise self._unmodelled("rendering an unsaved project with an empty RENDER_FILE")
            return base
        path = Path(configured)
        if not path.is_absolute():
            if base is None:
                raise self._unmodelled("a relative RENDER_FILE in an unsaved project")
            path = base / path
        return path

    def _check_settings(self) -> None:
        settings = int(self.numeric["RENDER_SETTINGS"])
        if settings != 2:
            raise self._unmodelled(f"RENDER_SETTINGS {settings}: only 2 (stems of the selected tracks) "
                                   "is modelled")
        bounds = int(self.numeric["RENDER_BOUNDSFLAG"])
        if bounds != 1:
            raise self._unmodelled(f"RENDER_BOUNDSFLAG {bounds}: only 1 (entire project) is modelled")
        fmt = self.strings["RENDER_FORMAT"]
        if fmt != "evaw":
            try:
                sink = base64.b64decode(fmt, validate=True)[:4]
            except (binascii.Error, ValueError):
                sink = b""
            if sink != b"evaw":
                raise self._unmodelled(f"RENDER_FORMAT {fmt!r}: only WAV ('evaw') is modelled")
        if int(self.numeric["RENDER_CHANNELS"]) != 2:
            raise self._unmodelled("RENDER_CHANNELS other than 2")

    def _file_name(self, track: Track) -> str:
        pattern = self.strings["RENDER_PATTERN"]
        if not pattern:
            raise self._unmodelled("an empty RENDER_PATTERN")
        project_stem = Path(self.api.project.name).stem

        def expand(match: re.Match) -> str:
            word = match.group(1)
            if word == "track":
                return self._track_name(track)
            if word == "project":
                return project_stem
            raise self._unmodelled(f"render wildcard ${word}")
        return _ILLEGAL.sub("_", _WILDCARD.sub(expand, pattern)) + ".wav"

    def _track_name(self, track: Track) -> str:
        return track.name or f"Track {self.api.project.tracks.index(track) + 1}"

    def _plan_targets(self) -> list[tuple[Path, Track]]:
        """(output path, track) for the current settings, in track order."""
        if int(self.numeric["RENDER_SETTINGS"]) != 2 or not self.strings["RENDER_PATTERN"]:
            return []
        folder = self._render_dir()
        planned = [(folder / self._file_name(t), t) for t in self.api.project.tracks if t.selected]
        names = [str(p).casefold() for p, _ in planned]
        if len(set(names)) != len(names):
            raise self._unmodelled("two selected tracks render to the same file name "
                                   "(REAPER's de-duplication is not modelled)")
        return planned

    def _source(self, track: Track) -> sf.SoundFile | None:
        if not track.source:
            return None
        return sf.SoundFile(track.source)

    def render(self) -> list[Path]:
        """Action 42230: render the selected tracks as stems; returns the files written."""
        self._check_settings()
        targets = self._plan_targets()
        if not targets:
            return []
        sources = [self._source(t) for _, t in targets]
        try:
            rates = {s.samplerate for s in sources if s is not None}
            if len(rates) > 1:
                raise self._unmodelled(f"sources at different sample rates {sorted(rates)} (resampling)")
            if not rates:
                raise self._unmodelled("a render where no selected track has a source")
            rate = rates.pop()
            wanted_rate = int(self.numeric["RENDER_SRATE"])
            if wanted_rate not in (0, rate):
                raise self._unmodelled(f"RENDER_SRATE {wanted_rate} != source rate {rate} (resampling)")
            for s in sources:
                if s is not None and s.channels > 2:
                    raise self._unmodelled(f"a {s.channels}-channel source")
            length = max(s.frames for s in sources if s is not None)
            tracks = [t for _, t in targets]
            folder = targets[0][0].parent
            folder.mkdir(parents=True, exist_ok=True)
            outputs = [sf.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_24",
                                    format="WAV") for path, _ in targets]
            try:
                done = 0
                while done < length:
                    frames = min(self.block_frames, length - done)
                    for source, track, out in zip(sources, tracks, outputs):
                        out.write(self._block(source, frames) * self._gain(track, done, frames, rate))
                        out.flush()
                    done += frames
                    if self.block_delay_s > 0:
                        time.sleep(self.block_delay_s)  # render time, not synchronisation
            finally:
                for out in outputs:
                    out.close()
        finally:
            for s in sources:
                if s is not None:
                    s.close()
        return [path for path, _ in targets]

    @staticmethod
    def _gain(track: Track, start: int, frames: int, rate: int) -> np.ndarray:
        """Per-frame gain ``(frames, 1)``: fader, polarity, mute and the volume envelope."""
        fader = 0.0 if track.mute else (-track.vol if track.phase_inverted else track.vol)
        envelope = track.envelopes.get("<VOLENV2")
        if envelope is None or not envelope.active or not envelope.points or fader == 0.0:
            return np.full((frames, 1), fader)
        times = (start + np.arange(frames)) / float(rate)
        return (fader * envelope_gains(envelope, times))[:, None]

    @staticmethod
    def _block(source: sf.SoundFile | None, frames: int) -> np.ndarray:
        block = np.zeros((frames, 2))
        if source is None:
            return block
        data = source.read(frames, dtype="float64", always_2d=True)
        if data.shape[1] == 1:
            data = np.repeat(data, 2, axis=1)
        block[:len(data)] = data
        return block

    # -- the bounce script ----------------------------------------------------------------------

    def bounce_dir(self) -> Path:
        """ProjExtState ``mixbridge/render_dir`` if set (relative to the project folder), else
        ``<project folder>/MixBridge stems`` (as the Lua script decides)."""
        configured = self.api.project.state.proj_ext.get("mixbridge", {}).get("render_dir", "")
        base = self.project_dir()
        if configured and Path(configured).is_absolute():
            return Path(configured)
        if base is None:
            raise ValueError("save the project first: the stems go into a folder beside it "
                             "(the project has no path)")
        return base / configured if configured else base / DEFAULT_SUBDIR

    def bounce(self) -> dict[str, Any]:
        """The modelled ``MixBridge_Bounce selected tracks as stems.lua``.

        Returns
        -------
        dict
            ``{"manifest": path or None, "stems": [paths], "error": message or None}``; a refusal
            (nothing selected, unsaved project) or a failed render leaves a console line too, where
            the real script shows a message box.
        """
        from bridge.manifest import MANIFEST_NAME, ManifestStem, new_bounce_id, write_manifest

        project = self.api.project
        selected = [t for t in project.tracks if t.selected]
        if not selected:
            return self._refuse("Select the tracks to bounce first.")
        try:
            folder = self.bounce_dir()
        except ValueError as error:
            return self._refuse(f"Cannot bounce: {error}.")
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (folder / MANIFEST_NAME, folder / (MANIFEST_NAME + ".tmp")):
            stale.unlink(missing_ok=True)
        bounce_id = new_bounce_id()
        undo: list[Any] = []
        project.undo.begin(project.state)
        try:
            for key, value in (("RENDER_SETTINGS", 2.0), ("RENDER_BOUNDSFLAG", 1.0), ("RENDER_ADDTOPROJ", 0.0)):
                undo.append((self.numeric, key, self.numeric[key]))
                self.numeric[key] = value
            for key, value in (("RENDER_FILE", str(folder)), ("RENDER_PATTERN", "$track"),
                               ("RENDER_FORMAT", "evaw")):
                undo.append((self.strings, key, self.strings[key]))
                self.strings[key] = value
            for track in project.tracks:
                for fx in track.fxs:
                    if fx.renamed in AI_FX_NAMES and fx.enabled:
                        undo.append((fx, "enabled", True))
                        fx.enabled = False
                for attr, value in _parse_pre_ai(track.ext.get("mixbridge/pre_ai", "")).items():
                    field, current = _ATTR_FIELDS[attr], getattr(track, _ATTR_FIELDS[attr])
                    undo.append((track, field, current))
                    setattr(track, field, bool(value) if field == "phase_inverted" else value)
                self._silence_ai_points(track, undo)
            planned = [(path, track) for path, track in self._plan_targets()]
            written = self.render()
        except Exception as error:  # noqa: BLE001 - the script's pcall: restore, report, carry on
            self._restore(undo)
            project.undo.end("MixBridge: bounce selected tracks as stems", -1, project.state)
            return self._refuse(f"The bounce failed: {error}")
        self._restore(undo)
        project.undo.end("MixBridge: bounce selected tracks as stems", -1, project.state)
        stems = [ManifestStem(track.guid, self._track_name(track), path,
                              sf.info(str(path)).samplerate) for path, track in planned]
        manifest = write_manifest(folder, stems, project=project.name, bounce_id=bounce_id)
        self.api.ext_state[("mixbridge", "last_bounce")] = bounce_id
        project.console.append(f"MixBridge: bounced {len(stems)} stem(s) into {folder} ({manifest})\n")
        return {"manifest": str(manifest), "stems": [str(p) for p in written], "error": None}

    @staticmethod
    def _silence_ai_points(track: Track, undo: list[Any]) -> None:
        """The script's treatment of the bridge's volume-envelope points (``P_EXT:mixbridge/ai_points``):
        an envelope holding only those is made inactive for the render; otherwise only those points
        are taken out, and put back afterwards."""
        ours = parse_ai_points(track.ext.get("mixbridge/ai_points", ""))
        envelope = track.envelopes.get("<VOLENV2")
        if not ours or envelope is None or not envelope.points:
            return
        matching = [p for p in envelope.points if any(point_matches(p.time_s, p.value, t, v) for t, v in ours)]
        if not matching:
            return
        if len(matching) == len(envelope.points):
            if envelope.active:
                undo.append((envelope, "active", True))
                envelope.active = False
            return
        undo.append((envelope, "points", list(envelope.points)))
        envelope.points = [p for p in envelope.points if p not in matching]

    @staticmethod
    def _restore(undo: list[Any]) -> None:
        for owner, name, value in reversed(undo):
            if isinstance(owner, dict):
                owner[name] = value
            else:
                setattr(owner, name, value)

    def _refuse(self, message: str) -> dict[str, Any]:
        self.api.project.console.append(f"MixBridge: {message}\n")
        return {"manifest": None, "stems": [], "error": message}


_ATTR_FIELDS = {"D_VOL": "vol", "D_PAN": "pan", "D_WIDTH": "width", "B_PHASE": "phase_inverted"}


def _parse_pre_ai(text: str) -> dict[str, float]:
    """``D_VOL=0.5;D_PAN=0`` -> values of the attributes the bridge owns (others ignored, as in Lua)."""
    values = {}
    for item in text.split(";"):
        attr, _, number = item.partition("=")
        if attr in OWNED_ATTRS:
            try:
                values[attr] = float(number)
            except ValueError:
                continue
    return values


def envelope_gains(envelope: Any, times: np.ndarray) -> np.ndarray:
    """The gain a fader-scaled volume envelope plays at ``times`` (seconds); see the module docstring."""
    from .api import UnmodelledCall
    from .fader_scaling import SCALING_FADER, gains_from_sliders

    points = sorted(envelope.points, key=lambda p: p.time_s)
    if any(p.shape not in (0, 1) for p in points):
        raise UnmodelledCall("envelope point shapes other than linear (0) and square (1)")
    at = np.array([p.time_s for p in points])
    values = np.array([p.value for p in points])
    index = np.searchsorted(at, times, side="right") - 1
    inner = np.clip(index, 0, len(points) - 1)
    nxt = np.clip(index + 1, 0, len(points) - 1)
    span = np.where(at[nxt] > at[inner], at[nxt] - at[inner], 1.0)
    frac = np.clip((times - at[inner]) / span, 0.0, 1.0)
    linear = np.array([p.shape == 0 for p in points])[inner] & (nxt != inner)
    value = np.where(linear, values[inner] + frac * (values[nxt] - values[inner]), values[inner])
    value = np.where(index < 0, values[0], value)
    if envelope.scaling_mode == SCALING_FADER:
        return gains_from_sliders(value)
    return value


def parse_ai_points(text: str) -> list[tuple[float, float]]:
    """``12.05:716.0;20.05:592.4`` -> the bridge's points ``(time_s, stored value)`` (as the Lua reads them)."""
    out = []
    for item in text.split(";"):
        t, sep, v = item.partition(":")
        try:
            if sep:
                out.append((float(t), float(v)))
        except ValueError:
            continue
    return out


def point_matches(time_s: float, value: float, ai_time_s: float, ai_value: float) -> bool:
    """One envelope point is the bridge's: same time (1 µs) and the same stored value (1e-6 relative)."""
    return abs(time_s - ai_time_s) <= 1e-6 and abs(value - ai_value) <= 1e-6 * max(1.0, abs(ai_value))
