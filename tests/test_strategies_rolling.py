"""Rolling upgrades of pooled components, under live calls from threads."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.load import running
from helpers.project import Project, noodle_modules
from noodle_upgrade import UpgradeStatus

POOL = 4
STEPS: dict[str, Any] = {"step_seconds": 0.2, "min_calls": 10, "batch_size": 2}


def worker_source(key: str, *, fail_every: int = 0, downgrade: bool = False) -> str:
    """A pooled worker: each member counts the calls it served under ``key``."""
    failing = (
        f"if self._{key} % {fail_every} == 0: raise RuntimeError('bad batch')" if fail_every else ""
    )
    hooks = "def migrate(state, from_version):\n    return state\n"
    if downgrade:
        hooks += "\n\ndef downgrade(state, to_version):\n    return state\n"
    return f"""\
import threading


class Worker:
    def __init__(self):
        self._lock = threading.Lock()
        self._{key} = 0

    def work(self, x):
        with self._lock:
            self._{key} += 1
        {failing}
        return x * 2

    def served(self):
        return self._{key}

    def snapshot(self):
        return {{"served": self._{key}}}

    def restore(self, state):
        self._{key} = state["served"]


def create():
    return Worker()


{hooks}"""


def pooled(project: Project, version: str, source: str) -> None:
    hooks = {"migrate": "worker:migrate"}
    if "def downgrade" in source:
        hooks["downgrade"] = "worker:downgrade"
    project.add("worker", version, source, entry="worker:create", pool=POOL, **hooks)


@pytest.fixture
def workers(project: Project) -> Project:
    project.constraints({"worker": "==1.0.0"})
    pooled(project, "1.0.0", worker_source("n", downgrade=True))
    with project.open():
        pass
    project.constraints({"worker": ">=1"})
    pooled(project, "1.1.0", worker_source("count", downgrade=True))
    pooled(project, "1.2.0", worker_source("count", fail_every=3, downgrade=True))
    return project


def served_in_total(rt: Any) -> int:
    handle = rt.load("worker")
    # Each call lands on the next member in turn: POOL calls ask every member once.
    return sum(handle.served() for _ in range(POOL))


def test_members_are_replaced_batch_by_batch_without_losing_a_call(workers: Project) -> None:
    with workers.open() as rt:
        handle = rt.load("worker")
        with running(lambda: handle.work(3)) as load:
            load.progress()
            result = rt.upgrade("worker", "1.1.0", strategy="rolling", **STEPS)
            load.progress()
        outcome = load.stop()
        assert result.success, result.error_message
        assert outcome.errors == [] and outcome.values() == {6}
        assert [step["share"] for step in result.metrics["steps"]] == [50.0, 100.0]
        assert rt.version("worker") == "1.1.0"
        # every call served before, during and after is counted by exactly one member
        assert served_in_total(rt) == outcome.calls


def test_a_failing_batch_puts_the_old_members_back(workers: Project) -> None:
    with workers.open() as rt:
        handle = rt.load("worker")
        with running(lambda: handle.work(3)) as load:
            load.progress()  # a rollout needs traffic: without it each step stays inconclusive
            assert rt.upgrade("worker", "1.1.0", strategy="rolling", **STEPS).success
            before = noodle_modules()
            result = rt.upgrade("worker", "1.2.0", strategy="rolling", **STEPS)
        outcome = load.stop()
        assert result.status is UpgradeStatus.ROLLED_BACK
        assert result.error_code == "analysis-failed"
        assert "step 1 (50%) failed on error_rate" in (result.error_message or "")
        assert rt.version("worker") == "1.1.0"
        assert noodle_modules() == before
        # the downgrade hook carried the failed members' counts back: nothing is lost,
        # the calls that raised were counted by the member that raised
        assert served_in_total(rt) == outcome.calls + outcome.error_count


def test_a_pooled_component_takes_only_rolling(workers: Project) -> None:
    with workers.open() as rt:
        for strategy in ("immediate", "canary", "blue_green"):
            result = rt.upgrade("worker", "1.1.0", strategy=strategy)
            assert result.status is UpgradeStatus.REFUSED
            assert result.error_code == "strategy-not-applicable"
            assert "rolling" in (result.error_message or "")


def test_a_pool_of_another_size_is_refused(workers: Project) -> None:
    source = worker_source("count", downgrade=True)
    workers.add("worker", "1.3.0", source, entry="worker:create", pool=POOL + 2)
    with workers.open() as rt:
        result = rt.upgrade("worker", "1.3.0", strategy="rolling", **STEPS)
        assert result.error_code == "pool-size-changed"
        assert f"runs {POOL + 2} instance(s)" in (result.error_message or "")


def test_rollback_after_a_rolling_upgrade_restores_every_member(workers: Project) -> None:
    with workers.open() as rt:
        handle = rt.load("worker")
        with running(lambda: handle.work(3), threads=4) as load:
            load.progress()
            assert rt.upgrade("worker", "1.1.0", strategy="rolling", **STEPS).success
            load.progress()
            back = rt.rollback("worker")
            load.progress()
        outcome = load.stop()
        assert back.success, back.error_message
        assert rt.version("worker") == "1.0.0"
        assert outcome.errors == []
        assert served_in_total(rt) == outcome.calls
