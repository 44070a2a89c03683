"""Render a plan onto the stems offline, as REAPER would play it, and write before/after mixes.

The I/O edge of :mod:`bridge.render`: stems are read with :func:`bridge.stems.read_blocks` and
written with :class:`bridge.stems.StemWriter`; everything in between is the pure DSP of
:mod:`bridge.render.track`.

All stems are streamed side by side, one block of about ``block_frames`` (at the mix rate) from
each at a time, so memory stays flat in song length: each processed block is written to its
stem, and the blocks are summed into the "before" mix (the stems as bounced) and the "after" mix
(the stems as the plan would play them), whose K-weighted energies are kept on the way
(:mod:`bridge.analyze.loudness`).  The after mix is then rewritten once, scaled so that its
integrated loudness equals the before mix's: the two play at the same loudness, so what is heard is
the AI pass, not a level change.

Output folder::

    OUT/stems/<stem>.wav     processed stems (32-bit float WAV by default); untouched ones copied as they are
    OUT/mix_before.wav       the stems summed as bounced
    OUT/mix_after.wav        the plan applied, level-matched to mix_before
    OUT/render.json          what was done (RenderOutput.as_dict)
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..analyze.loudness import KWeightedEnergy, channel_weights, gating_blocks, integrated_lufs
from ..analyze.resample import StreamResampler
from ..errors import BridgeError, NoStems, PathNotFound, StemWriteError
from ..pipeline import to_stereo
from ..plandoc import check_plan, load_plan
from ..stems import StemInfo, StemWriter, find_stems, open_stem, read_blocks
from ..tracks import stem_names
from .track import TrackChain, TrackSettings, track_settings

#: Frames per block at the mix rate: one second at 48 kHz, as the stem reader's default.
DEFAULT_BLOCK_FRAMES = 48000
STEMS_DIR = "stems"
MIX_BEFORE = "mix_before.wav"
MIX_AFTER = "mix_after.wav"
REPORT = "render.json"


# --------------------------------------------------------------------------------------- records

@dataclass(frozen=True, slots=True)
class RenderedStem:
    """What happened to one stem.

    Attributes
    ----------
    name : str
        The stem's name as the analysis names it (file name without ending).
    source : Path
    path : Path or None
        The file written (None when the stem failed).
    status : str
        ``"processed"``, ``"copied"`` (nothing to apply: byte copy) or ``"failed"``.
    track : str or None
        The plan track it matched; None when the plan has no track for it.
    reason : str
        Why a stem was copied (``"no plan track"``, ``"manual"``, ``"no moves"``) or the error.
    moves : tuple of str
        What was applied, in words.
    ignored : tuple of str
        Plan entries the renderer does not model.
    max_gain_reduction_db : float
        The compressor's largest gain reduction (0 without one).
    error_code : str or None
    """

    name: str
    source: Path
    path: Path | None
    status: str
    track: str | None
    reason: str = ""
    moves: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    max_gain_reduction_db: float = 0.0
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": str(self.source), "path": str(self.path) if self.path else None,
                "status": self.status, "track": self.track, "reason": self.reason, "moves": list(self.moves),
                "ignored": list(self.ignored), "max_gain_reduction_db": round(self.max_gain_reduction_db, 2),
                "error_code": self.error_code}


@dataclass(frozen=True, slots=True)
class RenderOutput:
    """The result of :func:`render_plan`.

    Attributes
    ----------
    out_dir : Path
    stems : tuple of RenderedStem
        In the order the stems were found.
    mix_before, mix_after : Path or None
        None when mixes were not asked for or no stem could be read.
    before_lufs : float or None
        Integrated loudness of the before mix (BS.1770-4); None when silent.
    after_lufs : float or None
        Of the written after mix, measured (equal to ``before_lufs`` after level matching).
    after_unmatched_lufs : float or None
        Of the after mix before level matching: the plan's own loudness change is
        ``after_unmatched_lufs - before_lufs``.
    match_gain_db : float
        Gain applied to the after mix to level-match it.
    mix_rate : int or None
        Hz of the mixes (the most common stem rate).
    missing_tracks : tuple of str
        Plan tracks with moves whose stem was not found.
    plan_id : str
    seconds : float
        Wall time.
    report : Path or None
        The ``render.json`` written.
    """

    out_dir: Path
    stems: tuple[RenderedStem, ...]
    mix_before: Path | None
    mix_after: Path | None
    before_lufs: float | None
    after_lufs: float | None
    after_unmatched_lufs: float | None
    match_gain_db: float
    mix_rate: int | None
    missing_tracks: tuple[str, ...]
    plan_id: str
    seconds: float
    report: Path | None = None

    @property
    def stem_paths(self) -> tuple[Path, ...]:
        """Every stem written (processed and copied): the rendered session, ready to analyse."""
        return tuple(s.path for s in self.stems if s.path is not None)

    @property
    def processed(self) -> tuple[RenderedStem, ...]:
        return tuple(s for s in self.stems if s.status == "processed")

    @property
    def failed(self) -> tuple[RenderedStem, ...]:
        return tuple(s for s in self.stems if s.status == "failed")

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)
        return {"out_dir": str(self.out_dir), "plan_id": self.plan_id,
                "mix_before": str(self.mix_before) if self.mix_before else None,
                "mix_after": str(self.mix_after) if self.mix_after else None,
                "before_lufs": r(self.before_lufs), "after_lufs": r(self.after_lufs),
                "after_unmatched_lufs": r(self.after_unmatched_lufs), "match_gain_db": r(self.match_gain_db),
                "mix_rate": self.mix_rate, "missing_tracks": list(self.missing_tracks),
                "seconds": round(self.seconds, 3), "stems": [s.as_dict() for s in self.stems]}


# ------------------------------------------------------------------------------------------ input

def read_plan(path: str | os.PathLike) -> dict[str, Any]:
    """Read a plan JSON document (``mixbridge plan --json``): :func:`bridge.plandoc.load_plan`.

    Raises
    ------
    PlanFileError
        ``E_PLAN``: unreadable, not JSON, not a schema 1 or 2 plan.
    """
    return load_plan(path)


def stem_files(stems: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Stem files from a folder, a file, or a list of them.

    Raises
    ------
    BridgeError
        ``E_PATH_NOT_FOUND`` when a path does not exist, ``E_NO_STEMS`` when no audio file is found.
    """
    paths = [stems] if isinstance(stems, (str, os.PathLike)) else list(stems)
    for p in paths:
        if not Path(p).exists():
            raise PathNotFound(f"{p}: no such file or folder")
    files = find_stems(paths)
    if not files:
        raise NoStems("in " + ", ".join(map(str, paths)))
    return files


def plan_tracks_by_stem(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Plan tracks keyed by the stem they belong to: the track's ``stem`` field, else its ``name``."""
    out: dict[str, Mapping[str, Any]] = {}
    for tp in doc.get("tracks", []):
        out.setdefault(str(tp.get("stem") or tp["name"]), tp)
    return out


# ------------------------------------------------------------------------------------- streaming

class _Fifo:
    """Stereo frames waiting to be mixed, at the mix rate."""

    def __init__(self) -> None:
        self._parts: deque[np.ndarray] = deque()
        self.size = 0

    def push(self, block: np.ndarray) -> None:
        if len(block):
            self._parts.append(block)
            self.size += len(block)

    def take(self, n: int) -> np.ndarray:
        if self._parts and len(self._parts[0]) == n:  # the usual case: stems at the mix rate
            self.size -= n
            return self._parts.popleft()
        out = np.zeros((n, 2))
        filled = 0
        while filled < n and self._parts:
            part = self._parts[0]
            k = min(n - filled, len(part))
            out[filled:filled + k] = part[:k]
            filled += k
            if k == len(part):
                self._parts.popleft()
            else:
                self._parts[0] = part[k:]
        self.size -= filled
        return out


class _StemJob:
    """One stem read block by block: processed (or passed through), written, and queued for the mixes."""

    def __init__(self, name: str, path: Path, info: StemInfo | None, error: BridgeError | None,
                 track: Mapping[str, Any] | None, settings: TrackSettings | None, out_path: Path | None,
                 mix_rate: int | None, block_frames: int, mixes: bool, subtype: str, envelope_scaling: str):
        self.name, self.path, self.info, self.track, self.settings = name, path, info, track, settings
        self.error = error
        self.out_path = out_path
        self.process = settings is not None and not settings.manual and not settings.is_identity
        self.mixes = mixes and info is not None and mix_rate is not None
        self.done = info is None
        self.before, self.after = _Fifo(), _Fifo()
        self._writer: StemWriter | None = None
        self._chain: TrackChain | None = None
        self._reader = None
        self._resample: tuple[StreamResampler, StreamResampler] | None = None
        if info is None:
            return
        native_block = max(1, int(round(block_frames * info.sample_rate / (mix_rate or info.sample_rate))))
        self._reader = read_blocks(info, native_block)
        if self.mixes and info.sample_rate != mix_rate:
            self._resample = (StreamResampler(info.sample_rate, mix_rate, 2), StreamResampler(info.sample_rate, mix_rate, 2))
        if self.process:
            channels = info.channels if info.channels <= 2 else 2
            self._chain = TrackChain(settings, info.sample_rate, channels, envelope_scaling)
            s = settings
            # A mono stem stays mono unless the plan makes its sides differ (pan, one channel flipped):
            # re-analysing a mono file as two equal channels would read it 3 LU louder.
            self._out_channels = 1 if info.channels == 1 and s.pan == 0.0 and s.invert_left == s.invert_right else 2
            try:
                self._writer = StemWriter(out_path, info.sample_rate, self._out_channels, subtype).__enter__()
            except StemWriteError as exc:
                self._fail(exc)
        else:
            if out_path is not None:
                try:
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, out_path)
                except OSError as exc:
                    self._fail(StemWriteError(f"{out_path}: {exc}"))
            if not self.mixes:
                self._close_reader()

    # -- stream -------------------------------------------------------------------------------

    def abort(self, error: BridgeError) -> None:
        """Stop this stem: remove its partial output and record ``error``."""
        self._fail(error)

    def _fail(self, error: BridgeError) -> None:
        self.error = error
        self.done = True
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.__exit__(type(error), error, None)  # removes the partial file
        self._close_reader()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.done = True

    def _queue(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        if not self.mixes:
            return
        if self._resample is not None:
            rb, ra = self._resample
            before = rb.feed(before.astype(np.float32)) if before is not None else rb.finish()
            after = ra.feed(after.astype(np.float32)) if after is not None else ra.finish()
        self.before.push(before)
        self.after.push(after)

    def step(self) -> None:
        """Read, process, write and queue one block (or finish the stream)."""
        if self.done:
            return
        try:
            block = next(self._reader)
        except StopIteration:
            self._finish()
            return
        except BridgeError as exc:
            self._fail(exc)
            return
        stereo = to_stereo(block)
        if self._chain is not None:
            chain_in = block if block.shape[1] <= 2 else stereo
            played = self._chain.process(chain_in)
            try:
                self._writer.write(played[:, :1] if self._out_channels == 1 else played)
            except StemWriteError as exc:
                self._fail(exc)
                return
            self._queue(stereo, played)
        else:
            self._queue(stereo, stereo)

    def _finish(self) -> None:
        if self._chain is not None:
            self._chain.finish()
        if self._resample is not None:
            self._queue(None, None)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.__exit__(None, None, None)
            except StemWriteError as exc:
                self.error = exc
        self._close_reader()

    def pull(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` mix-rate frames of the before and after streams (zeros past the end)."""
        while self.before.size < n and not self.done:
            self.step()
        return self.before.take(n), self.after.take(n)

    def drain(self) -> None:
        while not self.done:
            self.step()
            self.before, self.after = _Fifo(), _Fifo()

    # -- report ---------------------------------------------------------------------------------

    def result(self) -> RenderedStem:
        track = str(self.track["name"]) if self.track is not None else None
        s = self.settings
        ignored = s.ignored if s is not None else ()
        if self.error is not None:
            return RenderedStem(self.name, self.path, None, "failed", track, f"{self.error.code}: {self.error.message}",
                                ignored=ignored, error_code=self.error.code)
        if self.process:
            return RenderedStem(self.name, self.path, self.out_path, "processed", track, "", tuple(s.describe()),
                                ignored, self._chain.max_gain_reduction_db if self._chain else 0.0)
        reason = "no plan track" if s is None else "manual" if s.manual else "no moves"
        return RenderedStem(self.name, self.path, self.out_path, "copied", track, reason, ignored=ignored)


class _MixWriter:
    """A stereo mix written block by block, with its K-weighted energies kept for the loudness."""

    def __init__(self, path: Path, rate: int):
        self.writer = StemWriter(path, rate, 2, "FLOAT").__enter__()
        self.energy = KWeightedEnergy(rate, 2)
        self.peak = 0.0

    def write(self, block: np.ndarray) -> None:
        block32 = block.astype(np.float32)
        self.writer.write(block32)
        self.energy.feed(np.ascontiguousarray(block32.T))
        if len(block32):
            self.peak = max(self.peak, float(np.abs(block32).max()))

    def close(self, error: BaseException | None = None) -> float | None:
        self.writer.__exit__(type(error) if error else None, error, None)
        return integrated_lufs(gating_blocks(self.energy.result()), channel_weights(2))


# ----------------------------------------------------------------------------------------- render

def render_plan(plan_doc: Mapping[str, Any] | str | os.PathLike,
                stems: str | os.PathLike | Sequence[str | os.PathLike],
                out_dir: str | os.PathLike, *, mixes: bool = True, block_frames: int = DEFAULT_BLOCK_FRAMES,
                subtype: str = "FLOAT", envelope_scaling: str = "fader", write_report: bool = True,
                copy_untouched: bool = True) -> RenderOutput:
    """Apply a plan to the stems as REAPER would play it, offline.

    Parameters
    ----------
    plan_doc : dict or path
        The plan JSON document (``mixbridge plan --json``, schema 1 or 2) or its path.
    stems : path or sequence of paths
        A stems folder, or stem files and folders.
    out_dir : path
        Where ``stems/``, ``mix_before.wav``, ``mix_after.wav`` and ``render.json`` go (created).
    mixes : bool
        Write the level-matched before/after mixes.
    block_frames : int
        Frames per block at the mix rate (the result does not depend on it beyond rounding).
    subtype : {"FLOAT", "PCM_24"}
        Encoding of the processed stems (mixes are always 32-bit float).
    envelope_scaling : {"fader", "amplitude"}
        The volume envelopes' scaling mode (docs/render.md).
    write_report : bool
        Write ``render.json``.
    copy_untouched : bool
        Copy the stems the plan leaves alone into ``stems/`` (off: they are only mixed, and their
        ``RenderedStem.path`` is None; the review page's renders need only the mixes and the processed stems).

    Returns
    -------
    RenderOutput

    Raises
    ------
    PlanFileError
        ``E_PLAN`` for a plan that cannot be read.
    BridgeError
        ``E_NO_STEMS`` for a missing folder or no stems; ``E_RENDER_OUTPUT`` when the output folder
        is a stems folder or cannot be written.  A bad stem is a failed entry, never an exception.
    """
    started = time.perf_counter()
    doc = read_plan(plan_doc) if isinstance(plan_doc, (str, os.PathLike)) else plan_doc
    check_plan(doc, "plan")
    if block_frames < 1:
        raise ValueError("block_frames must be at least 1")
    files = stem_files(stems)
    out_dir = Path(out_dir)
    stems_out = out_dir / STEMS_DIR
    sources = {p.resolve().parent for p in files}
    if stems_out.resolve() in sources or out_dir.resolve() in sources:
        raise StemWriteError(f"{out_dir}: the output folder must not be the stems folder (it would overwrite them)")
    try:
        stems_out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StemWriteError(f"{stems_out}: {exc}") from exc

    names = stem_names(files)
    by_stem = plan_tracks_by_stem(doc)
    infos: dict[Path, StemInfo | BridgeError] = {}
    for path in files:
        try:
            infos[path] = open_stem(path)
        except BridgeError as exc:
            infos[path] = exc
    rates = Counter(i.sample_rate for i in infos.values() if isinstance(i, StemInfo))
    mix_rate = max(rates, key=lambda r: (rates[r], r)) if rates and mixes else None

    jobs: list[_StemJob] = []
    for path in files:
        name = names[path]
        info = infos[path] if isinstance(infos[path], StemInfo) else None
        error = infos[path] if info is None else None
        track = by_stem.get(name)
        settings = track_settings(track) if track is not None else None
        processing = settings is not None and not settings.manual and not settings.is_identity
        out_path = stems_out / (f"{name}.wav" if processing else path.name) if info is not None else None
        if not processing and not copy_untouched:
            out_path = None
        jobs.append(_StemJob(name, path, info, error, track, settings, out_path, mix_rate, block_frames,
                             mixes, subtype, envelope_scaling))
    matched = {j.name for j in jobs}
    missing = tuple(str(tp["name"]) for key, tp in by_stem.items()
                    if key not in matched and (tp.get("changes") or tp.get("automation")))

    mix_before = mix_after = None
    before_lufs = after_lufs = unmatched_lufs = None
    gain_db = 0.0
    mixing = [j for j in jobs if j.mixes]
    if mix_rate is not None and mixing:
        mix_frames = max(int(np.ceil(j.info.duration_s * mix_rate)) for j in mixing)
        mix_before, mix_after = out_dir / MIX_BEFORE, out_dir / MIX_AFTER
        unmatched = out_dir / f".{MIX_AFTER}.unmatched.wav"
        before_w, after_w = _MixWriter(mix_before, mix_rate), _MixWriter(unmatched, mix_rate)
        try:
            for start in range(0, mix_frames, block_frames):
                n = min(block_frames, mix_frames - start)
                before, after = np.zeros((n, 2)), np.zeros((n, 2))
                for job in mixing:
                    b, a = job.pull(n)
                    before += b
                    after += a
                before_w.write(before)
                after_w.write(after)
        except BaseException as exc:
            before_w.close(exc)
            after_w.close(exc)
            for job in jobs:
                if not job.done:
                    job.abort(StemWriteError("the render was interrupted"))
            raise
        before_lufs = before_w.close()
        unmatched_lufs = after_w.close()
        if before_lufs is not None and unmatched_lufs is not None:
            gain_db = before_lufs - unmatched_lufs
        after_lufs = _scaled_copy(unmatched, mix_after, gain_db, block_frames)
        unmatched.unlink(missing_ok=True)
    for job in jobs:
        job.drain()

    output = RenderOutput(out_dir, tuple(j.result() for j in jobs), mix_before, mix_after, before_lufs, after_lufs,
                          unmatched_lufs, gain_db, mix_rate, missing, str(doc.get("id", "")),
                          time.perf_counter() - started)
    if write_report:
        report = out_dir / REPORT
        output = replace(output, report=report)
        try:
            report.write_text(json.dumps(output.as_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise StemWriteError(f"{report}: {exc}") from exc
    return output


def _scaled_copy(source: Path, dest: Path, gain_db: float, block_frames: int) -> float | None:
    """Copy a mix, scaled by ``gain_db``; returns the loudness of what was written."""
    info = open_stem(source)
    gain = 10.0 ** (gain_db / 20.0)
    writer = _MixWriter(dest, info.sample_rate)
    try:
        for block in read_blocks(info, block_frames):
            writer.write(block.astype(np.float64) * gain)
    except BaseException as exc:
        writer.close(exc)
        raise
    return writer.close()
