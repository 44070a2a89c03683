"""Streaming polyphase resampling, exact in the interior of a long stream.

Used only where stems of different sample rates are summed into the mix.  Each block is
resampled with ``scipy.signal.resample_poly`` together with enough context on both sides that the
filter never sees the block edges, so the concatenated output equals resampling the whole stream.
"""
from __future__ import annotations

import math

import numpy as np


class StreamResampler:
    """Resample ``(frames, channels)`` blocks from ``rate_in`` to ``rate_out`` Hz."""

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        g = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        # resample_poly's default filter reaches 10 * max(up, down) taps at the upsampled rate.
        reach = 10 * max(self.up, self.down) / self.up + 2
        self.context = int(math.ceil(reach / self.down)) * self.down
        self._data = np.zeros((self.context, channels), dtype=np.float32)

    def _run(self, data: np.ndarray, length: int) -> np.ndarray:
        from scipy import signal  # only mixed-rate sessions need it

        segment = data[: self.context + length + self.context]
        out = signal.resample_poly(segment, self.up, self.down, axis=0)
        first = self.context * self.up // self.down
        return out[first: first + length * self.up // self.down].astype(np.float32)

    def feed(self, block: np.ndarray) -> np.ndarray:
        if self.up == self.down:
            return block
        data = np.concatenate([self._data, block])
        length = (len(data) - 2 * self.context) // self.down * self.down
        if length <= 0:
            self._data = data
            return np.zeros((0, block.shape[1]), dtype=np.float32)
        out = self._run(data, length)
        self._data = data[length:]
        return out

    def finish(self) -> np.ndarray:
        if self.up == self.down:
            return np.zeros((0, self._data.shape[1]), dtype=np.float32)
        remaining = len(self._data) - self.context
        length = int(math.ceil(max(remaining, 0) / self.down)) * self.down
        pad = self.context + length + self.context - len(self._data)
        data = np.concatenate([self._data, np.zeros((pad, self._data.shape[1]), np.float32)])
        exact = remaining * self.up // self.down
        return self._run(data, length)[:exact] if length else np.zeros((0, data.shape[1]), np.float32)
