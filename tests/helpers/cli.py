"""The ``noodle`` command line as a user runs it: a real subprocess on a real project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 120.0  # a guard against a hang, never a speed check


def environment(*, unbuffered: bool = False) -> dict[str, str]:
    """The caller's environment, with the endpoint on (the default) and stdout
    block-buffered on a pipe, as it is for anyone who pipes ``noodle`` into a tool."""
    env = dict(os.environ)
    env.pop("NOODLE_CONTROL", None)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def noodle_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "noodle_upgrade.cli.main", "--project", str(root), *args]


def noodle(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        noodle_command(root, *args),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        env=environment(),
    )


def noodle_json(root: Path, *args: str) -> Any:
    """What ``noodle … --json`` printed; the command must succeed."""
    done = noodle(root, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    """The command failed with one line on stderr, no traceback, naming every part."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
