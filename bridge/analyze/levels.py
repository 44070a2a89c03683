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

    def _close(self, repeats: int, level: float) -> None:
        length = repeats + 1
        if length < CLIP_MIN_RUN:
            return
        db = 20.0 * np.log10(max(level, 1e-12))
        b = int(np.clip(round((db - FLAT_FLOOR_DBFS) / _BIN_DB), 0, _BINS - 1))
        self._runs[b] += 1
        self._samples[b] += length
        self._worst[b] = max(self._worst[b], length)

    def feed(self, samples: np.ndarray, magnitudes: np.ndarray, block_peak: float) -> None:
        """Take a block shaped ``(channels, frames)`` and its ``|x|``."""
        floor = 10.0 ** (FLAT_FLOOR_DBFS / 20.0)
        if samples.shape[1] == 0:
            return
        if block_peak < floor and not self._open.any():
            self._last = samples[:, -1].copy()
            return
        previous = np.concatenate([self._last[:, None], samples[:, :-1]], axis=1)
        # Sample n is "flat" when it repeats sample n-1 at a level worth watching.
        hot = (samples == previous) & (magnitudes >= floor)
        self._last = samples[:, -1].copy()
        for channel in range(hot.shape[0]):
            mask = hot[channel]
            if not mask.any():
                if self._open[channel]:
                    self._close(int(self._open[channel]), self._open_level[channel])
                    self._open[channel] = 0
                continue
            edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
            starts = np.flatnonzero(edges == 1)
            stops = np.flatnonzero(edges == -1)
            lengths = stops - starts
            levels = magnitudes[channel, starts].astype(np.float64)
            if starts[0] == 0 and self._open[channel]:
                lengths[0] += self._open[channel]
            elif self._open[channel]:
                self._close(int(self._open[channel]), self._open_level[channel])
            trailing = stops[-1] == len(mask)
            count = len(lengths) - 1 if trailing else len(lengths)
            for k in range(count):
                self._close(int(lengths[k]), float(levels[k]))
            self._open[channel] = lengths[-1] if trailing else 0
            self._open_level[channel] = levels[-1] if trailing else 0.0

    def result(self, sample_peak: float) -> ClipStats:
        """Close open runs and count those at full scale or at the stem's peak."""
        for channel, repeats in enumerate(self._open):
            if repeats:
                self._close(int(repeats), self._open_level[channel])
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
