"""The low-band signal and the polarity between two mics (bridge/analyze/polarity.py), on signals with
known answers, and the compressor's peak reduction the planner assumes, against the renderer."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.analyze.features import FeatureExtractor
from bridge.analyze.polarity import LowBandSignal, polarity_between, signal_rate_hz

FS = 48000


def _drum(delay_s=0.0, freq_hz=180.0, seconds=6.0, every_s=0.5, tau_s=0.08, fs=FS):
    t = np.arange(int(seconds * fs)) / fs - delay_s
    x = t % every_s
    return np.where(t >= 0, np.exp(-x / tau_s) * np.sin(2 * np.pi * freq_hz * x), 0.0)


def _low(signal, fs=FS, block=4801):
    lb = LowBandSignal(fs)
    x = np.atleast_2d(signal).astype(np.float32)
    for i in range(0, x.shape[1], block):
        lb.feed(x[:, i:i + block])
    return lb.result()


def test_the_low_band_signal_is_about_1_khz_and_block_size_independent():
    x = _drum() + 0.3 * np.sin(2 * np.pi * 3000 * np.arange(6 * FS) / FS)  # wires above the band
    a, b = _low(x, block=4801), _low(x, block=48000)
    assert a.dtype == np.float16 and len(a) == pytest.approx(6 * signal_rate_hz(FS), abs=2)
    np.testing.assert_array_equal(a, b)
    # The 3 kHz content is filtered out: what is left is the drum's body.
    body = _low(_drum())
    assert float(np.abs(a.astype(float) - body.astype(float)).max()) < 0.05 * float(np.abs(body).max())


@pytest.mark.parametrize("fs", [48000, 44100])
def test_an_inverted_delayed_copy_reads_minus_one_at_its_lag(fs):
    top = _low(_drum(fs=fs), fs)
    bottom = _low(-0.4 * _drum(delay_s=0.0007, fs=fs), fs)
    m = polarity_between(top, bottom, signal_rate_hz(fs))
    assert m.correlation < -0.95 and m.lag_ms == pytest.approx(0.7, abs=0.1), m
    assert m.zero_lag < -0.5 and m.energy_ratio_db == pytest.approx(20 * np.log10(0.4), abs=0.5)
    # The same copy in polarity, 1.2 ms late (a kick-out mic): positive at its lag.
    out = _low(0.9 * _drum(delay_s=0.0012, freq_hz=60.0, tau_s=0.1, fs=fs), fs)
    m = polarity_between(_low(_drum(freq_hz=60.0, tau_s=0.1, fs=fs), fs), out, signal_rate_hz(fs))
    assert m.correlation > 0.95 and m.lag_ms == pytest.approx(1.2, abs=0.1) and m.zero_lag > 0.5, m


def test_unrelated_or_missing_signals_give_no_strong_answer():
    rng = np.random.default_rng(3)
    a = _low(rng.standard_normal(6 * FS))
    b = _low(rng.standard_normal(6 * FS))
    m = polarity_between(a, b, signal_rate_hz(FS))
    assert abs(m.correlation) < 0.2
    assert polarity_between(a, None, signal_rate_hz(FS)) is None
    assert polarity_between(a[:100], b[:100], signal_rate_hz(FS)) is None
    assert polarity_between(np.zeros_like(a), b, signal_rate_hz(FS)) is None


def test_the_feature_extractor_keeps_the_low_band_signal_through_slim():
    ex = FeatureExtractor(FS, 2)
    x = np.stack([_drum(), _drum()], axis=1).astype(np.float32)
    for i in range(0, len(x), 10000):
        ex.feed(x[i:i + 10000])
    f = ex.finish()
    assert f.low_signal is not None and len(f.low_signal) == pytest.approx(6 * signal_rate_hz(FS), abs=2)
    slim = f.slim()
    np.testing.assert_array_equal(slim.low_signal, f.low_signal)
    back = type(f).from_arrays(slim.to_arrays())
    np.testing.assert_array_equal(back.low_signal, f.low_signal)


@pytest.mark.parametrize("attack_ms", [3.0, 10.0, 30.0])
def test_the_compressor_takes_at_least_the_assumed_share_of_its_static_reduction_off_a_peak(attack_ms):
    """objective.COMP_PEAK_SHARE against the renderer: a vocal-like phrase (notes with 20 ms onsets,
    the loudest held) loses at least that share of the static gain reduction at its loudest 5 ms
    detector level from its sample peak."""
    from bridge.render.dynamics import StreamingCompressor, reaper_comp, static_gain_reduction_db
    from bridge.suggest.objective import COMP_PEAK_SHARE
    t = np.arange(3 * FS) / FS
    levels = np.repeat([0.05, 0.2, 0.5, 0.12], 3 * FS // 4)
    onset = np.minimum(1.0, (t % 0.75) / 0.02)
    x = (levels * onset * np.sin(2 * np.pi * 220 * t))[:, None].repeat(2, axis=1)
    comp = reaper_comp(threshold_db=-30.0, ratio=4.0, attack_ms=attack_ms, release_ms=100.0)
    y = StreamingCompressor(comp, FS, 2).process(x)
    loudest = 10 * np.log10(np.convolve(x[:, 0] ** 2, np.ones(240) / 240, "valid").max())
    static = float(static_gain_reduction_db(np.array([loudest]), comp.threshold_db, comp.ratio)[0])
    taken = 20 * np.log10(np.abs(x).max() / np.abs(y).max())
    assert taken >= COMP_PEAK_SHARE * static, (taken, static)
