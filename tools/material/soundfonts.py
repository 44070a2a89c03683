"""The soundfonts Debian ships, what presets they hold, and rendering one MIDI part through fluidsynth.

fluidsynth runs as a plain process (``fluidsynth -ni -F out.wav ...``), once per part, with every
setting that changes the sound passed explicitly: reverb and chorus on/off (``-R``/``-C``) and
their parameters (``-o synth.reverb.*``, ``-o synth.chorus.*``), gain, rate, float output (no
dither, so renders are bit-identical run to run) and dynamic sample loading (only the samples a
part uses are loaded: 0.3 s instead of 1 s for FluidR3 GM, 1.8 s instead of 4.5 s for MuseScore
General's compressed sf3).
"""
from __future__ import annotations

import functools
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .midi import Track, write_smf

FLUIDSYNTH = "/usr/bin/fluidsynth"
#: fluidsynth processes events at the start of its 64-sample blocks and its first output block
#: comes one block late: a note written at 1.000 s starts sounding at 1.000 s + 64 samples.
FLUIDSYNTH_LATENCY_FRAMES = 64


@dataclass(frozen=True, slots=True)
class SoundFont:
    """A soundfont file and what it is good for.

    Attributes
    ----------
    name : str
        Short key used in recipes (``"FluidR3_GM"``).
    path : Path
    melodic : bool
        Holds a General MIDI melodic bank 0 (FluidR3_GS does not: it is only GS variation/SFX banks).
    """

    name: str
    path: Path
    melodic: bool
    note: str = ""


SOUNDFONTS: dict[str, SoundFont] = {
    "FluidR3_GM": SoundFont("FluidR3_GM", Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), True,
                            "fluid-soundfont-gm: full GM set, 148 MB"),
    "FluidR3_GS": SoundFont("FluidR3_GS", Path("/usr/share/sounds/sf2/FluidR3_GS.sf2"), False,
                            "fluid-soundfont-gs: GS variation banks 1-8 (SFX: wind, rain, stream, ...) only"),
    "sf_GMbank": SoundFont("sf_GMbank", Path("/usr/share/sounds/sf2/sf_GMbank.sf2"), True,
                           "csound-soundfont: a small (4 MB) GM bank"),
    "MuseScore_General": SoundFont("MuseScore_General", Path("/usr/share/sounds/sf3/MuseScore_General.sf3"), True,
                                   "musescore-general-soundfont: sf3 (Ogg-compressed); fluidsynth 2.x reads it"),
}
#: Melodic soundfonts, in the order recipes pick them by seed.
MELODIC = ("FluidR3_GM", "sf_GMbank", "MuseScore_General")


class MaterialError(RuntimeError):
    """A tool or input the material builder needs is missing or failed."""


def soundfont(name_or_path: str | os.PathLike) -> SoundFont:
    """Look a soundfont up by its short name, or wrap a path."""
    key = str(name_or_path)
    if key in SOUNDFONTS:
        return SOUNDFONTS[key]
    path = Path(key)
    return SoundFont(path.stem, path, True)


def missing_tools() -> list[str]:
    """What the builder needs and this machine lacks (empty when everything is there)."""
    missing = []
    if not Path(FLUIDSYNTH).exists() and not shutil.which("fluidsynth"):
        missing.append("fluidsynth (apt: fluidsynth)")
    for name, package in (("FluidR3_GM", "fluid-soundfont-gm"), ("FluidR3_GS", "fluid-soundfont-gs"),
                          ("sf_GMbank", "csound-soundfont"), ("MuseScore_General", "musescore-general-soundfont")):
        if not SOUNDFONTS[name].path.exists():
            missing.append(f"{SOUNDFONTS[name].path} (apt: {package})")
    return missing


def fluidsynth_binary() -> str:
    if Path(FLUIDSYNTH).exists():
        return FLUIDSYNTH
    found = shutil.which("fluidsynth")
    if not found:
        raise MaterialError("fluidsynth is not installed (apt install fluidsynth)")
    return found


@functools.lru_cache(maxsize=None)
def fluidsynth_version() -> str:
    try:
        out = subprocess.run([fluidsynth_binary(), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, MaterialError):
        return "missing"
    lines = [line for line in out.stdout.splitlines() if "version" in line.lower()]
    return " / ".join(lines) or out.stdout.strip()


# ------------------------------------------------------------------------------------- presets


@dataclass(frozen=True, slots=True)
class Preset:
    bank: int
    program: int
    name: str


def _walk_riff(fh, end: int):
    while fh.tell() + 8 <= end:
        cid, size = struct.unpack("<4sI", fh.read(8))
        start = fh.tell()
        yield cid, size, start
        fh.seek(start + size + (size & 1))


@functools.lru_cache(maxsize=None)
def presets(path: str | os.PathLike) -> tuple[Preset, ...]:
    """The presets (bank, program, name) of an SF2/SF3 file, read from its ``pdta/phdr`` chunk.

    SF3 keeps SF2's RIFF layout and only compresses the sample data, so one reader serves both.
    """
    with open(path, "rb") as fh:
        riff, size, form = struct.unpack("<4sI4s", fh.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise MaterialError(f"{path}: not a SoundFont (RIFF sfbk)")
        for cid, csize, start in _walk_riff(fh, 8 + size):
            if cid != b"LIST" or fh.read(4) != b"pdta":
                continue
            for sid, ssize, sstart in _walk_riff(fh, start + csize):
                if sid == b"phdr":
                    data = fh.read(ssize)
                    out = []
                    for i in range(0, len(data) - 38, 38):  # the last record is the EOP terminator
                        name, program, bank = struct.unpack("<20sHH", data[i:i + 24])
                        out.append(Preset(bank, program, name.split(b"\0")[0].decode("latin-1").strip()))
                    return tuple(sorted(out, key=lambda p: (p.bank, p.program)))
    raise MaterialError(f"{path}: no preset headers found")


def has_preset(font: SoundFont, program: int, bank: int = 0) -> bool:
    return any(p.bank == bank and p.program == program for p in presets(str(font.path)))


def preset_name(font: SoundFont, program: int, bank: int = 0) -> str:
    for p in presets(str(font.path)):
        if p.bank == bank and p.program == program:
            return p.name
    return ""


# ------------------------------------------------------------------------------------- render


@dataclass(frozen=True, slots=True)
class SynthSettings:
    """The fluidsynth settings of one render (all explicit; fluidsynth's own defaults are never used).

    Reverb and chorus parameters are fluidsynth 2.x ``synth.reverb.*`` / ``synth.chorus.*``; the
    amount each part sends is its MIDI CC91 / CC93 (:class:`~tools.material.midi.Track`).
    """

    gain: float = 0.5
    reverb: bool = False
    reverb_room_size: float = 0.4
    reverb_damp: float = 0.4
    reverb_width: float = 0.8
    reverb_level: float = 0.6
    chorus: bool = False
    chorus_voices: int = 3
    chorus_level: float = 1.2
    chorus_speed_hz: float = 0.35
    chorus_depth_ms: float = 6.0
    polyphony: int = 256

    def arguments(self) -> list[str]:
        opts = {
            "synth.dynamic-sample-loading": "1",
            "synth.polyphony": str(self.polyphony),
            "synth.reverb.room-size": f"{self.reverb_room_size:.3f}",
            "synth.reverb.damp": f"{self.reverb_damp:.3f}",
            "synth.reverb.width": f"{self.reverb_width:.3f}",
            "synth.reverb.level": f"{self.reverb_level:.3f}",
            "synth.chorus.nr": str(self.chorus_voices),
            "synth.chorus.level": f"{self.chorus_level:.3f}",
            "synth.chorus.speed": f"{self.chorus_speed_hz:.3f}",
            "synth.chorus.depth": f"{self.chorus_depth_ms:.3f}",
        }
        args = ["-R", "1" if self.reverb else "0", "-C", "1" if self.chorus else "0", "-g", f"{self.gain:.4f}"]
        for key, value in opts.items():
            args += ["-o", f"{key}={value}"]
        return args


def render_midi(font: SoundFont, midi_path: str | os.PathLike, out_wav: str | os.PathLike,
                settings: SynthSettings, sample_rate: int = 48000) -> Path:
    """Render a MIDI file to a 32-bit float stereo WAV with fluidsynth (fast render, no audio device)."""
    if not font.path.exists():
        raise MaterialError(f"soundfont {font.path} is missing")
    cmd = [fluidsynth_binary(), "-n", "-i", "-q", *settings.arguments(), "-r", str(sample_rate),
           "-O", "float", "-T", "wav", "-F", str(out_wav), str(font.path), str(midi_path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise MaterialError(f"fluidsynth timed out rendering {midi_path}") from exc
    if done.returncode != 0 or not Path(out_wav).exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise MaterialError(f"fluidsynth failed on {midi_path}: {' | '.join(tail)}")
    return Path(out_wav)


def render_tracks(font: SoundFont, tracks: list[Track], tempo_bpm: float, length_s: float,
                  settings: SynthSettings, sample_rate: int = 48000, tail_s: float = 0.0) -> np.ndarray:
    """Render MIDI tracks through fluidsynth and return exactly ``length_s`` seconds of stereo audio.

    Returns
    -------
    ndarray [shape=(frames, 2), dtype=float32]
        Aligned so that a note written at time t starts at sample round(t * rate) (fluidsynth's
        one-block latency removed); cut or zero-padded to ``round(length_s * rate)`` frames.
    """
    frames = int(round(length_s * sample_rate))
    with tempfile.TemporaryDirectory(prefix="mixbridge-fs-") as tmp:
        mid = write_smf(Path(tmp) / "part.mid", tracks, tempo_bpm, end_s=length_s + tail_s)
        wav = render_midi(font, mid, Path(tmp) / "part.wav", settings, sample_rate)
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise MaterialError(f"fluidsynth wrote {rate} Hz, asked for {sample_rate} Hz")
    audio = audio[FLUIDSYNTH_LATENCY_FRAMES:]
    out = np.zeros((frames, 2), dtype=np.float32)
    n = min(frames, len(audio))
    out[:n] = audio[:n, :2]
    return out
