"""Benchmark: a 24-track plan (about 20 parameter writes per track plus envelopes) applied through
reapy against the headless REAPER simulator, in one undo block.

Reports wall time, round trips and the per-call cost, and the same plan's no-op re-apply.  The
simulator's defer loop runs at REAPER's usual ~30 Hz; inside reapy's hold every call is served at
once, which is what the pass relies on.  Baseline in the same run: one plain ``CountTracks`` round
trip outside a hold.

Usage: python benchmarks/bench_reapy_apply.py [--tracks 24]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reaper_sim.fixtures import running_sim  # noqa: E402


def make_plan(tracks: int) -> dict:
    out = []
    for i in range(tracks):
        changes = [{"target": "track", "param": "volume_db", "value": -3.0 - i % 5, "unit": "dB", "reason": "too_loud"},
                   {"target": "track", "param": "pan", "value": 0.1 * (i % 3), "unit": "", "reason": "pan"},
                   {"target": "track", "param": "width", "value": 0.8, "unit": "", "reason": "width"}]
        kinds = ["highpass", "peak", "peak", "highshelf"]
        for band, kind in enumerate(kinds, start=1):
            changes += [
                {"target": "eq", "param": f"band{band}_type", "value": kind, "unit": "", "reason": "masking"},
                {"target": "eq", "param": f"band{band}_freq_hz", "value": 80.0 * band * band + i, "unit": "Hz", "reason": "masking"},
                {"target": "eq", "param": f"band{band}_gain_db", "value": 0.0 if kind == "highpass" else -2.0, "unit": "dB", "reason": "masking"},
                {"target": "eq", "param": f"band{band}_q", "value": 1.0, "unit": "", "reason": "masking"}]
        changes += [{"target": "comp", "param": p, "value": v, "unit": u, "reason": "dynamics"} for p, v, u in
                    (("threshold_db", -18.0, "dB"), ("ratio", 2.5, ":1"), ("attack_ms", 15.0, "ms"),
                     ("release_ms", 120.0, "ms"), ("makeup_db", 1.5, "dB"))]
        automation = [{"param": "volume_db", "reason": "section_level",
                       "points": [[10.0 * k, 0.0] if k % 2 == 0 else [10.0 * k, 3.0] for k in range(8)]}]
        out.append({"name": f"Track {i + 1:02d}", "role": "keys", "status": "ai", "findings": [],
                    "changes": changes, "automation": automation})
    return {"schema_version": 1, "id": "benchplan", "analysis_id": "", "tracks": out,
            "mix": {"findings": [], "estimated_ai_delta_lu": 0.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=24)
    args = parser.parse_args()
    plan = make_plan(args.tracks)
    writes = sum(len(t["changes"]) for t in plan["tracks"])
    points = sum(len(a["points"]) for t in plan["tracks"] for a in t["automation"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "plan.json").write_text(json.dumps(plan))
        project = {"tracks": [{"name": t["name"]} for t in plan["tracks"]]}
        with running_sim(project, tmp / "sim", hz=30.0) as sim:
            code = ("import sys, time, json\nsys.path.insert(0, %r)\n"
                    "from bridge.daw.reapy_conn import ReapyConnection\nfrom bridge.daw.reapy_target import ReaperTarget\n"
                    "conn = ReapyConnection('127.0.0.1', %d, 10.0).connect()\n"
                    "t = time.perf_counter(); conn.call('CountTracks', 0); single = time.perf_counter() - t\n"
                    "plan = json.load(open(%r))\n"
                    "target = ReaperTarget(conn)\n"
                    "first = target.apply(plan); calls = dict(conn.calls.most_common(8)); second = target.apply(plan)\n"
                    "print(json.dumps({'single_call_s': single, 'first': first.as_dict(), 'second': second.as_dict(), 'calls': calls}, default=str))\n"
                    % (str(ROOT), sim.web_port, str(tmp / "plan.json")))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
            if out.returncode:
                raise SystemExit(out.stderr)
            data = json.loads(out.stdout.strip().splitlines()[-1])
            history = sim.control.dump()["undo"]
    first, second = data["first"], data["second"]
    print(f"plan: {args.tracks} tracks, {writes} parameter writes ({writes / args.tracks:.0f} per track), "
          f"{points} envelope points")
    print(f"apply: {first['seconds']:.3f} s, {first['round_trips']} round trips "
          f"({first['seconds'] / max(first['round_trips'], 1) * 1000:.2f} ms per call), "
          f"{len(first['writes'])} writes, {first['verified']} verified by formatted read-back, undo: {first['undo_name']!r}")
    print(f"re-apply (no-op): {second['seconds']:.3f} s, {second['round_trips']} round trips, "
          f"{len(second['writes'])} writes")
    print(f"baseline: one CountTracks outside a hold at the simulator's 30 Hz defer rate: "
          f"{data['single_call_s'] * 1000:.1f} ms; apply = {first['seconds'] / data['single_call_s']:.1f} such calls")
    print(f"busiest calls in the first pass: {data['calls']}")
    print(f"undo points recorded by the simulator: {json.dumps(history)[:300]}")


if __name__ == "__main__":
    main()
