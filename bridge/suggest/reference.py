"""Distance to a reference track, level-matched, and broad EQ moves towards it.

After Matchering's idea (compare the target with a reference at matched level, smooth the
difference, correct it) but as a handful of capped, explainable moves instead of a 4096-tap
filter: both spectra are normalised to their integrated loudness, summed into six broad bands,
and the differences enter the planner's objective (:mod:`bridge.suggest.objective`): broad EQ moves of
at most 3 dB on the two stems of fitting roles that carry most of a band (low-end deltas on bass-role
stems, and so on) are proposed when they bring the mix closer than their cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analyze.spectrum import BAND_HIGH_HZ, BAND_LOW_HZ
from ..analyze.stem import StemAnalysis
from .roles import (BACKING_VOCAL, BASS, DRUMS, GUITAR, HATS, KEYS, KICK, LEAD_VOCAL, PAD, SNARE,
                    SYNTH_LEAD)

#: Broad bands: (name, first 1/3-octave band index, last index, EQ kind, EQ frequency, EQ Q, roles).
BROAD_BANDS = (
    ("sub", 0, 4, "lowshelf", 50.0, 0.7, (BASS, KICK)),
    ("low", 5, 11, "peak", 125.0, 0.7, (BASS, KICK)),
    ("low-mid", 12, 17, "peak", 500.0, 0.7, (KEYS, PAD, GUITAR, BACKING_VOCAL)),
    ("mid", 18, 23, "peak", 2000.0, 0.7, (GUITAR, KEYS, SYNTH_LEAD, LEAD_VOCAL, SNARE)),
    ("presence", 24, 26, "peak", 6300.0, 1.0, (LEAD_VOCAL, BACKING_VOCAL, GUITAR, SNARE, SYNTH_LEAD)),
    ("air", 27, 30, "highshelf", 10000.0, 0.7, (HATS, DRUMS, PAD, LEAD_VOCAL, BACKING_VOCAL)),
)
#: Differences smaller than this are left alone; moves are capped at the second figure.
REFERENCE_MIN_DB = 1.5
REFERENCE_MAX_DB = 3.0
#: Stems that receive one broad band's move.
STEMS_PER_MOVE = 2


@dataclass(frozen=True, slots=True)
class BandDelta:
    name: str
    low_hz: float
    high_hz: float
    mix_db: float | None
    reference_db: float | None
    delta_db: float | None  # reference minus mix, both relative to their integrated loudness


@dataclass(frozen=True, slots=True)
class ReferenceComparison:
    """How far the summed mix sits from the reference, level-matched."""

    name: str
    integrated_lufs: float | None
    mix_integrated_lufs: float | None
    bands: tuple[BandDelta, ...]
    mix_side_mid_db: float | None
    reference_side_mid_db: float | None
    mix_lra_lu: float | None
    reference_lra_lu: float | None
    mix_plr_db: float | None
    reference_plr_db: float | None
    reference_band_db: tuple[float | None, ...]

    @property
    def loudness_delta_lu(self) -> float | None:
        if self.integrated_lufs is None or self.mix_integrated_lufs is None:
            return None
        return round(self.integrated_lufs - self.mix_integrated_lufs, 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "integrated_lufs": self.integrated_lufs,
            "mix_integrated_lufs": self.mix_integrated_lufs, "loudness_delta_lu": self.loudness_delta_lu,
            "bands": [{"name": b.name, "low_hz": b.low_hz, "high_hz": b.high_hz, "mix_db": b.mix_db,
                       "reference_db": b.reference_db, "delta_db": b.delta_db} for b in self.bands],
            "side_mid_ratio_db": {"mix": self.mix_side_mid_db, "reference": self.reference_side_mid_db},
            "lra_lu": {"mix": self.mix_lra_lu, "reference": self.reference_lra_lu},
            "plr_db": {"mix": self.mix_plr_db, "reference": self.reference_plr_db},
            "reference_band_db": list(self.reference_band_db),
        }


def _broad_db(band_db: tuple[float | None, ...], lo: int, hi: int, offset: float) -> float | None:
    power = sum(10 ** (v / 10) for v in band_db[lo:hi + 1] if v is not None)
    return round(10 * math.log10(power) - offset, 2) if power > 0 else None


def compare(mix: StemAnalysis, reference: StemAnalysis, name: str) -> ReferenceComparison:
    """Level-matched comparison of the summed mix with a reference track (pure)."""
    mix_i = mix.loudness.integrated_lufs
    ref_i = reference.loudness.integrated_lufs
    bands = []
    for band_name, lo, hi, *_ in BROAD_BANDS:
        m = _broad_db(mix.spectrum.band_db, lo, hi, mix_i or 0.0)
        r = _broad_db(reference.spectrum.band_db, lo, hi, ref_i or 0.0)
        delta = round(r - m, 2) if m is not None and r is not None else None
        bands.append(BandDelta(band_name, round(float(BAND_LOW_HZ[lo]), 1), round(float(BAND_HIGH_HZ[hi]), 1),
                               m, r, delta))

    def side_mid(a: StemAnalysis) -> float | None:
        return a.stereo.side_mid_ratio_db if a.stereo is not None else None
    return ReferenceComparison(
        name=name, integrated_lufs=ref_i, mix_integrated_lufs=mix_i, bands=tuple(bands),
        mix_side_mid_db=side_mid(mix), reference_side_mid_db=side_mid(reference),
        mix_lra_lu=mix.loudness.lra_lu, reference_lra_lu=reference.loudness.lra_lu,
        mix_plr_db=mix.levels.plr_db, reference_plr_db=reference.levels.plr_db,
        reference_band_db=tuple(reference.spectrum.band_db))
