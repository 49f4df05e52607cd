"""Canary and promotion on real numpy and a real state file: live calls decide."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest

from noodle_upgrade import ale
from noodle_upgrade.ale.model import Candidate, Status
from noodle_upgrade.ale.promotion import canary_hooks
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.store import Store
from noodle_upgrade.store.ale import AleStore, CandidateRecord

ORIGINAL_DOT = numpy.dot
LISTS_KEY = "list[float](3), list[float](3)"
HOUR = 3600.0  # no background flush during a test
A, B = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
EXPECTED = ORIGINAL_DOT(A, B)

CORRECT = (
    "from operator import mul\nimport numpy\n\n"
    "def candidate(a, b):\n    return numpy.float64(sum(map(mul, a, b)))\n"
)
OFF_BY_A_LITTLE = (
    "from operator import mul\nimport numpy\n\n"
    "def candidate(a, b):\n    return numpy.float64(sum(map(mul, a, b)) + 1e-3)\n"
)
RAISING = "def candidate(a, b):\n    raise RuntimeError('no')\n"
# Equal, but thousands of times slower than numpy.dot on three floats: no timing margin
# a busy machine could eat.
SLEEPY = (
    "import time\nfrom operator import mul\nimport numpy\n\n"
    "def candidate(a, b):\n    time.sleep(0.002)\n    return numpy.float64(sum(map(mul, a, b)))\n"
)


@pytest.fixture(autouse=True)
def disabled_after() -> Iterator[None]:
    yield
    ale.disable()
    assert numpy.dot is ORIGINAL_DOT


def canary(db_path: Path, source: str) -> str:
    """A candidate for LISTS_KEY stored validated, then approved as a canary."""
    with Store.open(db_path) as store:
        ale_store = AleStore(store)
        candidate = Candidate(
            id="c1", function="numpy.dot", signature=LISTS_KEY, family="test", source=source
        )
        ale_store.insert_candidate(candidate, status=Status.VALIDATED)
        ale_store.set_status(candidate.id, Status.CANARY, actor="test")
    return candidate.id


def stored(db_path: Path, candidate_id: str) -> tuple[CandidateRecord, str]:
    """The candidate as stored, and the event type of the last audit record."""
    with Store.open(db_path) as store:
        return AleStore(store).candidate(candidate_id), store.audit_records()[-1].event_type


def call_dot(times: int) -> list[Any]:
    return [numpy.dot(list(A), list(B)) for _ in range(times)]


def test_a_correct_canary_is_promoted_and_then_serves_every_call(db_path: Path) -> None:
    candidate_id = canary(db_path, CORRECT)
    # min_speedup far below 1: the decision here is about equality, not about the clock
    hooks = canary_hooks(db_path, share=0.5, promote_after=20, min_speedup=1e-3)
    session = ale.enable(db_path, hooks=hooks, flush_seconds=HOUR)
    results = call_dot(39)  # 19 or 20 admitted: not enough yet
    assert stored(db_path, candidate_id)[0].status is Status.CANARY
    results += call_dot(2)
    record, event = stored(db_path, candidate_id)
    assert (record.status, event) == (Status.PROMOTED, "ale.promoted")
    assert record.reason is not None and "20 shadowed calls equal" in record.reason
    assert all(result == EXPECTED for result in results)
    (route,) = session.dispatcher("numpy.dot").routes
    assert route.record.status is Status.PROMOTED and route.hook is not None
    assert route.hook.admit() and route.hook.admit()  # promoted: every call


def test_threads_calling_a_canary_promote_it_once(db_path: Path) -> None:
    candidate_id = canary(db_path, CORRECT)
    hooks = canary_hooks(db_path, share=1.0, promote_after=20, min_speedup=1e-3)
    ale.enable(db_path, hooks=hooks, flush_seconds=HOUR)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.extend(call_dot(50))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [EXPECTED] * 200
    with Store.open(db_path) as store:
        events = [record.event_type for record in store.audit_records()]
        assert AleStore(store).candidate(candidate_id).status is Status.PROMOTED
    assert events.count("ale.promoted") == 1


def test_the_canary_share_is_what_the_candidate_serves(db_path: Path) -> None:
    canary(db_path, "def candidate(a, b):\n    return ('candidate', a[0])\n")
    hooks = canary_hooks(db_path, share=0.25, shadow_every=10**6, promote_after=10**6)
    ale.enable(db_path, hooks=hooks, flush_seconds=HOUR)
    results = call_dot(100)
    assert sum(isinstance(result, tuple) for result in results) == 25


def test_a_wrong_canary_is_demoted_and_the_original_serves_again(db_path: Path) -> None:
    candidate_id = canary(db_path, OFF_BY_A_LITTLE)
    session = ale.enable(db_path, hooks=canary_hooks(db_path, share=1.0), flush_seconds=HOUR)
    first, *later = call_dot(5)
    record, event = stored(db_path, candidate_id)
    assert (record.status, event) == (Status.DEMOTED, "ale.demoted")
    assert record.reason is not None
    assert "differed (value)" in record.reason and "32.0" in record.reason
    assert "32.001" in record.reason
    # the call that found the mismatch too: the shadow's value replaced the candidate's
    assert [first, *later] == [EXPECTED] * 5
    assert session.dispatcher("numpy.dot").routes == ()


def test_a_raising_canary_is_demoted_and_the_caller_gets_the_original(db_path: Path) -> None:
    candidate_id = canary(db_path, RAISING)
    ale.enable(db_path, hooks=canary_hooks(db_path, share=1.0), flush_seconds=HOUR)
    assert call_dot(3) == [EXPECTED] * 3
    record, event = stored(db_path, candidate_id)
    assert (record.status, event) == (Status.DEMOTED, "ale.demoted")
    assert record.reason == "the candidate raised RuntimeError: no"


def test_a_slower_canary_is_demoted_with_the_measured_numbers(db_path: Path) -> None:
    candidate_id = canary(db_path, SLEEPY)
    ale.enable(db_path, hooks=canary_hooks(db_path, share=1.0, promote_after=3), flush_seconds=HOUR)
    assert call_dot(4) == [EXPECTED] * 4
    record, _ = stored(db_path, candidate_id)
    assert record.status is Status.DEMOTED
    assert record.reason is not None and record.reason.startswith("slower than asked: 3 shadowed")
    assert "median" in record.reason and "min_speedup 1.0" in record.reason


def test_a_promoted_candidate_that_raises_is_demoted(db_path: Path) -> None:
    candidate_id = canary(db_path, RAISING)
    with Store.open(db_path) as store:
        AleStore(store).set_status(candidate_id, Status.PROMOTED, actor="test")
    with Store.open(db_path) as store:
        ale.enable(store, hooks=canary_hooks(AleStore(store)), flush_seconds=HOUR)
        assert call_dot(2) == [EXPECTED] * 2
        ale.disable()
    record, event = stored(db_path, candidate_id)
    assert (record.status, event) == (Status.DEMOTED, "ale.demoted")
    assert record.reason == "the promoted candidate raised RuntimeError: no"


def test_a_decision_lost_to_another_decider_is_logged_not_raised(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    candidate_id = canary(db_path, OFF_BY_A_LITTLE)
    ale.enable(db_path, hooks=canary_hooks(db_path, share=1.0), flush_seconds=HOUR)
    with Store.open(db_path) as store:  # an operator rejects it meanwhile
        AleStore(store).set_status(candidate_id, Status.REJECTED, actor="operator")
    call_dot(1)  # the hook's conditional demotion fails: the call still returns
    assert stored(db_path, candidate_id)[0].status is Status.REJECTED
    assert "could not mark candidate c1 demoted" in caplog.text


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("share", 0.0),
        ("share", 1.5),
        ("shadow_every", 0),
        ("promote_after", 2.5),
        ("min_speedup", -1),
    ],
)
def test_bad_settings_are_refused_with_what_is_allowed(setting: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"{setting}={value!r} is not allowed; give"):
        canary_hooks("state.db", **{setting: value})  # type: ignore[arg-type]


def test_a_store_that_is_neither_path_nor_ale_store_is_refused() -> None:
    with pytest.raises(ValidationError, match="give a state database path or an AleStore"):
        canary_hooks(42)  # type: ignore[arg-type]
