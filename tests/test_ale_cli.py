"""``noodle ale report|evolve|approve|reject`` on a project whose store holds what ALE
really recorded: numpy.dot called from this file on lists of three floats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest

from helpers.cli import assert_one_line_error, noodle, noodle_json
from helpers.project import Project
from noodle_upgrade import ale

LISTS_KEY = "list[float](3), list[float](3)"
THIS_FILE = Path(__file__).resolve()
CALLS = 200  # under the warm-up cap (256): every call is recorded, the count is exact
HOUR = 3600.0  # no background flush: disable() writes everything at once


def dot_on_lists(a: list[float], b: list[float]) -> Any:
    return numpy.dot(a, b)  # the recorded call site


CALL_SITE = f"{THIS_FILE}:" + str(
    next(
        number
        for number, line in enumerate(THIS_FILE.read_text().splitlines(), start=1)
        if line.endswith("# the recorded call site")
    )
)


@pytest.fixture
def recorded(project: Project) -> Iterator[Project]:
    """A project whose store recorded CALLS real numpy.dot calls on 3-float lists."""
    project.constraints({})
    ale.enable(project.root, targets=["numpy.dot"], flush_seconds=HOUR)
    try:
        for i in range(CALLS):
            dot_on_lists([i * 0.5, -1.25, 3.0], [0.1, i / 7, -2.5])
    finally:
        ale.disable()
    yield project


def rows_by_family(root: Path) -> dict[str | None, dict[str, Any]]:
    rows = noodle_json(root, "ale", "report")
    return {row["candidate"]: row for row in rows if row["signature"] == LISTS_KEY}


def test_report_shows_a_recorded_signature_as_observed_with_its_call_site(
    recorded: Project,
) -> None:
    rows = noodle_json(recorded.root, "ale", "report")
    (row,) = [row for row in rows if row["signature"] == LISTS_KEY]
    assert row["function"] == "numpy.dot"
    assert row["status"] == "observed" and row["candidate"] is None
    assert row["calls"] == CALLS
    assert row["call_sites"] == [CALL_SITE]
    table = noodle(recorded.root, "ale", "report")
    assert table.returncode == 0 and "list[float](3)" in table.stdout  # not read as markup


def test_evolve_validates_candidates_and_approve_and_reject_move_them(
    recorded: Project,
) -> None:
    judged = noodle_json(recorded.root, "ale", "evolve")
    assert {row["candidate"] for row in judged} == {"py_dot", "unrolled"}
    for row in judged:
        assert row["status"] == "validated", row
        assert row["speedup"] > 0 and row["mismatches"] == 0
        assert row["call_sites"] == [CALL_SITE]
    assert noodle_json(recorded.root, "ale", "evolve") == []  # nothing new to judge

    found = rows_by_family(recorded.root)
    assert set(found) == {"py_dot", "unrolled"}  # no "observed" row once candidates exist
    approved, rejected = found["unrolled"]["id"], found["py_dot"]["id"]

    done = noodle(recorded.root, "ale", "approve", approved)
    assert done.returncode == 0, done.stderr
    assert approved in done.stdout and "canary" in done.stdout
    moved = noodle_json(recorded.root, "ale", "reject", rejected, "--reason", "too loose")
    assert (moved["status"], moved["reason"]) == ("rejected", "too loose")

    found = rows_by_family(recorded.root)
    assert found["unrolled"]["status"] == "canary"
    assert (found["py_dot"]["status"], found["py_dot"]["reason"]) == ("rejected", "too loose")
    audit = {
        event: json.loads(details)
        for event, details in recorded.sql(
            "SELECT event_type, details FROM audit WHERE event_type LIKE 'ale.%'"
        )
    }
    assert audit["ale.canary"]["candidate"] == approved
    assert audit["ale.canary"]["from"] == "validated"
    assert audit["ale.rejected"]["candidate"] == rejected

    # a rejected candidate cannot be approved, and a canary is not approved twice
    assert_one_line_error(noodle(recorded.root, "ale", "approve", rejected), rejected)
    assert_one_line_error(noodle(recorded.root, "ale", "approve", approved), "canary")


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_an_unknown_candidate_is_one_error_line_and_changes_nothing(
    recorded: Project, command: str
) -> None:
    before = noodle_json(recorded.root, "ale", "report")
    done = noodle(recorded.root, "ale", command, "0123456789ab")
    assert done.returncode == 1
    assert_one_line_error(done, "0123456789ab", "noodle ale report")
    assert noodle_json(recorded.root, "ale", "report") == before


def test_a_project_without_a_state_store_is_one_error_line(project: Project) -> None:
    project.constraints({})
    done = noodle(project.root, "ale", "report")
    assert done.returncode == 1
    assert_one_line_error(done, str(project.db_path), "no state store yet")
    assert not project.db_path.exists()
