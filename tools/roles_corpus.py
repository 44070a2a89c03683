"""The role recogniser's training corpus: a seeded plan of labelled stems, rendered in batches, reduced
to descriptors (issue 14).

Sources (every one a *sound source* the evaluation can hold out whole):

- **Soundfonts** (``FluidR3_GM``, ``sf_GMbank``, ``MuseScore_General``; fx also from ``FluidR3_GS``):
  pitched parts through fluidsynth, GM programs mapped to classes by family (:data:`PITCHED`), and
  each font's own GM drum kits (bank 128) played piece by piece (:data:`GM_DRUM_NOTES`).
- **Hydrogen kits** (``/usr/share/hydrogen/data/drumkits``): the simulated multi-mic recording of
  :mod:`tools.material.drums` (close mics with bleed, overheads, room) and dry pieces, through
  :func:`tools.material.labelled.render_drum_stem`; electronic kits give dry pieces only.
- **espeak-ng voices** (every variant of ``espeak-ng --voices=variant``): the material builder's
  vocoded vocal proxy (:func:`tools.material.voice.vocal_line`), a lead line or a doubled harmony.

Every example is varied: pattern, register, tempo, key, density, velocity, length, mono or stereo,
doubles, fluidsynth's reverb, and processing after the render (high-pass, EQ tilt, compression,
reverb, gaps of silence).  Pitched parts are rendered many to one fluidsynth run, one after another
in time (:func:`render_part_batch`): fluidsynth's start-up (0.3-2 s per run) is paid per batch,
not per part.  Only each example's analysis features are kept (cached per batch under the
material cache, ``roles/``), never the audio; descriptors are computed from them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from bridge.analyze.descriptors import N_DESCRIPTORS, describe

#: The classes the ear tells apart, in model order (see docs/roles.md for what each holds).
CLASSES = ("kick", "snare", "toms", "hats", "overheads", "room", "drums", "bass", "lead_vocal", "backing_vocal",
           "guitar", "keys", "pad", "synth", "horns", "synth_lead", "fx")
FONTS = ("FluidR3_GM", "sf_GMbank", "MuseScore_General")
FX_FONT = "FluidR3_GS"
#: Hydrogen kits in evaluation folds: kits by one author (the three Millo kits) share a fold.
KIT_FOLDS = (("Millo-Drums_v.1", "Millo_MultiLayered2", "Millo_MultiLayered3"),
             ("ColomboAcousticDrumkit", "Audiophob", "ElectricEmpireKit"),
             ("BJA_Pacific", "The Black Pearl 1.0", "HardElectro1"),
             ("rumpf_kit_z01_h2", "ForzeeStereo", "VariBreaks"))
#: Kits without a natural acoustic image: dry pieces only, no simulated mics.
ELECTRONIC_KITS = ("Audiophob", "ElectricEmpireKit", "HardElectro1", "VariBreaks")
N_FOLDS = 4
SAMPLE_RATE = 48000
#: Silence between two parts of one fluidsynth batch, seconds (release and reverb tails die in it).
BATCH_GAP_S = 3.0
#: Parts per fluidsynth run (memory: each is held until the run is cut up).
BATCH_PARTS = 16

#: Pitched classes: GM programs, patterns with weights, MIDI registers, share of mono files, share of
#: doubles (two takes panned apart).  ``register`` None takes the GM family's default.
PITCHED: dict[str, dict] = {
    "bass": {"programs": tuple(range(32, 40)), "patterns": (("bassline", 0.8), ("melody", 0.2)),
             "registers": ((28, 52), (24, 48), (31, 55)), "mono": 0.7, "double": 0.0},
    "keys": {"programs": tuple(range(0, 24)) + (45, 46), "patterns": (("comp", 0.6), ("sustained", 0.2), ("arp", 0.2)),
             "registers": (None, (48, 84), (55, 91)), "mono": 0.2, "double": 0.0},
    "guitar": {"programs": tuple(range(24, 32)) + (105,), "patterns": (("strum", 0.55), ("arp", 0.25), ("melody", 0.2)),
               "registers": (None, (40, 76), (48, 84)), "mono": 0.3, "double": 0.35},
    "pad": {"programs": (40, 41, 42, 44, 48, 49, 50, 51) + tuple(range(88, 96)),
            "patterns": (("sustained", 0.75), ("swell", 0.25)), "registers": (None, (48, 79), (55, 84)),
            "mono": 0.1, "double": 0.0},
    "synth": {"programs": tuple(range(80, 88)) + (62, 63), "patterns": (("arp", 0.7), ("stabs", 0.3)),
              "registers": ((60, 96), (48, 84), (55, 91)), "mono": 0.2, "double": 0.0},
    "synth_lead": {"programs": tuple(range(80, 88)), "patterns": (("melody", 1.0),),
                   "registers": ((55, 88), (60, 91), (48, 79)), "mono": 0.4, "double": 0.0},
    "horns": {"programs": tuple(range(56, 62)) + tuple(range(64, 80)), "patterns": (("melody", 0.7), ("stabs", 0.3)),
              "registers": (None, (52, 84), (60, 91)), "mono": 0.4, "double": 0.0},
    # GM voices as the material builder uses them for BVs: a harmony line, sung twice, panned apart.
    # (Sustained choir chords are pads by ear; a single GM voice melody is a synth lead by ear: neither
    # is taught as a vocal.  The lead vocal class is the vocoded espeak-ng proxy alone.)
    "backing_vocal": {"programs": (52, 53, 54), "patterns": (("melody", 1.0),),
                      "registers": ((55, 79), (52, 76), (57, 81)), "mono": 0.0, "double": 1.0},
    "fx": {"programs": tuple(range(96, 104)) + tuple(range(119, 128)), "patterns": (("swell", 0.6), ("stabs", 0.4)),
           "registers": (None, (48, 84), (36, 72)), "mono": 0.2, "double": 0.0},
}
#: GM percussion notes per drum piece and articulation.
GM_DRUM_NOTES = {("kick", "hit"): 36, ("snare", "hit"): 38, ("hats", "closed"): 42, ("hats", "pedal"): 44,
                 ("hats", "open"): 46, ("tom1", "hit"): 48, ("tom2", "hit"): 45, ("floor", "hit"): 41,
                 ("ride", "bow"): 51, ("ride", "bell"): 53, ("crash", "hit"): 49}
#: A soundfont's drum kits that are drum kits (not SFX, metronome or marching sets): bank 128 programs.
GM_KITS = tuple(range(0, 49))
#: Drum classes: which pieces sound, and the styles that feature them.
DRUM_PIECES = {"kick": (("kick",),), "snare": (("snare",),), "toms": (("tom1", "tom2", "floor"),),
               "hats": (("hats",), ("ride",), ("crash",), ("hats", "crash"), ("ride", "crash")),
               "drums": (("kick", "snare", "hats", "tom1", "tom2", "floor", "ride", "crash"),)}
DRUM_STYLES = {"kick": ("rock", "rock_open", "four", "half_time", "intro", "crash_accents"),
               "snare": ("rock", "rock_open", "four", "half_time", "crash_accents"),
               "toms": ("tom_groove", "tom_groove", "rock"),
               "hats": ("rock", "rock_open", "four", "intro", "half_time", "crash_accents"),
               "drums": ("rock", "rock_open", "four", "half_time", "tom_groove")}
#: Hydrogen stems per drum class: simulated mics and dry pieces.
KIT_STEMS = {"kick": ("kick_in", "kick_out", "kick"), "snare": ("snare_top", "snare_bottom", "snare"),
             "toms": ("tom1", "tom2", "floor_tom", "toms"), "hats": ("hats", "hats", "cymbals", "ride", "crash"),
             "overheads": ("overheads",), "room": ("room",), "drums": ("bus", "kit")}
#: Electronic kits are never miked: dry pieces only (``hats_dry``: the hats alone, no mic).
ELECTRONIC_STEMS = {"kick": ("kick",), "snare": ("snare",), "toms": ("toms",), "hats": ("hats_dry",), "drums": ("kit",)}
#: The pieces a hats-class stem features.
CYMBAL_PIECES = {"hats": ("hats",), "hats_dry": ("hats",), "cymbals": ("ride", "crash"), "ride": ("ride",),
                 "crash": ("crash",)}
#: A kit's hat or cymbal whose sample has its spectral centroid below this is not one (mislabelled in
#: the kit: ElectricEmpireKit's "Hat Closed Bs" is 94 % below 200 Hz); its examples are left out.
CYMBAL_CENTROID_HZ = 2000.0
#: Stems whose piece only some styles play: those styles.
STEM_STYLES = {"hats": ("rock", "rock_open", "four", "intro"), "hats_dry": ("rock", "rock_open", "four", "intro"), "ride": ("half_time",), "crash": ("crash_accents",),
               "cymbals": ("half_time", "crash_accents")}


@dataclass(frozen=True)
class CorpusRecipe:
    """How many examples of what; its hash (with the code's) names the corpus and goes into the model.

    Attributes
    ----------
    pitched_per_font : int
        Examples per pitched class per melodic soundfont (and of ``fx`` from FluidR3_GS).
    gm_drums_per_font : int
        Examples per drum class (kick, snare, toms, hats, drums) from each soundfont's GM kits.
    kit_per_class : int
        Examples per drum class per acoustic Hydrogen kit (electronic kits: dry classes only).
    vocals_per_fold : int
        espeak-ng examples per vocal class per voice fold.
    length_s : (float, float)
        Range of example lengths.
    """

    seed: int = 14
    pitched_per_font: int = 80
    gm_drums_per_font: int = 20
    kit_per_class: int = 14
    vocals_per_fold: int = 50
    length_s: tuple[float, float] = (8.0, 22.0)
    fonts: tuple[str, ...] = FONTS
    kit_folds: tuple[tuple[str, ...], ...] = KIT_FOLDS
    classes: tuple[str, ...] = CLASSES

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @property
    def hash(self) -> str:
        return recipe_hash(self)


def recipe_hash(recipe: CorpusRecipe) -> str:
    """The corpus recipe and the code that renders it (this module, tools/material) together."""
    from tools.material.cache import code_version

    text = json.dumps(recipe.to_dict(), sort_keys=True) + _own_code() + code_version()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _own_code() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Example:
    """One planned example: its class, the sound source it comes from and the fold that holds it out."""

    id: str
    cls: str
    kind: str       # "part" | "gm_drums" | "kit" | "vocal"
    source: str     # soundfont, kit, or "espeak:<voice>"
    fold: int
    params: dict = field(hash=False, compare=False)


# ------------------------------------------------------------------------------------------- the plan

def _rng(seed: int, *labels) -> np.random.Generator:
    from tools.material.song import rng_for

    return rng_for(seed, "roles-corpus", *[str(x) for x in labels])


def _pick(rng: np.random.Generator, weighted) -> str:
    names = [w[0] for w in weighted]
    p = np.array([w[1] for w in weighted], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _processing(rng: np.random.Generator, cls: str) -> dict:
    low_class = cls in ("bass", "kick", "toms", "drums")
    proc = {}
    if rng.random() < 0.3:
        proc["highpass_hz"] = float(rng.uniform(20, 40) if low_class else rng.uniform(30, 160))
    if rng.random() < 0.6:
        proc["tilt_db_per_octave"] = float(rng.uniform(-1.5, 1.5))
    if rng.random() < 0.4:
        proc["compress_ratio"] = float(rng.uniform(2.0, 6.0))
        proc["compress_below_peak_db"] = float(rng.uniform(6.0, 18.0))
    if rng.random() < (0.15 if cls in ("kick", "snare", "toms", "hats", "room", "overheads") else 0.35):
        proc["reverb_mix"] = float(rng.uniform(0.05, 0.3))
        proc["reverb_rt60_s"] = float(rng.uniform(0.5, 2.5))
    return proc


def _common(rng: np.random.Generator, recipe: CorpusRecipe) -> dict:
    lo, hi = recipe.length_s
    return {"length_s": round(float(rng.uniform(lo, hi)), 2), "tempo_bpm": round(float(rng.uniform(70, 170)), 1),
            "seed": int(rng.integers(2 ** 31)), "loudness_lufs": round(float(rng.uniform(-30, -16)), 1),
            "gaps": int(rng.integers(1, 4)) if rng.random() < 0.3 else 0, "augment": _augmentation(rng)}


def _augmentation(rng: np.random.Generator) -> dict:
    """Mixing moves beyond :class:`~tools.material.labelled.Processing`: EQ bells, width, an echo.

    They vary what a source's own timbre would otherwise teach (one soundfont's bright piano), so
    the ear leans on what stays: envelope, register, polyphony, rhythm.
    """
    out: dict = {}
    if rng.random() < 0.5:
        out["bells"] = [[round(float(np.exp(rng.uniform(np.log(80), np.log(10000)))), 1),
                         round(float(rng.uniform(-8, 8)), 2), round(float(rng.uniform(0.5, 3.0)), 2)]
                        for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.2:
        out["width"] = round(float(rng.uniform(0.3, 1.6)), 2)
    if rng.random() < 0.12:
        out["echo"] = [round(float(rng.uniform(80, 450)), 1), round(float(rng.uniform(0.1, 0.35)), 2)]
    return out


def _augment(audio: np.ndarray, augment: dict) -> np.ndarray:
    from tools.material import dsp

    if augment.get("bells"):
        audio = dsp.apply_eq(audio, [dsp.Band("peak", f, g, q) for f, g, q in augment["bells"]], SAMPLE_RATE)
    if "width" in augment and audio.shape[1] == 2:
        audio = dsp.set_width(audio, augment["width"])
    if "echo" in augment:
        ms, mix = augment["echo"]
        lag = int(ms * SAMPLE_RATE / 1000)
        wet = np.zeros_like(audio)
        wet[lag:] = audio[:-lag] * np.float32(mix)
        wet[2 * lag:] += audio[:-2 * lag] * np.float32(mix * mix)
        if audio.shape[1] == 2:
            wet = wet[:, ::-1]  # a ping-pong echo
        audio = (audio + wet).astype(np.float32)
    return audio


def _keys() -> tuple[str, ...]:
    from tools.material.song import NOTE_NAMES

    return tuple(f"{n} {m}" for n in NOTE_NAMES for m in ("major", "minor"))


def espeak_voices() -> tuple[str, ...]:
    """Every espeak-ng variant as an English voice (``en-us+<variant>``), sorted; empty without espeak-ng."""
    try:
        out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    names = sorted({line.split()[4].split("/")[-1] for line in out.splitlines()[1:] if len(line.split()) >= 5})
    return tuple(f"en-us+{n}" for n in names)


@lru_cache(maxsize=None)
def sounds_like_cymbal(kit_name: str, piece: str) -> bool:
    """Does the kit's sample for a hat/cymbal piece sound like one (centroid of its first layer)?"""
    from tools.material.drumkits import load_kit, load_sample

    inst = load_kit(kit_name).find(piece, {"hats": "closed", "ride": "bow"}.get(piece, "hit"))
    if inst is None or not inst.layers:
        return False
    x = load_sample(inst.layers[0].path, SAMPLE_RATE).astype(np.float64).ravel()
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    return bool(power.sum() > 0 and (power * freqs).sum() / power.sum() >= CYMBAL_CENTROID_HZ)


def voice_fold(voice: str) -> int:
    return int(hashlib.sha256(voice.encode()).hexdigest(), 16) % N_FOLDS


def _font_presets(font_name: str) -> set[tuple[int, int]]:
    from tools.material.soundfonts import presets, soundfont

    return {(p.bank, p.program) for p in presets(soundfont(font_name).path)}


def plan_corpus(recipe: CorpusRecipe) -> list[Example]:
    """Every example the recipe asks for, in a fixed order, each with its own seeded parameters."""
    from tools.material.drumkits import available_kits

    out: list[Example] = []
    keys = _keys()
    for fold, font in enumerate(recipe.fonts):
        have = _font_presets(font)
        for cls in recipe.classes:
            if cls in PITCHED:
                out += _pitched(recipe, font, fold, cls, have, keys, recipe.pitched_per_font)
            if cls in DRUM_PIECES:
                out += _gm_drums(recipe, font, fold, cls, have, recipe.gm_drums_per_font)
    if "fx" in recipe.classes and recipe.pitched_per_font:
        have = _font_presets(FX_FONT)
        out += _pitched(recipe, FX_FONT, N_FOLDS - 1, "fx", have, keys, recipe.pitched_per_font, gs_only=True)
    installed = set(available_kits())
    for fold, kits in enumerate(recipe.kit_folds):
        for kit in kits:
            if kit not in installed:
                continue
            for cls in recipe.classes:
                stems = KIT_STEMS.get(cls, ())
                if kit in ELECTRONIC_KITS:
                    stems = ELECTRONIC_STEMS.get(cls, ())
                for k in range(recipe.kit_per_class if stems else 0):
                    rng = _rng(recipe.seed, "kit", kit, cls, k)
                    params = _common(rng, recipe)
                    stem = stems[k % len(stems)]
                    if cls == "hats" and not all(sounds_like_cymbal(kit, piece) for piece in CYMBAL_PIECES[stem]):
                        continue
                    styles = STEM_STYLES.get(stem) or DRUM_STYLES.get(cls, DRUM_STYLES["drums"])
                    params.update(stem=stem, style=str(styles[int(rng.integers(len(styles)))]),
                                  velocity_scale=round(float(rng.uniform(0.6, 1.1)), 3),
                                  fills=bool(rng.random() < 0.7), processing=_processing(rng, cls),
                                  split=bool(stem in ("overheads", "room") and rng.random() < 0.3))
                    out.append(Example(f"kit/{kit}/{cls}/{k}", cls, "kit", kit, fold, params))
    voices = espeak_voices()
    for cls in ("lead_vocal", "backing_vocal"):
        if cls not in recipe.classes:
            continue
        for fold in range(N_FOLDS):
            pool = [v for v in voices if voice_fold(v) == fold]
            for k in range(recipe.vocals_per_fold if pool else 0):
                rng = _rng(recipe.seed, "vocal", cls, fold, k)
                params = _common(rng, recipe)
                picked = [pool[int(i)] for i in rng.choice(len(pool), size=min(2, len(pool)), replace=False)]
                params.update(voices=picked, key=keys[int(rng.integers(len(keys)))], shift=int(rng.integers(-5, 6)),
                              mono=bool(cls == "lead_vocal" and rng.random() < 0.8), processing=_processing(rng, cls))
                out.append(Example(f"vocal/{cls}/{fold}/{k}", cls, "vocal", f"espeak:{picked[0]}", fold, params))
    return out


def _pitched(recipe, font, fold, cls, have, keys, count, gs_only=False) -> list[Example]:
    spec = PITCHED[cls]
    out = []
    for k in range(count):
        rng = _rng(recipe.seed, "part", font, cls, k)
        if gs_only:
            options = sorted(bp for bp in have if 1 <= bp[0] < 128)
        else:
            options = sorted(bp for bp in have if bp[1] in spec["programs"] and bp[0] < 127
                             and (bp[0] == 0 or rng.random() < 0.5))
            options = options or sorted(bp for bp in have if bp[1] in spec["programs"] and bp[0] == 0)
        if not options:
            continue
        bank, program = options[int(rng.integers(len(options)))]
        params = _common(rng, recipe)
        register = spec["registers"][int(rng.integers(len(spec["registers"])))]
        params.update(program=int(program), bank=int(bank), pattern=_pick(rng, spec["patterns"]),
                      register=list(register) if register else None, key=keys[int(rng.integers(len(keys)))],
                      density=round(float(rng.uniform(0.6, 1.0)), 3), velocity_offset=int(rng.integers(-25, 11)),
                      channels=1 if rng.random() < spec["mono"] else 2,
                      double=bool(rng.random() < spec["double"]), fluid_reverb=bool(rng.random() < 0.4),
                      reverb_send=int(rng.integers(20, 90)), pan=int(rng.integers(44, 85)),
                      processing=_processing(rng, cls))
        out.append(Example(f"part/{font}/{cls}/{k}", cls, "part", font, fold, params))
    return out


def _gm_drums(recipe, font, fold, cls, have, count) -> list[Example]:
    kits = sorted(p for b, p in have if b == 128 and p in GM_KITS)
    out = []
    for k in range(count if kits else 0):
        rng = _rng(recipe.seed, "gm-drums", font, cls, k)
        params = _common(rng, recipe)
        options = DRUM_PIECES[cls]
        pieces = options[int(rng.integers(len(options)))]
        styles = STEM_STYLES.get(pieces[0]) if len(pieces) == 1 else None
        styles = styles or (("half_time", "crash_accents") if "hats" not in pieces and cls == "hats" else DRUM_STYLES[cls])
        params.update(kit=int(kits[int(rng.integers(len(kits)))]), pieces=list(pieces),
                      style=str(styles[int(rng.integers(len(styles)))]), fills=bool(rng.random() < 0.7),
                      velocity_scale=round(float(rng.uniform(0.6, 1.1)), 3), fluid_reverb=bool(rng.random() < 0.25),
                      reverb_send=int(rng.integers(10, 60)),
                      channels=1 if rng.random() < (0.2 if cls == "drums" else 0.7) else 2,
                      processing=_processing(rng, cls))
        out.append(Example(f"gm_drums/{font}/{cls}/{k}", cls, "gm_drums", font, fold, params))
    return out


# --------------------------------------------------------------------------------------- rendering

def _final(audio: np.ndarray, params: dict) -> np.ndarray:
    """The last steps of every example: the mixing moves, then the gaps."""
    return _gaps(_augment(audio, params.get("augment", {})), params["gaps"], params["seed"])


def _gaps(audio: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Silence ``count`` stretches of 1-4 s (10 ms fades): a part that plays only in some sections."""
    if not count:
        return audio
    rng = _rng(seed, "gaps")
    n = len(audio)
    fade = int(0.01 * SAMPLE_RATE)
    gain = np.ones(n, dtype=np.float32)
    for _ in range(count):
        length = int(rng.uniform(1.0, 4.0) * SAMPLE_RATE)
        if length >= n // 2:
            continue
        start = int(rng.integers(0, n - length))
        end = start + length
        gain[start:end] = 0.0
        a = max(start - fade, 0)
        gain[a:start] = np.minimum(gain[a:start], np.linspace(1.0, 0.0, start - a, endpoint=False))
        b = min(end + fade, n)
        gain[end:b] = np.minimum(gain[end:b], np.linspace(0.0, 1.0, b - end, endpoint=False))
    out = audio * gain[:, None]
    return out


def _part_spec(ex: Example):
    from tools.material.labelled import PartSpec, Processing

    p = ex.params
    return PartSpec(program=p["program"], soundfont=ex.source, bank=p["bank"], pattern=p["pattern"],
                    register=tuple(p["register"]) if p["register"] else None, density=p["density"],
                    velocity_offset=p["velocity_offset"], length_s=p["length_s"], tempo_bpm=p["tempo_bpm"],
                    key=p["key"], seed=p["seed"], channels=p["channels"], fluid_reverb=p["fluid_reverb"],
                    loudness_lufs=p["loudness_lufs"], processing=Processing(**p["processing"]))


def _double_take(notes, seed: int):
    """A second take of the same part: the notes with their own timing and velocity jitter."""
    from tools.material.midi import Note

    rng = _rng(seed, "double")
    return tuple(Note(max(n.start_s + float(rng.normal(0, 0.012)), 0.0), n.length_s, n.pitch,
                      int(np.clip(n.velocity + rng.normal(0, 6), 1, 127))) for n in notes)


def _drum_notes(ex: Example):
    """A drum score for a GM kit example: the pieces of its class, as GM percussion notes."""
    from tools.material.midi import Note
    from tools.material.song import make_song

    p = ex.params
    bars = max(1, math.ceil(p["length_s"] / (240.0 / p["tempo_bpm"])))
    form = (("verse", bars - 1), ("verse", 1)) if p["fills"] and bars >= 3 else (("verse", bars),)
    song = make_song(p["seed"], p["tempo_bpm"], "C major", form, (), drum_styles={"verse": p["style"]})
    notes = []
    for h in song.drum_hits:
        if h.piece in p["pieces"] and h.time_s < p["length_s"]:
            pitch = GM_DRUM_NOTES.get((h.piece, h.articulation)) or GM_DRUM_NOTES.get((h.piece, "hit"), 38)
            velocity = int(np.clip(round(20 + 107 * h.velocity * p["velocity_scale"]), 1, 127))
            notes.append(Note(h.time_s, 0.2, pitch, velocity))
    return tuple(notes)


def render_part_batch(font_name: str, reverb: bool, items: list[tuple[tuple[int, int], list[tuple[tuple, int]], dict]],
                      lengths_s: list[float]) -> list[np.ndarray]:
    """Render several parts of one soundfont in one fluidsynth run, one after another in time.

    Parameters
    ----------
    items : list of ((bank, program), [(notes, pan), ...], sends)
        One entry per part: its preset, its lanes (a double has two) and ``{"reverb": CC91}``.
        Bank 128 plays the font's drum kit ``program`` on the percussion channel.
    lengths_s : list of float
        Each part's length; parts are spaced :data:`BATCH_GAP_S` apart.

    Returns
    -------
    list of ndarray [shape=(frames, 2), dtype=float32]
        Each part's audio, cut exactly to its length.
    """
    import soundfile as sf

    from tools.material.midi import Control, Note, Track, write_smf
    from tools.material.soundfonts import (FLUIDSYNTH_LATENCY_FRAMES, MaterialError, SynthSettings, render_midi,
                                           soundfont)

    lanes: dict[tuple[int, int, int], int] = {}
    starts, t = [], 0.5
    for (preset, parts, _), length in zip(items, lengths_s):
        starts.append(t)
        t += length + BATCH_GAP_S
        for lane in range(len(parts)):
            key = (preset[0], preset[1], lane)
            if key not in lanes:
                if preset[0] == 128:
                    lanes[key] = 9
                else:
                    free = [c for c in range(16) if c != 9 and c not in lanes.values()]
                    if not free:
                        raise ValueError("a batch needs at most 15 melodic lanes")
                    lanes[key] = free[0]
    drum_programs = {p for (b, p, _l) in lanes if b == 128}
    if len(drum_programs) > 1:
        raise ValueError("one drum kit per batch")
    total = t
    notes: dict[int, list] = {c: [] for c in lanes.values()}
    controls: dict[int, list] = {c: [] for c in lanes.values()}
    for (preset, parts, sends), start, length in zip(items, starts, lengths_s):
        for lane, (part_notes, pan) in enumerate(parts):
            ch = lanes[(preset[0], preset[1], lane)]
            at = max(start - 0.2, 0.0)
            controls[ch] += [Control(at, 10, pan), Control(at, 91, sends.get("reverb", 0)), Control(at, 93, 0)]
            notes[ch] += [Note(start + n.start_s, min(n.length_s, length - n.start_s + 0.5), n.pitch, n.velocity)
                          for n in part_notes if n.start_s < length]
            controls[ch].append(Control(start + length + 1.0, 123, 0))
    tracks = []
    for (bank, program, _lane), ch in sorted(lanes.items(), key=lambda kv: kv[1]):
        tracks.append(Track(channel=ch, program=program, bank=bank, notes=tuple(notes[ch]), volume=100,
                            controls=tuple(controls[ch])))
    settings = SynthSettings(reverb=reverb, chorus=False)
    font = soundfont(font_name)
    with tempfile.TemporaryDirectory(prefix="mixbridge-roles-") as tmp:
        mid = write_smf(Path(tmp) / "batch.mid", tracks, 120.0, end_s=total)
        wav = render_midi(font, mid, Path(tmp) / "batch.wav", settings, SAMPLE_RATE)
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise MaterialError(f"fluidsynth wrote {rate} Hz")
    audio = audio[FLUIDSYNTH_LATENCY_FRAMES:, :2]
    out = []
    for start, length in zip(starts, lengths_s):
        a, n = int(round(start * SAMPLE_RATE)), int(round(length * SAMPLE_RATE))
        piece = np.zeros((n, 2), dtype=np.float32)
        got = audio[a:a + n]
        piece[: len(got)] = got
        out.append(piece)
    return out


def _finish(audio: np.ndarray, ex: Example) -> np.ndarray:
    """Channels, loudness, processing and gaps for a GM drum example (parts use labelled.finish_part)."""
    from tools.material import dsp
    from tools.material.labelled import Processing, _normalise, _process

    p = ex.params
    if p.get("channels", 2) == 1:
        audio = dsp.to_mono(audio)
    audio = _normalise(audio, SAMPLE_RATE, p["loudness_lufs"])
    return _process(audio, SAMPLE_RATE, Processing(**p["processing"]), p["seed"])


def _render_fluid_batch(examples: list[Example]) -> list[np.ndarray]:
    from tools.material.labelled import finish_part, part_notes
    from tools.material.soundfonts import preset_name, soundfont

    items, lengths, finishers = [], [], []
    for ex in examples:
        p = ex.params
        if ex.kind == "part":
            spec = _part_spec(ex)
            notes, pattern, low, high = part_notes(spec)
            lanes = [(notes, 20), (_double_take(notes, p["seed"]), 108)] if p["double"] else [(notes, p["pan"])]
            items.append(((p["bank"], p["program"]), lanes, {"reverb": p["reverb_send"] if p["fluid_reverb"] else 0}))
            preset = preset_name(soundfont(ex.source), p["program"], p["bank"])
            finishers.append(lambda a, spec=spec, notes=notes, pattern=pattern, low=low, high=high, preset=preset:
                             finish_part(a, spec, notes, pattern, low, high, preset, SAMPLE_RATE).audio)
        else:
            items.append(((128, p["kit"]), [(_drum_notes(ex), 64)], {"reverb": p["reverb_send"] if p["fluid_reverb"] else 0}))
            finishers.append(lambda a, ex=ex: _finish(a, ex))
        lengths.append(p["length_s"])
    rendered = render_part_batch(examples[0].source, examples[0].params["fluid_reverb"], items, lengths)
    return [_final(f(a), ex.params) for f, a, ex in zip(finishers, rendered, examples)]


#: Where each piece or mic sits in a drum mix (-1 left .. +1 right, drummer's view) and its level
#: against the others (dB, before a seeded +/-3 dB): a drum bus as an engineer would balance it.
KIT_MIX = {"kick": (0.0, 0.0), "snare": (0.0, 0.0), "hats": (-0.5, -6.0), "tom1": (-0.3, -3.0), "tom2": (0.1, -3.0),
           "floor": (0.5, -3.0), "ride": (0.5, -6.0), "crash": (-0.4, -6.0),
           "kick_in": (0.0, 0.0), "kick_out": (0.0, -3.0), "snare_top": (0.0, 0.0), "snare_bottom": (0.0, -10.0),
           "floor_tom": (0.5, -3.0), "overheads": (0.0, -3.0), "room": (0.0, -8.0)}


def _kit_mix(ex: Example) -> np.ndarray:
    """A drum bus, stereo: ``bus`` mixes every simulated mic, ``kit`` the dry pieces (electronic kits too),
    each piece panned and levelled by its hits' loudness (:data:`KIT_MIX`), as an engineer balances a kit."""
    from tools.material import dsp
    from tools.material.drumkits import load_kit
    from tools.material.drums import MIC_STEMS, dry_pieces, record
    from tools.material.song import make_song

    p = ex.params
    kit = load_kit(ex.source)
    bars = max(1, math.ceil(p["length_s"] / (240.0 / p["tempo_bpm"])))
    form = (("verse", bars - 1), ("verse", 1)) if p["fills"] and bars >= 3 else (("verse", bars),)
    song = make_song(p["seed"], p["tempo_bpm"], "C major", form, (), drum_styles={"verse": p["style"]})
    hits = tuple(h for h in song.drum_hits if h.time_s < p["length_s"])
    frames = int(round(p["length_s"] * SAMPLE_RATE))
    if p["stem"] == "bus":
        parts = record(kit, hits, p["length_s"], tuple(MIC_STEMS), p["seed"], SAMPLE_RATE).stems
    else:
        parts = {k: v[:, None] for k, v in dry_pieces(kit, hits, frames, SAMPLE_RATE, p["seed"]).items()
                 if p["stem"] == "kit" or k == "hats"}
        if not parts:
            raise ValueError(f"{ex.source} plays none of the pieces of {p['stem']}")
        if p["stem"] == "hats_dry":
            return parts["hats"].astype(np.float32)
    rng = _rng(p["seed"], "kit-mix")
    out = np.zeros((frames, 2), dtype=np.float32)
    for name in sorted(parts):
        sig = parts[name][:frames]
        loud = np.sort(np.abs(sig).max(axis=1))[-max(1, len(sig) // 200):]  # its hits, not its silences
        level = float(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) or 1.0
        pan, gain_db = KIT_MIX.get(name, (0.0, -6.0))
        gain = np.float32(10 ** ((gain_db + rng.uniform(-3, 3)) / 20) / level)
        stereo = sig if sig.shape[1] == 2 else dsp.pan_mono(sig, pan + rng.uniform(-0.1, 0.1))
        out[: len(stereo)] += stereo * gain
    return out


def _render_kit(ex: Example) -> np.ndarray:
    from tools.material.labelled import DrumSpec, Processing, _normalise, _process, render_drum_stem

    p = ex.params
    proc = Processing(**p["processing"])
    if p["stem"] in ("bus", "kit", "hats_dry"):
        audio = _process(_normalise(_kit_mix(ex), SAMPLE_RATE, p["loudness_lufs"]), SAMPLE_RATE, proc, p["seed"])
    else:
        spec = DrumSpec(kit=ex.source, stem=p["stem"], style=p["style"], tempo_bpm=p["tempo_bpm"],
                        length_s=p["length_s"], seed=p["seed"], fills=p["fills"], velocity_scale=p["velocity_scale"],
                        loudness_lufs=p["loudness_lufs"], processing=proc)
        audio = render_drum_stem(spec, SAMPLE_RATE, cache=False).audio
        if p.get("split") and audio.shape[1] == 2:
            audio = audio[:, [int(_rng(p["seed"], "side").integers(2))]]  # "OH L": one half as a mono file
    return _final(audio, p)


def _render_vocal(ex: Example) -> np.ndarray:
    from tools.material import dsp
    from tools.material.labelled import Processing, _normalise, _process
    from tools.material.midi import Note
    from tools.material.song import make_song
    from tools.material.voice import vocal_line

    p = ex.params
    bars = max(1, math.ceil(p["length_s"] / (240.0 / p["tempo_bpm"])))
    song = make_song(p["seed"], p["tempo_bpm"], p["key"], (("verse", bars),), ("lead", "bvs"),
                     arrangement={"lead": ("verse",), "bvs": ("verse",)})

    def shifted(notes):
        return tuple(Note(n.start_s, n.length_s, n.pitch + p["shift"], n.velocity) for n in notes
                     if n.start_s < p["length_s"])

    if ex.cls == "lead_vocal":
        line = vocal_line(shifted(song.parts["lead"]), p["length_s"], p["seed"], SAMPLE_RATE, voice=p["voices"][0])
        audio = line if p["mono"] else np.repeat(line, 2, axis=1)
    else:
        takes = [vocal_line(shifted(song.parts[part]), p["length_s"], p["seed"] + k, SAMPLE_RATE,
                            voice=p["voices"][k % len(p["voices"])]) for k, part in enumerate(("bvs", "bvs_double"))]
        audio = dsp.pan_mono(takes[0], -0.6) + dsp.pan_mono(takes[1], 0.6)
    audio = _process(_normalise(audio, SAMPLE_RATE, p["loudness_lufs"]), SAMPLE_RATE, Processing(**p["processing"]),
                     p["seed"])
    return _final(audio, p)


def features_of(audio: np.ndarray):
    """What the pipeline measures of a stem, from audio in memory: its :class:`StemFeatures`.

    Quantised to 24 bits first, as a bounced WAV stem would be, and fed in one-second blocks.
    """
    from bridge.analyze.features import FeatureExtractor

    audio = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 2 ** 23) / 2 ** 23, -1.0, 1.0 - 2 ** -23)
    audio = audio.astype(np.float32)
    extractor = FeatureExtractor(SAMPLE_RATE, audio.shape[1])
    for start in range(0, len(audio), SAMPLE_RATE):
        extractor.feed(audio[start:start + SAMPLE_RATE])
    return extractor.finish()


def descriptors_from(features) -> np.ndarray:
    """Features -> analysis -> descriptors, as :func:`bridge.pipeline.stem_views` computes them (NaN: silent)."""
    from bridge.analyze.stem import analyze_stem

    if features is None:
        return np.full(N_DESCRIPTORS, np.nan)
    vector = describe(features.slim(), analyze_stem(features))
    return vector if vector is not None else np.full(N_DESCRIPTORS, np.nan)


def _render_batch(examples: list[Example]) -> list[np.ndarray | None]:
    if examples[0].kind in ("part", "gm_drums"):
        return _render_fluid_batch(examples)
    render = _render_kit if examples[0].kind == "kit" else _render_vocal
    audios = []
    for ex in examples:
        try:
            audios.append(render(ex))
        except ValueError:  # a source that cannot make this example (a kit without that piece)
            audios.append(None)
    return audios


def _features_path(batch: list[Example]) -> Path:
    from tools.material.cache import cache_root

    return cache_root() / "roles" / f"{_batch_key(batch)}.npz"


def _batch_task(examples: list[Example]) -> np.ndarray:
    """Descriptors of a batch (rows NaN for examples that could not be made).

    The batch's features are cached (a few hundred kB per example, not its audio), so changing the
    descriptor code re-describes the corpus in seconds instead of rendering it again.
    """
    from bridge.analyze.features import StemFeatures

    path = _features_path(examples)
    features: list = []
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                for i in range(len(examples)):
                    names = [k for k in data.files if k.startswith(f"{i}/")]
                    features.append(StemFeatures.from_arrays({k.split("/", 1)[1]: data[k] for k in names})
                                    if names else None)
        except (OSError, ValueError, KeyError):
            features = []
    if len(features) != len(examples):
        features = [features_of(a) if a is not None else None for a in _render_batch(examples)]
        arrays = {f"{i}/{k}": v for i, f in enumerate(features) if f is not None for k, v in f.to_arrays().items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    return np.stack([descriptors_from(f) for f in features])


def batches(examples: list[Example]) -> list[list[Example]]:
    """Examples grouped into render tasks: one fluidsynth run per soundfont, reverb setting and kit."""
    groups: dict[tuple, list[Example]] = {}
    for ex in examples:
        if ex.kind == "part":
            key = ("part", ex.source, ex.params["fluid_reverb"])
        elif ex.kind == "gm_drums":
            key = ("gm_drums", ex.source, ex.params["fluid_reverb"], ex.params["kit"])
        else:
            key = (ex.kind, ex.source if ex.kind == "kit" else "")
        groups.setdefault(key, []).append(ex)
    out = []
    for key in sorted(groups, key=str):
        group = sorted(groups[key], key=lambda e: (e.params.get("bank", 0), e.params.get("program", 0), e.id))
        size = BATCH_PARTS if key[0] in ("part", "gm_drums") else 6
        current: list[Example] = []
        for ex in group:
            lanes = {(e.params.get("bank"), e.params.get("program"), lane) for e in current + [ex]
                     for lane in range(2 if e.params.get("double") else 1)}
            if current and (len(current) >= size or len(lanes) > 15):
                out.append(current)
                current = []
            current.append(ex)
        if current:
            out.append(current)
    return out


def _render_code(kind: str) -> str:
    """The code that renders a kind of example (so a change elsewhere in this module keeps the cache)."""
    import inspect

    shared = [features_of, _final, _gaps, _augment, _rng]
    own = {"part": [render_part_batch, _render_fluid_batch, _part_spec, _double_take],
           "gm_drums": [render_part_batch, _render_fluid_batch, _drum_notes, _finish],
           "kit": [_render_kit, _kit_mix], "vocal": [_render_vocal]}[kind]
    text = "".join(inspect.getsource(f) for f in shared + own)
    return text + repr((SAMPLE_RATE, BATCH_GAP_S, GM_DRUM_NOTES, KIT_MIX))


def _batch_key(batch: list[Example]) -> str:
    from tools.material.cache import code_version

    text = json.dumps([[e.id, e.cls, e.kind, e.source, e.params] for e in batch], sort_keys=True)
    return hashlib.sha256((text + _render_code(batch[0].kind) + code_version()).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Corpus:
    """Descriptors ``X`` (n, N_DESCRIPTORS), class indices ``y`` into :data:`CLASSES`, and where each came from."""

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    sources: tuple[str, ...]
    folds: np.ndarray
    ids: tuple[str, ...]
    recipe_hash: str


def build_corpus(recipe: CorpusRecipe, jobs: int = 2, progress=None) -> Corpus:
    """Render (or load from the cache) every example of the recipe and return its descriptors.

    Examples whose audio turned out silent are dropped.  Deterministic: the same recipe gives the
    same corpus, whatever ``jobs`` is.
    """
    examples = plan_corpus(recipe)
    tasks = batches(examples)
    results: dict[int, np.ndarray] = {}
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(_batch_task, batch) for batch in tasks]
            for k, future in enumerate(futures):
                results[k] = future.result()
                if progress:
                    progress(k + 1, len(tasks))
    else:
        for k, batch in enumerate(tasks):
            results[k] = _batch_task(batch)
            if progress:
                progress(k + 1, len(tasks))
    rows = [(ex, results[k][i]) for k, batch in enumerate(tasks) for i, ex in enumerate(batch)]
    rows.sort(key=lambda r: r[0].id)
    rows = [(ex, x) for ex, x in rows if np.all(np.isfinite(x))]
    classes = tuple(recipe.classes)
    return Corpus(np.array([x for _, x in rows]).reshape(-1, N_DESCRIPTORS),
                  np.array([classes.index(ex.cls) for ex, _ in rows], dtype=np.int64), classes,
                  tuple(ex.source for ex, _ in rows), np.array([ex.fold for ex, _ in rows], dtype=np.int64),
                  tuple(ex.id for ex, _ in rows), recipe.hash)
