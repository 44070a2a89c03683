"""The material builder's promises (tools/material), measured with MixBridge's own analysis.

One small session (10 stems, 21 s) and two problem variants are built once into a fresh cache;
every test reads them.  Cold, the module takes about 20 s on one core.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from scipy.fft import next_fast_len

from tools.material import (DrumSpec, PartSpec, Problem, Recipe, build_session, missing_tools, render_drum_stem,
                            render_labelled_part)
from tools.material.drumkits import DRUMKIT_DIR
from tools.material.midi import Control, Note, Track, read_smf, write_smf
from tools.material.problems import KINDS
from tools.material.voice import espeak_available

_MISSING = missing_tools() + ([] if espeak_available() else ["espeak-ng (apt: espeak-ng)"]) + (
    [] if (DRUMKIT_DIR / "ColomboAcousticDrumkit" / "drumkit.xml").exists() else [f"{DRUMKIT_DIR} (apt: hydrogen-drumkits)"])
needs_tools = pytest.mark.skipif(bool(_MISSING), reason="material builder needs: " + "; ".join(_MISSING))

FORM = (("intro", 1), ("verse", 2), ("chorus", 2), ("verse", 2), ("chorus", 2), ("bridge", 1), ("outro", 1))
SMALL = Recipe(seed=7, title="test", tempo_bpm=140.0, key="A minor", form=FORM,
               parts=("bass", "keys", "pad", "guitar", "lead"),
               drum_stems=("kick_in", "snare_top", "snare_bottom", "overheads", "room"))
VARIANT_A = ("pad_rumble", "lead_chorus_dip", "inverted_channel", "clipped", "level_hot", "bad_names")
VARIANT_B = ("dc_offset", "over_dynamic_lead", "hard_pan", "level_quiet", "clipped_full_scale")
MOVE_TYPES = {"fader", "volume_automation", "eq", "highpass", "polarity", "pan", "compressor", "rerender", "role", "width"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("material-cache")
        mp.setenv("MIXBRIDGE_MATERIAL_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def built(cache):
    from bridge.pipeline import analyze_session

    a = build_session(SMALL.with_problems(*VARIANT_A))
    b = build_session(SMALL.with_problems(*VARIANT_B))
    clean = build_session(SMALL)
    analyses = {}
    for key, s in (("clean", clean), ("a", a), ("b", b)):
        result = analyze_session([s.path], markers=s.markers(), jobs=1)
        analyses[key] = {r.name: r.analysis for r in result.stems}, result
    return clean, a, b, analyses


def _target(session, kind):
    return session.problem(kind)["stems"][0]


# ------------------------------------------------------------------------------------------ MIDI


def test_midi_round_trip(tmp_path):
    notes = (Note(0.0, 0.5, 60, 100), Note(0.5, 0.25, 64, 90), Note(0.5, 1.0, 67, 80), Note(2.0, 0.1, 60, 1))
    tracks = [Track(0, 33, notes, name="Bass", volume=90, pan=30, reverb_send=10, controls=(Control(1.0, 11, 64),)),
              Track(9, 0, (Note(0.25, 0.1, 36, 127),), bank=128)]
    path = write_smf(tmp_path / "t.mid", tracks, tempo_bpm=97.0, end_s=3.0)
    parsed = read_smf(path)
    assert parsed.format == 1 and len(parsed.tracks) == 3
    first = parsed.tracks[1]
    assert first.name == "Bass"
    got = [(round(parsed.tick_seconds(on), 3), round(parsed.tick_seconds(off) - parsed.tick_seconds(on), 3), p, v)
           for on, off, ch, p, v in first.notes]
    assert got == [(n.start_s, n.length_s, n.pitch, n.velocity) for n in notes]
    assert (0, 0, 33) in first.programs
    assert {(cc, val) for _, ch, cc, val in first.controls} >= {(7, 90), (10, 30), (91, 10), (93, 0), (11, 64)}
    assert parsed.tracks[2].notes[0][2:] == (9, 36, 127)
    assert parsed.tick_seconds(parsed.tracks[1].end_tick) == pytest.approx(3.0, abs=1e-3)


@needs_tools
def test_fluidsynth_plays_the_notes_where_the_file_puts_them():
    from tools.material.soundfonts import SOUNDFONTS, SynthSettings, render_tracks

    times = (0.5, 1.25, 2.0)
    track = Track(0, 0, tuple(Note(t, 0.2, 72, 110) for t in times))
    audio = render_tracks(SOUNDFONTS["FluidR3_GM"], [track], 120.0, 3.0, SynthSettings())
    assert audio.shape == (144000, 2)
    level = np.abs(audio).max(axis=1)
    for t in times:
        window = level[int((t - 0.1) * 48000): int((t + 0.1) * 48000)]
        onset = np.argmax(window > 0.05 * window.max()) / 48000 + t - 0.1
        # fluidsynth starts events on its 64-sample blocks: up to 1.3 ms late, plus the attack to 5 %.
        assert t - 0.0005 <= onset <= t + 0.003


# ------------------------------------------------------------------------------------------ files


@needs_tools
def test_stems_exist_with_the_right_rate_depth_length_and_layout(built):
    clean, a, b, _ = built
    for session in (clean, a, b):
        frames = session.frames
        assert frames == round((11 * 240 / 140 + 2.0) * 48000)
        assert len(session.stems) == 10
        for st in session.stems:
            info = sf.info(str(session.path / st.file))
            assert (info.samplerate, info.subtype, info.frames, info.channels) == (48000, "PCM_24", frames, st.channels)
    layout = {st.id: st.channels for st in clean.stems}
    assert layout == {"kick_in": 1, "snare_top": 1, "snare_bottom": 1, "overheads": 2, "room": 2, "bass": 1,
                      "keys": 2, "pad": 2, "guitar": 2, "lead": 1}
    assert clean.duration_s == pytest.approx(11 * 240 / 140 + 2.0, abs=1e-3)


@needs_tools
def test_truth_names_roles_groups_and_sections(built):
    from bridge.markers import read_markers
    from bridge.suggest.roles import ROLES

    clean, a, _, _ = built
    truth = json.loads(clean.truth_path.read_text())
    assert truth["schema"] == "mixbridge-material-truth/1" and truth["variant"] == "clean" and truth["problems"] == []
    assert all(st.role in ROLES for st in clean.stems)
    assert {st.group for st in clean.stems if st.id in ("kick_in", "snare_top", "snare_bottom", "overheads", "room")} == {"drums"}
    assert [s.name for s in clean.sections] == ["Intro", "Verse 1", "Chorus 1", "Verse 2", "Chorus 2", "Bridge", "Outro"]
    for path in (clean.regions_csv, clean.markers_json):
        marks = read_markers(path)
        assert [m[0] for m in marks] == [s.name for s in clean.sections]
        for (name, start, end), s in zip(marks, clean.sections):
            assert start == pytest.approx(s.start_s, abs=1e-3) and end == pytest.approx(s.end_s, abs=1e-3)
    assert clean.stem("pad").lowest_note_hz >= 125.0
    assert clean.stem("lead").plays_in == ("Verse 1", "Chorus 1", "Verse 2", "Chorus 2", "Bridge")
    renamed = a.problem("bad_names")["fix"]
    assert {f["stem"] for f in renamed} <= {st.name for st in a.stems}
    assert all(f["name_suggests"] == "neutral" for f in renamed)


@needs_tools
def test_every_planted_problem_has_a_ground_truth(built):
    _, a, b, _ = built
    planted = {p["kind"]: p for p in a.problems + b.problems}
    assert set(planted) == set(VARIANT_A) | set(VARIANT_B)
    assert set(planted) | {"masking_boost", "kick_bass_buildup"} == set(KINDS)
    for session in (a, b):
        names = {st.name for st in session.stems}
        for p in session.problems:
            assert p["fix"], p["kind"]
            for move in p["fix"] + p["avoid"]:
                assert move["type"] in MOVE_TYPES
                assert move.get("stem", next(iter(names))) in names


# ------------------------------------------------------------------------------------------ the clean twin


@needs_tools
def test_clean_twin_sits_at_its_intended_balance_without_faults(built):
    clean, _, _, analyses = built
    measured, _ = analyses["clean"]
    playback = {}
    for st in clean.stems:
        an = measured[st.name]
        assert an.faults.clip.runs == 0, st.name
        assert an.levels.sample_peak_dbfs <= -1.0, st.name
        assert an.faults.dc_offset_dbfs < -60.0, st.name
        if st.balance_basis == "integrated":
            assert an.loudness.integrated_lufs == pytest.approx(st.intended_lufs, abs=0.3), st.name
        playback[st.id] = an.loudness.integrated_lufs + (3.01 if st.channels == 1 else 0.0)
        if st.channels == 2 and st.group != "drums":
            # No phase fault in a clean pitched part (a stereo-sampled string section can be near 0 overall).
            assert an.stereo.correlation > 0.0 and an.stereo.correlation_low > 0.3, st.name
    lead = playback.pop("lead")
    assert lead - max(playback.values()) >= 3.5  # lead on top
    assert playback["bass"] > playback["pad"] + 5 and playback["kick_in"] > playback["room"] + 5


@needs_tools
def test_untouched_stems_are_byte_identical_to_the_twin(built):
    clean, a, _, _ = built
    for st in a.stems:
        if not st.problems or st.problems == ("bad_names",):
            twin = clean.stem(st.id)
            assert (a.path / st.file).read_bytes() == (clean.path / twin.file).read_bytes(), st.name
    assert a.clean_twin == clean.path


@needs_tools
def test_bleed_correlates_the_drum_mics_with_physical_delays(built):
    clean, _, _, _ = built
    def load(stem_id):
        data, _ = sf.read(str(clean.path / clean.stem(stem_id).file), dtype="float64", always_2d=True)
        return data

    def xcorr(x, y, max_lag):
        n = next_fast_len(2 * len(x))
        full = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)
        lags = np.concatenate([full[-max_lag:], full[:max_lag + 1]]) / np.sqrt((x * x).sum() * (y * y).sum())
        k = int(np.argmax(np.abs(lags)))
        return lags[k], k - max_lag  # (value, lag of y behind x... as samples, negative when y lags)

    top, bottom, oh, kick = load("snare_top")[:, 0], load("snare_bottom")[:, 0], load("overheads"), load("kick_in")[:, 0]
    value, lag = xcorr(top, bottom, 24)
    assert value < -0.3  # within 0.5 ms (the mics' distance difference): the bottom mic is inverted, as recorded
    value, lag = xcorr(top, oh[:, 0], 480)
    assert abs(value) > 0.15 and -300 < lag < -60  # the overhead hears the snare 1.5 - 6 ms after the close mic
    value, _ = xcorr(kick, top, 480)
    assert abs(value) > 0.02  # bleed: every close mic carries the other pieces
    corr = np.corrcoef(oh[:, 0], oh[:, 1])[0, 1]
    assert 0.1 < corr < 0.95  # a spaced pair: genuinely stereo, not dual mono


# ------------------------------------------------------------------------------------------ planted problems


@needs_tools
def test_inverted_channel_reads_negative(built):
    _, a, _, analyses = built
    name = _target(a, "inverted_channel")
    clean_name = a.problem("inverted_channel")["stems"][0]
    assert analyses["a"][0][name].stereo.correlation < -0.2
    assert analyses["a"][0][name].stereo.correlation_low < -0.2
    assert a.problem("inverted_channel")["measured"]["correlation_before"] > 0.2
    assert clean_name == name


@needs_tools
def test_pad_rumble_shows_below_40_hz_and_the_pad_body_above_100(built):
    from bridge.analyze.spectrum import BAND_CENTERS_HZ

    clean, a, _, analyses = built
    name = _target(a, "pad_rumble")
    clean_pad = analyses["clean"][0][clean.stem("pad").name]
    planted = analyses["a"][0][name]
    low = [i for i, f in enumerate(BAND_CENTERS_HZ) if f < 40]
    rise = [planted.spectrum.band_db[i] - clean_pad.spectrum.band_db[i] for i in low]
    assert min(rise) > 20.0
    assert planted.spectrum.rumble_db > clean_pad.spectrum.rumble_db + 20.0
    assert clean_pad.spectrum.useful_low_hz >= 100.0
    corner = a.problem("pad_rumble")["fix"][0]
    assert 40.0 < corner["corner_range_hz"][0] < corner["corner_hz"] < corner["corner_range_hz"][1] < 130.0


@needs_tools
def test_lead_chorus_dip_shows_in_section_loudness(built):
    clean, a, _, analyses = built
    lead_clean, lead_planted = clean.stem("lead").name, _target(a, "lead_chorus_dip")
    before = {s.section.name: dict(s.stem_lufs)[lead_clean] for s in analyses["clean"][1].mix.sections}
    after = {s.section.name: dict(s.stem_lufs)[lead_planted] for s in analyses["a"][1].mix.sections}
    for name in ("Chorus 1", "Chorus 2"):
        assert after[name] - before[name] == pytest.approx(-8.0, abs=0.7)
    for name in ("Verse 1", "Verse 2", "Bridge"):
        assert after[name] == pytest.approx(before[name], abs=0.3)


@needs_tools
def test_clipped_stems_have_flat_top_runs(built):
    clean, a, b, analyses = built
    for session, key, kind in ((a, "a", "clipped"), (b, "b", "clipped_full_scale")):
        name = _target(session, kind)
        stem_id = next(st.id for st in session.stems if st.name == name)
        assert analyses[key][0][name].faults.clip.runs > 20
        assert analyses["clean"][0][clean.stem(stem_id).name].faults.clip.runs == 0
    turned_down = a.problem("clipped")["measured"]
    assert turned_down["integrated_lufs_after"] == pytest.approx(turned_down["integrated_lufs_before"], abs=0.3)


@needs_tools
def test_levels_dc_pan_and_dynamics_problems_measure(built):
    clean, a, b, analyses = built
    for session, key, kind, sign in ((a, "a", "level_hot", 1), (b, "b", "level_quiet", -1)):
        name = _target(session, kind)
        stem_id = next(st.id for st in session.stems if st.name == name)
        change = (analyses[key][0][name].loudness.integrated_lufs
                  - analyses["clean"][0][clean.stem(stem_id).name].loudness.integrated_lufs)
        assert 7.5 <= sign * change <= 10.5
        assert session.problem(kind)["fix"][0]["gain_db"] == pytest.approx(-change, abs=0.1)
    assert analyses["b"][0][_target(b, "dc_offset")].faults.dc_offset_dbfs == pytest.approx(-30.0, abs=0.5)
    assert analyses["b"][0][_target(b, "hard_pan")].stereo.pan == pytest.approx(-1.0, abs=1e-3)
    lead = _target(b, "over_dynamic_lead")
    assert analyses["b"][0][lead].loudness.lra_lu > analyses["clean"][0][clean.stem("lead").name].loudness.lra_lu + 4.0


# ------------------------------------------------------------------------------------------ determinism and cache


@needs_tools
def test_same_recipe_same_bytes(built, tmp_path, monkeypatch):
    clean, a, _, _ = built
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in a.path.iterdir()}
    again = build_session(SMALL.with_problems(*VARIANT_A), rebuild=True)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in again.path.iterdir()} == digest
    # A tiny recipe in two empty caches: fluidsynth, espeak-ng and the kit simulation are deterministic too.
    # It also delivers the overheads as two mono halves and plays four-on-the-floor in the verse.
    tiny = Recipe(seed=3, title="tiny", tempo_bpm=150.0, form=(("verse", 1), ("chorus", 1)), parts=("keys", "lead"),
                  drum_stems=("kick_in", "overheads"), split=("overheads",), drum_styles=(("verse", "four"),))
    hashes = []
    for name in ("one", "two"):
        monkeypatch.setenv("MIXBRIDGE_MATERIAL_CACHE", str(tmp_path / name))
        s = build_session(tiny)
        hashes.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in s.path.iterdir()})
    assert hashes[0] == hashes[1] and len(hashes[0]) == 5 + 4
    halves = [s.stem("overheads_l"), s.stem("overheads_r")]
    assert [h.channels for h in halves] == [1, 1] and {h.group for h in halves} == {"drums"}
    assert [m["pan"] for m in s.expected_moves if m["type"] == "pan"] == [-1.0, 1.0]


@needs_tools
def test_cached_session_is_served_without_rebuilding(built):
    clean, _, _, _ = built
    stamp = clean.truth_path.stat().st_mtime_ns
    again = build_session(SMALL)
    assert again.path == clean.path and again.truth_path.stat().st_mtime_ns == stamp


def test_recipe_round_trips_and_refuses_unknown_fields():
    recipe = SMALL.with_problems("level_hot", Problem("clipped", stem="bass", amount_db=4.0))
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_dict({"seed": 1, "tempo": 120})


# ------------------------------------------------------------------------------------------ labelled stems (issue 14)


@needs_tools
def test_labelled_part_and_drum_stem(cache):
    part = render_labelled_part(PartSpec(program=33, soundfont="sf_GMbank", length_s=3.0, tempo_bpm=110.0, channels=1,
                                         loudness_lufs=-22.0))
    assert (part.role, part.label, part.audio.shape) == ("bass", "bass", (144000, 1))
    from tools.material.dsp import integrated_lufs
    assert integrated_lufs(part.audio, 48000) == pytest.approx(-22.0, abs=0.2)
    assert 28 <= part.meta["lowest_note"] and part.meta["highest_note"] <= 52
    drum = render_drum_stem(DrumSpec(kit="Millo_MultiLayered2", stem="snare_bottom", length_s=3.0))
    assert (drum.role, drum.label, drum.audio.shape) == ("snare", "snare", (144000, 1))
    toms = render_drum_stem(DrumSpec(kit="The Black Pearl 1.0", stem="toms", length_s=3.0, fills=False))
    assert toms.label == "toms" and toms.meta["style"] == "tom_groove" and np.abs(toms.audio).max() > 0
