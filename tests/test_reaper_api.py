"""Every REAPER function the project calls exists in REAPER's own API list, with the argument count used.

The list (``tests/data/reaper-api.tsv``) is the REAPER SDK's ``sdk/reaper_plugin_functions.h`` (7.78,
github justinfrankel/reaper-sdk), one function a line; ``tests/api_scan.py`` finds the calls and
states the Python and Lua calling conventions the counts follow.  Checked:

- ``bridge/``: reapy calls by name through a dispatcher (``conn.call("X", ...)``, ``self._c("X", ...)``,
  whatever the dispatcher is called) and ``RPR.X``/``reascript_api.X`` uses, with the tuple slots read;
- ``reaper_scripts/``: the Lua ReaScripts' ``reaper.X`` calls and the Python ReaScript's;
- the simulator: every ``@rpr("...")`` signature in ``tests/reaper_sim/`` (types and names exactly as
  the header spells them), its own RPR calls, and the Lua stand-in ``tests/lua/harness.lua``;
- the reapy client snippets in the tests (``RPR.X`` inside strings): the name exists.

The scanner is itself tested on planted bad calls (``tests/data/api_scan/``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api_scan import LUA_BUILTINS, load_api, problems, scan_lua, scan_lua_stubs, scan_paths, scan_python

ROOT = Path(__file__).resolve().parents[1]
API_TSV = ROOT / "tests" / "data" / "reaper-api.tsv"
PLANTED = ROOT / "tests" / "data" / "api_scan"


@pytest.fixture(scope="module")
def api():
    return load_api(API_TSV)


def _project_files() -> list[Path]:
    files = list((ROOT / "bridge").rglob("*.py"))
    files += list((ROOT / "reaper_scripts").rglob("*.py"))
    files += list((ROOT / "reaper_scripts").glob("*.lua"))
    files += list((ROOT / "tests" / "reaper_sim").glob("*.py"))
    return files


def test_the_list_is_reapers_header(api):
    # 868 functions in the 7.78 header; spot checks of the conventions the scanner relies on.
    assert len(api) == 868
    assert [p.name for p in api["TrackFX_GetFXName"].params] == ["track", "fx", "bufOut", "bufOut_sz"]
    assert api["TrackFX_GetFXName"].lua_arity() == (2, 2)
    assert api["InsertEnvelopePoint"].lua_arity() == (6, 7)  # noSortInOptional may be left out
    assert api["GetSetMediaTrackInfo_String"].lua_arity() == (4, 4)  # stringNeedBig is in/out: passed
    assert api["GetUserInputs"].lua_arity() == (4, 4)  # retvals_csv passed, its _sz not
    assert api["GetSetMediaTrackInfo_String"].tuple_slot(3) == "stringNeedBig"
    assert api["GetProjectName"].tuple_slot(1) == "bufOut"  # void: no retval in the tuple
    assert api["CountTracks"].tuple_slot(0) is None  # no outputs: a bare value, not a tuple
    assert not set(LUA_BUILTINS) & set(api)


def test_every_call_in_the_project_is_a_reaper_function_with_the_right_arguments(api):
    scan = scan_paths(_project_files(), ROOT)
    names = {c.name for c in scan.calls}
    # The scan really sees the project: the core calls of each side are among them.
    assert {"CountTracks", "TrackFX_SetParamNormalized", "TrackFX_GetFormattedParamValue"} <= names
    assert {"GetSetProjectInfo_String", "Main_OnCommand", "defer"} <= names
    assert any(c.declared is not None for c in scan.calls), "the simulator's signatures were not found"
    found = list(problems(scan.calls, api))
    found += [f"{u.path}:{u.line}: RPR function name not static: {u.text}" for u in scan.unresolved]
    assert not found, "\n".join(found)


def test_the_simulator_implements_only_reaper_signatures_as_the_header_spells_them(api):
    scan = scan_python(ROOT / "tests" / "reaper_sim" / "api.py")
    declared = [c for c in scan.calls if c.declared is not None]
    assert len(declared) >= 80
    bad = list(problems(declared, api))
    assert not bad, "\n".join(bad)


def test_the_lua_stand_in_defines_only_reaper_functions_with_reapers_lua_arity(api):
    scan = scan_lua_stubs(ROOT / "tests" / "lua" / "harness.lua", "R")
    assert len(scan.calls) >= 20
    bad = list(problems(scan.calls, api))
    assert not bad, "\n".join(bad)
    # and every function the shipped scripts call is stubbed (an unstubbed one errors in the harness)
    used = {c.name for c in scan_paths((ROOT / "reaper_scripts").glob("*.lua"), ROOT).calls}
    assert used <= {c.name for c in scan.calls}, used - {c.name for c in scan.calls}


def test_reapy_snippets_in_the_tests_name_reaper_functions(api):
    bad = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in re.findall(r"\bRPR\.([A-Za-z_][A-Za-z0-9_]*)\s*\(", line):
                if name not in api:
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not bad, "\n".join(bad)


def _expected(path: Path, marker: str) -> dict[int, str]:
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if marker in line:
            out[number] = line.split(marker, 1)[1].strip()
    return out


def _reported(lines: list[str], path: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for text in lines:
        where, message = text.split(": ", 1)
        assert where.rsplit(":", 1)[0].endswith(path.name), text
        out.setdefault(int(where.rsplit(":", 1)[1]), []).append(message)
    return out


@pytest.mark.parametrize("name", ["planted.py", "planted.lua"])
def test_the_scanner_catches_planted_bad_calls_and_nothing_else(api, name):
    path = PLANTED / name
    marker = "# expect:" if name.endswith(".py") else "-- expect:"
    scan = scan_python(path) if name.endswith(".py") else scan_lua(path)
    reported = _reported(list(problems(scan.calls, api)), path)
    for u in scan.unresolved:
        reported.setdefault(u.line, []).append("UNRESOLVED " + u.text)
    expected = _expected(path, marker)
    assert set(reported) == set(expected), (sorted(reported.items()), sorted(expected))
    for line, want in expected.items():
        assert any(want in message for message in reported[line]), (line, want, reported[line])
    # the good calls were seen too (not silently skipped): split over lines, variables, aliases
    seen = {c.name for c in scan.calls}
    if name.endswith(".py"):
        assert {"GetSetMediaTrackInfo_String", "SetMediaTrackInfo_Value", "TrackFX_GetFormattedParamValue",
                "Undo_BeginBlock2", "TrackFX_GetCount", "CountTrackEnvelopes", "TrackFX_GetParamNormalized"} <= seen
    else:
        assert {"TrackFX_SetEnabled", "GetOS", "GetExtState", "ShowConsoleMsg", "defer"} <= seen
        assert not seen & {"NotAFunction", "AlsoNotAFunction", "StillNotAFunction", "NorThis"}


def test_the_stub_check_catches_planted_bad_definitions(api):
    path = PLANTED / "stubs.lua"
    reported = _reported(list(problems(scan_lua_stubs(path, "R").calls, api)), path)
    expected = _expected(path, "-- expect:")
    assert set(reported) == set(expected), (reported, expected)
    for line, want in expected.items():
        assert any(want in message for message in reported[line]), (line, want, reported[line])
