"""Canary and gradual rollouts under live load: real threads call a real handle while a
growing share of their calls reaches the candidate, and every step is analysed.

A release that fails the analysis (errors, slowdown, too little evidence) is withdrawn
before the point of no return: the process and the store are as they were. A good one
is promoted step by step with no caller ever seeing an error.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import defaultdict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest

from helpers.behaviour import calc_source, check_withdrawn, faults_as_values, locked_calc
from helpers.load import PROGRESS_TIMEOUT_S, running
from helpers.project import Project, noodle_modules
from noodle_upgrade.models import UpgradeStatus
from noodle_upgrade.runtime.events import Event

THREADS = 8
# Small steps keep the tests quick; min_calls=20 is still real evidence per step.
STEPS: dict[str, Any] = {
    "step_seconds": 0.25,
    "min_calls": 20,
    "initial_percentage": 10,
    "increment_percentage": 20,
    "max_percentage": 50,
}
# Every call busy-waits this long, so latencies compare work, not the clock's jitter on
# a sub-microsecond call (on such calls, medians of identical code can differ by 1.5×).
BASE_US = 20.0


def shares(result_metrics: dict[str, Any]) -> list[float]:
    return [step["share"] for step in result_metrics["steps"]]


# ------------------------------------------------------------------ faulty releases


def test_canary_rolls_back_a_release_that_raises_on_a_third_of_its_calls(
    project: Project,
) -> None:
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US))
    project.add("calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US, fail_every=3))
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        with running(faults_as_values(lambda: handle.add(2, 3)), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="canary", **STEPS)
            load.progress(50)
        seen = load.stop()

        assert result.error_code == "analysis-failed"
        message = result.error_message or ""
        assert "failed on error_rate" in message, message
        found = re.search(r"error rate (\d\.\d+) \((\d+) of (\d+) calls\)", message)
        assert found, message
        assert 0.25 <= float(found[1]) <= 0.42, message
        assert int(found[3]) >= STEPS["min_calls"]
        failed = result.metrics["steps"][-1]
        assert (failed["outcome"], failed["metric"]) == ("fail", "error_rate")
        assert 0.25 <= failed["candidate_error_rate"] <= 0.42
        assert failed["stable_error_rate"] == 0
        # A non-idempotent component: callers saw the canary's failures (that is what
        # the canary's small share limits), and right answers otherwise.
        assert seen.error_count == 0, seen.errors
        assert seen.values() == {5, "fault"}
        check_withdrawn(project, rt, result, before)


def test_canary_rolls_back_a_release_that_is_more_than_twice_as_slow(project: Project) -> None:
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US))
    # A fixed extra busy-wait of 1.5× the stable call's work: 2.5× its cost, whatever
    # the load (preemption only ever adds to a call, and to both versions alike).
    project.add("calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US, extra_us=1.5 * BASE_US))
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        with running(lambda: handle.add(2, 3), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="canary", latency_factor=1.5, **STEPS)
            load.progress(50)
        seen = load.stop()

        assert result.error_code == "analysis-failed"
        message = result.error_message or ""
        assert "failed on latency" in message, message
        found = re.search(
            r"median latency ([\d.]+) ms is ([\d.]+)× the stable ([\d.]+) ms", message
        )
        assert found, message
        assert float(found[2]) > 1.5, message
        assert float(found[1]) > float(found[3])
        failed = result.metrics["steps"][-1]
        assert (failed["outcome"], failed["metric"]) == ("fail", "latency")
        assert failed["latency_factor"] > 1.5
        assert failed["candidate_errors"] == 0
        assert seen.error_count == 0 and seen.values() == {5}
        check_withdrawn(project, rt, result, before)


def test_a_failed_idempotent_canary_call_is_retried_on_stable_and_still_counted(
    project: Project,
) -> None:
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US), idempotent=True)
    project.add(
        "calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US, fail_every=3), idempotent=True
    )
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        # No fault tolerance here: a single failed call fails the load.
        with running(lambda: handle.add(2, 3), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="canary", **STEPS)
            load.progress(50)
        seen = load.stop()

        assert seen.error_count == 0, seen.errors  # not one caller saw the canary fail
        assert seen.values() == {5}
        assert seen.calls > 0
        # ... yet the analysis counted every failure and withdrew the release.
        assert result.error_code == "analysis-failed"
        assert "failed on error_rate" in (result.error_message or "")
        failed = result.metrics["steps"][-1]
        assert failed["metric"] == "error_rate"
        assert failed["candidate_errors"] > 0
        assert 0.25 <= failed["candidate_error_rate"] <= 0.42
        check_withdrawn(project, rt, result, before)


def test_a_canary_without_traffic_is_inconclusive_and_never_promoted(project: Project) -> None:
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0"))
    with project.open(upgrade_timeout=1.5) as rt:
        events: list[Event] = []
        rt.subscribe(events.append)
        before = noodle_modules()

        result = rt.upgrade("calc", "1.1.0", strategy="canary", **STEPS)  # no callers at all

        message = result.error_message or ""
        assert "inconclusive" in message, message
        assert "0 candidate calls, fewer than min_calls=20" in message
        assert result.error_code == "analysis-failed"
        assert [step["outcome"] for step in result.metrics["steps"]] == ["inconclusive"]
        assert result.metrics["steps"][0]["share"] == STEPS["initial_percentage"]
        kinds = {event.kind for event in events}
        assert "upgrade.succeeded" not in kinds and "upgrade.rolled_back" in kinds
        check_withdrawn(project, rt, result, before)


# ------------------------------------------------------------------ good releases


@pytest.mark.parametrize(
    ("strategy", "expected_shares"),
    [
        ("canary", [10.0, 30.0, 50.0]),  # initial, + increment, up to max, then promote
        ("gradual", [10.0, 20.0, 40.0, 80.0, 100.0]),  # doubling from 10% to 100%
    ],
)
def test_a_good_release_is_promoted_step_by_step_without_a_single_failed_call(
    project: Project, strategy: str, expected_shares: list[float]
) -> None:
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US))
    project.add("calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US))
    with project.open() as rt:
        handle = rt.load("calc")
        events: list[Event] = []
        rt.subscribe(events.append)

        # One function only: the analysis pools a component's calls into one median per
        # side, so functions of very different cost called about equally often would
        # put each side's median on either mode, at random.
        with running(lambda: handle.add(2, 3), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy=strategy, **STEPS)
            load.progress(50)
        seen = load.stop()

        assert result.success, result.error_message
        assert result.status is UpgradeStatus.SUCCEEDED
        assert seen.error_count == 0, seen.errors
        assert seen.values() == {5}  # every answer was right
        steps = result.metrics["steps"]
        taken = shares(result.metrics)
        assert taken == expected_shares
        assert all(a < b for a, b in itertools.pairwise(taken))
        assert [step["outcome"] for step in steps] == ["pass"] * len(expected_shares)
        assert all(step["candidate_calls"] >= STEPS["min_calls"] for step in steps)
        assert all(step["candidate_errors"] == 0 for step in steps)
        # The analysis was published as it went: one step event and one verdict each.
        mine = [e for e in events if e.data.get("id") == result.request_id]
        step_events = [e for e in mine if e.kind == "rollout.step"]
        analyses = [e for e in mine if e.kind == "rollout.analysis"]
        assert [e.data["share"] for e in step_events] == expected_shares
        assert [e.data["step"] for e in step_events] == list(range(1, len(expected_shares) + 1))
        assert [e.data["share"] for e in analyses] == expected_shares
        assert all(e.data["outcome"] == "pass" for e in analyses)
        assert all(e.component == "calc" for e in mine)
        kinds = [e.kind for e in mine]
        assert kinds.index("upgrade.started") < kinds.index("rollout.step")
        assert kinds[-1] == "upgrade.succeeded"
        # Promoted: the handle, the lock and history all say 1.1.0.
        assert rt.version("calc") == "1.1.0"
        assert all(handle.version() == "1.1.0" for _ in range(100))
        assert rt.store.active_versions() == {"calc": "1.1.0"}
        last = rt.history("calc")[0]
        assert (last.status, last.strategy) == (UpgradeStatus.SUCCEEDED, strategy)
        assert result.rollback_point is not None and result.rollback_point.version == "1.0.0"


# ------------------------------------------------------------------ routing keys


def test_a_routing_key_keeps_every_call_of_a_request_on_one_version(
    project: Project, tmp_path: Path
) -> None:
    """At 50%, calls made inside ``rt.routing_key(key)`` all reach the version the key
    hashes to, on any thread; different keys land on both versions."""
    flag = tmp_path / "fail-now"
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US))
    project.add("calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US, fail_when_exists=flag))
    with project.open() as rt:
        handle = rt.load("calc")
        at_half = threading.Event()
        rt.subscribe(lambda e: at_half.set() if e.kind == "rollout.step" else None)
        outcome: list[Any] = []
        # One long step at 50%: it ends when the test makes the candidate fail.
        upgrade = threading.Thread(
            target=lambda: outcome.append(
                rt.upgrade(
                    "calc",
                    "1.1.0",
                    strategy="canary",
                    initial_percentage=50,
                    increment_percentage=0,
                    max_percentage=50,
                    step_seconds=60,
                    min_calls=20,
                )
            )
        )
        upgrade.start()
        try:
            assert at_half.wait(PROGRESS_TIMEOUT_S), "the rollout never reached its step"
            keys = [f"req-{n}" for n in range(40)]
            seen: dict[str, set[str]] = defaultdict(set)
            unkeyed: set[str] = set()
            lock = threading.Lock()

            def client(order: list[str]) -> None:
                mine: dict[str, set[str]] = defaultdict(set)
                loose: set[str] = set()
                for _ in range(5):
                    for key in order:
                        with rt.routing_key(key):
                            for _ in range(5):
                                mine[key].add(handle.version())
                                assert handle.add(2, 3) == 5
                        loose.add(handle.version())  # outside the block: split by count
                with lock:
                    for key, versions in mine.items():
                        seen[key] |= versions
                    unkeyed.update(loose)

            clients = [
                threading.Thread(target=client, args=(keys[n:] + keys[:n],)) for n in range(4)
            ]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join(PROGRESS_TIMEOUT_S)
                assert not thread.is_alive()

            assert set(seen) == set(keys)
            one_each = {key: versions for key, versions in seen.items() if len(versions) != 1}
            assert not one_each, f"keys that met two versions: {one_each} {outcome}"
            by_version: dict[str, list[str]] = defaultdict(list)
            for key, versions in seen.items():
                by_version[next(iter(versions))].append(key)
            assert set(by_version) == {"1.0.0", "1.1.0"}, by_version
            assert unkeyed == {"1.0.0", "1.1.0"}
            # The same key gives the same version again, later, on this thread too.
            with rt.routing_key("req-42"):
                first = handle.version()
                assert all(handle.version() == first for _ in range(200))

            # End the step: the candidate now fails every call its keys bring it.
            flag.touch()
            canary_key = by_version["1.1.0"][0]
            while upgrade.is_alive():
                with rt.routing_key(canary_key):
                    for _ in range(50):
                        faults_as_values(lambda: handle.add(2, 3))()
                upgrade.join(0.01)
        finally:
            flag.touch()
            upgrade.join(PROGRESS_TIMEOUT_S)
        (result,) = outcome
        assert result.status is UpgradeStatus.ROLLED_BACK
        assert "failed on error_rate" in (result.error_message or "")
        assert rt.version("calc") == "1.0.0"


def test_a_caller_alternating_two_functions_meets_the_canary_in_both(project: Project) -> None:
    """Regression: routing by ``n * share mod 1`` sent, at 50%, every call of a caller
    that alternates ``add`` and ``version`` to one side per function, so a canary whose
    ``add`` always fails could be promoted on ``version`` calls alone."""
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0", fail_every=1))  # add always fails
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        in_step = threading.Event()
        analysed = threading.Event()

        def watch(event: Event) -> None:
            if event.kind == "rollout.step":
                in_step.set()
            elif event.kind == "rollout.analysis":
                analysed.set()

        rt.subscribe(watch)
        answers: list[Hashable] = []
        stop = threading.Event()
        add = faults_as_values(lambda: handle.add(2, 3))

        def caller() -> None:  # one thread: add, version, add, version, ...
            while not stop.is_set():
                answer = add()
                handle.version()
                if in_step.is_set() and not analysed.is_set():
                    answers.append(answer)

        thread = threading.Thread(target=caller)
        thread.start()
        try:
            result = rt.upgrade(
                "calc",
                "1.1.0",
                strategy="canary",
                initial_percentage=50,
                increment_percentage=0,
                max_percentage=50,
                step_seconds=0.25,
                min_calls=20,
            )
        finally:
            stop.set()
            thread.join(PROGRESS_TIMEOUT_S)

        assert "failed on error_rate" in (result.error_message or ""), result.error_message
        # Half of the add calls reached the candidate (and failed), half the stable one.
        assert len(answers) >= 40
        faults = answers.count("fault") / len(answers)
        assert 0.3 <= faults <= 0.7, (faults, len(answers))
        assert set(answers) == {5, "fault"}
        check_withdrawn(project, rt, result, before)
