"""Bad stems: each becomes a per-stem error with a stable code and never stops the others.

Every case writes a real file into a folder next to a good stem whose answer is known (a stereo
1 kHz sine at -20 dBFS peak reads -20.0 LUFS, BS.1770-4), analyses the folder, and checks that
the bad stem carries the expected code with a one-line message and the good stem was measured.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from bridge.errors import MESSAGES, BridgeError
from bridge.model import SessionResult, StemResult
from bridge.pipeline import analyze_session
from bridge.report import stem_dict

RATE = 48000
GOOD_LUFS = -20.0  # stereo 1 kHz sine, peak 0.1 (-20 dBFS) in both channels
MONO_LUFS = -23.01  # the same sine on one channel: half the power, -3.01 dB
LUFS_TOLERANCE = 0.1


# --- writing real files ------------------------------------------------------------------------

def sine(seconds: float, rate: int = RATE, amplitude: float = 0.1, freq_hz: float = 1000.0,
         channels: int = 2) -> np.ndarray:
    """A sine shaped ``(frames, channels)``, float32, identical on every channel."""
    t = np.arange(int(round(seconds * rate))) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


def write_good(folder: Path) -> Path:
    path = folder / "good.wav"
    sf.write(path, sine(2.0), RATE, subtype="PCM_24")
    return path


def data_chunk(raw: bytes) -> tuple[int, int]:
    """``(offset of the data chunk's size field, declared size)`` of a WAV soundfile wrote."""
    at = raw.find(b"data", 12)
    assert at > 0, "fixture bug: the WAV soundfile wrote has no data chunk"
    (size,) = struct.unpack("<I", raw[at + 4:at + 8])
    return at + 4, size


def write_truncated(folder: Path) -> None:
    path = folder / "truncated.wav"
    sf.write(path, sine(2.0), RATE, subtype="PCM_16")
    raw = path.read_bytes()
    size_at, size = data_chunk(raw)
    path.write_bytes(raw[: size_at + 4 + size // 2 + 1])  # cut mid-frame in the middle of the data


def write_placeholder(value: int) -> Callable[[Path], None]:
    """A render still in progress: audio bytes are there, but RIFF and data sizes are placeholders."""
    def write(folder: Path) -> None:
        path = folder / "half_written.wav"
        sf.write(path, sine(2.0), RATE, subtype="PCM_16")
        raw = bytearray(path.read_bytes())
        size_at, _ = data_chunk(bytes(raw))
        raw[4:8] = struct.pack("<I", value)
        raw[size_at:size_at + 4] = struct.pack("<I", value)
        path.write_bytes(bytes(raw))
    return write


def write_empty(folder: Path) -> None:
    (folder / "empty.wav").write_bytes(b"")


def write_text_wav(folder: Path) -> None:
    (folder / "notes.wav").write_text("bass: turn it down a bit\n" * 40, encoding="utf-8")


def write_mp3_named_text(folder: Path) -> Path:
    path = folder / "song.mp3"  # a folder scan skips .mp3, so the test names it explicitly
    path.write_text("not really an mp3\n" * 40, encoding="utf-8")
    return path


def write_ulaw(folder: Path) -> None:
    sf.write(folder / "ulaw.wav", sine(1.0), RATE, subtype="ULAW")


def write_nonfinite(value: float, name: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        audio = sine(1.0)
        audio[RATE // 2, 0] = value
        sf.write(folder / name, audio, RATE, subtype="FLOAT")
    return write


def write_too_short(folder: Path) -> None:
    sf.write(folder / "blip.wav", sine(0.3), RATE, subtype="PCM_16")


def write_corrupt_flac(folder: Path) -> None:
    path = folder / "corrupt.flac"
    noise = np.random.default_rng(7).uniform(-0.3, 0.3, (RATE * 2, 2)).astype(np.float32)
    sf.write(path, noise, RATE, subtype="PCM_16", format="FLAC")
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 4096] = np.random.default_rng(8).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))


def vanished(folder: Path) -> Path:
    return folder / "deleted_before_reading.wav"  # named explicitly, never written


# --- helpers -----------------------------------------------------------------------------------

def stem(result: SessionResult, name: str) -> StemResult:
    found = [s for s in result.stems if s.name == name]
    assert found, f"stem {name!r} missing from the result; got {[s.name for s in result.stems]}"
    return found[0]


def assert_failed_with(result: SessionResult, name: str, codes: set[str]) -> None:
    bad = stem(result, name)
    assert bad.error is not None, f"{name}: expected an error with a code in {sorted(codes)}, got none"
    assert isinstance(bad.error, BridgeError), f"{name}: error is {type(bad.error).__name__}, not a BridgeError"
    assert bad.error.code in codes, f"{name}: expected a code in {sorted(codes)}, got {bad.error.code}"
    message = bad.error.message
    assert "\n" not in message and "Traceback" not in message, f"{name}: message is not one line: {message!r}"
    assert message.startswith(MESSAGES[bad.error.code]), (
        f"{name}: message {message!r} does not start with the {bad.error.code} wording")
    assert bad.analysis is None, f"{name}: failed with {bad.error.code} but also carries an analysis"


def assert_good_measured(result: SessionResult, name: str = "good", lufs: float = GOOD_LUFS) -> None:
    good = stem(result, name)
    assert good.error is None, f"{name}: should analyse cleanly, got {good.error.code}: {good.error.message}"
    measured = good.analysis.loudness.integrated_lufs
    assert isinstance(measured, float), f"{name}: integrated loudness is {measured!r}, not a number"
    assert abs(measured - lufs) < LUFS_TOLERANCE, f"{name}: integrated {measured:.2f} LUFS, expected {lufs}"


# --- one bad stem next to a good one -----------------------------------------------------------

CASES = [
    # (id, stem name, writer, expected codes)
    ("truncated-wav", "truncated", write_truncated, {"E_STEM_TRUNCATED"}),
    ("placeholder-size-0", "half_written", write_placeholder(0), {"E_STEM_TRUNCATED"}),
    ("placeholder-size-ffffffff", "half_written", write_placeholder(0xFFFFFFFF), {"E_STEM_TRUNCATED"}),
    ("zero-length-wav", "empty", write_empty, {"E_STEM_EMPTY"}),
    ("text-named-wav", "notes", write_text_wav, {"E_NOT_AUDIO"}),
    ("text-named-mp3", "song", write_mp3_named_text, {"E_UNSUPPORTED_FORMAT"}),
    ("ulaw-wav", "ulaw", write_ulaw, {"E_UNSUPPORTED_FORMAT"}),
    ("float-wav-nan", "nan", write_nonfinite(np.nan, "nan.wav"), {"E_NONFINITE_SAMPLES"}),
    ("float-wav-inf", "inf", write_nonfinite(np.inf, "inf.wav"), {"E_NONFINITE_SAMPLES"}),
    ("shorter-than-400ms", "blip", write_too_short, {"E_STEM_TOO_SHORT"}),
    ("corrupt-flac", "corrupt", write_corrupt_flac, {"E_STEM_CORRUPT", "E_STEM_TRUNCATED"}),
    ("vanished-file", "deleted_before_reading", vanished, {"E_STEM_UNREADABLE"}),
]


@pytest.mark.parametrize("name, write, codes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_stem_gets_its_code_and_the_good_stem_is_still_measured(tmp_path, name, write, codes):
    write_good(tmp_path)
    explicit = write(tmp_path)
    paths = [tmp_path] + ([explicit] if explicit is not None else [])

    result = analyze_session(paths, jobs=1)

    assert_failed_with(result, name, codes)
    assert_good_measured(result)


def test_unreadable_stem_gets_E_STEM_UNREADABLE(tmp_path):
    write_good(tmp_path)
    locked = tmp_path / "locked.wav"
    sf.write(locked, sine(1.0), RATE, subtype="PCM_16")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop this process reading the file "
                        "(the vanished-file case still covers E_STEM_UNREADABLE)")
        result = analyze_session([tmp_path], jobs=1)
    finally:
        locked.chmod(0o644)  # so tmp_path can be cleaned up

    assert_failed_with(result, "locked", {"E_STEM_UNREADABLE"})
    assert_good_measured(result)


def test_process_pool_reports_the_same_codes(tmp_path):
    """jobs=2: the errors cross the process boundary intact and good stems are still measured."""
    write_good(tmp_path)
    sf.write(tmp_path / "mono.wav", sine(2.0, channels=1), RATE, subtype="PCM_16")
    write_nonfinite(np.nan, "nan.wav")(tmp_path)
    write_text_wav(tmp_path)
    write_empty(tmp_path)

    result = analyze_session([tmp_path], jobs=2)

    assert_failed_with(result, "nan", {"E_NONFINITE_SAMPLES"})
    assert_failed_with(result, "notes", {"E_NOT_AUDIO"})
    assert_failed_with(result, "empty", {"E_STEM_EMPTY"})
    assert_good_measured(result)
    assert_good_measured(result, "mono", MONO_LUFS)


# --- edge cases that are not errors ------------------------------------------------------------

def test_silent_stem_is_not_an_error(tmp_path):
    write_good(tmp_path)
    sf.write(tmp_path / "silent.wav", np.zeros((RATE * 2, 2), np.float32), RATE, subtype="PCM_24")

    result = analyze_session([tmp_path], jobs=1)

    silent = stem_dict(stem(result, "silent"))
    assert silent["error"] is None, f"silent stem reported as an error: {silent['error']}"
    assert silent["integrated_lufs"] is None, f"silent stem integrated loudness {silent['integrated_lufs']!r}, expected None"
    assert silent["correlation"] is None, f"silent stem correlation {silent['correlation']!r}, expected None"
    assert_good_measured(result)


def test_mono_stem_has_no_correlation(tmp_path):
    sf.write(tmp_path / "mono.wav", sine(2.0, channels=1), RATE, subtype="PCM_24")

    result = analyze_session([tmp_path], jobs=1)

    mono = stem_dict(stem(result, "mono"))
    assert mono["error"] is None, f"mono stem failed: {mono['error']}"
    assert mono["correlation"] is None, f"mono stem correlation {mono['correlation']!r}, expected None"
    assert mono["integrated_lufs"] is not None and abs(mono["integrated_lufs"] - MONO_LUFS) < LUFS_TOLERANCE, (
        f"mono 1 kHz sine at -20 dBFS reads {mono['integrated_lufs']} LUFS, expected {MONO_LUFS}")


# --- a stem that fails mid-read leaves nothing in the mix sum ----------------------------------

@pytest.mark.parametrize("bad_rate", [48000, 44100], ids=["same-rate", "resampled-into-the-mix"])
def test_stem_failing_mid_read_leaves_no_trace_in_the_mix(tmp_path, bad_rate):
    with_bad, alone = tmp_path / "with_bad", tmp_path / "alone"
    for folder in (with_bad, alone):
        folder.mkdir()
        sf.write(folder / "good.wav", sine(2.0), RATE, subtype="FLOAT")
    # Loud and at another frequency for its first 1.5 s (a whole 1 s read block gets summed in),
    # then NaN: the reader raises on the second block.
    bad = sine(2.0, rate=bad_rate, amplitude=0.5, freq_hz=300.0)
    bad[int(1.5 * bad_rate):] = np.nan
    sf.write(with_bad / "bad_nan.wav", bad, bad_rate, subtype="FLOAT")

    mixed = analyze_session([with_bad], jobs=1)
    reference = analyze_session([alone], jobs=1)

    assert_failed_with(mixed, "bad_nan", {"E_NONFINITE_SAMPLES"})
    assert mixed.mix.summed is not None and reference.mix.summed is not None, "a mix was not measured"
    got = mixed.mix.summed.loudness.integrated_lufs
    want = reference.mix.summed.loudness.integrated_lufs
    assert abs(got - want) <= 0.01, (
        f"the failed stem left a trace in the mix sum: mix reads {got:.3f} LUFS with it, "
        f"{want:.3f} LUFS without it")
