"""The review page's "Hear it" renders: exactly the accepted suggestions, level-matched (checked with
pyloudnorm, an independent BS.1770 implementation), cached per plan state and stem fingerprints, bounded,
kept across a restart."""
from __future__ import annotations

import copy
import os

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from bridge.control.controller import SessionController
from bridge.session import Session
from bridge.settings import Settings
from bridge.web.audio import RenderCache, render_key, stem_fingerprints
from bridge.web.state import ActionRefused, ReviewState
from tests.conftest import wait_until
from tests.test_review import PLAN
from tests.test_web_security import write_stems

SECONDS = 3.0
#: Level match promised by docs/review.md.
MATCH_LU = 0.1


@pytest.fixture
def hear(tmp_path):
    stems = write_stems(tmp_path / "stems", seconds=SECONDS)
    session = Session(Settings(stems=stems, target="plan", review=True))
    controller = SessionController(session, copy.deepcopy(PLAN), {})
    session.reviewer = controller
    state = ReviewState(session, controller, RenderCache(tmp_path / "renders", stems)).start()
    yield state, stems, tmp_path
    state.stop()
    session.close()


def rendered(state: ReviewState, ids: list[str]) -> dict:
    entry = state.render({"plan": PLAN["id"], "ids": ids})
    key = entry["key"]
    wait_until(lambda: state.render_status(key)["status"] in ("ready", "failed"), 60, f"the render of {ids}")
    done = state.render_status(key)
    assert done["status"] == "ready", done
    return done


def path_of(state: ReviewState, done: dict, name: str):
    return state.renders.file(done["key"], name)


def lufs(path) -> float:
    data, rate = sf.read(str(path), always_2d=True)
    return pyloudnorm.Meter(rate).integrated_loudness(data)


def rendered_stems(state: ReviewState, done: dict) -> dict[str, bytes]:
    folder = state.renders.get(done["key"]).folder / "render" / "stems"
    return {p.stem: p.read_bytes() for p in folder.glob("*.wav")}


def test_one_accepted_suggestion_differs_from_nothing_accepted_exactly_in_its_track(hear):
    state, stems, _ = hear
    nothing = rendered(state, [])
    kick = rendered(state, ["Kick/too_loud/0"])
    assert {s["name"]: s["status"] for s in nothing["stems"]} == dict.fromkeys(["Bass", "Gtr", "Kick", "Vox"], "copied")
    assert {s["name"]: s["status"] for s in kick["stems"]} == {"Bass": "copied", "Gtr": "copied", "Kick": "processed",
                                                               "Vox": "copied"}
    assert rendered_stems(state, nothing) == {} and rendered_stems(state, kick) == {}, \
        "untouched stems are mixed as bounced, not copied; processed ones are kept level-matched only"
    assert [s["name"] for s in kick["stems"] if s.get("processed")] == ["Kick"]
    source, _ = sf.read(str(stems / "Kick.wav"), always_2d=True)
    (pair,) = [s for s in kick["stems"] if s.get("processed")]
    assert pair["unmatched_lufs"] - pair["source_lufs"] == pytest.approx(-6.0, abs=0.01), "exactly the fader move"
    alone, _ = sf.read(str(path_of(state, kick, pair["processed"])), always_2d=True)
    np.testing.assert_allclose(alone, source, atol=1e-5, err_msg="alone, level-matched: a fader move sounds the same")
    mix0, _ = sf.read(str(path_of(state, nothing, "mix_before.wav")))
    after0, _ = sf.read(str(path_of(state, nothing, "mix_after.wav")))
    np.testing.assert_allclose(after0, mix0, atol=1e-6, err_msg="nothing accepted sounds as bounced")
    after1, _ = sf.read(str(path_of(state, kick, "mix_after.wav")))
    played = after1 * 10 ** (-kick["match_gain_db"] / 20)  # the level match undone: the stems as played
    np.testing.assert_allclose(played - mix0, source * (10 ** (-6.0 / 20) - 1), atol=2e-5,
                               err_msg="the mix differs from nothing accepted by Kick's move alone")


def test_before_and_after_are_level_matched_within_a_tenth_of_a_lu(hear):
    state, _, _ = hear
    done = rendered(state, ["Kick/too_loud/0", "Kick/masking/1", "Gtr/phase/0", "Gtr/width/1"])
    mix_before, mix_after = lufs(path_of(state, done, "mix_before.wav")), lufs(path_of(state, done, "mix_after.wav"))
    assert abs(mix_before - mix_after) < MATCH_LU, (mix_before, mix_after)
    assert abs(done["match_gain_db"]) > 1.0, "the plan changed the level, so the match did something"
    pairs = [s for s in done["stems"] if s["status"] == "processed"]
    assert {s["name"] for s in pairs} == {"Kick", "Gtr"}
    for s in pairs:
        alone_before = lufs(path_of(state, done, s["source"]))
        alone_after = lufs(path_of(state, done, s["processed"]))
        assert abs(alone_before - alone_after) < MATCH_LU, (s["name"], alone_before, alone_after)
        assert sf.info(str(path_of(state, done, s["processed"]))).channels == 2, "as a stereo track plays it"


def test_a_repeated_state_is_a_cache_hit_and_a_new_bounce_is_not(hear):
    state, stems, _ = hear
    cache = state.renders
    first = rendered(state, ["Kick/too_loud/0", "Gtr/width/1"])
    renders = cache.counters["renders"]
    again = state.render({"plan": PLAN["id"], "ids": ["Gtr/width/1", "Kick/too_loud/0"]})
    assert again["key"] == first["key"] and again["status"] == "ready", "a hit, at once"
    assert cache.counters["renders"] == renders and cache.counters["hits"] == 1
    # The same moves under another plan id (a new pass that planned the same) hear the same.
    doc = state.controller.review.plan_for_target()
    assert render_key(dict(doc, id="other"), stem_fingerprints(stems)) == render_key(doc, stem_fingerprints(stems))
    # A new bounce of one stem is a new state.
    path = stems / "Vox.wav"
    data, rate = sf.read(str(path), always_2d=True)
    sf.write(str(path), data * 0.5, rate, subtype="PCM_24")
    os.utime(path, ns=(1, 1))
    third = rendered(state, ["Gtr/width/1", "Kick/too_loud/0"])
    assert third["key"] != first["key"] and cache.counters["renders"] == renders + 1


def test_the_cache_is_bounded_and_kept_across_a_restart(hear):
    state, stems, tmp_path = hear
    state.renders.max_entries = 2
    keys = [rendered(state, ids)["key"] for ids in ([], ["Kick/too_loud/0"], ["Gtr/width/1"])]
    on_disk = sorted(p.name for p in (tmp_path / "renders").iterdir())
    assert on_disk == sorted(keys[1:]), "the least recently used went"
    assert state.renders.counters["evicted"] == 1
    again = RenderCache(tmp_path / "renders", stems)  # a restart: finished renders are found, not redone
    assert {e.key: e.status for e in again.entries()} == {k: "ready" for k in keys[1:]}
    assert again.file(keys[2], "mix_after.wav").is_file()


def test_only_the_plan_the_page_shows_and_its_own_suggestions_are_rendered(hear):
    state, _, _ = hear
    with pytest.raises(ActionRefused) as caught:
        state.render({"plan": "old", "ids": []})
    assert caught.value.status == 409
    for ids in (["Nope/x/0"], "Kick/too_loud/0", [1], ["x" * 500]):
        with pytest.raises(ActionRefused):
            state.render({"plan": PLAN["id"], "ids": ids})
