"""The JSON document of ``mixbridge analyze --json`` (schema version 1) is a public contract.

The document is produced end to end through :func:`bridge.cli.main` from real files, then read
back as a consumer would: strict JSON (no NaN/Infinity tokens), fixed key names, null for
"undefined" and ``{code, message}`` for a failed stem.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.cli import main
from bridge.errors import MESSAGES

STEM_KEYS = {"name", "path", "sample_rate", "channels", "duration_s", "integrated_lufs", "max_momentary_lufs",
             "max_short_term_lufs", "lra_lu", "sample_peak_dbfs", "true_peak_dbtp", "correlation", "error"}
MEASURE_KEYS = STEM_KEYS - {"name", "path", "sample_rate", "channels", "duration_s", "error"}
MIX_KEYS = {"integrated_lufs", "true_peak_dbtp", "masking", "sections"}


def sine(seconds: float, rate: int = 48000, amplitude: float = 0.1, freq_hz: float = 1000.0,
         channels: int = 2) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


def reject_constant(token: str):
    raise ValueError(f"the JSON holds the non-standard token {token}")


def load_strict(path: Path) -> dict:
    """Parse as a strict consumer (JavaScript, jq) would: NaN/Infinity are an error."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject_constant)


def analyze_to_json(stems: Path, out: Path, *extra: str) -> tuple[int, Path]:
    status = main(["analyze", str(stems), "--jobs", "1", "--json", str(out), *extra], out=io.StringIO())
    return status, out


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> tuple[Path, int]:
    """A session with every kind of stem that tends to produce undefined values."""
    folder = tmp_path_factory.mktemp("contract")
    stems = folder / "stems"
    stems.mkdir()
    sf.write(stems / "Stereo.wav", sine(2.0), 48000, subtype="PCM_24")
    sf.write(stems / "Mono.wav", sine(2.0, channels=1, freq_hz=200.0), 48000, subtype="PCM_24")
    sf.write(stems / "Silent.wav", np.zeros((96000, 2), np.float32), 48000, subtype="PCM_24")
    clipped = np.clip(sine(2.0, amplitude=2.0, freq_hz=100.0), -1.0, 1.0)
    sf.write(stems / "Clipped.wav", clipped, 48000, subtype="FLOAT")
    nan = sine(2.0)
    nan[30000] = np.nan
    sf.write(stems / "Nan.wav", nan, 48000, subtype="FLOAT")
    (stems / "NotAudio.wav").write_text("not audio\n" * 20, encoding="utf-8")
    status, path = analyze_to_json(stems, folder / "result.json")
    return path, status


@pytest.fixture(scope="module")
def doc(document) -> dict:
    path, status = document
    assert status == 1, f"fixture session should exit 1 (two failed stems), got {status}"
    assert path.is_file(), f"--json wrote no file at {path}"
    return load_strict(path)


def by_name(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["stems"]}


# --- the document ------------------------------------------------------------------------------

def test_file_holds_no_nan_or_infinity_tokens(document):
    path, _ = document
    try:
        load_strict(path)
    except ValueError as exc:
        pytest.fail(f"{path.name} is not strict JSON: {exc}")


def test_schema_version_is_1(doc):
    assert doc.get("schema_version") == 1, f"schema_version is {doc.get('schema_version')!r}, expected 1"


def test_every_stem_has_the_contract_keys(doc):
    assert isinstance(doc.get("stems"), list), f"stems is {type(doc.get('stems')).__name__}, expected a list"
    assert len(doc["stems"]) == 6, f"expected 6 stems, got {[s.get('name') for s in doc['stems']]}"
    for stem in doc["stems"]:
        missing = STEM_KEYS - stem.keys()
        assert not missing, f"stem {stem.get('name')!r} lacks keys {sorted(missing)}"


def test_error_is_null_or_code_and_message(doc):
    for stem in doc["stems"]:
        error = stem["error"]
        if error is None:
            continue
        assert isinstance(error, dict) and set(error) == {"code", "message"}, (
            f"stem {stem['name']!r}: error must be null or exactly {{code, message}}, got {error!r}")
        assert error["code"] in MESSAGES, f"stem {stem['name']!r}: unknown error code {error['code']!r}"
        assert isinstance(error["message"], str) and "\n" not in error["message"], (
            f"stem {stem['name']!r}: message is not one line of text: {error['message']!r}")


def test_failed_stems_carry_their_code_and_null_measures(doc):
    stems = by_name(doc)
    for name, code in (("Nan", "E_NONFINITE_SAMPLES"), ("NotAudio", "E_NOT_AUDIO")):
        error = stems[name]["error"]
        assert error is not None and error["code"] == code, f"stem {name!r}: expected {code}, got {error!r}"
        filled = {k: stems[name][k] for k in MEASURE_KEYS if stems[name][k] is not None}
        assert not filled, f"failed stem {name!r} still reports measures {filled}"


def test_good_stems_are_measured_and_undefined_values_are_null(doc):
    stems = by_name(doc)
    for name in ("Stereo", "Mono", "Clipped"):
        assert stems[name]["error"] is None, f"stem {name!r} failed: {stems[name]['error']}"
        lufs = stems[name]["integrated_lufs"]
        assert isinstance(lufs, (int, float)), f"stem {name!r}: integrated_lufs is {lufs!r}, not a number"
    assert abs(stems["Stereo"]["integrated_lufs"] - (-20.0)) < 0.1, (
        f"stereo 1 kHz sine at -20 dBFS reads {stems['Stereo']['integrated_lufs']} LUFS, expected -20.0")
    assert stems["Stereo"]["sample_rate"] == 48000 and stems["Stereo"]["channels"] == 2, (
        f"Stereo header fields wrong: {stems['Stereo']['sample_rate']} Hz, {stems['Stereo']['channels']} ch")
    assert abs(stems["Stereo"]["duration_s"] - 2.0) < 1e-3, f"Stereo duration_s {stems['Stereo']['duration_s']}"
    assert stems["Silent"]["integrated_lufs"] is None, (
        f"silent stem integrated_lufs should be null, got {stems['Silent']['integrated_lufs']!r}")
    assert stems["Mono"]["correlation"] is None, f"mono stem correlation should be null, got {stems['Mono']['correlation']!r}"


def test_mix_has_the_contract_keys(doc):
    mix = doc.get("mix")
    assert isinstance(mix, dict), f"mix is {type(mix).__name__}, expected an object"
    missing = MIX_KEYS - mix.keys()
    assert not missing, f"mix lacks keys {sorted(missing)}"
    assert isinstance(mix["integrated_lufs"], (int, float)), f"mix integrated_lufs is {mix['integrated_lufs']!r}"
    assert isinstance(mix["true_peak_dbtp"], (int, float)), f"mix true_peak_dbtp is {mix['true_peak_dbtp']!r}"
    assert isinstance(mix["masking"], list), f"mix.masking is {type(mix['masking']).__name__}, expected a list"
    assert isinstance(mix["sections"], list), f"mix.sections is {type(mix['sections']).__name__}, expected a list"


# --- stems that do not line up -----------------------------------------------------------------

def test_other_sample_rate_and_shorter_stem_analyse_together(tmp_path):
    stems = tmp_path / "stems"
    stems.mkdir()
    sf.write(stems / "Drums48k.wav", sine(2.0, rate=48000), 48000, subtype="PCM_24")
    sf.write(stems / "Keys48k.wav", sine(2.0, rate=48000, freq_hz=440.0), 48000, subtype="PCM_24")
    sf.write(stems / "Guitar44k.wav", sine(2.0, rate=44100, freq_hz=300.0), 44100, subtype="PCM_24")
    sf.write(stems / "Shaker.wav", sine(1.0, rate=48000, freq_hz=5000.0), 48000, subtype="PCM_24")

    status, path = analyze_to_json(stems, tmp_path / "result.json")

    doc = load_strict(path)
    failed = {s["name"]: s["error"] for s in doc["stems"] if s["error"] is not None}
    assert status == 0 and not failed, f"mixed rates/lengths should all analyse (exit {status}), failed: {failed}"
    unmeasured = [s["name"] for s in doc["stems"] if not isinstance(s["integrated_lufs"], (int, float))]
    assert not unmeasured, f"stems without integrated loudness: {unmeasured}"
    alignment = " | ".join(doc["mix"].get("alignment", []))
    assert "Guitar44k" in alignment and "44100" in alignment, (
        f"mix.alignment does not say the 44.1 kHz stem was resampled: {alignment!r}")
    assert "Shaker" in alignment, f"mix.alignment does not say the shorter stem was padded: {alignment!r}"


# --- markers -----------------------------------------------------------------------------------

REAPER_CSV_SECONDS = "#,Name,Start,End,Length\nR1,Verse,0.000,1.500,1.500\nR2,Chorus,1.500,3.000,1.500\n"
REAPER_CSV_CLOCK = "#,Name,Start,End,Length\nR1,Verse,0:00.000,0:01.500,0:01.500\nR2,Chorus,0:01.500,0:03.000,0:01.500\n"
JSON_LIST = json.dumps([{"name": "Verse", "start_s": 0.0, "end_s": 1.5},
                        {"name": "Chorus", "start_s": 1.5, "end_s": 3.0}])


@pytest.fixture
def three_second_stems(tmp_path) -> Path:
    stems = tmp_path / "stems"
    stems.mkdir()
    sf.write(stems / "Bass.wav", sine(3.0, freq_hz=100.0), 48000, subtype="PCM_24")
    sf.write(stems / "Vox.wav", sine(3.0, channels=1, freq_hz=800.0), 48000, subtype="PCM_24")
    return stems


@pytest.mark.parametrize("file_name, text", [
    ("regions.csv", REAPER_CSV_SECONDS),
    ("regions_clock.csv", REAPER_CSV_CLOCK),
    ("sections.json", JSON_LIST),
], ids=["reaper-csv-seconds", "reaper-csv-m:ss.fff", "json-list"])
def test_markers_become_named_sections(three_second_stems, tmp_path, file_name, text):
    markers = tmp_path / file_name
    markers.write_text(text, encoding="utf-8")

    status, path = analyze_to_json(three_second_stems, tmp_path / "result.json", "--markers", str(markers))

    assert status == 0, f"analysis with {file_name} exited {status}"
    sections = load_strict(path)["mix"]["sections"]
    got = [(s["name"], s["start_s"], s["end_s"], s["source"]) for s in sections]
    want = [("Verse", 0.0, 1.5, "markers"), ("Chorus", 1.5, 3.0, "markers")]
    assert len(got) == len(want) and all(
        g[0] == w[0] and g[3] == w[3] and abs(g[1] - w[1]) < 1e-3 and abs(g[2] - w[2]) < 1e-3
        for g, w in zip(got, want)), f"{file_name}: sections {got}, expected {want}"


def test_markers_in_measures_beats_are_refused_with_E_MARKERS(three_second_stems, tmp_path, capsys):
    markers = tmp_path / "regions_beats.csv"
    markers.write_text("#,Name,Start,End,Length\nR1,Verse,1.1.00,2.1.00,1.0.00\n", encoding="utf-8")
    out = tmp_path / "result.json"

    status, _ = analyze_to_json(three_second_stems, out, "--markers", str(markers))

    err = capsys.readouterr().err
    assert status == 2, f"measures.beats markers should exit 2, got {status}"
    assert "E_MARKERS" in err, f"stderr does not name E_MARKERS: {err!r}"
