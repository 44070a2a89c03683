"""Pitched parts to audio: which GM program plays each part, fluidsynth settings per part, rendering and caching.

One fluidsynth run per part.  Stereo doubles (backing vocals: the harmony and its double) are one
run with two MIDI channels panned apart, so they come out as one stereo stem.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import dsp
from .cache import cached_array
from .midi import Note, Track
from .soundfonts import SoundFont, SynthSettings, has_preset, preset_name, render_tracks, soundfont
from .song import Song, rng_for

#: Candidate (bank, program) per part label, in order of preference (the seed picks among the first ones).
PROGRAMS: dict[str, tuple[tuple[int, int], ...]] = {
    "bass": ((0, 33), (0, 34), (0, 38)),               # fingered, picked, synth bass 1
    "keys": ((0, 0), (0, 4), (0, 1)),                  # grand, EP (Rhodes), bright piano
    "pad": ((0, 89), (0, 48), (0, 50)),                # warm pad, strings, synth strings
    "guitar": ((0, 25), (0, 27), (0, 29)),             # steel acoustic, clean electric, overdrive
    "arp": ((0, 81), (0, 80)),                         # saw, square
    "lead_gm": ((0, 54), (0, 53), (0, 52)),            # synth voice, voice oohs, choir aahs (vocal proxies)
    "bvs": ((0, 53), (0, 52)),                         # voice oohs, choir aahs (proxies)
    "brass": ((0, 61), (0, 62)),                       # brass section, synth brass
    "fx": ((3, 122), (4, 122), (0, 122)),              # GS wind, GS stream (FluidR3_GS), GM seashore
}
#: Parts rendered as mono files (sources an engineer records or bounces mono).
MONO_PARTS = ("bass", "lead")

#: fluidsynth settings per part: reverb on or off and its send (CC91), explicit for all.  fluidsynth 2.3's
#: chorus is off for every session part: its output is strongly anti-correlated (a square lead with
#: chorus measured -0.72 between channels), which would plant a phase fault in the clean twin.
#: Width comes from stereo samples, the reverb and double-tracking (:data:`DOUBLES`) instead.
SETTINGS: dict[str, tuple[SynthSettings, int, int]] = {
    "bass": (SynthSettings(reverb=False, chorus=False), 0, 0),
    "keys": (SynthSettings(reverb=True, reverb_room_size=0.3, reverb_level=0.5, chorus=False), 25, 0),
    "pad": (SynthSettings(reverb=True, reverb_room_size=0.6, reverb_level=0.7, chorus=False), 60, 0),
    "guitar": (SynthSettings(reverb=True, reverb_room_size=0.25, reverb_level=0.4, chorus=False), 20, 0),
    "arp": (SynthSettings(reverb=True, reverb_room_size=0.4, reverb_level=0.5, chorus=False), 30, 0),
    "lead_gm": (SynthSettings(reverb=False, chorus=False), 0, 0),
    "bvs": (SynthSettings(reverb=True, reverb_room_size=0.4, reverb_level=0.4, chorus=False), 20, 0),
    "brass": (SynthSettings(reverb=True, reverb_room_size=0.3, reverb_level=0.4, chorus=False), 20, 0),
    "fx": (SynthSettings(reverb=True, reverb_room_size=0.8, reverb_level=0.8, chorus=False), 80, 0),
}
#: Parts played twice (two takes, ``<part>_double`` in the song) and panned apart (MIDI CC10) in one stem.
DOUBLES = {"guitar": (20, 108), "bvs": (24, 104)}
FX_FONT = "FluidR3_GS"


@dataclass(frozen=True, slots=True)
class Instrument:
    """What plays a part: soundfont, bank, program and the preset's name in that font."""

    soundfont: str
    bank: int
    program: int
    preset: str


def choose_instrument(label: str, font_name: str, seed: int, program: int | None = None) -> Instrument:
    """The part's instrument: ``program`` if given, else a seeded pick among :data:`PROGRAMS` that the font has."""
    key = "lead_gm" if label == "lead" else label
    font_name = FX_FONT if label == "fx" else font_name
    font = soundfont(font_name)
    if program is not None:
        options = [(0, program)]
    else:
        options = [bp for bp in PROGRAMS[key] if has_preset(font, bp[1], bp[0])]
        if label == "fx" and not options:  # GS font missing: the melodic font's GM effect
            font = soundfont("FluidR3_GM")
            options = [(0, 122)]
    if not options:
        raise ValueError(f"soundfont {font.name} has none of the programs for {label}: {PROGRAMS[key]}")
    bank, prog = options[int(rng_for(seed, "program", label).integers(len(options)))]
    return Instrument(font.name, bank, prog, preset_name(font, prog, bank))


def _note_dicts(notes: tuple[Note, ...]) -> list[list]:
    return [[n.start_s, n.length_s, n.pitch, n.velocity] for n in notes]


def render_notes(instrument: Instrument, channels: list[tuple[tuple[Note, ...], int]], tempo_bpm: float,
                 length_s: float, settings: SynthSettings, reverb_send: int, chorus_send: int,
                 fs: int = 48000, volume: int = 100) -> np.ndarray:
    """Render one part (one or more MIDI channels of ``(notes, pan)``) through fluidsynth, cached.

    Returns stereo float32 ``(frames, 2)``.
    """
    description = {"what": "fluidsynth-part", "instrument": asdict(instrument), "tempo": tempo_bpm,
                   "length_s": round(length_s, 6), "settings": asdict(settings), "sends": [reverb_send, chorus_send],
                   "fs": fs, "volume": volume, "channels": [[pan, _note_dicts(notes)] for notes, pan in channels]}

    def build() -> np.ndarray:
        font: SoundFont = soundfont(instrument.soundfont)
        tracks = [Track(channel=k if k < 9 else k + 1, program=instrument.program, bank=instrument.bank,
                        notes=notes, volume=volume, pan=pan, reverb_send=reverb_send, chorus_send=chorus_send)
                  for k, (notes, pan) in enumerate(channels)]
        return render_tracks(font, tracks, tempo_bpm, length_s, settings, fs, tail_s=0.5)

    return cached_array("parts", description, build)


def render_part(song: Song, label: str, instrument: Instrument, length_s: float, fs: int = 48000) -> np.ndarray:
    """A song part as audio: stereo for most parts, mono ``(frames, 1)`` for :data:`MONO_PARTS`."""
    key = "lead_gm" if label == "lead" else label
    settings, rev, cho = SETTINGS[key]
    if label in DOUBLES and f"{label}_double" in song.parts:
        left, right = DOUBLES[label]
        channels = [(song.parts[label], left), (song.parts[f"{label}_double"], right)]
    else:
        channels = [(song.parts[label], 64)]
    audio = render_notes(instrument, channels, song.tempo_bpm, length_s, settings, rev, cho, fs)
    return dsp.to_mono(audio) if label in MONO_PARTS else audio
