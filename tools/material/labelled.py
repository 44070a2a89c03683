"""Labelled single-part stems, for training and testing a role recogniser (issue 14).

Two general functions, no training here:

- :func:`render_labelled_part` — one pitched part from any soundfont and GM program, with a pattern
  (sustained, comp, arp, strum, melody, bassline, stabs, swell), register, density, velocity,
  length, tempo, key and optional processing (EQ tilt, high-pass, compression, reverb, gain).
- :func:`render_drum_stem` — one drum mic of a simulated multi-mic recording (with bleed) or one
  dry kit piece (kick, snare, hats, toms, cymbals, ride, crash, or the whole kit), from any kit.

Both return a :class:`LabelledStem` (audio + role + label + everything that made it) and are
seeded and deterministic; fluidsynth renders and kit recordings are cached like sessions' parts.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.suggest import roles as R

from . import dsp
from .cache import cached_array
from .drumkits import load_kit
from .drums import MIC_STEMS, dry_pieces, record
from .gm import gm_role
from .midi import Note
from .parts import Instrument, render_notes
from .soundfonts import SynthSettings, has_preset, preset_name, soundfont
from .song import make_song, rng_for

PATTERN_PARTS = {"sustained": "pad", "comp": "keys", "arp": "arp", "strum": "guitar", "melody": "lead",
                 "bassline": "bass", "stabs": "brass", "swell": "fx"}
#: (pattern, register low, register high) per GM family start program.
FAMILY_DEFAULTS = ((0, "comp", 48, 84), (8, "arp", 60, 96), (16, "sustained", 48, 79), (24, "strum", 40, 76),
                   (32, "bassline", 28, 52), (40, "sustained", 48, 84), (52, "melody", 55, 79), (55, "stabs", 48, 84),
                   (56, "stabs", 52, 84), (64, "melody", 55, 88), (80, "melody", 55, 88), (88, "sustained", 48, 84),
                   (96, "swell", 48, 84), (104, "melody", 52, 84), (112, "arp", 48, 72), (119, "swell", 48, 84))


@dataclass(frozen=True)
class Processing:
    """Optional processing after the render, in this order: high-pass, tilt, compression, reverb, gain."""

    highpass_hz: float | None = None
    tilt_db_per_octave: float = 0.0
    compress_ratio: float | None = None
    compress_below_peak_db: float = 12.0
    reverb_mix: float = 0.0
    reverb_rt60_s: float = 1.2
    gain_db: float = 0.0


@dataclass(frozen=True)
class PartSpec:
    """One labelled pitched part.  ``pattern``/``register`` ``None`` take the GM family's defaults."""

    program: int
    soundfont: str = "FluidR3_GM"
    bank: int = 0
    pattern: str | None = None
    register: tuple[int, int] | None = None
    density: float = 1.0
    velocity_offset: int = 0
    length_s: float = 8.0
    tempo_bpm: float = 120.0
    key: str = "C major"
    seed: int = 0
    channels: int = 2
    fluid_reverb: bool = False
    fluid_chorus: bool = False
    loudness_lufs: float = -20.0
    processing: Processing = field(default_factory=Processing)


@dataclass(frozen=True)
class DrumSpec:
    """One labelled drum stem: ``stem`` is a mic (``kick_in`` .. ``room``) or a dry piece
    (``kick``, ``snare``, ``hats``, ``toms``, ``cymbals``, ``ride``, ``crash``, ``kit``)."""

    kit: str
    stem: str
    style: str | None = None
    tempo_bpm: float = 120.0
    length_s: float = 8.0
    seed: int = 0
    fills: bool = True
    velocity_scale: float = 1.0
    loudness_lufs: float = -20.0
    processing: Processing = field(default_factory=Processing)


@dataclass(frozen=True)
class LabelledStem:
    """Audio ``(frames, channels)`` float32 with what it is and how it was made."""

    audio: np.ndarray
    sample_rate: int
    role: str
    label: str
    meta: dict

    def write(self, path: str | Path, subtype: str = "PCM_24") -> Path:
        """Write the WAV and a ``.json`` sidecar (role, label, meta) next to it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), self.audio, self.sample_rate, subtype=subtype)
        path.with_suffix(".json").write_text(json.dumps({"role": self.role, "label": self.label, **self.meta},
                                                        indent=1, default=str) + "\n")
        return path


def family_defaults(program: int) -> tuple[str, int, int]:
    best = FAMILY_DEFAULTS[0]
    for entry in FAMILY_DEFAULTS:
        if entry[0] <= program:
            best = entry
    return best[1], best[2], best[3]


def _into_register(pitch: int, low: int, high: int) -> int:
    while pitch < low:
        pitch += 12
    while pitch > high and pitch - 12 >= low:
        pitch -= 12
    return min(pitch, high) if pitch > high else pitch


def _process(audio: np.ndarray, fs: int, proc: Processing, seed: int) -> np.ndarray:
    if proc.highpass_hz:
        audio = dsp.apply_eq(audio, [dsp.Band("highpass", proc.highpass_hz, 0.0, 0.707)], fs)
    if proc.tilt_db_per_octave:
        audio = dsp.apply_eq(audio, dsp.tilt_bands(proc.tilt_db_per_octave), fs)
    if proc.compress_ratio:
        peak = dsp.db(float(np.abs(audio).max()) or 1e-9)
        audio = dsp.compress(audio, fs, peak - proc.compress_below_peak_db, proc.compress_ratio)
    if proc.reverb_mix > 0:
        audio = dsp.add_reverb(audio, fs, proc.reverb_mix, proc.reverb_rt60_s, seed)
    if proc.gain_db:
        audio = (audio * np.float32(dsp.undb(proc.gain_db))).astype(np.float32)
    return audio


def _normalise(audio: np.ndarray, fs: int, lufs: float) -> np.ndarray:
    measured = dsp.integrated_lufs(audio, fs)
    if measured is None:
        return audio
    return (audio * np.float32(dsp.undb(lufs - measured))).astype(np.float32)


def part_notes(spec: PartSpec) -> tuple[tuple[Note, ...], str, int, int]:
    """The notes a :class:`PartSpec` plays, with its pattern and register ``(notes, pattern, low, high)``.

    Raises
    ------
    ValueError
        The pattern is unknown.
    """
    default_pattern, low, high = family_defaults(spec.program)
    pattern = spec.pattern or default_pattern
    if pattern not in PATTERN_PARTS:
        raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERN_PARTS)}")
    low, high = spec.register or (low, high)
    part = PATTERN_PARTS[pattern]
    bar_s = 240.0 / spec.tempo_bpm
    bars = max(1, math.ceil(spec.length_s / bar_s))
    song = make_song(spec.seed, spec.tempo_bpm, spec.key, (("verse", bars),), (part,),
                     arrangement={part: ("verse",), "drums": ("verse",)})
    rng = rng_for(spec.seed, "density", pattern)
    notes = []
    for n in song.parts[part]:
        if spec.density < 1.0 and rng.random() > spec.density:
            continue
        notes.append(Note(n.start_s, n.length_s, _into_register(n.pitch, low, high),
                          int(np.clip(n.velocity + spec.velocity_offset, 1, 127))))
    return tuple(n for n in notes if n.start_s < spec.length_s), pattern, low, high


def finish_part(audio: np.ndarray, spec: PartSpec, notes: tuple[Note, ...], pattern: str, low: int, high: int,
                preset: str, sample_rate: int = 48000) -> LabelledStem:
    """A rendered part (stereo) to its :class:`LabelledStem`: channels, loudness, processing, labels."""
    if spec.channels == 1:
        audio = dsp.to_mono(audio)
    audio = _normalise(audio, sample_rate, spec.loudness_lufs)
    audio = _process(audio, sample_rate, spec.processing, spec.seed)
    role, label = gm_role(spec.program)
    if pattern == "arp" and role in (R.KEYS, R.SYNTH_LEAD):
        label = "arp"
    pitches = [n.pitch for n in notes]
    meta = {"spec": asdict(spec), "pattern": pattern, "register": [low, high], "preset": preset,
            "notes": len(notes), "lowest_note": min(pitches) if pitches else None,
            "highest_note": max(pitches) if pitches else None, "source": "fluidsynth"}
    return LabelledStem(audio, sample_rate, role, label, meta)


def render_labelled_part(spec: PartSpec, sample_rate: int = 48000) -> LabelledStem:
    """Render one labelled part (see module docs).  Role and label come from the GM family (:mod:`.gm`).

    Raises
    ------
    ValueError
        The soundfont has no such preset, or the pattern is unknown.
    """
    font = soundfont(spec.soundfont)
    if not has_preset(font, spec.program, spec.bank):
        raise ValueError(f"{font.name} has no preset bank {spec.bank} program {spec.program}")
    notes, pattern, low, high = part_notes(spec)
    settings = SynthSettings(reverb=spec.fluid_reverb, chorus=spec.fluid_chorus)
    inst = Instrument(font.name, spec.bank, spec.program, preset_name(font, spec.program, spec.bank))
    audio = render_notes(inst, [(notes, 64)], spec.tempo_bpm, spec.length_s, settings,
                         40 if spec.fluid_reverb else 0, 40 if spec.fluid_chorus else 0, sample_rate)
    return finish_part(audio, spec, notes, pattern, low, high, inst.preset, sample_rate)


DRUM_LABELS = {"kick_in": (R.KICK, "kick"), "kick_out": (R.KICK, "kick"), "kick": (R.KICK, "kick"),
               "snare_top": (R.SNARE, "snare"), "snare_bottom": (R.SNARE, "snare"), "snare": (R.SNARE, "snare"),
               "tom1": (R.DRUMS, "toms"), "tom2": (R.DRUMS, "toms"), "floor_tom": (R.DRUMS, "toms"),
               "toms": (R.DRUMS, "toms"), "hats": (R.HATS, "hats"), "cymbals": (R.HATS, "cymbals"),
               "ride": (R.HATS, "cymbals"), "crash": (R.HATS, "cymbals"), "overheads": (R.DRUMS, "overheads"),
               "room": (R.DRUMS, "room"), "kit": (R.DRUMS, "drum_kit")}
DRY_PIECES = {"kick": ("kick",), "snare": ("snare",), "hats": ("hats",), "toms": ("tom1", "tom2", "floor"),
              "cymbals": ("ride", "crash"), "ride": ("ride",), "crash": ("crash",),
              "kit": ("kick", "snare", "hats", "tom1", "tom2", "floor", "ride", "crash")}
#: A style that features the piece, when the spec leaves ``style`` open.
STYLE_FOR = {"toms": "tom_groove", "tom1": "tom_groove", "tom2": "tom_groove", "floor_tom": "tom_groove",
             "cymbals": "half_time", "ride": "half_time", "crash": "crash_accents"}


def render_drum_stem(spec: DrumSpec, sample_rate: int = 48000, cache: bool = True) -> LabelledStem:
    """Render one labelled drum stem from a Hydrogen kit (see module docs).

    ``cache=False`` skips the kit-recording cache (a training corpus of thousands of stems would
    fill gigabytes with audio it never reads again).
    """
    if spec.stem not in MIC_STEMS and spec.stem not in DRY_PIECES:
        raise ValueError(f"unknown drum stem {spec.stem!r}; mics: {', '.join(MIC_STEMS)}; dry: {', '.join(DRY_PIECES)}")
    kit = load_kit(spec.kit)
    style = spec.style or STYLE_FOR.get(spec.stem, "rock")
    bar_s = 240.0 / spec.tempo_bpm
    bars = max(1, math.ceil(spec.length_s / bar_s))
    form = (("verse", bars - 1), ("verse", 1)) if spec.fills and bars >= 3 else (("verse", bars),)
    song = make_song(spec.seed, spec.tempo_bpm, "C major", form, (), drum_styles={"verse": style})
    hits = tuple(replace(h, velocity=float(np.clip(h.velocity * spec.velocity_scale, 0.05, 1.0)))
                 for h in song.drum_hits if h.time_s < spec.length_s)
    description = {"what": "drum-stem", "kit": spec.kit, "stem": spec.stem, "seed": spec.seed,
                   "length_s": spec.length_s, "hits": [[h.time_s, h.piece, h.articulation, h.velocity] for h in hits]}

    def build() -> np.ndarray:
        if spec.stem in MIC_STEMS:
            rec = record(kit, hits, spec.length_s, (spec.stem,), spec.seed, sample_rate)
            if spec.stem not in rec.stems:
                raise ValueError(f"kit {spec.kit} has no piece for the {spec.stem} mic")
            return rec.stems[spec.stem]
        frames = int(round(spec.length_s * sample_rate))
        dry = dry_pieces(kit, hits, frames, sample_rate, spec.seed)
        wanted = [dry[p] for p in DRY_PIECES[spec.stem] if p in dry]
        if not wanted:
            raise ValueError(f"kit {spec.kit} has none of {DRY_PIECES[spec.stem]} in this pattern")
        return np.sum(wanted, axis=0)[:, None]

    audio = cached_array("drums", description, build) if cache else np.ascontiguousarray(build(), dtype=np.float32)
    audio = _normalise(audio, sample_rate, spec.loudness_lufs)
    audio = _process(audio, sample_rate, spec.processing, spec.seed)
    role, label = DRUM_LABELS[spec.stem]
    meta = {"spec": asdict(spec), "style": style, "hits": len(hits), "kit_name": kit.name,
            "source": "hydrogen kit, simulated mic" if spec.stem in MIC_STEMS else "hydrogen kit, dry piece"}
    return LabelledStem(audio, sample_rate, role, label, meta)
