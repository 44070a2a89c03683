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
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .analyze.features import FeatureExtractor, StemFeatures
from .analyze.resample import StreamResampler
from .analyze.session import MixAnalysis, analyze_mix
from .analyze.stem import StemAnalysis, analyze_stem
from .errors import BridgeError, StemReadError
from .stems import StemInfo, find_stems, open_stem, read_blocks

#: Channels of the summed mix.
MIX_CHANNELS = 2
_SQRT_HALF = np.float32(np.sqrt(0.5))


@dataclass(frozen=True, slots=True)
class StemResult:
    """One stem's outcome: its analysis, or the error that stopped it (never both)."""

    name: str
    path: Path
    info: StemInfo | None
    analysis: StemAnalysis | None
    error: BridgeError | None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The whole analysis of one bounce."""

    stems: tuple[StemResult, ...]
    mix: MixAnalysis
    features: dict[str, StemFeatures]
    timings: dict[str, float]

    @property
    def ok(self) -> list[StemResult]:
        return [s for s in self.stems if s.error is None]

    @property
    def failed(self) -> list[StemResult]:
        return [s for s in self.stems if s.error is not None]


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
    key = f"{folder}:{os.getpid()}"
    if key not in _WORKER_SUMS:
        _WORKER_SUMS[key] = _PartialSum(Path(folder) / f"sum-{os.getpid()}.f32", frames)
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


def _mix_features(sum_files: Iterable[str], mix_rate: int, mix_frames: int) -> StemFeatures:
    """Add the workers' partial sums block by block and measure the result."""
    extractor = FeatureExtractor(mix_rate, MIX_CHANNELS)
    handles = [open(p, "rb") for p in sorted(set(sum_files))]
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
    finally:
        for fh in handles:
            fh.close()
    return extractor.finish()


def _pool(jobs: int) -> ProcessPoolExecutor:
    # One BLAS thread per worker: the workers already fill the cores.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def analyze_session(paths: Sequence[str | os.PathLike], markers: list[tuple[str, float, float | None]] | None = None,
                    jobs: int | None = None, progress: Callable[[StemResult], None] | None = None,
                    recursive: bool = False) -> SessionResult:
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
        Called with each :class:`StemResult` as it completes.

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


def _unique_names(files: list[Path]) -> dict[Path, str]:
    counts = Counter(p.stem for p in files)
    return {p: (p.stem if counts[p.stem] == 1 else f"{p.stem}{p.suffix}") for p in files}


def _report(progress, path: Path, outcome: tuple) -> None:
    if progress is None:
        return
    info, feats, error, _ = outcome
    progress(StemResult(path.stem, path, info, None, error))


def analysis_id(result: SessionResult) -> str:
    """A content id of an analysis: the measured figures, independent of where the files live."""
    import hashlib
    import json

    from .report import session_dict

    doc = session_dict(result)
    for stem in doc["stems"]:
        stem.pop("path", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


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
