"""The fault-schedule soak (tests/fault_soak.py): 200 seeded schedules in every run (about 2 minutes; its
time is a figure of ``benchmarks/soak_faults.py``, not an assertion), a longer run behind ``-m soak``."""
from __future__ import annotations

import pytest

from tests.fault_soak import FAULTS, OPERATIONS, Figures, Soak, schedules

#: Two schedules per (setup, operation) pair: every fault kind and operation, ~20 s.
SUBSET = 26


def _soak(tmp_path, seed: int, count: int) -> Figures:
    import time

    started = time.monotonic()
    with Soak(tmp_path) as runner:
        planned = schedules(seed, count, runner.calls)
        outcomes = [runner.run(s) for s in planned]
    return Figures(outcomes, time.monotonic() - started)


def test_schedules_are_deterministic_by_seed_and_cover_every_kind():
    calls = {(s, op): 200 for s, op in [("fresh", "apply"), ("fresh", "apply2"), ("applied", "apply2"),
                                        ("applied", "revert"), ("applied", "ab"), ("on_a", "apply2"),
                                        ("on_a", "revert"), ("on_a", "ab"), ("edited", "apply2"),
                                        ("edited", "revert"), ("edited", "ab"), ("edited_on_a", "apply2"),
                                        ("edited_on_a", "ab")]}
    first, again, other = schedules(7, SUBSET, calls), schedules(7, SUBSET, calls), schedules(8, SUBSET, calls)
    assert first == again and first != other
    assert {s.fault for s in first} == set(FAULTS) and {s.op for s in first} == set(OPERATIONS)
    many = schedules(7, 200, calls)
    assert {s.at_call for s in many if s.op == "revert"} >= {199, 200}, "the last two calls are hit"
    assert min(s.at_call for s in many) <= 10


def test_a_seeded_subset_of_fault_schedules_leaves_every_session_whole(tmp_path):
    figures = _soak(tmp_path, seed=11, count=SUBSET)
    assert not figures.failed, figures.summary()
    results = {o.result for o in figures.outcomes}
    assert "untouched" in results and "crashed" in results, figures.summary()


def test_two_hundred_fault_schedules(tmp_path):
    figures = _soak(tmp_path, seed=1, count=200)
    assert not figures.failed, figures.summary()


@pytest.mark.soak
def test_a_thousand_fault_schedules(tmp_path):
    figures = _soak(tmp_path, seed=2, count=1000)
    assert not figures.failed, figures.summary()
