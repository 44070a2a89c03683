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


class ClipDetector:
    """Counts flat runs per channel, carrying an open run across block boundaries.

    A run is a sequence of equal consecutive samples at or above :data:`FLAT_FLOOR_DBFS`.  Runs are
    kept as a histogram over their level (0.05 dB bins), so memory stays constant; which of them
    are clipping is decided at the end, when the stem's peak is known.
    """

    def __init__(self, channels: int):
        self._open = np.zeros(channels, dtype=np.int64)
        self._open_level = np.zeros(channels, dtype=np.float64)
        self._last = np.full(channels, np.nan, dtype=np.float32)
        self._runs = np.zeros(_BINS, dtype=np.int64)
        self._samples = np.zeros(_BINS, dtype=np.int64)
        self._worst = np.zeros(_BINS, dtype=np.int64)

    def _close(self, repeats: np.ndarray, levels: np.ndarray) -> None:
        """Count finished runs (``repeats`` flat samples after the first, at ``levels``) in the histogram."""
        lengths = np.asarray(repeats, dtype=np.int64) + 1
        keep = lengths >= CLIP_MIN_RUN
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
            self._last = samples[:, -1].copy()
            return
        # Sample k is "flat" when it repeats sample k-1 at a level worth watching.
        hot = np.zeros((channels, n + 1), dtype=bool)
        hot[:, 0] = samples[:, 0] == self._last
        np.equal(samples[:, 1:], samples[:, :-1], out=hot[:, 1:n])
        hot[:, :n] &= magnitudes >= floor
        self._last = samples[:, -1].copy()
        ending = (self._open > 0) & ~hot[:, 0]
        if ending.any():  # open runs from the last block that stop at its edge
            self._close(self._open[ending], self._open_level[ending])
        edges = np.flatnonzero(np.diff(hot.view(np.int8).ravel(), prepend=np.int8(0)))
        starts, stops = edges[0::2], edges[1::2]
        row = starts // (n + 1)
        first = starts - row * (n + 1)
        lengths = stops - starts
        levels = magnitudes[row, first].astype(np.float64)
        carried = (first == 0) & (self._open[row] > 0)
        lengths[carried] += self._open[row[carried]]
        trailing = stops - row * (n + 1) == n
        self._close(lengths[~trailing], levels[~trailing])
        self._open = np.zeros(channels, dtype=np.int64)
        self._open_level = np.zeros(channels, dtype=np.float64)
        self._open[row[trailing]] = lengths[trailing]
        self._open_level[row[trailing]] = levels[trailing]

    def result(self, sample_peak: float) -> ClipStats:
        """Close open runs and count those at full scale or at the stem's peak."""
        self._close(self._open[self._open > 0], self._open_level[self._open > 0])
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
        self.sum += channel_major @ np.ones(channel_major.shape[1], dtype=np.float32)

    def feed_frames(self, frames: np.ndarray, frames_abs: np.ndarray) -> np.ndarray:
        """Whole 100 ms frames, shape ``(channels, n_frames * hop)``; returns the frame peaks."""
        n_frames = frames.shape[1] // self.hop
        shaped = frames[:, : n_frames * self.hop].reshape(self.channels, n_frames, self.hop)
        self._power.append(np.einsum("cfs,cfs->fc", shaped, shaped).astype(np.float64) / self.hop)
        peaks = frames_abs[:, : n_frames * self.hop].reshape(self.channels, n_frames, self.hop).max(axis=(0, 2))
        self._peak.append(peaks)
        return peaks

    def result(self) -> dict[str, np.ndarray]:
        def stack(parts, shape):
            return np.concatenate(parts) if parts else np.zeros(shape)
        return {
            "power": stack(self._power, (0, self.channels)),
            "peak": stack(self._peak, (0,)),
        }
