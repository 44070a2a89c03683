"""Synthesised multitrack sessions with known mix problems, for the demo, tests and benchmarks.

The arrangement is a short pop form (verse / chorus) at 120 BPM over a four-chord loop.  Each
role is rendered as four bars of audio and tiled, with per-section levels, so a four-minute,
24-stem session writes in seconds and in bounded memory.  Problems are planted on purpose and
named, so a test can check that each is found on the right stem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

TEMPO_BPM = 120.0
BEAT_S = 60.0 / TEMPO_BPM
BAR_S = 4 * BEAT_S
LOOP_BARS = 4
#: Chord roots of the loop (A, F, C, G), Hz, and their triads as semitone offsets.
ROOTS_HZ = (110.0, 87.31, 130.81, 98.0)
TRIADS = ((0, 3, 7), (0, 4, 7), (0, 4, 7), (0, 4, 7))
#: Sections: (name, bars, level in dB applied to the whole arrangement's "energy" roles).
FORM = (("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4), ("outro", 2))

#: What each problem does to which stem; the test suite plants these and expects them found.
PROBLEMS = ("too_hot", "rumble_dc", "polarity", "vocal_chorus_dip", "clipped", "silent", "kick_bass_masking")


@dataclass(frozen=True)
class StemSpec:
    """One stem to render: a file name, a role renderer, pan, width and a level."""

    name: str
    role: str
    level_db: float = -18.0
    pan: float = 0.0
    stereo: bool = True
    seed: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)


def _env(n: int, fs: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / fs
    env = np.exp(-t / max(decay_s, 1e-3))
    attack = max(int(attack_s * fs), 1)
    env[:attack] *= np.linspace(0.0, 1.0, attack)
    return env


def _harmonics(freq_hz: float, n: int, fs: int, count: int, tilt: float, rng, vibrato_hz=0.0,
               vibrato_depth=0.0, formants=()) -> np.ndarray:
    t = np.arange(n) / fs
    phase_mod = 0.0
    if vibrato_hz:
        phase_mod = vibrato_depth / vibrato_hz * np.sin(2 * np.pi * vibrato_hz * t)
    out = np.zeros(n)
    for k in range(1, count + 1):
        f = freq_hz * k
        if f >= fs * 0.45:
            break
        amp = k ** (-tilt)
        for centre, width in formants:
            amp *= 1.0 + 3.0 * np.exp(-0.5 * ((f - centre) / width) ** 2)
        out += amp * np.sin(2 * np.pi * f * t + k * phase_mod + rng.uniform(0, 2 * np.pi))
    return out


def _note(semitones: float, root: float) -> float:
    return root * 2.0 ** (semitones / 12.0)


def _render_loop(role: str, fs: int, rng, problems: tuple[str, ...] = ()) -> np.ndarray:
    """Four bars of one role, mono, peak-normalised."""
    bar = int(BAR_S * fs)
    beat = int(BEAT_S * fs)
    out = np.zeros(bar * LOOP_BARS)

    def place(sound: np.ndarray, at: int) -> None:
        end = min(at + len(sound), len(out))
        out[at:end] += sound[: end - at]

    for b in range(LOOP_BARS):
        root = ROOTS_HZ[b]
        start = b * bar
        if role == "kick":
            n = int(0.35 * fs)
            t = np.arange(n) / fs
            sweep = 62.0 + 90.0 * np.exp(-t / 0.03)  # the body settles at ~62 Hz
            thump = np.sin(2 * np.pi * np.cumsum(sweep) / fs) * _env(n, fs, 0.001, 0.12)
            for beat_i in (0, 2, 2.5):
                place(thump, start + int(beat_i * beat))
        elif role == "snare":
            n = int(0.25 * fs)
            body = np.sin(2 * np.pi * 185 * np.arange(n) / fs) * _env(n, fs, 0.001, 0.05)
            noise = rng.standard_normal(n) * _env(n, fs, 0.001, 0.08) * 0.6
            noise = np.diff(noise, prepend=0.0)  # tilt the noise up
            for beat_i in (1, 3):
                place(body + noise, start + beat_i * beat)
        elif role == "hats":
            n = int(0.06 * fs)
            for eighth in range(8):
                tick = np.diff(np.diff(rng.standard_normal(n), prepend=0.0), prepend=0.0)
                place(tick * _env(n, fs, 0.0005, 0.015) * (1.0 if eighth % 2 else 0.6),
                      start + eighth * beat // 2)
        elif role == "bass":
            if "kick_bass_masking" in problems:
                # Long notes on the kick's beats, fundamentals in the kick's 60-120 Hz body.
                for beat_i in (0, 2, 2.5):
                    n = int(beat * 0.9)
                    tone = _harmonics(root * 0.75, n, fs, 6, 1.1, rng) * _env(n, fs, 0.003, 0.6)
                    place(tone, start + int(beat_i * beat))
            else:
                # Off-beat eighths above the kick's thump: the two take turns and keep apart.
                for eighth in (1, 3, 5, 7):
                    n = beat // 2
                    tone = _harmonics(root, n, fs, 8, 1.3, rng) * _env(n, fs, 0.005, 0.15)
                    place(tone, start + eighth * n)
        elif role in ("pad", "strings"):
            chord = sum(_harmonics(_note(s, root * 2), bar, fs, 5, 1.6, rng) for s in TRIADS[b])
            swell = 0.6 + 0.4 * np.sin(np.pi * np.arange(bar) / bar)
            place(chord * swell, start)
        elif role in ("keys", "piano"):
            for beat_i in range(4):
                n = beat
                chord = sum(_harmonics(_note(s, root * 4), n, fs, 6, 1.2, rng) for s in TRIADS[b])
                place(chord * _env(n, fs, 0.002, 0.3), start + beat_i * beat)
        elif role == "guitar":
            for beat_i in (0, 1.5, 2, 3):
                n = int(beat * 1.2)
                chord = sum(_harmonics(_note(s, root * 2), n, fs, 12, 0.9, rng) for s in (0, 7, 12, 16))
                place(chord * _env(n, fs, 0.003, 0.4), start + int(beat_i * beat))
        elif role in ("vocal", "backing"):
            melody = (7, 5, 3, 5) if role == "vocal" else (12, 10, 7, 10)
            for beat_i, step in enumerate(melody):
                n = int(beat * 0.9)
                voice = _harmonics(_note(step, root * 2), n, fs, 14, 0.8, rng, vibrato_hz=5.5,
                                   vibrato_depth=0.02, formants=((600, 150), (1800, 300), (2800, 400)))
                breath = rng.standard_normal(n) * 0.01
                place((voice + breath) * _env(n, fs, 0.04, 2.0), start + beat_i * beat)
        elif role == "synth":
            for sixteenth in range(16):
                n = beat // 4
                f = _note((0, 7, 12, 7)[sixteenth % 4], root * 4)
                place(_harmonics(f, n, fs, 16, 1.0, rng) * _env(n, fs, 0.002, 0.1), start + sixteenth * n)
        elif role == "fx":
            n = bar
            riser = rng.standard_normal(n) * np.linspace(0.0, 1.0, n) ** 2
            place(np.diff(riser, prepend=0.0), start)
        else:
            raise ValueError(f"unknown synth role {role!r}")
    peak = np.abs(out).max()
    return out / peak if peak > 0 else out


def _section_gain_db(role: str, section: str) -> float:
    if section in ("intro", "outro"):
        return {"vocal": -60.0, "backing": -60.0, "kick": -6.0, "snare": -60.0}.get(role, -3.0)
    if section == "verse":
        return {"backing": -60.0, "pad": -4.0, "strings": -4.0, "synth": -60.0, "guitar": -2.0}.get(role, 0.0)
    return {"backing": 0.0, "synth": 0.0, "pad": 1.0, "hats": 1.0}.get(role, 0.0)


def song_sections(duration_s: float) -> list[tuple[str, float, float]]:
    """The form stretched or repeated to ``duration_s``: ``(name, start_s, end_s)`` in order."""
    sections, t = [], 0.0
    form_bars = sum(bars for _, bars in FORM)
    scale = 1.0
    if duration_s < form_bars * BAR_S:
        scale = duration_s / (form_bars * BAR_S)
    while t < duration_s - 1e-9:
        for name, bars in FORM:
            length = max(bars * BAR_S * scale, BAR_S) if scale < 1.0 else bars * BAR_S
            length = round(length / BAR_S) * BAR_S if scale >= 1.0 else length
            end = min(t + length, duration_s)
            if end - t > 1e-9:
                sections.append((name, t, end))
            t = end
            if t >= duration_s - 1e-9:
                break
    return sections


def render_stem(spec: StemSpec, duration_s: float, sample_rate: int, block_s: float = 8.0):
    """Yield the stem as float32 ``(frames, channels)`` blocks of about ``block_s`` seconds."""
    rng = np.random.default_rng(spec.seed)
    loop = _render_loop(spec.role, sample_rate, rng, spec.problems) if "silent" not in spec.problems else None
    clip_makeup = 1.0
    if loop is not None and "clipped" in spec.problems:
        # Keep the clipped part's loudness where the unclipped one was, so clipping is the only fault.
        clip_makeup = float(np.sqrt(np.mean(loop ** 2) / np.mean(np.clip(loop * 4.0, -1.0, 1.0) ** 2)))
    total = int(round(duration_s * sample_rate))
    sections = song_sections(duration_s)
    gains = np.zeros(len(sections))
    for i, (name, _, _) in enumerate(sections):
        g = _section_gain_db(spec.role, name)
        if "vocal_chorus_dip" in spec.problems and name == "chorus":
            g -= 8.0
        gains[i] = g
    level = 10.0 ** (spec.level_db / 20.0)
    if "too_hot" in spec.problems:
        level *= 10.0 ** (9.0 / 20.0)
    pan = np.clip(spec.pan, -1.0, 1.0)
    left_gain = np.cos((pan + 1) * np.pi / 4) * np.sqrt(2)
    right_gain = np.sin((pan + 1) * np.pi / 4) * np.sqrt(2)
    channels = 2 if spec.stereo else 1
    block = int(block_s * sample_rate)
    for start in range(0, total, block):
        n = min(block, total - start)
        idx = np.arange(start, start + n)
        if loop is None:
            yield np.zeros((n, channels), np.float32)
            continue
        mono = loop[idx % len(loop)]
        times = idx / sample_rate
        section_index = np.searchsorted([s for _, s, _ in sections], times, side="right") - 1
        gain_db = gains[np.clip(section_index, 0, len(gains) - 1)]
        # 20 ms ramps at section boundaries, so section changes do not click.
        gain = 10.0 ** (gain_db / 20.0)
        mono = mono * gain * level
        if "rumble_dc" in spec.problems:
            mono = mono + 0.05 * np.sin(2 * np.pi * 18.0 * times) + 0.03
        if channels == 1:
            out = mono[:, None]
        else:
            side = 0.0
            if spec.role in ("pad", "strings", "fx", "hats"):
                delayed = np.roll(mono, int(0.011 * sample_rate))
                out = np.stack([mono * left_gain + 0.35 * delayed, mono * right_gain - 0.35 * delayed], axis=1)
            else:
                out = np.stack([mono * left_gain, mono * right_gain], axis=1) + side
            if "polarity" in spec.problems:
                out[:, 1] = -out[:, 1]
        if "clipped" in spec.problems:
            # Driven 12 dB into a hard clipper, then turned back down to its level: flat tops baked
            # into the file below full scale, as when a plug-in clips before the fader.
            out = np.clip(out * (4.0 / level), -1.0, 1.0) * level * clip_makeup
        yield out.astype(np.float32)


def default_session(problems: bool = True) -> list[StemSpec]:
    """The demo's ten-stem session; with ``problems`` it carries every problem in :data:`PROBLEMS`."""
    p = (lambda *names: names) if problems else (lambda *names: ())
    return [
        StemSpec("Kick", "kick", -18.0, seed=1, problems=p("kick_bass_masking")),
        StemSpec("Snare", "snare", -13.5, seed=2),
        StemSpec("Hats", "hats", -19.0, pan=0.3, seed=3),
        StemSpec("Bass_DI", "bass", -19.0, seed=4, problems=p("kick_bass_masking")),
        StemSpec("Pad_Strings", "pad", -28.0, seed=5, problems=p("rumble_dc")),
        StemSpec("Guitar_Rhythm", "guitar", -16.5, pan=-0.4, seed=6, problems=p("polarity")),
        StemSpec("Keys", "keys", -21.0, pan=0.35, seed=7, problems=p("too_hot")),
        # Mono: it plays at unity on both sides of a stereo track, 3 dB above its file's own loudness.
        StemSpec("Lead_Vocal", "vocal", -20.0, stereo=False, seed=8, problems=p("vocal_chorus_dip")),
        StemSpec("Synth_Lead", "synth", -22.0, pan=0.2, seed=9, problems=p("clipped")),
        StemSpec("FX_Riser", "fx", -30.0, seed=10, problems=p("silent")),
    ]


def write_session(folder: str | Path, specs: list[StemSpec], duration_s: float = 40.0,
                  sample_rate: int = 48000, subtype: str = "PCM_24", extension: str = ".wav") -> list[Path]:
    """Render ``specs`` into ``folder`` as audio files; returns the paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        path = folder / f"{spec.name}{extension}"
        channels = 2 if spec.stereo else 1
        with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype=subtype) as fh:
            for block in render_stem(spec, duration_s, sample_rate):
                fh.write(block)
        paths.append(path)
    return paths
