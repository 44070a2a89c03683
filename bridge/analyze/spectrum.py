"""Spectral band energies on fixed 1/3-octave bands (IEC 61260 base-10 centres, 20 Hz to 20 kHz).

Each 100 ms frame of the shared grid gets one Hann-windowed FFT per channel, whose length is
the frame itself, so bins are 10 Hz apart at every sample rate and spectra compare in Hz across
rates.  Bins are shared among bands by the overlap of their 10 Hz span with each band, so no band
is empty; below about 50 Hz a band holds fewer than one bin and its level is an estimate.  The
per-band energies of L, R and their cross product Re{L R*} are kept, from which mid/side,
correlation and width per band follow (see :mod:`bridge.analyze.stereo`).
"""
from __future__ import annotations

import numpy as np

#: Nominal 1/3-octave centres, Hz (IEC 61260 / ISO 266), 20 Hz .. 20 kHz: 31 bands.
BAND_CENTERS_HZ = np.array([
    20, 25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250,
    1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000], dtype=np.float64)
#: Exact base-10 centres the edges derive from: 1000 * 10^(k/10).
_EXACT_CENTERS_HZ = 1000.0 * 10.0 ** (np.arange(-17, 14) / 10.0)
BAND_LOW_HZ = _EXACT_CENTERS_HZ * 10.0 ** (-1.0 / 20.0)
BAND_HIGH_HZ = _EXACT_CENTERS_HZ * 10.0 ** (1.0 / 20.0)
N_BANDS = len(BAND_CENTERS_HZ)
#: Bands starting at or above this frequency are summed over whole bins.
SPLIT_HZ = 500.0
#: Above this sample magnitude a frame's float32 spectrum could overflow (|X|^2 of a frame of
#: thousands of samples), so it is measured in float64 instead: 2^40, +241 dBFS, only ever reached
#: by broken float renders.  Below it the float32 path runs unchanged.
OVERFLOW_PEAK = float(2 ** 40)


def band_matrix(sample_rate: int, n_fft: int) -> np.ndarray:
    """Map an ``rfft`` power spectrum to band mean-square power.

    Returns shape ``(bins, bands)``.  Each bin spans ``[f - df/2, f + df/2)`` and contributes to
    each band in proportion to the overlap.  The window's energy and the one-sided spectrum's
    factor 2 are folded in later by :class:`BandEnergy`.
    """
    df = sample_rate / n_fft
    freqs = np.arange(n_fft // 2 + 1) * df
    lo = np.maximum(freqs - df / 2, 0.0)[:, None]
    hi = np.minimum(freqs + df / 2, sample_rate / 2)[:, None]
    overlap = np.clip(np.minimum(hi, BAND_HIGH_HZ[None, :]) - np.maximum(lo, BAND_LOW_HZ[None, :]),
                      0.0, None)
    width = np.maximum(hi - lo, 1e-12)
    return overlap / width


class BandEnergy:
    """Streaming per-frame band energies.

    Parameters
    ----------
    sample_rate : int
        Hz, a multiple of 10 so a 100 ms frame is whole.
    channels : int
        Mono keeps one power; two or more keep L, R (the first two channels) and Re{L R*}, and the
        mean power over all channels.

    Notes
    -----
    Energies are mean squares (the units of a sample's square), so a sine of peak amplitude A
    centred in a band reads A^2/2 there.  Frames are the 100 ms hops of the shared grid.
    """

    def __init__(self, sample_rate: int, channels: int):
        import scipy.fft  # here, not at import: only the processes that measure audio pay for it

        self._rfft = scipy.fft.rfft
        self.hop = sample_rate // 10
        self.channels = channels
        window = np.hanning(self.hop + 1)[:-1]  # periodic Hann
        self._window = window.astype(np.float32)
        one_sided = np.full(self.hop // 2 + 1, 2.0)
        one_sided[0] = 1.0
        if self.hop % 2 == 0:
            one_sided[-1] = 1.0
        # Parseval for a windowed frame: mean square = sum(scale * |X|^2) / (N^2 * mean(w^2)).
        scale = one_sided / (self.hop ** 2 * np.mean(window ** 2))
        matrix = band_matrix(sample_rate, self.hop) * scale[:, None]
        # Spectra are reduced as interleaved (re, im) float pairs, so the same reduction gives
        # |X|^2 from squares and Re{X Y*} from products.  Narrow low bands share bins
        # fractionally (a small dense matrix); bands from SPLIT_HZ up span many bins and are summed
        # whole-bin with reduceat, which is ~10x cheaper than a dense product over all bins.
        df = sample_rate / self.hop
        self._split_band = int(np.searchsorted(BAND_LOW_HZ, SPLIT_HZ))
        self._split_bin = int(np.ceil(BAND_LOW_HZ[self._split_band] / df))
        low = matrix[: self._split_bin, : self._split_band]
        self._low_matrix = np.repeat(low, 2, axis=0).astype(np.float32)
        n_bins = self.hop // 2 + 1
        # The Nyquist bin is left out so every reduceat index stays inside the array.
        last = n_bins - 1
        edges = np.minimum(np.ceil(np.append(BAND_LOW_HZ[self._split_band:], BAND_HIGH_HZ[-1]) / df).astype(int), last)
        self._high_edges = 2 * edges
        # reduceat returns an element, not zero, for an empty range (bands above Nyquist).
        self._high_empty = edges[1:] <= edges[:-1]
        self._high_scale = np.float32(2.0 / (self.hop ** 2 * np.mean(window ** 2)))
        self._power: list[np.ndarray] = []
        self._ll: list[np.ndarray] = []
        self._rr: list[np.ndarray] = []
        self._lr: list[np.ndarray] = []

    def feed(self, frames: np.ndarray, peaks: np.ndarray | None = None) -> None:
        """Take whole frames, shape ``(channels, n_frames * hop)`` float32.

        ``peaks`` (``(n_frames,)``, each frame's largest ``|sample|`` over all channels), when the
        caller has them, spares a pass over the audio and lets digitally silent frames skip their
        FFTs: their band energies are exactly zero either way.
        """
        n_frames = frames.shape[1] // self.hop
        if n_frames == 0:
            return
        shaped = frames[:, : n_frames * self.hop].reshape(self.channels, n_frames, self.hop)
        top = float(peaks.max()) if peaks is not None else float(np.abs(shaped).max(initial=0.0))
        if top > OVERFLOW_PEAK:
            self._feed_wide(shaped)
            return
        if peaks is None or peaks.all():
            bands = self._bands(shaped)
        else:
            sounding = np.flatnonzero(peaks)
            bands = [np.zeros((n_frames, N_BANDS), np.float32) for _ in range(1 if self.channels == 1 else 4)]
            if len(sounding):
                for whole, part in zip(bands, self._bands(shaped[:, sounding])):
                    whole[sounding] = part
        if self.channels == 1:
            self._power.append(bands[0])
            return
        power, ll, rr, lr = bands
        self._power.append(power)
        self._ll.append(ll)
        self._rr.append(rr)
        self._lr.append(lr)

    def _bands(self, shaped: np.ndarray) -> list[np.ndarray]:
        """``[power]`` (mono) or ``[power, ll, rr, lr]`` of frames ``(ch, frames, hop)``."""
        windowed = shaped * self._window  # (ch, frames, hop)
        spectra = self._rfft(windowed, axis=-1, overwrite_x=True)
        interleaved = spectra.view(np.float32)  # (ch, frames, 2 * bins)
        if self.channels == 1:
            return [self._reduce(np.square(interleaved[0]))]
        ll = self._reduce(np.square(interleaved[0]))
        rr = self._reduce(np.square(interleaved[1]))
        lr = self._reduce(interleaved[0] * interleaved[1])
        if self.channels == 2:
            power = (ll + rr) * 0.5
        else:
            power = sum(self._reduce(np.square(interleaved[c])) for c in range(self.channels)) / self.channels
        return [power, ll, rr, lr]

    def _feed_wide(self, shaped: np.ndarray) -> None:
        """Frames whose float32 spectra would overflow: the same reduction in float64, then each band
        energy saturated to the largest float32 (+385 dB) where even that is exceeded."""
        windowed = shaped.astype(np.float64) * self._window
        pairs = self._rfft(windowed, axis=-1).view(np.float64)
        big = float(np.finfo(np.float32).max)

        def reduce(x):
            return np.minimum(self._reduce(x), big).astype(np.float32)

        if self.channels == 1:
            self._power.append(reduce(np.square(pairs[0])))
            return
        ll, rr = reduce(np.square(pairs[0])), reduce(np.square(pairs[1]))
        self._ll.append(ll)
        self._rr.append(rr)
        self._lr.append(np.clip(self._reduce(pairs[0] * pairs[1]), -big, big).astype(np.float32))
        total = sum(np.minimum(self._reduce(np.square(pairs[c])), big) for c in range(self.channels))
        self._power.append(np.minimum(total / self.channels, big).astype(np.float32))

    def _reduce(self, pairs: np.ndarray) -> np.ndarray:
        """Interleaved per-bin products ``(frames, 2 * bins)`` to band energies ``(frames, bands)``."""
        low = pairs[:, : 2 * self._split_bin] @ self._low_matrix
        high = np.add.reduceat(pairs, self._high_edges, axis=1)[:, :-1] * self._high_scale
        high[:, self._high_empty] = 0.0
        return np.concatenate([low, high], axis=1)

    def result(self) -> dict[str, np.ndarray | None]:
        """``power`` (frames, bands) and, for two or more channels, ``ll``, ``rr`` and ``lr``."""
        def stack(name: str) -> np.ndarray:
            parts = getattr(self, name)
            setattr(self, name, [])  # the pieces go as the whole is made: never both twice over
            return np.concatenate(parts) if parts else np.zeros((0, N_BANDS), np.float32)
        stereo = self.channels >= 2
        return {
            "power": stack("_power"),
            "ll": stack("_ll") if stereo else None,
            "rr": stack("_rr") if stereo else None,
            "lr": stack("_lr") if stereo else None,
        }
