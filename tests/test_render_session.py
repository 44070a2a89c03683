"""The renderer on files: matching stems to plan tracks, copies, mixes and their loudness, block-size
independence, flat memory, the ``mixbridge render`` command, and the closed loop plan -> render -> analyse."""
from __future__ import annotations

import filecmp
import io
import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.analyze.loudness import KWeightedEnergy, channel_weights, gating_blocks, integrated_lufs
from bridge.cli import ExitStatus, main
from bridge.render import read_plan, render_plan
from bridge.synth import default_session, write_session

RATE = 48000
SESSION_S = 12.0


def measured_lufs(path: Path) -> float:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    energy = KWeightedEnergy(rate, data.shape[1])
    energy.feed(np.ascontiguousarray(data.T))
    return integrated_lufs(gating_blocks(energy.result()), channel_weights(data.shape[1]))


def noise(seconds: float, channels: int = 2, level: float = 0.1, seed: int = 1, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * rate), channels)) * level).astype(np.float32)


def change(target, param, value, **extra):
    return {"target": target, "param": param, "value": value, "unit": "", "reason": "t", "suggestion": "t/0", **extra}


def plan_doc(*tracks, version: int = 1, **extra) -> dict:
    return {"schema_version": version, "id": "test", "tracks": list(tracks), **extra}


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> dict:
    """The synthesised session with its planted problems, analysed and planned once."""
    from bridge.pipeline import analyze_session, plan_session
    from bridge.suggest.plan import plan_dict

    root = tmp_path_factory.mktemp("session")
    stems = root / "stems"
    write_session(stems, default_session(), duration_s=SESSION_S)
    result = analyze_session([stems], jobs=1)
    plan = plan_dict(plan_session(result))
    plan_path = root / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    return {"root": root, "stems": stems, "result": result, "plan": plan, "plan_path": plan_path}


def test_cli_renders_stems_and_two_level_matched_mixes(session, tmp_path):
    out_dir = tmp_path / "out"
    out = io.StringIO()
    status = main(["render", str(session["plan_path"]), str(session["stems"]), "--out", str(out_dir)], out=out)
    assert status == ExitStatus.OK, out.getvalue()
    report = json.loads((out_dir / "render.json").read_text())
    names = {s["name"]: s for s in report["stems"]}
    assert set(names) == {p.stem for p in session["stems"].glob("*.wav")}
    ai = {t["name"] for t in session["plan"]["tracks"] if t["status"] == "ai"}
    assert {n for n, s in names.items() if s["status"] == "processed"} == ai
    assert all(Path(s["path"]).is_file() for s in report["stems"])
    before, after = measured_lufs(out_dir / "mix_before.wav"), measured_lufs(out_dir / "mix_after.wav")
    assert after == pytest.approx(before, abs=0.05)
    assert report["before_lufs"] == pytest.approx(before, abs=0.01)
    assert abs(report["after_unmatched_lufs"] - report["before_lufs"]) > 0.05  # the plan does change the level
    assert "level-matched" in out.getvalue()
    # The after mix differs from the before mix by more than a gain: the plan was applied.
    b, _ = sf.read(str(out_dir / "mix_before.wav"))
    a, _ = sf.read(str(out_dir / "mix_after.wav"))
    assert b.shape == a.shape == (int(SESSION_S * RATE), 2)
    assert np.max(np.abs(a - b * (np.sum(a * b) / np.sum(b * b)))) > 1e-3


def test_cli_errors_are_one_line_with_stable_codes(session, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["render", str(bad), str(session["stems"]), "--out", str(tmp_path / "o")]) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixbridge: E_PLAN:") and "\n" not in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema_version": 7, "tracks": []}), encoding="utf-8")
    assert main(["render", str(wrong), str(session["stems"]), "--out", str(tmp_path / "o")]) == ExitStatus.USAGE
    assert "E_PLAN" in capsys.readouterr().err
    assert main(["render", str(session["plan_path"]), str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "o")]) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixbridge: E_PATH_NOT_FOUND:") and "nowhere" in err
    assert main(["render", str(session["plan_path"]), str(session["stems"]), "--out",
                 str(session["stems"])]) == ExitStatus.USAGE
    assert "E_RENDER_OUTPUT" in capsys.readouterr().err


def test_closed_loop_the_planted_fader_problem_is_fixed_in_the_rendered_audio(session, tmp_path):
    """Plan -> render -> analyse: the hot Keys stem moved by exactly its planned fader gain, the
    inverted guitar channel is flipped, and untouched stems read as before."""
    from bridge.pipeline import analyze_session

    output = render_plan(session["plan"], session["stems"], tmp_path / "out", mixes=False)
    rendered = analyze_session(list(output.stem_paths), jobs=1)
    before = {s.name: s.analysis for s in session["result"].stems if s.analysis is not None}
    after = {s.name: s.analysis for s in rendered.stems if s.analysis is not None}
    keys = next(t for t in session["plan"]["tracks"] if t["name"] == "Keys")
    gain = sum(c["value"] for c in keys["changes"] if c["param"] == "volume_db")
    assert gain < -3.0, "the planted +9 dB on Keys was not planned down"
    moved = after["Keys"].loudness.integrated_lufs - before["Keys"].loudness.integrated_lufs
    others = [c for c in keys["changes"] if c["param"] != "volume_db"] or keys["automation"]
    # The fader is after the FX, so it moves the loudness by exactly its gain on top of what the FX do.
    fx_effect = _fx_only_loudness_change(session["stems"] / "Keys.wav", keys) if others else 0.0
    assert moved == pytest.approx(gain + fx_effect, abs=0.2)
    assert before["Guitar_Rhythm"].stereo.correlation < -0.5
    assert after["Guitar_Rhythm"].stereo.correlation > 0.5
    untouched = [t["name"] for t in session["plan"]["tracks"] if t["status"] == "untouched" and t["name"] in before]
    assert untouched
    for name in untouched:
        assert after[name].loudness.integrated_lufs == before[name].loudness.integrated_lufs


def _fx_only_loudness_change(path: Path, track: dict) -> float:
    """Loudness change of a stem played through its plan track without the fader move (in memory)."""
    from bridge.render import TrackChain

    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    without = dict(track, changes=[c for c in track["changes"] if c["param"] != "volume_db"])
    played = TrackChain(without, rate, data.shape[1]).process(data)
    played = played[:, :1] if data.shape[1] == 1 else played

    def lufs(x):
        energy = KWeightedEnergy(rate, x.shape[1])
        energy.feed(np.ascontiguousarray(x.T, dtype=np.float32))
        return integrated_lufs(gating_blocks(energy.result()), channel_weights(x.shape[1]))
    return lufs(played) - lufs(data)


def write(path: Path, data: np.ndarray, rate: int = RATE, subtype: str = "PCM_24") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def test_matching_copies_manual_and_unmatched_stems_and_reports_missing_tracks(tmp_path):
    stems = tmp_path / "stems"
    write(stems / "Kick.wav", noise(1.0, seed=1))
    write(stems / "Vox.wav", noise(1.0, 1, seed=2))
    write(stems / "Room.wav", noise(1.0, seed=3))
    doc = plan_doc(
        {"name": "Kick", "status": "manual", "changes": [change("track", "volume_db", -6.0)]},
        # A renamed REAPER track keeps its stem name under "stem"; schema 2 fields are ignored.
        {"name": "Lead Vocal", "stem": "Vox", "status": "ai", "changes": [change("track", "volume_db", -6.0)],
         "predicted": {"lufs": -20}, "automation": []},
        {"name": "Ghost", "status": "ai", "changes": [change("track", "volume_db", 2.0)]},
        version=2, objective={"terms": []})
    output = render_plan(doc, stems, tmp_path / "out")
    by = {s.name: s for s in output.stems}
    assert by["Kick"].status == "copied" and by["Kick"].reason == "manual"
    assert filecmp.cmp(by["Kick"].path, stems / "Kick.wav", shallow=False)
    assert by["Room"].status == "copied" and by["Room"].reason == "no plan track" and by["Room"].track is None
    assert filecmp.cmp(by["Room"].path, stems / "Room.wav", shallow=False)
    assert by["Vox"].status == "processed" and by["Vox"].track == "Lead Vocal"
    source, _ = sf.read(str(stems / "Vox.wav"), dtype="float64")
    rendered, _ = sf.read(str(by["Vox"].path), dtype="float64")
    np.testing.assert_allclose(rendered, source * 10 ** (-6 / 20), atol=1e-6)
    assert rendered.ndim == 1  # a mono stem stays mono (two equal channels would read 3 LU louder)
    assert output.missing_tracks == ("Ghost",)


def test_a_bad_stem_is_a_failed_entry_and_the_others_render(tmp_path):
    stems = tmp_path / "stems"
    write(stems / "Good.wav", noise(1.0))
    (stems / "Broken.wav").write_text("not audio " * 50, encoding="utf-8")
    output = render_plan(plan_doc({"name": "Good", "status": "ai", "changes": [change("track", "pan", 0.5)]}),
                         stems, tmp_path / "out")
    by = {s.name: s for s in output.stems}
    assert by["Broken"].status == "failed" and by["Broken"].error_code == "E_NOT_AUDIO"
    assert by["Good"].status == "processed" and output.mix_after.is_file()
    assert not list((tmp_path / "out").rglob(".*.part"))


def test_render_output_does_not_depend_on_the_block_size(tmp_path):
    stems = tmp_path / "stems"
    write(stems / "A.wav", noise(3.0, seed=4), subtype="FLOAT")
    write(stems / "B.wav", noise(2.5, 1, seed=5), subtype="FLOAT")
    doc = plan_doc({"name": "A", "status": "ai", "changes": [
        change("eq", "band1_type", "highpass"), change("eq", "band1_freq_hz", 120.0), change("eq", "band1_q", 0.71),
        change("comp", "threshold_db", -30.0), change("comp", "ratio", 4.0), change("comp", "attack_ms", 5.0),
        change("comp", "release_ms", 80.0), change("track", "width", 0.5)],
        "automation": [{"param": "volume_db", "points": [[1.0, 0.0], [1.1, 5.0]]}]})
    outputs = [render_plan(doc, stems, tmp_path / f"out{b}", block_frames=b) for b in (48000, 4099, 700)]
    for name in ("stems/A.wav", "mix_before.wav", "mix_after.wav"):
        reference, _ = sf.read(str(outputs[0].out_dir / name))
        for other in outputs[1:]:
            data, _ = sf.read(str(other.out_dir / name))
            np.testing.assert_allclose(data, reference, atol=1e-6, rtol=0)


def test_a_stem_at_another_rate_joins_the_mix_resampled(tmp_path):
    stems = tmp_path / "stems"
    write(stems / "A.wav", noise(2.0, seed=6))
    write(stems / "B.wav", noise(2.0, seed=7, rate=44100), rate=44100)
    output = render_plan(plan_doc({"name": "B", "status": "ai", "changes": [change("track", "volume_db", -3.0)]}),
                         stems, tmp_path / "out")
    assert output.mix_rate == RATE
    assert sf.info(str(output.mix_after)).frames == 2 * RATE
    assert sf.info(str(next(s.path for s in output.stems if s.name == "B"))).samplerate == 44100
    # Two equal-level uncorrelated stems: the before mix is 3 dB over one; B at -3 dB brings the sum down 1.24 dB.
    assert output.after_unmatched_lufs - output.before_lufs == pytest.approx(
        10 * math.log10((1 + 10 ** (-3 / 10)) / 2), abs=0.1)


def _peak_bytes(folder: Path, seconds: float) -> int:
    rate = 8000
    path = folder / f"s{seconds:g}" / "Long.wav"
    with sf.SoundFile(str(path.parent.mkdir(parents=True) or path), "w", samplerate=rate, channels=2,
                      subtype="PCM_16") as fh:
        for k in range(int(seconds)):
            fh.write(noise(1.0, seed=k, rate=rate))
    doc = plan_doc({"name": "Long", "status": "ai", "changes": [
        change("eq", "band1_type", "peak"), change("eq", "band1_freq_hz", 500.0), change("eq", "band1_gain_db", -3.0),
        change("comp", "threshold_db", -30.0), change("comp", "ratio", 2.0), change("track", "volume_db", -1.0)]})
    tracemalloc.start()
    try:
        render_plan(doc, path.parent, folder / f"out{seconds:g}", block_frames=rate)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_song_length(tmp_path):
    """Audio is never held whole; what grows with length is only the mixes' loudness energies
    (16 bytes per 10 ms per mix, as in the analysis), far below the audio itself."""
    short, long = _peak_bytes(tmp_path, 15.0), _peak_bytes(tmp_path, 120.0)
    second_of_audio = 8000 * 2 * 8  # one second of the stem as float64
    assert long < 120 * second_of_audio / 6
    assert (long - short) / (120.0 - 15.0) < second_of_audio / 8


def test_read_plan_accepts_schema_1_and_2_and_refuses_others(tmp_path):
    for version in (1, 2):
        p = tmp_path / f"v{version}.json"
        p.write_text(json.dumps(plan_doc({"name": "A", "changes": []}, version=version, extra_field=1)))
        assert read_plan(p)["schema_version"] == version
    from bridge.errors import InputFileError
    for doc in ({"schema_version": 3, "tracks": []}, {"schema_version": 1, "tracks": {}}, [1, 2],
                {"schema_version": 1, "tracks": [{"changes": []}]}):
        p = tmp_path / "x.json"
        p.write_text(json.dumps(doc))
        with pytest.raises(InputFileError) as info:
            read_plan(p)
        assert info.value.code == "E_PLAN"
