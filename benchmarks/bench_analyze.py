"""Benchmark `mixbridge analyze` against plain decoding and the loudness meters, in one run.

Generates (once, kept in --cache) a session of 24 stereo stems, 48 kHz / 24-bit WAV, 4 minutes
long, then runs every tool that is installed on the same files, each as its own process tree,
median of --repeat runs (min-max beside it), and prints the table of issue 15:

| tool | / sequential decode | CPU s | peak tree RSS |

- plain decode: soundfile in 1 s float32 blocks, sequentially and in 2 processes (the floor);
- ``mixbridge analyze`` (python -m bridge analyze, everything it measures, start-up included);
  with --tree, also the same command from another source tree (before/after in one run);
- ffmpeg ``ebur128`` with true peak, 2 files at a time;
- pyloudnorm, integrated loudness only, 2 processes;
- libebur128 through pyebur128: I + LRA + true peak, 2 processes.

CPU seconds and peak RSS are summed over the whole process tree (main, fork server, workers),
sampled from /proc every 50 ms.  Ratios, not seconds, are the result: the machine is shared.
With --rebounce, bench_rebounce.py runs afterwards and its figures are printed too.

Usage: python benchmarks/bench_analyze.py [--stems 24] [--minutes 4] [--repeat 3] [--tree DIR] [--rebounce]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import soundfile as sf  # noqa: E402

from bridge.synth import StemSpec, write_session  # noqa: E402

ROLES = ["kick", "snare", "hats", "bass", "pad", "keys", "guitar", "vocal", "backing", "synth", "fx", "strings"]
TICK = os.sysconf("SC_CLK_TCK")


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


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent, CPU ticks, RSS KiB) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
            with open(f"/proc/{entry}/statm") as fh:
                rss_pages = int(fh.read().split()[1])
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        table[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]), rss_pages * os.sysconf("SC_PAGE_SIZE") // 1024)
    return table


def measure(cmd: list[str], cwd: Path = ROOT, env: dict | None = None, ok: tuple[int, ...] = (0,)) -> dict:
    """Run ``cmd`` as a process tree; wall s, CPU s and peak RSS (MiB) summed over the tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu: dict[int, int] = {}
    peak_kib = 0
    deadline = time.monotonic() + 1800
    while proc.poll() is None and time.monotonic() < deadline:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)
        tree, stack = [], [proc.pid]
        while stack:
            pid = stack.pop()
            tree.append(pid)
            stack.extend(children.get(pid, []))
        peak_kib = max(peak_kib, sum(table[p][2] for p in tree if p in table))
        for p in tree:
            if p in table:
                cpu[p] = max(cpu.get(p, 0), table[p][1])
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return {"wall_s": wall, "cpu_s": sum(cpu.values()) / TICK, "rss_mib": peak_kib / 1024}


_DECODE = ("import sys, soundfile as sf\n"
           "from concurrent.futures import ProcessPoolExecutor\n"
           "def d(p):\n"
           "    for b in sf.blocks(p, blocksize=48000, dtype='float32', always_2d=True): pass\n"
           "if __name__ == '__main__':\n"
           "    files = sys.argv[2:]\n"
           "    if sys.argv[1] == '1':\n"
           "        [d(p) for p in files]\n"
           "    else:\n"
           "        with ProcessPoolExecutor(int(sys.argv[1])) as pool: list(pool.map(d, files))\n")
_PYLOUDNORM = ("import sys, soundfile as sf, pyloudnorm as pyln\n"
               "from concurrent.futures import ProcessPoolExecutor\n"
               "def m(p):\n"
               "    data, rate = sf.read(p, dtype='float64')\n"
               "    return pyln.Meter(rate).integrated_loudness(data)\n"
               "if __name__ == '__main__':\n"
               "    with ProcessPoolExecutor(2) as pool: list(pool.map(m, sys.argv[1:]))\n")
_PYEBUR128 = ("import sys, soundfile as sf\n"
              "from concurrent.futures import ProcessPoolExecutor\n"
              "from pyebur128 import MeasurementMode as M, R128State, get_loudness_global, get_loudness_range, get_true_peak\n"
              "def m(p):\n"
              "    info = sf.info(p)\n"
              "    st = R128State(info.channels, info.samplerate, M.MODE_I | M.MODE_LRA | M.MODE_TRUE_PEAK)\n"
              "    for b in sf.blocks(p, blocksize=48000, dtype='float64', always_2d=True):\n"
              "        st.add_frames(b.ravel(), len(b))\n"
              "    return get_loudness_global(st), get_loudness_range(st), [get_true_peak(st, c) for c in range(info.channels)]\n"
              "if __name__ == '__main__':\n"
              "    with ProcessPoolExecutor(2) as pool: list(pool.map(m, sys.argv[1:]))\n")
_FFMPEG = ("import sys, subprocess\n"
           "from concurrent.futures import ThreadPoolExecutor\n"
           "def m(p):\n"
           "    subprocess.run(['ffmpeg', '-nostats', '-hide_banner', '-i', p, '-filter_complex', 'ebur128=peak=true',"
           " '-f', 'null', '-'], check=True, capture_output=True)\n"
           "with ThreadPoolExecutor(2) as pool: list(pool.map(m, sys.argv[1:]))\n")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def tools(folder: Path, paths: list[Path], trees: list[tuple[str, Path]]) -> list[tuple[str, list[str], Path, dict | None]]:
    files = [str(p) for p in paths]
    py = sys.executable
    rows = [("plain decode (soundfile blocks), sequential", [py, "-c", _DECODE, "1", *files], ROOT, None),
            ("plain decode, 2 processes", [py, "-c", _DECODE, "2", *files], ROOT, None)]
    out = Path(tempfile.gettempdir()) / f"mixbridge-bench-{os.getpid()}.json"
    for label, tree in trees:
        env = dict(os.environ, PYTHONPATH=str(tree))
        rows.append((f"mixbridge analyze{label} (everything it measures)",
                     [py, "-m", "bridge", "analyze", str(folder), "--json", str(out)], tree, env))
    if shutil.which("ffmpeg"):
        rows.append(("ffmpeg ebur128 with true peak, 2 at a time", [py, "-c", _FFMPEG, *files], ROOT, None))
    if _installed("pyloudnorm"):
        rows.append(("pyloudnorm, integrated only, 2 processes", [py, "-c", _PYLOUDNORM, *files], ROOT, None))
    if _installed("pyebur128"):
        rows.append(("libebur128 (pyebur128) I + LRA + true peak, 2 processes", [py, "-c", _PYEBUR128, *files], ROOT, None))
    return rows


def _kernel(tree: Path) -> str:
    code = "from bridge.analyze.kweight import KERNEL; print(KERNEL)"
    try:
        return subprocess.run([sys.executable, "-c", code], cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                              capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        return "scipy (no kernel module)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mixbridge-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", action="append", default=[],
                        help="also run 'mixbridge analyze' from this source tree (e.g. an export of main)")
    parser.add_argument("--rebounce", action="store_true", help="then run bench_rebounce.py and print its figures")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    folder = Path(args.cache) / f"s{args.stems}_m{args.minutes:g}"
    print(f"session: {args.stems} stereo stems x {args.minutes:g} min, 48 kHz / 24-bit WAV ({folder}), "
          f"{len(os.sched_getaffinity(0))} cores", flush=True)
    paths = session(folder, args.stems, args.minutes)
    size = sum(p.stat().st_size for p in paths)
    for p in paths:  # warm the page cache
        decode(str(p))
    trees = [("", ROOT)] + [(f" [{Path(t).name}]", Path(t).resolve()) for t in args.tree]
    rows = tools(folder, paths, trees)
    runs: dict[str, list[dict]] = {label: [] for label, *_ in rows}
    load = [os.getloadavg()[0]]
    for attempt in range(args.repeat):  # interleaved, so a burst of load hits every tool alike
        for label, cmd, cwd, env in rows:
            runs[label].append(measure(cmd, cwd, env, ok=(0, 1) if env is not None else (0,)))
            print(f"  run {attempt + 1}: {label}: {runs[label][-1]['wall_s']:.2f} s", flush=True)
        load.append(os.getloadavg()[0])
    base = statistics.median(r["wall_s"] for r in runs[rows[0][0]])
    print(f"\n{args.stems} x {args.minutes:g} min stereo 48 kHz/24-bit ({size / 1e9:.2f} GB); median of {args.repeat}; "
          f"K-weighting kernel: {', '.join(f'{l or ROOT.name}: {_kernel(t)}' for l, t in trees)}; "
          f"load average during the runs {min(load):.2f}-{max(load):.2f}\n")
    print("| tool | ÷ sequential decode (min-max) | wall s | CPU s | peak tree RSS |")
    print("|---|---|---|---|---|")
    report = {"stems": args.stems, "minutes": args.minutes, "bytes": size, "rows": []}
    for label, *_ in rows:
        walls = [r["wall_s"] for r in runs[label]]
        entry = {"tool": label, "ratio": statistics.median(walls) / base, "ratio_min": min(walls) / base,
                 "ratio_max": max(walls) / base, "wall_s": statistics.median(walls),
                 "cpu_s": statistics.median(r["cpu_s"] for r in runs[label]),
                 "rss_mib": max(r["rss_mib"] for r in runs[label])}
        report["rows"].append(entry)
        print(f"| {label} | {entry['ratio']:.2f} ({entry['ratio_min']:.2f}-{entry['ratio_max']:.2f}) | "
              f"{entry['wall_s']:.2f} | {entry['cpu_s']:.1f} | {entry['rss_mib']:.0f} MiB |")
    mine = next(r for r in report["rows"] if r["tool"].startswith("mixbridge analyze ("))
    print(f"\ntargets: analyze {mine['ratio']:.2f}x sequential decode (<= 2.5, stretch 2.0): "
          f"{'met' if mine['ratio'] <= 2.5 else 'missed'}; peak tree RSS {mine['rss_mib']:.0f} MiB (<= 350): "
          f"{'met' if mine['rss_mib'] <= 350 else 'missed'}")
    if args.rebounce:
        out = Path(tempfile.gettempdir()) / f"mixbridge-rebounce-{os.getpid()}.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_rebounce.py"), "--stems", str(args.stems),
                        "--minutes", f"{args.minutes:g}", "--cache", args.cache, "--repeat", str(args.repeat),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        rb = json.loads(out.read_text())
        report["rebounce"] = rb
        print("\n| re-bounce (same run; cache warm, fork server warm) | ÷ full pass (min-max) |\n|---|---|")
        for key, label in (("rebounce_over_full", f"1 of {args.stems} changed"),
                           ("rebounce_all_rewritten_over_full", "every file rewritten, one changed"),
                           ("no_change_over_full", "nothing changed")):
            lo, hi = rb[key + "_range"]
            print(f"| {label} | {rb[key]:.1%} ({lo:.1%}-{hi:.1%}) |")
        print(f"| 1 of {args.stems} changed, the first time for that stem (its group summed again) | "
              f"{rb['rebounce_first_over_full']:.1%} |")
        print(f"\ncache on disk: {rb['cache_mib_end']:.0f} MiB = {rb['cache_over_session']:.1%} of the session "
              f"(<= 35%: {'met' if rb['cache_over_session'] <= 0.35 else 'missed'}); the cache adds "
              f"{rb['cache_cost_in_full_pass']:+.1%} to a full pass; re-bounce <= 10%: "
              f"{'met' if rb['rebounce_over_full'] <= 0.10 else 'missed'}; all rewritten <= 12%: "
              f"{'met' if rb['rebounce_all_rewritten_over_full'] <= 0.12 else 'missed'}; "
              f"incremental mix equals a fresh pass: {rb['mix_equals_fresh_full_pass']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
