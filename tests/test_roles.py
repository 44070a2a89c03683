"""The role recogniser (issue 14): descriptors with known answers, numpy inference against
scikit-learn, the name-vs-ear decision, a tiny retrain end to end, and recorded material through
``plan_session``."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bridge.analyze.descriptors import N_DESCRIPTORS, NAMES, code_hash, describe
from bridge.analyze.features import FeatureExtractor
from bridge.analyze.stem import analyze_stem
from bridge.suggest import roles as R
from bridge.suggest.hearing import Heard, RoleModel, decide_role, decide_roles, fits, shipped_model

FS = 48000
ROOT = Path(__file__).resolve().parents[1]


def _describe(audio: np.ndarray) -> dict[str, float]:
    extractor = FeatureExtractor(FS, audio.shape[1])
    for start in range(0, len(audio), FS):
        extractor.feed(audio[start:start + FS].astype(np.float32))
    features = extractor.finish()
    vector = describe(features.slim(), analyze_stem(features))
    assert vector is not None and vector.shape == (N_DESCRIPTORS,)
    return dict(zip(NAMES, vector))


def _clicks(rate_hz: float, seconds: float = 10.0, offset_s: float = 0.013) -> np.ndarray:
    audio = np.zeros((int(seconds * FS), 1))
    audio[(np.arange(offset_s, seconds, 1.0 / rate_hz) * FS).astype(int)] = 0.8
    return audio


# --- descriptors on signals with known answers --------------------------------------------------------

def test_a_steady_sine_has_no_onsets_and_a_narrow_spectrum():
    t = np.arange(10 * FS) / FS
    d = _describe(0.3 * np.sin(2 * np.pi * 440.0 * t)[:, None])
    assert d["onset_rate_hz"] == 0.0 and d["periodicity"] == 0.0
    assert d["spread_oct"] < 0.25, d["spread_oct"]
    assert abs(d["centroid_oct"] - np.log2(0.44)) < 1 / 6
    assert d["share_400hz"] > -1.0  # nearly all the energy in the 440 Hz band (400 Hz nominal)
    assert d["env_range_db"] < 0.5 and d["mod_depth_db"] < 0.5
    assert d["correlation"] == 1.0 and d["width"] == 0.0  # a mono file plays the same on both sides


@pytest.mark.parametrize("rate_hz", [2.0, 4.0, 7.0])
def test_a_click_train_has_its_onset_rate(rate_hz):
    d = _describe(_clicks(rate_hz))
    assert d["onset_rate_hz"] == pytest.approx(rate_hz, rel=0.08), d["onset_rate_hz"]
    assert d["onset_step_db"] > 30.0 and d["decay_100ms_db"] > 30.0  # sharp, and gone within 100 ms
    if 1.0 / rate_hz <= 1.5:
        assert d["periodicity"] > 0.8


def test_stereo_descriptors_of_identical_opposite_and_independent_channels():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((8 * FS, 2)) * 0.1
    same = _describe(np.repeat(noise[:, :1], 2, axis=1))
    assert same["correlation"] == pytest.approx(1.0, abs=1e-6) and same["width"] == pytest.approx(0.0, abs=1e-6)
    opposite = _describe(noise[:, :1] * np.array([[1.0, -1.0]]))
    assert opposite["correlation"] == pytest.approx(-1.0, abs=1e-6) and opposite["width"] == pytest.approx(1.0, abs=1e-6)
    wide = _describe(noise)
    assert abs(wide["correlation"]) < 0.05 and wide["width"] == pytest.approx(0.5, abs=0.03)


def test_descriptors_do_not_depend_on_gain():
    rng = np.random.default_rng(2)
    t = np.arange(8 * FS) / FS
    tone = np.sin(2 * np.pi * 110 * t) * (np.sin(2 * np.pi * 2 * t) > 0) + 0.05 * rng.standard_normal(len(t))
    loud, quiet = _describe(0.5 * tone[:, None]), _describe(0.5 * 10 ** (-15 / 20) * tone[:, None])
    for name in NAMES:
        assert quiet[name] == pytest.approx(loud[name], abs=0.05 + 0.01 * abs(loud[name])), name


def test_silence_has_no_descriptors_and_every_descriptor_is_documented():
    extractor = FeatureExtractor(FS, 1)
    extractor.feed(np.zeros((3 * FS, 1), np.float32))
    features = extractor.finish()
    assert describe(features.slim(), analyze_stem(features)) is None
    doc = (ROOT / "docs" / "roles.md").read_text()
    missing = [n for n in NAMES if f"`{n}`" not in doc and not re.match(r"(share|range|median)_", n)]
    assert not missing, missing
    assert "`share_<band>hz`" in doc and "`range_<group>`" in doc and "`median_<group>`" in doc


# --- the decision --------------------------------------------------------------------------------------

def _heard(role: str, p: float) -> Heard:
    rest = [r for r in ("keys", "pad", "guitar") if r != role][:2]
    return Heard(role, p, ((role, p), (rest[0], (1 - p) * 0.7), (rest[1], (1 - p) * 0.3)))


def test_a_clear_name_decides_and_a_strong_conflict_becomes_a_finding():
    quiet = decide_role("Bass_DI", _heard("keys", 0.6), accept_probability=0.8, conflict_probability=0.9)
    assert (quiet.role, quiet.source, quiet.probability, quiet.finding) == ("bass", "name", None, None)
    loud = decide_role("Bass", _heard("keys", 0.93), accept_probability=0.8, conflict_probability=0.9)
    assert loud.role == "bass" and loud.source == "name"
    assert loud.finding.code == "role_conflict"
    assert "named 'Bass' but sounds like keys, 0.93" in loud.finding.message
    assert loud.finding.evidence["heard_role"] == "keys" and loud.finding.evidence["name_suggests"] == "bass"
    # A heard role that fits the name is no conflict; vocal names are never questioned by the ear.
    assert decide_role("OH L", _heard("room", 0.97)).finding is None
    assert decide_role("Lead Vox", _heard("synth_lead", 0.99)).finding is None
    assert not fits("kick", "snare") and fits("drums", "kick") and fits("fx", "keys")


def test_a_name_that_says_nothing_takes_a_confident_heard_role_and_stays_neutral_when_unsure():
    for name in ("Track 7", "Audio 03", "Stem_12", "Bounce 2", "07"):
        sure = decide_role(name, _heard("keys", 0.95), accept_probability=0.8)
        assert (sure.role, sure.source, sure.probability) == ("keys", "heard", 0.95), name
        assert sure.finding.code == "role_heard"
        unsure = decide_role(name, _heard("keys", 0.55), accept_probability=0.8)
        assert (unsure.role, unsure.source, unsure.probability) == ("neutral", "name", None)
        assert unsure.finding.code == "role_unknown" and "keys 0.55" in unsure.finding.message
    no_ear = decide_role("Track 7", None)
    assert no_ear.role == "neutral" and no_ear.finding is None


def test_the_roles_file_overrides_name_and_ear():
    vectors = [("Track 7", np.zeros(N_DESCRIPTORS)), ("Bass", np.zeros(N_DESCRIPTORS))]

    class Sure:  # an ear that is sure every stem is a kick
        roles = tuple(R.ROLES[:-1])
        accept_probability, conflict_probability = 0.8, 0.9

        def predict_proba(self, X):
            out = np.zeros((len(X), len(self.roles)))
            out[:, 0] = 1.0
            return out

    decided = decide_roles(vectors, {"Track 7": "pad", "Bass": "keys"}, {"Bass": "config"}, Sure())
    assert (decided["Track 7"].role, decided["Track 7"].source) == ("pad", "roles file")
    assert (decided["Bass"].role, decided["Bass"].source, decided["Bass"].finding) == ("keys", "config", None)
    free = decide_roles(vectors, {}, {}, Sure())
    assert (free["Track 7"].role, free["Track 7"].source) == ("kick", "heard")
    assert free["Bass"].role == "bass" and free["Bass"].finding.code == "role_conflict"


def test_the_name_checks_run_the_decision_on_held_out_ears():
    from tools.roles_corpus import Corpus
    from tools.train_roles import name_checks

    classes = ("kick", "snare", "bass", "keys", "lead_vocal")

    def row(**p):
        rest = (1.0 - sum(p.values())) / (len(classes) - len(p))
        return [p.get(c, rest) for c in classes]

    # A sure, right bass; a keys part the ear is sure is bass; an unsure kick; a vocal heard as keys.
    y = np.array([2, 3, 0, 4])
    proba = np.array([row(bass=0.97), row(bass=0.95), row(kick=0.6), row(keys=0.99)])
    corpus = Corpus(np.zeros((4, N_DESCRIPTORS)), y, classes, ("s",) * 4, np.zeros(4, int), ("a", "b", "c", "d"), "h")
    checks = name_checks(corpus, proba, accept=0.85, conflict=0.9)
    nameless, right, misleading = checks["nameless"], checks["right_name"], checks["misleading_name"]
    assert (nameless["heard_share"], nameless["heard_right"], nameless["neutral_share"]) == (0.75, 0.3333, 0.25)
    assert nameless["per_role"]["kick"] == {"heard_right": 0.0, "heard_wrong": 0.0, "neutral": 1.0}
    # Only "Keys" heard as bass is a false alarm: "Lead Vox" is never questioned, the kick is unsure.
    assert right["false_conflicts"] == 0.25 and right["per_role"]["keys"] == 1.0
    assert right["per_role"]["lead_vocal"] == 0.0
    # The sure bass is caught under every name it does not fit; the keys part (heard as bass) is
    # missed only under "Bass DI", of the ten names that do not fit keys; an unsure ear catches nothing.
    assert misleading["per_role"]["bass"] == 1.0 and misleading["per_role"]["keys"] == 0.9
    assert misleading["per_role"]["kick"] == 0.0


# --- numpy inference == scikit-learn --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logistic", "mlp", "trees", "ensemble"])
def test_numpy_inference_equals_scikit_learn(kind, tmp_path):
    pytest.importorskip("sklearn")
    from tools.train_roles import CANDIDATES, export, fit, write_model

    rng = np.random.default_rng(3)
    classes = ("kick", "snare", "bass", "keys")
    centres = rng.normal(0, 3, (len(classes), N_DESCRIPTORS))
    y = np.repeat(np.arange(len(classes)), 40)
    X = centres[y] + rng.normal(0, 2, (len(y), N_DESCRIPTORS)) * rng.uniform(0.1, 10, N_DESCRIPTORS)
    candidate = next(c for c in CANDIDATES if c.kind == kind)
    small = {"trees": {"max_iter": 20}, "ensemble": {}}.get(kind)
    if kind == "ensemble":
        trees = next(c for c in CANDIDATES if c.kind == "trees")
        members = (next(c for c in CANDIDATES if c.kind == "mlp"), type(trees)(trees.name, "trees", {**trees.params, "max_iter": 20}))
        candidate = type(candidate)(candidate.name, kind, {"members": members})
    elif small:
        candidate = type(candidate)(candidate.name, kind, {**candidate.params, **small})
    pipe = fit(candidate, X, y, len(classes))
    doc = {"schema": "mixbridge-roles-model/1", "classes": list(classes), "roles": {c: c for c in classes},
           "descriptors": list(NAMES), "descriptor_hash": code_hash(), "recipe_hash": "test", "recipe": {},
           "accept_probability": 0.8, "conflict_probability": 0.9, "model": export(pipe, candidate, classes)}
    model = RoleModel.load(write_model(doc, tmp_path / "m.json"))
    probe = np.concatenate([X, centres + rng.normal(0, 5, centres.shape)])
    ours, theirs = model.predict_proba(probe), pipe.predict_proba(probe)
    assert np.abs(ours - theirs).max() < 1e-4
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()


# --- the shipped model -------------------------------------------------------------------------------------

def test_the_shipped_model_matches_the_descriptor_code_and_carries_its_recipe():
    model = shipped_model()
    assert model is not None, "roles_model.json is missing or was trained on other descriptor code: make train-roles"
    assert model.descriptor_hash == code_hash() and model.descriptors == NAMES
    assert re.fullmatch(r"[0-9a-f]{16}", model.recipe_hash)
    assert set(model.roles) <= set(R.ROLES) and R.NEUTRAL not in model.roles
    held = model.doc["held_out"]
    assert 0.0 < held["top1"] <= 1.0 and set(held["recall"]) == set(model.classes)
    assert 0.5 <= model.accept_probability <= model.conflict_probability < 1.0
    assert model.doc["model"]["kind"] in ("logistic", "mlp", "trees", "ensemble")
    assert (ROOT / "bridge" / "suggest" / "roles_model.json").stat().st_size < 3_000_000


# --- end to end: a tiny retrain, and recorded material through plan_session -------------------------------

def _material_missing() -> list[str]:
    from tools.material import missing_tools
    from tools.material.drumkits import DRUMKIT_DIR
    from tools.material.voice import espeak_available

    return missing_tools() + ([] if espeak_available() else ["espeak-ng"]) + (
        [] if (DRUMKIT_DIR / "ColomboAcousticDrumkit" / "drumkit.xml").exists() else ["hydrogen-drumkits"])


needs_material = pytest.mark.skipif(bool(_material_missing()), reason="needs fluidsynth, soundfonts, kits, espeak-ng")


@needs_material
def test_a_tiny_retrain_renders_describes_trains_exports_and_infers_like_scikit_learn(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.setenv("MIXBRIDGE_MATERIAL_CACHE", str(tmp_path / "cache"))
    from tools.roles_corpus import build_corpus
    from tools.train_roles import TINY, Candidate, fit, train, write_model

    candidate = Candidate("logistic", "logistic", {"C": 1.0})
    doc, evaluation = train(TINY, jobs=2, candidates=(candidate,), log=lambda *_: None)
    model = RoleModel.load(write_model(doc, tmp_path / "roles_model.json"))
    assert model.recipe_hash == TINY.hash and model.descriptor_hash == code_hash() and model.current
    corpus = build_corpus(TINY, jobs=1)  # now from the features cache
    assert len(corpus.y) >= 40 and set(corpus.classes) == set(model.classes)
    k = len(corpus.classes)
    assert np.array(evaluation["sources"]["confusion"]).shape == (k, k)
    assert sum(map(sum, evaluation["sources"]["confusion"])) == len(corpus.y)
    again = fit(candidate, corpus.X, corpus.y, k)  # seeded: the same fit as the exported one
    ours, theirs = model.predict_proba(corpus.X), again.predict_proba(corpus.X)
    assert np.abs(ours - theirs).max() < 1e-4 and (ours.argmax(1) == theirs.argmax(1)).all()


@needs_material
def test_badly_named_recorded_stems_get_heard_roles_through_plan_session(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXBRIDGE_MATERIAL_CACHE", str(tmp_path / "cache"))
    from bridge.notes import NotesInput, render_markdown
    from bridge.pipeline import analyze_session, plan_session
    from bridge.suggest.plan import plan_dict
    from tools.material import Recipe, build_session

    form = (("intro", 1), ("verse", 2), ("chorus", 2), ("verse", 2), ("chorus", 2), ("outro", 1))
    recipe = Recipe(seed=HEARD_SEED, title="heard", tempo_bpm=128.0, form=form, soundfont="sf_GMbank",
                    kit="The Black Pearl 1.0", parts=("bass", "keys", "pad", "guitar", "arp", "lead", "bvs"),
                    drum_stems=("kick_in", "snare_top", "hats", "overheads"))
    session = build_session(recipe.with_problems("bad_names"))
    renamed = session.problem("bad_names")["fix"]
    result = analyze_session([session.path], jobs=2)
    plan = plan_session(result)
    doc = {t["name"]: t for t in plan_dict(plan)["tracks"]}
    notes = render_markdown(NotesInput(result, plan))
    heard = 0
    for fix in renamed:
        track = doc[fix["stem"]]
        if fix["name_suggests"] != "neutral":  # "Synth Arp": the name decides
            assert track["role_source"] == "name" and track["role"] == fix["name_suggests"]
            continue
        assert track["role_source"] in ("heard", "name"), track
        codes = {f["code"] for f in track["findings"]}
        if track["role_source"] == "heard":
            heard += 1
            assert track["role"] == fix["role"], (fix, track["role"], track["role_probability"])
            assert track["role_probability"] >= shipped_model().accept_probability and "role_heard" in codes
            # The notes say what was heard, and why.
            assert f"role: {track['role'].replace('_', ' ')}, heard {track['role_probability']:.2f}" in notes
            assert f"sounds like {track['role'].replace('_', ' ')} ({track['role_probability']:.2f})" in notes
        else:
            assert track["role"] == "neutral" and "role_unknown" in codes
            assert "role: neutral (name)" in notes and "the ear is not sure" in notes
    assert heard >= 2, renamed
    # Stems with clear names keep their names' roles.
    for st in session.stems:
        if st.name not in {f["stem"] for f in renamed}:
            assert doc[st.name]["role_source"] == "name" and doc[st.name]["role"] == R.infer_role(st.name)


HEARD_SEED = 5
