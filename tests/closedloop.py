"""The closed loop: plan -> render -> analyse -> plan again, and how to judge it.

Used by tests/test_closed_loop.py and benchmarks/bench_advice.py.  Definitions (docs/suggestions.md,
"Following the advice"):

* **total dB** of a plan: :func:`bridge.suggest.plan.plan_total_db` (|fader dB| per track moved,
  |EQ band gain|, 3 dB per high-pass section, the largest |section gain| of an automation per
  track, a compressor's predicted mean gain reduction, |20 log10 width| up to 6 dB).
* a **reversal**: a second-pass fader or section move on a track the first pass moved the other way,
  larger than 1 dB; or a second-pass EQ band that undoes a first-pass one (opposite sign within half
  an octave, larger than 1 dB).
* a **stacked cut**: a second-pass cut (peak or shelf with negative gain, or a high-pass) on a track
  within half an octave of one of its first-pass cuts or high-passes; and a **stacked compressor**:
  a second-pass compressor on a track the first pass already compressed (the first one stopped
  short of its target; followed literally, the part would run through two).
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bridge.pipeline import analyze_session, plan_session
from bridge.render import render_plan
from bridge.suggest.plan import MixPlan, move_db, plan_dict, plan_total_db


#: The properties (issue 10), used by tests/test_closed_loop.py and benchmarks/bench_advice.py alike.
SECOND_PASS_SHARE = 0.15
CLEAN_MAX_MOVES = 6
#: Planted problems the planner must fix (the others are reported, and docs/suggestions.md says why).
MUST_FIX = frozenset({"level_hot", "level_quiet", "lead_chorus_dip", "pad_rumble", "inverted_channel", "dc_offset",
                      "hard_pan", "over_dynamic_lead"})

SHORT_FORM = (("intro", 1), ("verse", 2), ("chorus", 2), ("verse", 2), ("chorus", 2), ("bridge", 1), ("outro", 1))

#: Recorded-material sessions: name -> ``tools.material.Recipe`` fields.  Different fonts, kits, seeds,
#: tempos, keys, forms, splits.  The tests run the first two; the benchmark runs them all.
RECIPES = {
    "fluidr3-colombo": dict(seed=11, tempo_bpm=132.0, key="E minor", form=SHORT_FORM),
    "gmbank-millo-split": dict(seed=12, tempo_bpm=100.0, key="Bb major", form=SHORT_FORM, soundfont="sf_GMbank",
                               kit="Millo-Drums_v.1", split=("overheads",)),
    "musescore-bja": dict(seed=21, tempo_bpm=146.0, key="F# minor", soundfont="MuseScore_General",
                          kit="BJA_Pacific", lead_source="gm",
                          drum_stems=("kick_in", "kick_out", "snare_top", "snare_bottom", "tom1", "floor_tom",
                                      "hats", "overheads", "room")),
    "fluidr3-blackpearl-split": dict(seed=31, key="D major", kit="The Black Pearl 1.0", split=("guitar", "bvs"),
                                     drum_styles=(("chorus", "four"),),
                                     parts=("bass", "keys", "pad", "guitar", "arp", "lead", "bvs", "brass")),
    "default-s5": dict(seed=5),
}


def material_recipe(name: str, variant: str):
    """The ``tools.material.Recipe`` of a session in :data:`RECIPES` and a variant: ``clean``,
    ``default`` (``DEFAULT_PROBLEMS``) or ``other`` (``OTHER_PROBLEMS``)."""
    import tools.material as material

    recipe = material.Recipe(**RECIPES[name])
    problems = {"default": material.DEFAULT_PROBLEMS, "other": material.OTHER_PROBLEMS}.get(variant, ())
    return recipe.with_problems(*problems) if problems else recipe


@dataclass
class LoopResult:
    first: MixPlan
    second: MixPlan
    first_db: float
    second_db: float
    reversals: list[str] = field(default_factory=list)
    stacked: list[str] = field(default_factory=list)
    plan_s: float = 0.0
    render_s: float = 0.0
    decode_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.second_db / self.first_db if self.first_db > 0 else (0.0 if self.second_db == 0 else math.inf)


def _octaves(a: float, b: float) -> float:
    return abs(math.log2(max(a, 1e-3) / max(b, 1e-3)))


def compare_passes(first: MixPlan, second: MixPlan) -> tuple[list[str], list[str]]:
    """(reversals, stacked cuts) of a second pass against the first."""
    reversals, stacked = [], []
    moved: dict[str, float] = {}
    rides: dict[tuple[str, str], float] = {}
    cuts: dict[str, list] = {}
    comps: dict[str, object] = {}
    for m in first.moves:
        for t in m.tracks:
            if m.kind == "comp":
                comps[t] = m.comp
            elif m.kind == "fader":
                moved[t] = moved.get(t, 0.0) + m.fader_db
            elif m.kind == "automation":
                for g in m.sections:
                    rides[(t, g.name)] = g.gain_db
            elif m.kind in ("eq", "highpass"):
                cuts.setdefault(t, []).append(m.band)
    for m in second.moves:
        for t in m.tracks:
            if m.kind == "comp" and t in comps:
                old = comps[t]
                stacked.append(f"{t}: compressor {m.comp.ratio:g}:1 from {m.comp.threshold_db:.1f} dB on top of "
                               f"{old.ratio:g}:1 from {old.threshold_db:.1f} dB")
            elif m.kind == "fader" and t in moved and moved[t] * m.fader_db < 0 and abs(m.fader_db) > 1.0:
                reversals.append(f"{t}: fader {moved[t]:+.1f} then {m.fader_db:+.1f} dB")
            elif m.kind == "automation":
                for g in m.sections:
                    old = rides.get((t, g.name))
                    if old is not None and old * g.gain_db < 0 and abs(g.gain_db) > 1.0:
                        reversals.append(f"{t}: {g.name} {old:+.1f} then {g.gain_db:+.1f} dB")
            elif m.kind in ("eq", "highpass"):
                for old in cuts.get(t, []):
                    near = _octaves(old.freq_hz, m.band.freq_hz) < 0.5
                    if not near:
                        continue
                    new_cut = m.kind == "highpass" or m.band.gain_db < 0
                    old_cut = old.kind == "highpass" or old.gain_db < 0
                    if new_cut and old_cut:
                        stacked.append(f"{t}: {m.band.kind} at {m.band.freq_hz:.0f} Hz on top of {old.kind} at "
                                       f"{old.freq_hz:.0f} Hz")
                    elif new_cut != old_cut and abs(m.band.gain_db) > 1.0:
                        reversals.append(f"{t}: EQ {old.gain_db:+.1f} then {m.band.gain_db:+.1f} dB near "
                                         f"{old.freq_hz:.0f} Hz")
    return reversals, stacked


def run_loop(stems_dir: Path, out_dir: Path, markers=None, role_config=None) -> LoopResult:
    """Plan, render the plan, analyse the rendered stems, plan again."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    r1 = analyze_session([stems_dir], markers=markers, jobs=1)
    t = time.perf_counter()
    p1 = plan_session(r1, role_config)
    plan_s = time.perf_counter() - t
    t = time.perf_counter()
    rendered = render_plan(plan_dict(p1), stems_dir, out_dir, mixes=False)
    render_s = time.perf_counter() - t
    r2 = analyze_session([str(p) for p in rendered.stem_paths], markers=markers, jobs=1)
    p2 = plan_session(r2, role_config)
    reversals, stacked = compare_passes(p1, p2)
    return LoopResult(p1, p2, plan_total_db(p1), plan_total_db(p2), reversals, stacked, plan_s, render_s)


# --- ground truth of recorded-material sessions -----------------------------------------------------

#: How close a pan move must come to the truth's position (REAPER pan, -1..1).
PAN_TOLERANCE = 0.25


def _on(plan: MixPlan, stem: str | None):
    return [m for m in plan.moves if stem is None or stem in m.tracks]


def truth_matches(plan: MixPlan, move: dict) -> bool | None:
    """Whether the plan holds a move like the truth's ``move`` (docs/material.md, "move" types).

    ``None`` for truth moves that are not planner moves (a role, a re-render).
    """
    kind, stem = move["type"], move.get("stem")
    moves = _on(plan, stem)
    tol = float(move.get("tolerance_db", 3.0))
    if kind == "fader":
        return any(m.kind == "fader" and ("gain_db" not in move or abs(m.fader_db - move["gain_db"]) <= tol) for m in moves)
    if kind == "volume_automation":
        want = set(move["sections"])
        for m in moves:
            if m.kind != "automation":
                continue
            got = {g.name: g.gain_db for g in m.sections}
            if "gain_db" not in move:
                if want & set(got):
                    return True
            elif want <= set(got) and all(abs(got[n] - move["gain_db"]) <= tol for n in want):
                return True
        return False
    if kind in ("eq", "highpass"):
        lo, hi = move.get("freq_range_hz") or move.get("corner_range_hz") or (0.0, 1e6)
        for m in moves:
            if kind == "highpass" and m.kind != "highpass":
                continue
            if m.kind in ("eq", "highpass") and lo <= m.band.freq_hz <= hi:
                if kind == "highpass" or "gain_db" not in move or m.kind == "highpass" or \
                        abs(m.band.gain_db - move["gain_db"]) <= 3.0:
                    return True
        return False
    if kind == "polarity":
        return any(m.kind == "polarity" for m in moves)
    if kind == "compressor":
        lo, hi = move.get("ratio_range", (1.01, 100.0))
        return any(m.kind == "comp" and lo <= m.comp.ratio <= hi for m in moves)
    if kind == "pan":
        # A placement needs a move that puts the part there: a pan move to within PAN_TOLERANCE, or -
        # for the centre only - a fold to mono (width 0), which is how a part bounced to one side of
        # a stereo file is centred (REAPER's balance pan cannot move sound across).  Narrowing is not
        # a placement.
        want = float(move.get("pan", 0.0))
        return any((m.kind == "pan" and abs((m.pan or 0.0) - want) <= PAN_TOLERANCE)
                   or (want == 0.0 and m.kind == "width" and m.width == 0.0) for m in moves)
    if kind == "width":
        return any(m.kind == "width" for m in moves)
    return None


def judge(plan: MixPlan, session_dir: Path) -> dict[str, dict]:
    """Per planted problem: whether each fix is in the plan and whether any avoided move is."""
    truth = json.loads((Path(session_dir) / "truth.json").read_text())
    out = {}
    for p in truth["problems"]:
        out[p["kind"]] = {"fixed": [truth_matches(plan, f) for f in p["fix"]],
                          "avoided": [truth_matches(plan, a) for a in p.get("avoid", []) if a["type"] != "role"
                                      and not (a["type"] == "fader" and p["kind"] == "bad_names")]}
    return out
