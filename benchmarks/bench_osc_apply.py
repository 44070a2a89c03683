"""Benchmark: a 24-track plan applied over OSC against the headless REAPER simulator's OSC surface.

Every track already carries "AI EQ (MixBridge)" and "AI Comp (MixBridge)" (as after one reapy pass),
so the plan's volume/pan/width and EQ/compressor values are all OSC-writable; band types go to
pending.  Reports messages sent, wall time, and the same plan's no-op re-apply.  Baseline in the
same run: learning the session alone (bank size, bank select, refresh 41743, feedback settled),
which every pass starts with.  The simulator runs at REAPER's usual ~30 Hz main loop; the write
rate is the target's default 200 messages/s.

Usage: python benchmarks/bench_osc_apply.py [--tracks 24] [--rate 200]
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_reapy_apply import make_plan  # noqa: E402

from bridge.daw.osc_target import OscTarget  # noqa: E402
from tests.reaper_sim.fixtures import running_sim  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--hz", type=float, default=30.0)
    args = parser.parse_args()
    fx = [{"name": "VST: ReaEQ (Cockos)", "renamed": "AI EQ (MixBridge)"},
          {"name": "VST: ReaComp (Cockos)", "renamed": "AI Comp (MixBridge)"}]
    project = {"tracks": [{"name": f"Track {i + 1:02d}", "fx": fx} for i in range(args.tracks)]}
    plan = make_plan(args.tracks)
    for i, t in enumerate(plan["tracks"]):
        t["name"] = f"Track {i + 1:02d}"
        t.pop("guid", None)
        t["automation"] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        listen = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp, running_sim(
            project, Path(tmp) / "sim", hz=args.hz,
            extra_args=("--osc-port", "0", "--osc-feedback", f"127.0.0.1:{listen}")) as sim:
        target = OscTarget(port=sim.osc_port, listen_port=listen, state_path=Path(tmp) / "osc-state.json",
                           max_msgs_per_s=args.rate)
        t0 = time.perf_counter()
        target.session()
        learn_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = target.apply(plan)
        apply_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = target.apply(plan)
        again_s = time.perf_counter() - t0
        target.close()
    print(f"OSC apply, {args.tracks} tracks, {args.rate:g} msg/s, sim main loop {args.hz:g} Hz")
    print(f"  baseline (learn the session: refresh + settle): {learn_s * 1000:.0f} ms")
    print(f"  apply: {len(report.writes)} writes, {report.round_trips} messages, {apply_s * 1000:.0f} ms "
          f"({apply_s / learn_s:.1f}x baseline), verified {report.verified}, pending {len(report.pending)}")
    print(f"  re-apply (no-op): {len(again.writes)} writes, {again.round_trips} messages, {again_s * 1000:.0f} ms "
          f"({again_s / learn_s:.1f}x baseline)")


if __name__ == "__main__":
    main()
