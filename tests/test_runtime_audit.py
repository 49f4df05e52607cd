"""The audit trail of real upgrades, checked through ``noodle audit verify`` (a subprocess).

The store is edited behind the engine's back with raw sqlite3, as an intruder would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from helpers.project import Project, greeter_source


def noodle(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noodle_upgrade.cli.main", "--project", str(project.root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )


@pytest.fixture
def upgraded(project: Project) -> Project:
    """A project whose ``svc`` went 1.0.0 -> 1.1.0 -> 1.2.0, back to 1.1.0, with one refusal."""
    project.constraints({"svc": "==1.0.0"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    project.open().close()
    project.constraints({"svc": ">=1,<2"})
    for version in ("1.1.0", "1.2.0"):
        project.add("svc", version, greeter_source(version))
    with project.open() as rt:
        assert rt.upgrade("svc", "1.1.0").success
        assert rt.upgrade("svc", "1.2.0").success
        assert rt.rollback("svc").success
        assert not rt.upgrade("svc", "1.0.0").success  # a downgrade: refused, but audited
    return project


def test_audit_verify_accepts_the_untouched_log(upgraded: Project) -> None:
    done = noodle(upgraded, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout

    done = noodle(upgraded, "audit", "verify", "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is True
    events = [row[0] for row in upgraded.sql("SELECT event_type FROM audit ORDER BY seq")]
    assert report["records"] == len(events)
    for event in ("upgrade.started", "upgrade.succeeded", "rollback.succeeded", "upgrade.refused"):
        assert event in events


def test_the_audit_log_refuses_plain_edits(upgraded: Project) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        upgraded.sql("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        upgraded.sql("DELETE FROM audit WHERE seq = 2")
    assert noodle(upgraded, "audit", "verify").returncode == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "mallory"), ("version_to", "9.9.9"), ("success", 0)],
)
def test_audit_verify_names_the_first_edited_record(
    upgraded: Project, column: str, value: object
) -> None:
    # Edit the record of the rollback, a record in the middle of the chain.
    [(seq,)] = upgraded.sql("SELECT seq FROM audit WHERE event_type = 'rollback.succeeded'")
    last = upgraded.sql("SELECT max(seq) FROM audit")[0][0]
    assert 1 < seq < last
    upgraded.tamper(f"UPDATE audit SET {column} = ? WHERE seq = ?", value, seq)

    done = noodle(upgraded, "audit", "verify")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"broken at record {seq}" in done.stdout
    assert "Traceback" not in done.stderr

    report = json.loads(noodle(upgraded, "audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert report["first_bad_seq"] == seq


def test_audit_verify_detects_a_removed_record(upgraded: Project) -> None:
    [(seq,)] = upgraded.sql("SELECT seq FROM audit WHERE event_type = 'upgrade.succeeded' LIMIT 1")
    upgraded.tamper("DELETE FROM audit WHERE seq = ?", seq)

    done = noodle(upgraded, "audit", "verify")

    assert done.returncode == 1
    assert f"broken at record {seq}" in done.stdout
    assert "missing" in done.stdout
