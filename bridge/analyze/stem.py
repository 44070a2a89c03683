"""Per-stem measures: features in, one frozen :class:`StemAnalysis` out.  Pure; no I/O."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..units import POWER_FLOOR, finite_or_none, gain_to_db, power_to_db
from . import loudness as lu
from .features import StemFeatures
from .levels import ClipStats
from .spectrum import BAND_CENTERS_HZ
from .stereo import StereoMeasures, stereo_measures

#: A frame is active when its momentary loudness is within this many LU of the stem's integrated
#: loudness (the Tech 3342 relative gate), and above the absolute gate.
ACTIVITY_GATE_LU = -20.0
#: Rumble is energy below this frequency.
RUMBLE_BELOW_HZ = 30.0
#: Bands below this never count as the useful range: with 10 Hz bins, a strong rumble tone
#: leaks into the 31.5 and 40 Hz bands and would otherwise pass for music.
USEFUL_FROM_HZ = 50.0
#: Any band within this many dB of the loudest belongs to the useful range.
STRONG_BAND_DB = 20.0
#: The useful range starts at the lowest band within this many dB of the loudest band.
USEFUL_RANGE_DB = 30.0
#: Percentiles of the active 100 ms RMS that are reported.
RMS_PERCENTILES = (10, 50, 75, 90, 95)
#: Seconds per value of the spectrum-over-time series in reports.
SPECTRUM_REPORT_S = 1.0


@dataclass(frozen=True, slots=True)
class LoudnessMeasures:
    """BS.1770-4 / EBU R 128 loudness of one stream.

    Series are on the shared 100 ms grid: value ``t`` is the window ending at ``(t + 1) * 100 ms``
    (``None`` before a whole window exists and for digital silence).
    """

    integrated_lufs: float | None
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    lra_lu: float | None
    momentary_lufs: tuple[float | None, ...]
    short_term_lufs: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class LevelMeasures:
    """Sample-level figures.  RMS and crest use active frames only, since stems are mostly silent.

    Attributes
    ----------
    sample_peak_dbfs, true_peak_dbtp : float or None
    active_rms_dbfs : float or None
        RMS over active 100 ms frames, all channels.
    crest_db : float or None
        Sample peak over active RMS.
    plr_db : float or None
        Peak-to-loudness ratio, true peak minus integrated loudness (EBU R 128 s1).
    rms_percentiles_dbfs : tuple of (float or None)
        The 10th, 50th, 75th, 90th and 95th percentiles of the 100 ms RMS over active frames:
        the level distribution a compressor's threshold is set against.
    """

    sample_peak_dbfs: float | None
    true_peak_dbtp: float | None
    active_rms_dbfs: float | None
    crest_db: float | None
    plr_db: float | None
    rms_percentiles_dbfs: tuple[float | None, ...] = (None,) * 5


@dataclass(frozen=True, slots=True)
class FaultMeasures:
    """Things that are wrong with the file itself.

    Attributes
    ----------
    dc_offset : tuple of float
        Mean sample value per channel (linear, full scale 1.0).
    dc_offset_dbfs : float or None
        The largest channel's DC offset in dBFS.
    clip : ClipStats
    active_fraction : float
        Share of the stem's 100 ms frames that are active.
    silent : bool
        No 400 ms block reaches -70 LUFS: integrated loudness is undefined.
    """

    dc_offset: tuple[float, ...]
    dc_offset_dbfs: float | None
    clip: ClipStats
    active_fraction: float
    silent: bool


@dataclass(frozen=True, slots=True)
class SpectrumMeasures:
    """Spectral balance on the 1/3-octave bands of :data:`~bridge.analyze.spectrum.BAND_CENTERS_HZ`.

    Attributes
    ----------
    band_db : tuple of (float or None)
        Mean band energy over active frames, dB re full-scale mean square.
    band_db_over_time : tuple of tuples
        The same per :data:`SPECTRUM_REPORT_S` second (all frames), ``None`` for silence.
    rumble_db : float or None
        Energy below 30 Hz relative to the whole stem's, dB.
    useful_low_hz : float or None
        Lower edge of the useful range: going down from the loudest band (50 Hz and up), the centre
        of the last band before the level first falls more than 30 dB below the loudest.
    centroid_hz : float or None
        Energy-weighted mean band centre.
    """

    band_db: tuple[float | None, ...]
    band_db_over_time: tuple[tuple[float | None, ...], ...]
    rumble_db: float | None
    useful_low_hz: float | None
    centroid_hz: float | None


@dataclass(frozen=True, slots=True)
class StemAnalysis:
    """Every per-stem measure, plus the activity mask the cross-stem stage uses."""

    loudness: LoudnessMeasures
    levels: LevelMeasures
    faults: FaultMeasures
    spectrum: SpectrumMeasures
    stereo: StereoMeasures | None
    active: np.ndarray  # bool, shape (n_frames,)


def _series(values: np.ndarray, lead: int) -> tuple[float | None, ...]:
    """Loudness values to a JSON-safe tuple, ``lead`` leading ``None`` for incomplete windows."""
    values = np.asarray(values, dtype=np.float64)
    keep = (np.isfinite(values) & (values > lu.SILENCE_LUFS)).tolist()
    cleaned = [round(v, 2) if k else None for v, k in zip(values.tolist(), keep)]
    return (None,) * lead + tuple(cleaned)


def _max_lufs(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    top = float(finite.max())
    return top if top > lu.SILENCE_LUFS else None


def frame_momentary_lufs(subhop_power: np.ndarray, weights: np.ndarray, n_frames: int) -> np.ndarray:
    """Momentary loudness centred on each 100 ms frame, for activity decisions.

    Window ``t`` covers ``[t*100 ms - 150 ms, t*100 ms + 250 ms)``, clipped to the stem.
    """
    padded = np.concatenate([np.zeros((15, subhop_power.shape[1])), subhop_power,
                             np.zeros((40, subhop_power.shape[1]))])
    m = lu.momentary_lufs(padded, weights, step=lu.SUBHOPS_PER_FRAME)
    return m[:n_frames] if len(m) >= n_frames else np.concatenate([m, np.full(n_frames - len(m), -np.inf)])


def loudness_measures(features: StemFeatures) -> tuple[LoudnessMeasures, np.ndarray]:
    """Loudness measures and the frame-centred momentary series (for activity)."""
    weights = lu.channel_weights(features.channels)
    power = features.subhop_power
    integrated = lu.integrated_lufs(lu.gating_blocks(power), weights)
    top_10ms = lu.max_momentary_lufs(power, weights)
    momentary_grid = lu.momentary_lufs(power, weights, step=lu.SUBHOPS_PER_FRAME)
    short_term = lu.short_term_lufs(power, weights)
    lra = lu.loudness_range_lu(short_term)
    measures = LoudnessMeasures(
        integrated_lufs=finite_or_none(integrated),
        max_momentary_lufs=top_10ms if math.isfinite(top_10ms) and top_10ms > lu.SILENCE_LUFS else None,
        max_short_term_lufs=_max_lufs(short_term),
        lra_lu=finite_or_none(lra),
        momentary_lufs=_series(momentary_grid, lu.MOMENTARY_SUBHOPS // lu.SUBHOPS_PER_FRAME - 1),
        short_term_lufs=_series(short_term, lu.SHORT_TERM_SUBHOPS // lu.SUBHOPS_PER_FRAME - 1),
    )
    return measures, frame_momentary_lufs(power, weights, features.n_frames)


def activity(frame_lufs: np.ndarray, integrated_lufs: float | None) -> np.ndarray:
    """Active frames: momentary loudness above both gates (absolute, and integrated - 20 LU)."""
    if integrated_lufs is None:
        return np.zeros(len(frame_lufs), dtype=bool)
    gate = max(lu.ABSOLUTE_GATE_LUFS, integrated_lufs + ACTIVITY_GATE_LU)
    return frame_lufs > gate


def spectrum_measures(features: StemFeatures, active: np.ndarray) -> SpectrumMeasures:
    bands = features.band_power.astype(np.float64)
    chosen = bands[active] if active.any() else bands
    mean = chosen.mean(axis=0) if len(chosen) else np.zeros(bands.shape[1])
    band_db = tuple(power_to_db(float(p)) for p in mean)
    band_db = tuple(round(v, 2) if v is not None else None for v in band_db)
    over_time = _over_time_db(bands, int(round(SPECTRUM_REPORT_S / 0.1)))
    total = float(mean.sum())
    rumble = float(mean[BAND_CENTERS_HZ < RUMBLE_BELOW_HZ].sum())
    useful_low = None
    centroid = None
    if total > 1e-30:
        # Rumble bands are left out, or a rumbling stem would call the rumble its useful range.
        musical = BAND_CENTERS_HZ >= USEFUL_FROM_HZ
        floor = float(mean[musical].max()) * 10.0 ** (-USEFUL_RANGE_DB / 10.0)
        # Walk down from the loudest band while the bands stay within range: a gap ends the
        # useful range, so leakage from rumble further down is not mistaken for music.
        band = int(np.argmax(np.where(musical, mean, -1.0)))
        while band - 1 >= 0 and musical[band - 1] and mean[band - 1] >= floor:
            band -= 1
        # A part with two separate regions (a snare's body and its wires) keeps the lower one
        # when it is strong: within 20 dB of the loudest band.
        strong = np.flatnonzero(musical & (mean >= float(mean[musical].max()) * 10.0 ** (-STRONG_BAND_DB / 10.0)))
        useful_low = float(BAND_CENTERS_HZ[min(band, int(strong[0]))])
        centroid = finite_or_none(np.sum(mean * BAND_CENTERS_HZ) / total)
    return SpectrumMeasures(
        band_db=band_db,
        band_db_over_time=tuple(over_time),
        rumble_db=_rel_db(rumble, total),
        useful_low_hz=useful_low,
        centroid_hz=round(centroid, 1) if centroid is not None else None,
    )


def _over_time_db(bands: np.ndarray, per: int) -> list[tuple[float | None, ...]]:
    """Mean band power per ``per`` frames (the last group may be shorter), in dB to 0.1 dB.

    :func:`~bridge.units.power_to_db` applied to every value, vectorised: ``None`` at or below its
    floor.  The group means add the frames in order, exactly as a per-group ``mean`` does.
    """
    n, width = bands.shape
    whole = n // per
    means = bands[:whole * per].reshape(whole, per, width).mean(axis=1)
    if n > whole * per:
        means = np.concatenate([means, bands[whole * per:].mean(axis=0)[None]])
    audible = (means > POWER_FLOOR) & np.isfinite(means)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = np.where(audible, 10.0 * np.log10(np.where(audible, means, 1.0)), 0.0)
    return [tuple(round(v, 1) if k else None for v, k in zip(row, keep))
            for row, keep in zip(db.tolist(), audible.tolist())]


def _rel_db(part: float, whole: float) -> float | None:
    if part <= 1e-30 or whole <= 1e-30:
        return None
    return finite_or_none(10.0 * np.log10(part / whole), 2)


def analyze_stem(features: StemFeatures) -> StemAnalysis:
    """All per-stem measures of one stream's features.

    Parameters
    ----------
    features : StemFeatures

    Returns
    -------
    StemAnalysis
    """
    loudness, frame_lufs = loudness_measures(features)
    active = activity(frame_lufs, loudness.integrated_lufs)
    frame_power = features.frame_power.mean(axis=1) if features.n_frames else np.zeros(0)
    active_rms_db = power_to_db(float(frame_power[active].mean())) if active.any() else None
    sample_peak_db = gain_to_db(features.sample_peak)
    true_peak_db = gain_to_db(features.true_peak)
    if active.any():
        active_db = 10.0 * np.log10(np.maximum(frame_power[active], 1e-30))
        percentiles = tuple(round(float(v), 2) for v in np.percentile(active_db, RMS_PERCENTILES))
    else:
        percentiles = (None,) * len(RMS_PERCENTILES)
    levels = LevelMeasures(
        sample_peak_dbfs=_r(sample_peak_db),
        true_peak_dbtp=_r(true_peak_db),
        active_rms_dbfs=_r(active_rms_db),
        crest_db=_r(sample_peak_db - active_rms_db) if sample_peak_db is not None and active_rms_db is not None else None,
        plr_db=_r(true_peak_db - loudness.integrated_lufs)
        if true_peak_db is not None and loudness.integrated_lufs is not None else None,
        rms_percentiles_dbfs=percentiles,
    )
    dc = tuple(float(v) for v in features.dc_mean)
    faults = FaultMeasures(
        dc_offset=tuple(round(v, 6) for v in dc),
        dc_offset_dbfs=_r(gain_to_db(max(abs(v) for v in dc))) if dc else None,
        clip=features.clip,
        active_fraction=round(float(active.mean()), 4) if len(active) else 0.0,
        silent=loudness.integrated_lufs is None,
    )
    spectrum = spectrum_measures(features, active)
    stereo = None
    if features.band_ll is not None:
        frames = active if active.any() else np.ones(features.n_frames, dtype=bool)
        stereo = stereo_measures(features.band_ll[frames].sum(axis=0, dtype=np.float64),
                                 features.band_rr[frames].sum(axis=0, dtype=np.float64),
                                 features.band_lr[frames].sum(axis=0, dtype=np.float64))
    return StemAnalysis(loudness=loudness, levels=levels, faults=faults, spectrum=spectrum,
                        stereo=stereo, active=active)


def _r(value: float | None, ndigits: int = 2) -> float | None:
    return finite_or_none(value, ndigits)
