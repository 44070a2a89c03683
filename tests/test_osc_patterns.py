"""The shipped pattern file against REAPER's rules and against the bridge's one address table."""
from __future__ import annotations

from pathlib import Path

from bridge.daw import osc_addresses as oa
from tests.reaper_sim.osc_surface import load_pattern_file

PATTERN_FILE = Path(__file__).resolve().parents[1] / "reaper_scripts" / "MixBridge.ReaperOSC"

#: Keys of REAPER's shipped ``Default.ReaperOSC`` (reaper.md 1.3, copied verbatim there from
#: Escapism-Fuga/Fuga_PlugData:Default.ReaperOSC and gsvrd/BEAROSC:Default.ReaperOSC).  REAPER
#: takes its list of valid action names from that file and ignores any other key.
DEFAULT_REAPEROSC_KEYS = frozenset("""
DEVICE_TRACK_COUNT DEVICE_SEND_COUNT DEVICE_RECEIVE_COUNT DEVICE_FX_COUNT DEVICE_FX_PARAM_COUNT
DEVICE_FX_INST_PARAM_COUNT DEVICE_MARKER_COUNT DEVICE_REGION_COUNT REAPER_TRACK_FOLLOWS
DEVICE_TRACK_FOLLOWS DEVICE_TRACK_BANK_FOLLOWS DEVICE_FX_FOLLOWS
TRACK_NAME TRACK_NUMBER TRACK_MUTE TRACK_SOLO TRACK_REC_ARM TRACK_MONITOR TRACK_SELECT TRACK_VOLUME
TRACK_PAN TRACK_PAN2 TRACK_PAN_MODE TRACK_VOLUME_TOUCH TRACK_PAN_TOUCH MASTER_VOLUME MASTER_PAN
FX_NAME FX_NUMBER FX_BYPASS FX_PARAM_NAME FX_WETDRY FX_PARAM_VALUE FX_EQ_BAND_GAIN FX_EQ_BAND_FREQ
GOTO_MARKER GOTO_REGION REGION_NAME REGION_TIME REGION_LENGTH ACTION ACTION_SOFT ACTION_RELATIVE
DEVICE_FX_PARAM_BANK_SELECT DEVICE_TRACK_FOLLOWS_DEVICE DEVICE_TRACK_FOLLOWS_LAST_TOUCHED
DEVICE_TRACK_SELECT DEVICE_TRACK_BANK_SELECT
""".split())


def _raw_lines() -> list[list[str]]:
    return [line.split() for line in PATTERN_FILE.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_every_key_is_a_default_reaperosc_key():
    unknown = {words[0] for words in _raw_lines()} - DEFAULT_REAPEROSC_KEYS
    assert not unknown, f"REAPER would ignore these keys: {sorted(unknown)}"


def test_patterns_follow_reapers_rules():
    loaded = load_pattern_file(PATTERN_FILE.read_text())
    assert loaded.rejected == []
    for words in _raw_lines():
        if len(words) > 1 and len(words[1]) > 1 and words[1][1] == "/":
            for word in words[1:]:
                assert word[0] in "nfbtrsi", word
                assert word[1:].startswith("/") and len(word[1:]) <= 512, word


def test_every_table_entry_is_in_the_file_with_the_same_flag():
    loaded = load_pattern_file(PATTERN_FILE.read_text())
    present = {(p.action, p.flag, p.pattern) for p in loaded.patterns}
    for entry in oa.ADDRESSES.values():
        assert (entry.action, entry.flag, entry.pattern) in present, entry
    # and nothing in the file that the bridge does not use (it would only add feedback traffic)
    table = {(e.action, e.flag, e.pattern) for e in oa.ADDRESSES.values()}
    assert present == table


def test_counts_cover_whole_sessions_and_stock_fx():
    settings = load_pattern_file(PATTERN_FILE.read_text()).settings
    assert int(settings["DEVICE_TRACK_COUNT"]) >= 128
    assert int(settings["DEVICE_FX_PARAM_COUNT"]) >= 24  # ReaComp has 24 parameters, ReaEQ 19
    assert int(settings["DEVICE_FX_COUNT"]) >= 8
    assert settings["DEVICE_TRACK_BANK_FOLLOWS"] == "DEVICE"


def test_address_helpers():
    assert oa.address("fx_param", 3, 1, 2) == "/track/3/fx/1/fxparam/2/value"
    assert oa.address("track_volume_db", 1) == "/track/1/volume/db"
    assert oa.bank_of(1, 8) == (1, 1) and oa.bank_of(8, 8) == (1, 8) and oa.bank_of(9, 8) == (2, 1)
    assert oa.absolute_track(3, 4, 8) == 20
    assert oa.parse_feedback("/track/12/fx/2/fxparam/17/value") == oa.Feedback("fx_param", 12, 2, 17)
    assert oa.parse_feedback("/track/1/name") == oa.Feedback("track_name", 1)
    assert oa.parse_feedback("/track/0/name") is None  # numbers are 1-based
    assert oa.parse_feedback("/track/1/volume") is None  # not an address the bridge uses
    for bad in ((0,), (1, 2)):
        try:
            oa.address("track_pan", *bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")
