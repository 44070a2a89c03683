"""Hostile files and state against the watcher (issue 11, the watcher side): each case asserts the promise.

The watcher never dies and never crash-loops on restart: a bad file, manifest or state file is one
line with a stable code, the rest of the bounce goes on, a bad state file is moved aside and the
watcher starts clean; one watcher per folder; a file still being written is never analysed; a stem
that changes while it is read makes the pass run again; a full disk is ``E_DISK_FULL``, its scratch
removed, the watcher keeps running and tries again; after ``kill -9`` nothing is left running.

Real watchers on real folders with real filesystem events; every wait is a condition with a
deadline (``wait_for`` / ``wait_until``), the only sleeps are a writer's own pauses.
"""
from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.console import Console
from bridge.errors import StateFolderError, WatchLocked
from bridge.files import open_for_writing
from bridge.watch import Watcher
from bridge.watch.state import read_journal
from tests.conftest import wait_until, watch_settings
from tests.test_bad_input import RATE, sine

REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 60.0
FAST = dict(settle_s=0.2, poll_s=0.05, stable_polls=2, jobs=1, incomplete_timeout_s=20.0,
            manifest_timeout_s=10.0, manifest_grace_s=0.5, retry_initial_s=0.02, retry_max_s=0.1,
            stop_timeout_s=15.0)


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "renders"
    path.mkdir()
    return path


@pytest.fixture
def watch(folder):
    """``start(**overrides) -> Watcher`` (its console's lines in ``w.console.lines``); all stopped at the end."""
    started: list[Watcher] = []

    def start(where: Path | None = None, **overrides) -> Watcher:
        w = Watcher(watch_settings(where or folder, **{**FAST, **overrides}), console=Console(io.StringIO(), tty=False))
        started.append(w)
        return w.start()

    yield start
    for w in started:
        w.stop(15.0)


def _stem(folder: Path, name: str = "good.wav", seconds: float = 2.0, amplitude: float = 0.1) -> Path:
    path = folder / name
    tmp = folder / f".{name}.part"
    sf.write(tmp, sine(seconds, amplitude=amplitude), RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)  # whole at once, like a renderer's final rename
    return path


def _lines(w: Watcher, code: str) -> list[str]:
    return [line for line in w.console.lines if code in line]


def _passes(w: Watcher, n: int) -> bool:
    return w.wait_for(lambda: len(w.passes) >= n or w.crashed is not None, DEADLINE_S) and w.crashed is None


def _names(record) -> dict[str, str | None]:
    return {s.name: (s.error.code if s.error is not None else None) for s in record.result.stems}


# --- one file must not kill the watcher, nor every restart -------------------------------------------

def test_a_file_name_that_is_not_utf8_is_one_line_and_restarts_are_clean(watch, folder):
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    sf.write(os.path.join(os.fsencode(folder), b"bad\xff.wav"), sine(2.0), RATE, subtype="PCM_16")
    assert _passes(w, 2), w.crashed
    assert _names(w.passes[-1]) == {"good": None, "bad\\xff": "E_STEM_NAME"}
    assert w.alive
    w.stop()
    again = watch()
    assert again.wait_for(lambda: again.idle, DEADLINE_S) and again.alive and again.crashed is None


def _manifest_doc(file_name: str, bounce: str = "b1") -> dict:
    return {"schema": "mixbridge-bounce", "schema_version": 1, "bounce_id": bounce,
            "created_at": "2026-01-01T00:00:00Z", "project": "", "render_dir": "",
            "stems": [{"track_guid": "", "track_name": "Good", "file": file_name, "sample_rate": RATE}]}


@pytest.mark.parametrize("kind", ["nul-byte", "deep-nesting", "absurd-size", "not-an-object"])
def test_a_hostile_manifest_is_one_line_the_stems_still_get_a_pass_and_restarts_are_clean(watch, folder, kind):
    _stem(folder)
    manifest = folder / "mixbridge-bounce.json"
    if kind == "nul-byte":
        manifest.write_text(json.dumps(_manifest_doc("good\u0000.wav")))
    elif kind == "deep-nesting":
        manifest.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "absurd-size":
        with open(manifest, "wb") as fh:
            fh.truncate(64 * 1024 * 1024)
    else:
        manifest.write_text("[1, 2, 3]")
    for _ in range(2):  # the second start is the restart that must not crash again
        w = watch()
        assert w.wait_for(lambda: w.idle, DEADLINE_S) and w.alive, w.crashed
        assert len(_lines(w, "E_MANIFEST")) == 1, w.console.lines
        w.stop()
    assert [p for r in read_journal(folder / ".mixbridge" / "journal.jsonl") if r["event"] == "pass_done"
            for p in [r["pass"]]] == [1]


BAD_STATE = {
    "last-pass-a-list": ("last-pass.json", "[1, 2]"),
    "last-pass-pass-a-string": ("last-pass.json", json.dumps({"pass": "7", "stems": {}})),
    "last-pass-tracks-a-list": ("last-pass.json", json.dumps({"pass": 1, "stems": {}, "tracks": [1, 2]})),
    "last-pass-stems-wrong": ("last-pass.json", json.dumps({"pass": 1, "stems": {"good.wav": "big"}})),
    "last-pass-pass-absurd": ("last-pass.json", json.dumps({"pass": 10 ** 30, "stems": {}})),
    "last-pass-not-utf8": ("last-pass.json", b"\xff\xfe{"),
    "journal-wrong-records": ("journal.jsonl", '{"event": 5}\n{"event": "pass_started", "pass": "x"}\n'),
    "plan-tags-wrong-shape": ("plan-tags.json", json.dumps({"pass": 1, "tracks": {"Good": [1]}})),
    "lock-a-fifo": ("watch.lock", None),
    "journal-a-folder": ("journal.jsonl", None),
}


@pytest.mark.parametrize("case", sorted(BAD_STATE))
def test_a_bad_state_file_is_moved_aside_with_one_line_and_the_watcher_starts_clean(watch, folder, case):
    name, content = BAD_STATE[case]
    state = folder / ".mixbridge"
    state.mkdir()
    if case == "lock-a-fifo":
        os.mkfifo(state / name)
    elif case == "journal-a-folder":
        (state / name).mkdir()
    else:
        (state / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    _stem(folder)
    w = watch()
    assert _passes(w, 1), w.crashed
    assert list(state.glob(f"{name}.bad-*")), sorted(p.name for p in state.iterdir())
    if name != "plan-tags.json":  # the plan target's line goes to stderr (no console of its own)
        assert len(_lines(w, "E_STATE_FILE")) == 1, w.console.lines
    w.stop()
    again = watch()
    assert again.wait_for(lambda: again.idle, DEADLINE_S) and again.crashed is None
    assert not _lines(again, "E_STATE_FILE")  # clean now: nothing moved aside twice
    assert len(list(state.glob(f"{name}.bad-*"))) == 1


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_state_folder_that_is_a_file_or_fifo_is_moved_aside(watch, folder, kind):
    state = folder / ".mixbridge"
    state.write_text("not a folder") if kind == "file" else os.mkfifo(state)
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    assert state.is_dir() and list(folder.glob(".mixbridge.bad-*"))
    assert len(_lines(w, "E_STATE_FILE")) == 1


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def test_a_read_only_state_folder_is_one_clear_error_at_start(folder):
    state = folder / ".mixbridge"
    if not _mount_tmpfs(state, "size=1m,ro"):
        pytest.skip("cannot mount a read-only tmpfs here (needs root and mount rights)")
    try:
        _stem(folder)
        w = Watcher(watch_settings(folder, **FAST), console=Console(io.StringIO(), tty=False))
        with pytest.raises(StateFolderError) as caught:
            w.start()
        assert caught.value.code == "E_STATE_FOLDER"
        w.stop()
        proc = subprocess.run([sys.executable, "-m", "bridge", "watch", str(folder), "--jobs", "1"], cwd=REPO,
                              capture_output=True, text=True, timeout=DEADLINE_S)
        assert proc.returncode == 2 and "E_STATE_FOLDER" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        _umount(state)


# --- never blocking ---------------------------------------------------------------------------------------

def test_a_fifo_named_wav_never_blocks_and_later_stems_are_analysed(watch, folder):
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    os.mkfifo(folder / "x.wav")
    (folder / "y.wav").symlink_to("/dev/zero")
    (folder / "z.wav").symlink_to(folder / "z.wav")  # a loop
    _stem(folder, "later.wav")
    assert w.wait_for(lambda: any("later" in _names(p) for p in w.passes), DEADLINE_S), w.console.lines
    assert w.alive and w.crashed is None


def test_a_manifest_listing_a_fifo_gets_its_error_and_the_rest_is_planned(watch, folder):
    _stem(folder)
    os.mkfifo(folder / "pipe.wav")
    doc = _manifest_doc("good.wav")
    doc["stems"].append({"track_guid": "", "track_name": "Pipe", "file": "pipe.wav", "sample_rate": RATE})
    (folder / "mixbridge-bounce.json").write_text(json.dumps(doc))
    w = watch()
    assert _passes(w, 1)
    assert _names(w.passes[0]) == {"good": None, "pipe": "E_NOT_A_FILE"}


# --- one watcher per folder --------------------------------------------------------------------------------

def test_a_second_watcher_on_the_folder_is_refused_naming_the_holder(watch, folder):
    _stem(folder)
    first = watch()
    second = Watcher(watch_settings(folder, **FAST), console=Console(io.StringIO(), tty=False))
    with pytest.raises(WatchLocked) as caught:
        second.start()
    assert str(os.getpid()) in caught.value.message
    second.stop()
    proc = subprocess.run([sys.executable, "-m", "bridge", "watch", str(folder), "--jobs", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=DEADLINE_S)
    assert proc.returncode == 2, proc.stderr
    assert f"E_WATCH_LOCKED" in proc.stderr and str(os.getpid()) in proc.stderr and "Traceback" not in proc.stderr
    assert _passes(first, 1) and len(first.passes) == 1
    starts = [r for r in read_journal(folder / ".mixbridge" / "journal.jsonl") if r["event"] == "pass_started"]
    assert len(starts) == 1


def test_a_stale_lock_of_a_dead_watcher_is_taken_over(watch, folder):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / ".mixbridge").mkdir()
    (folder / ".mixbridge" / "watch.lock").write_text(dead.stdout)
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    assert (folder / ".mixbridge" / "watch.lock").read_text().strip() == str(os.getpid())


# --- writers that fix the header only at close ----------------------------------------------------------------

def _held_and_looked_at(w: Watcher, path: Path) -> bool:
    """The watcher has looked at ``path`` since its last write, found it stable, and still waits."""
    state = w.tracker.files.get(path)
    return (state is not None and state.status == "pending" and state.stable >= w.timings.stable_polls
            and state.error is not None and state.error.code in ("E_STEM_WRITING", "E_STEM_TRUNCATED"))


def _write_pausing(w: Watcher, path: Path, kind: str, chunks: int = 3) -> None:
    """Write ``chunks`` seconds, and after each wait until the watcher has looked and decided to wait."""
    data = sine(1.0)
    if kind.startswith("wave"):
        out = wave.open(str(path), "wb")
        out.setnchannels(2), out.setsampwidth(2), out.setframerate(RATE)
        pcm = (data * 32767).astype("<i2").tobytes()
        write = out.writeframesraw if kind == "wave-writeframesraw" else out.writeframes
        for _ in range(chunks):
            write(pcm)
            out._file.flush()
            wait_until(lambda: _held_and_looked_at(w, path), DEADLINE_S, f"the watcher to hold {path.name}")
        out.close()
        return
    with sf.SoundFile(str(path), "w", RATE, 2, subtype="PCM_24", format=kind) as fh:
        for _ in range(chunks):
            fh.write(data)
            wait_until(lambda: _held_and_looked_at(w, path), DEADLINE_S, f"the watcher to hold {path.name}")


@pytest.mark.parametrize("kind, ext", [("wave-writeframesraw", ".wav"), ("wave-writeframes", ".wav"),
                                       ("W64", ".w64"), ("RF64", ".rf64"), ("CAF", ".caf"), ("FLAC", ".flac")])
def test_a_stem_whose_writer_fixes_the_header_at_close_is_analysed_only_whole(watch, folder, kind, ext):
    if kind == "wave-writeframes" and open_for_writing(folder) is None and open_for_writing(Path(__file__)) is None:
        pytest.skip("its header is consistent after every write: only a lease shows the writer (Linux)")
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    path = folder / f"slow{ext}"
    _write_pausing(w, path, kind)
    assert w.wait_for(lambda: any("slow" in _names(p) for p in w.passes), DEADLINE_S), w.console.lines
    for record in w.passes:
        slow = [s for s in record.result.stems if s.name == "slow"]
        if slow:
            assert slow[0].error is None, slow[0].error
            assert slow[0].info.frames == 3 * RATE


# --- a stem that changes while it is read; rename storms; clock jumps ---------------------------------------

def test_a_stem_rewritten_while_its_pass_reads_it_makes_the_pass_run_again(watch, folder, monkeypatch):
    from bridge.analyze.features import FeatureExtractor

    _stem(folder)
    moving = _stem(folder, "moving.wav", seconds=3.0, amplitude=0.05)
    feed = FeatureExtractor.feed
    done: list[int] = []

    def rewrite_once(self, block):
        feed(self, block)
        if not done and len(block) and abs(float(block.max()) - 0.05) < 0.01:
            done.append(1)
            with open(moving, "r+b") as fh:  # in place, mid-read
                sf.write(fh, sine(2.0, amplitude=0.1), RATE, subtype="PCM_16", format="WAV")
                fh.truncate()

    monkeypatch.setattr(FeatureExtractor, "feed", rewrite_once)
    w = watch()
    assert w.wait_for(lambda: w.passes and w.idle, DEADLINE_S)
    assert done and w.errors == [] and w.crashed is None
    last = w.passes[-1].result.stems
    assert {s.name: (s.error, s.info.frames) for s in last} == {"good": (None, 2 * RATE), "moving": (None, 2 * RATE)}


def test_a_rename_storm_is_a_bounded_number_of_passes_and_the_watcher_survives(watch, folder):
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    src = _stem(folder, "storm0.wav")
    for k in range(300):
        dst = folder / f"storm{(k + 1) % 7}.wav"
        os.replace(src, dst)
        src = dst
    assert w.wait_for(lambda: w.idle and any(src.stem in _names(p) for p in w.passes), DEADLINE_S)
    assert w.alive and w.crashed is None and len(w.passes) <= 6
    assert set(_names(w.passes[-1])) == {"good", src.stem}
    assert len(w.tracker.files) <= 8


def test_modification_times_jumping_back_and_forward_are_just_new_passes_from_the_cache(watch, folder):
    paths = [_stem(folder), _stem(folder, "other.wav", amplitude=0.05)]
    w = watch()
    assert _passes(w, 1)
    for n, shift_s in ((2, -365 * 86400), (3, 10 * 365 * 86400)):
        st = os.stat(paths[0])
        os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + shift_s * 10 ** 9))
        assert _passes(w, n), w.console.lines
        record = w.passes[-1]
        assert record.failed == () and record.reanalysed == ()  # the same bytes: served from the cache
    assert w.errors == []


# --- a full disk ----------------------------------------------------------------------------------------------

def _scratch_left(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"mixbridge-sum-{pid}-*"))


def test_disk_full_injected_at_the_scratch_writes_is_one_line_and_the_pass_comes_back(watch, folder, monkeypatch):
    """Fault injection: ``posix_fallocate`` (where every scratch and sum file reserves its room) fails
    with ``ENOSPC`` until the "disk" is freed."""
    full = threading.Event()
    full.set()
    real = os.posix_fallocate

    def fallocate(fd, offset, length):
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    _stem(folder)
    _stem(folder, "other.wav", amplitude=0.05)
    w = watch()
    assert w.wait_for(lambda: _lines(w, "E_DISK_FULL"), DEADLINE_S), w.console.lines
    assert w.alive and w.passes == [] and w.errors == []
    assert not _scratch_left(os.getpid())
    assert not list((folder / ".mixbridge" / "cache" / "tmp").iterdir())
    full.clear()
    assert _passes(w, 1)
    assert len(_lines(w, "E_DISK_FULL")) == 1 and _lines(w, "room on the disk again")
    assert not _lines(w, "Errno") and not _lines(w, "OSError") and not _lines(w, "a bug")


def test_disk_full_on_a_real_small_filesystem(tmp_path, monkeypatch):
    """A 3 MB tmpfs holds the stems, the state folder and the scratch; a filler takes the rest."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=3m"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights); the injected test covers it")
    w = None
    try:
        stems, scratch = disk / "stems", disk / "tmp"
        stems.mkdir(), scratch.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        _stem(stems, seconds=2.0)
        _stem(stems, "other.wav", seconds=2.0, amplitude=0.05)
        filler = disk / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(bytes(64 * 1024))
                    fh.flush()
            except OSError:
                pass
        w = Watcher(watch_settings(stems, **FAST), console=Console(io.StringIO(), tty=False)).start()
        assert w.wait_for(lambda: _lines(w, "E_DISK_FULL"), DEADLINE_S), w.console.lines
        assert w.alive and not list(scratch.iterdir())
        filler.unlink()
        assert _passes(w, 1), w.console.lines
        assert _lines(w, "room on the disk again")
        assert not _lines(w, "Errno") and not _lines(w, "OSError") and not _lines(w, "a bug")
    finally:
        if w is not None:
            w.stop(15.0)
        _umount(disk)


# --- restarts -------------------------------------------------------------------------------------------------

def test_stems_that_stopped_the_watcher_twice_are_not_retried_on_every_restart(watch, folder):
    good = _stem(folder)
    st = os.stat(good)
    fingerprints = {"good.wav": [st.st_size, st.st_mtime_ns]}
    state = folder / ".mixbridge"
    state.mkdir()
    lines = [{"event": "pass_started", "pass": 1, "stems": fingerprints}, {"event": "pass_rerun", "pass": 1},
             {"event": "pass_started", "pass": 1, "stems": fingerprints}]
    (state / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for _ in range(2):
        w = watch()
        assert w.wait_for(lambda: w.idle, DEADLINE_S)
        assert w.passes == [] and _lines(w, "abandoned")
        w.stop()
    _stem(folder, "good.wav", amplitude=0.05)  # a change: now it runs
    w = watch()
    assert _passes(w, 1)


def test_kill_9_of_the_watcher_leaves_nothing_running_and_the_next_start_takes_over(watch, folder):
    psutil = pytest.importorskip("psutil")
    rng = np.random.default_rng(2)
    for k in range(3):
        sf.write(folder / f"long{k}.wav", (rng.standard_normal((RATE * 90, 2)) * 0.1).astype(np.float32), RATE,
                 subtype="PCM_16")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "watch", str(folder), "--jobs", "2", "--settle", "0.1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    try:
        wait_until(lambda: len(parent.children(recursive=True)) >= 4, DEADLINE_S, "the watcher's workers")
        everyone = parent.children(recursive=True)
    finally:
        proc.kill()
        proc.wait(DEADLINE_S)
    try:
        wait_until(lambda: all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in everyone), 10.0,
                   "the dead watcher's fork server and workers to exit")
    finally:
        for p in everyone:
            if p.is_running():
                p.kill()
    w = watch()
    assert _passes(w, 1)
    assert [p.number for p in w.passes] == [1]


def test_a_manifest_rewritten_in_place_while_it_is_read_ends_in_the_last_bounce(watch, folder):
    _stem(folder)
    w = watch()
    assert _passes(w, 1)
    manifest = folder / "mixbridge-bounce.json"
    for k in range(40):  # non-atomic rewrites: a reader may see any prefix of each
        text = json.dumps(_manifest_doc("good.wav", bounce=f"b{k}")).encode()
        with open(manifest, "wb") as fh:
            fh.write(text[: len(text) // 2])
            fh.flush()
            fh.write(text[len(text) // 2:])
    _stem(folder, "good.wav", amplitude=0.05)  # the bounce the last manifest completes
    assert w.wait_for(lambda: w.idle and w.passes[-1].bounce.id == "b39", DEADLINE_S), \
        [p.bounce.id for p in w.passes]
    assert w.alive and w.crashed is None and w.errors == []


def test_an_unfinished_flac_claiming_days_never_hangs_the_watcher(watch, folder):
    from tests.test_hostile_files import absurd_flac

    _stem(folder)
    absurd_flac(folder / "huge.flac")
    doc = _manifest_doc("good.wav")
    doc["stems"].append({"track_guid": "", "track_name": "Huge", "file": "huge.flac", "sample_rate": RATE})
    (folder / "mixbridge-bounce.json").write_text(json.dumps(doc))
    w = watch(incomplete_timeout_s=1.0)
    assert _passes(w, 1)
    assert _names(w.passes[0]) == {"good": None, "huge": "E_STEM_TRUNCATED"}
    # The mix is the good stem's two seconds, whatever the FLAC claimed.
    assert len(w.passes[0].result.mix.summed.loudness.momentary_lufs) == 20
    cache_bytes = sum(p.stat().st_size for p in (folder / ".mixbridge" / "cache").rglob("*") if p.is_file())
    assert cache_bytes < 5_000_000
