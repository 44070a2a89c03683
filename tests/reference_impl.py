"""The block-wise implementations the vectorised ones replaced (issue 15), kept as test oracles.

Verbatim copies of ``ClipDetector`` (bridge/analyze/levels.py) and ``TruePeakMeter``
(bridge/analyze/truepeak.py) before the whole-block rewrite; tests/test_vectorised.py checks that
the new code gives the same numbers on random and adversarial signals.
"""
from __future__ import annotations

import numpy as np

from bridge.analyze.levels import _BIN_DB, _BINS, CLIP_MIN_RUN, CLIP_NEAR_PEAK_DB, FLAT_FLOOR_DBFS, ClipStats
from bridge.analyze.truepeak import _ROW_MATRIX, MAX_PHASE_GAIN, OVERSAMPLE_BELOW_HZ, SEGMENT_ROWS, TAPS


class OldClipDetector:
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


class OldTruePeakMeter:
    """Streaming true-peak meter over all channels.

    Parameters
    ----------
    sample_rate : int
        Hz.  Below 176.4 kHz the signal is interpolated 4x; at 176.4 kHz and above the stream is
        already oversampled enough and the sample peak is reported.
    channels : int

    Notes
    -----
    The reported value is ``max(interpolated peak, sample peak)``: the Annex filter is not
    exactly interpolating (its phase 0 has a 0.97 centre tap), and a true peak below the sample
    peak would be a measurement artefact.
    """

    def __init__(self, sample_rate: int, channels: int):
        self.oversample = sample_rate < OVERSAMPLE_BELOW_HZ
        # Per channel, the input samples not yet consumed by a whole row (at least 11).
        self._context = np.zeros((channels, TAPS - 1), dtype=np.float32)
        self.peak = 0.0
        self.sample_peak = 0.0

    def feed(self, channel_major: np.ndarray, block_peak: float) -> None:
        """Measure one block, shape ``(channels, frames)``, whose sample peak is ``block_peak``."""
        if channel_major.shape[1] == 0:
            return
        self.sample_peak = max(self.sample_peak, block_peak)
        self.peak = max(self.peak, block_peak)
        if not self.oversample:
            return
        carried = float(np.abs(self._context).max(initial=0.0))
        padded = np.concatenate([self._context, channel_major], axis=1)
        rows = (padded.shape[1] - TAPS) // TAPS
        if max(block_peak, carried) * MAX_PHASE_GAIN > self.peak:
            self._interpolate_where_needed(padded, rows)
        self._context = padded[:, rows * TAPS:].copy()

    def finish(self) -> float:
        """Flush the interpolator's tail with zeros; returns the true peak as a linear value."""
        if self.oversample:
            tail = np.concatenate([self._context, np.zeros((len(self._context), 2 * TAPS), np.float32)], axis=1)
            rows = (tail.shape[1] - TAPS) // TAPS
            self._interpolate_where_needed(tail, rows)
        return self.peak

    def _interpolate_where_needed(self, padded: np.ndarray, rows: int) -> None:
        """Interpolate the runs of segments whose inputs could beat the running peak."""
        segments = -(-rows // SEGMENT_ROWS)
        span = segments * SEGMENT_ROWS * TAPS + TAPS
        magnitudes = np.abs(padded[:, :span])
        if magnitudes.shape[1] < span:
            magnitudes = np.pad(magnitudes, ((0, 0), (0, span - magnitudes.shape[1])))
        # Segment k's outputs read inputs [k*S*12, (k+1)*S*12 + 12): its own samples and the next row.
        body = magnitudes[:, : segments * SEGMENT_ROWS * TAPS].reshape(len(padded), segments, -1).max(axis=(0, 2))
        head = magnitudes[:, SEGMENT_ROWS * TAPS::SEGMENT_ROWS * TAPS].max(axis=0)[:segments]
        bound = np.maximum(body, np.pad(head, (0, segments - len(head)))) * MAX_PHASE_GAIN
        hot = bound > self.peak
        if not hot.any():
            return
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hot.view(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            first_row, last_row = start * SEGMENT_ROWS, min(stop * SEGMENT_ROWS, rows)
            for channel in range(len(padded)):
                self._interpolate(padded[channel, first_row * TAPS:], last_row - first_row)

    def _interpolate(self, samples: np.ndarray, rows: int) -> None:
        """All 4 phases of outputs ``[0, 12 * rows)`` of one contiguous channel."""
        if rows <= 0:
            return
        view = np.lib.stride_tricks.as_strided(
            samples, shape=(rows, 2 * TAPS), strides=(TAPS * samples.strides[0], samples.strides[0]))
        out = view @ _ROW_MATRIX
        self.peak = max(self.peak, float(out.max()), float(-out.min()))
