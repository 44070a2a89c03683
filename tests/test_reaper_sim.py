"""Tests for the headless REAPER simulator (tests/reaper_sim).

Two layers:

* in-process checks of the pure pieces (FX mappings from reaper.md section 3,
  fader scaling, the ReaScript Python calling convention) against
  ``ReaScriptApi`` directly; these never import reapy;
* end-to-end checks with the simulator as a real subprocess and a stock reapy
  client in *another* subprocess (``run_reapy_client``), because reapy's client
  has no timeouts and one process can hold only one reapy connection.
"""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.request

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.reaper_sim import fader_scaling, fx_layouts
from tests.reaper_sim.api import (InvalidPointerError, ReaScriptApi, UnmodelledCall,
                                  modelled_function_names)
from tests.reaper_sim.fixtures import (DEFAULT_PROJECT, expect_result, reaper_sim,  # noqa: F401
                                       run_reapy_client, running_sim, sim_project)
from tests.reaper_sim.project import Project

NULL_TRACK = "(MediaTrack*)0x0000000000000000"


def make_api(tmp_path, project: dict | None = None) -> tuple[ReaScriptApi, dict]:
    api = ReaScriptApi(Project.from_json(project or DEFAULT_PROJECT), str(tmp_path))
    return api, api.functions()


# --------------------------------------------------------------------------
# FX mappings (reaper.md 3)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("freq_hz, table_normalized", [
    (100.0, 0.1406), (1000.0, 0.4766), (10000.0, 0.8542), (20000.0, 0.9696)])
def test_reaeq_frequency_matches_reaper_md_table(freq_hz, table_normalized):
    # reaper.md 3.2: the closed form agrees with the independent table to < 1e-3.
    assert fx_layouts.reaeq_normalized_from_freq_hz(freq_hz) == pytest.approx(
        table_normalized, abs=1e-3)


def test_reaeq_frequency_spans_20_hz_to_24_khz():
    assert fx_layouts.reaeq_freq_hz_from_normalized(0.0) == pytest.approx(20.0)
    assert fx_layouts.reaeq_freq_hz_from_normalized(1.0) == pytest.approx(24000.0)


@given(st.floats(min_value=20.0, max_value=24000.0))
def test_reaeq_frequency_round_trips(freq_hz):
    normalized = fx_layouts.reaeq_normalized_from_freq_hz(freq_hz)
    assert fx_layouts.reaeq_freq_hz_from_normalized(normalized) == pytest.approx(freq_hz, rel=1e-9)


@pytest.mark.parametrize("gain_db, normalized", [
    (0.0, 0.5), (20 * math.log10(0.5), 0.25), (3.0, 0.5684), (6.0, 0.664), (12.0411998, 1.0)])
def test_reaeq_gain_matches_reaper_md(gain_db, normalized):
    assert fx_layouts.reaeq_normalized_from_gain_db(gain_db) == pytest.approx(normalized, abs=2e-3)


def test_reacomp_formatted_values_follow_reaper_md_mappings():
    params = fx_layouts.REACOMP.params
    assert [p.name for p in params[:4]] == ["Threshold", "Ratio", "Attack", "Release"]
    assert len(params) == 24
    threshold, ratio, attack, release = params[:4]
    assert threshold.format_raw(0.5) == "-6.0"          # raw = amplitude, 0 dB at 1.0
    assert threshold.to_normalized(1.0) == 0.5           # norm = amp / 2
    assert ratio.format_raw(ratio.default_raw) == "4.0:1"
    assert ratio.default_raw == pytest.approx(0.0303, abs=1e-4)
    assert attack.format_raw(attack.default_raw) == "3.0"     # ms
    assert release.format_raw(release.default_raw) == "100.0"  # ms


def test_reaeq_bandwidth_shows_octaves_and_unpublished_displays_have_no_formatter():
    # A public table read from a live REAPER: BW 0.5 = 2.00 oct, 0.295 = 1.18 oct, 0.2 = 0.80 oct.
    bandwidth = fx_layouts.REAEQ.params[2]
    assert [bandwidth.format_raw(x) for x in (0.5, 0.295, 0.2)] == ["2.00 oct", "1.18 oct", "0.80 oct"]
    assert fx_layouts.REACOMP.params[6].name == "Lowpass" and fx_layouts.REACOMP.params[6].format_raw is None


def test_reaeq_names_follow_the_band_type_unless_the_fixed_variant():
    reaeq = fx_layouts.REAEQ
    names = [reaeq.param_name(i) for i in range(15)]
    assert names[:6] == ["Freq-Low Shelf", "Gain-Low Shelf", "Q-Low Shelf", "Freq-Band 2", "Gain-Band 2", "BW-Band 2"]
    assert names[12:] == ["Freq-High Pass 5", "Gain-High Pass 5", "Q-High Pass 5"]
    retyped = dict(reaeq.named_config_defaults, BANDTYPE0="4")
    assert [reaeq.param_name(i, retyped) for i in range(3)] == ["Freq-High Pass", "Gain-High Pass", "Q-High Pass"]
    fixed = fx_layouts.build_catalog({"reaeq-names-fixed"})[0]
    assert [fixed.param_name(i, retyped) for i in range(3)] == ["Freq-Low Shelf", "Gain-Low Shelf", "BW-Low Shelf"]


@pytest.mark.parametrize("query, expected", [
    ("ReaEQ", fx_layouts.REAEQ), ("VST: ReaEQ (Cockos)", fx_layouts.REAEQ),
    ("reacomp", fx_layouts.REACOMP), ("VST2:ReaComp (Cockos)", fx_layouts.REACOMP),
    ("VST3: ReaEQ", None), ("ReaEQQ", None), ("Pro-Q 3", None)])
def test_plugin_name_resolution(query, expected):
    assert fx_layouts.find_plugin(query) is expected


# --------------------------------------------------------------------------
# Fader scaling of volume envelopes (reaper.md 1.5, 2.4)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("gain, scaled", [
    (0.5, 592.4), (1.0, 716.0), (10 ** (12 / 20), 1000.0), (10 ** (-150 / 20), 2.5138729793972),
    (0.0, 0.0)])
def test_fader_scaling_hits_documented_anchors(gain, scaled):
    assert fader_scaling.scale_to_envelope_mode(1, gain) == pytest.approx(scaled, rel=1e-6)


@given(st.floats(min_value=1e-9, max_value=8.0))
def test_fader_scaling_round_trips_and_is_monotonic(gain):
    scaled = fader_scaling.scale_to_envelope_mode(1, gain)
    assert fader_scaling.scale_from_envelope_mode(1, scaled) == pytest.approx(gain, rel=1e-9)
    assert fader_scaling.scale_to_envelope_mode(1, gain * 1.01) > scaled


def test_no_scaling_mode_is_identity():
    assert fader_scaling.scale_to_envelope_mode(0, 0.37) == 0.37


# --------------------------------------------------------------------------
# ReaScript Python calling convention, in process
# --------------------------------------------------------------------------

def test_out_params_come_back_in_a_tuple_of_all_arguments(tmp_path):
    api, rpr = make_api(tmp_path)
    track = rpr["GetTrack"](0, 0)
    assert rpr["GetTrackName"](track, "", 2048) == (1, track, "Kick", 2048)
    assert rpr["GetTrackName"](track, "", 3) == (1, track, "Ki", 3)  # cut to buf_sz - 1
    assert rpr["GetProjectName"](0, "", 64) == (0, "Song.rpp", 64)  # void: args only
    assert rpr["CountProjectMarkers"](0, 0, 0) == (3, 0, 1, 2)
    assert rpr["TrackFX_GetParam"](rpr["GetTrack"](0, 1), 0, 0, 0, 0) == (
        1.0, rpr["GetTrack"](0, 1), 0, 0, 0.0, 2.0)


def test_bool_results_are_ints_and_int_params_reject_floats(tmp_path):
    api, rpr = make_api(tmp_path)
    bass = rpr["GetTrack"](0, 1)
    enabled = rpr["TrackFX_GetEnabled"](bass, 0)
    assert enabled == 1 and type(enabled) is int
    with pytest.raises(TypeError, match="int expected"):
        rpr["TrackFX_GetEnabled"](bass, 0.0)
    with pytest.raises(TypeError, match="takes 2 positional"):
        rpr["TrackFX_GetEnabled"](bass)


def test_pointer_handling(tmp_path):
    api, rpr = make_api(tmp_path)
    track = rpr["GetTrack"](0, 0)
    assert track.startswith("(MediaTrack*)0x") and len(track) == len(NULL_TRACK)
    assert rpr["GetTrack"](0, 99) == NULL_TRACK
    # NULL in: REAPER's zero result, outputs untouched.
    assert rpr["GetMediaTrackInfo_Value"](NULL_TRACK, "D_VOL") == 0.0
    assert rpr["GetTrackName"](NULL_TRACK, "", 64) == (0, NULL_TRACK, "", 64)
    # Dangling or mistyped pointers are bugs: loud.
    rpr["DeleteTrack"](track)
    with pytest.raises(InvalidPointerError, match="dangling"):
        rpr["GetMediaTrackInfo_Value"](track, "D_VOL")
    with pytest.raises(InvalidPointerError, match="expected"):
        rpr["TrackFX_GetCount"](track.replace("MediaTrack*", "TrackEnvelope*"))
    assert rpr["ValidatePtr2"](0, track, "MediaTrack*") == 0
    assert rpr["ValidatePtr2"](0, rpr["GetTrack"](0, 0), "MediaTrack*") == 1


def test_reascript_quirks_are_reproduced(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    # GetTrackGUID yields a (GUID*) pointer; the text comes through _String.
    assert rpr["GetTrackGUID"](kick).startswith("(GUID*)0x")
    assert rpr["GetSetMediaTrackInfo_String"](kick, "GUID", "", False)[3] == (
        "{11111111-1111-4111-8111-111111111111}")
    # const char** nameOut is echoed: Python never gets marker names back.
    assert rpr["EnumProjectMarkers3"](0, 0, 0, 0, 0, "", 0, 0) == (
        1, 0, 0, 1, 0.0, 8.0, "", 1, 0)
    # NULL const char* result: the wrapper's str(r.decode()) fails.
    with pytest.raises(AttributeError, match="decode"):
        rpr["Undo_CanUndo2"](0)


def test_unmodelled_parameters_and_actions_raise(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    with pytest.raises(UnmodelledCall, match="I_RECARM"):
        rpr["GetMediaTrackInfo_Value"](kick, "I_RECARM")
    with pytest.raises(UnmodelledCall, match="40001"):
        rpr["Main_OnCommand"](40001, 0)
    bass = rpr["GetTrack"](0, 1)
    with pytest.raises(UnmodelledCall, match="RMS size"):
        rpr["TrackFX_GetFormattedParamValue"](bass, 0, 13, "", 64)
    with pytest.raises(UnmodelledCall, match="vst_chunk"):
        rpr["TrackFX_GetNamedConfigParm"](bass, 0, "vst_chunk", "", 64)


def test_add_by_name_instantiate_semantics(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    assert rpr["TrackFX_AddByName"](kick, "ReaEQ", False, 0) == -1      # query only
    assert rpr["TrackFX_AddByName"](kick, "ReaEQ", False, 1) == 0       # add if missing
    assert rpr["TrackFX_AddByName"](kick, "ReaEQ", False, 1) == 0       # found, not added
    assert rpr["TrackFX_AddByName"](kick, "ReaComp", False, -1) == 1    # always add
    assert rpr["TrackFX_AddByName"](kick, "ReaComp", False, -1000) == 0  # insert first
    assert rpr["TrackFX_AddByName"](kick, "NotAPlugin", False, -1) == -1
    assert rpr["TrackFX_GetCount"](kick) == 3
    assert [rpr["TrackFX_GetFXName"](kick, i, "", 256)[3] for i in range(3)] == [
        "VST: ReaComp (Cockos)", "VST: ReaEQ (Cockos)", "VST: ReaComp (Cockos)"]


def test_nested_undo_blocks_collapse_into_the_outermost(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    rpr["Undo_BeginBlock2"](0)
    rpr["SetMediaTrackInfo_Value"](kick, "D_VOL", 0.5)
    rpr["Undo_BeginBlock2"](0)
    rpr["SetMediaTrackInfo_Value"](kick, "D_PAN", 0.3)
    rpr["Undo_EndBlock2"](0, "inner", -1)
    rpr["Undo_EndBlock2"](0, "outer", -1)
    assert [e.name for e in api.project.undo.entries] == ["outer"]
    assert rpr["Undo_DoUndo2"](0) == 1
    assert rpr["GetMediaTrackInfo_Value"](kick, "D_VOL") == 1.0  # same pointer survives undo
    assert rpr["GetMediaTrackInfo_Value"](kick, "D_PAN") == 0.0
    assert rpr["Undo_CanRedo2"](0) == "outer"
    assert rpr["Undo_DoRedo2"](0) == 1
    assert rpr["GetMediaTrackInfo_Value"](kick, "D_VOL") == 0.5
    with pytest.raises(RuntimeError, match="without a matching"):
        rpr["Undo_EndBlock2"](0, "stray", -1)


def test_undo_restores_fx_chain_that_queries_still_find(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    rpr["Undo_BeginBlock2"](0)
    eq = rpr["TrackFX_AddByName"](kick, "ReaEQ", False, -1)
    rpr["Undo_EndBlock2"](0, "add EQ", -1)
    rpr["Undo_BeginBlock2"](0)
    rpr["TrackFX_Delete"](kick, eq)
    rpr["Undo_EndBlock2"](0, "remove EQ", -1)
    assert rpr["Undo_DoUndo2"](0) == 1
    assert rpr["TrackFX_AddByName"](kick, "ReaEQ", False, 0) == eq


def test_volume_envelope_exists_only_once_shown(tmp_path):
    api, rpr = make_api(tmp_path)
    kick = rpr["GetTrack"](0, 0)
    assert rpr["GetTrackEnvelopeByName"](kick, "Volume") == "(TrackEnvelope*)0x0000000000000000"
    rpr["SetTrackSelected"](kick, True)
    rpr["Main_OnCommand"](40406, 0)  # toggle volume envelope visible on selected tracks
    envelope = rpr["GetTrackEnvelopeByName"](kick, "Volume")
    assert envelope == rpr["GetTrackEnvelopeByChunkName"](kick, "<VOLENV2") != (
        "(TrackEnvelope*)0x0000000000000000")
    assert rpr["GetEnvelopeScalingMode"](envelope) == 1
    rpr["Main_OnCommand"](40406, 0)  # hidden again with no points: gone
    assert rpr["ValidatePtr2"](0, envelope, "TrackEnvelope*") == 0


# --------------------------------------------------------------------------
# The simulator process and a stock reapy client
# --------------------------------------------------------------------------

def test_ready_line_and_loopback_only_sockets(reaper_sim):
    listening = {conn.laddr for conn in psutil.Process(reaper_sim.process.pid).net_connections("tcp")
                 if conn.status == psutil.CONN_LISTEN}
    assert {addr.port for addr in listening} == {
        reaper_sim.web_port, reaper_sim.server_port, reaper_sim.control_port}
    assert {addr.ip for addr in listening} == {"127.0.0.1"}


def test_web_interface_answers_extstate_like_reaper(reaper_sim):
    url = f"http://127.0.0.1:{reaper_sim.web_port}/_/GET/EXTSTATE/reapy/server_port"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    assert body == f"EXTSTATE\treapy\tserver_port\t{reaper_sim.server_port}\n"


def test_reapy_lists_tracks_and_sees_exactly_the_modelled_api(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        project = reapy.Project()
        result["names"] = [track.name for track in project.tracks]
        result["project"] = project.name
        result["api"] = sorted(RPR.__all__)
        result["guid"] = project.tracks["Bass"].get_info_string("GUID")
    """))
    assert result["names"] == ["Kick", "Bass", "Lead Vox"]
    assert result["project"] == "Song.rpp"
    assert result["api"] == modelled_function_names()
    assert result["guid"] == "{22222222-2222-4222-8222-222222222222}"


def test_volume_set_and_get_through_reapy(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        kick = reapy.Project().tracks[0]
        result["before"] = kick.get_info_value("D_VOL")
        kick.set_info_value("D_VOL", 0.5)
        result["after"] = kick.get_info_value("D_VOL")
    """))
    assert result == {"before": 1.0, "after": 0.5}
    assert reaper_sim.control.dump()["tracks"][0]["vol"] == 0.5


def test_fx_add_rename_and_param_formatting(reaper_sim):
    freq_norm = fx_layouts.reaeq_normalized_from_freq_hz(1000.0)
    gain_norm = fx_layouts.reaeq_normalized_from_gain_db(3.0)
    result = expect_result(run_reapy_client(reaper_sim, f"""
        kick = reapy.Project().tracks["Kick"]
        eq = kick.add_fx("ReaEQ")
        RPR.TrackFX_SetNamedConfigParm(kick.id, eq.index, "renamed_name", "AI EQ")
        RPR.TrackFX_SetParamNormalized(kick.id, eq.index, 3, {freq_norm!r})
        RPR.TrackFX_SetParamNormalized(kick.id, eq.index, 4, {gain_norm!r})
        params = eq.params
        result["index"] = eq.index
        result["name"] = eq.name
        result["renamed"] = RPR.TrackFX_GetNamedConfigParm(kick.id, 0, "renamed_name", "", 256)[4]
        result["param_name"] = params[3].name
        result["freq"] = params[3].formatted
        result["gain"] = params[4].formatted
        result["range"] = list(params[15].range)
        result["by_ident"] = RPR.TrackFX_GetParamFromIdent(kick.id, 0, ":wet")
        eq.disable()
        result["enabled"] = eq.is_enabled
    """))
    assert result == {"index": 0, "name": "AI EQ", "renamed": "AI EQ",
                      "param_name": "Freq-Band 2", "freq": "1000.0", "gain": "3.0",
                      "range": [0.0, 4.0], "by_ident": 17, "enabled": False}
    fx = reaper_sim.control.dump()["tracks"][0]["fx"][0]
    assert fx["params"][3]["formatted"] == "1000.0" and fx["enabled"] is False


def test_track_ext_state_round_trip(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        vox = reapy.Project().tracks["Lead Vox"]
        vox.set_info_string("P_EXT:mixbridge", "ai:gain")
        result["read"] = RPR.GetSetMediaTrackInfo_String(vox.id, "P_EXT:mixbridge", "", False)
        RPR.GetSetMediaTrackInfo_String(vox.id, "P_EXT:mixbridge", "", True)  # empty deletes
        result["after_delete"] = RPR.GetSetMediaTrackInfo_String(vox.id, "P_EXT:mixbridge", "", False)
        result["id"] = vox.id
    """))
    track_id = result["id"]
    assert result["read"] == [1, track_id, "P_EXT:mixbridge", "ai:gain", False]
    assert result["after_delete"] == [0, track_id, "P_EXT:mixbridge", "", False]


def test_undo_block_is_recorded_by_name_and_undo_restores(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        project = reapy.Project()
        bass = project.tracks["Bass"]
        with reapy.undo_block("AI mix: gains", -1):
            bass.set_info_value("D_VOL", 0.125)
            RPR.TrackFX_SetParamNormalized(bass.id, 0, 0, 0.25)
        result["can_undo"] = RPR.Undo_CanUndo2(project.id)
        result["undone"] = RPR.Undo_DoUndo2(project.id)
        result["vol"] = bass.get_info_value("D_VOL")
        result["threshold"] = RPR.TrackFX_GetParamNormalized(bass.id, 0, 0)
    """))
    assert result == {"can_undo": "AI mix: gains", "undone": 1, "vol": 0.5, "threshold": 0.5}
    undo = reaper_sim.control.dump()["undo"]
    assert undo["history"] == [] and undo["redo"] == [{"name": "AI mix: gains", "flags": -1}]


def test_volume_envelope_points_through_reapy(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        kick = reapy.Project().tracks["Kick"]
        try:
            kick.envelopes["Volume"]
        except KeyError:
            result["hidden_at_first"] = True
        kick.select()
        RPR.Main_OnCommand(40406, 0)
        env = kick.envelopes["Volume"].id
        mode = RPR.GetEnvelopeScalingMode(env)
        for time_s, gain in [(4.0, 0.5), (0.0, 1.0), (2.0, 2.0)]:
            RPR.InsertEnvelopePoint(env, time_s, RPR.ScaleToEnvelopeMode(mode, gain), 0, 0.0,
                                    False, True)
        RPR.Envelope_SortPoints(env)
        points = [RPR.GetEnvelopePoint(env, i, 0, 0, 0, 0, 0) for i in range(RPR.CountEnvelopePoints(env))]
        result["times"] = [p[3] for p in points]
        result["gains"] = [RPR.ScaleFromEnvelopeMode(mode, p[4]) for p in points]
        RPR.DeleteEnvelopePointRange(env, 1.0, 3.0)
        result["left"] = RPR.CountEnvelopePoints(env)
        result["mode"] = mode
    """))
    assert result["hidden_at_first"] and result["mode"] == 1
    assert result["times"] == [0.0, 2.0, 4.0]
    assert result["gains"] == pytest.approx([1.0, 2.0, 0.5])
    assert result["left"] == 2
    points = reaper_sim.control.dump()["tracks"][0]["envelopes"][0]["points"]
    assert points[0]["value"] == pytest.approx(716.0)  # 0 dB on the fader scale


def test_markers_and_regions(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        result["count"] = RPR.CountProjectMarkers(0, 0, 0)
        result["added"] = RPR.AddProjectMarker2(0, True, 24.0, 40.0, "Chorus", -1, 0)
        result["enum"] = [RPR.EnumProjectMarkers3(0, i, 0, 0, 0, "", 0, 0) for i in range(5)]
    """))
    assert result["count"] == [3, 0, 1, 2]
    assert result["added"] == 3  # the third region
    # (retval, proj, idx, isrgn, pos, end, name echoed, number, color), by position.
    assert [e[0] for e in result["enum"]] == [1, 2, 3, 4, 0]
    assert [(e[3], e[4], e[7]) for e in result["enum"][:4]] == [
        (1, 0.0, 1), (1, 8.0, 2), (0, 12.0, 1), (1, 24.0, 3)]
    regions = reaper_sim.control.dump()["regions"]
    assert [r["name"] for r in regions] == ["Intro", "Verse", "Chorus"]


def test_unmodelled_calls_raise_naming_the_function(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        from reapy.errors import DistError
        project = reapy.Project()
        try:
            project.bpm  # runs server-side and needs GetProjectTimeSignature2
        except DistError as error:
            result["server_side"] = str(error).strip().splitlines()[-1]
        try:
            RPR.GetProjectTimeSignature2
        except AttributeError as error:
            result["client_side"] = str(error)
        try:
            project.tracks[0].get_info_value("I_RECARM")
        except DistError as error:
            result["parameter"] = str(error).strip().splitlines()[-1]
    """))
    assert "UnmodelledCall" in result["server_side"]
    assert "GetProjectTimeSignature2" in result["server_side"]
    assert "GetProjectTimeSignature2" in result["client_side"]
    assert "I_RECARM" in result["parameter"]


def test_manual_edit_through_control_is_visible_to_reapy(reaper_sim):
    control = reaper_sim.control
    control.set_track("Kick", "D_VOL", 0.25)
    control.set_fx_param("Bass", "VST: ReaComp (Cockos)", "Threshold", normalized=0.25)
    result = expect_result(run_reapy_client(reaper_sim, """
        project = reapy.Project()
        result["vol"] = project.tracks[0].get_info_value("D_VOL")
        bass = project.tracks[1]
        result["threshold"] = RPR.TrackFX_GetFormattedParamValue(bass.id, 0, 0, "", 64)[4]
        result["last_undo"] = RPR.Undo_CanUndo2(0)
    """))
    assert result["vol"] == 0.25
    assert result["threshold"] == "-6.0"
    assert result["last_undo"].startswith("Manual edit")
    assert control.calls()["counts"].get("SetMediaTrackInfo_Value") is None  # not an RPR call


def test_explicit_web_port_is_used(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_sim(DEFAULT_PROJECT, tmp_path, extra_args=("--web-port", str(port))) as sim:
        assert sim.web_port == port


def test_state_out_is_written_on_shutdown(tmp_path):
    with running_sim(DEFAULT_PROJECT, tmp_path) as sim:
        sim.control.set_track(2, "D_PAN", 0.75)
        assert sim.stop() == 0
    state = json.loads(sim.state_out.read_text())
    assert state["tracks"][2]["pan"] == 0.75
    assert Project.from_json(state).tracks[2].pan == 0.75  # the dump loads back


# --------------------------------------------------------------------------
# Faults, observed by a real reapy client
# --------------------------------------------------------------------------

def test_armed_drop_fails_the_call_and_reconnect_recovers(reaper_sim):
    reaper_sim.control.arm("drop", on_function="CountTracks")
    result = expect_result(run_reapy_client(reaper_sim, """
        status, value = call_with_deadline(lambda: RPR.CountTracks(0), 5.0)
        result["status"], result["error"] = status, type(value).__name__
        reapy.reconnect()
        result["after_reconnect"] = RPR.CountTracks(0)
    """))
    assert result["status"] == "error"
    assert result["error"] in {"ConnectionAbortedError", "ConnectionResetError", "BrokenPipeError"}
    assert result["after_reconnect"] == 3


def test_drop_now_breaks_an_open_connection(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        result["before"] = RPR.CountTracks(0)
        result["dropped"] = control.drop()
        status, value = call_with_deadline(lambda: RPR.CountTracks(0), 5.0)
        result["status"], result["error"] = status, type(value).__name__
    """))
    assert result["before"] == 3 and result["dropped"] == 1
    assert result["status"] == "error"
    assert result["error"] in {"ConnectionAbortedError", "ConnectionResetError", "BrokenPipeError"}


def test_stall_until_release_leaves_the_client_waiting(reaper_sim):
    result = expect_result(run_reapy_client(reaper_sim, """
        control.stall()
        status, _ = call_with_deadline(lambda: RPR.CountTracks(0), 0.5)
        result["status"] = status
    """))
    assert result["status"] == "timeout"
    reaper_sim.control.release()
    result = expect_result(run_reapy_client(reaper_sim, "result['n'] = RPR.CountTracks(0)"))
    assert result == {"n": 3}


def test_armed_stall_for_seconds_delays_the_reply(reaper_sim):
    reaper_sim.control.arm("stall", on_function="GetTrack", seconds=0.4)
    result = expect_result(run_reapy_client(reaper_sim, """
        import time
        started = time.monotonic()
        status, value = call_with_deadline(lambda: RPR.GetTrack(0, 0), 5.0)
        result["status"], result["elapsed"] = status, time.monotonic() - started
    """))
    assert result["status"] == "ok"
    assert 0.4 <= result["elapsed"] < 5.0


@pytest.mark.parametrize("trigger", [{"on_function": "TrackFX_SetParam"}, {"at_call": 3}])
def test_die_mid_call_is_seen_as_a_dead_connection(reaper_sim, trigger):
    reaper_sim.control.arm("die", exit_code=77, **trigger)
    outcome = run_reapy_client(reaper_sim, """
        bass = RPR.GetTrack(0, 1)
        RPR.TrackFX_GetCount(bass)
        status, value = call_with_deadline(lambda: RPR.TrackFX_SetParam(bass, 0, 0, 0.5), 5.0)
        result["status"], result["error"] = status, type(value).__name__
    """)
    result = expect_result(outcome)
    assert result["status"] == "error"
    assert result["error"] in {"ConnectionAbortedError", "ConnectionResetError"}
    assert reaper_sim.wait_exit(timeout_s=5.0) == 77
    assert "dying" in reaper_sim.stderr_text()


def test_die_now_from_the_control_channel(reaper_sim):
    reaper_sim.control.die(exit_code=91)
    assert reaper_sim.wait_exit(timeout_s=5.0) == 91


def _kill_a_client_inside_a_hold(sim) -> None:
    # reapy.md 2.5: in reapy 0.10's Server._hold_connection the closed connection becomes a
    # "disconnect" request; the reply to it is then sent on the socket disconnect() just closed,
    # an OSError (EBADF) that nothing catches, so the deferred server loop raises and ends.
    outcome = run_reapy_client(sim, """
        import os
        with reapy.inside_reaper():
            RPR.CountTracks(0)
            os._exit(0)
    """)
    assert outcome.returncode == 0
    deadline = time.monotonic() + 5.0
    while "deferred script error" not in sim.stderr_text():
        assert time.monotonic() < deadline, "reapy's server loop did not die"
        time.sleep(0.02)  # polling a condition with a deadline
    assert "Bad file descriptor" in sim.stderr_text()


def _web(sim, command: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{sim.web_port}/_/{command}", timeout=5) as reply:
        return reply.read().decode()


def test_a_client_dying_in_a_hold_leaves_reaper_with_a_dead_server_and_a_stale_port(reaper_sim):
    _kill_a_client_inside_a_hold(reaper_sim)
    state = reaper_sim.control.reapy_state()
    port = reaper_sim.server_port
    # The loop is dead, its socket still listens (reapy's Deferrer keeps the failed callback and
    # with it SERVER), and REAPER did not run the at-exit code that would clear server_port.
    assert state["loop_running"] is False
    assert state["listening_ports"] == [port]
    assert state["server_port"] == str(port)
    assert _web(reaper_sim, "GET/EXTSTATE/reapy/server_port") == f"EXTSTATE\treapy\tserver_port\t{port}\n"
    # What a client meets: the kernel accepts the connection, the greeting never comes.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(8)
    # Running the activation again cannot bind the port the dead server still holds.
    _web(reaper_sim, "_RSreaper_sim_activate_reapy_server")
    after = reaper_sim.control.reapy_state()
    assert after["failed_activations"] == 1 and after["loop_running"] is False
    assert "Address already in use" in reaper_sim.stderr_text()
    assert after["server_port"] == str(port)


def test_with_atexit_after_error_the_port_is_cleared_but_still_held(tmp_path):
    # The other reading of REAPER (at-exit code runs after a script error): server_port is
    # cleared, so a client would run the activation action, which still cannot bind the port.
    with running_sim(DEFAULT_PROJECT, tmp_path / "sim", extra_args=("--atexit-after-error",)) as sim:
        _kill_a_client_inside_a_hold(sim)
        state = sim.control.reapy_state()
        assert state["server_port"] == "" and state["listening_ports"] == [sim.server_port]
        _web(sim, "_RSreaper_sim_activate_reapy_server")
        assert sim.control.reapy_state()["failed_activations"] == 1
