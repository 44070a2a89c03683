"""Benchmark: the control-surface server on loopback against the headless REAPER simulator.

1. Latency from a surface command to the parameter landing in the project: a python-osc surface
   sends ``/mixbridge/accept`` (then ``/mixbridge/reject``) for one volume suggestion to a
   ``mixbridge surface --target reaper`` process; the time until the simulator's project shows the
   new (then the restored) ``D_VOL``, read over the simulator's control channel.  Median and p99 over
   ``--runs`` accept/reject pairs.  Baselines measured in the same run: one plain reapy call round trip
   (``GetMediaTrackInfo_Value``, outside a hold) and one control-channel read (the poll's own cost).
2. Sustained feedback rate to one subscribed surface: ``--messages`` distinct feedback values are
   queued as fast as possible; the server drains them at its documented throttle (10 messages per
   25 ms tick, 400/s); reported: the rate received and how many were lost.

Usage: python benchmarks/bench_surface.py [--runs 30] [--tracks 8] [--hz 30] [--messages 1200]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pythonosc.osc_bundle import OscBundle  # noqa: E402
from pythonosc.osc_message import OscMessage  # noqa: E402
from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402

from tests.reaper_sim.fixtures import running_sim  # noqa: E402


def osc(address: str, *args) -> bytes:
    b = OscMessageBuilder(address=address)
    for v in args:
        b.add_arg(v)
    return b.build().dgram


def make_plan(tracks: int) -> dict:
    out = []
    for i in range(tracks):
        name = f"Track {i + 1:02d}"
        sid = f"{name}/too_loud/0"
        out.append({"name": name, "status": "ai", "findings": [], "automation": [],
                    "changes": [{"target": "track", "param": "volume_db", "value": -6.0, "unit": "dB",
                                 "reason": "too_loud", "suggestion": sid}],
                    "suggestions": [{"id": sid, "code": "too_loud", "summary": "down 6 dB", "has_moves": True}]})
    return {"schema_version": 1, "id": "benchsurface0001", "analysis_id": "", "settings": {"amount": 1.0},
            "tracks": out, "mix": {"findings": [], "estimated_ai_delta_lu": 0.0}}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def wait_vol(sim, want: float, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if abs(sim.control.dump()["tracks"][0]["vol"] - want) < 1e-6:
            return
    raise SystemExit(f"the volume never reached {want} within {timeout_s} s")


def latency(args, tmp: Path) -> None:
    plan = make_plan(args.tracks)
    (tmp / "plan.json").write_text(json.dumps(plan))
    project = {"tracks": [{"name": t["name"]} for t in plan["tracks"]]}
    with running_sim(project, tmp / "sim", hz=args.hz) as sim:
        code = ("import sys, time, json, statistics\nsys.path.insert(0, %r)\n"
                "from bridge.daw.reapy_conn import ReapyConnection\n"
                "conn = ReapyConnection('127.0.0.1', %d, 10.0).connect()\n"
                "tr = conn.call('GetTrack', 0, 0); out = []\n"
                "for _ in range(%d):\n"
                "    t = time.perf_counter(); conn.call('GetMediaTrackInfo_Value', tr, 'D_VOL'); "
                "out.append(time.perf_counter() - t)\n"
                "print(json.dumps(out))\n" % (str(ROOT), sim.web_port, args.runs))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        if done.returncode:
            raise SystemExit(done.stderr)
        reapy_rt = json.loads(done.stdout.strip().splitlines()[-1])
        poll_rt = []
        for _ in range(args.runs):
            t = time.perf_counter()
            sim.control.dump()
            poll_rt.append(time.perf_counter() - t)

        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "bridge", "surface", "--plan", str(tmp / "plan.json"),
                                 "--target", "reaper", "--web-port", str(sim.web_port), "--port", "0"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = proc.stdout.readline()
            port = int(line.split("udp://", 1)[1].split()[0].rsplit(":", 1)[1])
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dest = ("127.0.0.1", port)
            sid = plan["tracks"][0]["suggestions"][0]["id"]
            down = 10 ** (-6 / 20)
            # Warm-up: the first command connects reapy in the surface process.
            sock.sendto(osc("/mixbridge/accept", sid), dest)
            wait_vol(sim, down, 30.0)
            sock.sendto(osc("/mixbridge/reject", sid), dest)
            wait_vol(sim, 1.0)
            accept_s, reject_s = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                sock.sendto(osc("/mixbridge/accept", sid), dest)
                wait_vol(sim, down)
                accept_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                sock.sendto(osc("/mixbridge/reject", sid), dest)
                wait_vol(sim, 1.0)
                reject_s.append(time.perf_counter() - t)
            sock.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=15)
    ms = lambda v: f"median {statistics.median(v) * 1000:.1f} ms, p99 {pct(v, 0.99) * 1000:.1f} ms"  # noqa: E731
    print(f"simulator at {args.hz:g} Hz defer rate, {args.tracks}-track plan, {args.runs} runs")
    print(f"  surface accept -> D_VOL in the project: {ms(accept_s)}")
    print(f"  surface reject -> D_VOL restored:       {ms(reject_s)}")
    print(f"  baseline, one plain reapy call round trip:  {ms(reapy_rt)}")
    print(f"  baseline, one control-channel read (poll):  {ms(poll_rt)}")
    print(f"  accept = {statistics.median(accept_s) / statistics.median(reapy_rt):.1f} plain reapy round trips (median)")


def feedback_rate(args) -> None:
    from bridge.control import server as srv
    from bridge.control.controller import SessionController
    from bridge.control.server import SurfaceServer
    from bridge.daw.base import PlanTarget

    controller = SessionController(PlanTarget(None), make_plan(2))
    server = SurfaceServer(controller, port=0).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    got: list[tuple[float, str]] = []
    stop = threading.Event()

    def receive():
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                continue
            items = list(OscBundle(data)) if data.startswith(b"#bundle") else [OscMessage(data)]
            now = time.perf_counter()
            got.extend((now, m.address) for m in items)
    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    try:
        sock.sendto(osc("/mixbridge/subscribe", sock.getsockname()[1]), server.address)
        deadline = time.monotonic() + 5
        while not any(a == "/mixbridge/status" for _, a in got) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the dump drain before measuring
        got.clear()
        start = time.perf_counter()
        for i in range(args.messages):  # distinct addresses: nothing coalesces, everything must arrive
            server._broadcast([(f"/mixbridge/bench/{i}", (i,))])
        deadline = time.monotonic() + args.messages / srv.MAX_MESSAGES_PER_S * 2 + 5
        while len(got) < args.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        received = [a for _, a in got if a.startswith("/mixbridge/bench/")]
        span = got[-1][0] - start if got else float("nan")
        order_ok = received == [f"/mixbridge/bench/{i}" for i in range(len(received))]
    finally:
        stop.set()
        reader.join(2)
        server.stop()
        sock.close()
    print(f"feedback: {args.messages} distinct values queued at once; received {len(received)} "
          f"(lost {args.messages - len(received)}) in {span:.2f} s = {len(received) / span:.0f} messages/s "
          f"(documented throttle {srv.MAX_MESSAGES_PER_S}/s: {srv.MAX_MESSAGES_PER_FLUSH} per "
          f"{srv.FLUSH_INTERVAL_S * 1000:.0f} ms tick); in order: {order_ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--hz", type=float, default=30.0, help="simulator defer rate (REAPER's is ~30 Hz)")
    parser.add_argument("--messages", type=int, default=1200)
    args = parser.parse_args()
    print("command: python benchmarks/bench_surface.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        latency(args, Path(tmp))
    feedback_rate(args)


if __name__ == "__main__":
    main()
