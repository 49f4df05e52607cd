"""The ``noodle`` command line steering a REAL running application through its endpoint.

The application is a separate Python process (``helpers/live_app.py``) that embeds the
runtime and calls a component from two threads the whole time; the CLI runs as
subprocesses too, exactly as a user types it. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import environment, noodle, noodle_command, noodle_json
from helpers.control import (
    IMMEDIATE_UPGRADE_EVENTS,
    TIMEOUT_S,
    greeter_project,
    pointer,
    state_dir,
)
from helpers.live import LiveApp, assert_no_errors
from helpers.project import Project
from noodle_upgrade import Runtime


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return greeter_project(Project(tmp_path / "app")).root


@pytest.fixture
def app(root: Path, tmp_path: Path) -> Iterator[LiveApp]:
    with LiveApp(root, tmp_path / "work") as live:
        yield live


# ----------------------------------------------------------- steering a live app


def test_the_cli_steers_a_live_application(root: Path, app: LiveApp) -> None:
    status = noodle_json(root, "status")
    assert status["live"] is True
    assert status["project"] == str(root)
    assert status["components"]["greeter"]["version"] == "1.0.0"
    assert status["components"]["greeter"]["state"] == "active"
    assert pointer(root)["pid"] == app.process.pid
    app.sees("1.0.0")

    upgraded = noodle_json(root, "upgrade", "greeter", "1.1.0")
    assert upgraded["success"] is True
    assert (upgraded["from_version"], upgraded["to_version"]) == ("1.0.0", "1.1.0")
    app.sees("1.1.0")  # the application's next calls reach the new version
    status = noodle_json(root, "status")
    assert status["components"]["greeter"]["version"] == "1.1.0"
    assert upgraded["rollback_point"] in status["components"]["greeter"]["rollback_points"]

    rolled = noodle(root, "rollback", "greeter")
    assert rolled.returncode == 0, rolled.stderr
    assert "1.1.0 → 1.0.0" in rolled.stdout
    app.sees("1.0.0")
    assert noodle_json(root, "status")["components"]["greeter"]["version"] == "1.0.0"

    # Refusals and misuse come back from the live runtime as they would offline.
    refused = noodle(root, "upgrade", "greeter", "2.5.0")
    assert refused.returncode == 1
    assert "not in the component store" in refused.stdout
    unknown = noodle(root, "upgrade", "nosuch")
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    assert "'nosuch'" in unknown.stderr

    history = noodle_json(root, "history")
    assert [(h["kind"], h["status"], h["actor"]) for h in history[:3]] == [
        ("upgrade", "refused", "cli"),
        ("rollback", "succeeded", "cli"),
        ("upgrade", "succeeded", "cli"),
    ]
    assert history[2]["id"] == upgraded["id"]
    assert noodle_json(root, "history", "--limit", "1") == history[:1]
    assert noodle_json(root, "audit", "verify")["ok"] is True

    assert_no_errors(app.stop())
    # A clean stop takes the endpoint away: the CLI works on the store again.
    assert not (state_dir(root) / "control.json").exists()
    assert not (state_dir(root) / "control.sock").exists()
    status = noodle_json(root, "status")
    assert status["live"] is False
    assert status["components"]["greeter"]["version"] == "1.0.0"


def test_a_crashed_application_leaves_a_stale_pointer_that_nothing_trusts(
    root: Path, app: LiveApp
) -> None:
    assert noodle_json(root, "status")["live"] is True
    assert_no_errors(app.stop(crash=True))  # killed with SIGKILL, the runtime open
    assert pointer(root)["pid"] == app.process.pid
    assert (state_dir(root) / "control.sock").exists()

    status = noodle_json(root, "status")
    assert status["live"] is False
    assert status["components"]["greeter"]["version"] == "1.0.0"
    events = noodle(root, "events", "--json")
    assert events.returncode == 1
    assert "no live runtime" in events.stderr
    assert events.stderr.count("\n") == 1
    # With nobody live, the CLI upgrades the store itself.
    assert noodle_json(root, "upgrade", "greeter", "1.1.0")["success"] is True

    # The next application to start takes the endpoint over.
    with Runtime.open(root, control=True) as rt:
        assert pointer(root)["pid"] == os.getpid()
        status = noodle_json(root, "status")  # served by this process's runtime
        assert status["live"] is True
        assert status["components"]["greeter"]["version"] == "1.1.0"
        assert rt.load("greeter").hello() == "1.1.0"


# ----------------------------------------------------------------- noodle events


class Follower:
    """``noodle events --json`` running; its lines are read as they come."""

    def __init__(self, root: Path, *, unbuffered: bool) -> None:
        self.process = subprocess.Popen(
            noodle_command(root, "events", "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment(unbuffered=unbuffered),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_event(self, timeout: float = TIMEOUT_S) -> dict[str, Any] | None:
        """The next event it printed, or None if none came within ``timeout``."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        assert line is not None, "noodle events ended"
        event: dict[str, Any] = json.loads(line)
        return event

    def close(self) -> None:
        self.process.kill()
        self.process.wait(TIMEOUT_S)
        assert self.process.stdout is not None
        self.process.stdout.close()


def ping_until_heard(root: Path, follower: Follower) -> None:
    """``noodle events`` subscribes once it has started: until it prints something, make
    an event that changes nothing (an upgrade refused: the version is already active)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        assert noodle(root, "upgrade", "greeter", "1.0.0").returncode == 1  # refused
        if follower.next_event(timeout=2.0) is not None:
            return
        assert time.monotonic() < deadline, "noodle events never printed an event"


def test_noodle_events_shows_an_upgrade_as_it_happens(root: Path, app: LiveApp) -> None:
    follower = Follower(root, unbuffered=True)
    try:
        ping_until_heard(root, follower)
        upgraded = noodle_json(root, "upgrade", "greeter", "1.1.0")
        kinds = []
        while "upgrade.succeeded" not in kinds:
            event = follower.next_event()
            assert event is not None, f"only {kinds} came"
            if event["data"].get("id") == upgraded["id"]:
                assert event["component"] == "greeter"
                kinds.append(event["kind"])
        assert kinds == IMMEDIATE_UPGRADE_EVENTS
        assert follower.process.poll() is None  # it keeps following until killed
    finally:
        follower.close()
    app.sees("1.1.0")
    assert_no_errors(app.stop())


def test_noodle_events_json_reaches_a_pipe_as_each_event_happens(root: Path, app: LiveApp) -> None:
    piped = Follower(root, unbuffered=False)
    probe = Follower(root, unbuffered=True)  # started second: says when both listen
    try:
        ping_until_heard(root, probe)
        assert noodle(root, "upgrade", "greeter", "1.0.0").returncode == 1  # one more
        assert piped.next_event(timeout=5.0) is not None, "nothing reached the pipe"
    finally:
        piped.close()
        probe.close()
        assert_no_errors(app.stop())
