"""Hostile files against the analysis (issue 11, the file side): each case asserts the promise.

A bad file becomes one line with a stable code and the rest of the batch is still measured; no
header is trusted until the bytes agree (frame counts never set the mix length, grow a scratch file
or overflow); only regular files are opened and never blocking; a stem that changes while it is read
makes the pass run again; measures are finite or null; odd but valid files are measured right.

Every case writes real files (soundfile/libsndfile, Python's ``wave``, raw bytes), runs the real
pipeline, and is bounded in time.  Helpers and the known answer (a stereo 1 kHz sine at -20 dBFS
peak reads -20.0 LUFS) come from ``test_bad_input``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge import pipeline
from bridge.analyze.sections import FULL_SSM_MAX_FRAMES, _banded_novelty
from bridge.cache import AnalysisCache
from bridge.errors import MESSAGES, BridgeError, ManifestError
from bridge.files import open_for_writing
from bridge.manifest import MAX_MANIFEST_BYTES, read_manifest
from bridge.pipeline import analyze_session, plan_session
from bridge.report import session_dict, table
from bridge.stems import open_stem
from bridge.suggest.plan import plan_dict
from tests.test_bad_input import GOOD_LUFS, RATE, assert_failed_with, assert_good_measured, sine, write_good

REPO = Path(__file__).resolve().parents[1]
GOOD_FRAMES = 2 * RATE  # write_good: 2 s
#: Every analysis here is of a few seconds of audio; anything slower is a hang.
DEADLINE_S = 60.0
W64_DATA = b"data" + bytes.fromhex("f3acd3118cd100c04f8edb8a")


# --- writing hostile headers ------------------------------------------------------------------------

def _write(path: Path, fmt: str, subtype: str = "PCM_16", seconds: float = 2.0, channels: int = 2) -> bytearray:
    sf.write(path, sine(seconds, channels=channels), RATE, subtype=subtype, format=fmt)
    return bytearray(path.read_bytes())


def absurd_flac(path: Path) -> None:
    """STREAMINFO claims 2**36 - 1 samples (~16 days at 48 kHz) in a file of two seconds."""
    raw = _write(path, "FLAC")
    packed = int.from_bytes(raw[18:26], "big") | ((1 << 36) - 1)
    raw[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(raw))


def lying_flac(path: Path) -> None:
    """A claim the byte bound cannot refute (8x the true length): the read finds the truth."""
    raw = _write(path, "FLAC")
    packed = int.from_bytes(raw[18:26], "big")
    total = packed & ((1 << 36) - 1)
    raw[18:26] = ((packed & ~((1 << 36) - 1)) | (total * 8)).to_bytes(8, "big")
    path.write_bytes(bytes(raw))


def unfinished_flac(path: Path) -> None:
    """A FLAC encoder that never came back to write the length: total samples 0, audio follows."""
    raw = _write(path, "FLAC")
    packed = int.from_bytes(raw[18:26], "big") & ~((1 << 36) - 1)
    raw[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(raw))


def absurd_wav(path: Path) -> None:
    raw = _write(path, "WAV")
    at = raw.find(b"data", 12)
    raw[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(raw))


def absurd_rf64(path: Path) -> None:
    raw = _write(path, "RF64")
    at = raw.find(b"ds64")
    raw[at + 16:at + 24] = struct.pack("<Q", 1 << 60)  # data size
    raw[at + 24:at + 32] = struct.pack("<Q", 1 << 58)  # sample count
    path.write_bytes(bytes(raw))


def absurd_w64(path: Path) -> None:
    raw = _write(path, "W64")
    at = raw.find(W64_DATA)
    raw[at + 16:at + 24] = struct.pack("<Q", 1 << 60)
    path.write_bytes(bytes(raw))


def absurd_aiff(path: Path) -> None:
    """COMM claims 2**31 - 1 frames; SSND holds two seconds."""
    raw = _write(path, "AIFF")
    at = raw.find(b"COMM")
    raw[at + 10:at + 14] = struct.pack(">I", 0x7FFFFFFF)
    path.write_bytes(bytes(raw))


def absurd_caf(path: Path) -> None:
    raw = _write(path, "CAF")
    at = raw.find(b"data", 8)
    raw[at + 4:at + 12] = struct.pack(">q", 1 << 60)
    path.write_bytes(bytes(raw))


TRUNCATED = {"E_STEM_TRUNCATED"}
#: The lie the byte bound cannot refute is found by decoding: libsndfile's FLAC decoder fails at the
#: end of the data (E_STEM_CORRUPT, "... after N frames") or comes up short (E_STEM_TRUNCATED).
DECODED = {"E_STEM_TRUNCATED", "E_STEM_CORRUPT"}
ABSURD = [("flac-2^36-frames", "x.flac", absurd_flac, TRUNCATED), ("flac-8x-lie", "x.flac", lying_flac, DECODED),
          ("flac-unfinished", "x.flac", unfinished_flac, TRUNCATED), ("wav-data-4GB", "x.wav", absurd_wav, TRUNCATED),
          ("rf64-ds64-2^60", "x.rf64", absurd_rf64, TRUNCATED), ("w64-data-2^60", "x.w64", absurd_w64, TRUNCATED),
          ("aiff-comm-2^31", "x.aiff", absurd_aiff, TRUNCATED), ("caf-data-2^60", "x.caf", absurd_caf, TRUNCATED)]


@pytest.mark.parametrize("name, write, codes", [c[1:] for c in ABSURD], ids=[c[0] for c in ABSURD])
def test_a_header_claiming_absurd_length_never_sets_the_mix_or_grows_scratch(tmp_path, monkeypatch, name, write,
                                                                             codes):
    write_good(tmp_path)
    write(tmp_path / name)
    grown: list[int] = []
    reserve = pipeline._PartialSum.reserve

    def watched(self, end):
        reserve(self, end)
        grown.append(self.capacity)

    monkeypatch.setattr(pipeline._PartialSum, "reserve", watched)
    result = analyze_session([tmp_path], jobs=1)

    assert_failed_with(result, "x", codes)
    assert_good_measured(result)
    # The mix is as long as the good stem: 20 grid frames of 100 ms, scratch bounded by what was read.
    assert len(result.mix.summed.loudness.momentary_lufs) == GOOD_FRAMES // (RATE // 10)
    assert max(grown) <= max(GOOD_FRAMES, pipeline._PartialSum.GROW_FRAMES)
    json.dumps(session_dict(result), allow_nan=False)


def test_analyze_on_an_absurd_flac_is_one_line_and_exit_1_not_a_hang(tmp_path):
    write_good(tmp_path)
    absurd_flac(tmp_path / "x.flac")
    proc = subprocess.run([sys.executable, "-m", "bridge", "analyze", str(tmp_path), "--jobs", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=DEADLINE_S)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr
    assert "E_STEM_TRUNCATED" in proc.stdout


# --- writers that fix the header only at close ------------------------------------------------------

MID_WRITE = [("WAV", ".wav"), ("W64", ".w64"), ("RF64", ".rf64"), ("AIFF", ".aiff"), ("CAF", ".caf"),
             ("FLAC", ".flac"), ("WAVEX", ".wav")]


@pytest.mark.parametrize("fmt, ext", MID_WRITE, ids=[m[0] for m in MID_WRITE])
def test_a_file_copied_mid_write_is_never_analysed_and_the_finished_one_is_right(tmp_path, fmt, ext):
    path, snap = tmp_path / f"stem{ext}", tmp_path / f"snapshot{ext}"
    block = sine(1.0)
    with sf.SoundFile(str(path), "w", RATE, 2, subtype="PCM_24", format=fmt) as fh:
        for _ in range(3):
            fh.write(block)
        shutil.copyfile(path, snap)  # what a reader sees while the writer is still at work
    with pytest.raises(BridgeError) as caught:
        open_stem(snap)
    assert caught.value.code == "E_STEM_TRUNCATED"
    # Odd but valid: the finished file of every container measures like the WAV.
    result = analyze_session([path], jobs=1)
    stem = result.stems[0]
    assert stem.error is None and stem.info.frames == 3 * RATE
    assert abs(stem.analysis.loudness.integrated_lufs - GOOD_LUFS) < 0.1


def test_pythons_wave_with_writeframesraw_is_still_writing_until_it_closes(tmp_path):
    path, snap = tmp_path / "py.wav", tmp_path / "snap.wav"
    data = (sine(1.0) * 32767).astype("<i2").tobytes()
    w = wave.open(str(path), "wb")
    w.setnchannels(2), w.setsampwidth(2), w.setframerate(RATE)
    try:
        for _ in range(3):
            w.writeframesraw(data)  # the header says 1 s (written once); 3 s follow
        w._file.flush()
        shutil.copyfile(path, snap)
        with pytest.raises(BridgeError) as caught:
            open_stem(snap, strict=True)  # the watcher's check where a writer cannot be seen
        assert caught.value.code == "E_STEM_WRITING"
        writing = open_for_writing(path)
        if writing is not None:
            assert writing is True
            from bridge.watch.settle import _default_check

            with pytest.raises(BridgeError) as caught:
                _default_check(path)
            assert caught.value.code == "E_STEM_WRITING"
    finally:
        w.close()
    assert open_for_writing(path) in (False, None)
    assert open_stem(path, strict=True).frames == 3 * RATE


# --- files that are not files -------------------------------------------------------------------------

def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "x.wav"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-to-fifo":
        os.mkfifo(tmp_path / ".fifo")
        path.symlink_to(tmp_path / ".fifo")
    elif kind == "symlink-to-device":
        path.symlink_to("/dev/zero")
    elif kind == "symlink-loop":
        path.symlink_to(tmp_path / "y.wav")
        (tmp_path / "y.wav").symlink_to(path)
    return path


@pytest.mark.parametrize("kind, codes", [("fifo", {"E_NOT_A_FILE"}), ("symlink-to-fifo", {"E_NOT_A_FILE"}),
                                         ("symlink-to-device", {"E_NOT_A_FILE"}),
                                         ("symlink-loop", {"E_STEM_UNREADABLE"})])
def test_a_fifo_device_loop_or_folder_named_wav_never_blocks_and_the_rest_is_measured(tmp_path, kind, codes):
    write_good(tmp_path)
    bad = _special(tmp_path, kind)
    out: list = []
    worker = threading.Thread(target=lambda: out.append(analyze_session([tmp_path, bad], jobs=2)), daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    if worker.is_alive():  # blocked on the FIFO: open its other end so the thread can end, then fail
        fd = os.open(bad, os.O_WRONLY | os.O_NONBLOCK) if kind == "fifo" else None
        worker.join(5)
        if fd is not None:
            os.close(fd)
        pytest.fail(f"analysis blocked on a {kind} named x.wav")
    assert_failed_with(out[0], "x", codes)
    assert_good_measured(out[0])


@pytest.mark.parametrize("when", ["before the pass", "mid-pass"])
def test_an_unreadable_stem_is_one_line_and_the_rest_is_measured(tmp_path, monkeypatch, when):
    """Permissions taken away before the pass, or between the header check and the read.  Not root:
    a real ``chmod 000``.  Root (CI) reads every file whatever its mode, so there the open itself is
    made to fail with ``EACCES`` for that one path: the error the kernel would give."""
    write_good(tmp_path)
    bad = tmp_path / "locked.wav"
    sf.write(bad, sine(2.0), RATE, subtype="PCM_16")
    opens = {"n": 0}
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if os.fspath(path) == os.fspath(bad):
            opens["n"] += 1
            if when == "before the pass" or opens["n"] > 2:  # mid-pass: after the header checks
                raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    if os.geteuid() != 0 and when == "before the pass":
        bad.chmod(0)
    else:
        monkeypatch.setattr(os, "open", guarded)
    result = analyze_session([tmp_path], jobs=1)
    assert_failed_with(result, "locked", {"E_STEM_UNREADABLE"})
    assert_good_measured(result)


# --- names, manifests ----------------------------------------------------------------------------------

def test_a_file_name_that_is_not_utf8_is_one_line_and_the_rest_goes_on(tmp_path):
    write_good(tmp_path)
    sf.write(os.path.join(os.fsencode(tmp_path), b"bad\xff.wav"), sine(2.0), RATE, subtype="PCM_16")
    result = analyze_session([tmp_path], jobs=1)
    assert_failed_with(result, "bad\\xff", {"E_STEM_NAME"})
    assert_good_measured(result)
    table(result).encode("utf-8")  # printable on a strict UTF-8 terminal
    from bridge.report import write_json

    write_json(result, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["summary"]["failed"] == 1


def _manifest_text(file_name: str) -> str:
    return json.dumps({"schema": "mixbridge-bounce", "schema_version": 1, "bounce_id": "b1",
                       "created_at": "2026-01-01T00:00:00Z", "project": "", "render_dir": "",
                       "stems": [{"track_guid": "", "track_name": "x", "file": file_name, "sample_rate": RATE}]})


@pytest.mark.parametrize("kind", ["nul-in-file", "lone-surrogate", "deep-nesting", "absurd-size", "fifo"])
def test_a_hostile_manifest_is_one_e_manifest_line(tmp_path, kind):
    path = tmp_path / "mixbridge-bounce.json"
    if kind == "nul-in-file":
        path.write_text(_manifest_text("a\u0000.wav"))
    elif kind == "lone-surrogate":
        path.write_text(_manifest_text("a\ud800.wav").replace("\\ud800", "\\ud800"))
    elif kind == "deep-nesting":
        path.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "absurd-size":
        with open(path, "wb") as fh:
            fh.truncate(MAX_MANIFEST_BYTES + 1)
    else:
        os.mkfifo(path)
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    line = caught.value.line()
    assert line.startswith("E_MANIFEST: " + MESSAGES["E_MANIFEST"]) and "\n" not in line


# --- a stem that changes while it is read -------------------------------------------------------------

def test_a_stem_rewritten_while_it_is_read_makes_the_pass_run_again(tmp_path, monkeypatch):
    write_good(tmp_path)
    target = tmp_path / "moving.wav"
    sf.write(target, sine(3.0, amplitude=0.05), RATE, subtype="PCM_16")
    from bridge.analyze.features import FeatureExtractor

    feed = FeatureExtractor.feed
    rewrites: list[int] = []

    def rewrite_once(self, block):
        feed(self, block)
        if not rewrites and self.channels == 2 and len(block) and abs(float(block.max()) - 0.05) < 0.01:
            rewrites.append(1)
            with open(target, "r+b") as fh:  # in place: same inode, new bytes and size
                sf.write(fh, sine(2.0), RATE, subtype="PCM_16", format="WAV")
                fh.truncate()

    monkeypatch.setattr(FeatureExtractor, "feed", rewrite_once)
    result = analyze_session([tmp_path], jobs=1)
    assert rewrites, "the rewrite never happened: the test did not test anything"
    moving = next(s for s in result.stems if s.name == "moving")
    assert moving.error is None, moving.error
    assert moving.info.frames == 2 * RATE  # the new contents, read whole
    assert abs(moving.analysis.loudness.integrated_lufs - GOOD_LUFS) < 0.1


# --- silent wrong answers ---------------------------------------------------------------------------

def test_a_mix_sum_zeroed_or_altered_at_the_same_size_is_summed_afresh(tmp_path):
    stems = tmp_path / "stems"
    stems.mkdir()
    for k, amp in enumerate((0.1, 0.05, 0.08)):
        sf.write(stems / f"s{k}.wav", sine(3.0, amplitude=amp, freq_hz=300.0 * (k + 1)), RATE, subtype="PCM_24")
    cache = AnalysisCache(tmp_path / "cache")
    first = analyze_session([stems], jobs=1, cache=cache)
    state = json.loads((tmp_path / "cache" / "mix" / "state.json").read_text())
    sum_path = tmp_path / "cache" / "mix" / state["groups"][0]["sum"]
    for damage in ("zeroed", "altered"):
        size = sum_path.stat().st_size
        if damage == "zeroed":
            sum_path.write_bytes(bytes(size))
        else:
            raw = bytearray(sum_path.read_bytes())
            raw[size // 2:size // 2 + 4096] = bytes(4096)
            sum_path.write_bytes(bytes(raw))
        # One stem re-rendered: the pass would keep the (damaged) group sum of the others.
        sf.write(stems / "s1.wav", sine(3.0, amplitude=0.06 if damage == "zeroed" else 0.05, freq_hz=600.0),
                 RATE, subtype="PCM_24")
        again = analyze_session([stems], jobs=1, cache=cache)
        fresh = analyze_session([stems], jobs=1)
        assert abs(again.mix.summed.loudness.integrated_lufs - fresh.mix.summed.loudness.integrated_lufs) < 0.01
        state = json.loads((tmp_path / "cache" / "mix" / "state.json").read_text())
        sum_path = tmp_path / "cache" / "mix" / state["groups"][0]["sum"]
    assert first.mix.summed.loudness.integrated_lufs is not None


@pytest.mark.parametrize("peak", [1e18, 3e38])
def test_a_finite_float_stem_far_above_full_scale_plans_to_valid_json(tmp_path, peak):
    write_good(tmp_path)
    sf.write(tmp_path / "huge.wav", sine(2.0, amplitude=1.0) * np.float32(peak), RATE, subtype="FLOAT")
    result = analyze_session([tmp_path], jobs=1)
    huge = next(s for s in result.stems if s.name == "huge")
    assert huge.error is None
    assert huge.analysis.levels.sample_peak_dbfs == pytest.approx(20 * math.log10(peak), abs=0.05)
    assert_good_measured(result)
    json.dumps(session_dict(result), allow_nan=False)
    json.dumps(plan_dict(plan_session(result)), allow_nan=False)


@pytest.mark.parametrize("rate, channels, freq_hz", [(384000, 256, 1000.0), (384000, 2, 1000.0), (48000, 2, 20.0)])
def test_a_quantised_smooth_crest_is_not_clipping_at_any_rate_or_channel_count(tmp_path, rate, channels, freq_hz):
    t = np.arange(rate // 2) / rate  # 0.5 s
    x = (0.1 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    path = tmp_path / "quiet.wav"
    sf.write(path, np.repeat(x[:, None], channels, axis=1), rate, subtype="PCM_16")
    a = analyze_session([path], jobs=1).stems[0].analysis
    assert a.levels.sample_peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert a.faults.clip.runs == 0, a.faults.clip


@pytest.mark.parametrize("subtype, freq_hz, ceiling", [("PCM_16", 40.0, 0.5), ("PCM_24", 100.0, 0.3),
                                                       ("PCM_16", 997.0, 1.0)])
def test_real_clipping_is_still_found_in_pcm_also_turned_down(tmp_path, subtype, freq_hz, ceiling):
    t = np.arange(3 * RATE) / RATE
    x = np.clip(2.0 * ceiling * np.sin(2 * np.pi * freq_hz * t), -ceiling, ceiling).astype(np.float32)
    path = tmp_path / "clipped.wav"
    sf.write(path, np.stack([x, x], axis=1), RATE, subtype=subtype)
    clip = analyze_session([path], jobs=1).stems[0].analysis.faults.clip
    assert clip.runs == pytest.approx(2 * 2 * freq_hz * 3, rel=0.02)  # two flat tops per cycle per channel


# --- bounded in length --------------------------------------------------------------------------------

def test_a_partial_sum_holds_one_block_whatever_the_length(tmp_path):
    frames = RATE * 200
    partial = pipeline._PartialSum(tmp_path / "sum.f32", frames)
    block = np.ones((RATE, 2), np.float32)
    offsets = range(0, frames, RATE * 8)
    for offset in offsets:  # twice over the same stretches: the second pass adds to the first
        partial.add(offset, block)
    for offset in offsets:
        partial.add(offset, 2 * block)
        assert partial._buffer.nbytes <= block.nbytes
    partial.add(RATE * 8, block, sign=-1.0)
    partial.close()
    total = np.fromfile(tmp_path / "sum.f32", np.float32).reshape(-1, 2)
    assert total.sum() == pytest.approx(2 * RATE * (3 * len(offsets) - 1))
    assert total[RATE * 8].tolist() == [2.0, 2.0] and total[RATE].tolist() == [0.0, 0.0]


def test_a_partial_sum_reopened_adds_to_what_its_file_holds(tmp_path):
    path = tmp_path / "sum.f32"
    rng = np.random.default_rng(5)
    first, second = (rng.standard_normal((RATE, 2)).astype(np.float32) for _ in range(2))
    partial = pipeline._PartialSum(path, 3 * RATE)
    partial.add(RATE // 2, first)
    partial.close()
    again = pipeline._PartialSum(path, 3 * RATE)
    again.add(RATE, second)  # half over the first block, half past the end of the file
    again.close()
    total = np.fromfile(path, np.float32).reshape(-1, 2)
    expected = np.zeros((2 * RATE, 2), np.float32)
    expected[RATE // 2:RATE // 2 + RATE] += first
    expected[RATE:2 * RATE] += second
    assert np.array_equal(total[:2 * RATE], expected)


def test_the_banded_novelty_of_a_long_mix_equals_the_full_matrix():
    rng = np.random.default_rng(3)
    n, half = FULL_SSM_MAX_FRAMES + 300, 8
    feats = rng.standard_normal((n, 40))
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    idx = np.arange(-half, half)
    gauss = np.exp(-0.5 * ((idx + 0.5) / (0.5 * half)) ** 2)
    sign = np.where(idx < 0, -1.0, 1.0)
    kernel = np.outer(sign * gauss, sign * gauss)
    padded = np.pad(unit @ unit.T, half, mode="edge")
    full = np.array([np.sum(kernel * padded[t:t + 2 * half, t:t + 2 * half]) for t in range(n)])
    assert np.allclose(_banded_novelty(unit, kernel, half), full, atol=1e-10)


# --- workers die with their parent --------------------------------------------------------------------

def test_kill_9_of_analyze_takes_its_fork_server_and_workers_with_it(tmp_path):
    psutil = pytest.importorskip("psutil")
    from tests.conftest import wait_until

    rng = np.random.default_rng(5)
    for k in range(4):  # long enough that the workers are busy when the parent dies
        sf.write(tmp_path / f"s{k}.wav", (rng.standard_normal((RATE * 90, 2)) * 0.1).astype(np.float32), RATE,
                 subtype="PCM_16")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "analyze", str(tmp_path), "--jobs", "2"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    try:
        tree = wait_until(lambda: [c for c in parent.children(recursive=True)
                                   if "forkserver" not in " ".join(c.cmdline())] if len(
            parent.children(recursive=True)) >= 4 else None, DEADLINE_S, "the fork server and its workers")
        everyone = parent.children(recursive=True)
        assert tree
    finally:
        proc.kill()
        proc.wait(DEADLINE_S)

    def gone():
        return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in everyone)

    try:
        wait_until(gone, 10.0, "the orphaned fork server and workers to exit")
    finally:
        for p in everyone:
            if p.is_running():
                p.kill()
