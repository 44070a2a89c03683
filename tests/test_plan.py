"""The suggestion engine on sessions with known problems, properties of the plan, and roles."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings, strategies as st

from bridge.cli import main
from bridge.config import RoleConfig, read_roles_file
from bridge.errors import InputFileError
from bridge.pipeline import analyze_session, plan_session
from bridge.suggest.plan import plan_dict, plan_json
from bridge.suggest.roles import infer_role
from bridge.synth import StemSpec, default_session, write_session

DURATION_S = 40.0


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    write_session(folder, default_session(problems=True), duration_s=DURATION_S)
    result = analyze_session([folder], jobs=1)
    return result, plan_session(result)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    write_session(folder, default_session(problems=False), duration_s=DURATION_S)
    result = analyze_session([folder], jobs=1)
    return folder, result, plan_session(result)


def _changes(plan, track, target=None, param=None):
    return [c for c in plan.track(track).changes
            if (target is None or c.target == target) and (param is None or c.param == param)]


def _codes(plan, track):
    return {f.code for f in plan.track(track).findings}


# --- planted problems: each found, with the right move on the right stem ------------------------

def test_stem_9_db_too_hot_is_turned_down(planted):
    _, plan = planted
    assert "too_loud" in _codes(plan, "Keys")
    (volume,) = _changes(plan, "Keys", "track", "volume_db")
    assert -12.0 <= volume.value <= -7.0, volume


def test_kick_and_bass_build_up_is_reported_where_it_peaks_and_never_cut_below_50_hz(planted):
    # The synthetic bass plays its fundamentals right on the kick's (65-98 Hz against 62 Hz): carving
    # either would take its own body (structural, a finding); tests/test_planner_golden.py covers the
    # complementary carve where the two can share the low end.
    _, plan = planted
    found = [f for t in plan.tracks if t.name in ("Kick", "Bass_DI") for f in t.findings
             if f.code == "masking" and {"Kick", "Bass_DI"} <= set(f.evidence.values())]
    assert found, "the kick/bass conflict is reported"
    assert all(44.0 <= f.evidence["band_low_hz"] and f.evidence["band_high_hz"] <= 180.0 for f in found), found
    for t in plan.tracks:
        for c in t.changes:
            if t.name in ("Kick", "Bass_DI") and c.target == "eq" and c.param.endswith("_freq_hz"):
                assert c.value > 50.0, (t.name, c)


def test_rumble_and_dc_on_the_pad_get_a_high_pass(planted):
    _, plan = planted
    assert "low_rumble" in _codes(plan, "Pad_Strings")
    types = {c.param: c.value for c in _changes(plan, "Pad_Strings", "eq")}
    assert types.get("band1_type") == "highpass"
    assert 30.0 <= types["band1_freq_hz"] <= 120.0


def test_inverted_guitar_channel_gets_a_polarity_flip(planted):
    _, plan = planted
    assert "phase" in _codes(plan, "Guitar_Rhythm")
    (flip,) = _changes(plan, "Guitar_Rhythm", "track", "polarity")
    assert flip.value == 1 and flip.extra == {"channel": "right"}


def test_vocal_down_in_the_choruses_gets_automation(planted):
    result, plan = planted
    track = plan.track("Lead_Vocal")
    assert "section_level" in _codes(plan, "Lead_Vocal")
    (env,) = track.automation
    raised = [(t, v) for t, v in env.points if v > 0]
    assert raised and all(5.0 <= v <= 10.0 for _, v in raised), env.points
    chorus_spans = [(s["start_s"], s["end_s"]) for f in track.findings if f.code == "section_level"
                    for s in f.evidence["sections"]]
    assert len(chorus_spans) == 2, "both choruses are corrected"


def test_hard_clipped_synth_is_flagged_without_a_gain_fix(planted):
    _, plan = planted
    finding = next(f for f in plan.track("Synth_Lead").findings if f.code == "clipping")
    assert finding.severity == "problem" and "re-record or re-bounce" in finding.message
    assert not any(c.reason == "clipping" for c in plan.track("Synth_Lead").changes)


def test_silent_stem_gets_a_note_and_no_moves(planted):
    _, plan = planted
    track = plan.track("FX_Riser")
    assert _codes(plan, "FX_Riser") == {"silent"} and not track.changes and track.status == "untouched"


# --- a clean session: no flood -------------------------------------------------------------------

CLEAN_MOVE_BUDGET = 4


def test_clean_session_does_not_flood(clean):
    _, _, plan = clean
    moves = [s for t in plan.tracks for s in t.suggestions if s["has_moves"]]
    print(f"false positives on the clean session: {len(moves)} suggestions with moves: "
          + "; ".join(s["summary"][:80] for s in moves))
    assert len(moves) <= CLEAN_MOVE_BUDGET, [s["summary"] for s in moves]
    for code in ("too_loud", "too_quiet", "phase", "clipping", "silent", "section_level", "low_rumble"):
        assert not any(f.code == code for t in plan.tracks for f in t.findings), code


# --- properties ------------------------------------------------------------------------------------

def test_amount_zero_gives_findings_but_no_changes(planted):
    result, _ = planted
    plan = plan_session(result, amount=0.0)
    assert all(not t.changes and not t.automation for t in plan.tracks)
    assert sum(len(t.findings) for t in plan.tracks) > 5


def test_amount_scales_moves(planted):
    result, full = planted
    half = plan_session(result, amount=0.5)
    a = _changes(full, "Keys", "track", "volume_db")[0].value
    b = _changes(half, "Keys", "track", "volume_db")[0].value
    assert b == pytest.approx(a / 2, abs=0.06)


def test_plan_is_deterministic_byte_for_byte(planted, tmp_path):
    result, plan = planted
    again = plan_session(result)
    assert plan_json(plan) == plan_json(again)
    assert plan.id == again.id and len(plan.id) == 16
    other = plan_session(result, amount=0.7)
    assert other.id != plan.id, "the settings are part of the id"


def test_same_audio_in_another_folder_gives_the_same_plan(clean, tmp_path):
    folder, result, plan = clean
    for path in Path(folder).glob("*.wav"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    again = plan_session(analyze_session([tmp_path], jobs=1))
    assert plan_json(again) == plan_json(plan)


def _session_with_gain(folder: Path, gains_db: dict[str, float]):
    specs = [StemSpec("Lead_Vocal", "vocal", -17.0, stereo=False, seed=8),
             StemSpec("Keys", "keys", -21.0, pan=0.35, seed=7),
             StemSpec("Bass_DI", "bass", -19.0, seed=4),
             StemSpec("Kick", "kick", -18.0, seed=1)]
    write_session(folder, specs, duration_s=12.0)
    for name, g in gains_db.items():
        path = folder / f"{name}.wav"
        audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
        sf.write(str(path), audio * 10 ** (g / 20), rate, subtype="FLOAT")
    return plan_session(analyze_session([folder], jobs=1))


def _ideal(plan, name):
    finding = next((f for f in plan.track(name).findings if f.code in ("too_loud", "too_quiet")), None)
    return finding.evidence["ideal_gain_db"] if finding else None


# Keys 7 dB hot reads about 7.3 LU too loud; g within +/-3.5 keeps the move outside the 3 LU
# deadband and under the 12 dB cap, where the property is exact.
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=st.floats(min_value=-3.5, max_value=3.5).filter(lambda g: abs(g) > 0.5))
def test_raising_a_stem_by_g_lowers_its_gain_suggestion_by_g(tmp_path_factory, g):
    base = _session_with_gain(tmp_path_factory.mktemp("base"), {"Keys": 7.0})
    moved = _session_with_gain(tmp_path_factory.mktemp("moved"), {"Keys": 7.0 + g})
    a, b = _ideal(base, "Keys"), _ideal(moved, "Keys")
    assert a is not None and b is not None
    assert b - a == pytest.approx(-g, abs=0.05)
    va = _changes(base, "Keys", "track", "volume_db")[0].value
    vb = _changes(moved, "Keys", "track", "volume_db")[0].value
    assert vb - va == pytest.approx(-g, abs=0.15)


def test_replanning_after_applying_gain_moves_gives_no_more_gain_moves(tmp_path):
    first = _session_with_gain(tmp_path / "a", {"Keys": 9.0, "Bass_DI": -7.0})
    applied = {t.name: c.value for t in first.tracks for c in t.changes if c.param == "volume_db"}
    assert set(applied) >= {"Keys", "Bass_DI"}, applied
    total = {"Keys": 9.0 + applied["Keys"], "Bass_DI": -7.0 + applied["Bass_DI"]}
    total.update({n: v for n, v in applied.items() if n not in total})
    second = _session_with_gain(tmp_path / "b", total)
    again = {t.name: c.value for t in second.tracks for c in t.changes if c.param == "volume_db"}
    assert not (set(again) & set(applied)), f"still moving {again}"


def test_mix_anchor_without_a_lead_vocal_is_stable(tmp_path):
    specs = [StemSpec("Keys", "keys", -12.0, seed=7), StemSpec("Bass_DI", "bass", -19.0, seed=4),
             StemSpec("Kick", "kick", -18.0, seed=1)]
    write_session(tmp_path, specs, duration_s=12.0)
    result = analyze_session([tmp_path], jobs=1)
    plan = plan_session(result)
    assert plan.anchor.kind == "mix"
    moves = {t.name: c.value for t in plan.tracks for c in t.changes if c.param == "volume_db"}
    assert moves, "an unbalanced session gets fader moves"
    # After the moves, every moved stem sits at the anchor plus its role offset (to the rounding).
    from bridge.suggest.roles import PROFILES
    levels = {s.name: s.analysis.loudness.integrated_lufs for s in result.stems}
    balanced = {n: levels[n] + g - PROFILES[plan.track(n).role].offset_lu for n, g in moves.items()}
    assert max(balanced.values()) - min(balanced.values()) < 0.2, balanced


# --- roles -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, role", [
    ("Lead_Vocal_Main", "lead_vocal"), ("Bass_DI_Clean", "bass"), ("Kick In", "kick"), ("Bass Drum", "kick"),
    ("SnareTop", "snare"), ("HiHat", "hats"), ("OH_L", "overheads"), ("BV_Harmony_2", "backing_vocal"),
    ("Vocal Double", "backing_vocal"), ("Gtr_Rhythm_L", "guitar"), ("Rhodes", "keys"), ("Pad_Strings", "pad"),
    ("Synth_Lead", "synth_lead"), ("FX_Riser", "fx"), ("Track 12", "neutral"), ("Audio-03", "neutral"),
])
def test_role_inference(name, role):
    assert infer_role(name) == role


def test_roles_file_overrides_inference_and_unknown_roles_are_errors(tmp_path, planted):
    result, _ = planted
    good = tmp_path / "roles.toml"
    good.write_text('manual = ["Keys"]\n[roles]\n"Synth_Lead" = "pad"\n[role_offsets]\npad = -12\n')
    config = read_roles_file(good)
    plan = plan_session(result, config)
    assert plan.track("Synth_Lead").role == "pad" and plan.track("Synth_Lead").role_source == "roles file"
    assert plan.track("Keys").status == "manual" and not plan.track("Keys").changes
    assert plan.track("Keys").findings, "a manual track still gets its findings"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"roles": {"Keys": "kazoo"}}))
    with pytest.raises(InputFileError) as err:
        read_roles_file(bad)
    assert err.value.code == "E_ROLES" and "kazoo" in err.value.message


def test_neutral_role_gets_findings_but_no_role_specific_moves(tmp_path):
    specs = [StemSpec("Lead_Vocal", "vocal", -17.0, stereo=False, seed=8),
             StemSpec("Track 7", "keys", -5.0, seed=7)]
    write_session(tmp_path, specs, duration_s=12.0)
    plan = plan_session(analyze_session([tmp_path], jobs=1), hear=False)  # names alone (no role recogniser)
    track = plan.track("Track 7")
    assert track.role == "neutral" and "too_loud" in {f.code for f in track.findings}
    assert not [c for c in track.changes if c.param == "volume_db"]


# --- the plan contract and the CLI ----------------------------------------------------------------------

def test_plan_json_contract(planted):
    _, plan = planted
    doc = plan_dict(plan)
    assert doc["schema_version"] == 2 and doc["id"] == plan.id and doc["analysis_id"]
    codes = set()
    for t in doc["tracks"]:
        assert {"name", "role", "findings", "changes", "automation"} <= set(t)
        for f in t["findings"]:
            assert set(f) >= {"code", "severity", "message", "evidence"}
            codes.add(f["code"])
        for c in t["changes"]:
            assert set(c) >= {"target", "param", "value", "unit", "reason"}
            assert c["target"] in ("track", "eq", "comp")
            if c["target"] == "track":
                assert c["param"] in ("volume_db", "pan", "width", "polarity")
            elif c["target"] == "comp":
                assert c["param"] in ("threshold_db", "ratio", "attack_ms", "release_ms", "makeup_db")
            else:
                assert c["param"].startswith("band") and c["param"].split("_", 1)[1] in ("freq_hz", "gain_db", "q", "type")
        for a in t["automation"]:
            assert a["param"] == "volume_db" and all(len(p) == 2 for p in a["points"])
    assert {"too_loud", "masking", "low_rumble", "phase", "section_level", "clipping", "silent"} <= codes


def test_cli_plan_writes_plan_and_reports(tmp_path, clean):
    folder, _, _ = clean
    out = tmp_path / "plan.json"
    import io
    buf = io.StringIO()
    status = main(["plan", str(folder), "--json", str(out), "--amount", "0.5", "--jobs", "1"], out=buf)
    assert status == 0, buf.getvalue()
    doc = json.loads(out.read_text())
    assert doc["settings"]["amount"] == 0.5 and "plan (" in buf.getvalue()
    assert main(["plan", str(folder), "--json", str(out), "--amount", "2"], out=io.StringIO()) == 2


def test_reference_moves_towards_the_reference(tmp_path, clean):
    folder, result, _ = clean
    # A reference: the same mix with +6 dB more low end (a bass-heavy master).
    bassy = tmp_path / "ref"
    specs = [s for s in default_session(problems=False) if s.name != "FX_Riser"]
    specs = [StemSpec(s.name, s.role, s.level_db + (8.0 if s.role in ("bass", "kick") else 0.0), s.pan, s.stereo,
                      s.seed) for s in specs]
    write_session(bassy, specs, duration_s=DURATION_S)
    mixdown = tmp_path / "reference.wav"
    total = None
    for path in sorted(bassy.glob("*.wav")):
        audio, rate = sf.read(str(path), always_2d=True)
        audio = np.repeat(audio, 2, axis=1) if audio.shape[1] == 1 else audio
        total = audio if total is None else total + audio
    sf.write(str(mixdown), total, rate, subtype="FLOAT")
    plan = plan_session(result, reference_path=mixdown)
    ref = plan.reference
    low = next(b for b in ref.bands if b.name == "low")
    assert low.delta_db > 1.5, ref.bands
    boosts = [(t.name, c.value) for t in plan.tracks for c in t.changes
              if c.reason == "reference" and c.param.endswith("gain_db") and c.value > 0]
    assert boosts and {n for n, _ in boosts} <= {"Bass_DI", "Kick"}, boosts
    assert all(v <= 3.0 for _, v in boosts)
