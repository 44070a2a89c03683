"""Benchmark the advice: does following the plan converge, on synthesised and recorded-material sessions?

For each session, clean twin and planted problems, the closed loop of tests/closedloop.py runs once
(plan -> render the plan -> analyse the rendered stems -> plan again) and this reports, from the same run:

- pass 1: moves and total dB (``bridge.suggest.plan.plan_total_db``);
- pass 2: moves, total dB and the second-pass ratio (pass-2 dB over pass-1 dB; the target is <= 15 %);
- reversals over 1 dB and stacked cuts (``tests.closedloop.compare_passes``; the target is none);
- on a clean twin, the number of pass-1 moves (target <= 6), and whether the ground truth's
  ``expected_moves`` (flip the snare bottom, pan split halves) are in the plan;
- on a problem variant, per planted problem whether its fix is in pass 1 and whether a move the
  ground truth says to avoid is (``tests.closedloop.judge``);
- collateral moves ("xtra"): pass-1 moves of a problem variant on stems no planted problem touched
  (moves the ground truth's ``expected_moves`` ask for aside),
  and planted stems that got no move at all (listed in the details; some problems are findings only);
- render speed: the renderer's time (``render_plan`` of pass 1, stems only: the better of run_loop's
  own timing and one more render) over the time soundfile takes merely to decode the same input
  stems (sequential, 1 s float32 blocks, best of two after a warm-up read), measured in the same run.

Sessions: the synthesised default session (bridge.synth, 24 s) clean and with every planted problem,
and recorded-material sessions built by tools/material (docs/material.md), each clean and with
``DEFAULT_PROBLEMS`` (some also ``OTHER_PROBLEMS``): FluidR3 + ColomboAcousticDrumkit, the csound GM
bank + Millo-Drums with split overheads, MuseScore General + BJA_Pacific (hats mic, GM lead voice),
FluidR3 + The Black Pearl (split guitar and BVs, four-on-the-floor choruses), and the default recipe
at another seed.  Material is built once into the material cache ($MIXBRIDGE_MATERIAL_CACHE, else
~/.cache/mixbridge-material; --cache overrides) and reused by later runs.

Every session where a property fails (or with collateral moves or untreated planted stems) is
listed afterwards with its recipe, every pass-1 and pass-2 move (kind, tracks, dB, the finding's
message) and every pass-1 finding on the tracks involved: the material for fixing the planner.

Usage: python benchmarks/bench_advice.py [--quick] [--json OUT] [--cache DIR] [--only NAME]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from bench_analyze import decode  # noqa: E402  (the same decode baseline as bench_analyze/bench_render)
from bridge.render import render_plan  # noqa: E402
from bridge.suggest.plan import move_db, plan_dict  # noqa: E402
from bridge.synth import default_session, write_session  # noqa: E402
from tests.closedloop import (CLEAN_MAX_MOVES, MUST_FIX, SECOND_PASS_SHARE, judge, material_recipe,  # noqa: E402
                              run_loop, truth_matches)

#: (session name, variant) in run order; variants: clean, default (DEFAULT_PROBLEMS), other (OTHER_PROBLEMS).
FULL = ([("synth", "clean"), ("synth", "planted")]
        + [(n, v) for n in ("fluidr3-colombo", "gmbank-millo-split", "musescore-bja") for v in ("clean", "default", "other")]
        + [(n, v) for n in ("fluidr3-blackpearl-split", "default-s5") for v in ("clean", "default")])
QUICK = [("synth", "clean"), ("synth", "planted"), ("fluidr3-colombo", "clean"), ("fluidr3-colombo", "default"),
         ("gmbank-millo-split", "clean"), ("gmbank-millo-split", "default")]


def decode_seconds(paths: list[Path]) -> float:
    for p in paths:  # warm the file cache: the loop reads the same files
        decode(str(p))
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        for p in paths:
            decode(str(p))
        best = min(best, time.perf_counter() - start)
    return best


def move_record(m) -> dict:
    return {"kind": m.kind, "tracks": list(m.tracks), "db": round(move_db(m), 2), "message": m.finding.message}


def prepare(name: str, variant: str, scratch: Path):
    """(folder, markers, session or None, recipe dict, {stem name: planted problem kinds}, build seconds)."""
    start = time.perf_counter()
    if name == "synth":
        folder = scratch / f"synth-{variant}"
        specs = default_session(problems=variant == "planted")
        write_session(folder, specs, duration_s=24.0)
        planted = {s.name: list(s.problems) for s in specs}
        return folder, None, None, {"synth": "default_session", "problems": variant == "planted",
                                    "duration_s": 24.0}, planted, time.perf_counter() - start
    import tools.material as material

    recipe = material_recipe(name, variant)
    session = material.build_session(recipe)
    planted = {st.name: list(st.problems) for st in session.stems}
    return Path(session.path), session.markers(), session, recipe.to_dict(), planted, time.perf_counter() - start


def track_notes(plan, names) -> dict:
    """Role and every finding of the named tracks (what the planner saw, moves or not)."""
    out = {}
    for t in plan.tracks:
        if t.name in names:
            out[t.name] = {"role": t.role, "role_source": t.role_source, "group": t.group, "status": t.status,
                           "findings": [f"{f.code} ({f.severity}): {f.message}" for f in t.findings]}
    return out


def run_one(name: str, variant: str, scratch: Path) -> dict:
    folder, markers, session, recipe, planted, build_s = prepare(name, variant, scratch)
    stems = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac"))
    start = time.perf_counter()
    loop = run_loop(folder, scratch / "render", markers=markers)
    loop_s = time.perf_counter() - start
    # The renderer's time: the better of run_loop's own render and one more render of the same plan
    # (the machine is shared), against the better of two decodes of the same stems, timed next to it.
    decode_s = decode_seconds(stems)
    start = time.perf_counter()
    render_plan(plan_dict(loop.first), folder, scratch / "render-again", mixes=False)
    render_s = min(loop.render_s, time.perf_counter() - start)
    shutil.rmtree(scratch / "render-again", ignore_errors=True)
    loop.decode_s = decode_s
    clean = variant == "clean"
    row = {"session": name, "variant": variant, "recipe": recipe, "folder": str(folder), "stems": len(stems),
           "duration_s": round(session.duration_s, 1) if session else 24.0, "build_s": round(build_s, 2),
           "loop_s": round(loop_s, 2),
           "pass1_moves": len(loop.first.moves), "pass1_db": loop.first_db,
           "pass2_moves": len(loop.second.moves), "pass2_db": loop.second_db,
           "second_pass_ratio": None if math.isinf(loop.ratio) else round(loop.ratio, 3),
           "reversals": loop.reversals, "stacked": loop.stacked,
           "plan_s": round(loop.plan_s, 3), "render_s": round(render_s, 3), "decode_s": round(decode_s, 3),
           "render_over_decode": round(render_s / decode_s, 2) if decode_s > 0 else None,
           "pass1": [move_record(m) for m in loop.first.moves], "pass2": [move_record(m) for m in loop.second.moves]}
    hit = {n for n, kinds in planted.items() if kinds}
    expected = session.expected_moves if session is not None else []

    def is_expected(m) -> bool:  # a move the truth expects on every variant (flip the snare bottom, ...)
        return any(truth_matches(SimpleNamespace(moves=(m,)), e) for e in expected)
    # Moves of a problem variant on stems no planted problem touched (the clean twin's own moves and
    # the truth's expected moves aside).
    row["collateral"] = [] if clean else [move_record(m) for m in loop.first.moves
                                          if not set(m.tracks) & hit and not is_expected(m)]
    row["untreated"] = sorted(n for n in hit if not any(n in m.tracks for m in loop.first.moves))
    row["planted"] = {n: k for n, k in planted.items() if k}
    if session is not None and not clean:
        row["problems"] = judge(loop.first, folder)
        truth = json.loads((folder / "truth.json").read_text())
        row["truth"] = {p["kind"]: {"stems": p.get("stems"), "fix": p["fix"], "avoid": p.get("avoid", [])}
                        for p in truth["problems"]}
    involved = set(row["untreated"]) | {t for m in row["collateral"] for t in m["tracks"]}
    for kind, v in row.get("problems", {}).items():
        if any(v["avoided"]) or any(f is False for f in v["fixed"]):
            involved |= set(row["truth"][kind]["stems"] or [])
    row["notes"] = track_notes(loop.first, involved)
    if session is not None:
        row["expected_moves"] = [{"move": mv, "in_plan": truth_matches(loop.first, mv)} for mv in session.expected_moves]
    row["failures"] = failures(row)
    return row


def failures(row: dict) -> list[str]:
    out = []
    if row["pass2_db"] > SECOND_PASS_SHARE * row["pass1_db"] + 1e-9:
        out.append(f"second pass {row['pass2_db']:.1f} dB > 15% of {row['pass1_db']:.1f} dB")
    out += ["reversal: " + r for r in row["reversals"]]
    out += ["stacked cut: " + s for s in row["stacked"]]
    if row["variant"] == "clean" and row["pass1_moves"] > CLEAN_MAX_MOVES:
        out.append(f"clean twin: {row['pass1_moves']} moves > {CLEAN_MAX_MOVES}")
    for kind, v in row.get("problems", {}).items():
        if any(v["avoided"]):
            out.append(f"{kind}: a move the ground truth says to avoid is in the plan")
        if any(f is False for f in v["fixed"]):
            out.append(f"{kind}: not fixed" + ("" if kind in MUST_FIX else " (not in the tests' MUST_FIX)"))
    return out


def problems_cell(row: dict) -> str:
    if "problems" not in row:
        return "-"
    judged = [(k, v) for k, v in row["problems"].items()]
    fixed = sum(1 for _, v in judged if v["fixed"] and all(f is not False for f in v["fixed"])
                and any(f is True for f in v["fixed"]))
    counted = sum(1 for _, v in judged if any(f is not None for f in v["fixed"]))
    avoided_ok = sum(1 for _, v in judged if not any(v["avoided"]))
    return f"{fixed}/{counted} fixed, {avoided_ok}/{len(judged)} avoid-clean"


def print_row(row: dict) -> None:
    ratio = "inf" if row["second_pass_ratio"] is None else f"{100 * row['second_pass_ratio']:.0f}%"
    print(f"{row['session'] + '/' + row['variant']:34s} {row['stems']:3d} {row['pass1_moves']:4d} {row['pass1_db']:7.1f}"
          f" {row['pass2_moves']:4d} {row['pass2_db']:7.1f} {ratio:>6s} {len(row['reversals']):4d} {len(row['stacked']):4d}"
          f" {len(row['collateral']):4d}  {row['render_over_decode']:5.2f}x  {problems_cell(row)}"
          f"  {'ok' if not row['failures'] else 'FAIL'}", flush=True)


def print_failure(row: dict) -> None:
    verdict = "FAIL" if row["failures"] else "passes, with notes"
    print(f"\n== {row['session']}/{row['variant']}: {verdict}  ({row['folder']})")
    print("   recipe: " + json.dumps(row["recipe"], separators=(",", ":")))
    for f in row["failures"]:
        print("   - " + f)
    for kind, v in row.get("problems", {}).items():
        if any(v["avoided"]) or any(f is False for f in v["fixed"]):
            t = row["truth"][kind]
            print(f"   {kind} on {t['stems']}: fix {json.dumps(t['fix'])} -> {v['fixed']}; "
                  f"avoid {json.dumps(t['avoid'])} -> {v['avoided']}")
    for e in row.get("expected_moves", []):
        if e["in_plan"] is False:
            print(f"   (expected move not in the plan: {json.dumps(e['move'])})")
    for m in row["collateral"]:
        print(f"   (move on a stem no planted problem touched: {', '.join(m['tracks'])}: {m['message']})")
    for name, note in row["notes"].items():
        print(f"   what pass 1 says about {name} (role {note['role']} from {note['role_source']}, group {note['group']}, "
              f"{note['status']}; planted: {row['planted'].get(name, [])}):")
        for f in note["findings"] or ["(no findings)"]:
            print("     . " + f)
    for label in ("pass1", "pass2"):
        print(f"   {label}: {len(row[label])} moves")
        for m in row[label]:
            print(f"     [{m['kind']:10s} {m['db']:5.1f} dB] {', '.join(m['tracks'])}: {m['message']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="six sessions: synth + two material songs, clean and default")
    parser.add_argument("--json", dest="json_out", help="write every figure and move as JSON here")
    parser.add_argument("--cache", help="material cache folder (default $MIXBRIDGE_MATERIAL_CACHE or ~/.cache/mixbridge-material)")
    parser.add_argument("--only", action="append", help="run only sessions whose name/variant contains this (repeatable)")
    args = parser.parse_args()
    print("command: python benchmarks/bench_advice.py " + " ".join(sys.argv[1:]), flush=True)
    if args.cache:
        os.environ["MIXBRIDGE_MATERIAL_CACHE"] = args.cache
    plan = QUICK if args.quick else FULL
    if args.only:
        plan = [(n, v) for n, v in plan if any(o in f"{n}/{v}" for o in args.only)]
    try:
        from tools.material import missing_tools
        missing = missing_tools()
    except ImportError as exc:  # numpy/scipy-only machines still get the synthesised sessions
        missing = [str(exc)]
    if missing:
        print("recorded material skipped, the builder needs: " + "; ".join(missing))
        plan = [(n, v) for n, v in plan if n == "synth"]

    start = time.perf_counter()
    rows = []
    print(f"{'session/variant':34s} {'stm':>3s} {'mv1':>4s} {'dB1':>7s} {'mv2':>4s} {'dB2':>7s} {'ratio':>6s} {'rev':>4s}"
          f" {'stk':>4s} {'xtra':>4s}  {'rend/dec':>7s}  planted problems")
    with tempfile.TemporaryDirectory(prefix="mixbridge-bench-advice-") as tmp:
        scratch = Path(tmp)
        for name, variant in plan:
            row = run_one(name, variant, scratch)
            shutil.rmtree(scratch / "render", ignore_errors=True)
            rows.append(row)
            print_row(row)
    wall = time.perf_counter() - start

    failing = [r for r in rows if r["failures"]]
    clean = [r for r in rows if r["variant"] == "clean"]
    problem = [r for r in rows if r["variant"] != "clean"]
    render_s = sum(r["render_s"] for r in rows)
    decode_s = sum(r["decode_s"] for r in rows)

    def share(rs):
        d1 = sum(r["pass1_db"] for r in rs)
        return sum(r["pass2_db"] for r in rs) / d1 if d1 > 0 else 0.0

    summary = {
        "sessions": len(rows), "failing": len(failing), "wall_s": round(wall, 1),
        "clean_moves_max": max((r["pass1_moves"] for r in clean), default=0),
        "clean_db_total": round(sum(r["pass1_db"] for r in clean), 1),
        "problem_second_pass_share": round(share(problem), 3), "clean_second_pass_share": round(share(clean), 3),
        "reversals": sum(len(r["reversals"]) for r in rows), "stacked": sum(len(r["stacked"]) for r in rows),
        "render_over_decode": round(render_s / decode_s, 2) if decode_s > 0 else None,
        "render_over_decode_max": max((r["render_over_decode"] or 0.0 for r in rows), default=0.0),
        "render_over_decode_with_moves": round(sum(r["render_s"] for r in rows if r["pass1_moves"])
                                               / max(sum(r["decode_s"] for r in rows if r["pass1_moves"]), 1e-9), 2),
    }
    print(f"\nsummary ({len(rows)} sessions, {wall:.0f} s wall):")
    print(f"  clean twins: at most {summary['clean_moves_max']} moves (target <= {CLEAN_MAX_MOVES}), "
          f"{summary['clean_db_total']} dB over all; second pass {100 * summary['clean_second_pass_share']:.0f}% of the first")
    print(f"  problem sessions: second pass {100 * summary['problem_second_pass_share']:.0f}% of the first's dB "
          f"(target <= {100 * SECOND_PASS_SHARE:.0f}% per session)")
    print(f"  reversals {summary['reversals']}, stacked cuts {summary['stacked']} (target 0)")
    print(f"  render {summary['render_over_decode']}x plain decode of the same stems over all sessions "
          f"(sessions with moves {summary['render_over_decode_with_moves']}x, worst session "
          f"{summary['render_over_decode_max']}x; render {render_s:.2f} s, decode {decode_s:.2f} s)")
    print(f"  sessions failing a property: {len(failing)} of {len(rows)}")
    for row in rows:
        if row["failures"] or row["collateral"] or row["untreated"]:
            print_failure(row)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"command": sys.argv[1:], "summary": summary, "sessions": rows},
                                                  indent=1, default=str))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
