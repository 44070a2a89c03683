"""Memory is flat in song length: a stem streamed from disk is never held whole (issue 15)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import soundfile as sf

from bridge.pipeline import extract_stem

FS = 48000


def _write_long(path, seconds: int) -> None:
    rng = np.random.default_rng(seconds)
    with sf.SoundFile(str(path), "w", FS, 2, subtype="PCM_24") as fh:
        for _ in range(seconds):
            fh.write((rng.standard_normal((FS, 2)) * 0.1).astype(np.float32))


def _peak_bytes(path, tmp_path) -> int:
    extract_stem(str(path), FS, 0, None)  # warm: imports and one-off tables outside the measurement
    tracemalloc.start()
    try:
        info, measured, error, _ = extract_stem(str(path), FS, 400 * FS, str(tmp_path))
        assert error is None
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_audio(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    _write_long(short, 30)
    _write_long(long, 150)  # 5x longer: 43 MB of 24-bit audio, 58 MB as float32
    peak_short, peak_long = _peak_bytes(short, tmp_path), _peak_bytes(long, tmp_path)
    # What may grow is the features (about 6 kB per second of stereo); the audio may not.
    features_growth = 120 * 8_000
    assert peak_long <= peak_short + features_growth + 2_000_000, (peak_short, peak_long)
    assert peak_long < 20_000_000, f"{peak_long / 1e6:.1f} MB traced for a 150 s stem"
