"""Signal processing the builder uses: RBJ biquads, a compressor, a seeded reverb, delays, pan, loudness.

Audio is float32 ``(frames, channels)`` throughout, as in the rest of MixBridge.  These are test
material tools: whole-array processing is fine here (a 40 s stereo stem is 15 MB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from bridge.analyze import loudness as lu

# ----------------------------------------------------------------------------------- biquads (RBJ)


def _rbj(kind: str, freq_hz: float, fs: int, q: float = 0.707, gain_db: float = 0.0) -> np.ndarray:
    """One second-order section from the RBJ Audio EQ Cookbook, as an ``sos`` row."""
    freq_hz = min(max(freq_hz, 1.0), fs * 0.49)
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq_hz / fs
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2.0 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind in ("low_shelf", "high_shelf"):
        sa = 2.0 * np.sqrt(a) * alpha
        if kind == "low_shelf":
            b = [a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sa)]
            den = [(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa]
        else:
            b = [a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sa)]
            den = [(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sa]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    b = np.asarray(b) / den[0]
    den = np.asarray(den) / den[0]
    return np.concatenate([b, den])


@dataclass(frozen=True, slots=True)
class Band:
    """One EQ band: ``kind`` is peak, low_shelf, high_shelf, highpass or lowpass."""

    kind: str
    freq_hz: float
    gain_db: float = 0.0
    q: float = 0.707


def eq_sos(bands: tuple[Band, ...] | list[Band], fs: int) -> np.ndarray:
    return np.array([_rbj(b.kind, b.freq_hz, fs, b.q, b.gain_db) for b in bands])


def apply_sos(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    if len(sos) == 0:
        return audio
    # Channel by channel on contiguous rows: scipy filters a 1-D array 3-5x faster than axis 0 of 2-D.
    rows = np.ascontiguousarray(audio.T, dtype=np.float32)
    return np.ascontiguousarray(signal.sosfilt(np.asarray(sos, dtype=np.float64), rows, axis=-1).T, dtype=np.float32)


def apply_eq(audio: np.ndarray, bands, fs: int) -> np.ndarray:
    return apply_sos(audio, eq_sos(tuple(bands), fs)) if bands else audio


def tilt_bands(db_per_octave: float, pivot_hz: float = 1000.0) -> tuple[Band, ...]:
    """A spectral tilt as a pair of gentle shelves about ``pivot_hz`` (+ tilts up towards the highs).

    Two first-order-like shelves (Q 0.5) two octaves either side of the pivot approximate a
    straight tilt of about ``db_per_octave`` over 100 Hz .. 10 kHz.
    """
    g = db_per_octave * 3.3
    return (Band("low_shelf", pivot_hz / 4.0, -g / 2.0, 0.5), Band("high_shelf", pivot_hz * 4.0, g / 2.0, 0.5))


def one_pole_lowpass(audio: np.ndarray, cutoff_hz: float, fs: int) -> np.ndarray:
    """First-order lowpass (6 dB/octave): the gentle high loss of off-axis pickup and of distance."""
    if cutoff_hz >= fs * 0.45:
        return audio
    x = np.exp(-2.0 * np.pi * cutoff_hz / fs)
    return apply_sos(audio, np.array([[1.0 - x, 0.0, 0.0, 1.0, -x, 0.0]]))


# ----------------------------------------------------------------------------------- dynamics


def compress(audio: np.ndarray, fs: int, threshold_db: float, ratio: float, attack_ms: float = 10.0,
             release_ms: float = 120.0, makeup_db: float = 0.0, knee_db: float = 6.0) -> np.ndarray:
    """Feed-forward compressor on the channels' peak level, 1 ms control rate, soft knee.

    The detector runs on 1 ms block peaks (stereo linked) with separate attack and release
    smoothing in dB; the gain is interpolated back to samples.
    """
    block = max(1, fs // 1000)
    n = len(audio)
    blocks = -(-n // block)
    padded = np.zeros((blocks * block, audio.shape[1]), dtype=np.float32)
    padded[:n] = audio
    peak = np.abs(padded).reshape(blocks, block, -1).max(axis=(1, 2))
    level_db = 20.0 * np.log10(np.maximum(peak, 1e-9))
    over = level_db - threshold_db
    # Soft knee static curve: gain reduction in dB for each block level.
    reduction = np.where(over <= -knee_db / 2, 0.0,
                         np.where(over >= knee_db / 2, over * (1.0 - 1.0 / ratio),
                                  (1.0 - 1.0 / ratio) * (over + knee_db / 2) ** 2 / (2 * knee_db)))
    att = np.exp(-1.0 / max(attack_ms, 0.1))
    rel = np.exp(-1.0 / max(release_ms, 0.1))
    smooth = np.empty_like(reduction)
    state = 0.0
    for i, target in enumerate(reduction):  # 1 ms steps: 40 000 iterations for a 40 s stem
        coef = att if target > state else rel
        state = coef * state + (1.0 - coef) * target
        smooth[i] = state
    gain_db = makeup_db - smooth
    centres = (np.arange(blocks) + 0.5) * block
    gain = 10.0 ** (np.interp(np.arange(n), centres, gain_db) / 20.0)
    return (audio * gain[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------------- reverb

#: The reverb tails are high-passed here (2nd order).
REVERB_LOW_CUT_HZ = 50.0


def reverb_ir(fs: int, rt60_s: float, seed: int, channels: int = 2, predelay_ms: float = 12.0,
              damping: float = 0.5, length_s: float | None = None) -> np.ndarray:
    """A seeded, decorrelated late-reverb impulse response: noise with a frequency-dependent decay.

    The noise is split into low (< 500 Hz), mid and high (> 4 kHz) bands that decay with RT60s of
    ``rt60_s * (1 + damping/2)``, ``rt60_s`` and ``rt60_s * (1 - damping)``: highs die first, as in
    a real room; it is high-passed at :data:`REVERB_LOW_CUT_HZ`.  Each channel gets its own noise, so the tail is wide (inter-channel correlation
    near 0).  Energy-normalised to 1.
    """
    rng = np.random.default_rng(seed)
    length_s = length_s or min(max(1.2 * rt60_s, 0.2), 4.0)
    n = int(length_s * fs)
    t = np.arange(n) / fs
    noise = rng.standard_normal((n, channels)).astype(np.float32)
    lows = signal.sosfilt(signal.butter(2, 500, "low", fs=fs, output="sos"), noise, axis=0)
    highs = signal.sosfilt(signal.butter(2, 4000, "high", fs=fs, output="sos"), noise, axis=0)
    mids = noise - lows - highs
    ir = np.zeros((n, channels))
    for band, rt in ((lows, rt60_s * (1 + damping / 2)), (mids, rt60_s), (highs, rt60_s * max(1 - damping, 0.15))):
        ir += band * (10.0 ** (-3.0 * t / max(rt, 0.05)))[:, None]
    # White noise reaches down to DC; a room's diffuse field and the mics that hear it do not.
    ir = signal.sosfilt(signal.butter(2, REVERB_LOW_CUT_HZ, "high", fs=fs, output="sos"), ir, axis=0)
    fade = min(n // 4, int(0.05 * fs))
    ir[n - fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    attack = int(0.004 * fs)
    ir[:attack] *= np.linspace(0.0, 1.0, attack)[:, None]
    pre = int(predelay_ms * fs / 1000.0)
    ir = np.concatenate([np.zeros((pre, channels)), ir])
    ir /= np.sqrt((ir ** 2).sum() / channels)
    return ir.astype(np.float32)


def convolve(audio: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve each channel of ``audio`` (mono is spread) with each channel of ``ir``; same length out."""
    if audio.shape[1] == 1 and ir.shape[1] > 1:
        audio = np.repeat(audio, ir.shape[1], axis=1)
    out = signal.oaconvolve(audio, ir[:, : audio.shape[1]], axes=0)[: len(audio)]
    return out.astype(np.float32)


def add_reverb(audio: np.ndarray, fs: int, mix: float, rt60_s: float, seed: int) -> np.ndarray:
    """Dry plus ``mix`` (0..1, energy share of the wet) of a stereo reverb tail; keeps the channel count."""
    if mix <= 0:
        return audio
    ir = reverb_ir(fs, rt60_s, seed, channels=max(2, audio.shape[1]))
    wet = convolve(audio, ir)
    if audio.shape[1] == 1:
        wet = wet.mean(axis=1, keepdims=True)
    return (np.sqrt(1.0 - mix) * audio + np.sqrt(mix) * wet).astype(np.float32)


# ----------------------------------------------------------------------------------- space


def delay(audio: np.ndarray, samples: int) -> np.ndarray:
    """Delay by a whole number of samples (a 48 kHz sample is 7 mm of sound travel), same length."""
    if samples <= 0:
        return audio
    out = np.zeros_like(audio)
    out[samples:] = audio[: len(audio) - samples]
    return out


def pan_mono(mono: np.ndarray, pan: float) -> np.ndarray:
    """A mono ``(frames, 1)`` signal to stereo with a constant-power (-3 dB centre) pan, -1 .. +1."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    return np.concatenate([mono * np.cos(angle) * np.sqrt(2.0), mono * np.sin(angle) * np.sqrt(2.0)],
                          axis=1).astype(np.float32)


def balance(stereo: np.ndarray, pan: float) -> np.ndarray:
    """REAPER-style stereo balance: turning towards one side lowers the other channel only."""
    left = 1.0 if pan <= 0 else 1.0 - pan
    right = 1.0 if pan >= 0 else 1.0 + pan
    return (stereo * np.array([left, right], dtype=np.float32)).astype(np.float32)


def set_width(stereo: np.ndarray, width: float) -> np.ndarray:
    """Scale the side signal: 0 mono, 1 unchanged, >1 wider."""
    mid = 0.5 * (stereo[:, 0] + stereo[:, 1])
    side = 0.5 * (stereo[:, 0] - stereo[:, 1]) * width
    return np.stack([mid + side, mid - side], axis=1).astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    return audio.mean(axis=1, keepdims=True).astype(np.float32)


# ----------------------------------------------------------------------------------- loudness


def _energy(audio: np.ndarray, fs: int) -> np.ndarray:
    meter = lu.KWeightedEnergy(fs, audio.shape[1])
    meter.feed(np.ascontiguousarray(audio.T, dtype=np.float32))
    return meter.result()


def integrated_lufs(audio: np.ndarray, fs: int) -> float | None:
    """BS.1770-4 integrated loudness of the file as it is (a mono file counts one channel).

    Uses MixBridge's own meter (:mod:`bridge.analyze.loudness`), so "intended" levels written
    in ``truth.json`` are on the same scale the analysis reports.
    """
    power = _energy(audio, fs)
    return lu.integrated_lufs(lu.gating_blocks(power), lu.channel_weights(audio.shape[1]))


def loudness_range_lu(audio: np.ndarray, fs: int) -> float | None:
    """EBU Tech 3342 loudness range of ``audio``, with MixBridge's meter."""
    st = lu.short_term_lufs(_energy(audio, fs), lu.channel_weights(audio.shape[1]))
    return lu.loudness_range_lu(st)


def window_lufs(audio: np.ndarray, fs: int, start_s: float, end_s: float) -> float | None:
    """Integrated (gated) loudness of one time window of ``audio``."""
    a, b = int(start_s * fs), int(end_s * fs)
    return integrated_lufs(audio[a:b], fs) if b - a > int(0.4 * fs) else None


def db(value: float) -> float:
    return float(20.0 * np.log10(max(value, 1e-12)))


def undb(value_db: float) -> float:
    return float(10.0 ** (value_db / 20.0))
