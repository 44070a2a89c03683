"""Benchmark the whole loop: "bounce complete" → "suggestions written", against the REAPER simulator.

A 24-track project in the headless REAPER simulator (its own process; reapy's server; the defer
loop at REAPER's usual ~30 Hz), each track's source one stem of bench_analyze.py's session
(24 stereo stems, 48 kHz / 24-bit WAV, 4 minutes; generated once and kept in --cache).  The
watcher runs in this process with the ``reaper`` target (a stock reapy client over real sockets)
and its default settings (poll 0.25 s, 2 stable polls, manifest-driven), watching the bounce
folder.  The simulator renders the stems (its model of the MixBridge bounce script: stems of the
selected tracks x the pre-AI fader, then the manifest), and for each bounce this measures:

- ``t0``: the manifest's mtime (the bounce script writes it last: "bounce complete");
- ``applied``: when the target's ``apply()`` returned (the suggestions are in REAPER, tagged, one
  undo point) — the latency reported;
- ``pass_done``: when the pass's notes, plan and report files are written too (``on_pass``).

Bounces, in one run and one watcher:

a.  the first bounce of all 24 tracks (empty cache; the first pass of the process, so it also pays
    the analysis worker pool's start-up);
a2. the same with the cache emptied again, in the now-warm process (the fair "full pass");
b.  one track's source changed, only that track selected and bounced (the manifest lists one stem;
    the other 23 files are untouched on disk and come from the cache);
c.  all 24 tracks selected and bounced again, one source changed (every file rewritten, one
    differs: what "bounce everything" does).

Yardstick, same run, same files: decoding the 24 rendered stems with soundfile in 1 s blocks
(``bridge.stems.read_blocks``), sequentially (best of two).  Ratios, not seconds, are the result:
the machine is shared.  Target: a re-bounce under 15% of the full pass.

Usage:

    python benchmarks/bench_loop.py [--stems 24] [--minutes 4] [--cache DIR] [--out figures.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analyze import ROLES, session  # noqa: E402

from bridge.daw.targets import make_target  # noqa: E402
from bridge.manifest import MANIFEST_NAME  # noqa: E402
from bridge.pipeline import default_jobs  # noqa: E402
from bridge.stems import open_stem, read_blocks  # noqa: E402
from bridge.synth import StemSpec, write_session  # noqa: E402
from bridge.console import Console  # noqa: E402
from bridge.settings import Connection, Settings  # noqa: E402
from bridge.watch import Watcher  # noqa: E402
from tests.reaper_sim.control import ControlClient  # noqa: E402
from tests.reaper_sim.fixtures import running_sim  # noqa: E402
from tests.reaper_sim.render import DEFAULT_SUBDIR  # noqa: E402

SIM_HZ = 30.0  # REAPER's defer rate
PASS_TIMEOUT_S = 600.0
RENDER_TIMEOUT_S = 900.0


class TimedTarget:
    """The real target, recording when each ``apply()`` returned (wall clock)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.kind = inner.kind
        self.applied_at: list[float] = []

    def apply(self, plan, reenable=None):
        report = self.inner.apply(plan, reenable=reenable)
        self.applied_at.append(time.time())
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def decode_all(paths: list[Path]) -> float:
    """Seconds to decode every file in 1 s float32 blocks, as the analysis reads them."""
    t = time.perf_counter()
    for p in paths:
        stem = open_stem(p)
        for _ in read_blocks(stem):
            pass
    return time.perf_counter() - t


def new_source(folder: Path, name: str, role: str, seed: int, minutes: float) -> None:
    """A new take for one track: same role, different notes and level (write_session overwrites)."""
    write_session(folder, [StemSpec(name, role, -15.0, pan=0.2, seed=seed)], duration_s=minutes * 60.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mixbridge-bench"))
    parser.add_argument("--render-block-frames", type=int, default=48000,
                        help="the simulator's render block (render speed only; not part of the latency)")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    jobs = default_jobs()
    originals = session(Path(args.cache) / f"s{args.stems}_m{args.minutes:g}", args.stems, args.minutes)
    print(f"session: {len(originals)} stereo stems x {args.minutes:g} min, 48 kHz / 24-bit WAV; {jobs} jobs; "
          f"simulator at {SIM_HZ:g} Hz", flush=True)

    work = Path(tempfile.mkdtemp(prefix="mixbridge-bench-loop-"))
    try:
        # Sources: the cached originals, except the two tracks whose take changes (scratch copies).
        b_index, c_index = len(originals) // 2, len(originals) // 3
        scratch = work / "sources"
        scratch.mkdir()
        sources = list(originals)
        for i in (b_index, c_index):
            sources[i] = Path(shutil.copyfile(originals[i], scratch / originals[i].name))
        song = work / "song"
        stems = song / DEFAULT_SUBDIR
        stems.mkdir(parents=True)
        project = {"name": "Song.rpp", "path": str(song / "Song.rpp"),
                   "tracks": [{"name": p.stem, "selected": True, "source": str(p)} for p in sources]}
        names = [p.stem for p in sources]

        with running_sim(project, work / "sim", hz=SIM_HZ,
                         extra_args=("--render-block-frames", str(args.render_block_frames))) as sim:
            control = ControlClient(sim.control_port, timeout_s=RENDER_TIMEOUT_S)
            settings = Settings(stems, target="reaper", connection=Connection(web_port=sim.web_port, timeout_s=30.0))
            target = TimedTarget(make_target(settings))
            done_at: dict[int, float] = {}

            def on_pass(outcome) -> None:
                done_at[outcome.number] = time.time()

            console_out = io.StringIO()
            watcher = Watcher(settings,
                              target=target, console=Console(console_out, tty=False), on_pass=on_pass)
            watcher.start()
            figures: dict[str, Any] = {}
            try:
                def bounce(label: str, selected: list[str]) -> dict[str, Any]:
                    for i, name in enumerate(names):
                        control.set_track(i, "I_SELECTED", 1.0 if name in selected else 0.0)
                    before = len(watcher.passes)
                    t_call = time.time()
                    outcome = control.bounce()
                    t_returned = time.time()
                    if outcome["error"]:
                        raise RuntimeError(f"bounce {label}: {outcome['error']}")
                    t0 = Path(outcome["manifest"]).stat().st_mtime_ns / 1e9
                    if not watcher.wait_for(lambda: len(watcher.passes) > before or watcher.crashed is not None,
                                            PASS_TIMEOUT_S) or watcher.crashed is not None:
                        raise RuntimeError(f"bounce {label}: no pass ({watcher.crashed!r}; {watcher.errors})")
                    p = watcher.passes[-1]
                    if p.state != "applied":
                        raise RuntimeError(f"bounce {label}: {p.state} {p.error}")
                    applied = target.applied_at[-1]
                    row = {
                        "bounced_tracks": len(selected), "render_s": round(t_returned - t_call, 3),
                        "latency_applied_s": round(applied - t0, 3),
                        "latency_pass_done_s": round(done_at[p.number] - t0, 3),
                        "latency_from_render_return_s": round(applied - t_returned, 3),
                        "pass_s": round(p.seconds, 3), "apply_s": round(p.report.seconds, 3),
                        "apply_round_trips": p.report.round_trips, "writes": len(p.report.writes),
                        "stems": len(p.result.stems), "reanalysed": len(p.reanalysed or ()),
                        "cached": len(p.cached or ()),
                        "analysis_timings": {k: round(v, 3) for k, v in p.result.timings.items()},
                    }
                    row["wait_before_pass_s"] = round(row["latency_pass_done_s"] - row["pass_s"], 3)
                    print(f"{label}: {json.dumps({k: v for k, v in row.items() if k != 'analysis_timings'})}",
                          flush=True)
                    print(f"   {p.line}", flush=True)
                    return row

                figures["a_first_bounce"] = bounce("a (first bounce, empty cache)", names)
                shutil.rmtree(stems / ".mixbridge" / "cache")
                figures["a2_full_warm"] = bounce("a2 (all 24 again, cache emptied, warm process)", names)
                if figures["a2_full_warm"]["reanalysed"] != len(names):
                    raise RuntimeError("a2: the cache was not empty")
                new_source(scratch, names[b_index], ROLES[b_index % len(ROLES)], 901, args.minutes)
                figures["b_rebounce_one_track"] = bounce(f"b (only {names[b_index]} changed and bounced)",
                                                         [names[b_index]])
                new_source(scratch, names[c_index], ROLES[c_index % len(ROLES)], 902, args.minutes)
                figures["c_rebounce_all_one_changed"] = bounce(f"c (all {len(names)} bounced, {names[c_index]} changed)",
                                                               names)
                for key, want in (("b_rebounce_one_track", 1), ("c_rebounce_all_one_changed", 1)):
                    if figures[key]["reanalysed"] != want:
                        raise RuntimeError(f"{key}: {figures[key]['reanalysed']} stems re-analysed, expected {want}")
            finally:
                clean = watcher.stop(30.0)
            rendered = sorted(stems.glob("*.wav"))
            decode_s = min(decode_all(rendered), decode_all(rendered))
        full_first = figures["a_first_bounce"]["latency_applied_s"]
        full_warm = figures["a2_full_warm"]["latency_applied_s"]
        b = figures["b_rebounce_one_track"]["latency_applied_s"]
        c = figures["c_rebounce_all_one_changed"]["latency_applied_s"]
        report = {
            "stems": len(names), "minutes": args.minutes, "jobs": jobs, "sim_hz": SIM_HZ,
            "decode_only_s": round(decode_s, 3), "decoded_files": len(rendered), **figures,
            "ratios": {
                "b_over_full_warm": round(b / full_warm, 3), "b_over_full_first": round(b / full_first, 3),
                "c_over_full_warm": round(c / full_warm, 3), "c_over_full_first": round(c / full_first, 3),
                "full_warm_over_decode": round(full_warm / decode_s, 2),
                "full_first_over_decode": round(full_first / decode_s, 2),
            },
            "target_rebounce_under_15pct_of_full": b / full_warm < 0.15 and c / full_warm < 0.15,
            "watcher_stopped_cleanly": clean,
            "load_average_at_end": os.getloadavg(),
        }
        print(json.dumps(report, indent=1))
        r = report["ratios"]
        print(f"\nbounce complete → suggestions written in REAPER: full {full_warm:.2f} s (first of the process "
              f"{full_first:.2f} s); re-bounce of the one changed track {b:.2f} s = {r['b_over_full_warm']:.1%} of "
              f"the full pass; all {len(names)} re-bounced with one changed {c:.2f} s = {r['c_over_full_warm']:.1%}; "
              f"full pass = {r['full_warm_over_decode']}x the decode-only time ({decode_s:.2f} s)")
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
