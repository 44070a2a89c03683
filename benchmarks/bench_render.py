"""Benchmark `mixbridge render` against plain decode of the same stems, measured in one run.

Generates (once, cached) a session of 12 stereo stems, 48 kHz, 24-bit WAV, 60 s long.  Reports, for
the same files in the same run:

- the time soundfile takes merely to decode the stems (sequentially, 1 s float32 blocks): the baseline;
- ``render_plan`` with the planner's own plan for the session (what `mixbridge render` does), with
  and without the two mixes;
- ``render_plan`` with a worst-case plan: every stem gets a 4-band EQ, a compressor, a fader move, a
  volume envelope, width and pan;
- the compressor alone on one stem's audio (already in memory), over that stem's decode time.

Ratios, not seconds, are the result: these machines are shared and noisy.  The renderer runs in one
process (the analysis uses a worker per core); ratios are against the sequential decode.

Usage: python benchmarks/bench_render.py [--stems 12] [--seconds 60] [--cache DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bridge.render import render_plan  # noqa: E402
from bridge.render.dynamics import StreamingCompressor, reaper_comp  # noqa: E402

# The session generator, the decode baseline and best-of timing are bench_analyze's, so the two
# benchmarks measure against the same baseline.
from bench_analyze import decode, session  # noqa: E402


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``fn``, wall seconds (the machine is shared: the best run is the
    least disturbed one)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def change(target: str, param: str, value) -> dict:
    return {"target": target, "param": param, "value": value, "unit": "", "reason": "bench", "suggestion": "b/0"}


def worst_case_plan(paths: list[Path], seconds: float) -> dict:
    tracks = []
    for i, p in enumerate(paths):
        changes = [change("track", "volume_db", -2.0), change("track", "width", 0.8), change("track", "pan", 0.1)]
        for band, (kind, freq, gain) in enumerate((("highpass", 60.0, 0.0), ("lowshelf", 200.0, 2.0),
                                                   ("peak", 1200.0 + 10 * i, -4.0), ("highshelf", 8000.0, 1.5)), 1):
            changes += [change("eq", f"band{band}_type", kind), change("eq", f"band{band}_freq_hz", freq),
                        change("eq", f"band{band}_gain_db", gain), change("eq", f"band{band}_q", 0.9)]
        changes += [change("comp", "threshold_db", -30.0), change("comp", "ratio", 3.0),
                    change("comp", "attack_ms", 10.0), change("comp", "release_ms", 120.0),
                    change("comp", "makeup_db", 2.0)]
        points = [[seconds * 0.3, 0.0], [seconds * 0.3 + 0.1, 4.0], [seconds * 0.6, 4.0], [seconds * 0.6 + 0.1, 0.0]]
        tracks.append({"name": p.stem, "status": "ai", "changes": changes,
                       "automation": [{"param": "volume_db", "points": points}]})
    return {"schema_version": 1, "id": "bench-worst-case", "tracks": tracks}


def planner_plan(folder: Path) -> dict:
    from bridge.pipeline import analyze_session, plan_session
    from bridge.suggest.plan import plan_dict

    return plan_dict(plan_session(analyze_session([folder])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stems", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mixbridge-bench-render"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    print("command: python benchmarks/bench_render.py " + " ".join(sys.argv[1:]), flush=True)
    folder = Path(args.cache) / f"s{args.stems}_t{args.seconds:g}"
    print(f"session: {args.stems} stereo stems x {args.seconds:g} s, 48 kHz / 24-bit WAV ({folder})", flush=True)
    paths = session(folder, args.stems, args.seconds / 60.0)
    for p in paths:  # warm the file cache
        decode(str(p))
    decode_s = best_of(lambda: [decode(str(p)) for p in paths], args.repeat)
    print(f"  baseline: sequential decode of all stems {decode_s:.3f} s", flush=True)

    planned = planner_plan(folder)
    moves = sum(len(t["changes"]) + len(t["automation"]) for t in planned["tracks"])
    ai_tracks = sum(1 for t in planned["tracks"] if t["status"] == "ai")
    print(f"  planner's plan: {ai_tracks} of {len(planned['tracks'])} tracks with moves ({moves} changes)", flush=True)
    worst = worst_case_plan(paths, args.seconds)
    report = {"stems": args.stems, "seconds": args.seconds, "decode_s": round(decode_s, 3), "cases": []}
    with tempfile.TemporaryDirectory(prefix="mixbridge-bench-render-") as scratch:
        cases = [("planner's plan, with mixes", planned, True), ("planner's plan, stems only", planned, False),
                 ("worst case (every stem: 4-band EQ, comp, fader, envelope, width, pan), with mixes", worst, True)]
        for label, plan, mixes in cases:
            out = Path(scratch) / "out"
            seconds = best_of(lambda: render_plan(plan, folder, out, mixes=mixes), args.repeat)
            entry = {"case": label, "render_s": round(seconds, 3), "render_over_decode": round(seconds / decode_s, 2)}
            report["cases"].append(entry)
            print("  " + json.dumps(entry), flush=True)

    data, rate = sf.read(str(paths[0]), dtype="float32", always_2d=True)
    one_decode = best_of(lambda: decode(str(paths[0])), args.repeat)

    def compress():
        comp = StreamingCompressor(reaper_comp(-30.0, 3.0, 10.0, 120.0), rate, data.shape[1])
        for start in range(0, len(data), rate):
            comp.process(data[start:start + rate])
    comp_s = best_of(compress, args.repeat)
    report["compressor_over_decode"] = round(comp_s / one_decode, 2)
    report["compressor_ms_per_audio_s"] = round(comp_s / (len(data) / rate) * 1000, 3)
    report["planner_moves"] = moves
    print(f"\nsummary (ratios measured in this run; baseline {decode_s:.3f} s to decode "
          f"{args.stems} x {args.seconds:g} s):")
    for e in report["cases"]:
        print(f"  render, {e['case']}: {e['render_over_decode']}x decode ({e['render_s']:.2f} s)")
    print(f"  compressor alone: {report['compressor_over_decode']}x the decode of the same stem "
          f"({report['compressor_ms_per_audio_s']} ms per second of stereo audio)")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
