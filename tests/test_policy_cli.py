"""The self-updating loop end to end: a REAL application process embeds the runtime, new
versions are dropped into its component store while it serves calls, and an operator
steers what ``[policy.production]`` holds back with the ``noodle`` CLI.

The application (``helpers/live_app.py``) calls ``greeter.hello()`` from two threads the
whole time and records each version its calls return; the CLI runs as subprocesses with
``--json``, exactly as a user types it. Nothing is mocked.
"""

from __future__ import annotations

import getpass
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from helpers.cli import assert_one_line_error, noodle, noodle_json
from helpers.control import TIMEOUT_S
from helpers.live import LiveApp, assert_no_errors
from helpers.project import Project, greeter_source

T = TypeVar("T")

GREETER = {"greeter": ">=1,<3"}
PATCHES_ONLY = 'auto_approve = ["patch"]'


def operator() -> str:
    """Who the CLI says approved or rejected: ``cli:`` and the login name."""
    return f"cli:{getpass.getuser()}"


def eventually(read: Callable[[], T | None], what: str) -> T:
    """What ``read`` returns once it returns something; the runtime acts in its own
    threads, so the CLI sees the outcome a moment after the cause."""
    deadline = time.monotonic() + TIMEOUT_S
    while (value := read()) is None:
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)
    return value


def proposal(root: Path, component: str, version: str, says: str = "") -> dict[str, Any]:
    """The open proposal of ``component`` ``version`` once ``noodle status`` lists it
    with a reason that contains ``says``."""

    def listed() -> dict[str, Any] | None:
        for item in noodle_json(root, "status")["pending"]:
            if (item["component"], item["version"]) == (component, version) and (
                says in item["reason"]
            ):
                return dict(item)
        return None

    return eventually(listed, f"a proposal of {component} {version} saying {says!r}")


def upgrade_to(root: Path, version: str) -> dict[str, Any]:
    """The history entry of the upgrade to ``version``, once it has succeeded."""

    def succeeded() -> dict[str, Any] | None:
        for entry in noodle_json(root, "history"):
            if (entry["kind"], entry["to_version"]) == ("upgrade", version):
                return dict(entry) if entry["status"] == "succeeded" else None
        return None

    return eventually(succeeded, f"the upgrade to {version} succeed")


def audited(root: Path, event_type: str) -> list[tuple[str, str]]:
    """``(actor, version_to)`` of every ``event_type`` record ``noodle audit export`` has."""
    done = noodle(root, "audit", "export")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    return [(r["actor"], r["version_to"]) for r in records if r["event_type"] == event_type]


def closed_window() -> str:
    """A maintenance window that does not contain now (one to two hours ahead)."""
    now = datetime.now()
    return f"{now + timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"


def test_policy_applies_a_patch_and_holds_minor_and_critical_changes_for_the_operator(
    project: Project, tmp_path: Path
) -> None:
    root = project.production(GREETER, PATCHES_ONLY).root
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with LiveApp(root, tmp_path / "work") as app:
        app.sees("1.0.0")

        # A patch: policy applies it, nobody types a command.
        project.add("greeter", "1.0.1", greeter_source("1.0.1"))
        app.sees("1.0.1")
        assert upgrade_to(root, "1.0.1")["actor"] == "policy"
        assert ("policy", "1.0.1") in audited(root, "proposal.approved")

        # A minor change waits for an operator; the application keeps its version.
        project.add("greeter", "1.1.0", greeter_source("1.1.0"))
        minor = proposal(root, "greeter", "1.1.0")
        status = noodle_json(root, "status")
        assert status["live"] is True
        assert status["pending"] == [minor]
        assert minor["id"] and minor["state"] == "pending"
        assert "a minor change needs approval (auto_approve: patch)" in minor["reason"]
        assert app.seen()[-1] == "1.0.1"

        approved = noodle(root, "approve", minor["id"])
        assert approved.returncode == 0, approved.stderr
        app.sees("1.1.0")
        assert upgrade_to(root, "1.1.0")["actor"] == operator()
        assert noodle_json(root, "status")["pending"] == []

        # A critical component waits even for a patch that policy would apply.
        project.add("greeter", "1.1.1", greeter_source("1.1.1"), critical=True)
        critical = proposal(root, "greeter", "1.1.1")
        assert critical["state"] == "pending"
        assert critical["detail"]["change"] == "patch"
        assert (
            "greeter is critical: every change needs an operator's approval" in (critical["reason"])
        )

        # Rejected: it leaves the list and is never proposed again; a newer version is.
        rejected = noodle_json(root, "reject", critical["id"], "--reason", "not this sprint")
        assert (rejected["state"], rejected["decided_by"]) == ("rejected", operator())
        assert noodle_json(root, "status")["pending"] == []
        assert noodle_json(root, "check") == []
        project.add("greeter", "1.2.0", greeter_source("1.2.0"))
        newer = proposal(root, "greeter", "1.2.0")
        assert noodle_json(root, "status")["pending"] == [newer]
        assert noodle_json(root, "check") == [newer]

        unknown = noodle(root, "approve", "p-nope")
        assert unknown.returncode == 1
        assert_one_line_error(unknown, "no proposal 'p-nope'", "noodle status")

        assert app.seen() == ["1.0.0", "1.0.1", "1.1.0"]  # nothing else ever served
        assert_no_errors(app.stop())
    assert audited(root, "proposal.approved") == [("policy", "1.0.1"), (operator(), "1.1.0")]
    assert audited(root, "proposal.rejected") == [(operator(), "1.1.1")]
    assert noodle_json(root, "audit", "verify")["ok"] is True


def test_outside_a_window_or_above_a_resource_threshold_a_patch_waits_until_approved(
    project: Project, tmp_path: Path
) -> None:
    window = closed_window()
    root = project.production(GREETER, f'{PATCHES_ONLY}\nmaintenance_windows = ["{window}"]').root
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with LiveApp(root, tmp_path / "work") as app:
        app.sees("1.0.0")

        project.add("greeter", "1.0.1", greeter_source("1.0.1"))
        outside = proposal(root, "greeter", "1.0.1")
        assert outside["state"] == "deferred"
        assert f"outside the maintenance windows ({window})" in outside["reason"]
        # A manual check asks policy again: still outside the window, so nothing runs.
        [checked] = noodle_json(root, "check")
        assert (checked["id"], checked["state"]) == (outside["id"], "deferred")
        assert app.seen()[-1] == "1.0.0"

        approved = noodle_json(root, "approve", outside["id"])
        assert approved["success"] is True
        app.sees("1.0.1")
        assert upgrade_to(root, "1.0.1")["actor"] == operator()

        # The threshold is written before auto_approve: a reader that caught the file
        # half-written never sees the approval without its limit.
        project.production(GREETER, f"max_disk_percent = 0.001\n{PATCHES_ONLY}")
        project.add("greeter", "1.0.2", greeter_source("1.0.2"))
        busy = proposal(root, "greeter", "1.0.2", says="above max_disk_percent 0.001%")
        assert busy["state"] == "deferred"
        assert re.search(r"disk at \d+\.\d% is above", busy["reason"]), busy["reason"]
        [checked] = noodle_json(root, "check")
        assert (checked["id"], checked["state"]) == (busy["id"], "deferred")
        assert app.seen() == ["1.0.0", "1.0.1"]
        assert_no_errors(app.stop())


def test_without_a_live_application_the_cli_decides_through_the_store(
    project: Project, tmp_path: Path
) -> None:
    root = project.production({**GREETER, "clock": ">=1,<3"}, PATCHES_ONLY).root
    for name in ("greeter", "clock"):
        project.add(name, "1.0.0", greeter_source("1.0.0"))
    with LiveApp(root, tmp_path / "work") as app:
        for name in ("greeter", "clock"):
            project.add(name, "1.1.0", greeter_source("1.1.0"))
        greeter = proposal(root, "greeter", "1.1.0")
        clock = proposal(root, "clock", "1.1.0")
        assert_no_errors(app.stop())

    status = noodle_json(root, "status")
    assert status["live"] is False
    assert sorted(item["id"] for item in status["pending"]) == sorted([greeter["id"], clock["id"]])

    approved = noodle_json(root, "approve", greeter["id"])
    assert (approved["success"], approved["strategy"]) == (True, "immediate")
    assert upgrade_to(root, "1.1.0")["actor"] == operator()
    rejected = noodle_json(root, "reject", clock["id"], "--reason", "wait for the audit")
    assert (rejected["state"], rejected["decided_by"]) == ("rejected", operator())
    status = noodle_json(root, "status")
    assert status["pending"] == []
    assert status["components"]["greeter"]["version"] == "1.1.0"
    assert status["components"]["clock"]["version"] == "1.0.0"

    check = noodle(root, "check")
    assert check.returncode == 1
    assert_one_line_error(check, f"no live runtime serves {root}")
    for command in ("approve", "reject"):
        unknown = noodle(root, command, "p-nope")
        assert unknown.returncode == 1
        assert_one_line_error(unknown, "no proposal 'p-nope'", "noodle status")
    closed = noodle(root, "approve", clock["id"])
    assert closed.returncode == 1
    assert_one_line_error(closed, f"proposal {clock['id']} is rejected", "only pending or deferred")
    assert noodle_json(root, "status")["components"]["clock"]["version"] == "1.0.0"
