"""True peak per ITU-R BS.1770-4 Annex 2, streamed, with exact pruning.

The Annex's 48-tap, 4-phase interpolator runs as one small matrix product over the samples that
need it.  An interpolated sample can exceed the largest ``|x|`` in its 12-sample window by at most
the largest per-phase sum of ``|h|`` (2.023, +6.1 dB), so only windows whose peak is within 6.1 dB
of the best peak so far are interpolated.  The result is identical to interpolating everything; on
music most windows are provably too quiet and cost only a sliding maximum.
"""
from __future__ import annotations

import numpy as np

_PHASE0 = [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875,
           0.1373291015625, 0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250,
           0.0148925781250, -0.0083007812500]
_PHASE1 = [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500,
           0.4650878906250, 0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625,
           0.0330810546875, -0.0189208984375]
#: The BS.1770-4 Annex 2 example interpolator, shape ``(taps=12, phases=4)``; phases 2 and 3 are
#: phases 1 and 0 reversed.
ANNEX2_TAPS = np.array([_PHASE0, _PHASE1, _PHASE1[::-1], _PHASE0[::-1]], dtype=np.float32).T.copy()
TAPS = ANNEX2_TAPS.shape[0]
#: Largest possible gain of one interpolated sample over its window's peak.
MAX_PHASE_GAIN = float(np.abs(ANNEX2_TAPS).sum(axis=0).max())
#: Oversample (4x) below this rate; at 176.4 kHz and above the sample peak is the true peak.
OVERSAMPLE_BELOW_HZ = 176_400


class TruePeakMeter:
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
        self._context = np.zeros((TAPS - 1, channels), dtype=np.float32)
        self.peak = 0.0
        self.sample_peak = 0.0
        self.last_block_peak = 0.0

    def feed(self, block: np.ndarray, block_abs: np.ndarray) -> None:
        """Measure one block; ``block_abs`` is ``np.abs(block)``, shared with other meters."""
        if len(block) == 0:
            return
        block_peak = float(block_abs.max())
        self.last_block_peak = block_peak
        self.sample_peak = max(self.sample_peak, block_peak)
        self.peak = max(self.peak, block_peak)
        if not self.oversample:
            return
        padded = np.concatenate([self._context, block])
        padded_abs = np.concatenate([np.abs(self._context), block_abs])
        self._context = padded[-(TAPS - 1):].copy()
        self._interpolate(padded, padded_abs)

    def finish(self) -> float:
        """Flush the interpolator's tail with zeros; returns the true peak as a linear value."""
        if self.oversample:
            tail = np.concatenate([self._context, np.zeros_like(self._context)])
            self._interpolate(tail, np.abs(tail))
        return self.peak

    def _interpolate(self, padded: np.ndarray, padded_abs: np.ndarray) -> None:
        """Interpolate every output whose window could beat the running peak.

        Output ``k`` reads ``padded[k : k + 12]``.  Outputs are bounded per group of 12 by the
        peak of the 24 input samples they read, which is cheap; dense loud passages fall back to
        interpolating the whole block at once.
        """
        n_out = len(padded) - (TAPS - 1)
        threshold = self.peak / MAX_PHASE_GAIN
        groups = -(-n_out // TAPS)
        rows_needed = (groups + 1) * TAPS
        if len(padded_abs) < rows_needed:
            padded_abs = np.concatenate(
                [padded_abs, np.zeros((rows_needed - len(padded_abs), padded.shape[1]), np.float32)])
        # One bound per group of 12 outputs, over all channels (a contiguous reduction).
        group_max = padded_abs[:rows_needed].reshape(groups + 1, -1).max(axis=1)
        hot_groups = np.flatnonzero(np.maximum(group_max[:-1], group_max[1:]) > threshold)
        if len(hot_groups) == 0:
            return
        channels = padded.shape[1]
        if len(hot_groups) > 0.25 * groups:
            for channel in range(channels):
                windows = np.lib.stride_tricks.sliding_window_view(padded[:, channel], TAPS)
                self.peak = max(self.peak, float(np.abs(windows @ ANNEX2_TAPS).max()))
            return
        rows = (hot_groups[:, None] * TAPS + np.arange(TAPS)[None, :]).ravel()
        rows = rows[rows < n_out]
        window_rows = rows[:, None] + np.arange(TAPS)[None, :]
        for channel in range(channels):
            windows = padded[window_rows, channel]
            self.peak = max(self.peak, float(np.abs(windows @ ANNEX2_TAPS).max()))
