"""The review state of a plan: accepting and rejecting suggestions, and the plan a target gets."""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.suggest.review import ACCEPTED, PENDING, REJECTED, Review


def _change(target, param, value, sid, unit=""):
    return {"target": target, "param": param, "value": value, "unit": unit, "reason": sid.split("/")[1],
            "suggestion": sid}


PLAN = {
    "schema_version": 1, "id": "p1", "settings": {"amount": 1.0},
    "mix": {"findings": [], "estimated_ai_delta_lu": -2.0},
    "tracks": [
        {"name": "Kick", "status": "ai",
         "findings": [{"code": "masking", "severity": "warning", "message": "Kick masks Bass"},
                      {"code": "too_loud", "severity": "problem", "message": "Kick is 6 LU too loud"}],
         "changes": [_change("track", "volume_db", -6.0, "Kick/too_loud/0", "dB"),
                     _change("eq", "band2_type", "peak", "Kick/masking/1"),
                     _change("eq", "band2_freq_hz", 110.0, "Kick/masking/1", "Hz"),
                     _change("eq", "band2_gain_db", -6.0, "Kick/masking/1", "dB"),
                     _change("eq", "band2_q", 0.7, "Kick/masking/1")],
         "automation": [],
         "suggestions": [{"id": "Kick/too_loud/0", "code": "too_loud", "summary": "turn Kick down", "has_moves": True},
                         {"id": "Kick/masking/1", "code": "masking", "summary": "cut Kick at 110 Hz", "has_moves": True}]},
        {"name": "Vox", "status": "ai", "findings": [{"code": "section_level", "severity": "info", "message": "ride"}],
         "changes": [],
         "automation": [{"param": "volume_db", "points": [[1.0, 0.0], [2.0, 3.0]], "reason": "section_level",
                         "suggestion": "Vox/section_level/0"}],
         "suggestions": [{"id": "Vox/section_level/0", "code": "section_level", "summary": "ride the chorus",
                          "has_moves": True}]},
        {"name": "Gtr", "status": "ai", "findings": [],
         "changes": [_change("track", "polarity", 1, "Gtr/phase/0", "flag") | {"channel": "right"},
                     _change("track", "width", 0.5, "Gtr/width/1")],
         "automation": [],
         "suggestions": [{"id": "Gtr/phase/0", "code": "phase", "summary": "flip R", "has_moves": True},
                         {"id": "Gtr/width/1", "code": "width", "summary": "narrow", "has_moves": True}]},
        {"name": "Bass", "status": "untouched", "findings": [], "changes": [], "automation": [], "suggestions": []},
    ],
}
IDS = ["Kick/too_loud/0", "Kick/masking/1", "Vox/section_level/0", "Gtr/phase/0", "Gtr/width/1"]


def moves(doc):
    """Every change and automation lane of a plan document, tagged with its track."""
    out = []
    for t in doc["tracks"]:
        out += [(t["name"], "change", repr(sorted(c.items()))) for c in t["changes"]]
        out += [(t["name"], "automation", repr(sorted(a.items()))) for a in t["automation"]]
    return sorted(out)


def moves_of(ids):
    return sorted(m for m in moves(PLAN) if any(f"'suggestion', '{i}'" in m[2] for i in ids))


def test_suggestions_are_listed_in_plan_order_with_slots_and_indices():
    review = Review(PLAN)
    assert [s.id for s in review.suggestions] == IDS
    assert [(s.track_slot, s.index) for s in review.suggestions] == [(1, 1), (1, 2), (2, 1), (3, 1), (3, 2)]
    assert review.at(3, 2).id == "Gtr/width/1" and review.at(4, 1) is None and review.at(1, 3) is None
    assert all(review.state(i) == PENDING for i in IDS)


def test_nothing_accepted_is_an_empty_plan_that_keeps_every_track():
    doc = Review(PLAN).plan_for_target()
    assert moves(doc) == []
    assert [t["name"] for t in doc["tracks"]] == ["Kick", "Vox", "Gtr", "Bass"], "tracks stay so the target can revert"
    assert doc["mix"] == PLAN["mix"] and doc["id"] == PLAN["id"]


@pytest.mark.parametrize("sid", IDS)
def test_accepting_one_suggestion_yields_exactly_its_changes(sid):
    doc = Review(PLAN).accept(sid).plan_for_target()
    assert moves(doc) == moves_of([sid])
    assert moves(doc), "every suggestion here has moves"


def test_accept_then_reject_returns_to_the_empty_plan():
    review = Review(PLAN).accept("Kick/masking/1").reject("Kick/masking/1")
    assert moves(review.plan_for_target()) == []
    assert review.state("Kick/masking/1") == REJECTED


def test_accept_all_is_the_full_plan():
    assert moves(Review(PLAN).accept_all().plan_for_target()) == moves(PLAN)


def test_bulk_accepts_leave_rejections_alone_and_bulk_rejects_take_everything_out():
    review = Review(PLAN).reject("Kick/too_loud/0").accept_track("Kick")
    assert review.state("Kick/too_loud/0") == REJECTED and review.state("Kick/masking/1") == ACCEPTED
    assert review.pending("Kick") == ()
    review = review.accept_all().reject_track("Gtr")
    assert moves(review.plan_for_target()) == moves_of(["Kick/masking/1", "Vox/section_level/0"])
    assert moves(review.reject_all().plan_for_target()) == []


def test_unknown_ids_raise_and_the_plan_is_never_mutated():
    before = copy.deepcopy(PLAN)
    with pytest.raises(KeyError):
        Review(PLAN).accept("Kick/../../etc/passwd")
    Review(PLAN).accept_all().plan_for_target()["tracks"][0]["changes"].clear()
    assert PLAN == before


def test_decisions_carry_over_to_a_new_plan_by_id():
    review = Review(PLAN).accept("Gtr/width/1").reject("Kick/too_loud/0")
    newer = copy.deepcopy(PLAN)
    newer["tracks"][2]["changes"][1]["value"] = 0.7
    del newer["tracks"][0]["suggestions"][0]
    newer["tracks"][0]["changes"].pop(0)
    moved = review.updated(newer)
    assert moved.state("Gtr/width/1") == ACCEPTED and "Kick/too_loud/0" not in moved.states
    (width,) = [c for t in moved.plan_for_target()["tracks"] for c in t["changes"]]
    assert width["value"] == 0.7


def test_track_summaries_show_the_most_severe_finding_and_pending_counts():
    review = Review(PLAN).accept("Kick/too_loud/0")
    summaries = review.track_summaries({"Kick": "ai"}, {"Kick": {"integrated_lufs": -14.25}, "Vox": {}})
    kick, vox, gtr, bass = summaries
    assert (kick.slot, kick.name, kick.provenance, kick.integrated_lufs) == (1, "Kick", "ai", -14.25)
    assert kick.top_finding == "Kick is 6 LU too loud" and kick.top_severity == "problem"
    assert (kick.pending, vox.pending, gtr.pending, bass.pending) == (1, 1, 2, 0)
    assert vox.integrated_lufs is None and vox.provenance == "" and bass.top_finding == ""


def test_changes_without_suggestion_ids_are_still_reachable():
    plan = copy.deepcopy(PLAN)
    for t in plan["tracks"]:
        t.pop("suggestions")
        for c in t["changes"] + t["automation"]:
            c.pop("suggestion")
    review = Review(plan)
    assert {s.id for s in review.suggestions} == {"Kick/too_loud", "Kick/masking", "Vox/section_level",
                                                  "Gtr/phase", "Gtr/width"}
    assert len(moves(review.accept("Kick/masking").plan_for_target())) == 4


OPS = st.lists(st.tuples(st.sampled_from(["accept", "reject", "reset"]), st.sampled_from(IDS)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_the_target_plan_holds_exactly_what_was_last_accepted(ops):
    review = Review(PLAN)
    last: dict[str, str] = {}
    for op, sid in ops:
        review = getattr(review, op)(sid)
        last[sid] = op
    accepted = [sid for sid, op in last.items() if op == "accept"]
    assert moves(review.plan_for_target()) == moves_of(accepted)
    assert sorted(review.accepted_ids) == sorted(accepted)


@settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(IDS)))
def test_accepting_a_set_is_the_union_of_its_parts(ids):
    review = Review(PLAN)
    for sid in ids:
        review = review.accept(sid)
    assert moves(review.plan_for_target()) == moves_of(ids)
    assert len(review.pending()) == len(IDS) - len(ids)
