"""What survives the process: the lock, the history, rollback points and their state.

Crashes are real: a child process is killed with SIGKILL in the middle of an upgrade,
or while idle after one, and the project is opened again in the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.project import Project, counter_source, greeter_source, noodle_modules
from noodle_upgrade.models import UpgradeStatus

SCRIPT = Path(__file__).resolve().parent / "helpers" / "upgrade_and_wait.py"
CHILD_TIMEOUT_S = 60.0  # a guard against a stuck child, not a speed check


def start_svc(project: Project) -> None:
    """``svc`` 1.0.0 locked as active, with 1.1.0 in the store."""
    project.constraints({"svc": "==1.0.0"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    project.open().close()
    project.constraints({"svc": ">=1,<2"})


def test_upgrade_survives_a_restart_and_can_be_rolled_back_after_it(project: Project) -> None:
    start_svc(project)
    project.add("svc", "1.1.0", greeter_source("1.1.0"))
    with project.open() as rt:
        result = rt.upgrade("svc", "1.1.0")
        assert result.success, result.error_message

    with project.open() as rt:
        assert rt.version("svc") == "1.1.0"
        assert rt.load("svc").hello() == "1.1.0"
        assert rt.store.active_versions() == {"svc": "1.1.0"}
        entry = rt.history("svc")[0]
        assert (entry.id, entry.kind, entry.status) == (result.request_id, "upgrade", "succeeded")
        assert (entry.from_version, entry.to_version) == ("1.0.0", "1.1.0")
        assert [p.id for p in rt.store.rollback_points("svc")] == [result.rollback_point.id]
        # 1.0.0 is not loaded after the restart: the rollback loads it from the store.
        assert rt.status()["components"]["svc"]["loaded"] == ["1.1.0"]
        handle = rt.load("svc")

        back = rt.rollback("svc")

        assert back.success, back.error_message
        assert back.rollback_point.id == result.rollback_point.id
        assert handle.hello() == "1.0.0"
        assert [h.kind for h in rt.history("svc")][:2] == ["rollback", "upgrade"]

    with project.open() as rt:
        assert rt.version("svc") == "1.0.0"
        assert rt.store.rollback_points("svc") == []
        assert rt.store.verify_audit().ok


def test_rollback_after_a_restart_restores_the_state_saved_with_the_point(
    project: Project,
) -> None:
    project.constraints({"counter": "==1.0.0"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry="counter:create")
    project.open().close()
    project.constraints({"counter": ">=1,<3"})
    project.add(
        "counter",
        "2.0.0",
        counter_source("2.0.0", key="count", migrate='return {"count": state["n"], "chain": []}'),
        entry="counter:create",
        migrate="counter:migrate",
        upgrade_from=["1.0.0"],
    )
    with project.open() as rt:
        handle = rt.load("counter")
        for _ in range(5):
            handle.inc()
        assert rt.upgrade("counter", "2.0.0").success
        assert handle.value() == 5

    with project.open() as rt:
        assert rt.version("counter") == "2.0.0"
        before = noodle_modules()

        back = rt.rollback("counter")

        assert back.success, back.error_message
        handle = rt.load("counter")
        assert handle.version() == "1.0.0"
        assert handle.value() == 5  # the snapshot taken when 1.0.0 was left
        assert handle.inc() == ("1.0.0", 6)
        # 1.0.0 came from the store again: a fresh import, not a leftover module.
        assert any(".counter__1_0_0" in name for name in noodle_modules() - before)


# ------------------------------------------------------------------ killed processes


def run_child(project: Project, version: str, marker: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NOODLE_SWAP_TIMEOUT": "600"}  # the health check must not time out
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(project.root), "svc", version, str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(child: subprocess.Popen[str], marker: Path) -> None:
    """Wait for ``marker`` to appear, then SIGKILL the child and reap it."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        while not marker.exists():
            if child.poll() is not None:
                _, err = child.communicate()
                raise AssertionError(f"the child exited early ({child.returncode}): {err}")
            assert time.monotonic() < deadline, "the child never reached the marker"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL


def test_process_killed_mid_upgrade_leaves_the_old_version_and_an_interrupted_record(
    project: Project, tmp_path: Path
) -> None:
    start_svc(project)
    checking = tmp_path / "health-check-started"
    project.add(
        "svc",
        "1.1.0",
        greeter_source(
            "1.1.0",
            "\n\nimport pathlib, time\n\n\ndef health():\n"
            f"    pathlib.Path({str(checking)!r}).write_text('checking')\n"
            "    time.sleep(600)\n    return True\n",
        ),
        health_check="svc:health",
    )

    kill_when(run_child(project, "1.1.0", tmp_path / "never"), checking)

    with project.open() as rt:
        assert rt.version("svc") == "1.0.0"
        assert rt.load("svc").hello() == "1.0.0"
        assert rt.store.active_versions() == {"svc": "1.0.0"}
        entry = rt.history("svc")[0]
        assert (entry.kind, entry.status) == ("upgrade", UpgradeStatus.INTERRUPTED)
        assert (entry.from_version, entry.to_version) == ("1.0.0", "1.1.0")
        assert "stays at 1.0.0" in entry.error_message
        assert rt.store.rollback_points("svc") == []
        verification = rt.store.verify_audit()
        assert verification.ok, verification.reason
        assert "upgrade.interrupted" in [r.event_type for r in rt.store.audit_records()]

    with project.open() as rt:  # recovered once, not on every start
        statuses = [h.status for h in rt.history("svc")]
        assert statuses.count(UpgradeStatus.INTERRUPTED) == 1
        assert UpgradeStatus.IN_PROGRESS not in statuses


def test_process_killed_after_an_upgrade_resumes_the_new_version(
    project: Project, tmp_path: Path
) -> None:
    start_svc(project)
    project.add("svc", "1.1.0", greeter_source("1.1.0"))
    marker = tmp_path / "upgraded"

    kill_when(run_child(project, "1.1.0", marker), marker)

    assert marker.read_text() == "succeeded 1.1.0\n"
    with project.open() as rt:
        assert rt.version("svc") == "1.1.0"
        assert rt.load("svc").hello() == "1.1.0"
        assert [(h.kind, h.status) for h in rt.history("svc")] == [("upgrade", "succeeded")]
        assert rt.store.verify_audit().ok
        assert rt.rollback("svc").success  # its rollback point survived the kill
        assert rt.load("svc").hello() == "1.0.0"


@pytest.mark.parametrize("restart", [False, True], ids=["live", "after-restart"])
def test_a_failing_downgrade_hook_fails_the_rollback_and_changes_nothing(
    project: Project, restart: bool
) -> None:
    project.constraints({"counter": "==1.0.0"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry="counter:create")
    project.open().close()
    project.constraints({"counter": ">=1,<3"})
    project.add(
        "counter",
        "2.0.0",
        counter_source(
            "2.0.0",
            key="count",
            migrate='return {"count": state["n"], "chain": []}',
            downgrade="raise ValueError('cannot go back')",
        ),
        entry="counter:create",
        migrate="counter:migrate",
        downgrade="counter:downgrade",
        upgrade_from=["1.0.0"],
    )
    rt = project.open()
    try:
        assert rt.upgrade("counter", "2.0.0").success
        if restart:
            rt.close()
            rt = project.open()
        handle = rt.load("counter")
        handle.inc()
        value = handle.value()
        modules = noodle_modules()
        points = rt.store.rollback_points("counter")

        back = rt.rollback("counter")

        assert (back.success, back.status, back.error_code) == (False, "failed", "restore-failed")
        assert "ValueError" in back.error_message and "cannot go back" in back.error_message
        assert rt.version("counter") == "2.0.0"
        assert handle.value() == value
        assert handle.inc() == ("2.0.0", value + 1)
        assert rt.store.active_versions() == {"counter": "2.0.0"}
        assert rt.store.rollback_points("counter") == points  # still there to retry
        assert noodle_modules() == modules, "the rollback target stayed loaded"
        assert rt.history("counter")[0].status is UpgradeStatus.FAILED
    finally:
        rt.close()
