"""Sample levels on the shared 100 ms grid: power, peak, DC and clipping, streamed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A sample at or above -0.1 dBFS counts as "at full scale" for clip detection.
CLIP_LEVEL = 10.0 ** (-0.1 / 20.0)
#: Samples in a flat full-scale run that make a clip.  A clipped waveform repeats the same value
#: (the converter's or the float clamp's ceiling); a full-scale sine at 997 Hz puts three samples
#: above -0.1 dBFS at every crest, but never two equal ones in a row.
CLIP_MIN_RUN = 3


@dataclass(frozen=True, slots=True)
class ClipStats:
    """Runs of consecutive samples at or near full scale.

    Attributes
    ----------
    runs : int
        Runs of at least :data:`CLIP_MIN_RUN` samples in any one channel.
    worst_run_samples : int
        The longest run found (any channel, any length).
    clipped_samples : int
        Samples inside counted runs.
    """

    runs: int
    worst_run_samples: int
    clipped_samples: int


class ClipDetector:
    """Counts flat runs at full scale per channel, carrying an open run across block boundaries.

    A run is a sequence of equal consecutive samples at or above :data:`CLIP_LEVEL`; its length
    counts the samples, so a flat top of three equal samples is a run of 3.
    """

    def __init__(self, channels: int):
        self._open = np.zeros(channels, dtype=np.int64)
        self._last = np.full(channels, np.nan, dtype=np.float32)
        self.runs = 0
        self.worst = 0
        self.clipped = 0

    def _close(self, repeats: int) -> None:
        length = repeats + 1
        self.worst = max(self.worst, length)
        if length >= CLIP_MIN_RUN:
            self.runs += 1
            self.clipped += length

    def feed(self, samples: np.ndarray, magnitudes: np.ndarray, block_peak: float) -> None:
        """Take a block shaped ``(channels, frames)`` and its ``|x|``; cheap unless it reaches full scale."""
        if block_peak < CLIP_LEVEL and not self._open.any():
            if samples.shape[1]:
                self._last = samples[:, -1].copy()
            return
        previous = np.concatenate([self._last[:, None], samples[:, :-1]], axis=1)
        # Sample n is "flat" when it repeats sample n-1; the first sample of a flat run is the
        # one before the first repeat, hence the +1 on closing.
        hot = (magnitudes >= CLIP_LEVEL) & (samples == previous)
        self._last = samples[:, -1].copy()
        for channel in range(hot.shape[0]):
            mask = hot[channel]
            if not mask.any():
                if self._open[channel]:
                    self._close(int(self._open[channel]))
                    self._open[channel] = 0
                continue
            edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
            starts = np.flatnonzero(edges == 1)
            stops = np.flatnonzero(edges == -1)
            lengths = stops - starts
            if starts[0] == 0 and self._open[channel]:
                lengths[0] += self._open[channel]
            elif self._open[channel]:
                self._close(int(self._open[channel]))
            trailing = stops[-1] == len(mask)
            for length in lengths[:-1] if trailing else lengths:
                self._close(int(length))
            self._open[channel] = lengths[-1] if trailing else 0

    def result(self) -> ClipStats:
        for length in self._open:
            if length:
                self._close(int(length))
        self._open[:] = 0
        return ClipStats(runs=self.runs, worst_run_samples=self.worst, clipped_samples=self.clipped)


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
