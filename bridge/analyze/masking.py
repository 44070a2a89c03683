"""Frequency masking between stems, by band and over time.

The measure follows the MPEG psychoacoustic model 1 / Johnston approach that the automatic-mixing
literature builds on (Hafezi & Reiss, JAES 2015; Ronan et al. 2018; Vega & Janer's
cross-adaptive signal-to-masker ratio):

1. The masker of stem ``i`` is another stem ``j``'s band energy on the shared 100 ms grid.
2. It is spread across bands with Schroeder's spreading function on the Bark scale
   (Zwicker's Bark formula), so energy in one critical band masks its neighbours.
3. The masked threshold lies a fixed offset below the spread excitation; the conservative
   noise-masker offset of 5.5 dB is used for every band (Johnston 1988, alpha = 0).
4. The masker-to-signal ratio is ``MSR = 10 log10(threshold_j / E_i)`` per band and frame.

MPEG counts a band as inaudible when MSR > 0 dB.  For mixing, the concern starts earlier: a part
within about 10 dB of its masked threshold has lost much of its partial loudness and clarity
(Glasberg & Moore's partial-loudness model rises steeply in the first ~10 dB above threshold).
So a cell is *masked* when ``MSR > -CLARITY_MARGIN_DB``, and its *overlap* is
``MSR + CLARITY_MARGIN_DB`` in dB: two parts at equal level in one band overlap by about 6 dB.
Only frames where both stems are active, and bands holding a real share of the maskee's energy
in that frame, are counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spectrum import BAND_CENTERS_HZ, BAND_HIGH_HZ, BAND_LOW_HZ

#: Offset of the masked threshold below the spread excitation, dB (noise-like masker).
THRESHOLD_OFFSET_DB = 5.5
#: How far below its masked threshold a band may sit before it is clear, dB.
CLARITY_MARGIN_DB = 10.0
#: A maskee band counts in a frame only within this many dB of its loudest band in that frame.
SIGNIFICANT_WITHIN_DB = 30.0
#: ...and within this many dB of the 95th percentile of its own level in that band.
STRENGTH_WITHIN_DB = 20.0
#: A band is part of a conflict when masked for at least this share of the maskee's active time...
MIN_TIME_FRACTION = 0.25
#: ...with at least this mean overlap, dB.
MIN_OVERLAP_DB = 3.0
#: A conflict's band range spans the neighbours of its worst band scoring at least this share of it.
FOCUS_SHARE = 0.5


def bark(freq_hz: np.ndarray) -> np.ndarray:
    """Zwicker & Terhardt's critical-band rate, Bark."""
    f = np.asarray(freq_hz, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def spreading_matrix() -> np.ndarray:
    """Schroeder's spreading function between the bands, linear power, shape ``(bands, bands)``.

    Entry ``[k, b]`` scales masker energy in band ``k`` to its excitation in band ``b``:
    ``SF(dz) = 15.81 + 7.5 (dz + 0.474) - 17.5 sqrt(1 + (dz + 0.474)^2)`` dB with
    ``dz = z_b - z_k``.
    """
    z = bark(BAND_CENTERS_HZ)
    dz = z[None, :] - z[:, None]
    sf_db = 15.81 + 7.5 * (dz + 0.474) - 17.5 * np.sqrt(1.0 + (dz + 0.474) ** 2)
    return 10.0 ** (sf_db / 10.0)


_SPREAD = spreading_matrix()


@dataclass(frozen=True, slots=True)
class MaskingPair:
    """One significant masking conflict between two stems.

    Attributes
    ----------
    masked, masker : str
        Stem names; ``masked`` loses clarity to ``masker`` (the stronger direction).
    band_low_hz, band_high_hz : float
        Edges of the contiguous band range of the conflict.
    centre_hz : float
        Geometric centre of that range.
    overlap_db : float
        Mean overlap (MSR + clarity margin) over the masked cells of the range.
    time_fraction : float
        Share of the masked stem's active time in which some band of the range is masked.
    mutual : bool
        The reverse direction is also significant in an overlapping range.
    reverse_overlap_db : float or None
        The reverse direction's overlap in the same range, if any.
    band_overlap_db : tuple of (float or None)
        Per band (all 31), the masked direction's mean overlap where it is significant.
    """

    masked: str
    masker: str
    band_low_hz: float
    band_high_hz: float
    centre_hz: float
    overlap_db: float
    time_fraction: float
    mutual: bool
    reverse_overlap_db: float | None
    band_overlap_db: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class _Direction:
    band_fraction: np.ndarray  # (bands,)
    band_overlap: np.ndarray  # (bands,), NaN where never masked
    masked_cells: np.ndarray  # (frames, bands) bool


def _direction(maskee: np.ndarray, maskee_active: np.ndarray, significant: np.ndarray,
               threshold: np.ndarray, masker_active: np.ndarray) -> _Direction:
    frames = maskee_active & masker_active
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        msr = 10.0 * np.log10(threshold / maskee)
        overflowed = np.isposinf(msr) & (maskee > 0)
        if overflowed.any():  # the ratio overflowed float32 (a masker near the float limit): as a difference
            msr[overflowed] = (10.0 * (np.log10(threshold.astype(np.float64)) - np.log10(maskee.astype(np.float64))))[overflowed]
    cells = significant & frames[:, None] & (msr > np.float32(-CLARITY_MARGIN_DB))
    active_count = max(int(maskee_active.sum()), 1)
    fraction = cells.sum(axis=0) / active_count
    overlap = np.where(cells, msr + CLARITY_MARGIN_DB, 0.0).sum(axis=0)
    counts = cells.sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean_overlap = np.where(counts > 0, overlap / np.maximum(counts, 1), np.nan)
    return _Direction(fraction, mean_overlap, cells)


def _best_run(direction: _Direction) -> tuple[int, int] | None:
    """The conflict's band range: around the worst band, the neighbours scoring at least half as high.

    A band's score is its masked time share times its mean overlap; only significant bands count.
    """
    good = (direction.band_fraction >= MIN_TIME_FRACTION) & (np.nan_to_num(direction.band_overlap) >= MIN_OVERLAP_DB)
    if not good.any():
        return None
    score = np.where(good, direction.band_fraction * np.nan_to_num(direction.band_overlap), 0.0)
    peak = int(np.argmax(score))
    floor = FOCUS_SHARE * score[peak]
    lo, hi = peak, peak + 1
    while lo > 0 and score[lo - 1] >= floor:
        lo -= 1
    while hi < len(score) and score[hi] >= floor:
        hi += 1
    return lo, hi


def masking_pairs(names: list[str], band_power: list[np.ndarray], active: list[np.ndarray],
                  keys: list[str] | None = None, memo: dict | None = None) -> list[MaskingPair]:
    """Significant pairwise masking conflicts, strongest first.

    Parameters
    ----------
    names : list of str
    band_power : list of ndarray [shape=(frames, bands)]
        Band mean squares per stem, on a common frame count.
    active : list of ndarray [shape=(frames,)], bool
    keys, memo : optional
        A content key per stem (e.g. its file's SHA-256) and a dict that outlives the call.  A pair's
        result depends only on its two stems, so with both given, pairs of unchanged stems are taken
        from ``memo`` (a re-bounce with one changed stem recomputes n-1 pairs, not n(n-1)/2).

    Returns
    -------
    list of MaskingPair
    """
    n = len(names)
    frames = int(band_power[0].shape[0]) if n else 0
    # float32 throughout: dB-scale decisions need no more, and it halves the working set.
    spread = (_SPREAD * 10.0 ** (-THRESHOLD_OFFSET_DB / 10.0)).astype(np.float32)
    prepared: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def prep(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(energy, masking threshold, significant cells) of stem i, computed once and only if needed."""
        if i not in prepared:
            e = np.asarray(band_power[i], dtype=np.float32)
            a = active[i]
            loudest = e.max(axis=1, keepdims=True)
            # A band counts where it is a real part of the stem in that frame, and where the stem is
            # near its own usual strength in that band: a decaying tail being covered is not a conflict.
            strong = np.percentile(e[a], 95, axis=0) if a.any() else np.zeros(e.shape[1], np.float32)
            significant = ((e > 0.0) & (e >= loudest * 10.0 ** (-SIGNIFICANT_WITHIN_DB / 10.0))
                           & (e >= strong * 10.0 ** (-STRENGTH_WITHIN_DB / 10.0)))
            with np.errstate(over="ignore", invalid="ignore"):
                threshold = e @ spread
            if not np.isfinite(threshold).all():  # band energies near the float32 limit: saturate
                big = np.finfo(np.float32).max
                threshold = np.minimum(e.astype(np.float64) @ spread, big).astype(np.float32)
            prepared[i] = (e, threshold, significant)
        return prepared[i]

    pairs: list[tuple[float, MaskingPair]] = []
    for i in range(n):
        if not active[i].any():
            continue
        for j in range(i + 1, n):
            if not active[j].any() or not (active[i] & active[j]).any():
                continue
            memo_key = (keys[i], keys[j], frames) if keys is not None and memo is not None else None
            if memo_key is not None and memo_key in memo:
                found = memo[memo_key]
            else:
                found = _pair(i, j, prep, active)
                if memo_key is not None:
                    memo[memo_key] = found
            if found is None:
                continue
            score, masked_is_i, fields = found
            a, b = (i, j) if masked_is_i else (j, i)
            pairs.append((score, MaskingPair(masked=names[a], masker=names[b], **fields)))
    pairs.sort(key=lambda item: (-item[0], item[1].masked, item[1].masker))
    return [pair for _, pair in pairs]


def _pair(i: int, j: int, prep, active: list[np.ndarray]) -> tuple[float, bool, dict] | None:
    """The stronger direction of stems i and j: (score, whether i is the masked one, the pair's fields)."""
    energy_i, threshold_i, significant_i = prep(i)
    energy_j, threshold_j, significant_j = prep(j)
    forward = _direction(energy_i, active[i], significant_i, threshold_j, active[j])
    backward = _direction(energy_j, active[j], significant_j, threshold_i, active[i])
    runs = [(forward, backward, i, _best_run(forward)), (backward, forward, j, _best_run(backward))]
    scored = [(float(np.sum(d.band_fraction[r[0]:r[1]] * d.band_overlap[r[0]:r[1]])), d, other, a, r)
              for d, other, a, r in runs if r is not None]
    if not scored:
        return None
    scored.sort(key=lambda item: -item[0])
    score, d, other, a, (lo, hi) = scored[0]
    reverse = other.band_overlap[lo:hi]
    reverse_ok = (other.band_fraction[lo:hi] >= MIN_TIME_FRACTION) & (np.nan_to_num(reverse) >= MIN_OVERLAP_DB)
    counts = d.masked_cells[:, lo:hi].sum(axis=0)
    overlap = float(np.sum(np.nan_to_num(d.band_overlap[lo:hi]) * counts) / max(counts.sum(), 1))
    in_range = d.masked_cells[:, lo:hi].any(axis=1)
    fields = dict(
        band_low_hz=round(float(BAND_LOW_HZ[lo]), 1),
        band_high_hz=round(float(BAND_HIGH_HZ[hi - 1]), 1),
        centre_hz=round(float(np.sqrt(BAND_LOW_HZ[lo] * BAND_HIGH_HZ[hi - 1])), 1),
        overlap_db=round(overlap, 2),
        time_fraction=round(float(in_range.sum() / max(int(active[a].sum()), 1)), 3),
        mutual=bool(reverse_ok.any()),
        reverse_overlap_db=round(float(np.nanmean(reverse[reverse_ok])), 2) if reverse_ok.any() else None,
        band_overlap_db=tuple(round(float(v), 2) if np.isfinite(v) and
                              d.band_fraction[k] >= MIN_TIME_FRACTION else None
                              for k, v in enumerate(d.band_overlap)),
    )
    return score, a == i, fields
