"""Per-stem and cross-stem measures on signals with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.analyze.masking import masking_pairs
from bridge.analyze.sections import Section, detect_sections, section_lufs, sections_from_markers
from bridge.analyze import loudness as lu
from bridge.analyze.spectrum import BAND_CENTERS_HZ
from bridge.analyze.stem import analyze_stem

from .signals import FS, features_of, pink_noise, silence, sine, stereo


def analysed(audio, fs=FS):
    return analyze_stem(features_of(audio, fs=fs))


# --- stereo -------------------------------------------------------------------------------------

def test_identical_channels_correlate_at_one():
    a = analysed(stereo(pink_noise(4)))
    assert a.stereo.correlation == pytest.approx(1.0, abs=1e-3)
    assert a.stereo.width == pytest.approx(0.0, abs=1e-3)
    assert a.stereo.mono_loss_db == pytest.approx(0.0, abs=0.01)


def test_inverted_channel_correlates_at_minus_one():
    x = pink_noise(4)
    a = analysed(np.stack([x, -x], axis=1))
    assert a.stereo.correlation == pytest.approx(-1.0, abs=1e-3)
    assert a.stereo.correlation_low == pytest.approx(-1.0, abs=1e-3)
    assert a.stereo.width == pytest.approx(1.0, abs=1e-3)


def test_uncorrelated_channels_are_wide():
    a = analysed(np.stack([pink_noise(6, seed=1), pink_noise(6, seed=2)], axis=1))
    assert abs(a.stereo.correlation) < 0.05
    assert a.stereo.width == pytest.approx(0.5, abs=0.05)
    assert a.stereo.mono_loss_db == pytest.approx(-3.0, abs=0.3)


@pytest.mark.parametrize("pan", [-1.0, -0.5, 0.5, 1.0])
def test_hard_and_half_panned_source_balance(pan):
    x = pink_noise(4)
    theta = (pan + 1) * np.pi / 4  # constant-power pan law
    left, right = np.cos(theta) * x, np.sin(theta) * x
    a = analysed(np.stack([left, right], axis=1))
    assert a.stereo.pan == pytest.approx(np.sin(theta) ** 2 - np.cos(theta) ** 2, abs=0.01)
    if abs(pan) == 1.0:
        assert a.stereo.balance_db == pytest.approx(60.0 * pan), "hard-panned balance sits at the limit"
        assert a.stereo.correlation is None, "one silent channel has no defined correlation"
    else:
        expected = 20 * np.log10(np.sin(theta) / np.cos(theta))
        assert a.stereo.balance_db == pytest.approx(expected, abs=0.1)


def test_mono_stem_has_no_stereo_measures():
    a = analysed(pink_noise(3)[:, None])
    assert a.stereo is None


def test_low_end_correlation_sees_only_the_low_band():
    low = sine(-20, 4, 60.0)
    high = _band_noise(1000, 8000, 4, seed=3) * 4
    # Low end in phase, highs inverted on the right: overall negative-ish, low end at +1.
    a = analysed(np.stack([low + high, low - high], axis=1))
    assert a.stereo.correlation_low > 0.95, a.stereo.correlation_low


# --- levels and faults --------------------------------------------------------------------------

def test_dc_offset_is_measured():
    a = analysed(stereo(pink_noise(3) + 0.01))
    assert a.faults.dc_offset_dbfs == pytest.approx(-40.0, abs=0.3)


def test_clipping_runs_are_counted_across_blocks():
    x = sine(-3, 3, 100.0)
    x = np.clip(x * 4, -1.0, 1.0)  # flat tops every half cycle: 600 runs in 3 s
    a = analyze_stem(features_of(stereo(x), block=4801))
    assert a.faults.clip.runs == pytest.approx(2 * 600, rel=0.02)
    assert a.faults.clip.worst_run_samples > 100


def test_full_scale_peaks_without_flat_tops_are_not_clipping():
    a = analysed(stereo(sine(0.0, 2, 997.0)))
    assert a.faults.clip.runs == 0


def test_silent_stem_has_undefined_loudness():
    a = analysed(stereo(silence(3)))
    assert a.loudness.integrated_lufs is None
    assert a.loudness.max_momentary_lufs is None
    assert a.levels.true_peak_dbtp is None
    assert a.faults.silent and a.faults.active_fraction == 0.0


def test_activity_fraction_of_a_mostly_silent_stem():
    a = analysed(stereo(np.concatenate([silence(6), sine(-20, 2), silence(2)])))
    assert a.faults.active_fraction == pytest.approx(0.2, abs=0.05)


def test_crest_and_plr_of_a_sine():
    a = analysed(stereo(sine(-20, 5, 1000.0)))
    assert a.levels.crest_db == pytest.approx(3.01, abs=0.05)
    assert a.levels.plr_db == pytest.approx(-20 - (-20.0 + 0.0 - 3.01 + 3.01 + 0.69 - 0.691), abs=0.1)


# --- spectrum -----------------------------------------------------------------------------------

@pytest.mark.parametrize("freq", [100.0, 1000.0, 8000.0])
def test_a_tone_lands_in_its_band(freq):
    a = analysed(stereo(sine(-20, 2, freq)))
    levels = np.array([v if v is not None else -300 for v in a.spectrum.band_db])
    assert BAND_CENTERS_HZ[int(np.argmax(levels))] == pytest.approx(freq, rel=0.13)


def test_rumble_is_energy_below_30_hz():
    clean = analysed(stereo(_band_noise(100, 5000, 4, seed=4)))
    rumbly = analysed(stereo(_band_noise(100, 5000, 4, seed=4) + sine(-30, 4, 20.0)))
    assert rumbly.spectrum.rumble_db > clean.spectrum.rumble_db + 10


def test_spectra_compare_in_hz_across_sample_rates():
    a = analysed(stereo(sine(-20, 2, 1000.0, fs=44100)), fs=44100)
    b = analysed(stereo(sine(-20, 2, 1000.0)))
    assert a.spectrum.band_db[17] == pytest.approx(b.spectrum.band_db[17], abs=0.2)


# --- masking ------------------------------------------------------------------------------------

def _band_noise(low_hz, high_hz, seconds, seed):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / FS)
    spec[(f < low_hz) | (f > high_hz)] = 0
    x = np.fft.irfft(spec, n)
    return x / np.sqrt(np.mean(x ** 2)) * 0.05


def _masking(*stems):
    feats = [features_of(stereo(x)) for x in stems]
    analyses = [analyze_stem(f) for f in feats]
    return masking_pairs([f"s{i}" for i in range(len(stems))], [f.band_power for f in feats],
                         [a.active for a in analyses])


def test_same_band_same_time_masks():
    pairs = _masking(_band_noise(60, 120, 6, 1), _band_noise(60, 120, 6, 2))
    assert pairs, "two stems sharing 60-120 Hz at the same time must mask"
    p = pairs[0]
    assert p.band_low_hz < 120 and p.band_high_hz > 60, (p.band_low_hz, p.band_high_hz)
    assert p.time_fraction > 0.8 and p.overlap_db > 3.0 and p.mutual


def test_separate_bands_do_not_mask():
    assert _masking(_band_noise(60, 120, 6, 1), _band_noise(3000, 6000, 6, 2)) == []


def test_separate_times_do_not_mask():
    a = np.concatenate([_band_noise(60, 120, 3, 1), silence(3)])
    b = np.concatenate([silence(3), _band_noise(60, 120, 3, 2)])
    assert _masking(a, b) == []


def test_a_much_quieter_masker_does_not_mask():
    assert _masking(_band_noise(60, 120, 6, 1), _band_noise(60, 120, 6, 2) * 0.05) == [] or \
        all(p.masked == "s1" for p in _masking(_band_noise(60, 120, 6, 1), _band_noise(60, 120, 6, 2) * 0.05))


# --- sections -----------------------------------------------------------------------------------

def test_loud_and_quiet_parts_split_where_they_should():
    x = np.concatenate([pink_noise(20, seed=1) * 0.1, pink_noise(20, seed=2), pink_noise(20, seed=3) * 0.1])
    f = features_of(stereo(x))
    a = analyze_stem(f)
    sections = detect_sections(f.band_power, f.subhop_power, lu.channel_weights(2), [a.active], f.duration_s)
    bounds = [s.start_s for s in sections[1:]]
    assert len(bounds) == 2, sections
    assert bounds[0] == pytest.approx(20, abs=1.5) and bounds[1] == pytest.approx(40, abs=1.5), bounds
    assert sections[0].name == sections[2].name != sections[1].name, "quiet parts share a label"


def test_section_loudness_per_stem():
    x = np.concatenate([sine(-30, 10), sine(-20, 10)])
    f = features_of(stereo(x))
    w = lu.channel_weights(2)
    assert section_lufs(f.subhop_power, w, Section("v", 0, 10, "markers")) == pytest.approx(-30, abs=0.1)
    assert section_lufs(f.subhop_power, w, Section("c", 10, 20, "markers")) == pytest.approx(-20, abs=0.1)


def test_markers_become_sections():
    marks = [("Verse", 0.0, None), ("Chorus", 10.0, None)]
    assert sections_from_markers(marks, 25.0) == [Section("Verse", 0.0, 10.0, "markers"),
                                                  Section("Chorus", 10.0, 25.0, "markers")]
    regions = [("Chorus", 10.0, 20.0), ("Verse", 0.0, 10.0)]
    assert [s.name for s in sections_from_markers(regions, 25.0)] == ["Verse", "Chorus"]


def test_masking_memo_reuses_unchanged_pairs_and_gives_the_same_answer():
    """A re-bounce with one changed stem: pairs of unchanged stems come from the memo, and the
    result equals a fresh computation (names are applied after the lookup, so a rename is safe)."""
    from bridge.analyze import masking

    rng = np.random.default_rng(7)
    bands = len(masking.BAND_LOW_HZ)
    power = [(rng.random((300, bands)) ** 4).astype(np.float32) * 10 ** rng.uniform(-6, -2) for _ in range(6)]
    active = [rng.random(300) > 0.1 for _ in range(6)]
    names, keys, memo = [f"s{i}" for i in range(6)], [f"k{i}" for i in range(6)], {}
    assert masking.masking_pairs(names, power, active, keys, memo) == masking.masking_pairs(names, power, active)
    assert len(memo) == 15
    power[2] = power[2] * np.float32(0.3)
    keys[2] = "k2-new"
    names[0] = "renamed"
    calls = []
    original = masking._pair
    masking._pair = lambda *a: calls.append(a[:2]) or original(*a)
    try:
        again = masking.masking_pairs(names, power, active, keys, memo)
    finally:
        masking._pair = original
    assert sorted(calls) == [(0, 2), (1, 2), (2, 3), (2, 4), (2, 5)], "only the changed stem's pairs"
    assert again == masking.masking_pairs(names, power, active)
