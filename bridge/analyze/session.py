"""Cross-stem analysis: the summed mix, masking between stems, and sections.  Pure.

Works on features only: stems of different rates and lengths align on the shared 100 ms grid
(frames are 100 ms at every rate) and compare spectra in Hz (bands are fixed in Hz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import loudness as lu
from .features import StemFeatures
from .masking import MaskingPair, masking_pairs
from .sections import Section, detect_sections, section_lufs_from_blocks, sections_from_markers
from .stem import StemAnalysis, analyze_stem


@dataclass(frozen=True, slots=True)
class SectionLevels:
    """One section and the loudness of every stem (and the mix) inside it, LUFS or ``None``."""

    section: Section
    stem_lufs: tuple[tuple[str, float | None], ...]
    mix_lufs: float | None


@dataclass(frozen=True, slots=True)
class MixAnalysis:
    """Everything measured across stems.

    Attributes
    ----------
    summed : StemAnalysis or None
        The summed mix measured like a stem (loudness, true peak, spectrum, stereo).
    sample_rate : int or None
        The rate the mix was summed at.
    masking : tuple of MaskingPair
    sections : tuple of SectionLevels
    alignment : tuple of str
        What was aligned to compare the stems: rates, lengths, channel layouts.
    """

    summed: StemAnalysis | None
    sample_rate: int | None
    masking: tuple[MaskingPair, ...]
    sections: tuple[SectionLevels, ...]
    alignment: tuple[str, ...]


def _pad_frames(array: np.ndarray, frames: int) -> np.ndarray:
    if len(array) >= frames:
        return array[:frames]
    pad = np.zeros((frames - len(array),) + array.shape[1:], dtype=array.dtype)
    return np.concatenate([array, pad])


def stem_masking(stems: list[tuple[str, StemFeatures, StemAnalysis]], stem_keys: list[str] | None = None,
                 masking_memo: dict | None = None) -> tuple[MaskingPair, ...]:
    """Masking between the stems on their common frame count (see :func:`analyze_mix`).

    Depends on the stems alone, not on the mix, so the pipeline runs it (filling ``masking_memo``)
    while the mix is still being measured.
    """
    frames = max(f.n_frames for _, f, _ in stems)
    names = [name for name, _, _ in stems]
    band_power = [_pad_frames(f.band_power, frames) for _, f, _ in stems]
    active = [_pad_frames(a.active, frames) for _, _, a in stems]
    return tuple(masking_pairs(names, band_power, active, stem_keys, masking_memo))


def analyze_mix(stems: list[tuple[str, StemFeatures, StemAnalysis]], mix: StemFeatures | None,
                markers: list[tuple[str, float, float | None]] | None = None,
                alignment: tuple[str, ...] = (), stem_keys: list[str] | None = None,
                masking_memo: dict | None = None) -> MixAnalysis:
    """Cross-stem measures.

    Parameters
    ----------
    stems : list of (name, features, analysis)
        The stems that were read successfully.
    mix : StemFeatures or None
        Features of the summed mix (see :mod:`bridge.pipeline`).
    markers : list of (name, start_s, end_s or None), optional
        Markers and regions; sections are detected when absent.
    alignment : tuple of str
        Notes from summing (resampling, padding) to carry into the result.
    stem_keys, masking_memo : optional
        Content keys of ``stems`` and a dict kept between calls: masking pairs of unchanged stems
        are reused (see :func:`~bridge.analyze.masking.masking_pairs`).
    """
    if not stems:
        return MixAnalysis(None, None, (), (), alignment)
    summed = analyze_stem(mix) if mix is not None else None
    frames = max(f.n_frames for _, f, _ in stems)
    duration_s = max(f.duration_s for _, f, _ in stems)
    active = [_pad_frames(a.active, frames) for _, _, a in stems]
    pairs = stem_masking(stems, stem_keys, masking_memo)

    notes = list(alignment)
    rates = sorted({f.sample_rate for _, f, _ in stems})
    if len(rates) > 1:
        notes.append("sample rates differ (" + ", ".join(f"{r} Hz" for r in rates)
                     + "): spectra compared in Hz on the shared 100 ms grid")
    lengths = {name: f.duration_s for name, f, _ in stems}
    short = [n for n, d in lengths.items() if d < duration_s - 0.05]
    if short:
        notes.append("shorter stems padded with silence to " f"{duration_s:.2f} s: " + ", ".join(short))

    if markers:
        sections = sections_from_markers(markers, duration_s)
    elif mix is not None:
        sections = detect_sections(mix.band_power, mix.subhop_power, lu.channel_weights(mix.channels),
                                   active, mix.duration_s)
    else:
        sections = [Section("A", 0.0, duration_s, "auto")]
    # Gating blocks once per stream, not once per section and stream.
    stem_blocks = [(name, lu.gating_blocks(f.subhop_power), lu.channel_weights(f.channels)) for name, f, _ in stems]
    mix_blocks = (lu.gating_blocks(mix.subhop_power), lu.channel_weights(mix.channels)) if mix is not None else None
    levels = []
    for section in sections:
        stem_lufs = tuple((name, _round(section_lufs_from_blocks(blocks, weights, section)))
                          for name, blocks, weights in stem_blocks)
        mix_lufs = _round(section_lufs_from_blocks(*mix_blocks, section)) if mix_blocks is not None else None
        levels.append(SectionLevels(section, stem_lufs, mix_lufs))
    return MixAnalysis(summed, mix.sample_rate if mix is not None else None, pairs, tuple(levels), tuple(notes))


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
