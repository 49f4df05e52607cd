"""The compliance report (``noodle audit report``, seed 003 §9.4) on histories made by real
upgrades: a real ``Runtime`` upgrading real components of a project on disk, under load
where a strategy judges live calls, and the report read from the store by the command
line in a subprocess, as an auditor would run it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.behaviour import calc_source, faults_as_values, locked_calc
from helpers.cli import assert_one_line_error, noodle
from helpers.control import greeter_project
from helpers.load import PROGRESS_TIMEOUT_S, running
from helpers.project import Project
from noodle_upgrade.models import ProposalState, UpgradeStatus
from noodle_upgrade.reports.compliance import build_report, iso, parse_bound, to_markdown
from noodle_upgrade.store import Store

BASE_US = 20.0  # every call's work, so the canary compares work rather than jitter
CANARY = {
    "step_seconds": 0.25,
    "min_calls": 20,
    "initial_percentage": 10,
    "increment_percentage": 20,
    "max_percentage": 50,
}
UNHEALTHY = "\n\ndef health():\n    return False\n"
# Passes the check before the switch, fails the one after it: the upgrade undoes itself.
HEALTHY_ONCE = (
    "\n\nCHECKS = []\n\n\ndef health():\n    CHECKS.append(1)\n    return len(CHECKS) == 1\n"
)


def report_json(root: Path, *args: str) -> dict[str, Any]:
    done = noodle(root, "audit", "report", "--json", *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def report_markdown(root: Path, *args: str) -> str:
    done = noodle(root, "audit", "report", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def interrupted_upgrade(project: Project) -> str:
    """An upgrade whose process stopped before its outcome: the next start recovers it
    as interrupted. Returns its id."""
    with Store.open(project.db_path) as store:
        store.begin_operation(
            op_id="up-crashed",
            kind="upgrade",
            component="calc",
            from_version="1.0.0",
            to_version="1.1.0",
            strategy="immediate",
            actor="api",
            path=["1.1.0"],
        )
    return "up-crashed"


def decide(store: Store, to_version: str, decision: ProposalState, actor: str) -> str:
    """A proposal of the runtime's, approved or rejected by ``actor``; returns its id."""
    proposal = store.add_proposal(
        component="calc",
        kind="upgrade",
        from_version="1.0.0",
        to_version=to_version,
        source="watcher",
        state=ProposalState.PENDING,
        reason=f"calc {to_version} appeared in the store",
    )
    store.move_proposal(proposal.id, decision, actor=actor, reason=f"{actor} decided")
    return proposal.id


def rows(markdown: str, section: str) -> list[str]:
    """The table rows of one ``## section`` of the Markdown report."""
    body = markdown.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and "---" not in line]


# ------------------------------------------------------------------ the whole history


def test_the_report_accounts_for_every_upgrade_and_why_it_ended(project: Project) -> None:
    locked_calc(project, calc_source("1.0.0", base_us=BASE_US))
    project.add("calc", "1.1.0", calc_source("1.1.0", base_us=BASE_US))
    project.add("calc", "1.2.0", calc_source("1.2.0") + UNHEALTHY, health_check="calc:health")
    project.add("calc", "1.3.0", calc_source("1.3.0") + HEALTHY_ONCE, health_check="calc:health")
    project.add("calc", "1.4.0", calc_source("1.4.0", base_us=BASE_US, fail_every=3))
    crashed = interrupted_upgrade(project)

    # No watcher: the proposals in this history are the test's own.
    with project.open(watch_enabled=False) as rt:
        failed = rt.upgrade("calc", "1.2.0")
        undone = rt.upgrade("calc", "1.3.0")
        handle = rt.load("calc")
        with running(faults_as_values(lambda: handle.add(2, 3)), threads=4) as load:
            load.progress(50)
            analysed = rt.upgrade("calc", "1.4.0", strategy="canary", **CANARY)
        done = rt.upgrade("calc", "1.1.0", actor="alice")
        refused = rt.upgrade("calc", "1.0.0")
        back = rt.rollback("calc")
        approved = decide(rt.store, "1.1.0", ProposalState.APPROVED, "alice")
        rejected = decide(rt.store, "1.4.0", ProposalState.REJECTED, "bob")
        outcomes = [r.status for r in (failed, undone, analysed, done, refused, back)]
        assert outcomes == [
            UpgradeStatus.FAILED,
            UpgradeStatus.ROLLED_BACK,
            UpgradeStatus.ROLLED_BACK,
            UpgradeStatus.SUCCEEDED,
            UpgradeStatus.REFUSED,
            UpgradeStatus.SUCCEEDED,
        ], [r.error_message for r in (failed, undone, analysed, done, refused, back)]

        # Read by another process while the application runs, as an auditor would.
        report = report_json(project.root)
        markdown = report_markdown(project.root)
        chain_length = len(rt.store.audit_records())

    assert (report["report"], report["environment"]) == ("compliance", "development")
    assert Path(report["project"]) == project.root.resolve()
    assert report["period"]["since"] is report["period"]["until"] is None
    assert report["period"]["first_record"] <= report["period"]["last_record"]
    assert report["totals"]["upgrade"] == {
        "in_progress": 0,
        "succeeded": 1,
        "failed": 1,
        "rolled_back": 2,
        "refused": 1,
        "interrupted": 1,
    }
    assert report["totals"]["rollback"]["succeeded"] == 1

    history = [
        (u["id"], u["from_version"], u["to_version"], u["strategy"], u["actor"], u["status"])
        for u in report["update_history"]
    ]
    assert history == [
        (crashed, "1.0.0", "1.1.0", "immediate", "api", "interrupted"),
        (failed.request_id, "1.0.0", "1.2.0", "immediate", "api", "failed"),
        (undone.request_id, "1.0.0", "1.3.0", "immediate", "api", "rolled_back"),
        (analysed.request_id, "1.0.0", "1.4.0", "canary", "api", "rolled_back"),
        (done.request_id, "1.0.0", "1.1.0", "immediate", "alice", "succeeded"),
        (refused.request_id, "1.1.0", "1.0.0", "immediate", "api", "refused"),
    ]
    assert all(u["duration_s"] >= 0 for u in report["update_history"])

    failures = {f["id"]: f for f in report["failed_updates"]}
    assert list(failures) == [crashed, failed.request_id, refused.request_id]
    assert failures[crashed]["error_code"] == "interrupted"
    assert "stays at 1.0.0" in failures[crashed]["error_message"]
    assert failures[failed.request_id]["error_code"] == "health-check-failed"
    assert "returned False" in failures[failed.request_id]["error_message"]
    assert failures[refused.request_id]["error_code"] == "downgrade"
    assert failures[refused.request_id]["error_message"] == refused.error_message

    rollbacks = report["rollbacks"]
    assert [(r["id"], r["cause"]) for r in rollbacks["automatic"]] == [
        (undone.request_id, "health-check-failed"),
        (analysed.request_id, "analysis-failed"),
    ]
    assert "error_rate" in rollbacks["automatic"][1]["error_message"]
    assert [(r["id"], r["actor"], r["cause"], r["status"]) for r in rollbacks["operations"]] == [
        (back.request_id, "api", "manual (api)", "succeeded")
    ]
    assert rollbacks["causes"] == [
        {"cause": "analysis-failed", "automatic": True, "count": 1},
        {"cause": "health-check-failed", "automatic": True, "count": 1},
        {"cause": "manual (api)", "automatic": False, "count": 1},
    ]

    decisions = {
        (r["decision"], r["details"]["proposal"], r["actor"], r["version_to"])
        for r in report["approvals"]["records"]
    }
    assert {("approved", approved, "alice", "1.1.0"), ("rejected", rejected, "bob", "1.4.0")} <= (
        decisions
    )
    assert report["approvals"]["counts"]["approved"] == 1
    assert report["approvals"]["counts"]["rejected"] == 1

    assert report["components"] == [
        {
            "component": "calc",
            "upgrades": 6,
            "succeeded": 1,
            "unsuccessful": 5,
            "failure_rate": round(5 / 6, 4),
            "rollbacks": 3,
        }
    ]
    assert report["audit"]["ok"] is True
    assert report["audit"]["records"] == report["audit"]["records_in_period"] == chain_length

    # The Markdown says the same, row by row.
    updates = rows(markdown, "Update history")
    expected = [
        "| calc | 1.0.0 → 1.1.0 | immediate | api | interrupted |",
        "| calc | 1.0.0 → 1.2.0 | immediate | api | failed |",
        "| calc | 1.0.0 → 1.3.0 | immediate | api | rolled_back |",
        "| calc | 1.0.0 → 1.4.0 | canary | api | rolled_back |",
        "| calc | 1.0.0 → 1.1.0 | immediate | alice | succeeded |",
        "| calc | 1.1.0 → 1.0.0 | immediate | api | refused |",
    ]
    assert len(updates) == 1 + len(expected)  # the header, then one row per upgrade
    for row, fragment in zip(updates[1:], expected, strict=True):
        assert fragment in row, (fragment, row)
    failed_rows = rows(markdown, "Failed updates")[1:]
    assert [row.split(" | ")[5] for row in failed_rows] == [
        "interrupted",
        "health-check-failed",
        "downgrade",
    ]
    assert "returned False" in failed_rows[1]
    rollback_rows = rows(markdown, "Rollbacks and their causes")
    for fragment in (
        "| analysis-failed | yes | 1 |",
        "| health-check-failed | yes | 1 |",
        "| manual (api) | no | 1 |",
        "| calc | 1.1.0 → 1.0.0 | api | manual (api) | - | succeeded | - |",
    ):
        assert any(fragment in row for row in rollback_rows), fragment
    approvals = rows(markdown, "Approvals and rejections")
    assert any(f"| approved | {approved} | calc | 1.0.0 → 1.1.0 | alice |" in r for r in approvals)
    assert any(f"| rejected | {rejected} | calc | 1.0.0 → 1.4.0 | bob |" in r for r in approvals)
    assert rows(markdown, "Per component")[1] == "| calc | 6 | 1 | 5 | 83% | 3 |"
    assert f"✔ intact ({chain_length} records)" in markdown


def test_rollbacks_the_runtime_started_are_told_apart_by_cause(
    project: Project, tmp_path: Path
) -> None:
    flag = tmp_path / "fail-now"
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0", fail_when_exists=flag))
    project.add("calc", "1.2.0", calc_source("1.2.0"))
    with project.open() as rt:
        handle = rt.load("calc")
        switched_back = threading.Event()
        rt.subscribe(lambda e: switched_back.set() if e.kind == "rollback.succeeded" else None)
        with running(faults_as_values(lambda: handle.add(2, 3)), threads=4) as load:
            load.progress(20)
            green = rt.upgrade(
                "calc", "1.1.0", strategy="blue_green", switchback_delay=30.0, min_calls=20
            )
            assert green.success, green.error_message
            flag.touch()  # from now on every call 1.1.0 gets fails: the watch switches back
            assert switched_back.wait(PROGRESS_TIMEOUT_S), "the warm window never switched back"
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while rt.status()["components"]["calc"]["state"] != "active":  # retention runs on
            assert time.monotonic() < deadline, "calc stayed busy after the switch-back"
            time.sleep(0.005)
        assert rt.upgrade("calc", "1.2.0").success
        assert rt.rollback("calc", actor="trigger").success  # what a trigger's rollback does

        report = build_report(
            rt.store.records_between(),
            project=str(project.root),
            environment="development",
            since=None,
            until=None,
            generated_at=time.time(),
        )

    causes = [(c.cause, c.automatic, c.count) for c in report.rollback_causes()]
    assert causes == [("blue-green switch-back", True, 1), ("trigger", True, 1)]
    assert report.automatic_rollbacks == []  # both upgrades succeeded; others undid them
    assert [(s.upgrades, s.succeeded, s.rollbacks) for s in report.components()] == [(2, 2, 2)]
    assert report.components()[0].failure_rate == 0
    operations = rows(to_markdown(report), "Rollbacks and their causes")
    for fragment in (
        "| calc | 1.1.0 → 1.0.0 | blue_green | blue-green switch-back | blue-green watch: ",
        "| calc | 1.2.0 → 1.0.0 | trigger | trigger | - | succeeded | - |",
    ):
        assert any(fragment in row for row in operations), fragment
    # What the warm window measured is kept: the switch-back says why it happened.
    [switched] = [r for r in report.rollback_operations if r.actor == "blue_green"]
    assert switched.reason is not None and "error rate" in switched.reason


# ------------------------------------------------------------------ the command line


@dataclass(frozen=True)
class Greeter:
    """A project whose ``greeter`` was upgraded (1.0.0 → 1.1.0), then rolled back, both
    through the CLI; ``between`` is a moment between the two operations."""

    project: Project
    between: float

    @property
    def root(self) -> Path:
        return self.project.root


@pytest.fixture
def greeter(project: Project) -> Greeter:
    greeter_project(project)
    assert noodle(project.root, "upgrade", "greeter").returncode == 0
    time.sleep(0.01)  # so that ``between`` is strictly after the upgrade's last record
    between = time.time()
    time.sleep(0.01)
    assert noodle(project.root, "rollback", "greeter").returncode == 0
    return Greeter(project, between)


def test_the_cli_prints_markdown_by_default_and_json_on_request(greeter: Greeter) -> None:
    markdown = report_markdown(greeter.root)
    assert markdown.startswith(f"# Compliance report: {greeter.root.name}\n")
    assert "| greeter | 1.0.0 → 1.1.0 | immediate | cli | succeeded |" in markdown
    assert "| manual (cli) | no | 1 |" in markdown
    assert "| greeter | 1.1.0 → 1.0.0 | cli | manual (cli) | - | succeeded | - |" in markdown

    shorthand = report_json(greeter.root)
    spelled_out = report_json(greeter.root, "--format", "json")
    for report in (shorthand, spelled_out):
        del report["generated_at"]
    assert shorthand == spelled_out
    assert [u["actor"] for u in shorthand["update_history"]] == ["cli"]
    assert shorthand["rollbacks"]["causes"] == [
        {"cause": "manual (cli)", "automatic": False, "count": 1}
    ]


def test_since_and_until_bound_the_period(greeter: Greeter) -> None:
    between = datetime.fromtimestamp(greeter.between).isoformat()

    after = report_json(greeter.root, "--since", between)
    assert after["update_history"] == []
    assert [r["actor"] for r in after["rollbacks"]["operations"]] == ["cli"]
    assert after["period"]["since"] == iso(parse_bound(between, end=False))
    assert after["period"]["first_record"] >= after["period"]["since"]

    before = report_json(greeter.root, "--until", between)
    assert [u["to_version"] for u in before["update_history"]] == ["1.1.0"]
    assert before["rollbacks"]["operations"] == []
    assert before["period"]["until"] == iso(parse_bound(between, end=True))

    today = date.today().isoformat()  # a date alone as --until includes that whole day
    assert len(report_json(greeter.root, "--until", today)["update_history"]) == 1

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    nothing = report_json(greeter.root, "--since", tomorrow)
    assert nothing["update_history"] == nothing["rollbacks"]["operations"] == []
    assert nothing["period"]["first_record"] is None
    assert nothing["audit"]["ok"] is True  # the chain is checked whole, whatever the period
    assert nothing["audit"]["records_in_period"] == 0
    empty = report_markdown(greeter.root, "--since", tomorrow)
    assert "Nothing is recorded in this period" in empty
    assert rows(empty, "Update history") == []


def test_output_replaces_the_file_whole(greeter: Greeter, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    target = folder / "compliance.md"
    target.write_text("last month's report\n")

    done = noodle(greeter.root, "audit", "report", "--output", str(target))

    assert done.returncode == 0, done.stderr
    assert f"wrote the compliance report to {target}" in done.stdout
    written = target.read_text(encoding="utf-8")
    assert written.startswith("# Compliance report: ")
    assert "| greeter | 1.0.0 → 1.1.0 | immediate | cli | succeeded |" in written
    assert [p.name for p in folder.iterdir()] == ["compliance.md"]  # no temporary left

    as_json = folder / "compliance.json"
    assert noodle(greeter.root, "audit", "report", "--json", "-o", str(as_json)).returncode == 0
    assert json.loads(as_json.read_text())["update_history"][0]["to_version"] == "1.1.0"


@pytest.mark.parametrize(
    ("args", "code", "parts"),
    [
        (("--since", "last tuesday"), 2, ("--since", "'last tuesday'", "ISO 8601", "2024-05-01")),
        (("--until", "2024-13-01"), 2, ("--until", "'2024-13-01'", "ISO 8601")),
        (("--since", "2024-05-02", "--until", "2024-05-01"), 2, ("--since", "not before")),
        (("--json", "--format", "markdown"), 2, ("--json", "--format markdown")),
        (("--format", "html"), 2, ("--format", "'html'")),
        (("--output", "/nonexistent/folder/report.md"), 1, ("/nonexistent/folder", "cannot")),
    ],
)
def test_bad_report_options_are_one_clear_line(
    project: Project, args: tuple[str, ...], code: int, parts: tuple[str, ...]
) -> None:
    greeter_project(project)
    done = noodle(project.root, "audit", "report", *args)
    assert_one_line_error(done, *parts)
    assert done.returncode == code
    assert done.stdout == ""


def test_report_options_are_refused_on_other_audit_actions(project: Project) -> None:
    greeter_project(project)
    done = noodle(project.root, "audit", "export", "--since", "2024-05-01")
    assert_one_line_error(done, "`noodle audit export`", "--since", "noodle audit report")
    assert done.returncode == 2


def test_a_project_with_nothing_done_yet_says_so(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    assert noodle(root, "init").returncode == 0

    markdown = report_markdown(root)
    assert "Nothing is recorded yet: no upgrades, rollbacks or approvals." in markdown
    assert rows(markdown, "Update history") == []
    report = report_json(root)
    assert report["update_history"] == report["failed_updates"] == report["components"] == []
    assert report["approvals"] == {"counts": {}, "records": []}
    assert (report["audit"]["ok"], report["audit"]["records"]) == (True, 1)  # the init


def test_a_tampered_store_yields_a_report_that_says_so(greeter: Greeter) -> None:
    greeter.project.tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 2")

    done = noodle(greeter.root, "audit", "report", "--json")

    assert done.returncode == 1
    audit = json.loads(done.stdout)["audit"]
    assert (audit["ok"], audit["first_bad_seq"]) == (False, 2)
    assert "record 2" in audit["reason"]
    assert_one_line_error(done, "warning", "audit chain is broken", "record 2")
    markdown = noodle(greeter.root, "audit", "report")
    assert markdown.returncode == 1
    assert "**✘ BROKEN: record 2: hash does not match its contents.**" in (markdown.stdout)


# ------------------------------------------------------------------ the period bounds


def test_bounds_are_local_unless_they_carry_an_offset() -> None:
    midnight = datetime(2024, 5, 1).timestamp()  # local time
    assert parse_bound("2024-05-01", end=False) == midnight
    assert parse_bound("2024-05-01", end=True) == datetime(2024, 5, 2).timestamp()
    assert parse_bound("2024-05-01T14:30", end=True) == datetime(2024, 5, 1, 14, 30).timestamp()
    assert parse_bound("2024-05-01T00:00:00+00:00", end=False) == 1714521600.0
    assert parse_bound("2024-05-01T00:00:00Z", end=True) == 1714521600.0
    with pytest.raises(ValueError, match=r"'May 1st' is not an ISO 8601 date or datetime"):
        parse_bound("May 1st", end=False)
