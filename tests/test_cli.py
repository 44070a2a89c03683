"""The command line: exit statuses, the table, --json, --version, and the import rule.

Most cases call :func:`bridge.cli.main` in-process with a StringIO for the table; one runs the
real ``python -m bridge`` as a subprocess so the entry point itself is covered.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge import __version__
from bridge.cli import ExitStatus, main

REPO = Path(__file__).resolve().parents[1]
RATE = 48000
SUBPROCESS_TIMEOUT_S = 60


def sine(seconds: float, amplitude: float = 0.1, channels: int = 2) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    mono = (amplitude * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


@pytest.fixture
def good_folder(tmp_path) -> Path:
    """Two clean stems: Kick (stereo) and Lead Vox (mono)."""
    folder = tmp_path / "stems"
    folder.mkdir()
    sf.write(folder / "Kick.wav", sine(2.0), RATE, subtype="PCM_24")
    sf.write(folder / "Lead Vox.wav", sine(2.0, channels=1), RATE, subtype="PCM_24")
    return folder


def add_bad_stems(folder: Path) -> None:
    (folder / "Broken.wav").write_text("this is not audio\n" * 20, encoding="utf-8")
    (folder / "Empty.wav").write_bytes(b"")


def run_main(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(args, out=out)
    return status, out.getvalue()


def run_python(*args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter with the repository importable (as an installed package would be)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S)


# --- exit statuses -----------------------------------------------------------------------------

def test_all_stems_fine_exits_0(good_folder):
    status, table = run_main(["analyze", str(good_folder), "--jobs", "1"])
    assert status == ExitStatus.OK == 0, f"expected exit 0 with only good stems, got {status}\n{table}"


def test_some_stems_failed_exits_1(good_folder):
    add_bad_stems(good_folder)
    status, table = run_main(["analyze", str(good_folder), "--jobs", "1"])
    assert status == ExitStatus.SOME_FAILED == 1, f"expected exit 1 with two bad stems of four, got {status}\n{table}"


def test_only_bad_stems_exits_3(tmp_path):
    add_bad_stems(tmp_path)
    status, table = run_main(["analyze", str(tmp_path), "--jobs", "1"])
    assert status == ExitStatus.NOTHING_USABLE == 3, f"expected exit 3 when no stem is usable, got {status}\n{table}"


def test_folder_without_stems_exits_3_with_E_NO_STEMS(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no audio here", encoding="utf-8")
    status = main(["analyze", str(tmp_path), "--jobs", "1"], out=io.StringIO())
    err = capsys.readouterr().err
    assert status == 3, f"expected exit 3 for a folder with no stems, got {status}"
    assert "E_NO_STEMS" in err, f"stderr does not name E_NO_STEMS: {err!r}"


def test_malformed_markers_exits_2_with_E_MARKERS(good_folder, tmp_path, capsys):
    markers = tmp_path / "markers.json"
    markers.write_text('[{"name": "Verse", "start_s": "soon"}]', encoding="utf-8")

    status = main(["analyze", str(good_folder), "--jobs", "1", "--markers", str(markers)], out=io.StringIO())

    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE == 2, f"expected exit 2 for a malformed markers file, got {status}"
    assert "E_MARKERS" in err, f"stderr does not name E_MARKERS: {err!r}"
    assert "Traceback" not in err, f"stderr holds a traceback: {err!r}"


# --- what is printed and written ---------------------------------------------------------------

def test_table_names_every_stem_and_shows_an_ERROR_line_with_the_code(good_folder):
    add_bad_stems(good_folder)
    _, table = run_main(["analyze", str(good_folder), "--jobs", "1"])
    lines = table.splitlines()
    for name in ("Kick", "Lead Vox", "Broken", "Empty"):
        assert any(line.startswith(name) for line in lines), f"no table row for stem {name!r}:\n{table}"
    for name, code in (("Broken", "E_NOT_AUDIO"), ("Empty", "E_STEM_EMPTY")):
        row = next(line for line in lines if line.startswith(name))
        assert "ERROR" in row and code in row, f"row for {name!r} should be an ERROR line with {code}: {row!r}"
    for name in ("Kick", "Lead Vox"):
        row = next(line for line in lines if line.startswith(name))
        assert "ERROR" not in row, f"good stem {name!r} shows an error: {row!r}"


def test_json_option_writes_the_file(good_folder, tmp_path):
    out_path = tmp_path / "result.json"
    status, table = run_main(["analyze", str(good_folder), "--jobs", "1", "--json", str(out_path)])
    assert status == 0, f"analysis failed with exit {status}\n{table}"
    assert out_path.is_file(), f"--json {out_path} wrote no file"
    doc = json.loads(out_path.read_text(encoding="utf-8"))
    names = sorted(s["name"] for s in doc["stems"])
    assert names == ["Kick", "Lead Vox"], f"JSON file lists stems {names}, expected Kick and Lead Vox"


# --- the real entry point ----------------------------------------------------------------------

def test_python_m_bridge_analyze_runs_as_a_process(good_folder):
    add_bad_stems(good_folder)
    proc = run_python("-m", "bridge", "analyze", str(good_folder), "--jobs", "1")
    assert proc.returncode == 1, (
        f"python -m bridge analyze: expected exit 1 (two bad stems), got {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    assert "Traceback" not in proc.stderr, f"python -m bridge analyze printed a traceback:\n{proc.stderr}"
    for name in ("Kick", "Lead Vox", "Broken", "Empty"):
        assert name in proc.stdout, f"stem {name!r} missing from the printed table:\n{proc.stdout}"


def test_python_m_bridge_version():
    proc = run_python("-m", "bridge", "--version")
    assert proc.returncode == 0, f"--version exited {proc.returncode}: {proc.stderr}"
    assert proc.stdout.strip() == f"mixbridge {__version__}", f"--version printed {proc.stdout!r}"


def test_importing_bridge_does_not_import_reapy_or_pythonosc():
    code = ("import sys, json\n"
            "import bridge, bridge.cli, bridge.pipeline, bridge.analyze.session\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('reapy', 'pythonosc'))\n"
            "print(json.dumps(bad))\n")
    proc = run_python("-c", code)
    assert proc.returncode == 0, f"importing bridge failed:\n{proc.stderr}"
    leaked = json.loads(proc.stdout)
    assert leaked == [], f"importing bridge pulled in DAW/OSC client modules: {leaked}"


def test_demo_runs_the_full_loop_and_re_analyses_only_the_fixed_stem(tmp_path):
    """`mixbridge demo` (the README's first command): bounce → watch → plan → notes, then a
    re-bounce of one fixed track re-analyses that stem alone and the notes say what changed."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bridge", "demo", "--dir", str(tmp_path), "--seconds", "12"],
                          capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    renders = tmp_path / "MixBridge stems"
    plan = json.loads((renders / "mixbridge-plan.json").read_text(encoding="utf-8"))
    assert plan["schema_version"] == 2 and {t["name"] for t in plan["tracks"]} >= {"Keys", "Kick", "Bass_DI"}
    assert (renders / "mixbridge-notes.html").stat().st_size > 1000
    assert "pass 2: 10 stems (1 re-analysed, 9 cached)" in proc.stdout
    assert "re-analysed: Keys;" in proc.stdout
    # Keys was planted 9 dB too hot and fixed between the bounces: the first plan turns it down,
    # the second no longer does, and the pass-2 notes record the level change.
    first = json.loads((renders / ".mixbridge" / "passes" / "0001" / "plan.json").read_text(encoding="utf-8"))
    keys = next(t for t in first["tracks"] if t["name"] == "Keys")
    assert any(c["param"] == "volume_db" and c["value"] < -6 for c in keys["changes"])
    keys_now = next(t for t in plan["tracks"] if t["name"] == "Keys")
    assert not any(c["param"] == "volume_db" and c["value"] < -6 for c in keys_now["changes"])
    notes2 = (renders / ".mixbridge" / "passes" / "0002" / "notes.md").read_text(encoding="utf-8")
    changes = notes2[notes2.index("## Changes since the previous bounce"):]
    assert "| `Keys` | -9.0 LU |" in changes
