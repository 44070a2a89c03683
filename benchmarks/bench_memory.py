"""Peak memory of the analysis against song length and channel count (issue 11, item 12).

Each stem is generated streamed to disk (10 s blocks of stereo, never held whole), then analysed by
``python -m bridge analyze FILE --jobs 1 --json OUT`` in a fresh process (one process does
everything: decode, features, the mix, masking, sections, the JSON), and the peak resident set of
that process is read with ``wait4`` (``ru_maxrss``).  The stems are 24-bit PCM at 48 kHz: noise
and a tone under an envelope that changes every 30 s, so the section detector has work to do.

    .venv/bin/python benchmarks/bench_memory.py                 # 4 min / 1 h / 3 h stereo, 2 / 16 / 64 ch
    .venv/bin/python benchmarks/bench_memory.py --quick         # 4 min / 20 min stereo, 2 / 16 ch
    .venv/bin/python benchmarks/bench_memory.py --code DIR      # measure another checkout (before/after)

Files go to ``--work`` (default a folder in the system temp dir, removed at the end unless
``--keep``); the 3-hour stem is 3.1 GB, the 64-channel 4-minute one 2.2 GB.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
BLOCK_S = 10


def write_stem(path: Path, seconds: int, channels: int) -> None:
    """A stem of ``seconds`` written 10 s at a time (never held whole)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seconds * 1000 + channels)
    block_s = max(1, BLOCK_S * 2 // channels)  # 10 s of stereo, 1 s of 64 channels
    t = np.arange(RATE * block_s) / RATE
    with sf.SoundFile(str(path), "w", RATE, channels, subtype="PCM_24") as fh:
        for k in range(0, seconds, block_s):
            n = min(block_s, seconds - k) * RATE
            section = (k // 30) % 4
            level = (0.05, 0.2, 0.1, 0.3)[section]
            tone = np.sin(2 * np.pi * (110.0 * (1 + section)) * (t[:n] + k))
            noise = rng.standard_normal((n, channels)) * 0.3
            block = level * (noise + tone[:, None])
            fh.write(block.astype(np.float32))


def peak_rss_mb(code: Path, stem: Path, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one ``mixbridge analyze`` of ``stem`` with ``code`` on the path."""
    env = dict(os.environ, PYTHONPATH=str(code), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "analyze", str(stem), "--jobs", "1", "--json", str(out)],
                            cwd=str(code), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code_ = os.waitstatus_to_exitcode(status)
    if code_ not in (0, 1):
        raise RuntimeError(f"analyze {stem.name} exited {code_}: {err[-500:]}")
    return usage.ru_maxrss / 1024.0, seconds  # ru_maxrss is in kB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    parser.add_argument("--work", type=Path, help="where the stems are written (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated stems")
    parser.add_argument("--quick", action="store_true", help="4 min / 20 min stereo, 2 / 16 channels")
    parser.add_argument("--write", nargs=3, metavar=("PATH", "SECONDS", "CHANNELS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write_stem(Path(args.write[0]), int(args.write[1]), int(args.write[2]))
        return 0
    cases = ([("4 min stereo", 240, 2), ("20 min stereo", 1200, 2), ("4 min 16 ch", 240, 16)] if args.quick else
             [("4 min stereo", 240, 2), ("1 h stereo", 3600, 2), ("3 h stereo", 10800, 2),
              ("4 min 16 ch", 240, 16), ("4 min 64 ch", 240, 64)])
    work = args.work or Path(tempfile.mkdtemp(prefix="mixbridge-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"code: {args.code}\n{'case':<16} {'file MB':>8} {'peak RSS MB':>12} {'seconds':>8}")
    try:
        for label, seconds, channels in cases:
            stem = work / f"stem_{seconds}s_{channels}ch.wav"
            if not stem.exists():
                # In a child process: a forked child's peak RSS would otherwise include the
                # generator's memory, inherited at fork time.
                subprocess.run([sys.executable, __file__, "--write", str(stem), str(seconds), str(channels)], check=True)
            rss, took = peak_rss_mb(args.code, stem, work / "out.json")
            print(f"{label:<16} {stem.stat().st_size / 1e6:8.0f} {rss:12.0f} {took:8.1f}", flush=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
