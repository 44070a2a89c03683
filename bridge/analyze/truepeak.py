"""True peak per ITU-R BS.1770-4 Annex 2, streamed.

The Annex's 48-tap, 4-phase interpolator runs as one matrix product per block and channel: row
``r`` of a strided view holds input samples ``[12 r, 12 r + 24)``, and a ``(24, 48)`` matrix holds
the 4 phases of the 12 outputs that row fully determines.  That is one well-shaped BLAS call
instead of 48 skinny ones, about as fast as decoding the file.

Segments of 1200 samples are skipped when they provably cannot beat the running peak: an
interpolated sample can exceed the largest ``|x|`` among its 12 inputs by at most the largest
per-phase sum of ``|h|`` (2.023, +6.1 dB), and a segment's inputs are its own samples and the
first 11 of the next.  The result is identical to interpolating everything.
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
#: Largest possible gain of one interpolated sample over the peak of its inputs.
MAX_PHASE_GAIN = float(np.abs(ANNEX2_TAPS).sum(axis=0).max())
#: Oversample (4x) below this rate; at 176.4 kHz and above the sample peak is the true peak.
OVERSAMPLE_BELOW_HZ = 176_400
#: Rows (of 12 outputs) per pruning segment: 1200 samples, 25 ms at 48 kHz.
SEGMENT_ROWS = 100


def _row_matrix() -> np.ndarray:
    """``(2 * TAPS, TAPS * 4)``: column ``4 j + phase`` is output ``12 r + j`` of input row ``r``."""
    matrix = np.zeros((2 * TAPS, TAPS * 4), dtype=np.float32)
    for j in range(TAPS):
        matrix[j:j + TAPS, 4 * j:4 * j + 4] = ANNEX2_TAPS
    return matrix


_ROW_MATRIX = _row_matrix()


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
        """Interpolate the segments whose inputs could beat the running peak, all in one product.

        The bound per segment comes from one reshape of ``|x|``; the rows of every hot segment of
        every channel are gathered from one strided view and multiplied by the row matrix at once.
        """
        if rows <= 0:
            return
        channels = len(padded)
        segments = -(-rows // SEGMENT_ROWS)
        width = SEGMENT_ROWS * TAPS
        # Segment k's outputs read inputs [k*S*12, (k+1)*S*12 + 11): its own samples and the first
        # 11 of the next segment's (the last row's outputs put their centre taps there).
        covered = min(padded.shape[1], segments * width + TAPS - 1)
        magnitudes = np.zeros((channels, (segments + 1) * width), np.float32)
        np.abs(padded[:, :covered], out=magnitudes[:, :covered])
        shaped = magnitudes.reshape(channels, segments + 1, width)
        body = shaped[:, :segments].max(axis=(0, 2))
        head = shaped[:, 1:, :TAPS - 1].max(axis=(0, 2))
        hot = np.maximum(body, head) * MAX_PHASE_GAIN > self.peak
        if not hot.any():
            return
        samples = np.ascontiguousarray(padded)
        if len(samples) and samples.shape[1] < rows * TAPS + TAPS:
            samples = np.pad(samples, ((0, 0), (0, rows * TAPS + TAPS - samples.shape[1])))
        step = samples.strides[1]
        view = np.lib.stride_tricks.as_strided(
            samples, shape=(channels, rows, 2 * TAPS), strides=(samples.strides[0], TAPS * step, step))
        if hot.all():
            out = view @ _ROW_MATRIX
        else:
            picked = np.repeat(hot, SEGMENT_ROWS)[:rows]
            out = view[:, picked] @ _ROW_MATRIX
        if out.size:
            self.peak = max(self.peak, float(out.max()), float(-out.min()))
