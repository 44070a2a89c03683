"""A lead-vocal *proxy*: espeak-ng's speech imposed on a sung pitch line by a channel vocoder.

This is not singing.  No recorded voice ships in Debian that could be sequenced, so the lead is
built from two real-but-different things: the spectral envelope of synthetic speech (espeak-ng
saying one lyric word per note: formants, consonant bursts and sibilance move as in speech) and a
pitched source that follows the melody exactly (band-limited sawtooth, pre-emphasised to a flat
harmonic series, with portamento, delayed vibrato and a little pitch drift).  A 24-band vocoder
(120 Hz .. 10 kHz) multiplies each band of the source by the band envelope of the speech; the
bands above 3.5 kHz are half noise so consonants stay noisy.  The result has a voice's spectrum
(formant peaks in 300 Hz .. 3.5 kHz, sibilance at 5 - 9 kHz), a voice's pitch range and vibrato,
and word-rate modulation; it sounds like a vocoded robot singer.  Treat vocal classes built from
it (and from GM "Choir Aahs"/"Voice Oohs"/"Synth Voice") as proxies.
"""
from __future__ import annotations

import functools
import io
import shutil
import subprocess

import numpy as np
import soundfile as sf
from scipy import signal

from .midi import Note
from .soundfonts import MaterialError
from .song import rng_for

ESPEAK = "espeak-ng"
VOICES = ("en-us+f3", "en-us+f4", "en+f2", "en-us+m3", "en+m4")
FRAME_HZ = 200
BANDS = 24
LOW_HZ, HIGH_HZ = 120.0, 10000.0
NOISY_FROM_HZ = 3500.0
#: The first part of a word (its consonant onset) plays at speech speed; the rest stretches to the note.
ONSET_S = 0.07


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


@functools.lru_cache(maxsize=None)
def espeak_version() -> str:
    if not espeak_available():
        return "missing"
    out = subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


@functools.lru_cache(maxsize=1024)
def speak(word: str, voice: str, speed_wpm: int = 150) -> tuple[np.ndarray, int]:
    """One word from espeak-ng as mono float32 at espeak's own rate (22.05 kHz), silence trimmed."""
    if not espeak_available():
        raise MaterialError("espeak-ng is not installed (apt install espeak-ng)")
    done = subprocess.run([ESPEAK, "-v", voice, "-s", str(speed_wpm), "--stdout", word],
                          capture_output=True, timeout=60)
    if done.returncode != 0 or not done.stdout:
        raise MaterialError(f"espeak-ng failed on {word!r}: {done.stderr.decode(errors='replace').strip()}")
    audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * max(float(np.abs(audio).max()), 1e-9))
    if len(loud):
        audio = audio[loud[0]: loud[-1] + 1]
    audio.setflags(write=False)
    return audio, int(rate)


@functools.lru_cache(maxsize=4)
def _filterbank(fs: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    edges = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    sos = tuple(signal.butter(2, [lo, hi], "bandpass", fs=fs, output="sos") for lo, hi in zip(edges[:-1], edges[1:]))
    return centres, sos


@functools.lru_cache(maxsize=1024)
def _word_envelope(word: str, voice: str) -> np.ndarray:
    """Band envelopes of a spoken word, shape ``(frames at FRAME_HZ, BANDS)``: RMS of the STFT bins
    (25 ms Hann windows every 5 ms, at espeak's own rate) inside each vocoder band."""
    audio, rate = speak(word, voice)
    hop = rate // FRAME_HZ
    window = 5 * hop
    freqs, _, spec = signal.stft(audio, rate, window="hann", nperseg=window, noverlap=window - hop, boundary=None,
                                 padded=True)
    power = np.abs(spec) ** 2
    edges = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
    env = [np.sqrt(power[(freqs >= lo) & (freqs < hi)].sum(axis=0)) for lo, hi in zip(edges[:-1], edges[1:])]
    # Frame k covers [k hop, k hop + 25 ms) and is placed at k hop: the envelope leads by 12.5 ms,
    # which puts a word's consonant just before the note, where singers put it.
    out = np.stack(env, axis=1).astype(np.float32) * np.float32(2.0 / window)
    out.setflags(write=False)
    return out


def _fit_to_note(env: np.ndarray, frames: int) -> np.ndarray:
    """Stretch a word envelope to ``frames``: onset at speech speed, the rest (the vowel) stretched."""
    onset = min(int(ONSET_S * FRAME_HZ), len(env) // 2, frames // 2)
    rest = env[onset:]
    want = frames - onset
    if want <= 0 or len(rest) == 0:
        return env[:frames]
    positions = np.linspace(0, len(rest) - 1, want)
    stretched = np.stack([np.interp(positions, np.arange(len(rest)), rest[:, b]) for b in range(env.shape[1])], axis=1)
    out = np.concatenate([env[:onset], stretched])
    release = min(int(0.04 * FRAME_HZ), len(out))
    out[len(out) - release:] *= np.linspace(1.0, 0.0, release)[:, None]
    return out


def _saw(f0: np.ndarray, fs: int) -> np.ndarray:
    """Band-limited sawtooth (polyBLEP) following a per-sample frequency."""
    dt = f0 / fs
    phase = np.cumsum(dt) % 1.0
    out = 2.0 * phase - 1.0
    dt = np.maximum(dt, 1e-6)
    near0 = phase < dt
    t = phase[near0] / dt[near0]
    out[near0] -= t + t - t * t - 1.0
    near1 = phase > 1.0 - dt
    t = (phase[near1] - 1.0) / dt[near1]
    out[near1] -= t * t + t + t + 1.0
    return out.astype(np.float32)


def pick_voice(seed: int) -> str:
    """The espeak-ng voice a seed sings with."""
    return VOICES[int(rng_for(seed, "voice-choice").integers(len(VOICES)))]


def vocal_line(notes: tuple[Note, ...], length_s: float, seed: int, fs: int = 48000, voice: str | None = None,
               lyrics: tuple[str, ...] = ()) -> np.ndarray:
    """Render a melody as the vocoded espeak-ng proxy, mono ``(frames, 1)`` float32 (see module docs)."""
    from .song import LYRICS

    rng = rng_for(seed, "voice")
    voice = voice or pick_voice(seed)
    lyrics = lyrics or LYRICS
    offset = int(rng.integers(len(lyrics)))
    frames = int(round(length_s * fs))
    env_frames = int(np.ceil(length_s * FRAME_HZ)) + 2
    env = np.zeros((env_frames, BANDS), dtype=np.float32)
    f0_frames = np.zeros(env_frames, dtype=np.float64)
    ordered = sorted(notes, key=lambda n: n.start_s)
    prev_hz = None
    for k, n in enumerate(ordered):
        a = int(round(n.start_s * FRAME_HZ))
        b = min(int(round((n.start_s + n.length_s) * FRAME_HZ)), env_frames)
        if b - a < 2:
            continue
        word = lyrics[(offset + k) % len(lyrics)]
        shaped = _fit_to_note(_word_envelope(word, voice), b - a) * (n.velocity / 100.0) ** 1.5
        env[a:a + len(shaped)] = np.maximum(env[a:a + len(shaped)], shaped)
        target = 440.0 * 2.0 ** ((n.pitch - 69) / 12.0)
        t = np.arange(b - a) / FRAME_HZ
        glide = np.ones_like(t)
        if prev_hz is not None and k > 0 and n.start_s - (ordered[k - 1].start_s + ordered[k - 1].length_s) < 0.08:
            glide = np.minimum(t / 0.05, 1.0)
            start_hz = prev_hz
        else:
            start_hz = target
        vib_depth = np.clip((t - 0.18) / 0.3, 0.0, 1.0) * 0.25  # semitones, delayed vibrato
        vibrato = vib_depth * np.sin(2 * np.pi * 5.4 * t + rng.uniform(0, 2 * np.pi))
        drift = np.cumsum(rng.normal(0, 0.004, len(t)))
        semitones = 12.0 * np.log2(start_hz / target) * (1.0 - glide) + vibrato + drift
        f0_frames[a:b] = target * 2.0 ** (semitones / 12.0)
        prev_hz = target
    # Hold the last pitch through rests so the source never jumps to 0 Hz mid-envelope.
    last = 220.0
    for i in range(env_frames):
        if f0_frames[i] <= 0:
            f0_frames[i] = last
        last = f0_frames[i]
    sample_t = np.arange(frames) / fs
    frame_t = np.arange(env_frames) / FRAME_HZ
    f0 = np.interp(sample_t, frame_t, f0_frames)
    source = _saw(f0, fs)
    source = np.concatenate([[source[0]], np.diff(source)]).astype(np.float32) * 4.0  # +6 dB/oct: flat harmonics
    noise = rng_for(seed, "voice-noise").standard_normal(frames).astype(np.float32) * 0.3
    centres, bank = _filterbank(fs)
    out = np.zeros(frames, dtype=np.float32)
    for b, sos in enumerate(bank):
        carrier = signal.sosfilt(sos, source)
        if centres[b] >= NOISY_FROM_HZ:
            carrier = 0.5 * carrier + 0.5 * signal.sosfilt(sos, noise)
        gain = np.interp(sample_t, frame_t, env[:, b]).astype(np.float32)
        out += (carrier * gain).astype(np.float32)
    peak = float(np.abs(out).max()) or 1.0
    return (out / peak * 0.5)[:, None].astype(np.float32)
