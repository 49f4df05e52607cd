"""The self-updating loop in a real runtime: the watcher notices versions, policy gates
what the runtime proposes itself, operators approve and reject, nothing flaps."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from helpers.git_repo import Repo
from helpers.project import Project, greeter_source
from noodle_upgrade import Runtime
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.runtime.events import Event
from noodle_upgrade.scaffold import write_project

GUARD_S = 10.0  # a guard against a hang, never a speed check


def write_policy(project: Project, policy: str, constraint: str = ">=1,<3") -> None:
    project.production({"greeter": constraint}, policy)


@pytest.fixture
def greeter(project: Project) -> Project:
    write_policy(project, 'auto_approve = ["patch"]')
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    return project


class Watched:
    """A runtime on the project whose watcher is in place, and the events it publishes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.events: list[Event] = []
        self._changed = threading.Condition()
        rt.subscribe(self._record)
        assert rt.wait_until_watching(GUARD_S)

    def _record(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, kind: str, **data: object) -> Event:
        def found() -> Event | None:
            for event in self.events:
                if event.kind == kind and all(event.data.get(k) == v for k, v in data.items()):
                    return event
            return None

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, GUARD_S), (
                f"no {kind} {data} among {[e.kind for e in self.events]}"
            )
            event = found()
        assert event is not None
        return event

    def kinds(self, prefix: str) -> list[str]:
        return [event.kind for event in self.events if event.kind.startswith(prefix)]


@pytest.fixture
def watched(greeter: Project) -> Iterator[Watched]:
    with Runtime.open(greeter.root, settings={"policy_check_interval": 0.1}) as rt:
        yield Watched(rt)


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_patch_release_dropped_into_the_store_is_applied_by_policy(
    greeter: Project, watched: Watched
) -> None:
    greeter.add("greeter", "1.0.1", greeter_source("1.0.1"))

    applied = watched.wait_for("proposal.applied", version="1.0.1")

    assert watched.rt.load("greeter").hello() == "1.0.1"
    assert applied.data["source"] == "watcher"
    entry = watched.rt.history("greeter")[0]
    assert (entry.to_version, entry.actor, str(entry.status)) == ("1.0.1", "policy", "succeeded")
    approvals = [r for r in watched.rt.store.audit_records() if r.event_type == "proposal.approved"]
    assert [(r.actor, r.version_to) for r in approvals] == [("policy", "1.0.1")]


def test_a_minor_release_waits_for_approval_then_runs_as_the_approver(
    greeter: Project, watched: Watched
) -> None:
    greeter.add("greeter", "1.1.0", greeter_source("1.1.0"))
    watched.wait_for("proposal.created", version="1.1.0")

    [item] = watched.rt.status()["pending"]
    assert {k: item[k] for k in ("component", "version")} == {
        "component": "greeter",
        "version": "1.1.0",
    }
    assert "minor change needs approval (auto_approve: patch)" in item["reason"]
    assert watched.rt.load("greeter").hello() == "1.0.0"  # nothing ran on its own

    result = watched.rt.approve(item["id"], actor="alice")

    assert result.success and watched.rt.load("greeter").hello() == "1.1.0"
    assert watched.rt.history("greeter")[0].actor == "alice"
    assert watched.rt.status()["pending"] == []
    record = watched.rt.store.proposal(item["id"])
    assert (str(record.state), record.decided_by, record.operation_id) == (
        "applied",
        "alice",
        result.request_id,
    )
    audited = [(r.event_type, r.actor) for r in watched.rt.store.audit_records()]
    assert ("proposal.approved", "alice") in audited
    assert watched.rt.store.verify_audit().ok


def test_a_critical_component_always_waits_even_for_a_patch(project: Project) -> None:
    write_policy(project, 'auto_approve = ["patch", "minor", "major"]')
    project.add("greeter", "1.0.0", greeter_source("1.0.0"), critical=True)
    with Runtime.open(project.root) as rt:
        watched = Watched(rt)
        project.add("greeter", "1.0.1", greeter_source("1.0.1"), critical=True)

        created = watched.wait_for("proposal.created", version="1.0.1")

        assert "critical" in created.data["reason"]
        assert rt.load("greeter").hello() == "1.0.0"
        assert [p["state"] for p in rt.pending()] == ["pending"]


def test_outside_the_maintenance_window_a_patch_is_deferred_until_the_window_opens(
    project: Project,
) -> None:
    now = datetime.now()
    closed = f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"
    write_policy(project, f'auto_approve = ["patch"]\nmaintenance_windows = ["{closed}"]')
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with Runtime.open(project.root, settings={"policy_check_interval": 0.1}) as rt:
        watched = Watched(rt)
        project.add("greeter", "1.0.1", greeter_source("1.0.1"))
        deferred = watched.wait_for("proposal.created", version="1.0.1")
        assert deferred.data["state"] == "deferred"
        assert f"outside the maintenance windows ({closed})" in deferred.data["reason"]
        time.sleep(0.3)  # several policy checks pass: still outside the window
        assert rt.load("greeter").hello() == "1.0.0"

        opened = f"{now - timedelta(minutes=5):%H:%M}-{now + timedelta(minutes=30):%H:%M}"
        write_policy(project, f'auto_approve = ["patch"]\nmaintenance_windows = ["{opened}"]')

        watched.wait_for("proposal.applied", version="1.0.1")
        assert rt.load("greeter").hello() == "1.0.1"


def test_a_resource_above_its_threshold_defers_and_names_the_measured_value(
    project: Project,
) -> None:
    write_policy(project, 'auto_approve = ["patch"]\nmax_disk_percent = 0.001')
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with Runtime.open(project.root) as rt:
        watched = Watched(rt)
        project.add("greeter", "1.0.1", greeter_source("1.0.1"))

        created = watched.wait_for("proposal.created", version="1.0.1")

        assert created.data["state"] == "deferred"
        assert "disk at" in created.data["reason"]
        assert "above max_disk_percent 0.001%" in created.data["reason"]
        # The operator's approval is an explicit request: policy is not asked again.
        assert rt.approve(created.data["id"], actor="bob").success
        assert rt.load("greeter").hello() == "1.0.1"


def test_the_minimum_interval_defers_a_second_upgrade(project: Project) -> None:
    write_policy(project, 'auto_approve = ["patch"]\nmin_interval_s = 3600')
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with Runtime.open(project.root) as rt:
        watched = Watched(rt)
        assert rt.upgrade("greeter", "1.0.0").status == "refused"  # not an upgrade
        project.add("greeter", "1.0.1", greeter_source("1.0.1"))
        assert rt.upgrade("greeter", "1.0.1").success  # explicit: no interval applies
        project.add("greeter", "1.0.2", greeter_source("1.0.2"))

        created = watched.wait_for("proposal.created", version="1.0.2")

        assert created.data["state"] == "deferred"
        assert "min_interval_s is 3600" in created.data["reason"]


def test_a_rejected_version_is_never_proposed_again_but_a_newer_one_is(
    greeter: Project, watched: Watched
) -> None:
    greeter.add("greeter", "1.1.0", greeter_source("1.1.0"))
    created = watched.wait_for("proposal.created", version="1.1.0")

    rejected = watched.rt.reject(created.data["id"], reason="not this sprint", actor="carol")

    assert (rejected["state"], rejected["decided_by"]) == ("rejected", "carol")
    assert watched.rt.check_for_updates() == []
    (greeter.root / "components" / "greeter" / "1.1.0" / "notes.txt").write_text("touched")
    greeter.add("greeter", "1.2.0", greeter_source("1.2.0"))
    watched.wait_for("proposal.created", version="1.2.0")
    assert [p["version"] for p in watched.rt.pending()] == ["1.2.0"]
    rejections = [
        r for r in watched.rt.store.audit_records() if r.event_type == "proposal.rejected"
    ]
    assert [(r.actor, r.details["reason"]) for r in rejections] == [("carol", "not this sprint")]
    # Only an explicit request brings it back.
    assert watched.rt.upgrade("greeter", "1.1.0").success


def test_a_rolled_back_version_does_not_come_back_on_its_own(
    greeter: Project, watched: Watched
) -> None:
    greeter.add("greeter", "1.0.1", greeter_source("1.0.1"))
    watched.wait_for("proposal.applied", version="1.0.1")

    assert watched.rt.rollback("greeter", actor="dave", reason="wrong greetings").success
    time.sleep(0.3)  # policy checks and store notices pass

    back = watched.rt.history("greeter")[0]
    assert (back.kind, back.actor, back.reason) == ("rollback", "dave", "wrong greetings")
    assert watched.rt.store.audit_records()[-1].details["reason"] == "wrong greetings"

    assert watched.rt.check_for_updates() == []
    assert watched.rt.load("greeter").hello() == "1.0.0"
    assert watched.kinds("proposal.applied") == ["proposal.applied"]


def test_an_approved_proposal_that_fails_is_marked_failed_and_blocked(
    greeter: Project, watched: Watched
) -> None:
    broken = greeter_source("1.1.0", "\n\ndef health():\n    return False\n")
    greeter.add("greeter", "1.1.0", broken, health_check="greeter:health")
    created = watched.wait_for("proposal.created", version="1.1.0")

    result = watched.rt.approve(created.data["id"], actor="erin")

    assert not result.success
    assert str(watched.rt.store.proposal(created.data["id"]).state) == "failed"
    assert watched.rt.check_for_updates() == []


def test_an_operator_upgrade_supersedes_the_open_proposal(
    greeter: Project, watched: Watched
) -> None:
    greeter.add("greeter", "1.1.0", greeter_source("1.1.0"))
    created = watched.wait_for("proposal.created", version="1.1.0")

    assert watched.rt.upgrade("greeter", "1.1.0").success

    watched.wait_for("proposal.superseded", id=created.data["id"])
    assert watched.rt.pending() == []
    with pytest.raises(NoodleError, match="only pending or deferred") as refused:
        watched.rt.approve(created.data["id"])
    assert refused.value.code == "proposal-closed"


def test_unknown_proposal_ids_are_refused_with_a_hint(watched: Watched) -> None:
    with pytest.raises(NoodleError, match="noodle status") as refused:
        watched.rt.approve("p-nope")
    assert refused.value.code == "unknown-proposal"


def test_widening_a_constraint_in_noodle_toml_proposes_the_newly_allowed_version(
    project: Project,
) -> None:
    write_policy(project, "", constraint="==1.0.0")
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    project.add("greeter", "1.1.0", greeter_source("1.1.0"))
    with Runtime.open(project.root) as rt:
        watched = Watched(rt)
        assert rt.check_for_updates() == []  # 1.1.0 is outside ==1.0.0

        write_policy(project, "", constraint=">=1,<2")

        watched.wait_for("manifest.reloaded")
        created = watched.wait_for("proposal.created", version="1.1.0")
        assert created.data["source"] == "manifest"
        assert "needs approval (auto_approve: nothing)" in created.data["reason"]


def test_a_broken_noodle_toml_edit_changes_nothing_and_says_why(
    greeter: Project, watched: Watched
) -> None:
    (greeter.root / "noodle.toml").write_text("[components\ngreeter = '>=1'\n")

    invalid = watched.wait_for("manifest.invalid")

    assert "noodle.toml" in invalid.data["error"]
    assert watched.rt.project.policy.auto_approve == ("patch",)
    greeter.add("greeter", "1.0.1", greeter_source("1.0.1"))
    watched.wait_for("proposal.applied", version="1.0.1")


def test_the_manual_check_finds_versions_with_the_watcher_off(greeter: Project) -> None:
    with Runtime.open(greeter.root, settings={"watch_enabled": False}) as rt:
        assert not rt.wait_until_watching(0.1)
        greeter.add("greeter", "1.1.0", greeter_source("1.1.0"))
        time.sleep(0.2)
        assert rt.pending() == []

        [found] = rt.check_for_updates(actor="frank")

        assert (found["version"], found["source"], found["state"]) == ("1.1.0", "manual", "pending")
        assert rt.check_for_updates() == [found]  # proposed once, not again
        assert len(rt.proposals) == 1


def test_versions_waiting_in_the_store_at_start_are_proposed(greeter: Project) -> None:
    Runtime.open(greeter.root, control=False, settings={"watch_enabled": False}).close()
    greeter.add("greeter", "1.1.0", greeter_source("1.1.0"))  # while no runtime runs
    with Runtime.open(greeter.root) as rt:
        Watched(rt)
        until(lambda: [p["version"] for p in rt.pending()] == ["1.1.0"])


def test_a_new_git_tag_becomes_a_proposal_at_the_manual_check(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "components-repo")
    repo.release("greeter", "1.0.0")
    root = tmp_path / "project"
    sources = '\n[sources.git]\nrepo = "../components-repo"\ninterval_s = 3600\n'
    write_project(root, {"greeter": ">=1,<3"}, environment="production", extra=sources)
    Project(root).add("greeter", "1.0.0", greeter_source("1.0.0"))
    with Runtime.open(root, settings={"watch_enabled": False}) as rt:
        repo.release("greeter", "1.1.0")

        [found] = rt.check_for_updates(actor="grace")

        assert (found["version"], found["state"], found["source"]) == ("1.1.0", "pending", "git")
        assert found["detail"]["detected"] == "tag greeter-v1.1.0"
        assert (root / "components" / "greeter" / "1.1.0" / "component.toml").is_file()
        assert rt.approve(found["id"], actor="grace").success
        assert rt.load("greeter").hello() == "1.1.0"


FLAKY_CALC = """
import itertools

_calls = itertools.count()


def divide(a, b):
    if next(_calls) % 10 == 0:
        raise ZeroDivisionError("one call in ten fails")
    return a / b
"""


def test_a_trigger_symptom_becomes_a_proposal_that_policy_gates(project: Project) -> None:
    project.production({"calc": ">=1,<2"}, 'auto_approve = ["patch"]')
    project.add("calc", "1.0.0", FLAKY_CALC)
    Runtime.open(project.root, control=False, settings={"watch_enabled": False}).close()
    project.add("calc", "1.0.1", FLAKY_CALC.replace("% 10 == 0", "% 10 == -1"))
    settings = {
        "watch_enabled": False,
        "triggers_enabled": True,
        "trigger_interval": 0.1,
        "trigger_window": 0.3,
    }
    with Runtime.open(project.root, settings=settings) as rt:
        calc = rt.load("calc")
        stop = threading.Event()

        def call() -> None:
            while not stop.is_set():
                with contextlib.suppress(ZeroDivisionError):  # what the trigger must see
                    calc.divide(1, 2)
                time.sleep(0.0005)

        caller = threading.Thread(target=call)
        caller.start()
        try:
            until(lambda: rt.version("calc") == "1.0.1")
        finally:
            stop.set()
            caller.join()
        [proposal] = [p for p in rt.proposals if p["source"] == "trigger"]
        assert (proposal["version"], proposal["state"]) == ("1.0.1", "applied")
        assert "error rate" in proposal["detail"]["detected"]
        assert rt.history("calc")[0].actor == "policy"
