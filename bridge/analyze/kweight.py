"""The K-weighting kernel: BS.1770-4 Annex 1 filter and 10 ms energy sums, a block at a time.

The two biquads are one linear system of four states per channel, so a block of ``L`` samples is
exactly (no truncation, no approximation)

.. math::  y_k = T x_k + O s_k, \\qquad s_{k+1} = A^L s_k + G x_k

with ``T`` the ``L x L`` lower-triangular Toeplitz matrix of the impulse response, ``O`` the
state-to-output matrix and ``G`` the input-to-state matrix.  Every block's ``T x_k`` and ``G x_k``
of every channel is one matrix product over the whole audio block (BLAS, float32 for ``T``,
float64 for ``G``).  The only recursion left runs over blocks, not samples: the states
``s_k`` come from a doubling scan (``s_{k+2^j} += (A^L)^{2^j} s_k``), about ten small products
per second of audio.  The sub-hop energies are one ``einsum`` over the output.

Why this and not a compiled loop: the previous kernel was a numba loop (about 1.2x faster per
sample than this one), but numba and llvmlite cost 180 MB of the benchmark session's 551 MB peak
resident memory (the fork server and each worker load them), 1.3 s of import on the critical
path of a process's first pool, and a 200 MB dependency.  A C extension would need wheels for
every platform REAPER runs on.  This kernel needs numpy alone and runs at about 0.43 ms per second
of stereo audio on one core (the file's decode takes about 0.75 ms); see ``docs/analysis.md``.

Precision: the block products run in float32 and the states in float64; sub-hop energies agree
with a float64 ``sosfilt`` to about 2e-5 dB at every level (``tests/test_vectorised.py``).  No
recursion runs in float32, so decaying state never turns into slow subnormal floats there; the
float64 states are set to zero below :data:`TINY_STATE`.
"""
from __future__ import annotations

import numpy as np

#: The kernel's name (reported by ``benchmarks/bench_analyze.py``).
KERNEL = "numpy blocked state-space"
#: Float64 states below this are zero: their output is below -600 dB, and it keeps the
#: block recursion away from subnormal numbers in long silences.
TINY_STATE = 1e-30
#: Preferred samples per block: long enough for the products to run at BLAS speed, short
#: enough that the Toeplitz product (``L`` multiply-adds per sample) stays cheap.
PREFERRED_BLOCK = 64


def block_length(sample_rate: int) -> int:
    """The divisor of ``sample_rate`` in 32..96 closest to :data:`PREFERRED_BLOCK` (64 if none).

    Stems are read in blocks of one second (``sample_rate`` frames), so a divisor leaves no
    samples over between blocks and nothing is copied to carry them.
    """
    for length in sorted(range(32, 97), key=lambda v: (abs(v - PREFERRED_BLOCK), v)):
        if sample_rate % length == 0:
            return length
    return PREFERRED_BLOCK


def state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(A, B, C, D)`` of two transposed-direct-form-II biquads in cascade, float64.

    The state is ``[s1, s2, t1, t2]`` (first biquad's two states, then the second's), so that
    ``s' = A s + B x`` and ``y = C s + D x`` reproduce ``scipy.signal.sosfilt`` sample by sample.
    """
    (b0, b1, b2, _, a1, a2), (d0, d1, d2, _, e1, e2) = np.asarray(sos, dtype=np.float64)

    def step(s: np.ndarray, v: float) -> tuple[np.ndarray, float]:
        s1, s2, t1, t2 = s
        y = b0 * v + s1
        z = d0 * y + t1
        return np.array([b1 * v - a1 * y + s2, b2 * v - a2 * y, d1 * y - e1 * z + t2, d2 * y - e2 * z]), z

    a = np.empty((4, 4))
    c = np.empty(4)
    for j in range(4):
        a[:, j], c[j] = step(np.eye(4)[j], 0.0)
    b, d = step(np.zeros(4), 1.0)
    return a, b, c, float(d)


class KWeighting:
    """Streaming K-weighting and sub-hop energies of ``(channels, frames)`` float32 blocks.

    Parameters
    ----------
    sos : ndarray [shape=(2, 6)]
        The two biquads (:func:`bridge.analyze.loudness.k_weighting_sos`).
    channels : int
    subhop : int
        Samples per sub-hop.
    block : int, optional
        Samples per state block ``L`` (default :func:`block_length` of ``100 * subhop``).

    Notes
    -----
    Results do not depend on how the stream is cut into blocks: samples short of a whole state
    block are carried to the next call, and :meth:`finish` measures them at the end.
    """

    def __init__(self, sos: np.ndarray, channels: int, subhop: int, block: int | None = None):
        self.channels = channels
        self.subhop = subhop
        self.block = length = block or block_length(100 * subhop)
        a, b, c, d = state_space(sos)
        observe = np.empty((length, 4))  # row i: C A^i
        impulse = np.empty(length)  # h[0] = D, h[i] = C A^(i-1) B
        impulse[0] = d
        power = np.eye(4)
        for i in range(length):
            observe[i] = c @ power
            if i + 1 < length:
                impulse[i + 1] = observe[i] @ b
            power = a @ power
        toeplitz = np.zeros((length, length))
        for i in range(length):
            toeplitz[i, :i + 1] = impulse[i::-1]
        gain = np.empty((length, 4))  # row j: A^(L-1-j) B
        power_j = np.eye(4)
        for j in range(length - 1, -1, -1):
            gain[j] = power_j @ b
            power_j = a @ power_j
        self._impulse_t = np.ascontiguousarray(toeplitz.T, dtype=np.float32)
        self._observe_t = np.ascontiguousarray(observe.T, dtype=np.float32)
        self._gain = gain
        # (A^L)^(2^j) for the scan, transposed for row-vector states.
        self._jumps: list[np.ndarray] = []
        jump = power  # A^L
        while len(self._jumps) < 48 and np.abs(jump).max() > TINY_STATE:
            self._jumps.append(np.ascontiguousarray(jump.T))
            jump = jump @ jump
        self._buffers: dict[str, np.ndarray] = {}
        self._state = np.zeros((channels, 4))
        self._pending = np.zeros((channels, 0), dtype=np.float32)  # input short of a whole block
        self._open = np.zeros((channels, 0), dtype=np.float32)  # output short of a whole sub-hop

    def feed(self, channel_major: np.ndarray) -> np.ndarray:
        """Filter one block; returns the mean squares of the sub-hops it completed, ``(hops, channels)`` float64."""
        x = np.asarray(channel_major, dtype=np.float32)
        if self._pending.shape[1]:
            x = np.concatenate([self._pending, x], axis=1)
        blocks = x.shape[1] // self.block
        used = blocks * self.block
        self._pending = x[:, used:].copy()
        if not blocks:
            return np.zeros((0, self.channels))
        return self._energies(self._filter(x[:, :used], blocks))

    def finish(self) -> np.ndarray:
        """Measure the samples short of a whole block (zero-padded, which changes no earlier output)."""
        left = self._pending.shape[1]
        if not left:
            return np.zeros((0, self.channels))
        padded = np.zeros((self.channels, self.block), dtype=np.float32)
        padded[:, :left] = self._pending
        self._pending = padded[:, :0]
        return self._energies(self._filter(padded, 1)[:, :left])

    def _buffer(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A scratch array kept between calls (1 s blocks reuse the same memory every time)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf

    def _filter(self, x: np.ndarray, blocks: int) -> np.ndarray:
        """K-weighted ``x`` (``(channels, blocks * L)``), carrying the states on.

        The result is a scratch array: valid until the next call.
        """
        channels, length = self.channels, self.block
        rows = np.ascontiguousarray(x).reshape(channels * blocks, length)
        y = np.matmul(rows, self._impulse_t, out=self._buffer("y", (channels * blocks, length), np.float32))
        # Input-to-state in float64: the high-pass keeps low-frequency content in its states, and a
        # float32 product there would cost 1e-3 dB on quiet passages of bass-heavy stems.
        wide = self._buffer("rows64", rows.shape, np.float64)
        np.copyto(wide, rows)
        ends = np.matmul(wide, self._gain, out=self._buffer("ends", (channels * blocks, 4), np.float64))
        ends = ends.reshape(channels, blocks, 4)  # ends[c, k]: channel c's state after block k
        ends[:, 0] += self._state @ self._jumps[0]
        span = 1
        for jump in self._jumps:
            if span >= blocks:
                break
            ends[:, span:] += ends[:, :-span] @ jump
            span *= 2
        starts = self._buffer("starts", (channels, blocks, 4), np.float32)
        starts[:, 0] = self._state
        starts[:, 1:] = ends[:, :-1]
        self._state = ends[:, -1].copy()
        self._state[np.abs(self._state) < TINY_STATE] = 0.0
        # float32 flushes the float64 states below ~1e-45 to zero by itself; tinier than
        # TINY_STATE but still float32-subnormal ones are set to zero here.
        starts[np.abs(starts) < TINY_STATE] = 0.0
        y += starts.reshape(channels * blocks, 4) @ self._observe_t
        return y.reshape(channels, blocks * length)

    def _energies(self, weighted: np.ndarray) -> np.ndarray:
        """Mean squares of the whole sub-hops of the open output plus ``weighted``."""
        if self._open.shape[1]:
            weighted = np.concatenate([self._open, weighted], axis=1)
        whole = weighted.shape[1] // self.subhop * self.subhop
        self._open = weighted[:, whole:].copy()
        if not whole:
            return np.zeros((0, self.channels))
        hops = weighted[:, :whole].reshape(-1, self.subhop)
        sums = np.einsum("hs,hs->h", hops, hops)  # no squared copy; einsum raises no overflow warning
        if not np.isfinite(sums).all():  # float32 squares overflowed: a float stem far above 0 dBFS
            block = weighted[:, :whole].astype(np.float64).reshape(-1, self.subhop)
            sums = np.einsum("hs,hs->h", block, block)
        energy = sums.astype(np.float64).reshape(self.channels, -1).T / self.subhop
        return np.ascontiguousarray(energy)
