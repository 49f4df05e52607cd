"""kill -9 at every stage of an upgrade or a rollback, then reopen the project.

The application is a real process (``helpers/crash_app.py``) calling a component from
two threads; it SIGKILLs itself from inside the operation's own thread at the chosen
event, so the kill lands exactly at that stage. The test process then reopens the same
SQLite store and checks what an operator would: the version that serves, the history,
the audit chain, and that the same operation can simply be asked for again.

Before the commit, whatever the process had done in memory (even a switch past the
point of no return) dies with it: the store still says the version before, and the
operation shows as interrupted. After the outcome event, the commit is durable.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from helpers.behaviour import calc_source, locked_calc
from helpers.load import running
from helpers.project import Project, counter_source
from noodle_upgrade import Runtime
from noodle_upgrade.models import UpgradeResult, UpgradeStatus

CRASH_APP = Path(__file__).resolve().parent / "helpers" / "crash_app.py"
CHILD_TIMEOUT_S = 60.0  # a guard against a stuck child, not a speed check
CALLER_THREADS = 2

UPGRADE_KILLS = (
    "upgrade.started",
    "upgrade.stage:loaded",
    "upgrade.stage:exposed",
    "upgrade.stage:switched",
    "upgrade.stage:checked",
)
ROLLBACK_KILLS = ("rollback.stage:journaled", "rollback.stage:loaded", "rollback.stage:switched")
# Where the process already serves the new version in memory, uncommitted.
PAST_THE_SWITCH = {"upgrade.stage:switched", "upgrade.stage:checked", "rollback.stage:switched"}
PAST_THE_EXPOSURE = {"upgrade.stage:exposed", *PAST_THE_SWITCH}

# Two short canary steps (20%, then 50%) of live traffic, each analysed on real calls.
CANARY_STEPS: dict[str, Any] = {
    "initial_percentage": 20,
    "increment_percentage": 30,
    "max_percentage": 50,
    "step_seconds": 0.2,
    "min_calls": 20,
}


def stateless(project: Project) -> None:
    """``calc`` 1.0.0 active, 1.1.0 in the store."""
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0"))


def stateless_upgraded(project: Project) -> None:
    """``calc`` upgraded to 1.1.0, with its rollback point to 1.0.0."""
    stateless(project)
    with Runtime.open(project.root, control=False) as rt:
        result = rt.upgrade("calc", "1.1.0")
        assert result.success, result.error_message


def stateful(project: Project) -> None:
    """``counter`` 1.0.0 active (a factory entry with snapshot/restore); 2.0.0 in the
    store renames its state key, so the upgrade migrates the state."""
    project.constraints({"counter": "==1.0.0"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry="counter:create")
    Runtime.open(project.root, control=False).close()
    project.constraints({"counter": ">=1,<3"})
    project.add(
        "counter",
        "2.0.0",
        counter_source("2.0.0", key="count", migrate='return {"count": state["n"], "chain": []}'),
        entry="counter:create",
        migrate="counter:migrate",
        upgrade_from=["1.0.0"],
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[Project], None]
    component: str
    call: str  # what the application's threads keep calling
    before: str
    after: str
    strategy: str  # "rollback": an explicit rollback to ``after``
    parameters: dict[str, Any] = field(default_factory=dict)
    analysed_steps: int = 0  # rollout steps analysed before the exposure ends
    stateful: bool = False

    @property
    def kind(self) -> str:
        return "rollback" if self.strategy == "rollback" else "upgrade"

    def run(self, rt: Runtime) -> UpgradeResult:
        if self.kind == "rollback":
            return rt.rollback(self.component)
        return rt.upgrade(self.component, self.after, strategy=self.strategy, **self.parameters)


IMMEDIATE = Scenario(
    "immediate",
    build=stateless,
    component="calc",
    call="version",
    before="1.0.0",
    after="1.1.0",
    strategy="immediate",
)
CANARY = replace(
    IMMEDIATE, name="canary", strategy="canary", parameters=CANARY_STEPS, analysed_steps=2
)
ROLLBACK = replace(
    IMMEDIATE,
    name="rollback",
    build=stateless_upgraded,
    before="1.1.0",
    after="1.0.0",
    strategy="rollback",
)
STATEFUL = Scenario(
    "stateful",
    build=stateful,
    component="counter",
    call="inc",
    before="1.0.0",
    after="2.0.0",
    strategy="immediate",
    stateful=True,
)
UPGRADES = (IMMEDIATE, CANARY, STATEFUL)

BEFORE_THE_COMMIT = [
    *[
        pytest.param(scenario, kill_at, id=f"{scenario.name}-{kill_at}")
        for scenario in UPGRADES
        for kill_at in UPGRADE_KILLS
    ],
    *[pytest.param(ROLLBACK, kill_at, id=f"rollback-{kill_at}") for kill_at in ROLLBACK_KILLS],
]


def crash(project: Project, scenario: Scenario, kill_at: str) -> dict[str, Any]:
    """Run the application until it kills itself at ``kill_at``; what it said then."""
    parameters = [f"{name}={json.dumps(value)}" for name, value in scenario.parameters.items()]
    command = [
        sys.executable,
        str(CRASH_APP),
        str(project.root),
        scenario.component,
        scenario.call,
        scenario.after,
        scenario.strategy,
        kill_at,
        *parameters,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert done.returncode == -signal.SIGKILL, (
        f"the application was not killed at {kill_at} (exit {done.returncode}): "
        f"{done.stdout}{done.stderr}"
    )
    (line,) = done.stdout.splitlines()
    said: dict[str, Any] = json.loads(line)
    assert said["killed_at"] == kill_at
    assert said["errors"] == []  # the callers saw nothing go wrong up to the kill
    return said


def check_consistent(rt: Runtime, scenario: Scenario, version: str) -> None:
    """``version`` serves and is the lock; the audit chain verifies; nothing is left
    in progress."""
    component = scenario.component
    assert rt.version(component) == version
    assert rt.load(component).version() == version
    assert rt.store.active_versions()[component] == version
    verification = rt.store.verify_audit()
    assert verification.ok, verification.reason
    assert UpgradeStatus.IN_PROGRESS not in [h.status for h in rt.history()]


def operate_again(rt: Runtime, scenario: Scenario) -> None:
    """The same operation, asked for again under live calls, succeeds."""
    handle = rt.load(scenario.component)
    # Looked up on every call: attribute access on the handle is what routes.
    with running(lambda: getattr(handle, scenario.call)(), threads=CALLER_THREADS) as load:
        load.progress(20)
        result = scenario.run(rt)
        load.progress(20)
    seen = load.stop()
    assert result.success, result.error_message
    assert seen.error_count == 0, seen.errors
    assert handle.version() == scenario.after
    if scenario.stateful:  # the state was migrated across: not one increment was lost
        assert handle.value() == seen.calls


@pytest.mark.parametrize(("scenario", "kill_at"), BEFORE_THE_COMMIT)
def test_a_kill_before_the_commit_reopens_at_the_version_before(
    project: Project, scenario: Scenario, kill_at: str
) -> None:
    scenario.build(project)

    crashed = crash(project, scenario, kill_at)

    in_memory = scenario.after if kill_at in PAST_THE_SWITCH else scenario.before
    assert crashed["serving"] == in_memory
    with Runtime.open(project.root, control=False) as rt:
        check_consistent(rt, scenario, scenario.before)
        operation = [h for h in rt.history() if h.id == crashed["operation"]]
        assert [(h.kind, h.status, h.from_version, h.to_version) for h in operation] == [
            (scenario.kind, UpgradeStatus.INTERRUPTED, scenario.before, scenario.after)
        ]
        assert [h.status for h in rt.history()].count(UpgradeStatus.INTERRUPTED) == 1
        audited = [record.event_type for record in rt.store.audit_records()]
        assert audited.count(f"{scenario.kind}.interrupted") == 1
        # The canary's steps ran on live traffic, each analysed, before the kill.
        analyses = [
            e.data["outcome"]
            for e in rt.store.events()
            if e.kind == "rollout.analysis" and e.data.get("id") == crashed["operation"]
        ]
        exposed = kill_at in PAST_THE_EXPOSURE
        assert analyses == ["pass"] * (scenario.analysed_steps if exposed else 0)
        # An interrupted upgrade leaves no point; an interrupted rollback uses none up.
        points = [p.version for p in rt.store.rollback_points(scenario.component)]
        assert points == ([scenario.after] if scenario.kind == "rollback" else [])

        operate_again(rt, scenario)

        check_consistent(rt, scenario, scenario.after)


@pytest.mark.parametrize("scenario", [*UPGRADES, ROLLBACK], ids=lambda s: s.name)
def test_a_kill_after_the_outcome_reopens_at_the_committed_version(
    project: Project, scenario: Scenario
) -> None:
    scenario.build(project)

    crashed = crash(project, scenario, f"{scenario.kind}.succeeded")

    assert crashed["serving"] == scenario.after
    with Runtime.open(project.root, control=False) as rt:
        check_consistent(rt, scenario, scenario.after)
        operation = [h for h in rt.history() if h.id == crashed["operation"]]
        assert [(h.kind, h.status) for h in operation] == [(scenario.kind, UpgradeStatus.SUCCEEDED)]
        assert UpgradeStatus.INTERRUPTED not in [h.status for h in rt.history()]
        if scenario.kind == "rollback":  # the point it used up stays used up
            assert rt.store.rollback_points(scenario.component) == []
            return
        # The rollback point (and a stateful component's saved state) is durable too.
        back = rt.rollback(scenario.component)
        assert back.success, back.error_message
        handle = rt.load(scenario.component)
        assert handle.version() == scenario.before
        if scenario.stateful:  # the state the old version had at the switch
            assert handle.value() >= crashed["calls_before"] > 0
