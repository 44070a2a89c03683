"""The renderer's DSP against known answers: ReaEQ bands, the compressor, fader, envelope, width, pan, polarity.

Signals are generated here; every expected figure comes from the definition of the semantics being
modelled (docs/render.md), never from a previous run.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from bridge.daw import mapping
from bridge.render.dynamics import CompSettings, StreamingCompressor, _release_stage, one_pole_coefficient, reaper_comp
from bridge.render.envelope import VolumeEnvelope
from bridge.render.eq import EqBand, StreamingEq, biquad, reaper_band, response_db
from bridge.render.track import TrackChain, track_settings

FS = 48000


def db(x: float) -> float:
    return 20.0 * math.log10(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def sine(freq_hz: float, seconds: float, amplitude: float = 0.5, fs: int = FS) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def eq_gain_db(band: EqBand, freq_hz: float, seconds: float = 1.0) -> float:
    """Steady-state gain of a band on a sine, measured through the streaming filter (second half)."""
    x = sine(freq_hz, seconds)
    eq = StreamingEq([band], FS, 1)
    y = np.concatenate([eq.process(b) for b in np.array_split(x[:, None], 7)])
    half = len(x) // 2
    return db(rms(y[half:, 0]) / rms(x[half:]))


def plan_track(*changes, automation=(), status="ai", name="T") -> dict:
    out = []
    for c in changes:
        target, param, value, *extra = c
        entry = {"target": target, "param": param, "value": value, "unit": "", "reason": "test", "suggestion": "x"}
        if extra:
            entry["channel"] = extra[0]
        out.append(entry)
    return {"name": name, "status": status, "changes": out,
            "automation": [{"param": "volume_db", "points": [list(p) for p in automation]}] if automation else []}


def correlated_noise(seconds: float = 2.0, side: float = 0.4, seed: int = 7) -> np.ndarray:
    """L = n + side*u, R = n - side*u: mid n, side side*u (independent), so side/mid energy is side^2."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    common, diff = rng.standard_normal(n) * 0.1, rng.standard_normal(n) * 0.1
    return np.stack([common + side * diff, common - side * diff], axis=1)


def mid_side_energy(x: np.ndarray) -> tuple[float, float]:
    mid, side = 0.5 * (x[:, 0] + x[:, 1]), 0.5 * (x[:, 0] - x[:, 1])
    return float(np.mean(mid ** 2)), float(np.mean(side ** 2))


def correlation(x: np.ndarray) -> float:
    return float(np.sum(x[:, 0] * x[:, 1]) / math.sqrt(np.sum(x[:, 0] ** 2) * np.sum(x[:, 1] ** 2)))


# ------------------------------------------------------------------------------------------- EQ

def test_peak_band_has_its_gain_at_the_centre_and_the_plan_q_becomes_reapers_bandwidth():
    band = reaper_band("peak", 1000.0, -6.0, 1.41)
    assert band.bandwidth_oct == pytest.approx(mapping.q_to_bandwidth_octaves(1.41), abs=1e-12)
    assert band.bandwidth_oct == pytest.approx(1.0, abs=0.01)  # Q 1.41 is one octave
    assert band.q == pytest.approx(1.41, abs=1e-9)  # the bandwidth stands for the plan's Q
    assert eq_gain_db(band, 1000.0) == pytest.approx(-6.0, abs=0.02)
    # RBJ's bandwidth is between the half-gain (-3 dB) frequencies, one octave apart here.
    edges = 1000.0 * 2.0 ** (np.array([-0.5, 0.5]) * band.bandwidth_oct)
    assert response_db(band, FS, edges) == pytest.approx([-3.0, -3.0], abs=0.1)
    far = response_db(band, FS, np.array([50.0, 15000.0]))
    assert np.all(np.abs(far) < 0.3)


def test_reaeq_clamps_apply_as_the_targets_write_them():
    assert reaper_band("peak", 1000.0, 20.0, 1.0).gain_db == pytest.approx(12.0)  # ReaEQ gain tops at +12 dB
    assert reaper_band("peak", 5.0, -3.0, 1.0).freq_hz == pytest.approx(20.0)
    assert reaper_band("peak", 1000.0, -3.0, 0.05).bandwidth_oct == pytest.approx(4.0)  # BW slider spans 0..4 oct
    assert reaper_band("highpass", 100.0, -9.0, 0.71).gain_db == 0.0  # pass filters ignore gain


def test_highpass_is_minus_three_db_at_its_corner_and_falls_12_db_per_octave():
    band = reaper_band("highpass", 100.0, 0.0, 0.71)
    assert eq_gain_db(band, 100.0) == pytest.approx(db(0.71), abs=0.02)  # |H(f0)| = Q: -2.97 dB
    low, lower = eq_gain_db(band, 25.0, 4.0), eq_gain_db(band, 12.5, 4.0)
    assert low - lower == pytest.approx(12.0, abs=0.3)
    assert eq_gain_db(band, 2000.0) == pytest.approx(0.0, abs=0.02)


def test_lowpass_mirrors_the_highpass():
    band = reaper_band("lowpass", 2000.0, 0.0, 0.71)
    assert response_db(band, FS, np.array([2000.0]))[0] == pytest.approx(db(0.71), abs=0.02)
    assert response_db(band, FS, np.array([100.0]))[0] == pytest.approx(0.0, abs=0.02)


@pytest.mark.parametrize("kind,freq,gain,plateau_hz,flat_hz", [
    ("lowshelf", 200.0, 6.0, 20.0, 10000.0),
    ("highshelf", 5000.0, -4.0, 20000.0, 100.0),
])
def test_shelf_reaches_its_gain_and_is_half_way_at_its_frequency(kind, freq, gain, plateau_hz, flat_hz):
    band = reaper_band(kind, freq, gain, 0.71)
    plateau, flat, middle = response_db(band, FS, np.array([plateau_hz, flat_hz, freq]))
    assert plateau == pytest.approx(gain, abs=0.1)
    assert flat == pytest.approx(0.0, abs=0.1)
    assert middle == pytest.approx(gain / 2, abs=0.05)  # RBJ's shelf frequency is the half-gain point
    if kind == "lowshelf":
        assert eq_gain_db(band, plateau_hz, 3.0) == pytest.approx(gain, abs=0.1)


def test_notch_and_bandpass():
    notch = reaper_band("notch", 1000.0, 0.0, 2.0)
    assert response_db(notch, FS, np.array([1000.0]))[0] < -60
    bandpass = reaper_band("bandpass", 1000.0, 0.0, 2.0)
    centre, away = response_db(bandpass, FS, np.array([1000.0, 100.0]))
    assert centre == pytest.approx(0.0, abs=0.01) and away < -20


def test_a_band_at_or_above_nyquist_is_designed_just_below_it():
    coefficients = biquad(EqBand("peak", 24000.0, -6.0, 1.0), 44100)
    assert np.all(np.isfinite(coefficients))


# ------------------------------------------------------------------------------------ compressor

def compress(x: np.ndarray, settings: CompSettings, block: int = 4800) -> np.ndarray:
    comp = StreamingCompressor(settings, FS, x.shape[1])
    return np.concatenate([comp.process(x[i:i + block]) for i in range(0, len(x), block)])


@pytest.mark.parametrize("level_db", [-40.0, -25.0, -20.0, -14.0, -6.0])
def test_static_curve_at_threshold_and_ratio(level_db):
    """Steady 1 kHz sines (the 5 ms RMS window holds five whole periods: no ripple)."""
    threshold, ratio = -20.0, 4.0
    amplitude = 10 ** (level_db / 20) * math.sqrt(2)  # RMS level_db
    x = np.repeat(sine(1000.0, 1.0, amplitude)[:, None], 2, axis=1)
    y = compress(x, CompSettings(threshold, ratio, attack_ms=2.0, release_ms=50.0))
    out_db = db(rms(y[FS // 2:, 0]))
    expected = level_db if level_db <= threshold else threshold + (level_db - threshold) / ratio
    assert out_db == pytest.approx(expected, abs=0.02)


def test_soft_knee_is_between_hard_knee_and_no_compression_at_the_threshold():
    x = sine(1000.0, 1.0, 10 ** (-20 / 20) * math.sqrt(2))[:, None]
    y = compress(x, CompSettings(-20.0, 4.0, 2.0, 50.0, knee_db=10.0))
    # At the threshold the quadratic knee reduces by (1 - 1/R) * (W/2)^2 / (2W) = 0.9375 dB.
    assert db(rms(y[FS // 2:, 0])) == pytest.approx(-20.0 - 0.9375, abs=0.02)


def test_release_stage_is_exact_against_a_sample_by_sample_loop_in_any_blocks():
    rng = np.random.default_rng(3)
    target = np.maximum(0.0, np.cumsum(rng.standard_normal(6000)) * 0.2)
    target[2000:2600] = 0.0
    for release_ms in (0.5, 50.0):
        a = one_pole_coefficient(release_ms, FS)
        expected, r = np.empty_like(target), 0.0
        for i, x in enumerate(target):
            r = max(x, a * r + (1 - a) * x)
            expected[i] = r
        pieces, d, x_prev = [], 0.0, 0.0
        for start in range(0, len(target), 777):
            piece, d = _release_stage(target[start:start + 777], a, d, x_prev)
            x_prev = target[start:start + 777][-1]
            pieces.append(piece)
        np.testing.assert_allclose(np.concatenate(pieces), expected, atol=1e-10)


def gain_reduction_of(x: np.ndarray, settings: CompSettings) -> np.ndarray:
    comp = StreamingCompressor(settings, FS, 1)
    return np.concatenate([comp.gain_reduction_db(x[i:i + 1000]) for i in range(0, len(x), 1000)])


def test_attack_and_release_time_constants():
    """A DC step through a peak detector: no ripple, so the smoothing is seen alone."""
    attack_ms, release_ms = 10.0, 200.0
    settings = CompSettings(-20.0, 4.0, attack_ms, release_ms, rms_ms=0.0)
    quiet, loud = 10 ** (-40 / 20), 10 ** (-8 / 20)
    x = np.concatenate([np.full(FS // 2, quiet), np.full(FS, loud), np.full(FS * 2, quiet)])[:, None]
    gr = gain_reduction_of(x, settings)
    full = (-8.0 + 20.0) * (1 - 1 / 4)  # 9 dB
    rise = gr[FS // 2:FS // 2 + FS]
    # Rise: exactly a one-pole with the attack time constant.
    np.testing.assert_allclose(rise, full * (1 - one_pole_coefficient(attack_ms, FS) ** (np.arange(len(rise)) + 1)),
                               atol=1e-9)
    assert rise[int(attack_ms / 1000 * FS) - 1] == pytest.approx(full * (1 - math.exp(-1)), rel=0.01)
    # Fall: the release one-pole smoothed by the attack one-pole (docs/render.md).
    fall = gr[FS // 2 + FS:]
    tf = np.arange(len(fall)) / FS
    ta, tr_ = attack_ms / 1000, release_ms / 1000
    expected = full * (tr_ * np.exp(-tf / tr_) - ta * np.exp(-tf / ta)) / (tr_ - ta)
    np.testing.assert_allclose(fall, expected, atol=0.02)
    crossing = np.argmax(fall < full * math.exp(-1)) / FS
    assert crossing == pytest.approx(tr_ + ta, rel=0.02)


def test_makeup_goes_through_wet_and_is_clamped_at_plus_6_db():
    x = sine(1000.0, 0.5, 0.01)[:, None]  # far below the threshold
    y = compress(x, reaper_comp(threshold_db=-10.0, ratio=3.0, attack_ms=5, release_ms=50, makeup_db=3.0))
    assert db(rms(y[FS // 4:, 0]) / rms(x[FS // 4:, 0])) == pytest.approx(3.0, abs=0.01)
    assert reaper_comp(makeup_db=9.0).makeup_db == pytest.approx(6.0)
    assert reaper_comp(threshold_db=10.0).threshold_db == pytest.approx(6.0)
    assert reaper_comp(ratio=500.0).ratio == pytest.approx(100.0)
    assert reaper_comp(attack_ms=900.0).attack_ms == pytest.approx(500.0)


def test_the_detector_is_stereo_linked():
    left = sine(1000.0, 1.0, 10 ** (-6 / 20) * math.sqrt(2))
    x = np.stack([left, np.zeros_like(left)], axis=1)
    y = compress(x, CompSettings(-20.0, 4.0, 2.0, 50.0))
    # The detector hears the mean power of both channels: -6 dB on one channel reads -9.03 dB.
    level = -6.0 + db(math.sqrt(0.5))
    gain = -(level + 20.0) * (1 - 1 / 4)
    assert db(rms(y[FS // 2:, 0]) / rms(left[FS // 2:])) == pytest.approx(gain, abs=0.02)
    assert np.all(y[:, 1] == 0.0)


# ------------------------------------------------------------------------------- track semantics

def play(track: dict, x: np.ndarray, block: int = 4096, **kw) -> np.ndarray:
    chain = TrackChain(track, FS, x.shape[1], **kw)
    out = np.concatenate([chain.process(x[i:i + block]) for i in range(0, len(x), block)])
    assert len(chain.finish()) == 0
    return out


def test_fader_db_is_a_gain():
    x = correlated_noise(0.5)
    y = play(plan_track(("track", "volume_db", -7.5)), x)
    np.testing.assert_allclose(y, x * 10 ** (-7.5 / 20), rtol=1e-12)


def test_width_scales_the_side_and_keeps_the_mid():
    x = correlated_noise()
    mid, side = mid_side_energy(x)
    assert side / mid == pytest.approx(0.4 ** 2, rel=0.05)
    for width in (0.5, 0.0, -1.0):
        y = play(plan_track(("track", "width", width)), x)
        m2, s2 = mid_side_energy(y)
        assert m2 == pytest.approx(mid, rel=1e-9)
        assert s2 == pytest.approx(side * width ** 2, rel=1e-9, abs=1e-15)
    assert correlation(play(plan_track(("track", "width", 0.0)), x)) == pytest.approx(1.0, abs=1e-12)
    swapped = play(plan_track(("track", "width", -1.0)), x)
    np.testing.assert_allclose(swapped, x[:, ::-1], atol=1e-12)


def test_polarity_per_channel_and_both():
    x = correlated_noise()
    c = correlation(x)
    assert c > 0.5
    right = play(plan_track(("track", "polarity", 1, "right")), x)
    assert correlation(right) == pytest.approx(-c, abs=1e-12)
    np.testing.assert_array_equal(right[:, 0], x[:, 0])
    left = play(plan_track(("track", "polarity", 1, "left")), x)
    np.testing.assert_array_equal(left[:, 0], -x[:, 0])
    both = play(plan_track(("track", "polarity", 1)), x)
    np.testing.assert_array_equal(both, -x)


def test_pan_is_a_balance():
    x = correlated_noise(0.5)
    half_right = play(plan_track(("track", "pan", 0.5)), x)
    np.testing.assert_allclose(half_right[:, 0], 0.5 * x[:, 0], rtol=1e-12)  # -6.02 dB
    np.testing.assert_array_equal(half_right[:, 1], x[:, 1])
    hard_left = play(plan_track(("track", "pan", -1.0)), x)
    assert np.all(hard_left[:, 1] == 0) and np.array_equal(hard_left[:, 0], x[:, 0])


def test_a_mono_stem_plays_on_both_sides_at_unity():
    x = sine(440.0, 0.2)[:, None]
    y = play(plan_track(("track", "volume_db", 0.0), ("track", "width", 0.3)), x)
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    np.testing.assert_array_equal(y[:, 1], x[:, 0])


def test_volume_envelope_ramps_and_holds_and_multiplies_the_fader():
    points = [(0.5, 0.0), (1.0, 6.0), (2.0, 6.0), (2.5, 0.0)]
    x = np.full((3 * FS, 2), 0.1)
    y = play(plan_track(("track", "volume_db", -2.0), automation=points), x, block=3000)
    gain_db = 20 * np.log10(y[:, 0] / 0.1)
    at = lambda s: gain_db[int(s * FS)]  # noqa: E731
    assert at(0.25) == pytest.approx(-2.0, abs=1e-9)
    assert at(0.75) == pytest.approx(-2.0 + 3.0, abs=1e-3)  # half-way up the ramp, linear in dB (fader scaling)
    assert at(1.5) == pytest.approx(4.0, abs=1e-9)
    assert at(2.25) == pytest.approx(-2.0 + 3.0, abs=1e-3)
    assert at(2.9) == pytest.approx(-2.0, abs=1e-9)
    ya = play(plan_track(automation=points), x, envelope_scaling="amplitude")
    assert ya[int(0.75 * FS), 0] / 0.1 == pytest.approx((1 + 10 ** (6 / 20)) / 2, abs=1e-4)
    env = VolumeEnvelope(list(reversed(points)), FS)
    assert env.gain_db_at(1.25) == pytest.approx(6.0)


def test_fx_order_is_the_reapy_targets_insertion_order():
    from bridge.daw.reconcile import wanted_changes, write_order

    track = plan_track(("track", "polarity", 1, "right"), ("comp", "ratio", 2.0), ("comp", "threshold_db", -20.0),
                       ("eq", "band1_type", "highpass"), ("eq", "band1_freq_hz", 80.0), ("track", "volume_db", 1.0))
    keys = sorted(wanted_changes(track), key=write_order)
    inserted = []
    for key in keys:
        target = key.split(".")[0]
        if target in ("eq", "comp", "polarity") and target not in inserted:
            inserted.append(target)
    assert track_settings(track).fx_order == tuple(inserted) == ("eq", "comp", "polarity")


def test_a_manual_track_gets_nothing_and_unknown_entries_are_listed():
    x = correlated_noise(0.3)
    manual = plan_track(("track", "volume_db", -6.0), ("eq", "band1_type", "peak"), status="manual")
    assert track_settings(manual).manual and track_settings(manual).is_identity
    np.testing.assert_array_equal(play(manual, x), x)
    odd = plan_track(("track", "volume_db", -1.0), ("track", "tilt", 3.0), ("eq", "band7_type", "peak"),
                     ("eq", "band2_type", "bell"), ("eq", "band2_freq_hz", 500.0))
    settings = track_settings(odd)
    assert settings.gain_db == -1.0 and not settings.eq
    assert any("track.tilt" in s for s in settings.ignored)
    assert any("band7" in s for s in settings.ignored)
    assert any("bell" in s for s in settings.ignored)


def test_block_size_does_not_change_the_output():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3 * FS, 2)) * np.linspace(0.02, 0.4, 3 * FS)[:, None]
    track = plan_track(("eq", "band1_type", "highpass"), ("eq", "band1_freq_hz", 90.0), ("eq", "band1_q", 0.71),
                       ("eq", "band2_type", "peak"), ("eq", "band2_freq_hz", 2500.0), ("eq", "band2_gain_db", -4.0),
                       ("eq", "band2_q", 1.4), ("comp", "threshold_db", -24.0), ("comp", "ratio", 3.0),
                       ("comp", "attack_ms", 8.0), ("comp", "release_ms", 120.0), ("comp", "makeup_db", 2.0),
                       ("track", "volume_db", -1.5), ("track", "width", 0.7), ("track", "pan", -0.2),
                       ("track", "polarity", 1, "left"), automation=[(0.9, 0.0), (1.0, 4.0), (2.0, 4.0), (2.1, 0.0)])
    reference = play(track, x, block=48000)
    for block in (4097, 1000, 64):
        np.testing.assert_allclose(play(track, x, block=block), reference, atol=1e-9, rtol=0)


def test_the_pure_render_modules_import_no_edge():
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "bridge" / "render"
    forbidden = ("soundfile", "reapy", "pythonosc", "watchdog", "bridge.stems", "bridge.pipeline", "bridge.watch",
                 "bridge.control", "bridge.daw.reapy", "bridge.daw.osc", "..stems", "..pipeline")
    for name in ("eq.py", "dynamics.py", "envelope.py", "track.py", "__init__.py"):
        tree = ast.parse((folder / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert not module.startswith(forbidden) and not module.startswith("bridge.stems"), (name, module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith(forbidden) for a in node.names), name
