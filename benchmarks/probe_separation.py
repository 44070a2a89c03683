"""Do candidate measures separate two planted problems from natural content?  A measuring tool, not a test.

Two planted problems of tools/material/problems.py are not fixed by the planner: ``masking_boost``
(keys/guitar +9 dB peak at 2 kHz, Q 0.9, over the lead vocal's presence) and ``kick_bass_buildup``
(bass +8 dB at 80 Hz, both kick mics +6 dB at 65 Hz).  Before an objective term is built for either,
the measure it would rest on must separate the planted parts from natural content with a clear
margin on every session.  This script measures candidate measures on the material sessions in the
material cache (clean twins and problem variants, tools/material) and prints, per measure, the range
over natural parts (every part no planted problem of that kind touched), the range over planted ones
and the margin (lowest planted minus highest natural; negative: no separation).

Masking (lead vocal's presence bands, 1-4 kHz, balanced mix as the objective judges it; per other
group and band the median over the lead's significant cells, then the largest band):

- ``excess_db``: the masker's spread excitation over the lead's own (``S_v - S_u``, dB);
- ``loss_single``: the lead's loudness loss with that masker alone (analysis.md 5.2 step 6:
  ``1 - ((E + M)^0.23 - M^0.23) / E^0.23``);
- ``loss_attributable``: the loss with every masker minus the loss without that one;
- ``presence_bump_db``: the part's median spectrum above a quadratic fit (log frequency, 200 Hz-8 kHz),
  mean of three bands, largest centre in 1.25-3.15 kHz (parts other than drums, bass, lead).

Kick/bass (bands 50-100 Hz against 160-400 Hz or 224 Hz-4.5 kHz):

- ``part_low_body_db``: each bass and kick mic, its own low band over its own body (active frames);
- ``mix_low_mid_db``, ``mix_low125_mid_db``, ``mix_low_body_db``: the balanced mix's low end over its
  mids / body (one value per session: planted = a session with the build-up).

Tonal templates (``tonal_*``): what a part of that role normally sounds like, from the role
recogniser's corpus (tools/roles_corpus.py: labelled clean examples from three soundfonts, eleven
Hydrogen kits, espeak-ng voices; examples given random EQ bells by ``_augmentation`` left out, the
rest of its processing kept as honest spread).  Each example's and each part's long-term 1/3-octave
spectrum over its active frames, as shares of its own energy (the descriptors' ``share_*``), is
turned into a shape: ``share`` (as is), ``oct`` (each band over the mean of its two octave
neighbours, so note range and tilt matter less) or ``smooth`` (over the mean of the bands 2-4 thirds
away on either side).  Per corpus class and band: median and spread (1.4826 MAD, at least 1 dB);
a part's deviation ``z`` = (shape - median) / spread.  Planted value: the boosted part's largest z
in 1.6-2.5 kHz, a built-up bass's in 63-100 Hz, a built-up kick mic's in 50-80 Hz; natural value:
every untouched part's largest z anywhere in 40 Hz-12.5 kHz (a term would look at every band).
``_in`` variants: natural values only in the planted bands, of parts of the same families
(keys/guitar/synth/horns/pad; bass/kick).  Template sources: ``all`` (the session's own soundfont
and kit included), ``font`` (without the session's soundfont, or kit for drums) and ``lineage``
(without every soundfont of its lineage -- FluidR3 and MuseScore_General share samples -- and the
kit's whole evaluation fold).  The corpus is rendered by ``make train-roles`` (or here, into the
material cache, on first use: about 6-20 minutes).

Usage: python benchmarks/probe_separation.py [--cache DIR] [--analyses DIR] [--json OUT] [--no-tonal] [--rendered-corpus]
(``--analyses`` keeps the analyses as pickles there and reuses them; the material must be built,
e.g. by benchmarks/bench_advice.py.)
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bridge.analyze.spectrum import BAND_CENTERS_HZ  # noqa: E402
from bridge.pipeline import analyze_session, stem_views  # noqa: E402
from bridge.suggest.groups import detect_groups  # noqa: E402
from bridge.suggest.model import TrackDecision  # noqa: E402
from bridge.suggest.objective import Objective  # noqa: E402
from bridge.suggest.plan import _sections_of, _stereo_fixes  # noqa: E402
from bridge.suggest.predict import MixModel  # noqa: E402
from bridge.suggest.search import Optimiser  # noqa: E402

C = BAND_CENTERS_HZ
NOT_BUMPED = ("kick", "snare", "toms", "overheads", "room", "hats", "bass", "lead_vocal")


def bands(lo_hz: float, hi_hz: float) -> np.ndarray:
    return np.flatnonzero((C >= lo_hz * 0.99) & (C <= hi_hz * 1.01))


def db(x):
    return 10.0 * np.log10(np.maximum(x, 1e-30))


def analysis_of(folder: Path, keep: Path | None):
    from tools.material import load_session
    cached = keep / (folder.name + ".pkl") if keep else None
    if cached is not None and cached.exists():
        return pickle.loads(cached.read_bytes())
    result = analyze_session([folder], markers=load_session(folder).markers(), jobs=1)
    if cached is not None:
        cached.write_bytes(pickle.dumps(result))
    return result


def balanced_mix(result):
    """The model, the balanced decisions and the per-group shifts the objective judges masking on."""
    views = stem_views(result, {}, (), {}, True)
    model = MixModel(views, detect_groups(views, {}, "roles file"), _sections_of(result.mix))
    obj = Objective(model)
    opt = Optimiser(obj, _stereo_fixes(model)[0])
    _, balanced, shifts = obj.masking({}, opt.choose_anchor(opt.start), [])
    return model, balanced, shifts


def masking_rows(model, balanced, shifts, boosted: set[str], session: str) -> list[dict]:
    leads = [g for g, (_, mem) in enumerate(model.groups) if any(model.stems[k].role == "lead_vocal" for k in mem)]
    if not leads:
        return []
    u = leads[0]
    pres = bands(1000, 4000)
    le_u, lt_u, sig_u, _, _ = model.unit_state(u, balanced)
    E = 10.0 ** (le_u.astype(float) / 10.0)
    N = E ** 0.23
    maskers = {}
    for v in range(len(model.groups)):
        if v != u:
            lt_v = model.unit_state(v, balanced)[1].astype(float) + shifts[v] - shifts[u]
            maskers[v] = (10.0 ** (lt_v / 10.0), lt_v)
    every = sum(M for M, _ in maskers.values())

    def partial(e, m):
        return (e + m) ** 0.23 - m ** 0.23
    rows = []
    for v, (M, lt_v) in maskers.items():
        values = {"excess_db": [], "loss_single": [], "loss_attributable": []}
        for b in pres:
            f = sig_u[:, b]
            if f.sum() < 20:
                continue
            e, n = E[f, b], N[f, b]
            values["excess_db"].append(np.median(lt_v[f, b] - lt_u[f, b]))
            values["loss_single"].append(np.median(1.0 - partial(e, M[f, b]) / n))
            values["loss_attributable"].append(np.median((partial(e, every[f, b] - M[f, b]) - partial(e, every[f, b])) / n))
        name, members = model.groups[v]
        planted = any(model.stems[k].name in boosted for k in members)
        for measure, vals in values.items():
            if vals:
                rows.append({"measure": measure, "value": float(max(vals)), "part": name, "session": session,
                             "planted": planted})
    fit, x = bands(200, 8000), np.log2(C)
    lo, hi = int(np.searchsorted(C, 1250)), int(np.searchsorted(C, 3150))
    for s in model.stems:
        if s.role in NOT_BUMPED or not s.active.any():
            continue
        level = db(np.median(s.E[s.active], axis=0))
        residual = level - np.polyval(np.polyfit(x[fit], level[fit], 2), x)
        bump = max(float(residual[i - 1:i + 2].mean()) for i in range(lo, hi + 1))
        rows.append({"measure": "presence_bump_db", "value": bump, "part": s.name, "session": session,
                     "planted": s.name in boosted})
    return rows


def low_rows(model, balanced, shifts, built: set[str], session: str) -> list[dict]:
    low, body, mid = bands(50, 100), bands(160, 400), bands(224, 4500)
    rows = []
    total = np.zeros(len(C))
    for g, (_, members) in enumerate(model.groups):
        for k in members:
            total += model.stem_state(k, balanced.get(model.stems[k].name, TrackDecision())).E.mean(axis=0) \
                * 10.0 ** (shifts.get(g, 0.0) / 10.0)
    for s in model.stems:
        if s.role in ("bass", "kick") and s.active.any():
            value = float(db(s.mean_E[low].mean()) - db(s.mean_E[body].mean()))
            rows.append({"measure": "part_low_body_db", "value": value, "part": s.name, "session": session,
                         "planted": s.name in built})
    planted = bool(built)
    level = db(total)
    for measure, value in (("mix_low_mid_db", db(total[low].mean()) - level[mid].mean()),
                           ("mix_low125_mid_db", db(total[bands(50, 125)].mean()) - level[mid].mean()),
                           ("mix_low_body_db", db(total[low].mean()) - db(total[body].mean()))):
        rows.append({"measure": measure, "value": float(value), "part": "(mix)", "session": session,
                     "planted": planted})
    return rows


# ------------------------------------------------------------------ tonal templates from the corpus

#: The material's stem labels (truth.json) as corpus classes.
CORPUS_CLASS = {"kick": "kick", "snare": "snare", "toms": "toms", "overheads": "overheads", "room": "room",
                "hats": "hats", "bass": "bass", "synth_bass": "bass", "piano": "keys", "electric_piano": "keys",
                "strings": "pad", "pad": "pad", "electric_guitar": "guitar", "arp": "synth", "brass": "horns",
                "lead_vocal": "lead_vocal", "backing_vocal": "backing_vocal"}
#: Soundfonts that share samples (MuseScore_General grew out of FluidR3).
LINEAGE = {"FluidR3_GM": "fluid", "FluidR3_GS": "fluid", "MuseScore_General": "fluid", "sf_GMbank": "gmbank"}
DRUM_CLASSES = ("kick", "snare", "toms", "overheads", "room", "hats")
#: Planted kinds that change a part's spectrum (their parts are neither natural nor judged here).
TONAL_KINDS = ("masking_boost", "kick_bass_buildup", "pad_rumble", "clipped")
PLANTED_BANDS_HZ = {"masking_boost": (1600, 2500), "bass": (63, 100), "kick": (50, 80)}
SHAPES = ("share", "oct", "smooth")
#: A class with fewer corpus examples than this (after leaving sources out) has no template.
MIN_EXAMPLES = 10
LEAVE = ("all", "font", "lineage")


def shape_db(share: np.ndarray, how: str) -> np.ndarray:
    """A long-term share spectrum (dB, ``(..., bands)``) as a shape; NaN where a band lacks neighbours."""
    out = np.full(share.shape, np.nan)
    if how == "share":
        return share.astype(float)
    if how == "oct":
        out[..., 3:-3] = share[..., 3:-3] - 0.5 * (share[..., :-6] + share[..., 6:])
        return out
    for b in range(share.shape[-1]):
        idx = [j for j in range(b - 4, b + 5) if 0 <= j < share.shape[-1] and abs(j - b) > 1]
        out[..., b] = share[..., b] - share[..., idx].mean(axis=-1)
    return out


def corpus_shares(jobs: int = 2, rendered_only: bool = False):
    """The role corpus' long-term shares ``(n, bands)``, classes, sources, and which had EQ bells added.

    ``rendered_only``: only the batches already in the material cache (nothing is rendered).
    """
    from bridge.analyze.descriptors import _spectrum
    from bridge.analyze.features import StemFeatures
    from bridge.analyze.spectrum import N_BANDS
    from bridge.analyze.stem import analyze_stem
    from tools.roles_corpus import CorpusRecipe, _features_path, batches, build_corpus, plan_corpus

    recipe = CorpusRecipe()
    planned = plan_corpus(recipe)
    bells_of = {e.id: bool(e.params.get("augment", {}).get("bells")) for e in planned}
    if not rendered_only:
        corpus = build_corpus(recipe, jobs=jobs)
        return (corpus.X[:, :N_BANDS], np.array([corpus.classes[k] for k in corpus.y]), np.array(corpus.sources),
                np.array([bells_of[i] for i in corpus.ids]))
    shares, classes, sources, bells = [], [], [], []
    for batch in batches(planned):
        path = _features_path(batch)
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as data:
            for i, ex in enumerate(batch):
                names = [k for k in data.files if k.startswith(f"{i}/")]
                if not names:
                    continue
                features = StemFeatures.from_arrays({k.split("/", 1)[1]: data[k] for k in names})
                analysis = analyze_stem(features)
                if analysis.faults.silent or features.n_frames < 10:
                    continue
                active = np.asarray(analysis.active, dtype=bool)[: features.n_frames]
                shares.append(_spectrum(features.band_power.astype(np.float64), active)[:N_BANDS])
                classes.append(ex.cls)
                sources.append(ex.source)
                bells.append(bells_of[ex.id])
    print(f"role corpus: {len(shares)} of {len(planned)} examples rendered")
    return np.array(shares), np.array(classes), np.array(sources), np.array(bells)


def material_parts(result, truth: dict, session: str) -> list[dict]:
    """Each analysed stem of a material session: its share spectrum, corpus class, source, planted kinds."""
    from bridge.analyze.descriptors import _spectrum
    from bridge.analyze.spectrum import N_BANDS

    views = {v.name: v for v in stem_views(result, {}, (), {}, True)}
    kinds: dict[str, list[str]] = {}
    for p in truth["problems"]:
        for name in p["stems"]:
            kinds.setdefault(name, []).append(p["kind"])
    out = []
    for stem in truth["stems"]:
        v = views.get(stem["name"])
        if v is None or not v.usable:
            continue
        active = np.asarray(v.analysis.active, dtype=bool)[: len(v.band_power)]
        source = stem["source"].get("soundfont") or stem["source"].get("kit") or "espeak"
        out.append({"session": session, "part": stem["name"], "cls": CORPUS_CLASS[stem["label"]],
                    "source": source, "kinds": kinds.get(stem["name"], []),
                    "share": np.array(_spectrum(v.band_power.astype(np.float64), active)[:N_BANDS])})
    return out


def _template_mask(part: dict, classes, sources, bells, leave: str) -> np.ndarray:
    from tools.roles_corpus import KIT_FOLDS

    mask = (classes == part["cls"]) & ~bells
    if leave == "font":
        mask &= sources != part["source"]
    elif leave == "lineage":
        lineage = LINEAGE.get(part["source"], part["source"])
        mask &= np.array([LINEAGE.get(s, s) != lineage for s in sources])
        for fold in KIT_FOLDS:
            if part["source"] in fold:
                mask &= ~np.isin(sources, fold)
    return mask


def tonal_rows(parts: list[dict], corpus, how: str, leave: str) -> list[dict]:
    """z of every part against its class template (see the module docstring), as measure rows."""
    shares, classes, sources, bells = corpus
    shapes = shape_db(shares, how)
    lo, hi = bands(40, 12500)[[0, -1]]
    templates: dict[tuple, tuple] = {}
    rows = []
    for p in parts:
        mask = _template_mask(p, classes, sources, bells, leave)
        if mask.sum() < MIN_EXAMPLES:
            continue
        key = (p["cls"], tuple(np.flatnonzero(mask)[:3]), int(mask.sum()))
        if key not in templates:
            chosen = shapes[mask]
            median = np.nanmedian(chosen, axis=0)
            templates[key] = (median, np.maximum(1.4826 * np.nanmedian(np.abs(chosen - median), axis=0), 1.0))
        median, spread = templates[key]
        z = (shape_db(p["share"], how) - median) / spread
        family = "low" if p["cls"] in ("bass", "kick") else "boost" if p["cls"] in (
            "keys", "guitar", "synth", "horns", "pad") else None
        where = PLANTED_BANDS_HZ["masking_boost"] if family == "boost" else PLANTED_BANDS_HZ.get(p["cls"])
        peak_in = bands(*where)[int(np.nanargmax(z[bands(*where)]))] if where else None
        peak_any = lo + int(np.nanargmax(z[lo:hi + 1]))
        base = {"part": p["part"], "session": p["session"], "cls": p["cls"]}
        in_bands = {**base, "value": float(z[peak_in]) if where else None,
                    "at_hz": float(C[peak_in]) if where else None}
        anywhere = {**base, "value": float(z[peak_any]), "at_hz": float(C[peak_any])}
        if "masking_boost" in p["kinds"] or "kick_bass_buildup" in p["kinds"]:
            kind = "boost" if "masking_boost" in p["kinds"] else "low"
            for suffix in ("", "_in"):
                rows.append({**in_bands, "measure": f"tonal_{how}_{leave}_{kind}{suffix}", "planted": True})
        elif not any(k in TONAL_KINDS for k in p["kinds"]):
            for kind in ("boost", "low"):
                rows.append({**anywhere, "measure": f"tonal_{how}_{leave}_{kind}", "planted": False})
            if family:
                rows.append({**in_bands, "measure": f"tonal_{how}_{leave}_{family}_in", "planted": False})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for measure in dict.fromkeys(r["measure"] for r in rows):
        natural = [r for r in rows if r["measure"] == measure and not r["planted"]]
        planted = [r for r in rows if r["measure"] == measure and r["planted"]]
        if not natural or not planted:
            continue
        top = max(natural, key=lambda r: r["value"])
        low = min(planted, key=lambda r: r["value"])
        out.append({"measure": measure, "natural_n": len(natural),
                    "natural_p50": float(np.median([r["value"] for r in natural])),
                    "natural_max": top["value"], "natural_max_at": f"{top['part']} ({top['session']})",
                    "planted": sorted(round(r["value"], 2) for r in planted),
                    "planted_min_at": f"{low['part']} ({low['session']})",
                    "margin": low["value"] - top["value"]})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", help="material cache (default $MIXBRIDGE_MATERIAL_CACHE or ~/.cache/mixbridge-material)")
    parser.add_argument("--analyses", help="keep and reuse the analyses (pickles) in this folder")
    parser.add_argument("--json", help="write every measured value and the summary here")
    parser.add_argument("--no-tonal", action="store_true", help="skip the tonal templates (no role corpus needed)")
    parser.add_argument("--rendered-corpus", action="store_true",
                        help="tonal templates from the role corpus examples already rendered (render nothing)")
    args = parser.parse_args()
    cache = Path(args.cache or os.environ.get("MIXBRIDGE_MATERIAL_CACHE") or Path.home() / ".cache/mixbridge-material")
    keep = Path(args.analyses) if args.analyses else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    folders = [p for p in sorted((cache / "sessions").iterdir()) if (p / "truth.json").exists()]
    if not folders:
        print(f"no material sessions under {cache}/sessions (build them with benchmarks/bench_advice.py)")
        return 1
    rows, parts = [], []
    for folder in folders:
        truth = json.loads((folder / "truth.json").read_text())
        touched = {kind: {s for p in truth["problems"] if p["kind"] == kind for s in p["stems"]}
                   for kind in ("masking_boost", "kick_bass_buildup")}
        result = analysis_of(folder, keep)
        parts += material_parts(result, truth, folder.name)
        model, balanced, shifts = balanced_mix(result)
        rows += masking_rows(model, balanced, shifts, touched["masking_boost"], folder.name)
        rows += low_rows(model, balanced, shifts, touched["kick_bass_buildup"], folder.name)
    if not args.no_tonal:
        corpus = corpus_shares(rendered_only=args.rendered_corpus)
        for how in SHAPES:
            for leave in LEAVE:
                rows += tonal_rows(parts, corpus, how, leave)
    table = summary(rows)
    print(f"{len(folders)} sessions under {cache}/sessions")
    print(f"{'measure':20s} {'natural n':>9s} {'p50':>7s} {'max':>7s}  {'planted':34s} {'margin':>7s}  highest natural / lowest planted")
    for t in table:
        planted = " ".join(f"{v:.2f}" for v in t["planted"])
        print(f"{t['measure']:20s} {t['natural_n']:9d} {t['natural_p50']:7.2f} {t['natural_max']:7.2f}  {planted:34s} "
              f"{t['margin']:7.2f}  {t['natural_max_at']} / {t['planted_min_at']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": table, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
