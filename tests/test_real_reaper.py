"""Opt-in tier against a real, running REAPER (``pytest -m reaper``).  Off by default.

Needs REAPER running with its web interface on 2307 (or MIXBRIDGE_REAPER_WEB_PORT) and the bridge
server started, and an **empty project open** (the test adds and deletes its own track).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.reaper
WEB_PORT = os.environ.get("MIXBRIDGE_REAPER_WEB_PORT", "2307")


def test_round_trip_against_real_reaper(tmp_path):
    script = f"""
import json, sys
from bridge.daw.reapy_conn import ReapyConnection
from bridge.daw.reapy_target import ReaperTarget
conn = ReapyConnection("127.0.0.1", {WEB_PORT}, 10.0).connect()
n = conn.call("CountTracks", 0)
conn.call("InsertTrackAtIndex", n, True)
tr = conn.call("GetTrack", 0, n)
conn.call("GetSetMediaTrackInfo_String", tr, "P_NAME", "MixBridge test", True)
plan = {{"schema_version": 1, "id": "realreaper", "tracks": [{{"name": "MixBridge test", "status": "ai",
        "automation": [], "changes": [
        {{"target": "track", "param": "volume_db", "value": -6.0, "unit": "dB", "reason": "t"}},
        {{"target": "eq", "param": "band2_type", "value": "peak", "unit": "", "reason": "t"}},
        {{"target": "eq", "param": "band2_freq_hz", "value": 1000.0, "unit": "Hz", "reason": "t"}},
        {{"target": "eq", "param": "band2_gain_db", "value": -3.0, "unit": "dB", "reason": "t"}},
        {{"target": "comp", "param": "ratio", "value": 2.0, "unit": ":1", "reason": "t"}}]}}], "mix": {{}}}}
target = ReaperTarget(conn)
first = target.apply(plan)
second = target.apply(plan)
reverted = target.revert("MixBridge test")
conn.call("DeleteTrack", tr)
print(json.dumps({{"first": len(first.writes), "second": len(second.writes), "verified": first.verified}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["first"] >= 5 and result["second"] == 0 and result["verified"] >= 3
