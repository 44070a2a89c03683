"""The simulator renders: RENDER_* settings, action 42230, the bounce script's model and its manifest,
and the ``pre_ai`` key the reapy target leaves for the bounce script. Real processes, real files."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.manifest import MANIFEST_NAME, read_manifest
from tests.reaper_sim.control import ControlClient
from tests.reaper_sim.fixtures import REPO_ROOT, expect_result, run_reapy_client, running_sim

RATE = 48000
GUIDS = ["{AAAAAAAA-0000-4000-8000-00000000000%d}" % i for i in range(1, 5)]


def tone(path: Path, hz: float, seconds: float, channels: int = 2, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    mono = amplitude * np.sin(2 * np.pi * hz * t)
    data = np.stack([mono, -0.5 * mono], axis=1) if channels == 2 else mono[:, None]
    sf.write(str(path), data, RATE, subtype="FLOAT")
    return data


def three_track_project(tmp_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    src = tmp_path / "sources"
    src.mkdir()
    sources = {"Kick": tone(src / "kick.wav", 60, 1.0), "Bass": tone(src / "bass.wav", 110, 0.8),
               'Vox "lead"/dbl': tone(src / "vox.wav", 440, 1.0, channels=1)}
    project = {
        "name": "Song.rpp", "path": str(tmp_path / "song" / "Song.rpp"),
        "tracks": [
            {"name": "Kick", "guid": GUIDS[0], "vol": 0.5, "selected": True, "source": str(src / "kick.wav")},
            {"name": "Bass", "guid": GUIDS[1], "vol": 1.0, "phase": True, "selected": True,
             "source": str(src / "bass.wav")},
            {"name": 'Vox "lead"/dbl', "guid": GUIDS[2], "vol": 0.25, "selected": True,
             "source": str(src / "vox.wav"), "ext": {"mixbridge/pre_ai": "D_VOL=0.8"},
             "fx": [{"name": "VST: ReaEQ (Cockos)", "renamed": "AI EQ (MixBridge)"}]},
            {"name": "Unselected", "guid": GUIDS[3], "selected": False, "source": str(src / "kick.wav")},
        ],
    }
    (tmp_path / "song").mkdir()
    return project, sources


def padded(data: np.ndarray, frames: int) -> np.ndarray:
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    out = np.zeros((frames, 2))
    out[:len(data)] = data
    return out


def test_simulator_bounce_writes_stems_and_a_manifest_the_bridge_reads(tmp_path):
    project, sources = three_track_project(tmp_path)
    with running_sim(project, tmp_path / "sim") as sim:
        outcome = ControlClient(sim.control_port, timeout_s=60).bounce()
        state = sim.control.dump()
        after = expect_result(run_reapy_client(sim, """
result["settings"] = RPR.GetSetProjectInfo(0, "RENDER_SETTINGS", 0, False)
result["file"] = RPR.GetSetProjectInfo_String(0, "RENDER_FILE", "", False)[3]
result["pattern"] = RPR.GetSetProjectInfo_String(0, "RENDER_PATTERN", "", False)[3]
result["format"] = RPR.GetSetProjectInfo_String(0, "RENDER_FORMAT", "", False)[3]
"""))
    assert outcome["error"] is None
    stem_dir = tmp_path / "song" / "MixBridge stems"
    manifest = read_manifest(outcome["manifest"])
    assert Path(outcome["manifest"]) == stem_dir / MANIFEST_NAME
    assert manifest.project == "Song.rpp" and manifest.render_dir == str(stem_dir)
    assert [(s.track_guid, s.track_name) for s in manifest.stems] == [
        (GUIDS[0], "Kick"), (GUIDS[1], "Bass"), (GUIDS[2], 'Vox "lead"/dbl')]
    assert [s.file.name for s in manifest.stems] == ["Kick.wav", "Bass.wav", "Vox _lead__dbl.wav"]
    gains = {"Kick": 0.5, "Bass": -1.0, 'Vox "lead"/dbl': 0.8}  # Vox: pre-AI, not the AI's 0.25
    for stem in manifest.stems:
        assert stem.file.is_file() and stem.sample_rate == RATE
        data, rate = sf.read(str(stem.file), always_2d=True)
        info = sf.info(str(stem.file))
        assert info.subtype == "PCM_24" and rate == RATE
        assert len(data) == RATE, "entire project = the longest source"
        expected = padded(sources[stem.track_name], len(data)) * gains[stem.track_name]
        np.testing.assert_allclose(data, expected, atol=2e-7 * 2, err_msg=stem.track_name)
    assert sorted(p.name for p in stem_dir.iterdir()) == sorted(
        ["Kick.wav", "Bass.wav", "Vox _lead__dbl.wav", MANIFEST_NAME])

    vox = next(t for t in state["tracks"] if t["guid"] == GUIDS[2])
    assert vox["vol"] == 0.25 and vox["fx"][0]["enabled"] is True, "restored after the render"
    assert after == {"settings": 0.0, "file": "", "pattern": "", "format": "ZXZhdxgAAQ=="}
    assert state["undo"]["history"][-1]["name"] == "MixBridge: bounce selected tracks as stems"


def test_render_action_honours_the_settings_from_a_reapy_client(tmp_path):
    project, sources = three_track_project(tmp_path)
    out_dir = tmp_path / "renders"
    with running_sim(project, tmp_path / "sim") as sim:
        result = expect_result(run_reapy_client(sim, f"""
RPR.GetSetProjectInfo(0, "RENDER_SETTINGS", 2, True)
RPR.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", 1, True)
RPR.GetSetProjectInfo_String(0, "RENDER_FILE", {str(out_dir)!r}, True)
RPR.GetSetProjectInfo_String(0, "RENDER_PATTERN", "$project-$track", True)
RPR.GetSetProjectInfo_String(0, "RENDER_FORMAT", "evaw", True)
result["targets"] = RPR.GetSetProjectInfo_String(0, "RENDER_TARGETS", "", False)[3]
RPR.Main_OnCommand(42230, 0)
result["bounce_id"] = RPR.NamedCommandLookup("_MIXBRIDGE_BOUNCE")
result["unknown"] = RPR.NamedCommandLookup("_NOPE")
try:
    RPR.GetSetProjectInfo(0, "RENDER_DITHER", 0, False)
except Exception as error:
    result["unmodelled"] = str(error)
"""))
    names = ["Song-Kick.wav", "Song-Bass.wav", "Song-Vox _lead__dbl.wav"]
    assert result["targets"] == ";".join(str(out_dir / n) for n in names)
    assert all((out_dir / n).is_file() for n in names)
    assert not (out_dir / MANIFEST_NAME).exists(), "a plain render writes no manifest"
    assert result["bounce_id"] > 0 and result["unknown"] == 0
    assert "RENDER_DITHER" in result["unmodelled"]
    data, _ = sf.read(str(out_dir / "Song-Kick.wav"), always_2d=True)
    np.testing.assert_allclose(data, padded(sources["Kick"], RATE) * 0.5, atol=4e-7)


def test_bounce_through_the_web_interface_and_refusals(tmp_path):
    project, _ = three_track_project(tmp_path)
    project["proj_ext"] = {"mixbridge": {"render_dir": "watched"}}
    with running_sim(project, tmp_path / "sim") as sim:
        with urllib.request.urlopen(f"http://127.0.0.1:{sim.web_port}/_/_MIXBRIDGE_BOUNCE", timeout=60) as r:
            assert r.status == 200
        manifest = read_manifest(tmp_path / "song" / "watched" / MANIFEST_NAME)
        assert len(manifest.stems) == 3
        for index in range(3):
            sim.control.set_track(index, "I_SELECTED", 0)
        refused = ControlClient(sim.control_port, timeout_s=60).bounce()
    assert refused["manifest"] is None and "Select the tracks" in refused["error"]


def test_slow_render_grows_the_files_before_the_manifest_appears(tmp_path):
    project, _ = three_track_project(tmp_path)
    stem_dir = tmp_path / "song" / "MixBridge stems"
    kick = stem_dir / "Kick.wav"
    with running_sim(project, tmp_path / "sim",
                     extra_args=("--render-block-frames", "4800", "--render-block-delay-ms", "40")) as sim:
        outcome: dict = {}
        worker = threading.Thread(target=lambda: outcome.update(
            ControlClient(sim.control_port, timeout_s=60).bounce()))
        worker.start()
        sizes = []
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            if kick.exists():
                size = kick.stat().st_size
                if not sizes or size != sizes[-1]:
                    sizes.append(size)
                    assert not (stem_dir / MANIFEST_NAME).exists(), "no manifest while stems grow"
            time.sleep(0.005)  # polling a condition inside a deadline loop
        worker.join(30)
    assert outcome.get("error") is None and (stem_dir / MANIFEST_NAME).exists()
    assert len(sizes) >= 3, f"the stem was seen growing in chunks: {sizes}"


# --- the pre_ai key the bounce script relies on ------------------------------------------------------

PLAN = {"schema_version": 1, "id": "preai000000001", "analysis_id": "a",
        "mix": {"findings": [], "estimated_ai_delta_lu": 0.0},
        "tracks": [{"name": "Keys", "role": "keys", "status": "ai", "findings": [], "automation": [],
                    "changes": [
                        {"target": "track", "param": "volume_db", "value": -6.0, "unit": "dB", "reason": "too_loud"},
                        {"target": "track", "param": "width", "value": 0.5, "unit": "", "reason": "width"},
                        {"target": "eq", "param": "band2_gain_db", "value": -3.0, "unit": "dB", "reason": "masking"}]}]}


def bridge(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bridge", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def keys_ext(sim) -> dict[str, str]:
    return next(t for t in sim.control.dump()["tracks"] if t["name"] == "Keys")["ext"]


def test_reapy_target_writes_pre_ai_and_the_bounce_renders_the_pre_ai_mix(tmp_path):
    src = tmp_path / "keys.wav"
    source = tone(src, 220, 0.5)
    project = {"name": "Song.rpp", "path": str(tmp_path / "Song.rpp"),
               "tracks": [{"name": "Keys", "vol": 0.9, "width": 0.8, "selected": True, "source": str(src)}]}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    with running_sim(project, tmp_path / "sim") as sim:
        web = ("--web-port", str(sim.web_port))
        bridge("apply", str(plan), *web)
        assert keys_ext(sim)["mixbridge/pre_ai"] == "D_VOL=0.9;D_WIDTH=0.8"
        state = sim.control.dump()["tracks"][0]
        assert state["vol"] == pytest.approx(0.9 * 10 ** (-6 / 20)) and state["width"] == 0.5

        outcome = ControlClient(sim.control_port, timeout_s=60).bounce()
        (stem,) = read_manifest(outcome["manifest"]).stems
        data, _ = sf.read(str(stem.file), always_2d=True)
        np.testing.assert_allclose(data, source * 0.9, atol=4e-7, err_msg="rendered at the pre-AI fader")
        assert sim.control.dump()["tracks"][0]["vol"] == pytest.approx(0.9 * 10 ** (-6 / 20))

        sim.control.set_track("Keys", "D_WIDTH", 0.3)  # the producer takes width over
        bridge("apply", str(plan), *web)
        assert keys_ext(sim)["mixbridge/pre_ai"] == "D_VOL=0.9", "an override is the producer's, not pre-AI"

        bridge("revert", *web)
        assert "mixbridge/pre_ai" not in keys_ext(sim), "nothing owned after a revert"
