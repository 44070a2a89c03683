"""Song sections: from the producer's markers when given, otherwise found in the summed mix.

Automatic detection is Foote's novelty segmentation (Foote, "Automatic audio segmentation using
a measure of audio novelty", ICME 2000) on one-second frames of the mix's log band energies, its
loudness, and which stems are playing (stems announce section changes that a finished mix hides:
drums enter, the vocal stops).  Sections that sound alike share a label (A, B, ...), so "every
chorus" can be compared with "every verse".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import loudness as lu

#: Seconds per novelty frame.
NOVELTY_FRAME_S = 1.0
#: Shortest section the detector returns, seconds.
MIN_SECTION_S = 4.0
#: Sections whose mean features have at least this cosine similarity share a label.
SAME_LABEL_SIMILARITY = 0.97


@dataclass(frozen=True, slots=True)
class Section:
    """A span of the song.

    Attributes
    ----------
    name : str
        The marker/region name, or a letter label for detected sections.
    start_s, end_s : float
    source : str
        ``"markers"`` or ``"auto"``.
    """

    name: str
    start_s: float
    end_s: float
    source: str


def sections_from_markers(marks: list[tuple[str, float, float | None]], duration_s: float) -> list[Section]:
    """Turn markers ``(name, start_s, None)`` and regions ``(name, start_s, end_s)`` into sections.

    Regions are used as they are.  Markers start a section that runs to the next marker (or
    region start) or the end of the song.  Anything before the first mark becomes "Start".
    """
    marks = sorted(marks, key=lambda m: m[1])
    regions = [m for m in marks if m[2] is not None]
    if regions:
        return [Section(name, max(0.0, start), min(end, duration_s), "markers")
                for name, start, end in regions if end > start and start < duration_s]
    sections = []
    starts = [m for m in marks if 0.0 <= m[1] < duration_s]
    if starts and starts[0][1] > 0.5:
        sections.append(Section("Start", 0.0, starts[0][1], "markers"))
    for k, (name, start, _) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else duration_s
        if end > start:
            sections.append(Section(name, start, end, "markers"))
    return sections


def _features(band_power: np.ndarray, subhop_power: np.ndarray, weights: np.ndarray,
              stem_active: list[np.ndarray]) -> np.ndarray:
    per = int(round(NOVELTY_FRAME_S / 0.1))
    n = len(band_power) // per
    if n == 0:
        return np.zeros((0, 1))
    # Powers are clipped to a finite range: a float stem far above full scale (1e38) overflows its
    # float32 band power to inf, and inf - inf would turn every feature into NaN.
    bands = np.clip(band_power[: n * per].reshape(n, per, -1).mean(axis=1, dtype=np.float64), 1e-12, 1e300)
    bands_db = 10.0 * np.log10(bands)
    hops = np.clip(subhop_power[: n * per * 10].reshape(n, per * 10, -1).mean(axis=1, dtype=np.float64), 0.0, 1e300) @ weights
    loud = np.maximum(10.0 * np.log10(np.clip(hops, 1e-12, 1e300)), -80.0)[:, None]
    parts = [bands_db, loud * 2.0]
    for active in stem_active:
        a = np.zeros(n * per, dtype=np.float64)
        a[: min(len(active), n * per)] = active[: n * per]
        parts.append(a.reshape(n, per).mean(axis=1)[:, None] * 20.0)
    feats = np.concatenate(parts, axis=1)
    feats = feats - feats.mean(axis=0)
    scale = feats.std(axis=0)
    return feats / np.where(scale > 1e-9, scale, 1.0)


#: Up to this many novelty frames (20 minutes) the whole self-similarity matrix is formed
#: (11.5 MB); beyond it only the band around the diagonal that the kernel reads is (memory linear
#: in length: a 3-hour mix would otherwise need two 0.9 GB matrices).  Same values up to rounding.
FULL_SSM_MAX_FRAMES = 1200


def _novelty(feats: np.ndarray, half: int) -> np.ndarray:
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = feats / np.where(norms > 1e-12, norms, 1.0)
    idx = np.arange(-half, half)
    gauss = np.exp(-0.5 * ((idx + 0.5) / (0.5 * half)) ** 2)
    sign = np.where(idx < 0, -1.0, 1.0)
    kernel = np.outer(sign * gauss, sign * gauss)
    n = len(feats)
    if n > FULL_SSM_MAX_FRAMES:
        return np.maximum(_banded_novelty(unit, kernel, half), 0.0)
    ssm = unit @ unit.T
    padded = np.pad(ssm, half, mode="edge")
    novelty = np.array([np.sum(kernel * padded[t:t + 2 * half, t:t + 2 * half]) for t in range(n)])
    return np.maximum(novelty, 0.0)


def _banded_novelty(unit: np.ndarray, kernel: np.ndarray, half: int) -> np.ndarray:
    """The novelty of :func:`_novelty` without the n x n matrix: each window's block of the
    edge-padded self-similarity matrix is the similarity of the (index-clamped) frames it covers."""
    n = len(unit)
    offsets = np.arange(-half, half)
    novelty = np.empty(n)
    step = 512  # windows per batch: a (512, 2h, 2h) block at a time
    for start in range(0, n, step):
        t = np.arange(start, min(start + step, n))
        idx = np.clip(t[:, None] + offsets[None, :], 0, n - 1)  # (batch, 2h)
        frames = unit[idx]  # (batch, 2h, d)
        block = np.einsum("bid,bjd->bij", frames, frames)
        novelty[t] = np.einsum("bij,ij->b", block, kernel)
    return novelty


def detect_sections(band_power: np.ndarray, subhop_power: np.ndarray, weights: np.ndarray,
                    stem_active: list[np.ndarray], duration_s: float) -> list[Section]:
    """Sections of the summed mix by novelty segmentation.

    Parameters
    ----------
    band_power : ndarray [shape=(frames, bands)]
        The mix's band energies on the 100 ms grid.
    subhop_power : ndarray [shape=(subhops, channels)]
        The mix's K-weighted 10 ms energies.
    weights : ndarray
        BS.1770 channel weights for ``subhop_power``.
    stem_active : list of ndarray
        Activity masks of the stems, 100 ms grid.
    duration_s : float
    """
    feats = _features(band_power, subhop_power, weights, stem_active)
    n = len(feats)
    if n < 2 * MIN_SECTION_S:
        return [Section("A", 0.0, duration_s, "auto")]
    half = int(np.clip(round(n / 8), 2, 8))
    novelty = _novelty(feats, half)
    if novelty.max() <= 1e-9:
        return [Section("A", 0.0, duration_s, "auto")]
    threshold = np.median(novelty) + 0.5 * novelty.std()
    candidates = [t for t in range(1, n - 1)
                  if novelty[t] >= novelty[t - 1] and novelty[t] > novelty[t + 1] and novelty[t] > threshold]
    min_gap = int(MIN_SECTION_S / NOVELTY_FRAME_S)
    boundaries: list[int] = []
    for t in sorted(candidates, key=lambda t: -novelty[t]):
        if t < min_gap or n - t < min_gap:
            continue
        if all(abs(t - b) >= min_gap for b in boundaries):
            boundaries.append(t)
    edges = [0.0] + [b * NOVELTY_FRAME_S for b in sorted(boundaries)] + [duration_s]
    spans = [(edges[k], edges[k + 1]) for k in range(len(edges) - 1)]
    # Label sections by similarity of their mean features.
    means = []
    for start, end in spans:
        lo, hi = int(start / NOVELTY_FRAME_S), max(int(start / NOVELTY_FRAME_S) + 1, int(end / NOVELTY_FRAME_S))
        means.append(feats[lo:min(hi, n)].mean(axis=0))
    labels: list[int] = []
    prototypes: list[np.ndarray] = []
    for m in means:
        label = None
        for k, proto in enumerate(prototypes):
            denom = np.linalg.norm(m) * np.linalg.norm(proto)
            if denom > 0 and float(m @ proto) / denom >= SAME_LABEL_SIMILARITY:
                label = k
                break
        if label is None:
            prototypes.append(m)
            label = len(prototypes) - 1
        labels.append(label)
    return [Section(chr(ord("A") + label) if label < 26 else f"S{label}", round(start, 2), round(end, 2), "auto")
            for (start, end), label in zip(spans, labels)]


def section_lufs(subhop_power: np.ndarray, weights: np.ndarray, section: Section) -> float | None:
    """Gated integrated loudness (BS.1770-4) over the gating blocks that lie inside ``section``."""
    return section_lufs_from_blocks(lu.gating_blocks(subhop_power), weights, section)


def section_lufs_from_blocks(blocks: np.ndarray, weights: np.ndarray, section: Section) -> float | None:
    """:func:`section_lufs` from the stream's gating blocks (:func:`~bridge.analyze.loudness.gating_blocks`),
    computed once per stream for all its sections."""
    if len(blocks) == 0:
        return None
    starts_s = np.arange(len(blocks)) * 0.1
    inside = (starts_s >= section.start_s - 1e-9) & (starts_s + 0.4 <= section.end_s + 1e-9)
    return lu.integrated_lufs(blocks[inside], weights)
