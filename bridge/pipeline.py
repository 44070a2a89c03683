"""The one place that wires the stages together: stems on disk -> features -> analyses.

Each stem is read once, in one-second blocks, by a worker process (one per core).  While it is
read it is reduced to :class:`~bridge.analyze.features.StemFeatures`, and also added into the
worker's running stereo sum of the session, a float32 scratch file.  After the stems, one
worker adds those few partial sums block by block and measures the result as "the mix", while
this process computes the masking between the stems.  No stem is ever held whole in memory and
none is decoded twice.

Start-up: the worker pool is started first thing, so its fork server imports the analysis
(numpy, scipy.fft, soundfile) on one core while this process reads the headers on the
other; this module itself imports only numpy and the standard library.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from .errors import BridgeError, DiskFull, StemChanged, StemReadError
from .model import SessionResult, StemResult
from .stems import StemInfo, find_stems, open_stem, read_blocks
from .tracks import stem_label
from .tracks import stem_names as _unique_names  # the one naming rule (the plan's tracks use it too)

if TYPE_CHECKING:
    from .analyze.features import StemFeatures
    from .analyze.session import MixAnalysis
    from .analyze.stem import StemAnalysis
    from .cache import AnalysisCache, GroupSum

#: Channels of the summed mix.
MIX_CHANNELS = 2
_SQRT_HALF = np.float32(np.sqrt(0.5))
#: A caller's masking memo is cleared when it grows past this many pairs.
MASKING_MEMO_MAX = 20_000


def to_stereo(block: np.ndarray) -> np.ndarray:
    """Fold any channel layout to stereo the way it plays on a REAPER stereo track.

    Mono plays at unity on both sides (REAPER's default 0 dB pan law at centre).  Centre and
    surround channels of 3/5/5.1/7.1 layouts (WAV order) fold in at -3 dB; LFE is dropped.
    """
    channels = block.shape[1]
    if channels == 2:
        return block
    if channels == 1:
        return np.repeat(block, 2, axis=1)
    left, right = block[:, 0].copy(), block[:, 1].copy()
    layout = {3: ([2], [], []), 4: ([], [2], [3]), 5: ([2], [3], [4]), 6: ([2], [4], [5]),
              8: ([2], [4, 6], [5, 7])}.get(channels, ([], [], []))
    centre, surround_left, surround_right = layout
    for c in centre:
        left += _SQRT_HALF * block[:, c]
        right += _SQRT_HALF * block[:, c]
    for c in surround_left:
        left += _SQRT_HALF * block[:, c]
    for c in surround_right:
        right += _SQRT_HALF * block[:, c]
    return np.stack([left, right], axis=1)


# ------------------------------------------------------------------------------------ partial sums
class _PartialSum:
    """A float32 stereo scratch file that stems are added into at their frame offsets.

    Adding a block is a ``pread`` of that stretch into one reused buffer, an in-place ``+=`` and a
    ``pwrite`` back; where nothing was written yet (the file's zeros) the block is simply
    written.  That is a third of the CPU of adding through memory-mapped pages, whose first touch
    of every fresh 4 KiB page is a page fault.  The process holds one block, never the sum, so its
    resident memory stays flat in song length: a 3-hour sum is 4 GB of file, not of memory.  Other
    processes see the sums through the page cache as soon as the task that wrote them has returned.

    The file grows with what is actually added, never with what a header promised: ``frames`` is
    only the most it may hold.  Every growth is reserved with ``posix_fallocate`` first, so a full
    disk is an ``E_DISK_FULL`` error here, never a short write found later.
    """

    #: Growth step, frames (about 5 s at 48 kHz; grows by half its size beyond that).
    GROW_FRAMES = 1 << 18

    def __init__(self, path: Path, frames: int):
        self.path = path
        self.frames = frames
        if not path.exists():
            path.touch()
        self.capacity = min(path.stat().st_size // (MIX_CHANNELS * 4), frames)
        #: Frames from here on are known to be zeros (reserved, never written): a block there is
        #: written as it is, not added.
        self._written = self.capacity
        self._fd: int | None = None
        self._buffer = np.empty((0, MIX_CHANNELS), np.float32)

    def reserve(self, end: int) -> None:
        """Make room for frames ``[0, end)`` (at most :attr:`frames`)."""
        end = min(end, self.frames)
        if end <= self.capacity:
            return
        grown = min(self.frames, max(end, self.capacity + self.capacity // 2, self.GROW_FRAMES))
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self._file(), 0, grown * MIX_CHANNELS * 4)
            else:  # pragma: no cover - not Linux/BSD
                os.ftruncate(self._file(), grown * MIX_CHANNELS * 4)
        except OSError as exc:
            raise _as_disk_full(exc, self.path) from exc
        self.capacity = grown

    def add(self, offset: int, block: np.ndarray, sign: float = 1.0) -> None:
        n = min(len(block), self.frames - offset)
        if n <= 0:
            return
        self.reserve(offset + n)
        fd = self._file()
        old = max(0, min(n, self._written - offset))  # frames of the block over earlier writes
        try:
            if old:
                if len(self._buffer) < old:
                    self._buffer = np.empty((old, MIX_CHANNELS), np.float32)
                target = self._buffer[:old]
                got = os.preadv(fd, [memoryview(target).cast("B")], offset * MIX_CHANNELS * 4)
                if got != target.nbytes:
                    raise OSError(f"{self.path}: short read of a partial sum")
                (np.add if sign > 0 else np.subtract)(target, block[:old], out=target)
                self._write(fd, target, offset)
            if n > old:
                fresh = np.ascontiguousarray(block[old:n], dtype=np.float32)
                self._write(fd, fresh if sign > 0 else -fresh, offset + old)
        except OSError as exc:
            raise _as_disk_full(exc, self.path) from exc
        self._written = max(self._written, offset + n)

    def _write(self, fd: int, frames: np.ndarray, offset: int) -> None:
        data = memoryview(frames).cast("B")
        position = offset * MIX_CHANNELS * 4
        while data:  # a regular file writes everything at once; a short write is carried on
            done = os.pwrite(fd, data, position)
            data, position = data[done:], position + done

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR)
        return self._fd

    def close(self) -> None:
        """Close the file (the data is in the page cache; an ``add`` would open it again)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._buffer = np.empty((0, MIX_CHANNELS), np.float32)


def _read_frames(fh, start: int, out: np.ndarray) -> int:
    """Read stereo float32 frames from ``start`` into ``out`` (``(n, 2)``); returns the frames read."""
    fh.seek(start * MIX_CHANNELS * 4)
    got = fh.readinto(memoryview(out).cast("B"))
    return (got or 0) // (MIX_CHANNELS * 4)


def _as_disk_full(exc: OSError, what) -> OSError:
    """``ENOSPC`` as the one ``E_DISK_FULL`` error; any other ``OSError`` as it is."""
    from .files import disk_full, is_disk_full

    return disk_full(exc, what) if is_disk_full(exc) and not isinstance(exc, BridgeError) else exc


#: Scratch folders are named with the owner's PID, so one left by a killed process can be told apart.
_SCRATCH_PREFIX = "mixbridge-sum-"


def _scratch_folder():
    """A private scratch folder for one pass's partial sums (removed with its contents at the end)."""
    _remove_dead_scratch()
    return tempfile.TemporaryDirectory(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-")


def _remove_dead_scratch() -> None:
    """Remove scratch folders whose owner process is gone (a ``kill -9`` leaves them behind)."""
    root = Path(tempfile.gettempdir())
    try:
        children = list(root.glob(f"{_SCRATCH_PREFIX}*-*"))
    except OSError:
        return
    for child in children:
        owner = child.name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _alive(int(owner)):
            shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


class _WorkerState:
    """What one worker process (or one in-process pass) keeps between its tasks: its scratch sums.

    One sum per worker and scratch folder, so no two writers ever share a file; with
    ``group_stems`` (a pass with a cache) a new one after that many stems, so each file is the sum
    of a small group the cache can keep.  Installed in each worker by the pool's initializer; an
    in-process pass makes its own and closes it at the end.
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, int], _PartialSum] = {}
        self._counts: dict[tuple[str, int], int] = {}

    def partial_sum(self, folder: str, frames: int, group_stems: int | None = None) -> _PartialSum:
        """The sum the next stem goes into (called once per stem)."""
        key = (folder, frames)
        partial = self._sums.get(key)
        if partial is None or (group_stems and self._counts[key] >= group_stems):
            if partial is not None:
                partial.close()
            partial = self._sums[key] = _PartialSum(Path(folder) / f"sum-{os.getpid()}-{uuid.uuid4().hex[:8]}.f32",
                                                    frames)
            self._counts[key] = 0
        self._counts[key] += 1
        return partial

    def close(self) -> None:
        for partial in self._sums.values():
            partial.close()
        self._sums.clear()
        self._counts.clear()


#: The worker's own state; set by the pool initializer in worker processes only.
_WORKER: _WorkerState | None = None


class WorkerInterrupted(SystemExit):
    """Ctrl-C reached a worker (SIGINT goes to the whole process group).  A ``SystemExit``, so an idle
    worker ends without a traceback, its locks released on the way out; raised inside a task it comes
    back as that task's outcome, and the session treats the pass as interrupted."""


def _init_worker() -> None:
    global _WORKER
    _WORKER = _WorkerState()


def _pool_initializer(owner_pid: int | None = None) -> None:
    """Pool initializer: the worker's own state, Ctrl-C as :class:`WorkerInterrupted`, and death
    with the process that owns the pool (:func:`die_with_parent`)."""
    import signal

    _init_worker()
    die_with_parent(owner_pid)

    def interrupted(*_):
        raise WorkerInterrupted(1)

    signal.signal(signal.SIGINT, interrupted)


#: ``prctl`` option: the signal this process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent(owner_pid: int | None = None) -> None:
    """Make this worker end promptly when its owner is killed (even ``kill -9``).

    Two guards, because a worker can be blocked in a pipe read that never ends (the pool's own
    queue, whose write end the worker itself also holds):

    - ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux, through ctypes): the kernel kills the worker when
      its parent (the fork server, or the owner itself with ``spawn``) goes;
    - a daemon thread that waits on a ``pidfd`` of the owner (Linux 5.3+; elsewhere it polls the
      parent PID once a second) and ends the process at once when the owner is gone, whatever the
      main thread is blocked in.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    parent = os.getppid()
    owner = owner_pid if owner_pid is not None else parent
    if not _alive(owner) or parent == 1:
        os._exit(1)  # the owner died before we were set up

    def watch() -> None:
        import select

        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(owner)
            except OSError:
                pidfd = None
        if pidfd is not None:
            select.select([pidfd], [], [])  # readable exactly when the owner has exited
            os._exit(1)
        while _alive(owner) and os.getppid() == parent:
            time.sleep(1.0)  # no pidfd: a parent-liveness poll, bounded by the process's life
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="mixbridge-owner-watch", daemon=True).start()


def _state(state: _WorkerState | None) -> _WorkerState:
    if state is not None:
        return state
    if _WORKER is None:  # a task run in a process that no pool initialised (direct calls)
        _init_worker()
    return _WORKER


# ------------------------------------------------------------------------------------ the pool
def _warm_up() -> int:
    from .forkserver import PRELOAD

    for name in PRELOAD:
        __import__(name)
    return os.getpid()


class _Pool:
    """The worker processes of one pass.

    Started before anything heavy is imported here: submitting one warm-up task per worker makes
    the fork server start and import the analysis at once, on the other core, while this process
    goes on reading headers.  One BLAS thread per worker: the workers already fill the cores.
    """

    def __init__(self, jobs: int):
        from .forkserver import context as pool_context

        # The first pool of a process pays the imports once (unless the command started the server
        # earlier, bridge.forkserver.start_early); every later pool (a watcher's next pass) forks
        # from the warm server in milliseconds.
        context = pool_context()
        self.jobs = jobs
        self._executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_pool_initializer,
                                             initargs=(os.getpid(),))
        for _ in range(jobs):
            self._executor.submit(_warm_up)

    def submit(self, fn: Callable, *args) -> Future:
        return self._executor.submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class _LazyPool:
    """A pool started only when a pass has work for it (a no-change pass starts no processes)."""

    def __init__(self, jobs: int, pool: _Pool | None = None):
        self.jobs = jobs
        self._pool = pool

    @property
    def started(self) -> bool:
        return self._pool is not None

    def get(self) -> _Pool | None:
        if self._pool is None and self.jobs > 1:
            self._pool = _Pool(self.jobs)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _run(tasks: list[tuple[Callable, tuple, object]], pool: _LazyPool, done: Callable[[object, object], None],
         state: _WorkerState) -> None:
    """Run ``(function, args, tag)`` tasks on the worker pool (in this process for one task or one job).

    ``done(tag, result_or_exception)`` is called in this process as each finishes.
    """
    if not tasks:
        return
    workers = pool.get() if len(tasks) > 1 or pool.started else None
    if workers is None:
        for fn, args, tag in tasks:
            try:
                done(tag, fn(*args, state=state))
            except Exception as exc:  # noqa: BLE001 - reported per task, like a crashed worker
                done(tag, exc)
        return
    futures = {workers.submit(fn, *args): tag for fn, args, tag in tasks}
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a crashed worker must not sink the batch
            result = exc
        done(futures[future], result)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# ------------------------------------------------------------------------------------ one stem
def _mix_stream(stem: StemInfo, mix_rate: int, partial: _PartialSum | None, sign: float = 1.0):
    """Return a function that adds each block of ``stem`` into ``partial`` at the mix rate."""
    resampler = None
    if stem.sample_rate != mix_rate:
        from .analyze.resample import StreamResampler

        resampler = StreamResampler(stem.sample_rate, mix_rate, MIX_CHANNELS)
    position = 0

    def add(block: np.ndarray | None) -> None:
        nonlocal position
        if partial is None:
            return
        stereo = to_stereo(block) if block is not None else None
        if resampler is not None:
            stereo = resampler.feed(stereo) if stereo is not None else resampler.finish()
        if stereo is None or len(stereo) == 0:
            return
        partial.add(position, stereo, sign)
        position += len(stereo)

    return add


def _measure(info: StemInfo, mix_rate: int | None, partial: _PartialSum | None) -> tuple[StemAnalysis, StemFeatures]:
    """One read of a stem: its features and its share of the mix sum.

    Raises the stem's :class:`BridgeError`; whatever it had added to the sum is subtracted again.
    """
    from .analyze.features import FeatureExtractor
    from .analyze.stem import analyze_stem

    extractor = FeatureExtractor(info.sample_rate, info.channels, info.quantum)
    add = _mix_stream(info, mix_rate or info.sample_rate, partial)
    added = 0
    try:
        for block in read_blocks(info):
            extractor.feed(block)
            add(block)
            added += len(block)
        add(None)
    except BridgeError:
        if partial is not None and added and not _undo_partial(info, mix_rate, partial, added):
            _mark_dirty(partial)
        raise
    features = extractor.finish()
    return analyze_stem(features), features.slim()


def extract_stem(path: str, mix_rate: int | None = None, mix_frames: int = 0, sum_folder: str | None = None,
                 state: _WorkerState | None = None) -> tuple[StemInfo | None, tuple | None, BridgeError | None, str | None]:
    """Read one stem once: features, plus its share of the mix sum.  Runs in a worker process.

    Returns ``(info, (analysis, slim features), error, sum_file)``; a failed stem leaves no trace
    in the sum.
    """
    partial = _state(state).partial_sum(sum_folder, mix_frames) if sum_folder and mix_rate else None
    info = None
    try:
        info = open_stem(path)
        measured = _measure(info, mix_rate, partial)
        return info, measured, None, str(partial.path) if partial else None
    except BridgeError as exc:
        return info, None, exc, str(partial.path) if partial else None


def _undo_partial(info: StemInfo, mix_rate: int, partial: _PartialSum, frames: int) -> bool:
    """Subtract what a stem that failed mid-way had already added to the sum.

    Returns whether all of it could be read again; when not (the file changed or went away), the
    sum is not to be trusted and the caller marks it dirty (:func:`_mark_dirty`).
    """
    subtract = _mix_stream(info, mix_rate, partial, sign=-1.0)
    done = 0
    try:
        for block in read_blocks(info):
            take = block[: frames - done]
            subtract(take)
            done += len(take)
            if done >= frames:
                break
    except BridgeError:
        return False
    # No resampler flush here: the failed pass never flushed its resampler either.
    return done >= frames


def _mark_dirty(partial: _PartialSum) -> None:
    """A partial sum holds part of a stem that could not be taken out again: the pass re-sums."""
    try:
        Path(f"{partial.path}.dirty").touch()
    except OSError:
        pass


def _dirty(sum_files: Iterable[str]) -> bool:
    return any(Path(f"{f}.dirty").exists() for f in sum_files)


def _frames_at(infos: Iterable[StemInfo], mix_rate: int | None) -> int:
    """Frames of the mix at ``mix_rate``: the longest of ``infos``."""
    if not mix_rate:
        return 0
    return max((int(np.ceil(i.duration_s * mix_rate)) for i in infos), default=0)


@dataclass(frozen=True, slots=True)
class _GroupJob:
    """One group sum of the mix stage: files already summed, plus stems to decode into it.

    ``sources`` are ``(file, stat)``: a stored group sum, whose :func:`~bridge.cache.stat_key`
    must be the one recorded with it (any write moves its ctime), or a pass's scratch sum (``stat``
    ``None``).  ``decode`` are ``(stem path, sha256, stat)``: stems summed into ``out`` first, their
    stat checked before and after.  ``out`` is where the group is written when it is not simply its
    one source.
    """

    sources: tuple[tuple[str, list[int] | None], ...] = ()
    decode: tuple[tuple[str, str, list[int]], ...] = ()
    out: str | None = None


def _mix_groups(jobs: Sequence[_GroupJob], mix_rate: int, mix_frames: int,
                part: str | None = None) -> tuple[StemFeatures, list[str], list[str]]:
    """Sum the groups block by block, write those that change, and measure their total (the mix).

    With ``part``, only that half of the features (:data:`bridge.analyze.features.PARTS`); two
    halves run at once only on jobs that write nothing (no ``decode``, no ``out``).

    Returns ``(mix features, each group's file, hashes decoded)``.  A stem that fails to decode is
    left out of its group (and of the hashes).

    Raises
    ------
    _MixUnavailable
        A stored group sum is not the file recorded, or a stem changed under us.
    """
    from .analyze.features import FeatureExtractor
    from .cache import stat_key

    def _check_sources() -> None:
        for job in jobs:
            for path, stat in job.sources:
                try:
                    if stat is not None and stat_key(Path(path)) != stat:
                        raise _MixUnavailable(f"{path}: a group sum is not the file recorded")
                except OSError as exc:
                    raise _MixUnavailable(str(exc)) from exc

    _check_sources()
    decoded: list[str] = []
    for job in jobs:
        if not job.decode:
            continue
        partial = _PartialSum(Path(job.out), mix_frames)
        try:
            for path, sha, stat in job.decode:
                try:
                    if stat_key(Path(path)) != stat:
                        raise _MixUnavailable(f"{path}: changed during the pass")
                    info = open_stem(path)
                except BridgeError:
                    continue
                except OSError as exc:
                    raise _MixUnavailable(str(exc)) from exc
                if _sum_stem(info, mix_rate, partial):
                    decoded.append(sha)
                if stat_key(Path(path)) != stat:
                    raise _MixUnavailable(f"{path}: changed during the pass")
        finally:
            partial.close()
    extractor = FeatureExtractor(mix_rate, MIX_CHANNELS, part=part)
    # Read block by block (not mapped whole): resident memory stays flat in song length.
    opened: list[list] = []
    written: list = []
    lengths: list[int] = []
    try:
        for job in jobs:
            files = [open(p, "rb") for p, _ in job.sources]
            if job.decode:
                files.append(open(job.out, "rb"))  # what was decoded into it, then the sources added
            opened.append(files)
            sizes = [os.fstat(f.fileno()).st_size // (MIX_CHANNELS * 4) for f in files]
            lengths.append(min(max(sizes, default=0), mix_frames))
            written.append(open(job.out, "r+b" if job.decode else "wb") if job.out is not None else None)
        total = np.empty((mix_rate, MIX_CHANNELS), dtype=np.float32)
        group = np.empty_like(total)
        piece = np.empty_like(total)
        for start in range(0, mix_frames, mix_rate):
            n = min(mix_rate, mix_frames - start)
            block = total[:n]
            block[:] = 0.0
            for j, files in enumerate(opened):
                m = min(n, lengths[j] - start)
                if m <= 0:
                    continue
                if len(files) == 1 and written[j] is None:  # a group kept as it is: straight in
                    got = _read_frames(files[0], start, piece[:m])
                    block[:got] += piece[:got]
                    continue
                acc = group[:m]
                acc[:] = 0.0
                for fh in files:
                    got = _read_frames(fh, start, piece[:m])
                    acc[:got] += piece[:got]
                out = written[j]
                out.seek(start * MIX_CHANNELS * 4)
                out.write(memoryview(acc).cast("B"))
                block[:m] += acc
            extractor.feed(block)
    except OSError as exc:
        raise _as_disk_full(exc, "the mix sums") from exc
    finally:
        for files in opened:
            for fh in files:
                fh.close()
        for out in written:
            if out is not None:
                out.close()
    _check_sources()  # nothing rewrote a stored group while it was read
    groups = []
    for j, job in enumerate(jobs):
        if job.out is not None:
            os.truncate(job.out, lengths[j] * MIX_CHANNELS * 4)  # exactly what was written
            groups.append(job.out)
        else:
            groups.append(job.sources[0][0])
    return extractor.finish(), groups, decoded


def _mix_features(sum_files: Iterable[str], mix_rate: int, mix_frames: int, part: str | None = None) -> StemFeatures:
    """Add the workers' partial sums block by block and measure the result (or one half of it)."""
    files = [p for p in sorted(set(sum_files)) if os.path.getsize(p)]
    return _mix_groups([_GroupJob(sources=((p, None),)) for p in files], mix_rate, mix_frames, part)[0]


def _mix_task(sum_files: list[str], mix_rate: int, mix_frames: int, state: _WorkerState | None = None,
              part: str | None = None) -> StemFeatures:
    """Worker: the mix stage (sum the partial sums, measure the mix, or one half of it)."""
    return _mix_features(sum_files, mix_rate, mix_frames, part)


def _measure_mix(workers: "_Pool | None", sum_files: list[str], mix_rate: int, mix_frames: int,
                 meanwhile: Callable[[], None]) -> StemFeatures:
    """The mix's features, running ``meanwhile`` here as they are measured.

    With two or more workers the mix is measured in halves (:data:`~bridge.analyze.features.PARTS`),
    one per worker, each summing the partial sums itself (page-cache reads, cheap): the mix
    stage is the serial tail of a pass, and this halves it.
    """
    from .analyze.features import PARTS, merge_parts

    if workers is None:
        meanwhile()
        return _mix_features(sum_files, mix_rate, mix_frames)
    parts = PARTS if workers.jobs > 1 else (None,)
    futures = [workers.submit(_mix_task, sum_files, mix_rate, mix_frames, None, part) for part in parts]
    meanwhile()
    results = [f.result() for f in futures]
    return merge_parts(*results) if len(results) == 2 else results[0]


def _mix_groups_task(jobs: list[_GroupJob], mix_rate: int, mix_frames: int, state: _WorkerState | None = None):
    """Worker: :func:`_mix_groups` (a pass with a cache)."""
    return _mix_groups(jobs, mix_rate, mix_frames)


# ------------------------------------------------------------------------------------ the session
def analyze_session(paths: Sequence[str | os.PathLike], markers: list[tuple[str, float, float | None]] | None = None,
                    jobs: int | None = None, progress: Callable[[StemResult], None] | None = None,
                    recursive: bool = False, cache: "AnalysisCache | None" = None,
                    masking_memo: dict | None = None) -> SessionResult:
    """Analyse every stem under ``paths`` and the session they make together.

    Parameters
    ----------
    paths : sequence of path
        Stem files and/or folders of stems.
    markers : list of (name, start_s, end_s or None), optional
        Sections; detected from the mix when absent.
    jobs : int, optional
        Worker processes; defaults to the usable cores.  1 runs in this process.
    progress : callable, optional
        Called with each :class:`StemResult` as it completes (cached stems too).
    cache : AnalysisCache, optional
        Serve unchanged stems from here and keep this pass's results and mix sum in it
        (see :mod:`bridge.cache`); only the changed stems are decoded.
    masking_memo : dict, optional
        Masking results per pair of stem contents, kept by the caller between passes (the
        watcher keeps one): with a cache, a re-bounce with one changed stem recomputes only that
        stem's pairs.  Cleared when it grows past :data:`MASKING_MEMO_MAX` pairs.

    Returns
    -------
    SessionResult
    """
    files = find_stems(paths, recursive=recursive)
    jobs = jobs or default_jobs()
    workers = min(jobs, max(len(files), 1))
    # A full pass starts its workers before anything else, so their imports overlap ours.
    pool = _LazyPool(workers, _Pool(workers) if cache is None and workers > 1 else None)
    if masking_memo is not None and len(masking_memo) > MASKING_MEMO_MAX:
        masking_memo.clear()
    try:
        for attempt in range(CHANGED_RERUNS + 1):
            result = finite_result(_analyze_once(files, markers, pool, progress, cache, masking_memo))
            changed = [s for s in result.stems if s.error is not None and s.error.code == StemChanged.code]
            if not changed or attempt == CHANGED_RERUNS:
                return result
            # A stem was rewritten while it was read: the whole pass again (bounded), not a failure.
        return result
    finally:
        pool.close()


def _finite(value):
    """``value`` with every non-finite float inside (dataclasses, tuples) replaced by ``None``;
    the very same object when there is none (no copies for the normal case)."""
    import dataclasses
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple):
        try:  # the common case in one C loop: numbers and None only, all finite (NaN or inf poisons fsum)
            if math.isfinite(math.fsum([v for v in value if v is not None])):
                return value
        except (TypeError, OverflowError):
            pass  # nested values, or finite floats whose sum overflows: one by one
        items = tuple(_finite(v) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            if isinstance(old, (float, tuple)) or dataclasses.is_dataclass(old):
                new = _finite(old)
                if new is not old:
                    changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def finite_result(result: SessionResult) -> SessionResult:
    """The last guard of "measures are finite or null": every measure a plan or a report can see
    (each stem's analysis, the mix's) with non-finite floats as ``None``.  The analysis already
    saturates where overflow is possible; this catches whatever a future measure forgets."""
    from dataclasses import replace

    stems = tuple(s if s.analysis is None else replace(s, analysis=_finite(s.analysis)) for s in result.stems)
    mix = _finite(result.mix)
    if mix is result.mix and all(a.analysis is b.analysis for a, b in zip(stems, result.stems)):
        return result
    return replace(result, stems=stems, mix=mix)


#: How many times a pass is run again because a stem changed while it was read (then the stem's
#: ``E_STEM_CHANGED`` is reported; the watcher's own re-run follows when the file settles).
CHANGED_RERUNS = 2


def _analyze_once(files: list[Path], markers, pool: "_LazyPool", progress, cache: "AnalysisCache | None",
                  masking_memo: dict | None) -> SessionResult:
    # Headers first (cheap), to pick the mix's rate and length before any audio is decoded.
    infos: dict[Path, StemInfo] = {}
    for path in files:
        try:
            infos[path] = open_stem(path)
        except BridgeError:
            pass  # the worker reports it with the same error
    rates = Counter(info.sample_rate for info in infos.values())
    mix_rate = max(rates, key=lambda r: (rates[r], r)) if rates else None
    mix_frames = _frames_at(infos.values(), mix_rate)
    alignment = tuple(f"{i.name}: {i.sample_rate} Hz resampled to {mix_rate} Hz for the mix sum"
                      for i in infos.values() if mix_rate and i.sample_rate != mix_rate)
    if cache is not None:
        for attempt in range(3):
            try:
                return _analyze_incremental(files, infos, mix_rate, mix_frames, alignment, markers, pool,
                                            progress, cache, masking_memo, distrust=attempt > 0)
            except _Stale:
                continue  # a provisional "unchanged" failed its full hash: again, hashing fully
        return _analyze_incremental(files, infos, mix_rate, mix_frames, alignment, markers, pool,
                                    progress, cache, masking_memo, distrust=True)
    return _analyze_full(files, mix_rate, mix_frames, alignment, markers, pool, progress)


def _analyze_full(files: list[Path], mix_rate: int | None, mix_frames: int, alignment: tuple[str, ...], markers,
                  pool: _LazyPool, progress) -> SessionResult:
    results: dict[Path, tuple] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    state = _WorkerState()
    with _scratch_folder() as scratch:
        def _done(path: Path, outcome) -> None:
            if isinstance(outcome, Exception):  # a crashed worker must not sink the batch
                outcome = (None, None, StemReadError(f"{path}: worker failed: {outcome}"), None)
            results[path] = outcome
            _report(progress, path, outcome)

        _run([(extract_stem, (str(p), mix_rate, mix_frames, scratch), p) for p in _longest_first(files)], pool,
             _done, state)
        _raise_disk_full(o[2] for o in results.values())
        ok = [p for p in files if results[p][1] is not None]
        # The mix is as long as the stems that were read whole, whatever the others' headers said.
        mix_frames = _frames_at((results[p][0] for p in ok), mix_rate)
        sum_files = sorted({o[3] for o in results.values() if o[3]})
        if _dirty(sum_files):  # a failed stem's share could not be taken out again: sum the good ones afresh
            fresh = os.path.join(scratch, "again")
            os.mkdir(fresh)
            again: dict = {}
            _run([(_sum_task, (str(p), mix_rate, mix_frames, fresh), p) for p in ok], pool,
                 lambda tag, r: again.__setitem__(tag, r), state)
            _raise_disk_full(getattr(r, "error", r) for r in again.values())
            sum_files = sorted({r.sum_file for r in again.values() if not isinstance(r, Exception) and r.sum_file})
        state.close()
        timings["extract_s"] = time.perf_counter() - started
        names = _unique_names(files)
        stems, features, analysed = _assemble(files, names, {
            p: (results[p][0],) + (results[p][1] if results[p][1] is not None else (None, None)) + (results[p][2],)
            for p in files})
        mark = time.perf_counter()
        good = bool(analysed) and bool(mix_rate)
        # The mix stage in the workers, the masking here, at the same time.
        keys = [f"pass-{uuid.uuid4().hex}-{k}" for k in range(len(analysed))]
        memo: dict = {}
        mix = None
        if good:
            mix = _measure_mix(pool.get(), sum_files, mix_rate, mix_frames,
                               lambda: _prefill_masking(analysed, keys, memo))
        else:
            _prefill_masking(analysed, keys, memo)
        timings["mix_s"] = time.perf_counter() - mark
    mix_analysis = _mix_analysis(analysed, mix, markers, alignment, keys, memo, timings)
    timings["total_s"] = time.perf_counter() - started
    return SessionResult(tuple(stems), mix_analysis, features, timings)


def _longest_first(files: list[Path]) -> list[Path]:
    """The stems in the order to hand them to the workers: largest file first, so the pass does not end
    with one worker reading a long stem while the other waits (longest-processing-time-first)."""
    def size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0  # the worker reports it

    return sorted(files, key=size, reverse=True)


def _raise_disk_full(errors: Iterable) -> None:
    """A stem (or a worker) that hit a full disk fails the pass with ``E_DISK_FULL``, not the stem."""
    for error in errors:
        if isinstance(error, DiskFull):
            raise DiskFull(error.detail)


def _prefill_masking(analysed, keys, memo) -> None:
    from .analyze.session import stem_masking

    if analysed:
        stem_masking(analysed, keys, memo)


def _mix_analysis(analysed, mix, markers, alignment, keys, memo, timings) -> MixAnalysis:
    from .analyze.session import analyze_mix

    mark = time.perf_counter()
    result = analyze_mix(analysed, mix, markers, alignment, stem_keys=keys if keys and all(keys) else None,
                         masking_memo=memo)
    timings["cross_stem_s"] = time.perf_counter() - mark
    return result


def _assemble(files: list[Path], names: dict[Path, str], outcomes: dict[Path, tuple]):
    """``(info, analysis, features, error)`` per path -> StemResults, the features dict, the analysed list."""
    stems: list[StemResult] = []
    features: dict[str, StemFeatures] = {}
    analysed: list[tuple[str, StemFeatures, StemAnalysis]] = []
    for path in files:
        info, analysis, feats, error = outcomes[path]
        name = names[path]
        stems.append(StemResult(name, path, info, analysis, error))
        if analysis is not None:
            features[name] = feats
            analysed.append((name, feats, analysis))
    return stems, features, analysed


# ------------------------------------------------------------------------------------ incremental
# With a cache (bridge/cache.py), a pass decodes only what changed.  The mix is kept as a float32
# sum on disk; a changed stem's old contribution is subtracted (decoded from the cache's snapshot
# of its old samples) and the new one added, so the mix measures equal a full pass's.  See docs/cache.md.


@dataclass(slots=True)
class _Worked:
    """What a cache-aware worker task hands back to the main process."""

    info: StemInfo | None = None
    analysis: StemAnalysis | None = None
    features: StemFeatures | None = None
    error: BridgeError | None = None
    sum_file: str | None = None
    sha256: str | None = None
    stat: list[int] | None = None
    fingerprint: str | None = None
    crc32: int | None = None
    from_cache: bool = False
    stored: bool = False


class _MixUnavailable(Exception):
    """The incremental mix cannot be trusted; the caller sums the mix afresh."""


class _Stale(Exception):
    """A file taken as unchanged from its sampled blocks failed its full hash: the pass is redone."""


def _sum_stem(info: StemInfo, mix_rate: int, partial: _PartialSum, sign: float = 1.0) -> bool:
    """Add (or subtract) one stem's whole contribution; on a read failure undo it and return False.

    A full disk is not a read failure: ``E_DISK_FULL`` propagates (the pass fails, not the stem).
    """
    add = _mix_stream(info, mix_rate, partial, sign)
    done = 0
    try:
        for block in read_blocks(info):
            add(block)
            done += len(block)
        add(None)
        return True
    except DiskFull:
        raise
    except BridgeError:
        if done and sign > 0 and not _undo_partial(info, mix_rate, partial, done):
            _mark_dirty(partial)
        return False  # a failed subtraction is the caller's to handle: it drops the sum


def _sum_task(path: str, mix_rate: int, mix_frames: int, sum_folder: str, group_stems: int | None = None,
              state: _WorkerState | None = None) -> _Worked:
    """Worker: decode a stem the cache already knows, only to add it into the mix sum."""
    partial = _state(state).partial_sum(sum_folder, mix_frames, group_stems)
    try:
        info = open_stem(path)
        ok = _sum_stem(info, mix_rate, partial)
    except BridgeError as exc:
        return _Worked(error=exc, sum_file=str(partial.path))
    return _Worked(info=info, sum_file=str(partial.path),
                   error=None if ok else StemReadError(f"{path}: could not be read again for the mix"))


def _extract_cached(path: str, mix_rate: int | None, mix_frames: int, sum_folder: str | None,
                    cache_folder: str, group_stems: int | None = None, state: _WorkerState | None = None) -> _Worked:
    """Worker: hash a stem; serve it from the cache if known, else analyse it and store it.

    The entry is stored only when the file's stat is the same after the analysis as before the
    hash: an entry always describes the bytes it was keyed by.
    """
    try:
        return _extract_cached_once(path, mix_rate, mix_frames, sum_folder, cache_folder, group_stems, state)
    except DiskFull as exc:
        return _Worked(error=exc)


def _extract_cached_once(path: str, mix_rate: int | None, mix_frames: int, sum_folder: str | None,
                         cache_folder: str, group_stems: int | None, state: _WorkerState | None) -> _Worked:
    from .cache import HEADER_FIELDS, AnalysisCache, fingerprint, hash_and_crc, stat_key
    from .files import is_disk_full

    cache = AnalysisCache(cache_folder)
    source = Path(path)
    partial = _state(state).partial_sum(sum_folder, mix_frames, group_stems) if sum_folder and mix_rate else None
    sum_file = str(partial.path) if partial is not None else None
    sha = before = print_ = crc = None
    try:
        before = stat_key(source)
        sha, crc = hash_and_crc(source)
        print_ = fingerprint(source)
    except OSError:
        sha = None
    try:
        info = open_stem(path)
    except BridgeError as exc:
        return _Worked(error=exc, sum_file=sum_file)
    entry = cache.load(sha) if sha is not None else None
    if entry is not None:  # an identical re-render: same bytes, new stat
        worked = _Worked(info=info, analysis=entry.analysis, features=entry.features, sha256=sha, stat=before,
                         fingerprint=print_, crc32=crc, from_cache=True, stored=True, sum_file=sum_file)
        if partial is not None and not _sum_stem(info, mix_rate, partial):
            worked = _Worked(info=info, error=StemReadError(f"{path}: could not be read for the mix"), sum_file=sum_file)
        return worked
    worked = _Worked(info=info, sha256=sha, stat=before, fingerprint=print_, crc32=crc, sum_file=sum_file)
    try:
        worked.analysis, worked.features = _measure(info, mix_rate, partial)
    except BridgeError as exc:
        worked.error = exc
    if sha is None or worked.error is not None:
        return worked
    try:
        unchanged = stat_key(source) == before
    except OSError:
        unchanged = False
    if unchanged:
        build = None
        try:
            build = cache.new_build()
            cache.commit(build, sha, {k: getattr(info, k) for k in HEADER_FIELDS}, worked.analysis, worked.features,
                         before[0])
        except OSError as exc:  # the entry is not stored; a full disk fails the pass (scratch removed)
            if build is not None:
                cache.discard(build)
            if is_disk_full(exc):
                raise _as_disk_full(exc, cache.folder) from exc
        worked.stored = cache.entry_dir(sha).is_dir()
    return worked


def _analyze_incremental(files: list[Path], infos: dict[Path, StemInfo], mix_rate: int | None, mix_frames: int,
                         alignment: tuple[str, ...], markers, pool: _LazyPool,
                         progress: Callable[[StemResult], None] | None, cache: "AnalysisCache",
                         masking_memo: dict | None, distrust: bool = False) -> SessionResult:
    """:func:`_analyze_cached`, and on any failure (a full disk, an interruption) the scratch it left in the
    cache removed: the pass's sums folder, build folders of workers that are gone."""
    made: list[Path] = []
    try:
        return _analyze_cached(files, infos, mix_rate, mix_frames, alignment, markers, pool, progress, cache,
                               masking_memo, distrust, made)
    except BaseException as exc:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        cache.clean_tmp()
        if isinstance(exc, OSError) and not isinstance(exc, BridgeError):
            error = _as_disk_full(exc, cache.folder)
            if isinstance(error, DiskFull):
                raise error from exc
        raise


def _analyze_cached(files: list[Path], infos: dict[Path, StemInfo], mix_rate: int | None, mix_frames: int,
                    alignment: tuple[str, ...], markers, pool: _LazyPool,
                    progress: Callable[[StemResult], None] | None, cache: "AnalysisCache",
                    masking_memo: dict | None, distrust: bool, made: list[Path]) -> SessionResult:
    """:func:`analyze_session` with a cache: decode only the stems whose bytes are new.

    Which content is each file?  Unchanged stat: the recorded hash.  Stat moved but size and
    sampled blocks agree (REAPER rewrote every stem of a bounce): the recorded hash,
    provisionally, while threads hash those files in full beside the pass; a disagreement raises
    :class:`_Stale` before anything is recorded, and the caller runs the pass again with
    ``distrust`` (full hashes only).  Otherwise the file is hashed in full.

    The mix: the groups whose members all stay are kept as they are; a group that lost a member
    is summed again from its other members (decoded from their files, unchanged on disk); new
    contents make a group of their own (:func:`_regroup`).  One worker does that and measures the
    mix while the others analyse the changed stems.
    """
    from .cache import GroupSum, crc_file, fingerprint, group_plan, hash_and_crc, stat_key

    started = time.perf_counter()
    timings: dict[str, float] = {}
    cache.clean_tmp()
    state = cache.load_mix_state(mix_rate, mix_frames) if mix_rate else None

    def _hash(path: Path):
        try:
            stat = stat_key(path)
            sha, crc = hash_and_crc(path)
            print_ = fingerprint(path)
            return path, stat, sha, print_, crc, stat_key(path) == stat
        except OSError:
            return path, None, None, None, None, False

    def _confirm(path: Path):
        try:
            stat = stat_key(path)
            crc = crc_file(path)
            return path, stat, crc, stat_key(path) == stat
        except OSError:
            return path, None, None, False

    known: dict[Path, str] = {}
    stats: dict[Path, list[int]] = {}
    prints: dict[Path, str] = {}
    crcs: dict[Path, int] = {}
    provisional: dict[Path, tuple[str, str, int]] = {}
    for path in infos:
        sha = cache.known_hash(path)
        if sha is not None:
            known[path] = sha
            continue
        probable = None if distrust else cache.probable_hash(path)
        if probable is not None:
            provisional[path] = probable
            known[path] = probable[0]
    unknown = [p for p in infos if p not in known] if state is not None else []
    hashers = ThreadPoolExecutor(2) if provisional or unknown else None
    # The changed files first: the mix plan waits for their hashes, the provisional checks only
    # have to be done before anything is recorded.
    for path, stat, sha, print_, crc, steady in hashers.map(_hash, unknown) if unknown else ():
        if sha is not None and steady:
            known[path], stats[path], prints[path], crcs[path] = sha, stat, print_, crc
    checks = [hashers.submit(_confirm, p) for p in provisional] if provisional else []
    for path in known:
        if path not in stats:
            try:
                stats[path] = stat_key(path)
            except OSError:
                pass

    entries = {}
    for path, sha in known.items():
        entry = cache.load(sha)
        info = infos[path]
        if entry is not None and all(entry.header[k] == getattr(info, k) for k in entry.header):
            entries[path] = entry
    timings["lookup_s"] = time.perf_counter() - started

    outcomes: dict[Path, _Worked] = {}
    names = _unique_names(files)

    def _finish(path: Path, worked: _Worked) -> None:
        outcomes[path] = worked
        if progress is not None:
            progress(StemResult(stem_label(path), path, worked.info, None, worked.error))

    for path, entry in entries.items():
        _finish(path, _Worked(info=infos[path], analysis=entry.analysis, features=entry.features,
                              sha256=entry.sha256, stat=stats.get(path), fingerprint=prints.get(path),
                              crc32=crcs.get(path), from_cache=True, stored=True))
    todo = [p for p in files if p not in entries]
    stem_bytes = sum(stats[p][0] if p in stats else os.path.getsize(p) for p in infos if p.exists())
    group_stems, most_groups = group_plan(len(infos), stem_bytes, mix_frames)

    mix: StemFeatures | None = None
    groups: list[GroupSum] | None = None
    consistent = True
    worker_state = _WorkerState()
    memo = masking_memo if masking_memo is not None else {}
    build = cache.new_build()  # this pass's sums, renamed into mix/ only when the state records them
    made.append(build)
    # The mix plan: incremental when the last groups are there and every content is known.
    layout = None
    if state is not None and all(p in known and p in stats for p in infos):
        layout = _regroup(state, {p: known[p] for p in infos}, stats, most_groups, build)
    incremental = layout is not None
    sum_folder = None if incremental else str(build)
    mix_future = None
    mix_inline = None
    if incremental and layout.changed:
        workers = pool.get()
        args = (list(layout.jobs), mix_rate, mix_frames)
        if workers is not None:
            mix_future = workers.submit(_mix_groups_task, *args)
        else:
            mix_inline = args
    tasks: list[tuple[Callable, tuple, object]] = [
        (_extract_cached, (str(path), mix_rate, mix_frames, sum_folder, str(cache.folder), group_stems), path)
        for path in todo]
    if not incremental and mix_rate:
        for path in entries:
            tasks.append((_sum_task, (str(path), mix_rate, mix_frames, str(build), group_stems), ("sum", path)))
    sum_files: dict[str, list[Path]] = {}
    full: list[DiskFull] = []

    def _done(tag, result) -> None:
        nonlocal consistent
        if isinstance(result, DiskFull) or isinstance(getattr(result, "error", None), DiskFull):
            full.append(result if isinstance(result, DiskFull) else result.error)
        path = tag[1] if isinstance(tag, tuple) else tag
        if isinstance(tag, tuple):  # a cached stem summed for the mix
            if isinstance(result, Exception) or result.error is not None:
                consistent = False  # the sum lacks a stem the results have: re-summed below
            elif result.sum_file:
                sum_files.setdefault(result.sum_file, []).append(path)
        else:
            if isinstance(result, Exception):
                result = _Worked(error=StemReadError(f"{tag}: worker failed: {result}"))
            if result.sum_file and result.analysis is not None:
                sum_files.setdefault(result.sum_file, []).append(path)
            _finish(tag, result)

    _run(tasks, pool, _done, worker_state)
    _raise_disk_full(full)
    timings["extract_s"] = time.perf_counter() - started - timings["lookup_s"]
    mark = time.perf_counter()
    ok_paths = [p for p in files if outcomes[p].analysis is not None]
    ok_shas = [outcomes[p].sha256 for p in ok_paths]
    keys = [outcomes[p].sha256 for p in ok_paths]
    stems, features, analysed = _assemble(files, names, {
        p: (outcomes[p].info, outcomes[p].analysis, outcomes[p].features, outcomes[p].error) for p in files})
    prefill = all(keys) and bool(analysed)
    if prefill and mix_future is not None:
        _prefill_masking(analysed, keys, memo)  # here, while a worker measures the mix
        prefill = False
    if incremental and not layout.changed:
        mix, groups = state.features, list(state.groups)
    elif incremental:
        try:
            measured = mix_future.result() if mix_future is not None else _mix_groups(*mix_inline)
        except _MixUnavailable:
            measured = None
        except DiskFull:
            raise
        except Exception:  # noqa: BLE001 - a crashed worker: the mix is summed afresh below
            measured = None
        if measured is not None:
            mix, written, decoded = measured
            groups = layout.groups(written, decoded)
    if groups is not None and sorted(m for g in groups for m in g.members) != sorted(ok_shas):
        mix = groups = None  # a stem decoded for the analysis but not for the mix (or back)
    if incremental and mix is None or not incremental and _dirty(sum_files):
        # The incremental update could not be trusted, or a failed stem's share could not be
        # taken out of a scratch sum: sum every good stem afresh.
        consistent = True
        fresh = Path(build) / "again"
        fresh.mkdir(exist_ok=True)
        sum_files = {}
        sum_tasks = [(_sum_task, (str(p), mix_rate, mix_frames, str(fresh), group_stems), ("sum", p))
                     for p in ok_paths]
        _run(sum_tasks, pool, _done, worker_state)
        _raise_disk_full(full)
        incremental = False
    worker_state.close()
    if not incremental and ok_paths and mix_rate:
        # Summed afresh: as long as the stems that were read whole, whatever the others' headers said.
        mix_frames = _frames_at((outcomes[p].info for p in ok_paths), mix_rate)
        parts = [(f, [outcomes[p].sha256 for p in members]) for f, members in sorted(sum_files.items())
                 if os.path.getsize(f)]
        jobs, members = _merge_scratch(parts, most_groups - 1, build)
        workers = pool.get()
        future = workers.submit(_mix_groups_task, jobs, mix_rate, mix_frames) if workers else None
        if prefill:
            _prefill_masking(analysed, keys, memo)  # here, while a worker measures the mix
        mix, written, _ = future.result() if future is not None else _mix_groups(jobs, mix_rate, mix_frames)
        groups = [GroupSum(Path(f), tuple(m)) for f, m in zip(written, members)]
    timings["mix_s"] = time.perf_counter() - mark

    # Every provisional "unchanged" must pass its full-file CRC before anything is recorded.
    for check in checks:
        path, stat, crc, steady = check.result()
        _, print_, recorded = provisional[path]
        if crc != recorded or not steady:
            cache.forget(path)
            cache.save_index()
            hashers.shutdown()
            raise _Stale(str(path))
        stats[path], prints[path], crcs[path] = stat, print_, crc
        if path in outcomes and outcomes[path].from_cache:
            outcomes[path].stat, outcomes[path].fingerprint, outcomes[path].crc32 = stat, print_, crc
    if hashers is not None:
        hashers.shutdown()

    # Remember what is now known; keep the mix for the next pass only if nothing moved during the
    # pass and every member's entry is stored.
    for path in ok_paths:
        worked = outcomes[path]
        if worked.stored and worked.stat is not None and worked.fingerprint is not None and worked.crc32 is not None:
            cache.remember(path, worked.stat, worked.sha256, worked.fingerprint, worked.crc32)
        if worked.sha256 != known.get(path, worked.sha256):
            consistent = False
    storable = (mix is not None and consistent and groups is not None and None not in ok_shas
                and all(outcomes[p].stored for p in ok_paths))
    if storable and not (state is not None and groups == list(state.groups)):
        # New sums move into mix/ (a rename moves ctime: their stat is taken there); kept ones keep theirs.
        groups = [g if g.stat is not None else cache.adopt_sum(g) for g in groups]
        cache.save_mix_state(mix_rate, mix_frames, groups, mix)
    elif not storable:
        cache.drop_mix_state()
    shutil.rmtree(build, ignore_errors=True)
    made.clear()
    cache.save_index()
    cache.evict(keep={s for s in ok_shas if s})

    mix_analysis = _mix_analysis(analysed, mix, markers, alignment, keys if all(keys) else None, memo, timings)
    timings["total_s"] = time.perf_counter() - started
    reanalysed = tuple(names[p] for p in files if not outcomes[p].from_cache)
    cached = tuple(names[p] for p in files if outcomes[p].from_cache)
    return SessionResult(tuple(stems), mix_analysis, features, timings, reanalysed, cached)


@dataclass(frozen=True, slots=True)
class _Layout:
    """The next pass's groups, planned from the last ones (:func:`_regroup`)."""

    jobs: tuple[_GroupJob, ...]
    kept_members: tuple[tuple[str, ...], ...]  #: per job, the members already in its source files
    changed: bool

    def groups(self, written: list[str], decoded: list[str]) -> list["GroupSum"]:
        """The groups as written: each job's kept members plus the stems it decoded successfully."""
        from .cache import GroupSum

        done = Counter(decoded)
        out = []
        for job, kept, path in zip(self.jobs, self.kept_members, written):
            members = list(kept)
            for _, sha, _ in job.decode:
                if done[sha] > 0:
                    done[sha] -= 1
                    members.append(sha)
            if members:
                kept_stat = job.sources[0][1] if job.out is None else None  # a stored group kept as it is
                out.append(GroupSum(Path(path), tuple(members), kept_stat))
        return out


def _regroup(state, contents: dict[Path, str], stats: dict[Path, list[int]], most: int, build: Path) -> _Layout | None:
    """Plan the groups for ``contents`` (path -> hash) from the last pass's ``state``.

    Groups whose members all stay are kept as they are; a group that lost a member is summed again
    from its remaining members; the new contents form a group of their own, so re-bouncing the same
    stem again decodes only that stem.  Beyond ``most`` groups, the two smallest (never the new one)
    are merged (their files added, nothing decoded).  ``None`` when that would decode more than half
    of the stems: a full re-sum on every worker is then quicker.
    """
    from .cache import members_delta

    to_add, to_subtract = members_delta(state.members, list(contents.values()))
    if not to_add and not to_subtract:
        return _Layout((), (), False)
    paths: dict[str, list[Path]] = {}
    for path, sha in contents.items():
        paths.setdefault(sha, []).append(path)
    remaining = [list(g.members) for g in state.groups]
    touched = [False] * len(state.groups)
    for sha in to_subtract:
        j = next(j for j, members in enumerate(remaining) if sha in members)
        remaining[j].remove(sha)
        touched[j] = True
    plans: list[tuple[list, list, list]] = []  # (sources, decode, kept members)
    for group, members, hit in zip(state.groups, remaining, touched):
        if not hit:
            for sha in members:
                paths[sha].pop()
            plans.append(([(str(group.path), group.stat)], [], list(members)))
    decodes = 0
    for members, hit in zip(remaining, touched):
        if hit and members:
            decode = [(str(p), sha, stats[p]) for sha in members for p in [paths[sha].pop()]]
            plans.append(([], decode, []))
            decodes += len(decode)
    fresh = ([], [(str(p), sha, stats[p]) for sha in to_add for p in [paths[sha].pop()]], [])
    decodes += len(fresh[1])
    if decodes > max(2, len(contents) // 2):
        return None
    while len(plans) + bool(fresh[1]) > most and len(plans) >= 2:
        plans.sort(key=lambda p: len(p[1]) + len(p[2]))
        (s1, d1, k1), (s2, d2, k2) = plans[0], plans[1]
        plans[:2] = [(s1 + s2, d1 + d2, k1 + k2)]
    if fresh[1]:
        plans.append(fresh)
    jobs, kept = [], []
    for sources, decode, members in plans:
        out = None if len(sources) == 1 and not decode else str(build / f"group-{uuid.uuid4().hex[:12]}.f32")
        jobs.append(_GroupJob(tuple(sources), tuple(decode), out))
        kept.append(tuple(members))
    return _Layout(tuple(jobs), tuple(kept), True)


def _merge_scratch(parts: list[tuple[str, list[str]]], aim: int, build: Path
                   ) -> tuple[list[_GroupJob], list[list[str]]]:
    """A full pass's scratch sums (file, member hashes) as group jobs: each kept as it is, the two
    smallest merged while there are more than ``aim`` (workers leave a part-filled one each)."""
    plans = [([f], list(m)) for f, m in parts]
    while len(plans) > max(1, aim) and len(plans) >= 2:
        plans.sort(key=lambda p: len(p[1]))
        (f1, m1), (f2, m2) = plans[0], plans[1]
        plans[:2] = [(f1 + f2, m1 + m2)]
    jobs = [_GroupJob(tuple((f, None) for f in files),
                      out=None if len(files) == 1 else str(build / f"group-{uuid.uuid4().hex[:12]}.f32"))
            for files, _ in plans]
    return jobs, [m for _, m in plans]


def _report(progress, path: Path, outcome: tuple) -> None:
    if progress is None:
        return
    info, _, error, _ = outcome
    progress(StemResult(stem_label(path), path, info, None, error))




def stem_views(result: SessionResult, roles: dict[str, str] | None = None, manual: Sequence[str] = (),
               sources: dict[str, str] | None = None, hear: bool = True):
    """The planner's view of each stem: role (given, named or heard), analysis or error, section
    levels, and the per-frame arrays the predicted mix works on (band energies, K-weighted energies).

    Roles are decided by :func:`bridge.suggest.hearing.decide_roles` (the roles file, then a clear
    name, then the ear for names that say nothing); ``hear=False`` decides by names alone.
    """
    from .analyze.descriptors import describe
    from .suggest.hearing import decide_roles, shipped_model
    from .suggest.model import StemView

    model = shipped_model() if hear else None
    vectors = []
    for stem in result.stems:
        feats = result.features.get(stem.name)
        usable = model is not None and stem.analysis is not None and feats is not None
        vectors.append((stem.name, describe(feats, stem.analysis) if usable else None))
    decisions = decide_roles(vectors, roles, sources, model)
    views = []
    for stem in result.stems:
        section_lufs = tuple(
            (lev.section.name, lev.section.start_s, lev.section.end_s, dict(lev.stem_lufs).get(stem.name), lev.mix_lufs)
            for lev in result.mix.sections)
        error = (stem.error.code, stem.error.message) if stem.error is not None else None
        feats = result.features.get(stem.name)
        decision = decisions[stem.name]
        views.append(StemView(
            stem.name, decision.role, stem.analysis, error, stem.name in manual, section_lufs,
            role_source=decision.source, role_probability=decision.probability,
            role_findings=(decision.finding,) if decision.finding is not None else (),
            band_power=feats.band_power if feats is not None else None,
            subhop_power=feats.subhop_power if feats is not None else None,
            low_signal=feats.low_signal if feats is not None else None,
            sample_rate=feats.sample_rate if feats is not None else 48000))
    return views


def analyze_reference(path: str | os.PathLike):
    """Measure a reference track like a stem (its own features only; it is not summed)."""
    from .errors import InputFileError

    info, measured, error, _ = extract_stem(str(path))
    if error is not None:
        raise InputFileError(f"{path}: {error.code}: {error.message}", code="E_REFERENCE")
    analysis, _ = measured
    if analysis.loudness.integrated_lufs is None:
        raise InputFileError(f"{path}: the reference is silent", code="E_REFERENCE")
    return analysis


def plan_session(result: SessionResult, role_config=None, amount: float = 1.0, reference_path=None,
                 hear: bool = True):
    """Analysis -> MixPlan, with roles and groups from the config and an optional reference track.

    ``hear=False`` leaves stems whose names say nothing neutral instead of asking the role recogniser.
    """
    from .config import RoleConfig
    from .suggest.plan import PlanSettings, build_plan
    from .suggest.reference import compare

    role_config = role_config or RoleConfig()
    views = stem_views(result, role_config.roles, role_config.manual, role_config.sources, hear)
    comparison = None
    if reference_path is not None and result.mix.summed is not None:
        comparison = compare(result.mix.summed, analyze_reference(reference_path), Path(reference_path).stem)
    from .report import analysis_id

    settings = PlanSettings(amount=amount, role_offsets=dict(role_config.role_offsets), manual=role_config.manual,
                            groups=dict(role_config.groups))
    return build_plan(views, result.mix, settings, None, analysis_id(result), comparison, role_config.groups_source)
