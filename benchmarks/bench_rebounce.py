"""Benchmark a re-bounce with one changed stem against the full pass, measured in one run.

Uses the session of bench_analyze.py (24 stereo stems, 48 kHz / 24-bit WAV, 4 minutes; generated
once and kept in --cache), copied into a scratch folder so a stem can be rewritten.  In one
process (the forkserver warm after the first pass, as in the long-running watcher) it measures:

- decode-only: soundfile decoding every file, sequentially and on the worker count (the yardstick);
- full pass without a cache (today's `analyze_session`), and with an empty cache (what the cache
  costs: hashes, entries, the group sums on disk), the two in turn, --repeat times each;
- re-bounce: one stem rewritten with different content, every other file untouched (the first
  re-bounce of a stem also sums the rest of its group again; it is reported on its own too);
- re-bounce where every file was rewritten (new mtime, same bytes) but one changed content,
  which is what REAPER's "render all stems" does;
- no-change pass.

The incremental passes share one AnalysisCache object and one masking memo, as the watcher's
Session does.  Every incremental result is checked against a fresh full pass of the same files
(mix integrated loudness, true peak, LRA).  Usage:

    python benchmarks/bench_rebounce.py [--stems 24] [--minutes 4] [--cache DIR] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analyze import ROLES, decode, session  # noqa: E402

from bridge.cache import AnalysisCache  # noqa: E402
from bridge.pipeline import analyze_session, default_jobs  # noqa: E402
from bridge.synth import StemSpec, write_session  # noqa: E402


def _timed(fn):
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def _mix(result) -> dict:
    loud = result.mix.summed.loudness
    return {"I": loud.integrated_lufs, "TP": result.mix.summed.levels.true_peak_dbtp, "LRA": loud.lra_lu}


def _close(a: dict, b: dict) -> bool:
    return all(abs(a[k] - b[k]) <= 0.01 for k in a)


def _dir_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mixbridge-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (the median is reported)")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    jobs = default_jobs()
    source = Path(args.cache) / f"s{args.stems}_m{args.minutes:g}"
    print(f"session: {args.stems} stereo stems x {args.minutes:g} min, 48 kHz / 24-bit WAV ({source}), "
          f"{jobs} jobs", flush=True)
    originals = session(source, args.stems, args.minutes)
    work = Path(tempfile.mkdtemp(prefix="mixbridge-rebounce-"))
    try:
        for p in originals:
            shutil.copyfile(p, work / p.name)
        paths = sorted(work.glob("*.wav"))
        for p in paths:  # warm the page cache, as right after a render
            decode(str(p))
        figures: dict[str, float] = {}
        figures["decode_sequential_s"], _ = _timed(lambda: [decode(str(p)) for p in paths])
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(decode, map(str, paths)))
            figures["decode_parallel_s"], _ = _timed(lambda: list(pool.map(decode, map(str, paths))))

        # First pass of the process: pays the forkserver's start (imports), once per process.
        figures["full_first_in_process_s"], _ = _timed(lambda: analyze_session([work]))
        cache_dir = work / ".mixbridge" / "cache"
        fulls, cached_fulls = [], []
        for _ in range(args.repeat):  # in turn, so a burst of load hits both alike
            fulls.append(_timed(lambda: analyze_session([work])))
            shutil.rmtree(work / ".mixbridge", ignore_errors=True)
            memo: dict = {}  # the watcher keeps one between passes
            cache = AnalysisCache(cache_dir)  # ... and one cache object (its Session's)
            cached_fulls.append(_timed(lambda: analyze_session([work], cache=cache, masking_memo=memo)))
        figures["full_no_cache_s"] = statistics.median(t for t, _ in fulls)
        figures["full_empty_cache_s"] = statistics.median(t for t, _ in cached_fulls)
        cache_cost = statistics.median(b / a for (a, _), (b, _) in zip(fulls, cached_fulls)) - 1.0
        fresh, full = fulls[-1][1], cached_fulls[-1][1]
        assert len(full.reanalysed) + len(full.cached) == len(paths) and _close(_mix(full), _mix(fresh)), \
            "full pass with cache differs"
        figures["cache_mib_after_full"] = round(_dir_mib(cache_dir), 1)

        changed = paths[len(paths) // 2]
        index = paths.index(changed)
        rebounces, renders = [], []
        for attempt in range(args.repeat):
            spec = StemSpec(changed.stem, ROLES[index % len(ROLES)], -15.0 - attempt, pan=0.2, seed=900 + attempt)
            write_session(work, [spec], duration_s=args.minutes * 60.0)
            decode(str(changed))
            seconds, result = _timed(lambda: analyze_session([work], cache=cache, masking_memo=memo))
            assert result.reanalysed == (changed.stem,), result.reanalysed
            rebounces.append((seconds, result))
        figures["rebounce_one_changed_s"] = statistics.median(t for t, _ in rebounces)
        figures["rebounce_first_s"] = rebounces[0][0]
        rebounce = rebounces[-1][1]
        timings_one = {k: round(v, 3) for k, v in rebounce.timings.items()}

        # REAPER rewrites every stem of a bounce: new mtimes everywhere, one stem's bytes differ.
        for attempt in range(args.repeat):
            stamp = time.time_ns()
            for p in paths:
                os.utime(p, ns=(stamp, stamp))
            spec = StemSpec(changed.stem, ROLES[index % len(ROLES)], -14.0 - attempt, pan=-0.2, seed=950 + attempt)
            write_session(work, [spec], duration_s=args.minutes * 60.0)
            decode(str(changed))
            seconds, result = _timed(lambda: analyze_session([work], cache=cache, masking_memo=memo))
            assert result.reanalysed == (changed.stem,), result.reanalysed
            renders.append((seconds, result))
        figures["rebounce_all_rewritten_one_changed_s"] = statistics.median(t for t, _ in renders)
        render_all = renders[-1][1]
        timings_all = {k: round(v, 3) for k, v in render_all.timings.items()}

        sames = [_timed(lambda: analyze_session([work], cache=cache, masking_memo=memo))
                 for _ in range(args.repeat)]
        figures["no_change_s"] = statistics.median(t for t, _ in sames)
        same = sames[-1][1]
        assert same.reanalysed == ()
        _, reference = _timed(lambda: analyze_session([work]))
        # The files now hold the last attempt's content: that attempt and the no-change pass must
        # both equal a fresh full pass.
        last = renders[-1][1]
        exact = _close(_mix(last), _mix(reference)) and _close(_mix(same), _mix(reference))
        figures["cache_mib_end"] = round(_dir_mib(cache_dir), 1)
        session_mib = sum(p.stat().st_size for p in paths) / 2 ** 20
        figures = {k: round(v, 3) for k, v in figures.items()}
        full_s = figures["full_no_cache_s"]
        report = {
            "stems": len(paths), "minutes": args.minutes, "jobs": jobs, **figures,
            "rebounce_over_full": round(figures["rebounce_one_changed_s"] / full_s, 3),
            "rebounce_first_over_full": round(figures["rebounce_first_s"] / full_s, 3),
            "rebounce_all_rewritten_over_full": round(figures["rebounce_all_rewritten_one_changed_s"] / full_s, 3),
            "no_change_over_full": round(figures["no_change_s"] / full_s, 3),
            "rebounce_over_full_range": [round(min(t for t, _ in rebounces) / full_s, 3),
                                         round(max(t for t, _ in rebounces) / full_s, 3)],
            "rebounce_all_rewritten_over_full_range": [round(min(t for t, _ in renders) / full_s, 3),
                                                       round(max(t for t, _ in renders) / full_s, 3)],
            "no_change_over_full_range": [round(min(t for t, _ in sames) / full_s, 3),
                                          round(max(t for t, _ in sames) / full_s, 3)],
            "full_no_cache_range_s": [round(min(t for t, _ in fulls), 3), round(max(t for t, _ in fulls), 3)],
            "session_mib": round(session_mib, 1),
            "cache_over_session": round(figures["cache_mib_end"] / session_mib, 3),
            "full_over_decode": round(full_s / figures["decode_sequential_s"], 2),
            "cache_cost_in_full_pass": round(cache_cost, 3),
            "rebounce_timings": timings_one, "all_rewritten_timings": timings_all,
            "mix_equals_fresh_full_pass": exact,
            "mix_fresh": _mix(reference), "mix_incremental": _mix(last),
            "load_average_at_end": os.getloadavg(),
        }
        print(json.dumps(report, indent=1))
        print(f"\nre-bounce (1 of {len(paths)} changed) = {report['rebounce_over_full']:.1%} of the full pass "
              f"({figures['rebounce_one_changed_s']:.2f} s vs {full_s:.2f} s; the first of that stem "
              f"{report['rebounce_first_over_full']:.1%}); every file rewritten, one changed: "
              f"{report['rebounce_all_rewritten_over_full']:.1%}; no change: {report['no_change_over_full']:.1%}; "
              f"full pass = {report['full_over_decode']}x sequential decode "
              f"({figures['decode_sequential_s']:.2f} s); the cache adds "
              f"{report['cache_cost_in_full_pass']:+.1%} to a full pass and takes {figures['cache_mib_end']:.0f} MiB")
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
