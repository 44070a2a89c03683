"""The one place that wires the stages together: stems on disk -> features -> analyses.

Each stem is read once, in one-second blocks, by a worker process (one per core).  While it is
read it is reduced to :class:`~bridge.analyze.features.StemFeatures`, and also added into the
worker's running stereo sum of the session, kept in a scratch file on disk.  After the stems, the
main process adds those few partial sums block by block and measures the result as "the mix".
No stem is ever held whole in memory and none is decoded twice.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from .analyze.features import FeatureExtractor, StemFeatures
from .analyze.resample import StreamResampler
from .analyze.session import analyze_mix
from .analyze.stem import StemAnalysis, analyze_stem
from .errors import BridgeError, StemReadError
from .model import SessionResult, StemResult
from .report import analysis_id
from .stems import StemInfo, find_stems, open_stem, read_blocks
from .tracks import stem_names as _unique_names  # the one naming rule (the plan's tracks use it too)

if TYPE_CHECKING:
    from .cache import AnalysisCache

#: Channels of the summed mix.
MIX_CHANNELS = 2
_SQRT_HALF = np.float32(np.sqrt(0.5))


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


class _PartialSum:
    """A float32 stereo scratch file that stems are added into at their frame offsets.

    Reads and writes go straight between the file and one reusable array (``readinto`` /
    ``write`` of a memoryview), so adding a stem costs little more than the page-cache copies.
    """

    def __init__(self, path: Path, frames: int):
        self.path = path
        if not path.exists():
            with open(path, "wb") as fh:
                fh.truncate(frames * MIX_CHANNELS * 4)
        self._fh = open(path, "r+b", buffering=0)
        self.frames = frames
        self._buffer = np.zeros((0, MIX_CHANNELS), dtype=np.float32)

    def add(self, offset: int, block: np.ndarray, sign: float = 1.0) -> None:
        n = min(len(block), self.frames - offset)
        if n <= 0:
            return
        if len(self._buffer) < n:
            self._buffer = np.zeros((n, MIX_CHANNELS), dtype=np.float32)
        current = self._buffer[:n]
        self._fh.seek(offset * MIX_CHANNELS * 4)
        self._fh.readinto(memoryview(current).cast("B"))
        if sign > 0:
            np.add(current, block[:n], out=current)
        else:
            np.subtract(current, block[:n], out=current)
        self._fh.seek(offset * MIX_CHANNELS * 4)
        view = memoryview(current).cast("B")
        while view:
            view = view[self._fh.write(view):]

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


_WORKER_SUMS: dict[str, _PartialSum] = {}


def _sum_for(folder: str, frames: int) -> _PartialSum:
    # One scratch sum per process and thread: two writers must never read-modify-write one file.
    tag = f"{os.getpid()}-{threading.get_ident()}"
    key = f"{folder}:{tag}"
    if key not in _WORKER_SUMS:
        _WORKER_SUMS[key] = _PartialSum(Path(folder) / f"sum-{tag}.f32", frames)
    return _WORKER_SUMS[key]


def _mix_stream(stem: StemInfo, mix_rate: int, partial: _PartialSum | None, sign: float = 1.0,
                stop_after: int | None = None):
    """Return a function that adds each block of ``stem`` into ``partial`` at the mix rate."""
    resampler = StreamResampler(stem.sample_rate, mix_rate, MIX_CHANNELS) if stem.sample_rate != mix_rate else None
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


def extract_stem(path: str, mix_rate: int | None = None, mix_frames: int = 0,
                 sum_folder: str | None = None) -> tuple[StemInfo | None, StemFeatures | None, BridgeError | None, str | None]:
    """Read one stem once: features, plus its share of the mix sum.  Runs in a worker process.

    Returns ``(info, features, error, sum_file)``; a failed stem leaves no trace in the sum.
    The features come back slimmed to what cross-stem analysis needs (see :func:`analyze_stem_task`).
    """
    partial = _sum_for(sum_folder, mix_frames) if sum_folder and mix_rate else None
    info = None
    added = 0
    try:
        info = open_stem(path)
        extractor = FeatureExtractor(info.sample_rate, info.channels)
        add = _mix_stream(info, mix_rate or info.sample_rate, partial)
        for block in read_blocks(info):
            extractor.feed(block)
            add(block)
            added += len(block)
        add(None)
        if partial is not None:
            partial.flush()
        features = extractor.finish()
        return info, (analyze_stem(features), features.slim()), None, str(partial.path) if partial else None
    except BridgeError as exc:
        if partial is not None and info is not None and added:
            _undo_partial(info, mix_rate, partial, added)
        if partial is not None:
            partial.flush()
        return info, None, exc, str(partial.path) if partial else None


def _undo_partial(info: StemInfo, mix_rate: int, partial: _PartialSum, frames: int) -> None:
    """Subtract what a stem that failed mid-way had already added to the sum."""
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
        pass
    # No resampler flush here: the failed pass never flushed its resampler either.


def _mix_features(sum_files: Iterable[str], mix_rate: int, mix_frames: int,
                  out_path: Path | None = None) -> StemFeatures:
    """Add the workers' partial sums block by block and measure the result.

    With ``out_path`` the total is also written there (the cache keeps it for the next pass).
    """
    extractor = FeatureExtractor(mix_rate, MIX_CHANNELS)
    handles = [open(p, "rb") for p in sorted(set(sum_files))]
    out = open(out_path, "wb") if out_path is not None else None
    try:
        block_frames = mix_rate
        for start in range(0, mix_frames, block_frames):
            n = min(block_frames, mix_frames - start)
            total = np.zeros((n, MIX_CHANNELS), dtype=np.float32)
            for fh in handles:
                raw = fh.read(n * MIX_CHANNELS * 4)
                part = np.frombuffer(raw, dtype=np.float32)
                total[: len(part) // MIX_CHANNELS] += part.reshape(-1, MIX_CHANNELS)
            extractor.feed(total)
            if out is not None:
                out.write(memoryview(total).cast("B"))
    finally:
        for fh in handles:
            fh.close()
        if out is not None:
            out.close()
    return extractor.finish()


def _pool(jobs: int) -> ProcessPoolExecutor:
    # One BLAS thread per worker: the workers already fill the cores.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # Workers fork from a server that has already imported the analysis (0.7 s of scipy):
        # the first pool of a process pays it once, every later pool starts in milliseconds.
        context.set_forkserver_preload(["bridge.pipeline"])
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_quiet_interrupt)


class WorkerInterrupted(SystemExit):
    """Ctrl-C reached a worker (SIGINT goes to the whole process group).  A ``SystemExit``, so an idle
    worker ends without a traceback, its locks released on the way out; raised inside a task it comes
    back as that task's outcome, and the session treats the pass as interrupted."""


def _quiet_interrupt() -> None:
    """Worker initializer: Ctrl-C raises :class:`WorkerInterrupted` instead of ``KeyboardInterrupt``."""
    import signal

    def interrupted(*_):
        raise WorkerInterrupted(1)

    signal.signal(signal.SIGINT, interrupted)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


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
        Masking results per pair of stem contents, owned by the caller (the session) and reused
        across its passes; without one the module-level memo is used (with a cache only).

    Returns
    -------
    SessionResult
    """
    files = find_stems(paths, recursive=recursive)
    jobs = jobs or default_jobs()
    # Headers first (cheap), to pick the mix's rate and length before any audio is decoded.
    infos: dict[Path, StemInfo] = {}
    for path in files:
        try:
            infos[path] = open_stem(path)
        except BridgeError:
            pass  # the worker reports it with the same error
    rates = Counter(info.sample_rate for info in infos.values())
    mix_rate = max(rates, key=lambda r: (rates[r], r)) if rates else None
    mix_frames = max((int(np.ceil(i.duration_s * mix_rate)) for i in infos.values()), default=0)
    alignment = tuple(f"{i.name}: {i.sample_rate} Hz resampled to {mix_rate} Hz for the mix sum"
                      for i in infos.values() if mix_rate and i.sample_rate != mix_rate)
    if cache is not None:
        return _analyze_incremental(files, infos, mix_rate, mix_frames, alignment, markers, jobs, progress, cache,
                                    _MASKING_MEMO if masking_memo is None else masking_memo)

    results: dict[Path, tuple] = {}
    sum_files: set[str] = set()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mixbridge-sum-") as scratch:
        args = [(str(p), mix_rate, mix_frames, scratch) for p in files]
        if jobs <= 1 or len(files) <= 1:
            outcomes = (extract_stem(*a) for a in args)
            for path, outcome in zip(files, outcomes):
                results[path] = outcome
                _report(progress, path, outcome)
        else:
            with _pool(min(jobs, len(files))) as pool:
                futures = {pool.submit(extract_stem, *a): Path(a[0]) for a in args}
                from concurrent.futures import as_completed
                for future in as_completed(futures):
                    path = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # a crashed worker must not sink the batch
                        outcome = (None, None, StemReadError(f"{path}: worker failed: {exc}"), None)
                    results[path] = outcome
                    _report(progress, path, outcome)
        for outcome in results.values():
            if outcome[3]:
                sum_files.add(outcome[3])
        for partial in list(_WORKER_SUMS.values()):
            partial.close()
        _WORKER_SUMS.clear()
        good = [p for p in files if results[p][1] is not None]
        timings["extract_s"] = time.perf_counter() - started
        mix = _mix_features(sum_files, mix_rate, mix_frames) if good and mix_rate else None
        timings["mix_s"] = time.perf_counter() - started - timings["extract_s"]

    stems: list[StemResult] = []
    features: dict[str, StemFeatures] = {}
    analysed: list[tuple[str, StemFeatures, StemAnalysis]] = []
    names = _unique_names(files)
    for path in files:
        info, measured, error, _ = results[path]
        name = names[path]
        analysis, feats = measured if measured is not None else (None, None)
        stems.append(StemResult(name, path, info, analysis, error))
        if feats is not None:
            features[name] = feats
            analysed.append((name, feats, analysis))
    mark = time.perf_counter()
    mix_analysis = analyze_mix(analysed, mix, markers, alignment)
    timings["cross_stem_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    return SessionResult(tuple(stems), mix_analysis, features, timings)


# ------------------------------------------------------------------------------------ incremental
# With a cache (bridge/cache.py), a pass decodes only what changed.  The mix is kept as a float32
# sum on disk; a changed stem's old contribution is subtracted (decoded from the cache's snapshot
# of its old bytes) and the new one added, so the mix measures equal a full pass's.  See docs/cache.md.


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
    from_cache: bool = False
    stored: bool = False


class _MixUnavailable(Exception):
    """The incremental mix cannot be trusted; the caller sums the mix afresh."""


def _sum_stem(info: StemInfo, mix_rate: int, partial: _PartialSum, sign: float = 1.0) -> bool:
    """Add (or subtract) one stem's whole contribution; on a read failure undo it and return False."""
    add = _mix_stream(info, mix_rate, partial, sign)
    done = 0
    try:
        for block in read_blocks(info):
            add(block)
            done += len(block)
        add(None)
        return True
    except BridgeError:
        if done and sign > 0:
            _undo_partial(info, mix_rate, partial, done)
        return False  # a failed subtraction is the caller's to handle: it drops the sum


def _sum_task(path: str, mix_rate: int, mix_frames: int, sum_folder: str) -> _Worked:
    """Worker: decode a stem the cache already knows, only to add it into the mix sum."""
    partial = _sum_for(sum_folder, mix_frames)
    try:
        info = open_stem(path)
        ok = _sum_stem(info, mix_rate, partial)
    except BridgeError as exc:
        partial.flush()
        return _Worked(error=exc, sum_file=str(partial.path))
    partial.flush()
    return _Worked(info=info, sum_file=str(partial.path),
                   error=None if ok else StemReadError(f"{path}: could not be read again for the mix"))


def _extract_cached(path: str, mix_rate: int | None, mix_frames: int, sum_folder: str | None,
                    cache_folder: str) -> _Worked:
    """Worker: snapshot and hash a stem into the cache; serve it from there if known, else analyse and store.

    The snapshot and the hash come from one read, and the entry is stored only when the file's
    stat is the same after the analysis as before the snapshot: an entry always describes the
    bytes it holds.
    """
    from .cache import AnalysisCache, copy_and_hash, stat_key

    cache = AnalysisCache(cache_folder)
    source = Path(path)
    build = sha = before = None
    audio_name = "audio" + source.suffix.lower()
    try:
        before = stat_key(source)
        build = cache.new_build()
        sha = copy_and_hash(source, build / audio_name)
    except OSError:
        if build is not None:
            cache.discard(build)
        build = sha = None
    if sha is not None:
        entry = cache.load(sha)
        if entry is not None:  # an identical re-render: same bytes, new stat
            cache.discard(build)
            try:
                info = open_stem(path)
            except BridgeError as exc:
                return _Worked(error=exc)
            worked = _Worked(info=info, analysis=entry.analysis, features=entry.features, sha256=sha,
                             stat=before, from_cache=True, stored=True)
            if sum_folder and mix_rate:
                partial = _sum_for(sum_folder, mix_frames)
                if not _sum_stem(info, mix_rate, partial):
                    worked = _Worked(info=info, error=StemReadError(f"{path}: could not be read for the mix"))
                partial.flush()
                worked.sum_file = str(partial.path)
            return worked
    info, measured, error, sum_file = extract_stem(path, mix_rate, mix_frames, sum_folder)
    worked = _Worked(info=info, error=error, sum_file=sum_file, sha256=sha, stat=before)
    if measured is not None:
        worked.analysis, worked.features = measured
    stored = False
    if build is not None:
        try:
            unchanged = stat_key(source) == before
        except OSError:
            unchanged = False
        if measured is not None and unchanged:
            header = {k: getattr(info, k) for k in ("sample_rate", "channels", "frames", "format", "subtype")}
            cache.commit(build, sha, audio_name, header, worked.analysis, worked.features)
            stored = cache.entry_dir(sha).is_dir()
        else:
            cache.discard(build)
    worked.stored = stored
    return worked


def _mix_update(base_sum: str, out_sum: str, subtract: list[tuple[str, str]], add: list[tuple[str, str, list[int]]],
                mix_rate: int, mix_frames: int) -> tuple[StemFeatures, list[str]]:
    """Worker: the new mix = the last mix - the old contents that went + the new ones, then its features.

    Parameters
    ----------
    subtract : list of (snapshot path, sha256)
        Old contents, decoded from the cache's snapshots (checked against their hash first).
    add : list of (stem path, sha256, stat)
        New contents, decoded from the stems; a stem whose stat moved since it was hashed
        makes the update untrustworthy.

    Returns
    -------
    (mix features, hashes actually added)
        A stem that fails to decode is left out (its partial share undone).

    Raises
    ------
    _MixUnavailable
        A snapshot is missing or does not match its hash, or a stem changed under us.
    """
    from .cache import hash_file, stat_key

    shutil.copyfile(base_sum, out_sum)
    partial = _PartialSum(Path(out_sum), mix_frames)
    added: list[str] = []
    try:
        for snapshot, sha in subtract:
            try:
                if hash_file(Path(snapshot)) != sha:
                    raise _MixUnavailable(f"{snapshot}: snapshot does not match its hash")
                info = open_stem(snapshot)
            except (OSError, BridgeError) as exc:
                raise _MixUnavailable(str(exc)) from exc
            if not _sum_stem(info, mix_rate, partial, sign=-1.0):
                raise _MixUnavailable(f"{snapshot}: snapshot could not be decoded")
        for path, sha, stat in add:
            try:
                if stat_key(Path(path)) != stat:
                    raise _MixUnavailable(f"{path}: changed during the pass")
                info = open_stem(path)
            except BridgeError:
                continue
            except OSError as exc:
                raise _MixUnavailable(str(exc)) from exc
            if _sum_stem(info, mix_rate, partial):
                added.append(sha)
            if stat_key(Path(path)) != stat:
                raise _MixUnavailable(f"{path}: changed during the pass")
        partial.flush()
    finally:
        partial.close()
    return _mix_features([out_sum], mix_rate, mix_frames), added


def _run(tasks: list[tuple[Callable, tuple, object]], jobs: int, done: Callable[[object, object], None]) -> None:
    """Run ``(function, args, tag)`` tasks on the worker pool (inline for one task or one job).

    ``done(tag, result_or_exception)`` is called in this process as each finishes.
    """
    if not tasks:
        return
    if jobs <= 1 or len(tasks) <= 1:
        for fn, args, tag in tasks:
            try:
                done(tag, fn(*args))
            except Exception as exc:  # noqa: BLE001 - reported per task, like a crashed worker
                done(tag, exc)
        return
    from concurrent.futures import as_completed

    with _pool(min(jobs, len(tasks))) as pool:
        futures = {pool.submit(fn, *args): tag for fn, args, tag in tasks}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker must not sink the batch
                result = exc
            done(futures[future], result)


def _close_worker_sums() -> None:
    for partial in list(_WORKER_SUMS.values()):
        partial.close()
    _WORKER_SUMS.clear()


def _analyze_incremental(files: list[Path], infos: dict[Path, StemInfo], mix_rate: int | None, mix_frames: int,
                         alignment: tuple[str, ...], markers, jobs: int,
                         progress: Callable[[StemResult], None] | None, cache: "AnalysisCache",
                         masking_memo: dict) -> SessionResult:
    """:func:`analyze_session` with a cache: decode only the stems whose bytes are new."""
    from .cache import MAX_MIX_GENERATIONS, hash_file, members_delta, stat_key

    started = time.perf_counter()
    timings: dict[str, float] = {}
    cache.clean_tmp()
    state = cache.load_mix_state(mix_rate, mix_frames) if mix_rate else None
    if state is not None and state.generation >= MAX_MIX_GENERATIONS:
        state = None  # bound float32 drift: sum afresh now and then

    # Which content is each file?  Unchanged stat: the recorded hash.  Otherwise hash it now when
    # an incremental mix needs every hash up front (threads: hashlib releases the GIL); for a
    # full pass the worker hashes while it snapshots the file.
    known: dict[Path, str] = {}
    stats: dict[Path, list[int]] = {}
    for path in infos:
        sha = cache.known_hash(path)
        if sha is not None:
            known[path] = sha
    if state is not None:
        unknown = [p for p in infos if p not in known]

        def _hash(path: Path):
            try:
                stat = stat_key(path)
                return path, stat, hash_file(path), stat_key(path) == stat
            except OSError:
                return path, None, None, False

        if unknown:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max(1, min(jobs, len(unknown)))) as threads:
                for path, stat, sha, steady in threads.map(_hash, unknown):
                    if sha is not None and steady:
                        known[path], stats[path] = sha, stat
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
            progress(StemResult(path.stem, path, worked.info, None, worked.error))

    for path, entry in entries.items():
        _finish(path, _Worked(info=infos[path], analysis=entry.analysis, features=entry.features,
                              sha256=entry.sha256, stat=stats.get(path), from_cache=True, stored=True))
    todo = [p for p in files if p not in entries]

    # The mix plan: incremental when the last sum is there and every content is known.
    plan = None
    if state is not None and all(p in known for p in infos):
        new_members = [known[p] for p in infos]
        to_add, to_subtract = members_delta(state.members, new_members)
        snapshots = []
        for sha in to_subtract:
            folder = cache.entry_dir(sha)
            audio = next(iter(folder.glob("audio*")), None) if folder.is_dir() else None
            if audio is None:
                snapshots = None
                break
            snapshots.append((str(audio), sha))
        if snapshots is not None and len(to_add) + len(to_subtract) <= max(2, len(new_members) // 2):
            pending = list(to_add)
            adds = []
            for path in infos:
                if known[path] in pending:
                    pending.remove(known[path])
                    adds.append((str(path), known[path], stats[path]))
            plan = (snapshots, adds)

    mix: StemFeatures | None = None
    members: list[str] | None = None
    consistent = True
    new_sum: Path | None = None
    generation = 0
    with tempfile.TemporaryDirectory(prefix="mixbridge-sum-") as scratch:
        tasks: list[tuple[Callable, tuple, object]] = []
        incremental = plan is not None
        if incremental and (plan[0] or plan[1]):
            new_sum = cache.new_sum_path()
            tasks.append((_mix_update, (str(state.sum_path), str(new_sum), plan[0], plan[1], mix_rate, mix_frames),
                          "mix"))
        sum_folder = None if incremental else scratch
        for path in todo:
            tasks.append((_extract_cached, (str(path), mix_rate, mix_frames, sum_folder, str(cache.folder)), path))
        if not incremental and mix_rate:
            for path in entries:
                tasks.append((_sum_task, (str(path), mix_rate, mix_frames, scratch), ("sum", path)))
        mix_result: list = []
        sum_files: set[str] = set()

        def _done(tag, result) -> None:
            if tag == "mix":
                mix_result.append(result)
            elif isinstance(tag, tuple):  # a cached stem summed for the mix
                path = tag[1]
                if isinstance(result, Exception) or result.error is not None:
                    nonlocal consistent
                    consistent = False  # the sum lacks a stem the results have: re-summed below
                elif result.sum_file:
                    sum_files.add(result.sum_file)
            else:
                if isinstance(result, Exception):
                    result = _Worked(error=StemReadError(f"{tag}: worker failed: {result}"))
                if result.sum_file:
                    sum_files.add(result.sum_file)
                _finish(tag, result)

        _run(tasks, jobs, _done)
        _close_worker_sums()
        timings["extract_s"] = time.perf_counter() - started - timings["lookup_s"]
        mark = time.perf_counter()
        ok_paths = [p for p in files if outcomes[p].analysis is not None]
        ok_shas = [outcomes[p].sha256 for p in ok_paths]
        if incremental:
            if not (plan[0] or plan[1]):
                mix, members, new_sum, generation = state.features, list(state.members), state.sum_path, state.generation
            elif mix_result and not isinstance(mix_result[0], Exception):
                mix, added = mix_result[0]
                generation = state.generation + 1
                expected = sorted(sha for path, sha, _ in plan[1] if outcomes[Path(path)].analysis is not None)
                members = list(state.members)
                for _, gone in plan[0]:
                    members.remove(gone)
                members += added
                if sorted(added) != expected:
                    mix = None  # a stem decoded for the analysis but not for the mix (or back)
            if mix is not None and sorted(members) != sorted(ok_shas):
                mix = None
            if mix is None:
                # The incremental update could not be trusted: sum every good stem afresh.
                consistent = True
                sum_tasks = [(_sum_task, (str(p), mix_rate, mix_frames, scratch), ("sum", p)) for p in ok_paths]
                _run(sum_tasks, jobs, _done)
                _close_worker_sums()
                incremental = False
        if not incremental and ok_paths and mix_rate:
            new_sum = cache.new_sum_path()
            mix = _mix_features(sum_files, mix_rate, mix_frames, out_path=new_sum)
            members, generation = ok_shas, 0
        timings["mix_s"] = time.perf_counter() - mark

    # Remember what is now known; keep the mix for the next pass only if every member can be
    # subtracted again later (its snapshot is stored) and nothing moved during the pass.
    for path in ok_paths:
        worked = outcomes[path]
        if worked.stored and worked.stat is not None:
            cache.remember(path, worked.stat, worked.sha256)
            if worked.sha256 != known.get(path, worked.sha256):
                consistent = False
    storable = (mix is not None and consistent and members is not None and None not in members
                and all(outcomes[p].stored for p in ok_paths))
    if storable and new_sum is not None:
        if new_sum != getattr(state, "sum_path", None) or state is None:
            cache.save_mix_state(mix_rate, mix_frames, members, new_sum, mix, generation)
    elif not storable:
        cache.drop_mix_state()
    cache.save_index()
    cache.evict(keep={s for s in ok_shas if s})

    stems: list[StemResult] = []
    features: dict[str, StemFeatures] = {}
    analysed: list[tuple[str, StemFeatures, StemAnalysis]] = []
    for path in files:
        worked = outcomes[path]
        name = names[path]
        stems.append(StemResult(name, path, worked.info, worked.analysis, worked.error))
        if worked.analysis is not None:
            features[name] = worked.features
            analysed.append((name, worked.features, worked.analysis))
    keys = [outcomes[p].sha256 for p in files if outcomes[p].analysis is not None]
    if len(masking_memo) > MASKING_MEMO_MAX:
        masking_memo.clear()
    mark = time.perf_counter()
    mix_analysis = analyze_mix(analysed, mix, markers, alignment,
                               stem_keys=keys if all(keys) else None, masking_memo=masking_memo)
    timings["cross_stem_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    reanalysed = tuple(names[p] for p in files if not outcomes[p].from_cache)
    cached = tuple(names[p] for p in files if outcomes[p].from_cache)
    return SessionResult(tuple(stems), mix_analysis, features, timings, reanalysed, cached)


#: Masking results per pair of stem contents (SHA-256), kept for the life of the process (the watcher):
#: a re-bounce with one changed stem recomputes only that stem's pairs.  Bounded by clearing.
_MASKING_MEMO: dict = {}
MASKING_MEMO_MAX = 20_000


def _report(progress, path: Path, outcome: tuple) -> None:
    if progress is None:
        return
    info, feats, error, _ = outcome
    progress(StemResult(path.stem, path, info, None, error))


def stem_views(result: SessionResult, roles: dict[str, str] | None = None, manual: Sequence[str] = ()):
    """The rules' view of each stem: role (given, else inferred), analysis or error, section levels."""
    from .suggest.roles import infer_role
    from .suggest.rules import StemView

    roles = roles or {}
    views = []
    for stem in result.stems:
        section_lufs = tuple(
            (lev.section.name, lev.section.start_s, lev.section.end_s, dict(lev.stem_lufs).get(stem.name), lev.mix_lufs)
            for lev in result.mix.sections)
        error = (stem.error.code, stem.error.message) if stem.error is not None else None
        views.append(StemView(stem.name, roles.get(stem.name) or infer_role(stem.name), stem.analysis, error,
                              stem.name in manual, section_lufs))
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


def plan_session(result: SessionResult, role_config=None, amount: float = 1.0, reference_path=None):
    """Analysis -> MixPlan, with roles from the config and an optional reference track."""
    from .config import RoleConfig
    from .suggest.plan import PlanSettings, build_plan
    from .suggest.reference import compare

    role_config = role_config or RoleConfig()
    views = stem_views(result, role_config.roles, role_config.manual)
    sources = {v.name: role_config.sources.get(v.name, "inferred") for v in views}
    comparison = None
    if reference_path is not None and result.mix.summed is not None:
        comparison = compare(result.mix.summed, analyze_reference(reference_path), Path(reference_path).stem)
    settings = PlanSettings(amount=amount, role_offsets=dict(role_config.role_offsets), manual=role_config.manual)
    return build_plan(views, result.mix, settings, sources, analysis_id(result), comparison)
