"""The block-wise implementations the vectorised ones replaced (issue 15), kept as test oracles.

A verbatim copy of ``ClipDetector`` (bridge/analyze/levels.py) before the whole-block rewrite;
tests/test_vectorised.py checks that the new code gives the same numbers on random and adversarial
signals.  (The true-peak meter is checked against interpolating everything, not against its old
code: the old segment pruning missed peaks that straddle a segment boundary after silence.)
"""
from __future__ import annotations

import numpy as np

from bridge.analyze.levels import _BIN_DB, _BINS, CLIP_MIN_RUN, CLIP_NEAR_PEAK_DB, FLAT_FLOOR_DBFS, ClipStats


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


