"""Train, evaluate and export MixBridge's role recogniser (issue 14): ``make train-roles``.

1. Build the corpus (:mod:`tools.roles_corpus`): labelled stems from Debian's soundfonts, Hydrogen kits
   and espeak-ng voices, reduced to descriptors (:mod:`bridge.analyze.descriptors`).
2. Evaluate each candidate model by **leaving whole sound sources out**: fold k holds out one
   soundfont (with its GM drum kits), a group of Hydrogen kits and a group of espeak-ng voices; the
   model is trained on the rest and judged on them.  A second, stricter split groups soundfonts by
   sample lineage (MuseScore_General grew out of FluidR3: they share samples).
3. Pick the candidate with the best held-out top-1 accuracy, choose the probability above which a
   heard role is taken (the held-out precision of what it accepts reaches :data:`ACCEPT_PRECISION`),
   train it on everything and write ``bridge/suggest/roles_model.json``: weights, classes, the
   descriptor code's hash, the recipe and its hash, the held-out figures.

scikit-learn is needed here only (the ``train`` extra); the shipped model runs in plain numpy
(:mod:`bridge.suggest.hearing`).  Everything is seeded: the same recipe gives the same file.

    python -m tools.train_roles [--jobs 2] [--out bridge/suggest/roles_model.json] [--tiny]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.analyze.descriptors import NAMES, code_hash
from bridge.suggest import roles as R
from bridge.suggest.hearing import (MODEL_PATH, SCHEMA, RoleModel, decide_role, fits, heard_from, pack_nodes,
                                     role_of_class)
from tools.roles_corpus import FONTS, FX_FONT, N_FOLDS, Corpus, CorpusRecipe, build_corpus

SEED = 14
#: A heard role is taken when its probability reaches the lowest threshold whose accepted held-out
#: predictions are at least this precise.
ACCEPT_PRECISION = 0.95
#: Name-vs-ear conflicts are reported from this probability up (at least the accept threshold).
CONFLICT_PROBABILITY = 0.9
#: Tiny recipe for the end-to-end test: a few stems per class, short.
TINY = CorpusRecipe(pitched_per_font=2, gm_drums_per_font=1, kit_per_class=1, vocals_per_fold=1,
                    length_s=(5.0, 6.0), fonts=("sf_GMbank",),
                    kit_folds=(("ColomboAcousticDrumkit",), ("HardElectro1",)))


@dataclass(frozen=True)
class Candidate:
    name: str
    kind: str
    params: dict


_MLP = Candidate("mlp 256", "mlp", {"hidden": (256,), "alpha": 1e-2})
_TREES = Candidate("boosted trees", "trees", {"max_iter": 150, "max_leaf_nodes": 15, "learning_rate": 0.1})
CANDIDATES = (
    Candidate("logistic C=0.3", "logistic", {"C": 0.3}),
    Candidate("logistic C=3", "logistic", {"C": 3.0}),
    _MLP,
    Candidate("mlp 128-64", "mlp", {"hidden": (128, 64), "alpha": 1e-3}),
    _TREES,
    Candidate("mlp 256 + boosted trees", "ensemble", {"members": (_MLP, _TREES)}),
)


class FittedEnsemble:
    """Several fitted pipelines whose probabilities are averaged (what ``ensemble`` exports)."""

    def __init__(self, members: list):
        self.members = members
        self.classes_ = members[0].classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members], axis=0)


def _weights(y: np.ndarray, k: int) -> np.ndarray:
    """Balanced sample weights: every class counts as much as every other."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = len(y) / (k * np.maximum(counts, 1.0))
    return w[y]


def fit(candidate: Candidate, X: np.ndarray, y: np.ndarray, n_classes: int):
    """Fit one candidate with scikit-learn (seeded); returns the fitted estimator (a pipeline)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    p = candidate.params
    if candidate.kind == "ensemble":
        return FittedEnsemble([fit(member, X, y, n_classes) for member in p["members"]])
    if candidate.kind == "logistic":
        model = LogisticRegression(C=p["C"], max_iter=4000, random_state=SEED)
    elif candidate.kind == "mlp":
        model = MLPClassifier(hidden_layer_sizes=p["hidden"], alpha=p["alpha"], max_iter=800, random_state=SEED,
                              early_stopping=False)
    elif candidate.kind == "trees":
        model = HistGradientBoostingClassifier(max_iter=p["max_iter"], max_leaf_nodes=p["max_leaf_nodes"],
                                               learning_rate=p["learning_rate"], random_state=SEED,
                                               early_stopping=False)
    else:
        raise ValueError(candidate.kind)
    pipe = Pipeline([("scale", StandardScaler()), ("model", model)])
    weights = _weights(y, n_classes)
    pipe.fit(X, y, model__sample_weight=weights)
    return pipe


def _full_proba(pipe, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over every class (a fold may lack some classes in training)."""
    out = np.zeros((len(X), n_classes))
    out[:, pipe.classes_] = pipe.predict_proba(X)
    return out


def export(pipe, candidate: Candidate, classes: tuple[str, ...]) -> dict:
    """The fitted pipeline as the shipped JSON's weights (see :class:`bridge.suggest.hearing.RoleModel`)."""
    if candidate.kind == "ensemble":
        return {"kind": "ensemble", "members": [export(m, c, classes) for m, c in zip(pipe.members,
                                                                                      candidate.params["members"])]}
    scaler, model = pipe.named_steps["scale"], pipe.named_steps["model"]
    if list(model.classes_) != list(range(len(classes))):
        raise ValueError("the final model must be trained on every class")
    doc: dict = {"kind": candidate.kind, "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    if candidate.kind == "logistic":
        doc["layers"] = [{"W": model.coef_.T.tolist(), "b": model.intercept_.tolist(), "activation": "softmax"}]
    elif candidate.kind == "mlp":
        layers = []
        for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
            last = k == len(model.coefs_) - 1
            layers.append({"W": W.tolist(), "b": b.tolist(), "activation": "softmax" if last else model.activation})
        doc["layers"] = layers
    else:
        doc["baseline"] = np.asarray(model._baseline_prediction).ravel().tolist()
        tables, roots, offset = [], [], 0
        for stage in model._predictors:  # stage by stage, one tree per class
            for tree in stage:
                nodes = tree.nodes
                inner = ~nodes["is_leaf"].astype(bool)
                tables.append((nodes["feature_idx"], nodes["num_threshold"],
                               np.where(inner, nodes["left"].astype(np.int64) + offset, 0),
                               np.where(inner, nodes["right"].astype(np.int64) + offset, 0),
                               nodes["is_leaf"], nodes["value"]))
                roots.append(offset)
                offset += len(nodes)
        doc["nodes"] = pack_nodes(*(np.concatenate([t[i] for t in tables]) for i in range(6)))
        doc["roots"] = roots
    return doc


# ------------------------------------------------------------------------------------------- evaluation

def fold_map(corpus: Corpus, split: str) -> np.ndarray:
    """Each example's held-out fold.

    ``"sources"``: the corpus' own folds (fold k = soundfont k, kit group k, voice group k).
    ``"families"``: soundfonts grouped by sample lineage: FluidR3_GM and MuseScore_General (fold 0)
    against sf_GMbank (fold 1); kits and voices keep their folds.
    """
    if split == "sources":
        return corpus.folds.copy()
    if split != "families":
        raise ValueError(split)
    family = {"FluidR3_GM": 0, "MuseScore_General": 0, "sf_GMbank": 1, FX_FONT: 2}
    out = corpus.folds.copy()
    for i, source in enumerate(corpus.sources):
        if source in family:
            out[i] = family[source]
    return out


def cross_validate(candidate: Candidate, corpus: Corpus, folds: np.ndarray) -> np.ndarray:
    """Held-out probabilities of every example: each predicted by a model that never heard its source."""
    k = len(corpus.classes)
    proba = np.zeros((len(corpus.y), k))
    for f in sorted(set(folds.tolist())):
        test = folds == f
        if test.all() or not test.any():
            continue
        pipe = fit(candidate, corpus.X[~test], corpus.y[~test], k)
        proba[test] = _full_proba(pipe, corpus.X[test], k)
    return proba


def report(corpus: Corpus, proba: np.ndarray) -> dict:
    """Top-1 accuracy, per-class recall and precision, the confusion matrix (rows: true class)."""
    classes = corpus.classes
    pred = proba.argmax(axis=1)
    k = len(classes)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (corpus.y, pred), 1)
    recall = {c: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None for i, c in enumerate(classes)}
    precision = {c: float(confusion[i, i] / confusion[:, i].sum()) if confusion[:, i].sum() else None
                 for i, c in enumerate(classes)}
    top1 = float((pred == corpus.y).mean())
    balanced = float(np.mean([v for v in recall.values() if v is not None]))
    return {"examples": int(len(corpus.y)), "top1": round(top1, 4), "balanced": round(balanced, 4),
            "recall": {c: None if v is None else round(v, 4) for c, v in recall.items()},
            "precision": {c: None if v is None else round(v, 4) for c, v in precision.items()},
            "support": {c: int(confusion[i].sum()) for i, c in enumerate(classes)},
            "confusion": confusion.tolist()}


def accept_threshold(corpus: Corpus, proba: np.ndarray, precision: float = ACCEPT_PRECISION) -> dict:
    """The lowest probability whose accepted held-out predictions reach ``precision``, and its coverage."""
    top = proba.max(axis=1)
    right = proba.argmax(axis=1) == corpus.y
    chosen = 0.99
    for t in np.round(np.arange(0.5, 0.991, 0.01), 2):
        kept = top >= t
        if kept.any() and right[kept].mean() >= precision:
            chosen = float(t)
            break
    kept = top >= chosen
    return {"accept_probability": chosen, "accepted_share": round(float(kept.mean()), 4),
            "accepted_precision": round(float(right[kept].mean()) if kept.any() else 1.0, 4)}


#: A name that clearly says each role (checked against ``infer_role``), and one that says nothing.
ROLE_NAMES = {R.KICK: "Kick In", R.SNARE: "Snare Top", R.TOMS: "Tom 1", R.HATS: "Hi-Hat", R.OVERHEADS: "OH L",
              R.ROOM: "Room", R.DRUMS: "Drum Bus", R.BASS: "Bass DI", R.LEAD_VOCAL: "Lead Vox",
              R.BACKING_VOCAL: "BVs", R.GUITAR: "Guitar", R.KEYS: "Keys", R.PAD: "Pad", R.SYNTH: "Synth Arp",
              R.HORNS: "Horns", R.SYNTH_LEAD: "Synth Lead", R.LEAD_INSTRUMENT: "Gtr Solo", R.FX: "FX"}
NAMELESS = "Audio 03"


def name_checks(corpus: Corpus, proba: np.ndarray, accept: float, conflict: float) -> dict:
    """The decision (:func:`bridge.suggest.hearing.decide_role`, the code the pipeline runs) on held-out ears.

    Every held-out example is decided three ways, as if it were named:

    - ``nameless`` ("Audio 03"): how often the ear's role is taken, how often that role is right, and
      how often the stem stays neutral;
    - ``right_name`` (a clear name for its true role): how often a ``role_conflict`` finding is raised
      wrongly (a false alarm);
    - ``misleading_name`` (each clear name whose role does not fit its true role, vocal and fx names
      left out: those are never questioned): how often the conflict is caught.
    """
    for role, name in ROLE_NAMES.items():
        if R.infer_role(name) != role:
            raise AssertionError(f"{name!r} does not say {role}")
    roles = tuple(role_of_class(c) for c in corpus.classes)
    truth = [roles[i] for i in corpus.y]
    heard = [heard_from(roles, row) for row in proba]
    questioned = [r for r in ROLE_NAMES if r not in (R.LEAD_VOCAL, R.BACKING_VOCAL, R.FX)]

    def decide(name, h):
        return decide_role(name, h, accept_probability=accept, conflict_probability=conflict)

    per: dict[str, dict[str, list[int]]] = {r: {"right": [], "wrong": [], "neutral": [], "alarm": [], "caught": []}
                                            for r in dict.fromkeys(roles) if r in truth}
    for true, h in zip(truth, heard):
        d = decide(NAMELESS, h)
        per[true]["right" if d.source == "heard" and d.role == true else "wrong" if d.source == "heard"
                  else "neutral"].append(1)
        per[true]["alarm"].append(int(decide(ROLE_NAMES[true], h).finding is not None))
        for wrong in questioned:
            if not fits(wrong, true):
                d = decide(ROLE_NAMES[wrong], h)
                per[true]["caught"].append(int(d.finding is not None and d.finding.code == "role_conflict"))

    def share(values: list[int], total: int) -> float | None:
        return round(sum(values) / total, 4) if total else None

    n = len(truth)
    right = sum(len(v["right"]) for v in per.values())
    wrong = sum(len(v["wrong"]) for v in per.values())
    alarms = [a for v in per.values() for a in v["alarm"]]
    caught = [c for v in per.values() for c in v["caught"]]
    return {
        "accept_probability": accept, "conflict_probability": conflict,
        "nameless": {"name": NAMELESS, "heard_share": share([1] * (right + wrong), n),
                     "heard_right": share([1] * right, right + wrong), "neutral_share": share([1] * (n - right - wrong), n),
                     "per_role": {r: {"heard_right": share(v["right"], len(v["alarm"])),
                                      "heard_wrong": share(v["wrong"], len(v["alarm"])),
                                      "neutral": share(v["neutral"], len(v["alarm"]))} for r, v in per.items()}},
        "right_name": {"names": dict(ROLE_NAMES), "false_conflicts": share(alarms, len(alarms)),
                       "per_role": {r: share(v["alarm"], len(v["alarm"])) for r, v in per.items()}},
        "misleading_name": {"pairs": len(caught), "caught": share(caught, len(caught)),
                            "per_role": {r: share(v["caught"], len(v["caught"])) for r, v in per.items()}},
    }


def names_table(checks: dict) -> str:
    """:func:`name_checks` per true role as a Markdown table."""
    lines = ["| true role | nameless: heard right | heard wrong | left neutral | right name: false conflict "
             "| misleading name: caught |", "|---|---|---|---|---|---|"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    nl, rn, mn = checks["nameless"], checks["right_name"], checks["misleading_name"]
    for role, v in nl["per_role"].items():
        lines.append(f"| {role} | {pct(v['heard_right'])} | {pct(v['heard_wrong'])} | {pct(v['neutral'])} | "
                     f"{pct(rn['per_role'][role])} | {pct(mn['per_role'][role])} |")
    lines.append(f"| **all** | {pct(nl['heard_share'] * nl['heard_right'])} | "
                 f"{pct(nl['heard_share'] * (1 - nl['heard_right']))} | {pct(nl['neutral_share'])} | "
                 f"{pct(rn['false_conflicts'])} | {pct(mn['caught'])} ({mn['pairs']} pairs) |")
    return "\n".join(lines)


def confusion_table(rep: dict, classes: tuple[str, ...]) -> str:
    """The confusion matrix and per-class figures as a Markdown table."""
    abbrev = [c[:5] for c in classes]
    lines = ["| true \\ heard | " + " | ".join(abbrev) + " | recall | precision | n |",
             "|---" * (len(classes) + 4) + "|"]
    for i, c in enumerate(classes):
        row = rep["confusion"][i]
        cells = [str(v) if v else "." for v in row]
        r, p = rep["recall"][c], rep["precision"][c]
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {'-' if r is None else f'{100 * r:.1f}%'} | "
                     f"{'-' if p is None else f'{100 * p:.1f}%'} | {rep['support'][c]} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- train

def train(recipe: CorpusRecipe, jobs: int = 2, candidates=CANDIDATES, log=print) -> tuple[dict, dict]:
    """The whole recipe: corpus, held-out evaluation of every candidate, final fit, the model document.

    Returns ``(model document, evaluation document)``.
    """
    started = time.perf_counter()
    corpus = build_corpus(recipe, jobs=jobs, progress=lambda d, n: log(f"  corpus: {d}/{n} batches") if d % 20 == 0 or d == n else None)
    log(f"corpus: {len(corpus.y)} examples, {len(corpus.classes)} classes, {time.perf_counter() - started:.0f} s")
    k = len(corpus.classes)
    results = {}
    for cand in candidates:
        t0 = time.perf_counter()
        per_split = {}
        for split in ("sources", "families"):
            proba = cross_validate(cand, corpus, fold_map(corpus, split))
            per_split[split] = (report(corpus, proba), proba)
        results[cand.name] = per_split
        log(f"{cand.name}: held-out top-1 {per_split['sources'][0]['top1']:.3f} (sources), "
            f"{per_split['families'][0]['top1']:.3f} (font families); {time.perf_counter() - t0:.0f} s")
    best = max(candidates, key=lambda c: (results[c.name]["sources"][0]["top1"], -candidates.index(c)))
    rep, proba = results[best.name]["sources"]
    threshold = accept_threshold(corpus, proba)
    pipe = fit(best, corpus.X, corpus.y, k)
    evaluation = {
        "split": "leave whole sources out: fold k = soundfont k (with its GM kits) + a group of Hydrogen kits + "
                 "a group of espeak-ng voices",
        "chosen": best.name,
        "candidates": {name: {s: {"top1": r[s][0]["top1"], "balanced": r[s][0]["balanced"]} for s in r}
                       for name, r in results.items()},
        "sources": rep,
        "families": results[best.name]["families"][0],
        "threshold": threshold,
        "names": name_checks(corpus, proba, threshold["accept_probability"],
                             max(CONFLICT_PROBABILITY, threshold["accept_probability"])),
    }
    sklearn_version = __import__("sklearn").__version__
    doc = {
        "schema": SCHEMA,
        "classes": list(corpus.classes),
        "roles": {c: role_of_class(c) for c in corpus.classes},
        "descriptors": list(NAMES),
        "descriptor_hash": code_hash(),
        "recipe": recipe.to_dict(),
        "recipe_hash": recipe.hash,
        "training": {"seed": SEED, "examples": int(len(corpus.y)), "candidate": best.name,
                     "scikit_learn": sklearn_version, "sample_weights": "balanced per class"},
        "accept_probability": threshold["accept_probability"],
        "conflict_probability": max(CONFLICT_PROBABILITY, threshold["accept_probability"]),
        "held_out": {"top1": rep["top1"], "balanced": rep["balanced"], "recall": rep["recall"],
                     "families_top1": evaluation["families"]["top1"]},
        "model": export(pipe, best, corpus.classes),
    }
    log(f"chosen: {best.name}; accept from p >= {threshold['accept_probability']:.2f} "
        f"({100 * threshold['accepted_share']:.0f}% of held-out stems, {100 * threshold['accepted_precision']:.1f}% right); "
        f"{time.perf_counter() - started:.0f} s in all")
    return doc, evaluation


def write_model(doc: dict, path: Path) -> Path:
    """Write the model JSON compactly (weights to 7 significant digits) and check it loads."""
    def rounded(value):
        if isinstance(value, float):
            return float(f"{value:.7g}")
        if isinstance(value, list):
            return [rounded(v) for v in value]
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rounded(doc), separators=(",", ":"), sort_keys=True) + "\n")
    RoleModel.load(tmp)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.train_roles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--evaluation", type=Path, default=Path("benchmarks/roles_evaluation.json"),
                        help="where the held-out figures are written")
    parser.add_argument("--tiny", action="store_true", help="the test's tiny recipe (seconds, not minutes)")
    args = parser.parse_args(argv)
    recipe = TINY if args.tiny else CorpusRecipe()
    doc, evaluation = train(recipe, args.jobs)
    write_model(doc, args.out)
    args.evaluation.parent.mkdir(parents=True, exist_ok=True)
    args.evaluation.write_text(json.dumps(evaluation, indent=1) + "\n")
    print(confusion_table(evaluation["sources"], tuple(doc["classes"])))
    print()
    print(names_table(evaluation["names"]))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB) and {args.evaluation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
