"""Benchmark the material builder (tools/material) on one core: a cold build, a variant, a cached load.

Builds the default recipe (15 stems, 36-42 s of music) into an empty cache, pinned to one CPU (the
fluidsynth and espeak-ng children inherit the pin).  Reports, from the same run:

- cold clean-twin build: wall and CPU seconds, and the real-time factor (build time over the
  session's duration; the target is a 30-40 s song with ~14 stems "well under 30 s");
- the default problem variant once its twin is built;
- serving both again from the cache;
- the share of the cold build spent in fluidsynth/espeak-ng children (CPU of waited children).

Usage: python benchmarks/bench_material.py [--seed 1] [--cache DIR] [--cores 1]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="cache folder (default: a fresh temporary one)")
    parser.add_argument("--cores", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-material-")
        args.cache = Path(tmp.name)
    os.environ["MIXBRIDGE_MATERIAL_CACHE"] = str(args.cache)

    from tools.material import DEFAULT_PROBLEMS, Recipe, build_session, missing_tools

    if missing_tools():
        print("missing: " + "; ".join(missing_tools()))
        return 2
    recipe = Recipe(seed=args.seed)
    rows = []
    for label, make in (("clean twin, cold", lambda: build_session(recipe)),
                        ("problem variant (twin cached)", lambda: build_session(recipe.with_problems(*DEFAULT_PROBLEMS))),
                        ("both again, from the cache", lambda: (build_session(recipe),
                                                                build_session(recipe.with_problems(*DEFAULT_PROBLEMS)))[0])):
        own0, kids0 = _cpu()
        start = time.perf_counter()
        session = make()
        wall = time.perf_counter() - start
        own1, kids1 = _cpu()
        rows.append((label, wall, own1 - own0, kids1 - kids0, session))
    clean = rows[0][4]
    print(f"default recipe, seed {args.seed}: {len(clean.stems)} stems, {clean.duration_s:.1f} s, "
          f"{clean.tempo_bpm:g} BPM, {args.cores} core(s)")
    for label, wall, own, kids, _ in rows:
        print(f"  {label:32s} wall {wall:6.2f} s   cpu {own + kids:6.2f} s "
              f"(children {kids:5.2f} s)   real-time factor {wall / clean.duration_s:5.3f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
