"""Sample levels on the shared 100 ms grid: power, peak, DC and clipping, streamed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Flat runs are tracked from this level up, dBFS.
FLAT_FLOOR_DBFS = -40.0
#: A flat run counts as clipping at full scale (-0.1 dBFS and up) or within this many dB of the
#: stem's own peak: a part clipped in a plug-in and turned down afterwards keeps its flat tops,
#: just lower.
CLIP_NEAR_PEAK_DB = 0.1
#: Samples in a flat run that make a clip.  A clipped waveform repeats the same value (the
#: converter's or the float clamp's ceiling); a full-scale sine at 997 Hz puts three samples above
#: -0.1 dBFS at every crest, but never two equal ones in a row.
CLIP_MIN_RUN = 3
#: In a quantised (PCM) stream, a flat run counts only when the waveform meets it with a step of
#: more than this many quantisation steps on one side at least.  A smooth crest quantised to PCM
#: repeats its top value for as many samples as the curvature allows (a 1 kHz tone at 384 kHz, a
#: 20 Hz tone at 48 kHz: runs of 3 to 20 samples at any level), but it enters and leaves the run by
#: one step (two with rounding jitter); a clipped waveform runs into its ceiling at its own slope.
CLIP_EDGE_STEPS = 4.0
_BIN_DB = 0.05
_BINS = int(round((6.0 - FLAT_FLOOR_DBFS) / _BIN_DB)) + 1


@dataclass(frozen=True, slots=True)
class ClipStats:
    """Runs of equal consecutive samples at full scale or at the stem's own peak.

    Attributes
    ----------
    runs : int
        Runs of at least :data:`CLIP_MIN_RUN` samples in any one channel.
    worst_run_samples : int
        The longest counted run.
    clipped_samples : int
        Samples inside counted runs.
    """

    runs: int
    worst_run_samples: int
    clipped_samples: int


def _history(samples: np.ndarray, before: np.ndarray, last: np.ndarray, row: np.ndarray,
             index: np.ndarray) -> np.ndarray:
    """``samples[row, index]`` where ``index`` may be -1 (the last block's last sample) or -2 (the one before)."""
    picked = samples[row, np.maximum(index, 0)]
    return np.where(index >= 0, picked, np.where(index == -1, last[row], before[row]))


class ClipDetector:
    """Counts flat runs per channel, carrying an open run across block boundaries.

    A run is a sequence of equal consecutive samples at or above :data:`FLAT_FLOOR_DBFS`.  Runs are
    kept as a histogram over their level (0.05 dB bins), so memory stays constant; which of them
    are clipping is decided at the end, when the stem's peak is known.

    Parameters
    ----------
    channels : int
    quantum : float
        The stream's quantisation step (``2**-15`` for 16-bit PCM), or 0 for float streams.  With a
        step, a run must also meet the waveform with a step of more than :data:`CLIP_EDGE_STEPS`
        quanta (entering or leaving it), so a smooth quantised crest is never taken for clipping.
    """

    def __init__(self, channels: int, quantum: float = 0.0):
        self.quantum = float(quantum)
        self._edge = self.quantum * CLIP_EDGE_STEPS
        self._before = np.full(channels, np.nan, dtype=np.float32)  # the sample before ``_last``
        self._open_kink = np.zeros(channels, dtype=bool)  # an open run that was entered by a real step
        self._open = np.zeros(channels, dtype=np.int64)
        self._open_level = np.zeros(channels, dtype=np.float64)
        self._last = np.full(channels, np.nan, dtype=np.float32)
        self._runs = np.zeros(_BINS, dtype=np.int64)
        self._samples = np.zeros(_BINS, dtype=np.int64)
        self._worst = np.zeros(_BINS, dtype=np.int64)

    def _close(self, repeats: np.ndarray, levels: np.ndarray, kinked: np.ndarray | None = None) -> None:
        """Count finished runs (``repeats`` flat samples after the first, at ``levels``) in the histogram;
        in a quantised stream only those met by a real step (``kinked``)."""
        lengths = np.asarray(repeats, dtype=np.int64) + 1
        keep = lengths >= CLIP_MIN_RUN
        if kinked is not None:
            keep &= np.asarray(kinked, dtype=bool)
        if not keep.any():
            return
        lengths = lengths[keep]
        db = 20.0 * np.log10(np.maximum(np.asarray(levels, dtype=np.float64)[keep], 1e-12))
        bins = np.clip(np.round((db - FLAT_FLOOR_DBFS) / _BIN_DB), 0, _BINS - 1).astype(np.intp)
        np.add.at(self._runs, bins, 1)
        np.add.at(self._samples, bins, lengths)
        np.maximum.at(self._worst, bins, lengths)

    def feed(self, samples: np.ndarray, magnitudes: np.ndarray, block_peak: float) -> None:
        """Take a block shaped ``(channels, frames)`` and its ``|x|``.

        All channels at once: the rows are laid end to end with one non-flat sample between them,
        so one ``diff`` finds every run of the block and no run crosses from one channel into
        the next.
        """
        floor = 10.0 ** (FLAT_FLOOR_DBFS / 20.0)
        channels, n = samples.shape
        if n == 0:
            return
        if block_peak < floor and not self._open.any():
            self._before = samples[:, -2].copy() if n > 1 else self._last.copy()
            self._last = samples[:, -1].copy()
            return
        # Sample k is "flat" when it repeats sample k-1 at a level worth watching.
        hot = np.zeros((channels, n + 1), dtype=bool)
        hot[:, 0] = samples[:, 0] == self._last
        np.equal(samples[:, 1:], samples[:, :-1], out=hot[:, 1:n])
        hot[:, :n] &= magnitudes >= floor
        quantised = self._edge > 0.0
        before, last = self._before, self._last
        ending = (self._open > 0) & ~hot[:, 0]
        if ending.any():  # open runs from the last block that stop at its edge
            kinked = None
            if quantised:  # the step out of the run is the block's first sample against the last one's
                exit_step = np.abs(samples[ending, 0].astype(np.float64) - self._last[ending])
                kinked = self._open_kink[ending] | (exit_step > self._edge)
            self._close(self._open[ending], self._open_level[ending], kinked)
        self._before = samples[:, -2].copy() if n > 1 else self._last.copy()
        self._last = samples[:, -1].copy()
        # Runs are the groups of consecutive flat samples; each row ends with a False column, so no
        # group crosses from one channel into the next.  Flat samples are few: grouping their
        # indices costs less than differencing the whole block.
        flat = np.flatnonzero(hot)
        if flat.size:
            breaks = np.flatnonzero(np.diff(flat) != 1)
            starts = flat[np.concatenate([[0], breaks + 1])]
            stops = flat[np.concatenate([breaks, [flat.size - 1]])] + 1
        else:
            starts = stops = flat
        row = starts // (n + 1)
        first = starts - row * (n + 1)
        lengths = stops - starts
        levels = magnitudes[row, first].astype(np.float64)
        carried = (first == 0) & (self._open[row] > 0)
        lengths[carried] += self._open[row[carried]]
        end = stops - row * (n + 1)
        trailing = end == n
        kink = None
        if quantised:
            # Entering step: the run's first sample (block index first-1) against the one before it,
            # reaching back into the last block's two samples at the block's start.
            entry = np.abs(_history(samples, before, last, row, first - 1).astype(np.float64)
                           - _history(samples, before, last, row, first - 2))
            entry = np.where(np.isfinite(entry), entry, 0.0)
            kink = entry > self._edge
            kink[carried] |= self._open_kink[row[carried]]
            inside = ~trailing
            exit_step = np.zeros(len(end))
            exit_step[inside] = np.abs(samples[row[inside], end[inside]].astype(np.float64)
                                       - samples[row[inside], end[inside] - 1])
            kink |= exit_step > self._edge
        self._close(lengths[~trailing], levels[~trailing], None if kink is None else kink[~trailing])
        self._open = np.zeros(channels, dtype=np.int64)
        self._open_level = np.zeros(channels, dtype=np.float64)
        self._open_kink = np.zeros(channels, dtype=bool)
        self._open[row[trailing]] = lengths[trailing]
        self._open_level[row[trailing]] = levels[trailing]
        if kink is not None:
            self._open_kink[row[trailing]] = kink[trailing]

    def result(self, sample_peak: float) -> ClipStats:
        """Close open runs and count those at full scale or at the stem's peak."""
        still = self._open > 0
        self._close(self._open[still], self._open_level[still], self._open_kink[still] if self._edge > 0 else None)
        self._open[:] = 0
        peak_db = 20.0 * np.log10(max(sample_peak, 1e-12))
        level_db = FLAT_FLOOR_DBFS + np.arange(_BINS) * _BIN_DB
        counted = (level_db >= min(-0.1, peak_db - CLIP_NEAR_PEAK_DB) - _BIN_DB / 2) & (level_db > FLAT_FLOOR_DBFS)
        return ClipStats(runs=int(self._runs[counted].sum()),
                         worst_run_samples=int(self._worst[counted].max(initial=0)),
                         clipped_samples=int(self._samples[counted].sum()))


class FrameLevels:
    """Per-frame mean square per channel, per-frame peak, and the DC sum (channel-major input)."""

    def __init__(self, sample_rate: int, channels: int):
        self.hop = sample_rate // 10
        self.channels = channels
        self._power: list[np.ndarray] = []
        self._peak: list[np.ndarray] = []
        self.sum = np.zeros(channels, dtype=np.float64)

    def feed_all(self, channel_major: np.ndarray) -> None:
        """Every sample, framed or not, counts towards the DC estimate."""
        with np.errstate(over="ignore", invalid="ignore"):
            total = channel_major @ np.ones(channel_major.shape[1], dtype=np.float32)
        if not np.isfinite(total).all():  # float32 overflowed (a float stem far above full scale)
            total = channel_major.sum(axis=1, dtype=np.float64)
        self.sum += total

    def feed_frames(self, frames: np.ndarray, frames_abs: np.ndarray) -> np.ndarray:
        """Whole 100 ms frames, shape ``(channels, n_frames * hop)``; returns the frame peaks."""
        n_frames = frames.shape[1] // self.hop
        shaped = frames[:, : n_frames * self.hop].reshape(self.channels, n_frames, self.hop)
        with np.errstate(over="ignore", invalid="ignore"):
            power = np.einsum("cfs,cfs->fc", shaped, shaped)
        if not np.isfinite(power).all():  # float32 squares overflowed (a float stem far above 0 dBFS)
            power = np.einsum("cfs,cfs->fc", shaped, shaped, dtype=np.float64)
        self._power.append(power.astype(np.float64) / self.hop)
        peaks = frames_abs[:, : n_frames * self.hop].reshape(self.channels, n_frames, self.hop).max(axis=(0, 2))
        self._peak.append(peaks)
        return peaks

    def result(self) -> dict[str, np.ndarray]:
        def stack(name, shape):
            parts = getattr(self, name)
            setattr(self, name, [])  # the pieces go as the whole is made: never both twice over
            return np.concatenate(parts) if parts else np.zeros(shape)
        return {
            "power": stack("_power", (0, self.channels)),
            "peak": stack("_peak", (0,)),
        }
