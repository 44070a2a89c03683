"""One streamed pass per stem, reduced to compact features on the shared 100 ms grid.

:class:`FeatureExtractor` is fed ``(frames, channels)`` float32 blocks by whoever reads the audio
(:mod:`bridge.stems` for files, the pipeline for the summed mix) and returns
:class:`StemFeatures`: about 1.5 MB for a 4-minute stereo stem, whatever the source's size.
Every later measure, per stem and across stems, is computed from these features alone, never
from audio again.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .levels import ClipDetector, ClipStats, FrameLevels
from .loudness import KWeightedEnergy
from .polarity import LowBandSignal
from .spectrum import BandEnergy
from .truepeak import TruePeakMeter

#: The shared analysis grid, seconds per frame.
FRAME_S = 0.1


@dataclass(frozen=True, slots=True)
class StemFeatures:
    """Everything the analyses need from one audio stream.

    Attributes
    ----------
    sample_rate : int
        Hz.
    channels : int
    frames : int
        Samples per channel that were fed.
    subhop_power : ndarray [shape=(subhops, channels)]
        Mean square of the K-weighted signal per 10 ms (BS.1770-4 Annex 1 weighting).
    frame_power : ndarray [shape=(n_frames, channels)]
        Unweighted mean square per 100 ms frame.
    frame_peak : ndarray [shape=(n_frames,)]
        Largest ``|sample|`` per frame over all channels.
    band_power : ndarray [shape=(n_frames, bands)]
        Mean over channels of the band mean square (1/3-octave bands).
    band_ll, band_rr, band_lr : ndarray [shape=(n_frames, bands)] or None
        Band mean squares of L and R and the band mean of Re{L R*} (two or more channels).
    sample_peak : float
        Largest ``|sample|``, linear.
    true_peak : float
        BS.1770-4 Annex 2 true peak, linear.
    dc_mean : ndarray [shape=(channels,)]
        Mean sample value per channel.
    clip : ClipStats
    low_signal : ndarray [shape=(n,)] or None
        The mono low-band signal (float16, about 1 kHz: :mod:`bridge.analyze.polarity`), what
        cross-stem polarity is measured on.
    """

    sample_rate: int
    channels: int
    frames: int
    subhop_power: np.ndarray
    frame_power: np.ndarray
    frame_peak: np.ndarray
    band_power: np.ndarray
    band_ll: np.ndarray | None
    band_rr: np.ndarray | None
    band_lr: np.ndarray | None
    sample_peak: float
    true_peak: float
    dc_mean: np.ndarray
    clip: ClipStats
    low_signal: np.ndarray | None = None

    def slim(self) -> "StemFeatures":
        """What cross-stem analysis needs, in float32: band power and K-weighted energies.

        Per-frame stereo band products, frame levels and peaks are dropped (their summaries live in
        :class:`~bridge.analyze.stem.StemAnalysis`), cutting what the main process holds per stem
        by about two thirds.
        """
        return StemFeatures(
            sample_rate=self.sample_rate, channels=self.channels, frames=self.frames,
            subhop_power=_float32(self.subhop_power),
            frame_power=np.zeros((0, self.channels)), frame_peak=np.zeros(0, np.float32),
            band_power=_float32(self.band_power), band_ll=None, band_rr=None, band_lr=None,
            sample_peak=self.sample_peak, true_peak=self.true_peak, dc_mean=self.dc_mean, clip=self.clip,
            low_signal=self.low_signal)

    @property
    def n_frames(self) -> int:
        return len(self.band_power)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flatten to named arrays (for ``np.savez``); inverse of :meth:`from_arrays`."""
        out: dict[str, np.ndarray] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "clip":
                out["clip"] = np.array([value.runs, value.worst_run_samples, value.clipped_samples])
            elif value is not None:
                out[field.name] = np.asarray(value)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "StemFeatures":
        values = {}
        for field in fields(cls):
            if field.name == "clip":
                runs, worst, clipped = (int(v) for v in arrays["clip"])
                values["clip"] = ClipStats(runs, worst, clipped)
            elif field.name in arrays:
                value = arrays[field.name]
                values[field.name] = value.item() if value.ndim == 0 else value
            else:
                values[field.name] = None
        for name in ("sample_rate", "channels", "frames"):
            values[name] = int(values[name])
        for name in ("sample_peak", "true_peak"):
            values[name] = float(values[name])
        return cls(**values)


def _float32(values: np.ndarray) -> np.ndarray:
    """float32, saturated at the largest float32 rather than overflowing to infinity."""
    if values.dtype != np.float32 and values.size and not float(values.max()) < float(np.finfo(np.float32).max):
        values = np.minimum(values, np.finfo(np.float32).max)
    return values.astype(np.float32)


#: The two halves of the features, about equal in work: K-weighted energies and true peak;
#: band energies, frame levels, clip runs and DC.
PARTS = ("loudness", "spectrum")
_NO_BANDS = {"power": np.zeros((0, 0), np.float32), "ll": None, "rr": None, "lr": None}


def merge_parts(loudness: StemFeatures, spectrum: StemFeatures) -> StemFeatures:
    """One stream's features from its two halves (``FeatureExtractor(..., part=...)``)."""
    from dataclasses import replace

    if (loudness.frames, loudness.sample_rate, loudness.channels) != (spectrum.frames, spectrum.sample_rate,
                                                                       spectrum.channels):
        raise ValueError("the two feature parts are not of the same stream")
    return replace(spectrum, subhop_power=loudness.subhop_power, true_peak=loudness.true_peak)


class FeatureExtractor:
    """Streaming reducer from audio blocks to :class:`StemFeatures`.

    Parameters
    ----------
    sample_rate : int
        Hz, a multiple of 100.
    channels : int
    quantum : float
        The source's quantisation step (PCM: ``2**-(bits-1)``), 0 for float sources and the mix;
        see :class:`~bridge.analyze.levels.ClipDetector`.
    part : {None, "loudness", "spectrum"}, optional
        Measure only half of the features (:data:`PARTS`), so two processes can share one stream
        (the mix) and :func:`merge_parts` joins their results.  ``None`` measures everything.

    Examples
    --------
    >>> extractor = FeatureExtractor(48000, 2)
    >>> for block in blocks:          # (frames, 2) float32, any length
    ...     extractor.feed(block)
    >>> features = extractor.finish()
    """

    def __init__(self, sample_rate: int, channels: int, quantum: float = 0.0, part: str | None = None):
        if part is not None and part not in PARTS:
            raise ValueError(f"unknown feature part {part!r} (have {PARTS})")
        self.sample_rate = sample_rate
        self.channels = channels
        self.hop = sample_rate // 10
        self.part = part
        self._loud = part in (None, "loudness")
        self._spectral = part in (None, "spectrum")
        self._loudness = KWeightedEnergy(sample_rate, channels) if self._loud else None
        self._true_peak = TruePeakMeter(sample_rate, channels)  # its sample peak is every part's
        self._true_peak.oversample &= self._loud
        self._clips = ClipDetector(channels, quantum)
        self._levels = FrameLevels(sample_rate, channels)
        self._bands = BandEnergy(sample_rate, channels) if self._spectral else None
        self._low = LowBandSignal(sample_rate) if self._spectral else None
        self._pending = np.zeros((channels, 0), dtype=np.float32)
        self._frames = 0

    def feed(self, block: np.ndarray) -> None:
        """Measure one block, shape ``(frames, channels)``, float32, finite."""
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}) audio, got {block.shape}")
        if len(block) == 0:
            return
        self._frames += len(block)
        # Channel-major internally: every per-channel reduction then runs over contiguous memory,
        # which is up to 16x faster than reducing the interleaved (frames, channels) layout.
        samples = np.ascontiguousarray(block.T)
        if self._pending.shape[1]:
            samples = np.concatenate([self._pending, samples], axis=1)
            fresh = slice(self._pending.shape[1], None)
        else:
            fresh = slice(None)
        whole = samples.shape[1] // self.hop * self.hop
        new = samples[:, fresh]
        if self._spectral:
            magnitudes = np.abs(samples)
            peaks = self._levels.feed_frames(samples[:, :whole], magnitudes[:, :whole]) if whole else None
            tail_peak = float(magnitudes[:, whole:].max(initial=0.0))
            block_peak = max(float(peaks.max()) if peaks is not None else 0.0, tail_peak)
            self._clips.feed(new, magnitudes[:, fresh], block_peak)
            self._levels.feed_all(new)
            self._low.feed(new)
            if whole:
                self._bands.feed(samples[:, :whole], peaks)
        else:
            block_peak = float(max(new.max(initial=0.0), -new.min(initial=0.0)))
        self._true_peak.feed(new, block_peak)
        if self._loud:
            self._loudness.feed(new)
        self._pending = samples[:, whole:].copy()

    def finish(self) -> StemFeatures:
        """Close the stream.  A final partial frame counts for peaks and DC, not for the grid."""
        levels = self._levels.result()
        bands = self._bands.result() if self._spectral else _NO_BANDS
        true_peak = self._true_peak.finish()
        frames = max(self._frames, 1)
        return StemFeatures(
            sample_rate=self.sample_rate,
            channels=self.channels,
            frames=self._frames,
            subhop_power=self._loudness.result() if self._loud else np.zeros((0, self.channels)),
            frame_power=levels["power"],
            frame_peak=levels["peak"],
            band_power=bands["power"],
            band_ll=bands["ll"],
            band_rr=bands["rr"],
            band_lr=bands["lr"],
            sample_peak=float(self._true_peak.sample_peak),
            true_peak=float(true_peak),
            dc_mean=self._levels.sum / frames,
            clip=self._clips.result(self._true_peak.sample_peak),
            low_signal=self._low.result() if self._spectral else None,
        )
