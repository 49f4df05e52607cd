"""The ``noodle`` command line, run as a real subprocess on real projects."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from noodle_upgrade import Runtime
from noodle_upgrade.engine.integrity import folder_digest
from noodle_upgrade.scaffold import write_component, write_project


def noodle(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "noodle_upgrade.cli.main", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for part in parts:
        assert part in lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "app", {"greeter": ">=1,<3"})
    write_component(root, "greeter", "1.0.0", "def greet(name):\n    return 'hello ' + name\n")
    with Runtime.open(root) as rt:
        assert rt.version("greeter") == "1.0.0"
    write_component(
        root,
        "greeter",
        "1.1.0",
        "def greet(name):\n    return 'hi ' + name\n\ndef health():\n    return True\n",
        health_check="greeter:health",
        sign=True,
    )
    return root


def test_init_creates_a_project_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    done = noodle(root, "init")
    assert done.returncode == 0, done.stderr
    assert (root / "noodle.toml").is_file()
    assert (root / "components").is_dir()
    assert (root / ".noodle" / "state.db").is_file()
    assert_one_line_error(noodle(root, "init"), "noodle.toml", "already exists")


def test_status_json_has_the_documented_shape(project: Path) -> None:
    done = noodle(project, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["live"] is False
    assert status["components"]["greeter"]["version"] == "1.0.0"
    assert status["components"]["greeter"]["state"] == "active"
    assert status["pending"] == []


def test_plan_shows_the_path_without_applying_it(project: Path) -> None:
    done = noodle(project, "plan", "greeter", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["path"] == ["1.1.0"]
    assert plan["bump"] == "minor"
    assert (
        json.loads(noodle(project, "status", "--json").stdout)["components"]["greeter"]["version"]
        == "1.0.0"
    )


def test_upgrade_rollback_and_history(project: Path) -> None:
    upgraded = noodle(project, "upgrade", "greeter", "1.1.0", "--json")
    assert upgraded.returncode == 0, upgraded.stderr
    result = json.loads(upgraded.stdout)
    assert result["success"] is True
    assert result["to_version"] == "1.1.0"
    with Runtime.open(project) as rt:
        assert rt.load("greeter").greet("x") == "hi x"

    rolled = noodle(project, "rollback", "greeter")
    assert rolled.returncode == 0, rolled.stderr
    assert "1.1.0 → 1.0.0" in rolled.stdout

    history = json.loads(noodle(project, "history", "--json").stdout)
    assert [(h["kind"], h["status"]) for h in history][:2] == [
        ("rollback", "succeeded"),
        ("upgrade", "succeeded"),
    ]


def test_a_refused_upgrade_exits_non_zero_and_says_why(project: Path) -> None:
    done = noodle(project, "upgrade", "greeter", "2.5.0")
    assert done.returncode == 1
    assert "2.5.0" in done.stdout
    assert "not in the component store" in done.stdout


def test_rollback_without_a_point_is_one_clear_error(project: Path) -> None:
    assert_one_line_error(noodle(project, "rollback", "greeter"), "no rollback point")


def test_audit_verify_and_export(project: Path, tmp_path: Path) -> None:
    assert noodle(project, "upgrade", "greeter").returncode == 0
    verified = noodle(project, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout

    exported = tmp_path / "audit.json"
    assert noodle(project, "audit", "export", "-o", str(exported)).returncode == 0
    records = json.loads(exported.read_text())
    assert {"upgrade.started", "upgrade.succeeded"} <= {r["event_type"] for r in records}


def test_audit_verify_names_the_first_tampered_record(project: Path) -> None:
    assert noodle(project, "upgrade", "greeter").returncode == 0
    with sqlite3.connect(project / ".noodle" / "state.db") as db:
        # Drop the append-only guards first, as someone editing the file by hand would.
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    done = noodle(project, "audit", "verify")
    assert done.returncode == 1
    assert "record 2" in done.stdout


def test_hash_prints_the_folder_digest(project: Path) -> None:
    folder = project / "components" / "greeter" / "1.1.0"
    done = noodle(project, "hash", str(folder))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == folder_digest(folder)


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (("upgrade", "nosuch"), ("'nosuch'", "not active")),
        (("upgrade", "greeter", "one.two"), ("'one.two'", "not a valid version")),
        (("hash", "/nonexistent/folder"), ("/nonexistent/folder", "not a folder")),
        (("plan", "nosuch"), ("'nosuch'",)),
        (("upgrade", "greeter", "--strategy", "canary"), ("'canary'", "live calls")),
    ],
)
def test_misuse_is_one_line_on_stderr(
    project: Path, args: tuple[str, ...], parts: tuple[str, ...]
) -> None:
    assert_one_line_error(noodle(project, *args), *parts)


def test_a_broken_noodle_toml_is_one_line_naming_the_file(project: Path) -> None:
    (project / "noodle.toml").write_text("[components\n")
    assert_one_line_error(noodle(project, "status"), "noodle.toml")


def test_no_project_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(noodle(tmp_path, "status"), "noodle.toml", "noodle init")
