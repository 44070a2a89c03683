"""Benchmark `mixbridge analyze` against decode-only and pyloudnorm baselines, measured in one run.

Generates (once, cached) a session of 24 stereo stems, 48 kHz, 24-bit WAV, 4 minutes long, and a
12-minute one.  Reports, for the same files in the same run:

- the full analysis wall time over the time soundfile takes merely to decode the files
  (sequentially, 1 s float32 blocks), and over a parallel decode on the same worker count;
- the ratio to pyloudnorm's integrated loudness + loudness range per stem (read + measure);
- peak RSS of the analysing process and of its largest worker, for 4 and 12 minutes.

Ratios, not seconds, are the result: these machines are shared and noisy.

Usage: python benchmarks/bench_analyze.py [--stems 24] [--minutes 4 12] [--cache DIR] [--skip-pyloudnorm]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bridge.synth import StemSpec, write_session  # noqa: E402

ROLES = ["kick", "snare", "hats", "bass", "pad", "keys", "guitar", "vocal", "backing", "synth", "fx", "strings"]


def session(folder: Path, stems: int, minutes: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".complete"
    specs = [StemSpec(f"{i:02d}_{ROLES[i % len(ROLES)]}", ROLES[i % len(ROLES)], -18.0 - (i % 5),
                      pan=((i % 7) - 3) / 4, seed=100 + i) for i in range(stems)]
    if not marker.exists():
        t = time.perf_counter()
        write_session(folder, specs, duration_s=minutes * 60.0)
        marker.write_text("ok")
        print(f"  generated {stems} x {minutes} min in {time.perf_counter() - t:.1f} s", flush=True)
    return sorted(folder.glob("*.wav"))


def decode(path: str) -> int:
    frames = 0
    for block in sf.blocks(path, blocksize=48000, dtype="float32", always_2d=True):
        frames += len(block)
    return frames


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def pyloudnorm_baseline(paths: list[Path]) -> float:
    import pyloudnorm as pyln

    t = time.perf_counter()
    for p in paths:
        data, rate = sf.read(str(p), dtype="float64")
        meter = pyln.Meter(rate)
        meter.integrated_loudness(data)
        meter.loudness_range(data)
    return time.perf_counter() - t


def _tree_rss_kib(root: int) -> tuple[int, int]:
    """(RSS of ``root``, sum of RSS over ``root`` and all its descendants), KiB, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return rss.get(root, 0), total


def run_analysis(folder: Path) -> dict:
    """Run the analysis in a fresh process; return its wall time and peak RSS figures.

    RSS of the whole process tree (main, forkserver, workers) is sampled every 50 ms from /proc,
    for as long as the analysis runs (bounded by the subprocess's own end).
    """
    code = (
        "import json, resource, sys, time\n"
        "from bridge.pipeline import analyze_session\n"
        "t = time.perf_counter()\n"
        f"r = analyze_session([{str(folder)!r}])\n"
        "wall = time.perf_counter() - t\n"
        # VmHWM, not ru_maxrss: on Linux ru_maxrss of an exec'd child starts from its parent's
        # RSS at fork time, which would charge the benchmark's own memory to the analysis.
        "own = int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'wall_s': wall, 'main_rss_kib': own, 'largest_worker_rss_kib': kids,"
        " 'stems_ok': len(r.ok), 'mix_lufs': r.mix.summed.loudness.integrated_lufs}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    peak_main = peak_tree = 0
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        main_kib, tree_kib = _tree_rss_kib(proc.pid)
        peak_main, peak_tree = max(peak_main, main_kib), max(peak_tree, tree_kib)
        time.sleep(0.05)
    stdout, _ = proc.communicate(timeout=60)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["sampled_main_rss_kib"] = peak_main
    result["sampled_tree_rss_kib"] = peak_tree
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--minutes", type=float, nargs="+", default=[4.0, 12.0])
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mixbridge-bench"))
    parser.add_argument("--skip-pyloudnorm", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    report = {"stems": args.stems, "jobs": jobs, "sessions": []}
    for minutes in args.minutes:
        folder = Path(args.cache) / f"s{args.stems}_m{minutes:g}"
        print(f"session: {args.stems} stereo stems x {minutes:g} min, 48 kHz / 24-bit WAV ({folder})", flush=True)
        paths = session(folder, args.stems, minutes)
        for p in paths:  # warm the file cache
            decode(str(p))
        seq = best_of(lambda: [decode(str(p)) for p in paths], args.repeat)
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(decode, map(str, paths)))
            par = best_of(lambda: list(pool.map(decode, map(str, paths))), args.repeat)
        runs = [run_analysis(folder) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["wall_s"])
        entry = {
            "minutes": minutes,
            "decode_sequential_s": round(seq, 3),
            "decode_parallel_s": round(par, 3),
            "analyze_wall_s": round(best["wall_s"], 3),
            "analyze_over_decode": round(best["wall_s"] / seq, 2),
            "analyze_over_parallel_decode": round(best["wall_s"] / par, 2),
            "main_peak_rss_mib": round(max(r["main_rss_kib"] for r in runs) / 1024, 1),
            "tree_peak_rss_mib": round(max(r["sampled_tree_rss_kib"] for r in runs) / 1024, 1),
            "mix_integrated_lufs": round(best["mix_lufs"], 2),
        }
        if not args.skip_pyloudnorm and minutes == min(args.minutes):
            pyl = pyloudnorm_baseline(paths)
            entry["pyloudnorm_i_lra_s"] = round(pyl, 3)
            entry["pyloudnorm_over_decode"] = round(pyl / seq, 2)
            entry["analyze_over_pyloudnorm"] = round(best["wall_s"] / pyl, 3)
        report["sessions"].append(entry)
        print("  " + json.dumps(entry), flush=True)
    print("\nsummary (ratios measured in this run):")
    for e in report["sessions"]:
        line = (f"  {e['minutes']:g} min: analyze = {e['analyze_over_decode']}x sequential decode "
                f"({e['analyze_over_parallel_decode']}x parallel decode), peak RSS main {e['main_peak_rss_mib']} MiB, "
                f"whole process tree {e['tree_peak_rss_mib']} MiB")
        if "pyloudnorm_over_decode" in e:
            line += f"; pyloudnorm I+LRA = {e['pyloudnorm_over_decode']}x decode"
        print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
