"""The K-weighting kernel: BS.1770-4 Annex 1 filter and 10 ms energy sums in one pass over a block.

Two implementations of the same arithmetic, chosen once per process (:data:`KERNEL`):

``"numba"``
    A compiled loop (numba, when installed: ``pip install mixbridge[fast]``) that runs both
    biquads of two channels side by side in float64 and sums each 10 ms sub-hop's squares as it
    goes: no temporary arrays, no second pass for the energies, and two independent recursions
    per iteration for the processor to overlap.  Twice as fast as the scipy path.
``"scipy"``
    ``scipy.signal.sosfilt`` on the channel-major block (float32, both channels in one call),
    then the sub-hop energies from one ``einsum``.  Used when numba is not installed.

Why numba and not a C extension: a C extension needs a compiler on every install, or wheels
built for every platform REAPER runs on (Windows, macOS, Linux; x86-64 and arm64); numba ships
those wheels itself.  Its price is the install size (llvmlite) and start-up: importing numba
and loading the compiled kernel from numba's on-disk cache takes about 0.3 s per process, paid
once by the worker pool's fork server (compiled there, inherited by every worker).  Why not
only scipy: ``sosfilt`` is already the best scipy has here (float64 ``sosfilt``, a complex
view of both channels, and a 4th-order ``lfilter`` were all measured as fast or slower; see
``docs/analysis.md``).

Both kernels agree to about 1e-5 dB on integrated loudness (tests/test_kweight.py); the
Tech 3341/3342 conformance tests pass with either.
"""
from __future__ import annotations

import numpy as np

#: Denormal guard: a +/-1e-15 Nyquist tone added to the input.  A decaying IIR state sinks into
#: subnormal floats after every drum hit, and subnormal arithmetic is ~50x slower; this keeps the
#: state normal.  Its K-weighted power is about -296 dB, far below anything reported.
GUARD = 1e-15

try:  # pragma: no cover - which branch runs depends on the install
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None


def _kernel_source(x, sos, state, acc, pos, subhop, out):  # pragma: no cover - compiled
    """Filter ``x`` (channels, n) float32 through two biquads; write finished sub-hop means to ``out``.

    ``state`` (channels, 4) float64 holds each channel's biquad states, ``acc`` (channels,) the
    running sum of squares of the open sub-hop and ``pos[0]`` how many samples it holds.  Returns
    the number of sub-hops written.
    """
    channels, n = x.shape
    b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    d0, d1, d2, e1, e2 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    start = pos[0]
    hops = 0
    c = 0
    while c < channels:
        pair = c + 1 < channels
        s1, s2, t1, t2 = state[c, 0], state[c, 1], state[c, 2], state[c, 3]
        acc0 = acc[c]
        if pair:
            u1, u2, w1, w2 = state[c + 1, 0], state[c + 1, 1], state[c + 1, 2], state[c + 1, 3]
            acc1 = acc[c + 1]
        else:
            u1 = u2 = w1 = w2 = 0.0
            acc1 = 0.0
        filled = start
        hops = 0
        for k in range(n):
            g = GUARD if k & 1 else -GUARD
            v = x[c, k] + g
            y = b0 * v + s1
            s1 = b1 * v - a1 * y + s2
            s2 = b2 * v - a2 * y
            z = d0 * y + t1
            t1 = d1 * y - e1 * z + t2
            t2 = d2 * y - e2 * z
            acc0 += z * z
            if pair:
                v = x[c + 1, k] + g
                y = b0 * v + u1
                u1 = b1 * v - a1 * y + u2
                u2 = b2 * v - a2 * y
                z = d0 * y + w1
                w1 = d1 * y - e1 * z + w2
                w2 = d2 * y - e2 * z
                acc1 += z * z
            filled += 1
            if filled == subhop:
                out[hops, c] = acc0 / subhop
                acc0 = 0.0
                if pair:
                    out[hops, c + 1] = acc1 / subhop
                    acc1 = 0.0
                hops += 1
                filled = 0
        state[c, 0], state[c, 1], state[c, 2], state[c, 3] = s1, s2, t1, t2
        acc[c] = acc0
        if pair:
            state[c + 1, 0], state[c + 1, 1], state[c + 1, 2], state[c + 1, 3] = u1, u2, w1, w2
            acc[c + 1] = acc1
        c += 2
    pos[0] = (start + n) % subhop
    return hops


if _numba is not None:  # pragma: no cover - depends on the install
    # Eager compilation with one signature: importing this module leaves the kernel ready (from
    # numba's cache when one exists), so a fork server that preloads it hands it to every worker.
    _compiled = _numba.njit(
        "int64(float32[:, ::1], float64[:, ::1], float64[:, ::1], float64[::1], int64[::1], int64, float64[:, ::1])",
        cache=True, nogil=True)(_kernel_source)
    KERNEL = "numba"
else:  # pragma: no cover
    _compiled = None
    KERNEL = "scipy"

KERNELS = ("numba", "scipy") if _numba is not None else ("scipy",)


class KWeighting:
    """Streaming K-weighting and sub-hop energies of ``(channels, frames)`` float32 blocks.

    Parameters
    ----------
    sos : ndarray [shape=(2, 6)]
        The two biquads (:func:`bridge.analyze.loudness.k_weighting_sos`).
    channels : int
    subhop : int
        Samples per sub-hop.
    kernel : {"numba", "scipy"}, optional
        Defaults to :data:`KERNEL`.
    """

    def __init__(self, sos: np.ndarray, channels: int, subhop: int, kernel: str | None = None):
        self.kernel = kernel or KERNEL
        if self.kernel not in KERNELS:
            raise ValueError(f"K-weighting kernel {self.kernel!r} is not available here (have {KERNELS})")
        self.channels = channels
        self.subhop = subhop
        if self.kernel == "numba":
            self._sos = np.ascontiguousarray(sos, dtype=np.float64)
            self._state = np.zeros((channels, 4))
            self._acc = np.zeros(channels)
            self._pos = np.zeros(1, dtype=np.int64)
        else:
            self._sos = sos.astype(np.float32)
            self._zi = np.zeros((2, channels, 2), dtype=np.float32)
            self._pending = np.zeros((channels, 0), dtype=np.float32)
            self._guard = np.zeros((1, 0), dtype=np.float32)

    def feed(self, channel_major: np.ndarray) -> np.ndarray:
        """Filter one block; returns the mean squares of the sub-hops it completed, ``(hops, channels)`` float64."""
        if self.kernel == "numba":
            x = np.ascontiguousarray(channel_major, dtype=np.float32)
            out = np.empty(((int(self._pos[0]) + x.shape[1]) // self.subhop, self.channels))
            hops = _compiled(x, self._sos, self._state, self._acc, self._pos, self.subhop, out)
            return out[:hops]
        return self._feed_scipy(channel_major)

    def _feed_scipy(self, channel_major: np.ndarray) -> np.ndarray:
        from scipy import signal

        n = channel_major.shape[1]
        if self._guard.shape[1] < n:
            self._guard = np.where(np.arange(n) % 2, GUARD, -GUARD).astype(np.float32)[None, :]
        guarded = channel_major + self._guard[:, :n]
        weighted, self._zi = signal.sosfilt(self._sos, guarded, axis=-1, zi=self._zi)
        if self._pending.shape[1]:
            weighted = np.concatenate([self._pending, weighted], axis=1)
        whole = weighted.shape[1] // self.subhop * self.subhop
        self._pending = weighted[:, whole:].copy()
        if not whole:
            return np.zeros((0, self.channels))
        hops = weighted[:, :whole].reshape(self.channels, -1, self.subhop)
        energy = np.einsum("chs,chs->hc", hops, hops)
        if not np.isfinite(energy).all():  # float32 squares overflowed: a float stem far above 0 dBFS
            energy = np.einsum("chs,chs->hc", hops, hops, dtype=np.float64)
        return (energy / np.float32(self.subhop)).astype(np.float64)
