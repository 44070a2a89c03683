"""Benchmark the role recogniser (issue 14): what hearing costs against the analysis, and how well it hears.

Cost, in one run, on the same session:

- ``analyze_session`` over the session's stems (what ``mixbridge analyze`` does; worker pool included),
  median of ``--repeat``;
- hearing every stem from the analysis it produced: descriptors (:func:`bridge.analyze.descriptors.describe`)
  plus numpy inference (:class:`bridge.suggest.hearing.RoleModel`), median of the same runs; and the
  one-off cost of loading the model in a fresh process.

The session is a recorded-material session (tools.material, default recipe: 15 stems, 42 s), or with
``--synth`` the 24-stem synthetic benchmark session of bench_analyze.py (``--stems``, ``--minutes``).
The ratio, not the seconds, is the result (the machine is shared).  Target: hearing <= 5% of analysis.

Accuracy (``--eval``, needs scikit-learn and the training corpus, built or read from the cache):
the shipped model's candidate re-evaluated by leaving whole sound sources out, both splits, with the
per-class recall/precision and the confusion matrix (rows: true class; columns: heard class), and the
name-vs-ear decision on those held-out ears (nameless stems heard or left neutral, false conflicts
under right names, misleading names caught).

Usage: python benchmarks/bench_roles.py [--repeat 3] [--synth [--stems 24 --minutes 4]] [--eval] [--jobs 2]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from bridge.analyze.descriptors import describe  # noqa: E402
from bridge.pipeline import analyze_session, default_jobs  # noqa: E402
from bridge.suggest.hearing import RoleModel, hear_all  # noqa: E402


def material_files() -> list[Path]:
    from tools.material import Recipe, build_session

    session = build_session(Recipe(seed=1))
    return sorted(session.path.glob("*.wav"))


def synth_files(stems: int, minutes: float) -> list[Path]:
    from bench_analyze import session

    return session(Path(tempfile.gettempdir()) / f"mixbridge-bench-{stems}x{minutes:g}", stems, minutes)


def hearing_cost(result, model: RoleModel) -> float:
    """Descriptors of every stem, then one inference for all: what stem_views does."""
    started = time.perf_counter()
    vectors = [describe(result.features[s.name], s.analysis) if s.analysis is not None and s.name in result.features
               else None for s in result.stems]
    hear_all(vectors, model)
    return time.perf_counter() - started


def load_cost() -> float:
    # numpy and the analysis are imported by every pass anyway: only what hearing adds is timed.
    code = ("import time, numpy, bridge.pipeline, bridge.analyze.stem, bridge.suggest.model; t = time.perf_counter(); "
            "from bridge.suggest.hearing import shipped_model; "
            "m = shipped_model(); print(time.perf_counter() - t if m is not None else -1.0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def cost(files: list[Path], repeat: int, jobs: int) -> None:
    model = RoleModel.load()
    analysis, hearing = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        result = analyze_session(files, jobs=jobs)
        analysis.append(time.perf_counter() - t)
        hearing.append(hearing_cost(result, model))
    a, h = statistics.median(analysis), statistics.median(hearing)
    frames = sum(f.stat().st_size for f in files) / 1e6
    print(f"\n{len(files)} stems ({frames:.0f} MB), {jobs} jobs, median of {repeat}:")
    print("| step | wall s | share of analysis |\n|---|---|---|")
    print(f"| analyze_session | {a:.3f} (min {min(analysis):.3f}, max {max(analysis):.3f}) | 100% |")
    print(f"| descriptors + inference, every stem | {h * 1000:.1f} ms (min {min(hearing) * 1000:.1f}) | "
          f"{100 * h / a:.2f}% |")
    once = load_cost()
    print(f"| loading the model and checking its descriptor hash, once per process | {once * 1000:.1f} ms | "
          f"{100 * once / a:.2f}% |")
    print(f"\nper pass, hearing adds {100 * h / a:.2f}% to the analysis (target <= 5%); "
          f"a process's first pass {100 * (h + once) / a:.2f}%")


def evaluate(jobs: int) -> None:
    from tools.roles_corpus import CorpusRecipe, build_corpus
    from tools.train_roles import (CANDIDATES, accept_threshold, confusion_table, cross_validate, fold_map,
                                   name_checks, names_table, report)

    model = RoleModel.load()
    doc = model.doc
    recipe = CorpusRecipe(**{k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
                             for k, v in doc["recipe"].items()})
    corpus = build_corpus(recipe, jobs=jobs)
    candidate = next(c for c in CANDIDATES if c.name == doc["training"]["candidate"])
    print(f"\ncorpus: {len(corpus.y)} examples (recipe {recipe.hash}; the model was trained on {doc['recipe_hash']}); "
          f"candidate: {candidate.name}")
    for split in ("sources", "families"):
        proba = cross_validate(candidate, corpus, fold_map(corpus, split))
        rep = report(corpus, proba)
        print(f"\n### held out by {split}: top-1 {100 * rep['top1']:.1f}%, balanced {100 * rep['balanced']:.1f}%\n")
        print(confusion_table(rep, corpus.classes))
        if split == "sources":
            t = accept_threshold(corpus, proba)
            print(f"\naccept from p >= {t['accept_probability']:.2f}: {100 * t['accepted_share']:.1f}% of held-out "
                  f"stems, {100 * t['accepted_precision']:.1f}% of them right")
            # The decision as the pipeline makes it, with the shipped thresholds, on these held-out ears.
            checks = name_checks(corpus, proba, model.accept_probability, model.conflict_probability)
            print(f"\n### names against the ear (held out by sources; accept {model.accept_probability:.2f}, "
                  f"conflict {model.conflict_probability:.2f})\n")
            print(names_table(checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--synth", action="store_true", help="the synthetic session of bench_analyze.py")
    parser.add_argument("--stems", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--eval", action="store_true", help="re-run the held-out evaluation (scikit-learn)")
    args = parser.parse_args()
    files = synth_files(args.stems, args.minutes) if args.synth else material_files()
    cost(files, args.repeat, args.jobs)
    if args.eval:
        evaluate(args.jobs)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
