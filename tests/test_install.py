"""``mixbridge install-scripts`` into a temporary REAPER resource path."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.install import SOURCE_DIR, default_resource_path, install_scripts

EXPECTED = {"Scripts/MixBridge/MixBridge_Bounce selected tracks as stems.lua",
            "Scripts/MixBridge/MixBridge_Toggle AB.lua", "Scripts/MixBridge/MixBridge_Revert AI pass.lua",
            "Scripts/MixBridge/MixBridge_Accept all pending.lua", "Scripts/MixBridge/MixBridge_request.lua",
            "Scripts/MixBridge/MixBridge_Start_bridge_server.py", "Effects/MixBridge/channel_polarity.jsfx"}


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["install-scripts", *args], out=out), out.getvalue()


def test_default_resource_path_per_os(tmp_path):
    home = tmp_path / "home"
    assert default_resource_path("linux", {}, home) == home / ".config" / "REAPER"
    assert default_resource_path("linux", {"XDG_CONFIG_HOME": "/xdg"}, home) == Path("/xdg/REAPER")
    assert default_resource_path("darwin", {}, home) == home / "Library" / "Application Support" / "REAPER"
    assert default_resource_path("win32", {"APPDATA": r"C:\Users\me\AppData\Roaming"}, home) == \
        Path(r"C:\Users\me\AppData\Roaming") / "REAPER"


def test_installs_every_file_byte_exact(tmp_path):
    code, text = run_cli("--resource-path", str(tmp_path))
    assert code == 0
    installed = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                 if p.is_file() and not p.name.startswith(".")}
    osc_files = {f"OSC/{p.name}" for p in SOURCE_DIR.glob("*.ReaperOSC")}
    assert installed == EXPECTED | osc_files
    for rel in installed:
        name = Path(rel).name
        source = next(SOURCE_DIR.rglob(name))
        assert (tmp_path / rel).read_bytes() == source.read_bytes(), rel
    assert "copied" in text and "MixBridge_Toggle AB.lua" in text and "Load ReaScript" in text


def test_dry_run_copies_nothing(tmp_path):
    code, text = run_cli("--resource-path", str(tmp_path), "--dry-run")
    assert code == 0 and "would be copied" in text
    assert list(tmp_path.iterdir()) == []


def test_a_resource_path_that_does_not_exist_yet_is_created(tmp_path):
    """REAPER installed but never started: no resource path yet.  It is made, and said so."""
    fresh = tmp_path / "new" / "REAPER"
    code, text = run_cli("--resource-path", str(fresh))
    assert code == 0 and (fresh / "Scripts" / "MixBridge" / "MixBridge_Toggle AB.lua").is_file()
    assert "created" in text.splitlines()[1]


def test_the_hint_lists_every_action_and_not_the_library(tmp_path):
    code, text = run_cli("--resource-path", str(tmp_path))
    hint = text[text.index("Next, in REAPER"):]
    assert code == 0
    for action in ("MixBridge_Bounce selected tracks as stems.lua", "MixBridge_Toggle AB.lua",
                   "MixBridge_Revert AI pass.lua", "MixBridge_Accept all pending.lua",
                   "MixBridge_Start_bridge_server.py"):
        assert action in hint, action
    assert "MixBridge_request.lua" not in hint, "the @noindex library is no action"


def test_a_resource_path_that_is_a_file_is_one_line_with_its_code(tmp_path, capsys):
    (tmp_path / "REAPER").write_text("not a folder")
    code, _ = run_cli("--resource-path", str(tmp_path / "REAPER"))
    err = capsys.readouterr().err
    assert code == 2 and "E_PATH_NOT_FOUND" in err and "Traceback" not in err


def test_reinstall_updates_our_files_and_backs_up_the_users(tmp_path):
    install_scripts(tmp_path)
    ab = tmp_path / "Scripts" / "MixBridge" / "MixBridge_Toggle AB.lua"
    bounce = tmp_path / "Scripts" / "MixBridge" / "MixBridge_Bounce selected tracks as stems.lua"
    assert {s.action for s in install_scripts(tmp_path)} == {"unchanged"}

    ab.write_text("-- my own tweak\n")  # the producer edited it
    source = SOURCE_DIR / "MixBridge_Toggle AB.lua"
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    steps = {str(s.dest): s for s in install_scripts(tmp_path, now=when)}
    step = steps["Scripts/MixBridge/MixBridge_Toggle AB.lua"]
    assert step.action == "updated" and str(step.backup).endswith("MixBridge_Toggle AB.lua.bak-20260102T030405Z")
    assert (tmp_path / step.backup).read_text() == "-- my own tweak\n", "the user's version is kept"
    assert ab.read_bytes() == source.read_bytes()
    assert steps["Scripts/MixBridge/MixBridge_Bounce selected tracks as stems.lua"].action == "unchanged"

    bounce.write_text("-- edited again\n")
    steps = {str(s.dest): s for s in install_scripts(tmp_path, force=True)}
    assert steps["Scripts/MixBridge/MixBridge_Bounce selected tracks as stems.lua"].backup is None
    assert not list(bounce.parent.glob("*Bounce*.bak-*")), "--force: no backup"


def test_a_file_from_an_older_install_is_replaced_without_backup(tmp_path):
    install_scripts(tmp_path)
    record = tmp_path / "Scripts" / "MixBridge" / ".mixbridge-installed.json"
    ab = tmp_path / "Scripts" / "MixBridge" / "MixBridge_Toggle AB.lua"
    # Simulate "we installed an older version": its hash is in the record.
    ab.write_text("-- MixBridge 0.0.1\n")
    import hashlib
    import json
    data = json.loads(record.read_text())
    data["files"]["Scripts/MixBridge/MixBridge_Toggle AB.lua"] = hashlib.sha256(ab.read_bytes()).hexdigest()
    record.write_text(json.dumps(data))
    (step,) = [s for s in install_scripts(tmp_path) if s.dest.name == "MixBridge_Toggle AB.lua"]
    assert step.action == "updated" and step.backup is None
    assert not list(ab.parent.glob("*.bak-*"))


def test_missing_source_dir(tmp_path):
    with pytest.raises(FileNotFoundError):
        install_scripts(tmp_path, source_dir=tmp_path / "nothing")
