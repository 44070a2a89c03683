"""EBU Tech 3341 (cases 1-6, 9-19) and Tech 3342 (cases 1-4), synthesised, at the spec tolerances.

Definitions and pitfalls: shared/reference/analysis.md section 1 and table (a).
"""
from __future__ import annotations

import numpy as np
import pytest

from bridge.analyze import loudness as lu
from bridge.units import gain_to_db

from .signals import FS, features_of, silence, sine, stereo, taper

LU_TOL = 0.1


def _measures(audio, block=None):
    f = features_of(audio, block=block)
    w = lu.channel_weights(f.channels)
    return f, w


def integrated(audio, block=None):
    f, w = _measures(audio, block)
    return lu.integrated_lufs(lu.gating_blocks(f.subhop_power), w)


@pytest.mark.parametrize("case, audio, expected", [
    ("3341-1", stereo(sine(-23, 20)), -23.0),
    ("3341-2", stereo(sine(-33, 20)), -33.0),
    ("3341-3", stereo(np.concatenate([sine(-36, 10), sine(-23, 60), sine(-36, 10)])), -23.0),
    ("3341-4", stereo(np.concatenate([sine(-72, 10), sine(-36, 10), sine(-23, 60), sine(-36, 10), sine(-72, 10)])), -23.0),
    ("3341-5", stereo(np.concatenate([sine(-26, 20), sine(-20, 20.1), sine(-26, 20)])), -23.0),
])
def test_integrated_loudness_cases(case, audio, expected):
    value = integrated(audio)
    assert value == pytest.approx(expected, abs=LU_TOL), f"{case}: I = {value:.3f} LUFS, expected {expected}"


def test_3341_1_momentary_and_short_term_are_constant():
    f, w = _measures(stereo(sine(-23, 20)))
    m = lu.momentary_lufs(f.subhop_power, w)
    s = lu.short_term_lufs(f.subhop_power, w)
    assert np.all(np.abs(m - -23.0) <= LU_TOL), f"M range {m.min():.3f}..{m.max():.3f}"
    assert np.all(np.abs(s - -23.0) <= LU_TOL), f"S range {s.min():.3f}..{s.max():.3f}"


def test_3341_6_five_channel_weights():
    # L, R, C, Ls, Rs at -28, -28, -24, -30, -30 dBFS; surrounds weighted 1.41.
    levels = (-28, -28, -24, -30, -30)
    audio = np.stack([sine(db, 20) for db in levels], axis=1)
    value = integrated(audio)
    assert value == pytest.approx(-23.0, abs=LU_TOL), f"5.0: I = {value:.3f}"


def test_3341_6_as_5_1_ignores_lfe():
    levels = (-28, -28, -24, None, -30, -30)
    audio = np.stack([sine(db, 20) if db is not None else sine(-10, 20, 50.0) for db in levels], axis=1)
    value = integrated(audio)
    assert value == pytest.approx(-23.0, abs=LU_TOL), f"5.1 with a loud LFE: I = {value:.3f}"


def test_3341_9_short_term_constant_after_3_s():
    cycle = np.concatenate([sine(-20, 1.34), sine(-30, 1.66)])
    f, w = _measures(stereo(np.concatenate([cycle] * 5)))
    s = lu.short_term_lufs(f.subhop_power, w)
    assert len(s) > 100
    assert np.all(np.abs(s - -23.0) <= LU_TOL), f"S deviates up to {np.abs(s + 23).max():.3f} LU"


@pytest.mark.parametrize("k", range(1, 21))
def test_3341_10_max_short_term(k):
    audio = stereo(np.concatenate([silence((k - 1) * 0.15), sine(-23, 3), silence(1.0)]))
    f, w = _measures(audio)
    value = np.nanmax(lu.short_term_lufs(f.subhop_power, w))
    assert value == pytest.approx(-23.0, abs=LU_TOL), f"3341-10.{k}: max S = {value:.3f}"


def test_3341_11_successive_max_short_term():
    parts = []
    for k in range(20):
        parts += [silence(k * 0.15), sine(-38 + k, 3), silence(3 - 0.15 * k)]
    f, w = _measures(stereo(np.concatenate(parts)))
    s = lu.short_term_lufs(f.subhop_power, w)
    # Each 6 s slot holds one tone; its maximum S is the tone's level.
    for k in range(20):
        slot = s[max(0, k * 60 - 29): (k + 1) * 60 - 29]
        assert np.nanmax(slot) == pytest.approx(-38 + k, abs=LU_TOL), f"tone {k}: max S {np.nanmax(slot):.3f}"


def test_3341_12_momentary_constant_after_1_s():
    cycle = np.concatenate([sine(-20, 0.18), sine(-30, 0.22)])
    f, w = _measures(stereo(np.concatenate([cycle] * 25)))
    m = lu.momentary_lufs(f.subhop_power, w)
    assert np.all(np.abs(m[60:] - -23.0) <= LU_TOL), f"M deviates up to {np.abs(m[60:] + 23).max():.3f} LU"


@pytest.mark.parametrize("k", range(1, 21))
def test_3341_13_max_momentary_needs_10ms_grid(k):
    audio = stereo(np.concatenate([silence((k - 1) * 0.02), sine(-23, 0.4), silence(1.0)]))
    f, w = _measures(audio)
    value = np.nanmax(lu.momentary_lufs(f.subhop_power, w))
    assert value == pytest.approx(-23.0, abs=LU_TOL), f"3341-13.{k}: max M = {value:.3f}"


def test_3341_14_successive_max_momentary():
    parts = []
    for k in range(20):
        parts += [silence(k * 0.02), sine(-38 + k, 0.4), silence(0.4 - 0.02 * k)]
    f, w = _measures(stereo(np.concatenate(parts)))
    m = lu.momentary_lufs(f.subhop_power, w)
    for k in range(20):
        slot = m[max(0, k * 80 - 39): (k + 1) * 80 - 39]
        assert np.nanmax(slot) == pytest.approx(-38 + k, abs=LU_TOL), f"burst {k}: max M {np.nanmax(slot):.3f}"


@pytest.mark.parametrize("case, freq_div, phase, amp, expected", [
    ("3341-15", 4, 0.0, 0.5, -6.0),
    ("3341-16", 4, 45.0, 0.5, -6.0),
    ("3341-17", 6, 60.0, 0.5, -6.0),
    ("3341-18", 8, 67.5, 0.5, -6.0),
    ("3341-19", 4, 45.0, 1.41, 3.0),
])
def test_true_peak_cases(case, freq_div, phase, amp, expected):
    n = 3 * FS
    x = taper(amp * np.sin(2 * np.pi * (FS / freq_div) * np.arange(n) / FS + np.deg2rad(phase)))
    f = features_of(stereo(x))
    tp = gain_to_db(f.true_peak)
    assert expected - 0.4 <= tp <= expected + 0.2, f"{case}: {tp:.3f} dBTP, expected {expected} +0.2/-0.4"


@pytest.mark.parametrize("case, levels, expected", [
    ("3342-1", (-20, -30), 10.0),
    ("3342-2", (-20, -15), 5.0),
    ("3342-3", (-40, -20), 20.0),
    ("3342-4", (-50, -35, -20, -35, -50), 15.0),
])
def test_loudness_range_cases(case, levels, expected):
    f, w = _measures(stereo(np.concatenate([sine(db, 20) for db in levels])))
    lra = lu.loudness_range_lu(lu.short_term_lufs(f.subhop_power, w))
    assert lra == pytest.approx(expected, abs=1.0), f"{case}: LRA {lra:.3f} LU, expected {expected}"


def test_bs1770_anchor_997hz_one_channel():
    value = integrated(np.stack([sine(0.0, 10, 997.0), silence(10)], axis=1))
    assert value == pytest.approx(-3.01, abs=0.01), f"997 Hz 0 dBFS on L: {value:.4f} LKFS"


@pytest.mark.parametrize("fs", [44100, 88200, 96000, 192000])
def test_k_weighting_other_rates(fs):
    x = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * np.arange(10 * fs) / fs)
    f = features_of(np.stack([x, x], axis=1), fs=fs)
    value = lu.integrated_lufs(lu.gating_blocks(f.subhop_power), lu.channel_weights(2))
    assert value == pytest.approx(-23.0, abs=0.05), f"{fs} Hz: {value:.3f}"


def test_k_weighting_matches_bs1770_table_at_48k():
    sos = lu.k_weighting_sos(48000)
    table = [[1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
             [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]]
    np.testing.assert_allclose(sos, table, atol=1e-12)


@pytest.mark.parametrize("block", [480, 4410, 48000, 100000])
def test_streaming_is_block_size_independent(block):
    audio = stereo(np.concatenate([sine(-36, 3), sine(-23, 5), sine(-36, 2)]))
    reference = integrated(audio, block=len(audio))
    assert integrated(audio, block=block) == pytest.approx(reference, abs=1e-4)


def test_pyloudnorm_deman_agrees():
    pyln = pytest.importorskip("pyloudnorm")
    from .signals import pink_noise
    x = np.stack([pink_noise(12, seed=1), pink_noise(12, seed=2)], axis=1)
    ours = integrated(x)
    theirs = pyln.Meter(FS, filter_class="DeMan").integrated_loudness(x)
    assert ours == pytest.approx(theirs, abs=0.02), f"ours {ours:.3f} vs pyloudnorm DeMan {theirs:.3f}"
