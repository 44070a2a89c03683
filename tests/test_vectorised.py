"""The whole-block clip-run and true-peak code gives exactly the numbers of the per-channel code it
replaced (tests/reference_impl.py), on random and adversarial signals; the K-weighting kernel equals a
float64 ``sosfilt``."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.analyze import loudness as lu
from bridge.analyze.features import FeatureExtractor
from bridge.analyze.levels import ClipDetector
from bridge.analyze.truepeak import TruePeakMeter

from .reference_impl import OldClipDetector

FS = 48000


def _runs_signal(draw, channels: int, frames: int) -> np.ndarray:
    """Adversarial material for run detection: flat runs at full scale, near the floor, at the
    stem's own peak, across block edges, in one channel only, and plain noise between them."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = (rng.standard_normal((frames, channels)) * draw(st.sampled_from([0.001, 0.05, 0.5]))).astype(np.float32)
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.integers(0, frames - 1))
        length = draw(st.integers(1, 400))
        channel = draw(st.integers(0, channels))  # == channels: every channel
        level = np.float32(draw(st.sampled_from([1.0, -1.0, 0.999, 0.0101, 0.00999, 0.5, -0.5])))
        cols = slice(None) if channel == channels else slice(channel, channel + 1)
        x[start:start + length, cols] = level
    return np.clip(x, -1.0, 1.0)


def _blocks(draw, frames: int, shortest: int = 1) -> list[int]:
    cuts = sorted(set(draw(st.lists(st.integers(1, frames - 1), max_size=6))))
    edges = [0] + cuts + [frames]
    sizes = [b - a for a, b in zip(edges, edges[1:])]
    merged: list[int] = []
    for size in sizes:  # blocks shorter than ``shortest`` join the one before
        if merged and (size < shortest or merged[-1] < shortest):
            merged[-1] += size
        else:
            merged.append(size)
    return merged


@st.composite
def clip_case(draw):
    channels = draw(st.integers(1, 3))
    frames = draw(st.integers(1, 6000))
    return _runs_signal(draw, channels, frames), _blocks(draw, frames) if frames > 1 else [frames]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clip_case())
def test_clip_runs_equal_the_per_channel_code(case):
    audio, sizes = case
    new, old = ClipDetector(audio.shape[1]), OldClipDetector(audio.shape[1])
    position = 0
    for size in sizes:
        block = np.ascontiguousarray(audio[position:position + size].T)
        position += size
        magnitudes = np.abs(block)
        peak = float(magnitudes.max())
        new.feed(block, magnitudes, peak)
        old.feed(block, magnitudes, peak)
    sample_peak = float(np.abs(audio).max())
    assert new.result(sample_peak) == old.result(sample_peak)
    assert np.array_equal(new._runs, old._runs) and np.array_equal(new._worst, old._worst)


@st.composite
def peak_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    channels = draw(st.integers(1, 2))
    frames = draw(st.integers(13, 20000))
    kind = draw(st.sampled_from(["noise", "bursts", "nyquist", "silence-then-hot", "pair-after-silence"]))
    t = np.arange(frames)
    if kind == "noise":
        x = rng.standard_normal((frames, channels)) * 0.3
    elif kind == "bursts":
        x = np.zeros((frames, channels))
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, frames - 1))
            x[at:at + draw(st.integers(1, 300))] = rng.uniform(-1, 1, (1, channels))
    elif kind == "nyquist":  # inter-sample peaks: a quarter-rate sine at 45 degrees
        x = np.sin(2 * np.pi * t / 4 + np.pi / 4)[:, None].repeat(channels, axis=1) * 0.9
    elif kind == "silence-then-hot":
        x = np.zeros((frames, channels))
        x[frames // 2:] = rng.standard_normal((frames - frames // 2, channels))
    else:  # two equal samples after silence: their inter-sample peak is 1.245x, anywhere in a row
        x = np.zeros((frames, channels))
        at = draw(st.integers(0, frames - 2))
        x[at:at + 2] = rng.uniform(0.2, 1.0)
    # Blocks of 24 samples and more: the old code raised on a block too short to complete one row
    # of the interpolator (a stem whose last block held under 12 samples); the new one does not.
    return x.astype(np.float32), _blocks(draw, frames, shortest=24)


def _interpolated_peak(audio: np.ndarray) -> float:
    """The true peak with nothing skipped: every phase of the Annex 2 filter over every sample."""
    from bridge.analyze.truepeak import ANNEX2_TAPS

    peak = float(np.abs(audio).max(initial=0.0))
    for channel in audio.T.astype(np.float64):
        for phase in ANNEX2_TAPS.T.astype(np.float64):
            peak = max(peak, float(np.abs(np.convolve(channel, phase)).max(initial=0.0)))
    return peak


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(peak_case())
def test_true_peak_equals_interpolating_everything(case):
    audio, sizes = case
    meter = TruePeakMeter(FS, audio.shape[1])
    position = 0
    for size in sizes:
        block = np.ascontiguousarray(audio[position:position + size].T)
        position += size
        meter.feed(block, float(np.abs(block).max(initial=0.0)))
    assert meter.finish() == pytest.approx(_interpolated_peak(audio), rel=1e-5, abs=0)


@pytest.mark.parametrize("offset", range(12))
def test_an_inter_sample_peak_after_silence_is_found_wherever_it_falls_in_a_row(offset):
    """Two equal samples after silence read 1.245x between them; the output that sees both with the
    central taps belongs to the row before theirs, whose own samples are silent (the pruning once
    missed it: -1.9 dB)."""
    x = np.zeros((1, FS), np.float32)
    at = 1200 * 5 - 11 + offset
    x[0, at:at + 2] = 0.6
    meter = TruePeakMeter(FS, 1)
    meter.feed(x, 0.6)
    assert meter.finish() == pytest.approx(_interpolated_peak(x.T), rel=1e-6)
    assert meter.peak > 0.74


def _reference_energies(x: np.ndarray, rate: int) -> np.ndarray:
    """Sub-hop mean squares from a float64 ``sosfilt``: the filter the kernel must reproduce."""
    from scipy import signal

    subhop = rate // 100
    y = signal.sosfilt(lu.k_weighting_sos(rate), x.astype(np.float64), axis=0)
    whole = len(y) // subhop * subhop
    return (y[:whole] ** 2).reshape(-1, subhop, x.shape[1]).mean(axis=1)


@pytest.mark.parametrize("block", [441, 48000, 100003])
def test_the_k_weighting_kernel_equals_a_float64_sosfilt(block):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((12 * FS, 2)) * 0.1).astype(np.float32)
    x[3 * FS:7 * FS] = 0.0  # silence: the state decays towards subnormals
    x[:, 1] *= 0.25
    x[8 * FS:10 * FS, 0] += 0.5 * np.sin(2 * np.pi * 20 * np.arange(2 * FS) / FS).astype(np.float32)  # sub-bass
    x[10 * FS:, 0] *= 1e-4  # -80 dB: quiet passages keep their precision
    meter = lu.KWeightedEnergy(FS, 2)
    for start in range(0, len(x), block):
        meter.feed(np.ascontiguousarray(x[start:start + block].T))
    got, ref = meter.result(), _reference_energies(x, FS)
    assert got.shape == ref.shape
    sounding = ref > 1e-12
    assert np.abs(10 * np.log10(got[sounding] / ref[sounding])).max() < 1e-4  # dB
    assert np.all(got[~sounding] < 1e-11)
    w = lu.channel_weights(2)
    assert lu.integrated_lufs(lu.gating_blocks(got), w) == pytest.approx(
        lu.integrated_lufs(lu.gating_blocks(ref), w), abs=1e-5)


@pytest.mark.parametrize("rate", [44100, 96000, 8000])
def test_the_k_weighting_kernel_measures_the_last_samples_at_other_rates(rate):
    """A stream that ends inside a state block still gets its last whole sub-hop."""
    rng = np.random.default_rng(rate)
    frames = 3 * rate + rate // 100 * 7 + 5  # not a whole number of state blocks
    x = (rng.standard_normal((frames, 1)) * 0.3).astype(np.float32)
    meter = lu.KWeightedEnergy(rate, 1)
    meter.feed(np.ascontiguousarray(x.T))
    got, ref = meter.result(), _reference_energies(x, rate)
    assert got.shape == ref.shape == (frames // (rate // 100), 1)
    np.testing.assert_allclose(got, ref, rtol=2e-5)


def test_a_block_too_short_for_one_interpolator_row_is_fine():
    meter = TruePeakMeter(FS, 1)
    meter.feed(np.full((1, 1), 0.5, np.float32), 0.5)
    assert meter.finish() >= 0.5


def test_features_are_block_size_independent():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((5 * FS, 2)) * 0.2).astype(np.float32)
    x[FS:FS + 500] = 1.0  # a clipped run across a block edge
    results = []
    for block in (FS, 4801, 777):
        ex = FeatureExtractor(FS, 2)
        for start in range(0, len(x), block):
            ex.feed(x[start:start + block])
        results.append(ex.finish())
    for other in results[1:]:
        assert other.clip == results[0].clip
        assert other.true_peak == pytest.approx(results[0].true_peak, rel=1e-6)
        np.testing.assert_allclose(other.subhop_power, results[0].subhop_power, rtol=1e-5)


def test_the_two_feature_parts_merge_into_the_whole():
    """The mix is measured in two halves by two workers; joined, they are the one-pass features."""
    from dataclasses import fields

    from bridge.analyze.features import PARTS, merge_parts

    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4 * FS + 123, 2)) * 0.3).astype(np.float32)
    x[FS:FS + 300] = 1.0  # clipping
    x[2 * FS:2 * FS + 7, 1] = 0.9999  # a short flat run at the peak, one channel
    extractors = [FeatureExtractor(FS, 2)] + [FeatureExtractor(FS, 2, part=p) for p in PARTS]
    for start in range(0, len(x), FS):
        for ex in extractors:
            ex.feed(x[start:start + FS])
    whole, loud, spectral = (ex.finish() for ex in extractors)
    merged = merge_parts(loud, spectral)
    for field in fields(whole):
        a, b = getattr(whole, field.name), getattr(merged, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name
    assert whole.clip.runs >= 1 and whole.true_peak > whole.sample_peak * 0.99


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_silent_frames_skip_their_ffts_and_read_zero(channels):
    """Band energies with the frame peaks given (silent frames skipped) equal the plain pass."""
    from bridge.analyze.spectrum import BandEnergy

    hop = FS // 10
    rng = np.random.default_rng(channels)
    x = (rng.standard_normal((channels, 30 * hop)) * 0.2).astype(np.float32)
    x[:, 3 * hop:9 * hop] = 0.0  # silent frames
    x[0, 20 * hop:21 * hop] = 0.0  # silent in one channel only: still sounding
    peaks = np.abs(x).reshape(channels, 30, hop).max(axis=(0, 2))
    a, b = BandEnergy(FS, channels), BandEnergy(FS, channels)
    a.feed(x)
    b.feed(x, peaks)
    ra, rb = a.result(), b.result()
    for key in ra:
        if ra[key] is None:
            assert rb[key] is None
            continue
        np.testing.assert_array_equal(ra[key], rb[key], err_msg=key)
    assert not ra["power"][3:9].any() and ra["power"][10].all()
