"""Targets: the DAW-less plan target, and make_target (which never connects)."""
from __future__ import annotations

import json
import socket

import pytest

from bridge.daw.base import Target
from bridge.daw.plan_target import PlanTarget
from bridge.daw.reapy_target import LazyReaperTarget
from bridge.daw.targets import make_target
from bridge.errors import DawUnavailable, UsageError
from bridge.settings import Connection, Settings
from bridge.suggest.review import Review
from tests.test_review import PLAN


def test_plan_target_records_the_plan_and_ai_tags(tmp_path):
    target = PlanTarget(tmp_path)
    assert isinstance(target, Target) and target.kind == "plan"
    doc = Review(PLAN).accept("Kick/masking/1").plan_for_target()
    report = target.apply(doc)
    assert sorted(w.key for w in report.written) == ["eq.band2_freq_hz", "eq.band2_gain_db", "eq.band2_q",
                                                     "eq.band2_type"]
    assert report.pass_number == 1 and report.undo_name == "MixBridge: AI pass 1 — 1 tracks"
    # one vocabulary: a track the plan leaves alone is untouched, as under every other target
    assert target.provenance() == {"Kick": "ai", "Vox": "untouched", "Gtr": "untouched", "Bass": "untouched"}
    assert json.loads((tmp_path / "applied-plan.json").read_text()) == doc
    tags = json.loads((tmp_path / "plan-tags.json").read_text())
    assert tags["tracks"]["Kick"]["state"]["written"]["eq.band2_freq_hz"]["value"] == 110.0
    again = PlanTarget(tmp_path)  # state survives a restart
    assert again.provenance()["Kick"] == "ai"


def test_plan_target_is_idempotent_and_cumulative(tmp_path):
    target = PlanTarget(tmp_path)
    both = Review(PLAN).accept("Kick/masking/1").accept("Gtr/width/1")
    target.apply(both.plan_for_target())
    second = target.apply(both.plan_for_target())
    assert second.writes == () and len(second.unchanged) == 5 and second.undo_name == ""
    third = target.apply(both.reject("Kick/masking/1").plan_for_target())
    assert {(w.track, w.key) for w in third.writes} == {
        ("Kick", "eq.band2_type"), ("Kick", "eq.band2_freq_hz"), ("Kick", "eq.band2_gain_db"), ("Kick", "eq.band2_q")}
    assert all(w.restore for w in third.writes)
    assert target.provenance()["Kick"] == "untouched" and target.provenance()["Gtr"] == "ai"


def test_plan_target_revert_and_ab(tmp_path):
    target = PlanTarget(tmp_path)
    target.apply(Review(PLAN).accept_all().plan_for_target())
    assert target.ab_toggle(-2.0) == {"state": "A", "compensation_db": -2.0}
    assert target.ab_toggle(-2.0) == {"state": "B", "compensation_db": 0.0}
    report = target.revert()
    assert len(report.writes) == 8 and set(target.provenance().values()) == {"untouched"}
    assert not (tmp_path / "applied-plan.json").exists()


def test_plan_target_in_memory():
    target = make_target(Settings())
    target.apply(Review(PLAN).accept("Vox/section_level/0").plan_for_target())
    assert target.provenance()["Vox"] == "ai"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_target_never_connects_and_a_call_while_reaper_is_down_is_daw_unavailable():
    target = make_target(Settings(target="reaper", connection=Connection(web_port=_free_port(), timeout_s=1.0)))
    assert isinstance(target, LazyReaperTarget) and target.kind == "reaper"
    with pytest.raises(DawUnavailable):
        target.provenance()
    with pytest.raises(DawUnavailable):  # and again: it retries instead of staying broken
        target.apply({"tracks": []})
    with pytest.raises(UsageError):
        Settings(target="protools")


def test_the_osc_target_keeps_its_tags_in_the_state_folder(tmp_path):
    with pytest.raises(UsageError, match="--stems"):
        make_target(Settings(target="osc", stateful=False))
    target = make_target(Settings(tmp_path / "stems", target="osc"))
    assert target.state_path == tmp_path / "stems" / ".mixbridge" / "osc-state.json"
