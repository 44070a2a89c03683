"""Stereo image measures from band energies: correlation, width, balance and mono compatibility.

All come from per-band sums of L^2, R^2 and Re{L R*} over a stem's active frames (the zero-lag
correlation-meter quantities, per band).  Mid and side are taken energy-preserving,
M = (L + R)/sqrt(2), S = (L - R)/sqrt(2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ

#: Bands wholly below this count as "the low end" for mono-compatibility checks.
LOW_END_HZ = 150.0
#: A band must hold at least this share of the stem's energy for its per-band figures to count.
BAND_SHARE_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class StereoMeasures:
    """Stereo figures of one stem; ``None`` fields are undefined (e.g. no low end at all).

    Attributes
    ----------
    correlation : float or None
        Zero-lag inter-channel correlation over active frames, -1..1 (+1 mono, 0 wide, <0 out
        of phase).
    correlation_low : float or None
        The same below 150 Hz.
    side_mid_ratio_db : float or None
        10 log10(E_side / E_mid); very negative for near-mono material.
    width : float or None
        E_side / (E_mid + E_side), 0 (mono) .. 0.5 (uncorrelated) .. 1 (out of phase).
    balance_db : float or None
        10 log10(E_R / E_L), limited to +/-60 dB; positive leans right.
    pan : float or None
        (E_R - E_L) / (E_R + E_L): -1 hard left, 0 centre, +1 hard right.
    mono_loss_db : float or None
        Level change when folded to mono, 10 log10(E_(L+R)/2 / ((E_L + E_R)/2)); 0 for mono
        content, -3 for uncorrelated, very negative for out-of-phase.
    band_correlation, band_width : tuple of (float or None)
        Per 1/3-octave band, ``None`` where the band is empty.
    """

    correlation: float | None
    correlation_low: float | None
    side_mid_ratio_db: float | None
    width: float | None
    balance_db: float | None
    pan: float | None
    mono_loss_db: float | None
    band_correlation: tuple[float | None, ...]
    band_width: tuple[float | None, ...]


#: Channel energies further apart than this (dB) make a one-sided signal: no correlation exists.
ONE_SIDED_DB = 90.0
#: Balance is reported within +/- this many dB; beyond it the source is hard-panned.
BALANCE_LIMIT_DB = 60.0


def _correlation(ll: float, rr: float, lr: float) -> float | None:
    if min(ll, rr) <= max(ll, rr) * 10.0 ** (-ONE_SIDED_DB / 10.0) or max(ll, rr) <= 1e-30:
        return None
    return float(np.clip(lr / np.sqrt(ll * rr), -1.0, 1.0))


def _ratio_db(num: float, den: float) -> float | None:
    if num <= 1e-30 or den <= 1e-30:
        return None
    return float(10.0 * np.log10(num / den))


def _balance_db(rr: float, ll: float) -> float | None:
    if max(ll, rr) <= 1e-30:
        return None
    ratio = 10.0 * np.log10(max(rr, 1e-300) / max(ll, 1e-300))
    return float(np.clip(ratio, -BALANCE_LIMIT_DB, BALANCE_LIMIT_DB))


def stereo_measures(ll: np.ndarray, rr: np.ndarray, lr: np.ndarray) -> StereoMeasures:
    """Stereo measures from per-band energy sums.

    Parameters
    ----------
    ll, rr, lr : ndarray [shape=(bands,)]
        Sums over the frames of interest of band energies of L, R and Re{L R*}.
    """
    ll = ll.astype(np.float64)
    rr = rr.astype(np.float64)
    lr = lr.astype(np.float64)
    total_ll, total_rr, total_lr = ll.sum(), rr.sum(), lr.sum()
    mid = 0.5 * (total_ll + total_rr) + total_lr
    side = 0.5 * (total_ll + total_rr) - total_lr
    low = BAND_CENTERS_HZ < LOW_END_HZ
    total = total_ll + total_rr
    band_total = ll + rr
    present = band_total > BAND_SHARE_FLOOR * max(total, 1e-30)
    band_corr = tuple(_correlation(ll[b], rr[b], lr[b]) if present[b] else None for b in range(len(ll)))
    band_mid = 0.5 * band_total + lr
    band_side = 0.5 * band_total - lr
    band_width = tuple(float(band_side[b] / (band_mid[b] + band_side[b])) if present[b] else None
                       for b in range(len(ll)))
    low_present = band_total[low].sum() > BAND_SHARE_FLOOR * max(total, 1e-30)
    return StereoMeasures(
        correlation=_correlation(total_ll, total_rr, total_lr),
        correlation_low=_correlation(ll[low].sum(), rr[low].sum(), lr[low].sum()) if low_present else None,
        side_mid_ratio_db=_ratio_db(max(side, 0.0), max(mid, 0.0)),
        width=float(np.clip(side / (mid + side), 0.0, 1.0)) if total > 1e-30 else None,
        balance_db=_balance_db(total_rr, total_ll),
        pan=float((total_rr - total_ll) / total) if total > 1e-30 else None,
        mono_loss_db=_ratio_db(max(mid, 0.0), total) if total > 1e-30 else None,
        band_correlation=band_corr,
        band_width=band_width,
    )
