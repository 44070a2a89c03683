"""Sessions: a recipe in, a folder of 48 kHz / 24-bit stems plus ``truth.json`` out, cached.

A recipe without problems builds the **balanced clean twin**; a recipe with problems builds the
clean twin first (or finds it in the cache) and plants the problems on copies of its stems, so
every stem a problem does not touch is byte-identical to the twin's.  See docs/material.md.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.suggest import roles as R

from . import dsp, problems as P
from .cache import cache_root, cached_array, code_version, key_of
from .drumkits import load_kit
from .drums import MIC_STEMS, record
from .parts import choose_instrument, render_part
from .song import DEFAULT_FORM, Song, make_song, rng_for
from .voice import pick_voice, vocal_line

SAMPLE_RATE = 48000
SUBTYPE = "PCM_24"
TAIL_S = 2.0
DC_BLOCK_HZ = 10.0
#: The clean twin's summed mix peaks at or under this (sample peak, dBFS).
MIX_PEAK_DBFS = -5.0
TRUTH_SCHEMA = "mixbridge-material-truth/1"

DRUM_STEMS = tuple(MIC_STEMS)
PITCHED = ("bass", "keys", "pad", "guitar", "arp", "lead", "bvs", "brass", "fx")

#: Balance of the clean twin: loudness of each stem *as it plays on a stereo track* (a mono file
#: at unity on both sides), in LU relative to the lead's.  An engineer's starting balance for
#: a pop/rock song: lead on top, kick and bass solid, snare just under, beds and ambience below.
BALANCE_LU = {
    "lead": 0.0, "bvs": -7.0, "bass": -4.0, "kick_in": -7.0, "kick_out": -8.0, "snare_top": -6.0,
    "snare_bottom": -15.0, "tom1": -9.0, "tom2": -9.0, "floor_tom": -9.0, "hats": -15.0,
    "overheads": -9.0, "room": -14.0, "keys": -8.0, "guitar": -9.0, "pad": -12.0, "arp": -12.0,
    "brass": -10.0, "fx": -18.0,
}
#: Stereo stems a recipe may deliver as two mono halves (``Recipe.split``).
SPLITTABLE = ("overheads", "room", "guitar", "bvs")
SIDES = (("l", " L", -1.0), ("r", " R", 1.0))


def parent_id(sid: str) -> str:
    """The stem a split half comes from (``overheads_l`` -> ``overheads``); other ids are their own."""
    base, _, side = sid.rpartition("_")
    return base if base in SPLITTABLE and side in ("l", "r") else sid


#: Stems whose balance is set on their own hits (the rest of the file is bleed between fills).
OWN_HIT_BASIS = {"tom1": "tom1", "tom2": "tom2", "floor_tom": "floor"}

#: (role, label, group) per stem id.
IDENTITY = {
    "kick_in": (R.KICK, "kick", "drums"), "kick_out": (R.KICK, "kick", "drums"),
    "snare_top": (R.SNARE, "snare", "drums"), "snare_bottom": (R.SNARE, "snare", "drums"),
    "tom1": (R.DRUMS, "toms", "drums"), "tom2": (R.DRUMS, "toms", "drums"), "floor_tom": (R.DRUMS, "toms", "drums"),
    "hats": (R.HATS, "hats", "drums"), "overheads": (R.DRUMS, "overheads", "drums"), "room": (R.DRUMS, "room", "drums"),
    "bass": (R.BASS, "bass", "bass"), "keys": (R.KEYS, "keys", "keys"), "pad": (R.PAD, "pad", "pad"),
    "guitar": (R.GUITAR, "guitar", "guitar"), "arp": (R.KEYS, "arp", "arp"),
    "lead": (R.LEAD_VOCAL, "lead_vocal", "lead"), "bvs": (R.BACKING_VOCAL, "backing_vocal", "bvs"),
    "brass": (R.KEYS, "brass", "brass"), "fx": (R.FX, "fx", "fx"),
}
#: Finer labels from the instrument a part got (keys -> piano / electric_piano, pad -> strings ...).
PROGRAM_LABELS = {("keys", 4): "electric_piano", ("keys", 0): "piano", ("keys", 1): "piano",
                  ("pad", 48): "strings", ("pad", 50): "strings", ("arp", 81): "arp", ("arp", 80): "arp",
                  ("bass", 38): "synth_bass"}

#: Names a producer would give each stem; the seed picks one.
GOOD_NAMES = {
    "kick_in": ("Kick In", "Kik In", "BD In"), "kick_out": ("Kick Out", "Kik Out", "BD Out"),
    "snare_top": ("Snare Top", "Snr Top", "SD Top"), "snare_bottom": ("Snare Bottom", "Snr Btm", "SD Bot"),
    "tom1": ("Tom 1", "Rack Tom", "Tom Hi"), "tom2": ("Tom 2", "Tom Mid", "Rack Tom 2"),
    "floor_tom": ("Floor Tom", "FTom", "Tom Floor"), "hats": ("Hats", "HiHat", "HH"),
    "overheads": ("Overheads", "OH", "OHs"), "room": ("Room", "Rooms", "Drum Room"),
    "bass": ("Bass DI", "Bass", "Bass Gtr"), "keys": ("Keys", "Piano", "Keys Comp"),
    "pad": ("Pad", "Synth Pad", "Pads"), "guitar": ("Gtr", "Acoustic Gtr", "Guitar"),
    "arp": ("Arp", "Seq", "Arp Seq"), "lead": ("Lead Vox", "Lead Vocal", "Vocal"),
    "bvs": ("BVs", "Backing Vox", "Harmony Vox"), "brass": ("Brass", "Horns", "Brass Section"),
    "fx": ("FX", "Atmos", "Wind FX"),
}


@dataclass(frozen=True)
class Problem:
    """A problem to plant: a kind from :data:`tools.material.problems.KINDS`, optionally its stem id and amount."""

    kind: str
    stem: str | None = None
    amount_db: float | None = None


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a session (its hash is the cache key).

    Attributes
    ----------
    seed : int
        Seeds everything not given explicitly (tempo, key, progression, programs, names, humanisation).
    tempo_bpm, key : optional
        ``None``: from the seed (132-148 BPM; any key, major or minor).
    form : tuple of (kind, bars)
        Section kinds: intro, verse, chorus, bridge, outro.
    soundfont : str
        Melodic soundfont key (``FluidR3_GM``, ``sf_GMbank``, ``MuseScore_General``) or a path.
    kit : str
        Hydrogen kit folder name (``tools.material.drumkits.ACOUSTIC_KITS``).
    parts : tuple of str
        Pitched stems: bass, keys, pad, guitar, arp, lead, bvs, brass, fx.
    drum_stems : tuple of str
        Mic stems: kick_in, kick_out, snare_top, snare_bottom, tom1, tom2, floor_tom, hats, overheads, room.
    lead_source : str
        ``"espeak"`` (vocoded espeak-ng proxy) or ``"gm"`` (a GM voice program, proxy too).
    lead_lufs : float
        The lead's loudness as it plays (mono on a stereo track), LUFS.  Other stems follow :data:`BALANCE_LU`.
    problems : tuple of Problem
        Empty for the clean twin.
    programs : tuple of (part, program)
        Force GM programs for parts (else seeded from :data:`tools.material.parts.PROGRAMS`).
    drum_styles : tuple of (section kind, style)
        Drum grid per section kind (``tools.material.song.DRUM_GRIDS``: intro, rock, rock_open,
        half_time, four, ...); unnamed kinds keep ``song.DRUM_STYLE``.
    split : tuple of str
        Stereo stems to deliver as two mono files, ``<id>_l`` and ``<id>_r`` ("OH L", "OH R"):
        overheads, room, guitar (the two takes), bvs.  Both halves keep the stem's group.
    """

    seed: int = 0
    title: str = "song"
    tempo_bpm: float | None = None
    key: str | None = None
    form: tuple[tuple[str, int], ...] = DEFAULT_FORM
    soundfont: str = "FluidR3_GM"
    kit: str = "ColomboAcousticDrumkit"
    parts: tuple[str, ...] = ("bass", "keys", "pad", "guitar", "arp", "lead", "bvs")
    drum_stems: tuple[str, ...] = ("kick_in", "kick_out", "snare_top", "snare_bottom", "tom1", "floor_tom",
                                   "overheads", "room")
    lead_source: str = "espeak"
    lead_lufs: float = -24.0
    problems: tuple[Problem, ...] = ()
    programs: tuple[tuple[str, int], ...] = ()
    drum_styles: tuple[tuple[str, str], ...] = ()
    split: tuple[str, ...] = ()

    def clean(self) -> "Recipe":
        return replace(self, problems=())

    def with_problems(self, *kinds: str | Problem) -> "Recipe":
        return replace(self, problems=tuple(k if isinstance(k, Problem) else Problem(k) for k in kinds))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["form"] = [list(f) for f in self.form]
        d["problems"] = [asdict(p) for p in self.problems]
        d["programs"] = [list(p) for p in self.programs]
        d["drum_styles"] = [list(p) for p in self.drum_styles]
        d["parts"], d["drum_stems"], d["split"] = list(self.parts), list(self.drum_stems), list(self.split)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
        d = dict(data)
        if "form" in d:
            d["form"] = tuple((str(k), int(b)) for k, b in d["form"])
        if "problems" in d:
            d["problems"] = tuple(Problem(**p) if isinstance(p, dict) else Problem(str(p)) for p in d["problems"])
        if "programs" in d:
            d["programs"] = tuple((str(a), int(b)) for a, b in d["programs"])
        if "drum_styles" in d:
            d["drum_styles"] = tuple((str(a), str(b)) for a, b in d["drum_styles"])
        for name in ("parts", "drum_stems", "split"):
            if name in d:
                d[name] = tuple(d[name])
        return cls(**d)

    @property
    def key_hash(self) -> str:
        return key_of({"recipe": self.to_dict()})


@dataclass(frozen=True)
class StemTruth:
    """What one stem is (a ``truth.json`` "stems" entry; see docs/material.md)."""

    id: str
    file: str
    name: str
    role: str
    label: str
    group: str
    channels: int
    frames: int
    source: dict
    plays_in: tuple[str, ...]
    playback_offset_lu: float
    intended_lufs: float
    balance_basis: str
    integrated_lufs: float | None
    peak_dbfs: float
    lowest_note_hz: float | None = None
    highest_note_hz: float | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectionTruth:
    name: str
    kind: str
    start_s: float
    end_s: float
    bars: int


@dataclass(frozen=True)
class Session:
    """A built session on disk and its ground truth.

    Attributes
    ----------
    path : Path
        The folder: stems (``*.wav``), ``truth.json``, ``regions.csv``, ``markers.json``, ``recipe.json``.
    clean_twin : Path or None
        The clean twin's folder (``None`` for a clean session itself).
    """

    path: Path
    recipe: Recipe
    key: str
    stems: tuple[StemTruth, ...]
    sections: tuple[SectionTruth, ...]
    problems: tuple[dict, ...]
    expected_moves: tuple[dict, ...]
    tempo_bpm: float
    key_name: str
    duration_s: float
    sample_rate: int
    frames: int
    clean_twin: Path | None = None

    @property
    def truth_path(self) -> Path:
        return self.path / "truth.json"

    @property
    def regions_csv(self) -> Path:
        return self.path / "regions.csv"

    @property
    def markers_json(self) -> Path:
        return self.path / "markers.json"

    def files(self) -> list[Path]:
        return [self.path / s.file for s in self.stems]

    def stem(self, stem_id: str) -> StemTruth:
        for s in self.stems:
            if s.id == stem_id:
                return s
        raise KeyError(stem_id)

    def markers(self) -> list[tuple[str, float, float | None]]:
        """Sections as ``bridge.markers`` returns them: (name, start_s, end_s)."""
        return [(s.name, s.start_s, s.end_s) for s in self.sections]

    def problem(self, kind: str) -> dict:
        for p in self.problems:
            if p["kind"] == kind:
                return p
        raise KeyError(kind)


# ------------------------------------------------------------------------------------ build


def _sessions_dir() -> Path:
    path = cache_root() / "sessions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "song"


def session_dir(recipe: Recipe) -> Path:
    variant = "clean" if not recipe.problems else "problems"
    return _sessions_dir() / f"{_slug(recipe.title)}-s{recipe.seed}-{variant}-{recipe.key_hash}"


def build_session(recipe: Recipe, rebuild: bool = False) -> Session:
    """Build (or load from the cache) the session a recipe describes.

    A recipe with problems also builds its clean twin (``Session.clean_twin``).
    """
    _check(recipe)
    folder = session_dir(recipe)
    if folder.is_dir() and (folder / "truth.json").exists() and not rebuild:
        return load_session(folder)
    clean = build_session(recipe.clean(), rebuild=rebuild) if recipe.problems else None
    parent = _sessions_dir()
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{folder.name}-", dir=parent))
    try:
        if clean is None:
            _build_clean(recipe, tmp)
        else:
            _build_variant(recipe, clean, tmp)
        if folder.exists() and (rebuild or not (folder / "truth.json").exists()):
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process finished the same session first; the builds are identical, keep theirs.
            if not (folder / "truth.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_session(folder)


def build_twins(recipe: Recipe, problems: tuple[str | Problem, ...] | None = None) -> tuple[Session, Session]:
    """The clean twin and one problem variant (``problems`` defaults to the recipe's, else :data:`DEFAULT_PROBLEMS`)."""
    chosen = problems if problems is not None else (recipe.problems or DEFAULT_PROBLEMS)
    variant = build_session(recipe.with_problems(*chosen))
    return load_session(variant.clean_twin), variant


#: A default set of problems that can share one session without masking each other's symptoms.
DEFAULT_PROBLEMS = ("level_hot", "lead_chorus_dip", "masking_boost", "kick_bass_buildup", "pad_rumble",
                    "inverted_channel", "bad_names")
#: The rest of the catalogue, for a second variant.
OTHER_PROBLEMS = ("level_quiet", "dc_offset", "clipped", "over_dynamic_lead", "hard_pan")


def _check(recipe: Recipe) -> None:
    for p in recipe.parts:
        if p not in PITCHED:
            raise ValueError(f"unknown part {p!r}; known: {', '.join(PITCHED)}")
    for d in recipe.drum_stems:
        if d not in DRUM_STEMS:
            raise ValueError(f"unknown drum stem {d!r}; known: {', '.join(DRUM_STEMS)}")
    for pr in recipe.problems:
        if pr.kind not in P.KINDS:
            raise ValueError(f"unknown problem {pr.kind!r}; known: {', '.join(P.KINDS)}")
    for sid in recipe.split:
        if sid not in SPLITTABLE:
            raise ValueError(f"cannot split {sid!r}; splittable: {', '.join(SPLITTABLE)}")
    from .song import DRUM_GRIDS
    for kind, style in recipe.drum_styles:
        if style not in DRUM_GRIDS:
            raise ValueError(f"unknown drum style {style!r}; known: {', '.join(DRUM_GRIDS)}")
    if recipe.lead_source not in ("espeak", "gm"):
        raise ValueError("lead_source must be 'espeak' or 'gm'")


def compose(recipe: Recipe) -> Song:
    parts = tuple(recipe.parts) + (("lead",) if "bvs" in recipe.parts and "lead" not in recipe.parts else ())
    return make_song(recipe.seed, recipe.tempo_bpm, recipe.key, recipe.form, parts,
                     drum_styles=dict(recipe.drum_styles) or None)


def _hz(pitch: int) -> float:
    return round(440.0 * 2.0 ** ((pitch - 69) / 12.0), 1)


def _drum_recording(recipe: Recipe, song: Song, length_s: float) -> dict[str, np.ndarray]:
    stems = tuple(recipe.drum_stems)
    layout = [(s, len(MIC_STEMS[s])) for s in stems]
    description = {"what": "drums", "kit": recipe.kit, "seed": recipe.seed, "stems": stems, "length_s": round(length_s, 6),
                   "hits": [[h.time_s, h.piece, h.articulation, h.velocity] for h in song.drum_hits]}
    kit = load_kit(recipe.kit)

    def build() -> np.ndarray:
        rec = record(kit, song.drum_hits, length_s, stems, recipe.seed, SAMPLE_RATE)
        frames = int(round(length_s * SAMPLE_RATE))
        cols = [rec.stems[s] if s in rec.stems else np.zeros((frames, n), np.float32) for s, n in layout]
        return np.concatenate(cols, axis=1)

    packed = cached_array("drums", description, build)
    out, c = {}, 0
    for s, n in layout:
        if np.any(packed[:, c:c + n]):
            out[s] = np.ascontiguousarray(packed[:, c:c + n])
        c += n
    return out


def _own_hit_lufs(audio: np.ndarray, song: Song, piece: str) -> float | None:
    """Loudness of a tom mic over its own hits (each hit to 0.6 s later), gated as integrated loudness."""
    fs = SAMPLE_RATE
    mask = np.zeros(len(audio), dtype=bool)
    for h in song.drum_hits:
        if h.piece == piece:
            a = int(h.time_s * fs)
            mask[a:a + int(0.6 * fs)] = True
    if mask.sum() < int(0.5 * fs):
        return None
    return dsp.integrated_lufs(audio[mask], fs)


def _render_stems(recipe: Recipe, song: Song, length_s: float) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    audio: dict[str, np.ndarray] = {}
    sources: dict[str, dict] = {}
    forced = dict(recipe.programs)
    for label in recipe.parts:
        if label == "lead" and recipe.lead_source == "espeak":
            desc = {"what": "espeak-lead", "seed": recipe.seed, "length_s": round(length_s, 6),
                    "notes": [[n.start_s, n.length_s, n.pitch, n.velocity] for n in song.parts["lead"]]}
            raw = cached_array("parts", desc, lambda: vocal_line(song.parts["lead"], length_s, recipe.seed, SAMPLE_RATE))
            sources[label] = {"kind": "espeak-ng vocoder (vocal proxy)", "voice": pick_voice(recipe.seed)}
        else:
            inst = choose_instrument(label, recipe.soundfont, recipe.seed, forced.get(label))
            raw = render_part(song, label, inst, length_s, SAMPLE_RATE)
            sources[label] = {"kind": "fluidsynth", "soundfont": inst.soundfont, "bank": inst.bank,
                              "program": inst.program, "preset": inst.preset}
            if label in ("lead", "bvs"):
                sources[label]["proxy"] = "GM voice program standing in for a sung vocal"
        if label == "lead":
            # A lightly produced vocal: 3:1 from 12 dB under its peak, and 10 % of a short plate.
            peak = dsp.db(float(np.abs(raw).max()) or 1e-9)
            raw = dsp.compress(raw, SAMPLE_RATE, threshold_db=peak - 12.0, ratio=3.0, attack_ms=8.0, release_ms=120.0)
            raw = dsp.add_reverb(raw, SAMPLE_RATE, mix=0.10, rt60_s=1.1, seed=recipe.seed)
        audio[label] = raw
    if recipe.drum_stems:
        drums = _drum_recording(recipe, song, length_s)
        for label, sig in drums.items():
            audio[label] = sig
            sources[label] = {"kind": "hydrogen kit, simulated mic", "kit": recipe.kit, "mics": list(MIC_STEMS[label])}
    # Every recording chain blocks DC: some soundfont samples (FluidR3's Warm Pad: 0.011) and drum
    # samples carry an offset, which would be a fault in the clean twin.  10 Hz, 2nd order.
    block = dsp.eq_sos([dsp.Band("highpass", DC_BLOCK_HZ, 0.0, 0.707)], SAMPLE_RATE)
    audio = {k: dsp.apply_sos(v, block) for k, v in audio.items()}
    # Some stereo presets lean to one side (FluidR3's Warm Pad: right channel 4 dB up).  An engineer
    # would rebalance such a part; the clean twin's pitched stereo parts get equal channel energies.
    for k, v in audio.items():
        if k in PITCHED and v.shape[1] == 2:
            energy = np.mean(v.astype(np.float64) ** 2, axis=0)
            if energy.min() > 0:
                audio[k] = (v * (np.sqrt(energy.mean() / energy)).astype(np.float32)).astype(np.float32)
    return audio, sources


def _build_clean(recipe: Recipe, folder: Path) -> None:
    song = compose(recipe)
    length_s = song.music_end_s + TAIL_S
    audio, sources = _render_stems(recipe, song, length_s)
    order = [s for s in recipe.drum_stems if s in audio] + [p for p in recipe.parts if p in audio]
    # Levels: each stem to lead + its balance offset (mono files 3 dB lower: they play on both sides).
    intended, basis = {}, {}
    for sid in order:
        mono = audio[sid].shape[1] == 1
        target = recipe.lead_lufs + BALANCE_LU[sid] - (10 * np.log10(2.0) if mono else 0.0)
        if sid in OWN_HIT_BASIS:
            measured = _own_hit_lufs(audio[sid], song, OWN_HIT_BASIS[sid])
            basis[sid] = "own_hits"
        else:
            measured = dsp.integrated_lufs(audio[sid], SAMPLE_RATE)
            basis[sid] = "integrated"
        if measured is None:
            del audio[sid]
            continue
        audio[sid] = (audio[sid] * np.float32(dsp.undb(target - measured))).astype(np.float32)
        intended[sid] = round(float(target), 2)
    order = [s for s in order if s in audio]
    # Headroom: no clean stem peaks above -1 dBFS, and the summed mix (mono stems on both sides, unity
    # faders) peaks at or under MIX_PEAK_DBFS, as a balanced session leaves room for the master bus.
    worst = max(dsp.db(float(np.abs(audio[s]).max())) for s in order)
    shift = round(min(0.0, -1.0 - worst, MIX_PEAK_DBFS - _mix_peak_dbfs([audio[s] for s in order])), 2)
    if shift < 0:
        for s in order:
            audio[s] = (audio[s] * np.float32(dsp.undb(shift))).astype(np.float32)
            intended[s] = round(intended[s] + shift, 2)
    names = _good_names(recipe, order, sources)
    expected = []
    for sid in recipe.split:
        if sid not in audio or audio[sid].shape[1] != 2:
            continue
        at = order.index(sid)
        halves = []
        for suffix, label, pan in SIDES:
            half = f"{sid}_{suffix}"
            audio[half] = np.ascontiguousarray(audio[sid][:, [0 if suffix == "l" else 1]])
            names[half] = names[sid] + label
            intended[half] = round(float(dsp.integrated_lufs(audio[half], SAMPLE_RATE)), 2)
            basis[half] = "pair"
            halves.append(half)
            expected.append({"type": "pan", "stem": names[half], "pan": pan,
                             "reason": "one side of a stereo pair, delivered as a mono file"})
        order[at:at + 1] = halves
        del audio[sid]
    stems = {sid: P.StemState(sid, names[sid], audio[sid], *_identity(sid, sources)[:2]) for sid in order}
    notes = {"snare_bottom": ("polarity inverted as recorded (the mic faces the top mic); flip it",),
             "kick_out": ("lags Kick In by the drum's depth (about 1.2 ms)",)}
    if "snare_bottom" in stems:
        expected.append({"type": "polarity", "stem": stems["snare_bottom"].name, "channel": "all",
                         "reason": "snare bottom mic is inverted against the top mic, as recorded"})
    meta = {"intended": intended, "basis": basis, "sources": sources, "notes": notes,
            "lead_playback_lufs": round(recipe.lead_lufs + shift, 2)}
    _write(folder, recipe, song, stems, meta, problems=(), expected=expected, clean_twin=None)


def _mix_peak_dbfs(stems: list[np.ndarray]) -> float:
    """Sample peak of the unity-fader sum (a mono stem plays on both sides), dBFS."""
    mix = np.zeros((max(len(a) for a in stems), 2), dtype=np.float32)
    for a in stems:
        mix[: len(a)] += a if a.shape[1] == 2 else np.repeat(a, 2, axis=1)
    return round(dsp.db(float(np.abs(mix).max())), 2)


def _identity(sid: str, sources: dict) -> tuple[str, str, str]:
    sid = parent_id(sid)
    role, label, group = IDENTITY[sid]
    program = sources.get(sid, {}).get("program")
    label = PROGRAM_LABELS.get((sid, program), label)
    if sid == "guitar" and program is not None:
        label = "electric_guitar" if program >= 26 else "acoustic_guitar"
    return role, label, group


def _good_names(recipe: Recipe, order: list[str], sources: dict) -> dict[str, str]:
    rng = rng_for(recipe.seed, "names")
    names = {}
    for sid in order:
        options = GOOD_NAMES[sid]
        prog = sources.get(sid, {}).get("program")
        if sid == "keys" and prog == 4:
            options = ("Rhodes", "EP", "Keys")
        if sid == "pad" and prog in (48, 50):
            options = ("Strings", "Str Pad", "Pad")
        names[sid] = options[int(rng.integers(len(options)))]
    return names


def _build_variant(recipe: Recipe, clean: Session, folder: Path) -> None:
    song = compose(recipe)
    stems: dict[str, P.StemState] = {}
    for st in clean.stems:
        data, _ = sf.read(str(clean.path / st.file), dtype="float32", always_2d=True)
        stems[st.id] = P.StemState(st.id, st.name, data, st.role, st.label)
    ctx = P.Context(tuple(clean.sections), SAMPLE_RATE, song.parts.get("lead", ()))
    targets = assign_targets(recipe.problems, stems)
    planted = []
    for k, spec in enumerate(recipe.problems):
        rng = rng_for(recipe.seed, "problem", str(k), spec.kind)
        target = stems[targets[k]] if targets[k] else None
        if spec.kind == "bad_names":
            result = P.bad_names(stems, None, ctx, rng, spec.amount_db, R.infer_role)
        elif spec.kind in ("level_hot", "level_quiet"):
            result = P.level(stems, target, ctx, rng, spec.amount_db, hot=spec.kind == "level_hot")
        elif spec.kind == "pad_rumble":
            result = P.pad_rumble(stems, target, ctx, rng, spec.amount_db, clean.stem(target.id).lowest_note_hz)
        else:
            result = getattr(P, spec.kind)(stems, target, ctx, rng, spec.amount_db)
        for s in stems.values():
            if s.name in result.stems:
                s.problems.append(spec.kind)
                s.changed = s.changed or spec.kind != "bad_names"
        entry = result.to_dict()
        entry["stem_ids"] = [s.id for s in stems.values() if s.name in result.stems]
        planted.append(entry)
    # Problems name stems as they were when planted; a later rename must reach every record.
    renames = {old: new for p in planted if p["kind"] == "bad_names" for old, new in p["params"]["renamed"].items()
               if new in {s.name for s in stems.values()}}
    planted = [p if p["kind"] == "bad_names" else _renamed(p, renames) for p in planted]
    meta = {"clean": clean, "lead_playback_lufs": json.loads(clean.truth_path.read_text())["lead_playback_lufs"]}
    expected = tuple(_renamed(m, renames) for m in clean.expected_moves)
    _write(folder, recipe, song, stems, meta, problems=tuple(planted), expected=expected, clean_twin=clean.path)


def _renamed(record, renames: dict[str, str]):
    """``record`` with every stem name (a ``stems`` list, ``stem`` fields, dict keys) renamed."""
    if isinstance(record, dict):
        out = {}
        for key, value in record.items():
            key = renames.get(key, key)
            if key in ("stem", "masked_stem") and isinstance(value, str):
                out[key] = renames.get(value, value)
            elif key == "stems":
                out[key] = [renames.get(v, v) for v in value]
            else:
                out[key] = _renamed(value, renames)
        return out
    if isinstance(record, list):
        return [_renamed(v, renames) for v in record]
    return record


def _candidates(spec: Problem, stems: dict) -> list[str]:
    """Stem ids that can take a problem, best first."""
    if spec.kind == "bad_names":
        return [""]
    eligible = [spec.stem] if spec.stem else list(P.ELIGIBLE[spec.kind])
    out = []
    for sid in eligible:
        st = stems.get(sid)
        if st is None:
            continue
        if spec.kind == "inverted_channel" and (st.audio.shape[1] != 2 or (P._correlation(st.audio) or 0.0) < 0.25):
            continue
        if spec.kind == "hard_pan" and st.audio.shape[1] != 1:
            continue
        if spec.kind == "level_hot" and not P._fits(st.audio, abs(spec.amount_db or 10.0)):
            continue
        out.append(sid)
    if spec.kind == "inverted_channel":  # the widest part that still correlates: a "wide stereo part"
        out.sort(key=lambda sid: P._correlation(stems[sid].audio))
    return out


def assign_targets(specs: tuple[Problem, ...], stems: dict) -> list[str | None]:
    """One stem per problem, no stem taking two signal problems: most-constrained first, with backtracking."""
    options = [_candidates(spec, stems) for spec in specs]
    order = sorted(range(len(specs)), key=lambda i: (len(options[i]), i))
    chosen: dict[int, str] = {}

    def solve(k: int) -> bool:
        if k == len(order):
            return True
        i = order[k]
        for sid in options[i]:
            if sid and sid in chosen.values():
                continue
            chosen[i] = sid
            if solve(k + 1):
                return True
            del chosen[i]
        return False

    if not solve(0):
        bad = [specs[i].kind for i in range(len(specs)) if not options[i]] or [s.kind for s in specs]
        raise ValueError(f"these problems cannot all land on distinct stems of this session: {', '.join(bad)}")
    return [chosen[i] or None for i in range(len(specs))]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    return f"{int(minutes)}:{secs:06.3f}"


def _write(folder: Path, recipe: Recipe, song: Song, stems: dict, meta: dict, problems, expected, clean_twin) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    clean: Session | None = meta.get("clean")
    entries = []
    for sid, st in stems.items():
        file = f"{st.name}.wav"
        if clean is not None and not st.changed:
            old = clean.stem(sid)
            shutil.copyfile(clean.path / old.file, folder / file)
            entries.append({**_stem_dict(old), "file": file, "name": st.name, "problems": list(st.problems)})
            continue
        sf.write(str(folder / file), st.audio, SAMPLE_RATE, subtype=SUBTYPE)
        written, _ = sf.read(str(folder / file), dtype="float32", always_2d=True)
        if clean is not None:
            base = _stem_dict(clean.stem(sid))
        else:
            notes = meta["notes"].get(sid, ())
            parent = parent_id(sid)
            pitches = [n.pitch for n in song.parts.get(parent, ())]
            role, label, group = _identity(sid, meta["sources"])
            base = {"id": sid, "role": role, "label": label, "group": group, "source": meta["sources"].get(parent, {}),
                    "plays_in": list(song.plays_in.get("drums" if parent in DRUM_STEMS else parent, ())),
                    "playback_offset_lu": BALANCE_LU[parent], "intended_lufs": meta["intended"][sid],
                    "balance_basis": meta["basis"][sid],
                    "lowest_note_hz": _hz(min(pitches)) if pitches else None,
                    "highest_note_hz": _hz(max(pitches)) if pitches else None, "notes": list(notes), "problems": []}
        lufs = dsp.integrated_lufs(written, SAMPLE_RATE)
        base.update({"file": file, "name": st.name, "channels": int(written.shape[1]), "frames": int(len(written)),
                     "integrated_lufs": None if lufs is None else round(lufs, 2),
                     "peak_dbfs": round(dsp.db(float(np.abs(written).max())), 2), "problems": list(st.problems)})
        entries.append(base)
    sections = [{"name": s.name, "kind": s.kind, "start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4), "bars": s.bars}
                for s in song.sections]
    duration = max(e["frames"] for e in entries) / SAMPLE_RATE
    truth = {
        "schema": TRUTH_SCHEMA, "builder": code_version(), "recipe": recipe.to_dict(), "recipe_hash": recipe.key_hash,
        "variant": "problems" if problems else "clean",
        "clean_twin": os.path.relpath(clean_twin, folder) if clean_twin else None,
        "sample_rate": SAMPLE_RATE, "bit_depth": 24, "frames": max(e["frames"] for e in entries),
        "duration_s": round(duration, 4),
        "tempo_bpm": song.tempo_bpm, "key": song.key_name,
        "chords": [{"bar": c.bar, "root": c.root_pc, "quality": c.quality} for c in song.chords],
        "lead_playback_lufs": meta["lead_playback_lufs"],
        "mix_peak_dbfs": _mix_peak_dbfs([st.audio for st in stems.values()]),
        "balance_lu": BALANCE_LU, "sections": sections, "stems": entries,
        "problems": list(problems), "expected_moves": list(expected),
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    (folder / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=1) + "\n")
    (folder / "markers.json").write_text(json.dumps({"sections": [{"name": s["name"], "start_s": s["start_s"],
                                                                    "end_s": s["end_s"]} for s in sections]}, indent=1) + "\n")
    rows = ["#,Name,Start,End,Length"]
    for k, s in enumerate(song.sections, start=1):
        rows.append(f"R{k},{s.name},{_clock(s.start_s)},{_clock(s.end_s)},{_clock(s.end_s - s.start_s)}")
    (folder / "regions.csv").write_text("\n".join(rows) + "\n")


def _stem_dict(st: StemTruth) -> dict:
    d = asdict(st)
    d["plays_in"], d["problems"], d["notes"] = list(st.plays_in), list(st.problems), list(st.notes)
    return d


def load_session(folder: str | os.PathLike) -> Session:
    """Read a built session back from its folder."""
    folder = Path(folder)
    data = json.loads((folder / "truth.json").read_text())
    stems = tuple(StemTruth(**{**s, "plays_in": tuple(s["plays_in"]), "problems": tuple(s["problems"]),
                               "notes": tuple(s["notes"])}) for s in data["stems"])
    sections = tuple(SectionTruth(**s) for s in data["sections"])
    twin = (folder / data["clean_twin"]).resolve() if data.get("clean_twin") else None
    return Session(folder, Recipe.from_dict(data["recipe"]), data["recipe_hash"], stems, sections,
                   tuple(data["problems"]), tuple(data["expected_moves"]), data["tempo_bpm"], data["key"],
                   data["duration_s"], data["sample_rate"], data["frames"], twin)
