"""The bounce manifest: the good one round-trips, every malformed one fails with E_MANIFEST."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.errors import MESSAGES, InputFileError
from bridge.manifest import (MANIFEST_NAME, ManifestStem, manifest_dict, new_bounce_id,
                             read_manifest, write_manifest)

GOOD = {
    "schema": "mixbridge-bounce", "schema_version": 1,
    "bounce_id": "20261121T100000Z-3f2a",
    "created_at": "2026-11-21T10:00:00Z",
    "project": "Song.rpp",
    "render_dir": "/elsewhere/MixBridge stems",
    "stems": [
        {"track_guid": "{8A1E0000-0000-4000-8000-000000000001}", "track_name": "Kick",
         "file": "Kick.wav", "sample_rate": 48000},
        {"track_guid": "{8A1E0000-0000-4000-8000-000000000002}", "track_name": 'Lead "Vox" \\ ü',
         "file": "sub/Lead Vox.wav", "sample_rate": 44100},
    ],
}


def _write(tmp_path: Path, document, raw: str | bytes | None = None) -> Path:
    path = tmp_path / MANIFEST_NAME
    if raw is None:
        raw = json.dumps(document)
    if isinstance(raw, str):
        path.write_text(raw, encoding="utf-8")
    else:
        path.write_bytes(raw)
    return path


def test_error_code_is_registered():
    assert "E_MANIFEST" in MESSAGES


def test_good_manifest_reads_into_frozen_dataclasses(tmp_path):
    manifest = read_manifest(_write(tmp_path, GOOD))
    assert manifest.bounce_id == "20261121T100000Z-3f2a"
    assert manifest.created_at_utc == datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)
    assert manifest.project == "Song.rpp"
    assert manifest.render_dir == "/elsewhere/MixBridge stems"
    assert [s.track_name for s in manifest.stems] == ["Kick", 'Lead "Vox" \\ ü']
    # Files resolve against the folder the manifest is in, not the recorded render_dir.
    assert manifest.stems[0].file == tmp_path.absolute() / "Kick.wav"
    assert manifest.stems[1].file == tmp_path.absolute() / "sub" / "Lead Vox.wav"
    assert manifest.stems[1].sample_rate == 44100
    assert isinstance(manifest.stems, tuple)
    with pytest.raises(AttributeError):
        manifest.stems[0].sample_rate = 1  # type: ignore[misc]
    assert [s.track_name for s in manifest.missing()] == ["Kick", 'Lead "Vox" \\ ü']
    (tmp_path / "Kick.wav").write_bytes(b"x")
    assert [s.track_name for s in manifest.missing()] == ['Lead "Vox" \\ ü']
    assert manifest.stem_for_file(tmp_path / "Kick.wav").track_name == "Kick"


def test_utf8_bom_and_integral_float_rate_are_accepted(tmp_path):
    doc = json.loads(json.dumps(GOOD))
    doc["stems"][0]["sample_rate"] = 48000.0
    manifest = read_manifest(_write(tmp_path, None, b"\xef\xbb\xbf" + json.dumps(doc).encode()))
    assert manifest.stems[0].sample_rate == 48000


def test_write_manifest_round_trips_and_leaves_no_tmp(tmp_path):
    stems = [ManifestStem("{11111111-1111-4111-8111-111111111111}", 'Odd "name" \\ \u00e9\u6f22',
                          tmp_path / "Odd.wav", 48000),
             ManifestStem("", "Bass", Path("Bass.wav"), 44100)]
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    path = write_manifest(tmp_path, stems, project="Song.rpp", created_at=when)
    assert path == tmp_path / MANIFEST_NAME
    assert not (tmp_path / (MANIFEST_NAME + ".tmp")).exists()
    manifest = read_manifest(path)
    assert manifest.created_at == "2026-01-02T03:04:05Z"
    assert manifest.bounce_id.startswith("20260102T030405Z-")
    assert [(s.track_guid, s.track_name, s.file, s.sample_rate) for s in manifest.stems] == [
        ("{11111111-1111-4111-8111-111111111111}", 'Odd "name" \\ \u00e9\u6f22', tmp_path / "Odd.wav", 48000),
        ("", "Bass", tmp_path / "Bass.wav", 44100)]
    assert manifest_dict(stems, tmp_path)["stems"][0]["file"] == "Odd.wav"


def test_bounce_ids_are_unique():
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert len({new_bounce_id(now) for _ in range(50)}) > 40  # 16 random bits each


def _mutated(change):
    doc = json.loads(json.dumps(GOOD))
    change(doc)
    return doc


MALFORMED = {
    "not json": (None, "{not json"),
    "truncated": (None, json.dumps(GOOD)[:-10]),
    "top-level list": ([GOOD], None),
    "wrong schema": (_mutated(lambda d: d.update(schema="other")), None),
    "missing schema": (_mutated(lambda d: d.pop("schema")), None),
    "version 2": (_mutated(lambda d: d.update(schema_version=2)), None),
    "version as string": (_mutated(lambda d: d.update(schema_version="1")), None),
    "version true": (_mutated(lambda d: d.update(schema_version=True)), None),
    "unknown top key": (_mutated(lambda d: d.update(extra=1)), None),
    "empty bounce_id": (_mutated(lambda d: d.update(bounce_id=" ")), None),
    "bounce_id number": (_mutated(lambda d: d.update(bounce_id=7)), None),
    "created_at local time": (_mutated(lambda d: d.update(created_at="2026-11-21T10:00:00")), None),
    "created_at impossible": (_mutated(lambda d: d.update(created_at="2026-13-41T10:00:00Z")), None),
    "project null": (_mutated(lambda d: d.update(project=None)), None),
    "render_dir missing": (_mutated(lambda d: d.pop("render_dir")), None),
    "stems empty": (_mutated(lambda d: d.update(stems=[])), None),
    "stems object": (_mutated(lambda d: d.update(stems={})), None),
    "stem not object": (_mutated(lambda d: d["stems"].append("Kick.wav")), None),
    "stem missing file": (_mutated(lambda d: d["stems"][0].pop("file")), None),
    "stem unknown key": (_mutated(lambda d: d["stems"][0].update(gain=1)), None),
    "guid not string": (_mutated(lambda d: d["stems"][0].update(track_guid=None)), None),
    "name not string": (_mutated(lambda d: d["stems"][0].update(track_name=3)), None),
    "absolute file": (_mutated(lambda d: d["stems"][0].update(file="/etc/passwd")), None),
    "windows absolute file": (_mutated(lambda d: d["stems"][0].update(file="C:\\x\\Kick.wav")), None),
    "escaping file": (_mutated(lambda d: d["stems"][0].update(file="../Kick.wav")), None),
    "escaping backslash file": (_mutated(lambda d: d["stems"][0].update(file="a\\..\\..\\Kick.wav")), None),
    "empty file": (_mutated(lambda d: d["stems"][0].update(file="")), None),
    "duplicate file": (_mutated(lambda d: d["stems"][1].update(file="kick.WAV")), None),
    "rate zero": (_mutated(lambda d: d["stems"][0].update(sample_rate=0)), None),
    "rate fractional": (_mutated(lambda d: d["stems"][0].update(sample_rate=44100.5)), None),
    "rate string": (_mutated(lambda d: d["stems"][0].update(sample_rate="48000")), None),
    "rate NaN": (None, json.dumps(GOOD).replace("48000", "NaN")),
    "not utf-8": (None, b'{"schema": "mixbridge-bounce", "project": "\xff"}'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_fails_with_e_manifest(tmp_path, case):
    document, raw = MALFORMED[case]
    path = _write(tmp_path, document, raw)
    with pytest.raises(InputFileError) as caught:
        read_manifest(path)
    assert caught.value.code == "E_MANIFEST"
    assert str(path) in caught.value.detail, "the message names the file"


def test_missing_manifest_file_is_e_manifest(tmp_path):
    with pytest.raises(InputFileError) as caught:
        read_manifest(tmp_path / MANIFEST_NAME)
    assert caught.value.code == "E_MANIFEST"
