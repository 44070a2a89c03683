"""The in-REAPER Lua scripts, for real: syntax-checked with luac5.4 and run under lua5.4 against a
stubbed ``reaper`` table (tests/lua/harness.lua) that records what they do."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridge.manifest import MANIFEST_NAME, read_manifest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "reaper_scripts"
HARNESS = REPO / "tests" / "lua" / "harness.lua"
BOUNCE = SCRIPTS / "MixBridge_Bounce selected tracks as stems.lua"
LUAC = shutil.which("luac5.4") or shutil.which("luac")
LUA = shutil.which("lua5.4")
needs_lua = pytest.mark.skipif(LUA is None, reason="lua5.4 is not installed (apt-get install lua5.4)")

USER_RENDER = {"RENDER_SETTINGS": 129, "RENDER_BOUNDSFLAG": 2, "RENDER_ADDTOPROJ": 3, "RENDER_SRATE": 96000,
               "RENDER_FILE": "/somewhere/renders", "RENDER_PATTERN": "$project-$region",
               "RENDER_FORMAT": "bDNwbSAAAAABAAAA//8="}
ODD_NAME = 'Lead "Vox" \\ d\u00e9j\u00e0 \u6f22 /x'


def lua_literal(value) -> str:
    """Python value -> Lua literal; strings byte-exact through decimal escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, bytes)):
        data = value.encode("utf-8") if isinstance(value, str) else value
        safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,/{}()$=;:")
        return '"' + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in data) + '"'
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


@dataclass
class Run:
    events: list[list[str]]
    state: list[list[str]]
    stdout: str
    stderr: str
    returncode: int
    extra: dict = field(default_factory=dict)

    def kinds(self, kind: str) -> list[list[str]]:
        return [e[1:] for e in self.events if e[0] == kind]

    def state_of(self, kind: str) -> list[list[str]]:
        return [s[1:] for s in self.state if s[0] == kind]

    def render_state(self) -> dict[str, str]:
        return {k: v for k, v in self.state_of("render")}

    def values(self) -> dict[tuple[str, str], float]:
        return {(t, a): float(v) for t, a, v in self.state_of("value")}

    def fx(self) -> dict[tuple[str, str], str]:
        return {(t, n): e for t, n, e in self.state_of("fx")}


def run_lua(tmp_path: Path, script: Path, fixture: dict) -> Run:
    fixture_path = tmp_path / "fixture.lua"
    fixture_path.write_text("return " + lua_literal(fixture) + "\n", encoding="utf-8")
    done = subprocess.run([LUA, str(HARNESS), str(fixture_path), str(script)], capture_output=True,
                          timeout=20, cwd=tmp_path)
    stdout = done.stdout.decode("utf-8", errors="replace")
    events, state = [], []
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "EVENT":
            events.append(fields[1:])
        elif fields[0] == "STATE":
            state.append(fields[1:])
    run = Run(events, state, stdout, done.stderr.decode(errors="replace"), done.returncode)
    assert done.returncode == 0, f"harness failed:\n{stdout}\n{run.stderr}"
    assert not run.state_of("script_error"), run.state_of("script_error")
    return run


def project(tmp_path: Path, **overrides) -> dict:
    (tmp_path / "proj").mkdir(exist_ok=True)
    fixture = {
        "project_file": str(tmp_path / "proj" / "Song.rpp"),
        "sample_rate": 44100,
        "render": dict(USER_RENDER),
        "tracks": [
            {"name": "Kick", "guid": "{11111111-1111-4111-8111-111111111111}", "selected": True,
             "D_VOL": 0.8, "D_PAN": 0.1,
             "ext": {"mixbridge/pre_ai": "D_VOL=0.5;D_PAN=0;BOGUS=3"},
             "fx": [{"renamed": "My EQ"}, {"renamed": "AI EQ (MixBridge)"},
                    {"renamed": "AI Comp (MixBridge)"}]},
            {"name": ODD_NAME, "guid": "{22222222-2222-4222-8222-222222222222}", "selected": True,
             "B_PHASE": 1, "ext": {"mixbridge/pre_ai": "B_PHASE=0"},
             "fx": [{"renamed": "AI Polarity (MixBridge)", "enabled": False}]},
            {"name": "Bus child", "guid": "{33333333-3333-4333-8333-333333333333}", "selected": False,
             "D_WIDTH": 0.5, "ext": {"mixbridge/pre_ai": "D_WIDTH=1"},
             "fx": [{"renamed": "AI Comp (MixBridge)"}]},
        ],
    }
    fixture.update(overrides)
    return fixture


# --- syntax and headers ------------------------------------------------------------------------------

def lua_files() -> list[Path]:
    return sorted(SCRIPTS.glob("*.lua")) + sorted((REPO / "tests" / "lua").glob("*.lua"))


@pytest.mark.skipif(LUAC is None, reason="luac5.4 is not installed (apt-get install lua5.4)")
@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_every_lua_script_compiles(path):
    done = subprocess.run([LUAC, "-p", str(path)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr


def test_the_expected_scripts_exist():
    names = {p.name for p in SCRIPTS.glob("*.lua")}
    assert {"MixBridge_Bounce selected tracks as stems.lua", "MixBridge_Toggle AB.lua",
            "MixBridge_Revert AI pass.lua", "MixBridge_Accept all pending.lua",
            "MixBridge_request.lua"} <= names


@pytest.mark.parametrize("path", sorted(SCRIPTS.glob("MixBridge_*.lua")) + [SCRIPTS / "MixBridge_Start_bridge_server.py"],
                         ids=lambda p: p.name)
def test_reapack_headers(path):
    text = path.read_text(encoding="utf-8")
    head = text[:3000]
    comment = "#" if path.suffix == ".py" else "--"
    if path.name == "MixBridge_request.lua":
        assert head.startswith(f"{comment} @noindex"), "the shared library is not an action of its own"
        return
    for tag in ("@description", "@version", "@author", "@about"):
        assert re.search(rf"^{re.escape(comment)} {tag}\b", head, re.M), f"{path.name}: no {tag}"
    version = re.search(rf"^{re.escape(comment)} @version (\S+)", head, re.M).group(1)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    if "request.lua" in text:
        assert "[nomain] MixBridge_request.lua" in head, "the request scripts @provide the shared library"


# --- the bounce script --------------------------------------------------------------------------------

@needs_lua
def test_bounce_renders_pre_ai_state_restores_everything_and_writes_manifest_last(tmp_path):
    fixture = project(tmp_path)
    run = run_lua(tmp_path, BOUNCE, fixture)
    stem_dir = tmp_path / "proj" / "MixBridge stems"

    # Render settings: set to the documented values, then restored exactly, in reverse order.
    sets = run.kinds("set_render")
    assert sets[:6] == [["RENDER_SETTINGS", "2"], ["RENDER_BOUNDSFLAG", "1"], ["RENDER_ADDTOPROJ", "0"],
                        ["RENDER_FILE", str(stem_dir)], ["RENDER_PATTERN", "$track"],
                        ["RENDER_FORMAT", "evaw"]]
    assert [k for k, _ in sets[6:]] == ["RENDER_FORMAT", "RENDER_PATTERN", "RENDER_FILE",
                                         "RENDER_ADDTOPROJ", "RENDER_BOUNDSFLAG", "RENDER_SETTINGS"]
    final = run.render_state()
    assert final["RENDER_FILE"] == USER_RENDER["RENDER_FILE"]
    assert final["RENDER_PATTERN"] == USER_RENDER["RENDER_PATTERN"]
    assert final["RENDER_FORMAT"] == USER_RENDER["RENDER_FORMAT"]
    for key in ("RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_ADDTOPROJ", "RENDER_SRATE"):
        assert float(final[key]) == USER_RENDER[key], key

    # What the render saw.
    (begin,) = run.kinds("render_begin")
    assert begin == ["2", "1", "0", str(stem_dir), "$track", "evaw", "no_manifest"]
    during_fx = {(t, n): e for t, n, e in run.kinds("render_fx")}
    assert during_fx == {("Kick", "My EQ"): "true", ("Kick", "AI EQ (MixBridge)"): "false",
                         ("Kick", "AI Comp (MixBridge)"): "false",
                         (ODD_NAME, "AI Polarity (MixBridge)"): "false",
                         ("Bus child", "AI Comp (MixBridge)"): "false"}, "every AI FX bypassed, the user's FX not"
    during = {(t, a): float(v) for t, a, v in run.kinds("render_value")}
    assert during[("Kick", "D_VOL")] == 0.5 and during[("Kick", "D_PAN")] == 0.0
    assert during[(ODD_NAME, "B_PHASE")] == 0.0
    assert during[("Bus child", "D_WIDTH")] == 1.0, "unselected tracks feeding a stem are pre-AI too"

    # Afterwards: everything as the user left it (an already-bypassed AI FX stays bypassed).
    assert run.fx() == {("Kick", "My EQ"): "true", ("Kick", "AI EQ (MixBridge)"): "true",
                        ("Kick", "AI Comp (MixBridge)"): "true",
                        (ODD_NAME, "AI Polarity (MixBridge)"): "false",
                        ("Bus child", "AI Comp (MixBridge)"): "true"}
    values = run.values()
    assert values[("Kick", "D_VOL")] == 0.8 and values[("Kick", "D_PAN")] == 0.1
    assert values[(ODD_NAME, "B_PHASE")] == 1.0 and values[("Bus child", "D_WIDTH")] == 0.5
    assert run.state_of("ui_prevent") == [["0"]], "PreventUIRefresh balanced"
    assert run.state_of("undo_depth") == [["0"]]
    assert ["MixBridge: bounce selected tracks as stems", "-1"] in run.kinds("undo_end")

    # The manifest comes last, atomically, after every stem.
    order = [e[0] for e in run.events]
    (rename,) = run.kinds("rename")
    assert rename == [str(stem_dir / (MANIFEST_NAME + ".tmp")), str(stem_dir / MANIFEST_NAME), "from_exists"]
    assert order.index("rename") > max(i for i, kind in enumerate(order) if kind == "wrote")
    assert order.index("rename") > order.index("render_end")
    assert not (stem_dir / (MANIFEST_NAME + ".tmp")).exists()

    manifest = read_manifest(stem_dir / MANIFEST_NAME)
    assert [s.track_name for s in manifest.stems] == ["Kick", ODD_NAME], "odd names survive JSON escaping"
    assert [s.track_guid for s in manifest.stems] == ["{11111111-1111-4111-8111-111111111111}",
                                                      "{22222222-2222-4222-8222-222222222222}"]
    assert [s.sample_rate for s in manifest.stems] == [44100, 44100], "read from the WAV header"
    assert all(s.file.is_file() and s.file.parent == stem_dir for s in manifest.stems)
    assert manifest.project == "Song.rpp" and manifest.render_dir == str(stem_dir)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", manifest.bounce_id)
    assert ["mixbridge/last_bounce", manifest.bounce_id, "false"] in run.kinds("set_ext")


@needs_lua
def test_bounce_removes_the_previous_manifest_before_rendering(tmp_path):
    stem_dir = tmp_path / "proj" / "MixBridge stems"
    stem_dir.mkdir(parents=True)
    (stem_dir / MANIFEST_NAME).write_text("old")
    run = run_lua(tmp_path, BOUNCE, project(tmp_path))
    assert run.kinds("render_begin")[0][-1] == "no_manifest"
    assert read_manifest(stem_dir / MANIFEST_NAME).stems


@needs_lua
def test_render_error_restores_everything_and_writes_no_manifest(tmp_path):
    run = run_lua(tmp_path, BOUNCE, project(tmp_path, render_error="disk full"))
    stem_dir = tmp_path / "proj" / "MixBridge stems"
    assert not (stem_dir / MANIFEST_NAME).exists() and not run.kinds("rename")
    assert float(run.render_state()["RENDER_SETTINGS"]) == 129
    assert run.render_state()["RENDER_FORMAT"] == USER_RENDER["RENDER_FORMAT"]
    assert run.values()[("Kick", "D_VOL")] == 0.8
    assert run.fx()[("Kick", "AI EQ (MixBridge)")] == "true"
    (box,) = run.kinds("message_box")
    assert "disk full" in box[1] and "restored" in box[1]
    assert run.state_of("undo_depth") == [["0"]] and run.state_of("ui_prevent") == [["0"]]


@needs_lua
def test_a_stem_missing_after_render_means_no_manifest(tmp_path):
    run = run_lua(tmp_path, BOUNCE, project(tmp_path, skip_file="Kick"))
    assert not (tmp_path / "proj" / "MixBridge stems" / MANIFEST_NAME).exists()
    (box,) = run.kinds("message_box")
    assert "Kick.wav" in box[1]


@needs_lua
def test_nothing_selected_changes_nothing(tmp_path):
    fixture = project(tmp_path)
    for track in fixture["tracks"]:
        track["selected"] = False
    run = run_lua(tmp_path, BOUNCE, fixture)
    assert not run.kinds("set_render") and not run.kinds("render_begin")
    assert "Select the tracks" in run.kinds("message_box")[0][1]


@needs_lua
def test_unsaved_project_is_refused(tmp_path):
    run = run_lua(tmp_path, BOUNCE, project(tmp_path, project_file=""))
    assert not run.kinds("set_render")
    assert "save the project" in run.kinds("message_box")[0][1]


@needs_lua
@pytest.mark.parametrize("configured", ["absolute", "relative"])
def test_render_dir_from_project_extstate(tmp_path, configured):
    target = tmp_path / "watched" if configured == "absolute" else tmp_path / "proj" / "bounces"
    value = str(target) if configured == "absolute" else "bounces"
    run = run_lua(tmp_path, BOUNCE, project(tmp_path, proj_ext={"mixbridge/render_dir": value}))
    assert run.kinds("render_begin")[0][3] == str(target)
    assert read_manifest(target / MANIFEST_NAME).render_dir == str(target)


@needs_lua
def test_names_that_are_not_utf8_or_have_control_characters_still_give_valid_json(tmp_path):
    fixture = project(tmp_path)
    fixture["tracks"][0]["name"] = b"Caf\xe9 \x01tab\x7f"
    run = run_lua(tmp_path, BOUNCE, fixture)
    manifest = read_manifest(tmp_path / "proj" / "MixBridge stems" / MANIFEST_NAME)
    assert manifest.stems[0].track_name == "Caf\u00e9 \x01tab\x7f"
    assert run.kinds("rename")


# --- the request scripts --------------------------------------------------------------------------------

REQUEST_SCRIPTS = {"ab": "MixBridge_Toggle AB.lua", "revert": "MixBridge_Revert AI pass.lua",
                   "accept_all": "MixBridge_Accept all pending.lua"}


def ext(run: Run) -> dict[str, tuple[str, str]]:
    return {k: (v, p) for k, v, p in run.state_of("ext")}


@needs_lua
@pytest.mark.parametrize("command", sorted(REQUEST_SCRIPTS))
def test_request_script_appends_and_shows_the_reply(tmp_path, command):
    run = run_lua(tmp_path, SCRIPTS / REQUEST_SCRIPTS[command],
                  {"ext_state": {"mixbridge/request_seq": "41", "mixbridge/requests": "40 ab;41 revert"},
                   "reply_at_tick": 4, "reply_text": "A/B: now A (pre-AI), master +1.5 dB"})
    state = ext(run)
    assert state["mixbridge/requests"] == (f"40 ab;41 revert;42 {command}", "volatile")
    assert state["mixbridge/request_seq"] == ("42", "persisted")
    tooltips = [e[0] for e in run.kinds("tooltip")]
    assert tooltips == ["MixBridge: A/B: now A (pre-AI), master +1.5 dB", ""], "shown, then cleared"
    assert not run.kinds("message_box")
    ticks = int(run.state_of("ticks")[0][0])
    assert ticks < 4 + 3.0 / 0.033 + 5, "the defer loop ends"


@needs_lua
def test_request_queue_keeps_the_last_16(tmp_path):
    queued = ";".join(f"{n} ab" for n in range(1, 21))
    run = run_lua(tmp_path, SCRIPTS / REQUEST_SCRIPTS["revert"],
                  {"ext_state": {"mixbridge/requests": queued}, "reply_at_tick": 1})
    entries = ext(run)["mixbridge/requests"][0].split(";")
    assert len(entries) == 16
    assert entries[0] == "6 ab" and entries[-1] == "21 revert", "seq above everything still queued"


@needs_lua
def test_a_reply_to_another_request_is_not_taken_and_the_wait_is_bounded(tmp_path):
    run = run_lua(tmp_path, SCRIPTS / REQUEST_SCRIPTS["ab"],
                  {"ext_state": {"mixbridge/reply": "7 old answer"}})
    assert not run.kinds("tooltip")
    (box,) = run.kinds("message_box")
    assert "did not answer" in box[1] and "web interface" in box[1]
    ticks = int(run.state_of("ticks")[0][0])
    assert 5.0 / 0.033 - 2 <= ticks <= 5.0 / 0.033 + 2, ticks
    assert ext(run)["mixbridge/requests"][0] == "1 ab"
