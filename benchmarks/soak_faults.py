"""Fault-schedule soak of the reapy target against the headless REAPER simulator (issue 11).

Runs ``--count`` seeded schedules (default 200): a starting session, one bridge operation (apply,
a changed apply, revert, A/B), a fault at a stratified RPR call of it (dropped connection, stall
past the budget, late answer, reapy's server dying, REAPER dying), the producer's edits while the
bridge is away, sometimes a second fault during the recovery; then the next connection recovers
and the session is checked: fully applied or untouched, undo and PreventUIRefresh balanced, the
journal gone, every producer edit intact (tests/fault_soak.py).  Prints the figures; exits 1 if
any schedule failed.  Same-run baseline: the clean operations' own time (``clean pass``).

``--sweep FAULT:SETUP:OP`` adds one schedule per RPR call of that operation (e.g.
``drop:fresh:apply``: a dropped connection before each of the first pass's calls, in turn).

Usage: python benchmarks/soak_faults.py [--seed 1] [--count 200] [--sweep drop:fresh:apply] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fault_soak import Figures, Soak, schedules, sweep  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--sweep", action="append", default=[], metavar="FAULT:SETUP:OP",
                        help="also one schedule per RPR call of OP on SETUP with FAULT (repeatable)")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mixbridge-soak-") as work:
        with Soak(Path(work)) as runner:
            prepared = time.monotonic() - started
            outcomes = [runner.run(s) for s in schedules(args.seed, args.count, runner.calls)]
            soaked = time.monotonic() - started
            sweeps = []
            for spec in args.sweep:
                fault, setup, op = spec.split(":")
                began = time.monotonic()
                swept = [runner.run(s) for s in sweep(setup, op, fault, runner.calls)]
                sweeps.append((spec, Figures(swept, time.monotonic() - began)))
    figures = Figures(outcomes, soaked)
    clean = sorted(runner.clean_seconds)
    print(f"soak seed {args.seed}: setups and {len(runner.references)} clean references in {prepared:.1f} s "
          f"(clean pass median {1000 * clean[len(clean) // 2]:.0f} ms)")
    print(figures.summary())
    covered = {}
    for o in outcomes:
        covered.setdefault(o.schedule.op, set()).add(o.schedule.at_call)
    print("fault positions: " + ", ".join(
        f"{op} {len(v)} distinct calls ({min(v)}..{max(v)})" for op, v in sorted(covered.items())))
    for spec, swept in sweeps:
        print(f"sweep {spec}: " + swept.summary().replace("\n", "\n  "))
    if args.json:
        args.json.write_text(json.dumps([{"schedule": o.schedule.describe(), "result": o.result, "error": o.error,
                                          "problems": o.problems, "seconds": round(o.seconds, 3)}
                                         for o in outcomes], indent=1))
    return 1 if figures.failed or any(swept.failed for _, swept in sweeps) else 0


if __name__ == "__main__":
    sys.exit(main())
