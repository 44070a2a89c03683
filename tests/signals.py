"""Test signals with known answers (EBU Tech 3341/3342 conventions: 48 kHz, "dBFS" is a sine's peak)."""
from __future__ import annotations

import numpy as np

FS = 48000


def sine(db: float, seconds: float, freq_hz: float = 1000.0, phase_deg: float = 0.0, fs: int = FS) -> np.ndarray:
    n = int(round(seconds * fs))
    return 10.0 ** (db / 20.0) * np.sin(2 * np.pi * freq_hz * np.arange(n) / fs + np.deg2rad(phase_deg))


def silence(seconds: float, fs: int = FS) -> np.ndarray:
    return np.zeros(int(round(seconds * fs)))


def stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, x], axis=1)


def taper(x: np.ndarray, fade_s: float = 0.010, fs: int = FS) -> np.ndarray:
    """10 ms linear ramps; true-peak cases need them (an abrupt start rings the interpolator)."""
    n = int(round(fade_s * fs))
    y = x.copy()
    y[:n] *= np.linspace(0.0, 1.0, n)
    y[-n:] *= np.linspace(1.0, 0.0, n)
    return y


def pink_noise(seconds: float, seed: int = 440, fs: int = FS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / fs)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / np.sqrt(np.mean(x ** 2)) * 0.1


def features_of(audio: np.ndarray, fs: int = FS, block: int | None = None):
    """Stream ``audio`` (frames, channels) through the extractor in blocks, as the reader would."""
    from bridge.analyze.features import FeatureExtractor

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    extractor = FeatureExtractor(fs, audio.shape[1])
    step = block or fs
    for start in range(0, len(audio), step):
        extractor.feed(audio[start:start + step])
    return extractor.finish()
