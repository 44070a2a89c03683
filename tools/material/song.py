"""A seeded song: key, tempo, chords, sections with an arrangement, a drum score and musical parts.

Everything is symbolic here (notes and drum hits in seconds); :mod:`tools.material.parts` turns
the pitched parts into audio through fluidsynth and :mod:`tools.material.drums` the drum score
into multi-mic recordings.  One :class:`numpy.random.Generator` per part, derived from the song
seed and the part's label, so adding a part never changes another part's notes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .midi import Note

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)

#: Chord progressions as scale degrees (0 = tonic), one chord per bar.
PROGRESSIONS = {
    "major": {"verse": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4)),
              "chorus": ((3, 0, 4, 5), (0, 4, 5, 3), (3, 4, 0, 0)),
              "bridge": ((5, 3, 4, 4), (1, 4, 5, 3))},
    "minor": {"verse": ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 6)),
              "chorus": ((5, 2, 6, 0), (2, 6, 0, 5), (5, 6, 0, 0)),
              "bridge": ((3, 4, 5, 6), (5, 3, 6, 6))},
}

#: The default form: (kind, bars).  Section names number repeated kinds ("Verse 2").
DEFAULT_FORM = (("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4), ("bridge", 2), ("outro", 2))

#: Which section kinds each part plays in.  ``"verse2"`` means the second and later verses only.
ARRANGEMENT = {
    "drums": ("intro", "verse", "chorus", "bridge", "outro"),
    "bass": ("verse", "chorus", "bridge", "outro"),
    "keys": ("intro", "verse", "chorus", "outro"),
    "pad": ("intro", "chorus", "bridge", "outro"),
    "guitar": ("verse2", "chorus"),
    "arp": ("intro", "chorus", "bridge"),
    "lead": ("verse", "chorus", "bridge"),
    "bvs": ("chorus",),
    "brass": ("chorus",),
    "fx": ("intro", "bridge"),
}

#: Drum style per section kind.
DRUM_STYLE = {"intro": "intro", "verse": "rock", "chorus": "rock_open", "bridge": "half_time", "outro": "rock"}

#: 16-step grids per style and voice: x hit, o open hat, g ghost, b bell.
DRUM_GRIDS = {
    "intro": {"kick": "x.......x.......", "hats": "x.x.x.x.x.x.x.x."},
    "rock": {"kick": "x.....x.x.......", "snare": "....x.......x...", "hats": "x.x.x.x.x.x.x.x."},
    "rock_open": {"kick": "x.....x.x.x.....", "snare": "....x.......x...", "hats": "x.x.o.x.x.x.o.x."},
    "half_time": {"kick": "x.........x.....", "snare": "........x.......", "ride": "x.x.x.x.x.x.x.x."},
    "four": {"kick": "x...x...x...x...", "snare": "....x.......x...", "hats": "x.o.x.o.x.o.x.o."},
    "tom_groove": {"kick": "x.......x.......", "floor": "x.x.x.x.x.x.x.x.", "tom1": "....x.......x.x.", "tom2": "......x.......x."},
    "crash_accents": {"kick": "x.......x.......", "crash": "x.......x.......", "snare": "....x.......x..."},
}
#: Fills over the last two beats (steps 8..15) of a section's last bar, per style of the *next* section.
FILLS = (
    (("snare", 8), ("snare", 10), ("tom1", 12), ("tom2", 13), ("floor", 14), ("floor", 15)),
    (("tom1", 8), ("tom1", 9), ("tom2", 10), ("tom2", 11), ("floor", 12), ("floor", 13), ("snare", 14), ("snare", 15)),
    (("snare", 8), ("snare", 9), ("snare", 10), ("snare", 11), ("tom1", 12), ("tom2", 14), ("floor", 15)),
)


def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """A generator that depends only on the seed and the labels (stable across Python runs)."""
    digest = hashlib.sha256(("|".join([str(seed), *labels])).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True, slots=True)
class Section:
    """One section of the song: ``name`` as a producer would label the region ("Chorus 2")."""

    name: str
    kind: str
    start_bar: int
    bars: int
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Chord:
    """The chord of one bar: its root as a pitch class and its tones as pitch classes (root first)."""

    bar: int
    degree: int
    root_pc: int
    tones_pc: tuple[int, ...]
    quality: str


@dataclass(frozen=True, slots=True)
class DrumHit:
    """One drum hit: ``piece`` is kick/snare/hats/tom1/tom2/floor/ride/crash, velocity 0..1."""

    time_s: float
    piece: str
    articulation: str
    velocity: float


@dataclass(frozen=True)
class Song:
    seed: int
    tempo_bpm: float
    key_pc: int
    mode: str
    sections: tuple[Section, ...]
    chords: tuple[Chord, ...]
    drum_hits: tuple[DrumHit, ...]
    parts: dict[str, tuple[Note, ...]] = field(default_factory=dict)
    plays_in: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.key_pc]} {self.mode}"

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def bar_s(self) -> float:
        return 4.0 * self.beat_s

    @property
    def music_end_s(self) -> float:
        return self.sections[-1].end_s

    def section_at(self, time_s: float) -> Section:
        for s in self.sections:
            if s.start_s <= time_s < s.end_s:
                return s
        return self.sections[-1]


# ------------------------------------------------------------------------------------ harmony


def _scale(mode: str) -> tuple[int, ...]:
    return MAJOR if mode == "major" else MINOR


def _chord(degree: int, key_pc: int, mode: str, bar: int, seventh: bool = False) -> Chord:
    scale = _scale(mode)
    tones = [scale[(degree + k) % 7] for k in (0, 2, 4, 6)[: 4 if seventh else 3]]
    pcs = tuple((key_pc + t) % 12 for t in tones)
    third = (tones[1] - tones[0]) % 12
    fifth = (tones[2] - tones[0]) % 12
    quality = "dim" if fifth == 6 else ("maj" if third == 4 else "min")
    return Chord(bar, degree, pcs[0], pcs, quality)


def _nearest(pc: int, around: int, low: int, high: int) -> int:
    """The pitch of class ``pc`` nearest ``around`` within [low, high]."""
    candidates = [p for p in range(low, high + 1) if p % 12 == pc]
    return min(candidates, key=lambda p: (abs(p - around), p)) if candidates else around


def voicing(chord: Chord, low: int, high: int, previous: tuple[int, ...] | None = None, voices: int = 4) -> tuple[int, ...]:
    """A close voicing of ``chord`` inside [low, high], moving as little as possible from ``previous``.

    The lowest note is always ``>= low`` (the pad's lowest note decides its useful range).
    """
    pcs = list(chord.tones_pc)
    options = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        while len(order) < voices:
            order.append(order[len(order) - len(pcs)])
        for start in range(low, low + 12):
            if start % 12 != order[0]:
                continue
            notes = [start]
            for pc in order[1:voices]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[-1] <= high:
                options.append(tuple(notes))
    if not options:
        return tuple(sorted(_nearest(pc, (low + high) // 2, low, high) for pc in pcs))
    if previous:
        centre = float(np.mean(previous))
        return min(options, key=lambda o: (abs(np.mean(o) - centre), o))
    mid = (low + high) / 2.0
    return min(options, key=lambda o: (abs(np.mean(o) - mid), o))


# ------------------------------------------------------------------------------------ form


def make_sections(form, tempo_bpm: float) -> tuple[Section, ...]:
    bar_s = 240.0 / tempo_bpm
    counts: dict[str, int] = {}
    totals = {kind: sum(1 for k, _ in form if k == kind) for kind, _ in form}
    sections, bar = [], 0
    for kind, bars in form:
        counts[kind] = counts.get(kind, 0) + 1
        name = kind.capitalize() + (f" {counts[kind]}" if totals[kind] > 1 else "")
        sections.append(Section(name, kind, bar, int(bars), round(bar * bar_s, 6), round((bar + bars) * bar_s, 6)))
        bar += int(bars)
    return tuple(sections)


def make_chords(sections, key_pc: int, mode: str, rng: np.random.Generator) -> tuple[Chord, ...]:
    table = PROGRESSIONS[mode]
    chosen = {kind: table[kind][int(rng.integers(len(table[kind])))] for kind in table}
    chords = []
    for s in sections:
        prog = chosen.get({"intro": "verse", "outro": "chorus"}.get(s.kind, s.kind), chosen["verse"])
        for k in range(s.bars):
            degree = prog[k % len(prog)]
            if s.kind == "outro" and k == s.bars - 1:
                degree = 0
            chords.append(_chord(degree, key_pc, mode, s.start_bar + k))
    return tuple(chords)


def _plays(part: str, section: Section, sections: tuple[Section, ...], arrangement) -> bool:
    kinds = arrangement.get(part, ())
    if section.kind in kinds:
        return True
    if f"{section.kind}2" in kinds:
        return sum(1 for s in sections if s.kind == section.kind and s.start_bar < section.start_bar) >= 1
    return False


# ------------------------------------------------------------------------------------ drums


def drum_score(song_sections, tempo_bpm: float, rng: np.random.Generator, plays, timing_ms: float = 4.0,
               styles: dict[str, str] | None = None) -> tuple[DrumHit, ...]:
    """The drummer: grid patterns per section style, ghost notes and kick variations, fills into the
    next section, a crash on each new section's downbeat, open hats choked by the next closed one
    (choking is the kit renderer's job), timing and velocity humanised."""
    step_s = 60.0 / tempo_bpm / 4.0
    bar_s = 16 * step_s
    hits: list[DrumHit] = []
    accents = np.array([1.0, 0.55, 0.75, 0.55] * 4)
    accents[[0, 8]] = 1.0

    def add(t: float, piece: str, art: str, vel: float) -> None:
        jitter = float(np.clip(rng.normal(0.0, timing_ms / 1000.0), -2.5 * timing_ms / 1000, 2.5 * timing_ms / 1000))
        v = float(np.clip(vel + rng.normal(0.0, 0.05), 0.08, 1.0))
        hits.append(DrumHit(round(max(t + jitter, 0.0), 6), piece, art, round(v, 4)))

    playing = [s for s in song_sections if plays(s)]
    for index, s in enumerate(song_sections):
        if not plays(s):
            continue
        style = (styles or DRUM_STYLE).get(s.kind, DRUM_STYLE.get(s.kind, "rock"))
        grid = DRUM_GRIDS[style]
        nxt = song_sections[index + 1] if index + 1 < len(song_sections) else None
        fill_bar = s.bars - 1 if (nxt is not None and plays(nxt) and s.bars >= 2) else None
        fill = FILLS[int(rng.integers(len(FILLS)))] if fill_bar is not None else ()
        last_section = s is playing[-1]
        for b in range(s.bars):
            t0 = (s.start_bar + b) * bar_s
            if last_section and b == s.bars - 1:
                add(t0, "kick", "hit", 0.95)
                add(t0, "crash", "hit", 0.95)
                continue
            in_fill = b == fill_bar
            for voice, pattern in grid.items():
                for step, ch in enumerate(pattern):
                    if ch == "." or (in_fill and step >= 8 and voice != "kick"):
                        continue
                    if in_fill and voice == "kick" and step >= 8 and step not in (8, 12):
                        continue
                    vel = 0.9 * accents[step] if voice in ("hats", "ride") else (0.95 if voice == "snare" else 0.9 * accents[step] + 0.1)
                    art = {"o": "open", "x": "closed" if voice == "hats" else "hit"}.get(ch, "hit")
                    if voice == "ride":
                        art = "bell" if (step == 0 and b % 2 == 0) else "bow"
                    add(t0 + step * step_s, voice, art, vel)
            if s.kind in ("verse", "outro") and rng.random() < 0.5 and not in_fill:
                add(t0 + 14 * step_s, "kick", "hit", 0.6)
            if s.kind in ("verse", "chorus") and not in_fill:
                for step in (7, 15):
                    if rng.random() < 0.25:
                        add(t0 + step * step_s, "snare", "hit", 0.22)
            if style == "half_time":
                add(t0 + 4 * step_s, "hats", "pedal", 0.5)
                add(t0 + 12 * step_s, "hats", "pedal", 0.5)
            if in_fill:
                for k, (piece, step) in enumerate(fill):
                    add(t0 + step * step_s, piece, "hit", 0.72 + 0.2 * k / max(len(fill) - 1, 1))
            if b == 0 and (s.kind in ("chorus", "bridge", "outro") or (index > 0 and s.kind == "verse"
                                                                       and not plays(song_sections[index - 1]))):
                add(t0, "crash", "hit", 0.9)
            if b == 0 and s.kind == "chorus" and s.bars >= 4:
                add(t0 + (s.bars // 2) * bar_s, "crash", "hit", 0.8)
    hits.sort(key=lambda h: (h.time_s, h.piece))
    return tuple(hits)


# ------------------------------------------------------------------------------------ pitched parts


def _human(rng, notes: list[Note], timing_ms: float, velocity_sd: float) -> tuple[Note, ...]:
    out = []
    for n in notes:
        dt = float(np.clip(rng.normal(0.0, timing_ms / 1000.0), -2.5 * timing_ms / 1000, 2.5 * timing_ms / 1000))
        v = int(np.clip(round(n.velocity + rng.normal(0.0, velocity_sd)), 1, 127))
        out.append(Note(round(max(n.start_s + dt, 0.0), 6), round(max(n.length_s, 0.02), 6), n.pitch, v))
    out.sort(key=lambda n: (n.start_s, n.pitch))
    return tuple(out)


def _bars(song_sections, plays):
    for s in song_sections:
        if plays(s):
            for b in range(s.bars):
                yield s, s.start_bar + b, b


def bass_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """Bass locked to the kick: a note on every kick of the bar (root, octave 1-2), held to the next kick,
    an approach note into a chord change; whole-note roots where the drums rest."""
    bar_s, beat_s = song.bar_s, song.beat_s
    kicks = np.array(sorted(h.time_s for h in song.drum_hits if h.piece == "kick" and h.velocity > 0.4))
    scale = _scale(song.mode)
    notes: list[Note] = []
    for s, bar, _ in _bars(song.sections, plays):
        chord = song.chords[bar]
        root = _nearest(chord.root_pc, 36, 28, 43)
        t0, t1 = bar * bar_s, (bar + 1) * bar_s
        grid_kicks = [round((k - t0) / (beat_s / 4)) * beat_s / 4 + t0 for k in kicks if t0 - 0.02 <= k < t1 - 0.02]
        starts = sorted(set(round(k, 6) for k in grid_kicks)) or [t0, t0 + 2 * beat_s]
        if starts[0] > t0 + 0.01:
            starts.insert(0, t0)
        nxt_chord = song.chords[bar + 1] if bar + 1 < len(song.chords) else chord
        approach = nxt_chord.root_pc != chord.root_pc and rng.random() < 0.45 and s.kind != "outro"
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else t1
            pitch = root + (12 if (k > 0 and rng.random() < 0.15) else 0)
            notes.append(Note(start, max((end - start) * 0.92, 0.08), pitch, 96 if k == 0 else 84))
        if approach and starts[-1] < t1 - beat_s * 0.6:
            target = _nearest(nxt_chord.root_pc, root, 28, 43)
            below = [p for p in range(target - 3, target) if (p - song.key_pc) % 12 in scale]
            notes.append(Note(t1 - beat_s / 2, beat_s * 0.45, max(below) if below else target, 80))
    last = song.sections[-1]
    if plays(last):
        notes = [n for n in notes if n.start_s < last.start_s + bar_s * (last.bars - 1)]
        notes.append(Note(last.start_s + bar_s * (last.bars - 1), bar_s * 0.95, _nearest(song.key_pc, 36, 28, 43), 96))
    return _human(rng, notes, 5.0, 5.0)


def pad_part(song: Song, plays, rng, low: int = 48, high: int = 72) -> tuple[Note, ...]:
    """Sustained four-voice chords, one per bar, lowest note >= ``low`` (48 = C3, 131 Hz), slightly legato."""
    notes: list[Note] = []
    prev = None
    for s, bar, _ in _bars(song.sections, plays):
        voiced = voicing(song.chords[bar], low, high, prev)
        prev = voiced
        length = song.bar_s * (1.02 if (bar + 1) * song.bar_s < s.end_s else 0.98)
        for p in voiced:
            notes.append(Note(bar * song.bar_s, length, p, 72))
    return _human(rng, notes, 3.0, 3.0)


KEYS_RHYTHMS = ("x..x..x...x.x...", "x...x.x...x...x.", "x..x...x..x..x..", "..x...x...x...x.")


def keys_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """Piano comping: right-hand voicings on a syncopated 16th rhythm, left-hand root on beat 1 (and 3)."""
    step = song.beat_s / 4
    notes: list[Note] = []
    prev = None
    rhythm = KEYS_RHYTHMS[int(rng.integers(len(KEYS_RHYTHMS)))]
    for s, bar, k in _bars(song.sections, plays):
        t0 = bar * song.bar_s
        chord = song.chords[bar]
        voiced = voicing(chord, 55, 77, prev, voices=3 if s.kind == "intro" else 4)
        prev = voiced
        hits = [i for i, c in enumerate(rhythm) if c == "x"] if s.kind != "intro" else [0, 8]
        for j, i in enumerate(hits):
            end = hits[j + 1] if j + 1 < len(hits) else 16
            vel = 78 if i % 4 == 0 else 66
            for p in voiced:
                notes.append(Note(t0 + i * step, (end - i) * step * 0.85, p, vel))
        lh = _nearest(chord.root_pc, 45, 38, 52)
        notes.append(Note(t0, 2 * song.beat_s * 0.9, lh, 70))
        if s.kind != "intro":
            notes.append(Note(t0 + 2 * song.beat_s, 2 * song.beat_s * 0.9, lh + (12 if lh < 45 else 0), 62))
    return _human(rng, notes, 7.0, 6.0)


STRUMS = ("D.DU.UDU", "D.D.DUDU", "D..UD.DU")


def guitar_voicing(chord: Chord) -> tuple[int, ...]:
    """A six-string-like voicing: root in E2..E3, chord tones stacked upwards 3..7 semitones apart, to ~E5."""
    root = _nearest(chord.root_pc, 45, 40, 52)
    notes = [root]
    pcs = chord.tones_pc
    while len(notes) < 6:
        cand = notes[-1] + 3
        while cand % 12 not in pcs:
            cand += 1
        if cand > 76:
            break
        notes.append(cand)
    return tuple(notes)


def guitar_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """Strummed chords on an eighth-note pattern: down strokes low to high, up strokes on the top strings,
    each string a few ms after the last, notes held to the next stroke."""
    eighth = song.beat_s / 2
    pattern = STRUMS[int(rng.integers(len(STRUMS)))]
    notes: list[Note] = []
    for s, bar, _ in _bars(song.sections, plays):
        t0 = bar * song.bar_s
        strings = guitar_voicing(song.chords[bar])
        strokes = [(i, c) for i, c in enumerate(pattern) if c != "."]
        for j, (i, c) in enumerate(strokes):
            nxt = strokes[j + 1][0] if j + 1 < len(strokes) else 8
            order = strings if c == "D" else tuple(reversed(strings[-4:]))
            spread = float(rng.uniform(0.008, 0.014))
            vel = 92 if (c == "D" and i % 2 == 0) else 70
            for k, p in enumerate(order):
                t = t0 + i * eighth + k * spread
                notes.append(Note(t, max((nxt - i) * eighth - k * spread, 0.05) * 0.95, p, vel - 2 * k))
    return _human(rng, notes, 4.0, 5.0)


def arp_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """A 16th-note arpeggio over the chord tones across two octaves from C4, half gate, accented beats."""
    step = song.beat_s / 4
    notes: list[Note] = []
    shape = int(rng.integers(2))
    for s, bar, _ in _bars(song.sections, plays):
        chord = song.chords[bar]
        base = voicing(chord, 60, 72, voices=3)
        tones = list(base) + [p + 12 for p in base]
        seq = tones if shape == 0 else tones + tones[-2:0:-1]
        for i in range(16):
            p = seq[i % len(seq)]
            notes.append(Note(bar * song.bar_s + i * step, step * 0.5, p, 88 if i % 4 == 0 else 68))
    return _human(rng, notes, 1.0, 3.0)


LEAD_RHYTHMS = {
    "verse": (((0, 1), (1, 1), (2, 2), (4, 1), (5, 1), (6, 2), (8, 1), (9, 1), (10, 1), (11, 3)),
              ((1, 1), (2, 1), (3, 1), (4, 2), (6, 2), (8, 1), (9, 2), (11, 1), (12, 3)),
              ((0, 2), (2, 1), (3, 1), (4, 2), (7, 1), (8, 2), (10, 1), (11, 3))),
    "chorus": (((0, 3), (3, 1), (4, 2), (6, 2), (8, 3), (11, 1), (12, 3)),
               ((0, 2), (2, 2), (4, 1), (5, 1), (6, 2), (8, 4), (12, 3))),
    "bridge": (((0, 4), (4, 2), (6, 2), (8, 6)),),
}
#: Sung syllables, one per note, for the espeak-ng vocal proxy.
LYRICS = ("hold", "on", "to", "the", "light", "we", "made", "don't", "let", "it", "fade", "a", "way", "say",
          "you", "will", "stay", "here", "to", "night", "and", "I", "will", "know", "the", "way", "home",
          "oh", "oh", "yeah", "we", "run", "so", "far", "from", "here", "now")


def lead_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """A vocal-range melody in two-bar phrases: chord tones on strong eighths, steps between, the chorus
    higher than the verse; the second verse and chorus repeat the first (as songs do)."""
    scale = _scale(song.mode)
    tonic = _nearest(song.key_pc, 62, 57, 68)
    ranges = {"verse": (tonic - 3, tonic + 9), "chorus": (tonic + 2, tonic + 14), "bridge": (tonic, tonic + 12)}
    eighth = song.beat_s / 2
    memory: dict[str, list[tuple[float, float, int, int]]] = {}
    notes: list[Note] = []
    for s in song.sections:
        if not plays(s):
            continue
        kind = s.kind if s.kind in LEAD_RHYTHMS else "verse"
        if kind in memory:
            for off, length, pitch, vel in memory[kind]:
                if off < s.bars * song.bar_s:
                    notes.append(Note(s.start_s + off, length, pitch, vel))
            continue
        lo, hi = ranges.get(kind, ranges["verse"])
        allowed = [p for p in range(lo, hi + 1) if (p - song.key_pc) % 12 in scale]
        rhythms = LEAD_RHYTHMS[kind]
        phrase_notes = []
        prev = allowed[len(allowed) // 2]
        for phrase in range(max(1, s.bars // 2)):
            rhythm = rhythms[int(rng.integers(len(rhythms)))] if phrase % 2 == 0 else rhythms[(phrase + 1) % len(rhythms)]
            for onset, length in rhythm:
                t = phrase * 2 * song.bar_s + onset * eighth
                bar = s.start_bar + min(int(t // song.bar_s), s.bars - 1)
                chord_pcs = song.chords[bar].tones_pc
                if onset % 2 == 0:
                    options = [p for p in allowed if p % 12 in chord_pcs]
                else:
                    i = allowed.index(min(allowed, key=lambda p: abs(p - prev)))
                    options = [allowed[j] for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(allowed)]
                weights = np.array([1.0 / (1.0 + abs(p - prev)) ** 1.5 for p in options])
                pitch = int(rng.choice(options, p=weights / weights.sum()))
                prev = pitch
                vel = int(90 + (8 if onset % 4 == 0 else 0) + (6 if kind == "chorus" else 0))
                phrase_notes.append((round(t, 6), length * eighth * 0.92, pitch, vel))
        memory[kind] = phrase_notes
        for off, length, pitch, vel in phrase_notes:
            notes.append(Note(s.start_s + off, length, pitch, vel))
    return _human(rng, notes, 9.0, 5.0)


def harmony_part(song: Song, lead: tuple[Note, ...], plays, rng, interval_steps: int = 2) -> tuple[Note, ...]:
    """Backing vocals: the lead's notes in the sections the BVs sing, a diatonic third (2 scale steps) above,
    dropped an octave when that leaves the vocal range."""
    scale = _scale(song.mode)
    sections = [s for s in song.sections if plays(s)]
    notes = []
    for n in lead:
        if not any(s.start_s <= n.start_s < s.end_s for s in sections):
            continue
        degree = min(range(7), key=lambda d: ((n.pitch - song.key_pc - scale[d]) % 12))
        octave = (n.pitch - song.key_pc - scale[degree]) // 12
        target = degree + interval_steps
        pitch = song.key_pc + scale[target % 7] + 12 * (octave + target // 7)
        if pitch > 79:
            pitch -= 12
        notes.append(Note(n.start_s, n.length_s, pitch, max(n.velocity - 14, 40)))
    return _human(rng, notes, 12.0, 5.0)


def brass_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """Brass stabs: short chords on the downbeat of odd bars and an anticipation on the 'and' of 4."""
    notes = []
    prev = None
    for s, bar, k in _bars(song.sections, plays):
        voiced = voicing(song.chords[bar], 58, 79, prev, voices=4)
        prev = voiced
        t0 = bar * song.bar_s
        if k % 2 == 0:
            notes += [Note(t0, song.beat_s * 0.45, p, 96) for p in voiced]
        nxt = song.chords[bar + 1] if bar + 1 < len(song.chords) else song.chords[bar]
        if k + 1 < s.bars:
            notes += [Note(t0 + 3.5 * song.beat_s, song.beat_s * 0.4, p, 88) for p in voicing(nxt, 58, 79, voiced)]
    return _human(rng, notes, 6.0, 5.0)


def fx_part(song: Song, plays, rng) -> tuple[Note, ...]:
    """One long swelling note per section the FX play in (a GS wind/sea effect), leaving before the next."""
    notes = []
    for s in song.sections:
        if plays(s):
            notes.append(Note(s.start_s, max(s.end_s - s.start_s - song.beat_s, song.beat_s), 60, 90))
    return _human(rng, notes, 0.0, 2.0)


PART_BUILDERS = {"bass": bass_part, "pad": pad_part, "keys": keys_part, "guitar": guitar_part, "arp": arp_part,
                 "lead": lead_part, "brass": brass_part, "fx": fx_part}


def make_song(seed: int, tempo_bpm: float | None = None, key: str | None = None, form=DEFAULT_FORM,
              parts=("bass", "keys", "pad", "guitar", "arp", "lead", "bvs"), arrangement=None,
              drum_styles: dict[str, str] | None = None) -> Song:
    """Compose the song a recipe describes.

    Parameters
    ----------
    key : str, optional
        ``"A minor"``, ``"Eb major"``; picked from the seed when absent.
    tempo_bpm : float, optional
        Picked from the seed in 132..148 BPM when absent (the default form then lasts 36-40 s).
    """
    rng = rng_for(seed, "song")
    tempo = float(tempo_bpm) if tempo_bpm else float(rng.integers(132, 149))
    if key:
        name, mode = key.split()
        key_pc = NOTE_NAMES.index(name) if name in NOTE_NAMES else {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10}[name]
    else:
        key_pc, mode = int(rng.integers(12)), ("major", "minor")[int(rng.integers(2))]
    arrangement = {**ARRANGEMENT, **(arrangement or {})}
    sections = make_sections(form, tempo)
    chords = make_chords(sections, key_pc, mode, rng_for(seed, "chords"))

    def plays_fn(part):
        return lambda s: _plays(part, s, sections, arrangement)

    hits = drum_score(sections, tempo, rng_for(seed, "drums"), plays_fn("drums"), styles=drum_styles)
    song = Song(seed, tempo, key_pc, mode, sections, chords, hits)
    built: dict[str, tuple[Note, ...]] = {}
    for part in parts:
        if part == "bvs":
            continue
        built[part] = PART_BUILDERS[part](song, plays_fn(part), rng_for(seed, "part", part))
    if "bvs" in parts:
        lead = built.get("lead") or lead_part(song, plays_fn("lead"), rng_for(seed, "part", "lead"))
        built["bvs"] = harmony_part(song, lead, plays_fn("bvs"), rng_for(seed, "part", "bvs"))
        built["bvs_double"] = harmony_part(song, lead, plays_fn("bvs"), rng_for(seed, "part", "bvs", "double"))
    if "guitar" in parts:
        # Rhythm guitars are double-tracked: a second take of the same part, for the other side.
        built["guitar_double"] = guitar_part(song, plays_fn("guitar"), rng_for(seed, "part", "guitar", "double"))
    plays_in = {p: tuple(s.name for s in sections if plays_fn(p.removesuffix("_double"))(s))
                for p in list(built) + ["drums"]}
    return Song(seed, tempo, key_pc, mode, sections, chords, hits, built, plays_in)
