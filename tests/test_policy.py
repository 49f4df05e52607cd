"""Deployment policy: may a change the runtime proposed itself run now, wait for an
operator, or wait for better conditions? Every rule, its order, and the reasons users read."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.engine.policy import (
    ROLLBACK,
    Change,
    Conditions,
    Verdict,
    in_window,
    judge,
)
from noodle_upgrade.models import BumpKind, Policy

PATCH = Change("parser", "patch")
ALL_KINDS = [*(kind.value for kind in BumpKind), ROLLBACK]


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2024, 5, 17, hour, minute, second)


NOON = Conditions(now=at(12, 0))
APPLY_PATCH = Verdict("apply", "patch of parser auto-approved by policy")


# -- who approves ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_an_empty_policy_with_approve_all_applies_everything(kind: str) -> None:
    # Every condition at its worst: an omitted key imposes no limit at all.
    worst = Conditions(
        now=at(3, 0),
        since_last_upgrade_s=0.0,
        cpu_percent=100.0,
        memory_percent=100.0,
        disk_percent=100.0,
    )

    verdict = judge(Policy(), Change("parser", kind), worst, approve_all=True)

    assert verdict == Verdict("apply", f"{kind} of parser auto-approved by policy")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_an_empty_policy_without_approve_all_approves_nothing(kind: str) -> None:
    verdict = judge(Policy(), Change("parser", kind), NOON, approve_all=False)

    assert verdict == Verdict("pending", f"a {kind} change needs approval (auto_approve: nothing)")


def test_a_critical_component_waits_for_an_operator_even_when_auto_approved() -> None:
    policy = Policy(auto_approve=(BumpKind.PATCH,))
    critical = Change("parser", "patch", critical=True)
    expected = Verdict("pending", "parser is critical: every change needs an operator's approval")

    assert judge(policy, critical, NOON, approve_all=True) == expected
    assert judge(Policy(), critical, NOON, approve_all=True) == expected
    assert judge(policy, PATCH, NOON, approve_all=False) == APPLY_PATCH


def test_a_kind_auto_approve_does_not_list_waits_and_the_reason_lists_what_is() -> None:
    policy = Policy(auto_approve=(BumpKind.PATCH, BumpKind.MINOR))

    assert judge(policy, PATCH, NOON, approve_all=False) == APPLY_PATCH
    assert judge(policy, Change("parser", "minor"), NOON, approve_all=False).action == "apply"
    assert judge(policy, Change("parser", "major"), NOON, approve_all=False) == Verdict(
        "pending", "a major change needs approval (auto_approve: patch, minor)"
    )
    assert judge(policy, Change("parser", ROLLBACK), NOON, approve_all=False) == Verdict(
        "pending", "a rollback change needs approval (auto_approve: patch, minor)"
    )


def test_approve_all_stands_in_only_where_the_policy_lists_nothing() -> None:
    policy = Policy(auto_approve=(BumpKind.PATCH,))

    verdict = judge(policy, Change("parser", "major"), NOON, approve_all=True)

    assert verdict == Verdict("pending", "a major change needs approval (auto_approve: patch)")


def test_waiting_for_an_operator_comes_before_waiting_for_conditions() -> None:
    # Outside the window and busy too: the operator is told first, since approving is
    # what they can do about it; the conditions are checked again once it is approved.
    policy = Policy(
        auto_approve=(BumpKind.PATCH,), maintenance_windows=("02:00-04:00",), max_cpu_percent=50
    )
    busy = Conditions(now=at(12, 0), cpu_percent=90.0)

    assert judge(policy, Change("parser", "minor"), busy, approve_all=False).action == "pending"
    assert judge(policy, PATCH, busy, approve_all=False).action == "defer"


# -- maintenance windows ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (at(1, 59, 59), False),
        (at(2, 0), True),
        (at(3, 59, 59), True),
        (at(4, 0), False),  # the end is exclusive
        (at(12, 0), False),
    ],
)
def test_a_window_holds_its_start_but_not_its_end(now: datetime, inside: bool) -> None:
    assert in_window(("02:00-04:00",), now) is inside


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (at(21, 59, 59), False),
        (at(22, 0), True),
        (at(23, 59, 59), True),
        (at(0, 0), True),
        (at(1, 59, 59), True),
        (at(2, 0), False),
        (at(12, 0), False),
    ],
)
def test_a_window_whose_end_is_before_its_start_wraps_past_midnight(
    now: datetime, inside: bool
) -> None:
    assert in_window(("22:00-02:00",), now) is inside


@pytest.mark.parametrize(
    ("now", "inside"),
    [(at(3, 0), True), (at(13, 15), True), (at(23, 30), True), (at(12, 0), False)],
)
def test_any_of_several_windows_will_do(now: datetime, inside: bool) -> None:
    assert in_window(("02:00-04:00", "13:00-13:30", "23:00-00:30"), now) is inside


def test_outside_every_window_an_approved_change_is_deferred_and_told_when() -> None:
    policy = Policy(maintenance_windows=("02:00-04:00", "22:00-23:00"))

    assert judge(policy, PATCH, NOON, approve_all=True) == Verdict(
        "defer",
        "outside the maintenance windows (02:00-04:00, 22:00-23:00); it runs in the next one",
    )
    assert judge(policy, PATCH, Conditions(now=at(22, 30)), approve_all=True) == APPLY_PATCH


# -- min_interval_s --------------------------------------------------------------------


def test_within_min_interval_of_the_last_upgrade_a_change_is_deferred() -> None:
    policy = Policy(min_interval_s=3600)

    def verdict(since: float | None) -> Verdict:
        conditions = Conditions(now=at(12, 0), since_last_upgrade_s=since)
        return judge(policy, PATCH, conditions, approve_all=True)

    assert verdict(600) == Verdict(
        "defer", "the last upgrade was 600 s ago, min_interval_s is 3600; it runs in 3000 s"
    )
    assert verdict(3599) == Verdict(
        "defer", "the last upgrade was 3599 s ago, min_interval_s is 3600; it runs in 1 s"
    )
    assert verdict(3600) == APPLY_PATCH  # the interval has passed exactly
    assert verdict(None) == APPLY_PATCH  # never upgraded: nothing to wait for


# -- resources -------------------------------------------------------------------------


def threshold(resource: str, limit: float) -> Policy:
    """A policy that bounds only ``resource``."""
    return {
        "cpu": Policy(max_cpu_percent=limit),
        "memory": Policy(max_memory_percent=limit),
        "disk": Policy(max_disk_percent=limit),
    }[resource]


def reading(resource: str, percent: float | None) -> Conditions:
    """Conditions at noon with only ``resource`` measured."""
    return {
        "cpu": Conditions(now=at(12, 0), cpu_percent=percent),
        "memory": Conditions(now=at(12, 0), memory_percent=percent),
        "disk": Conditions(now=at(12, 0), disk_percent=percent),
    }[resource]


@pytest.mark.parametrize("resource", ["cpu", "memory", "disk"])
def test_a_resource_above_its_threshold_defers_and_shows_the_measurement(resource: str) -> None:
    policy = threshold(resource, 80.0)

    def verdict(measured: float | None) -> Verdict:
        return judge(policy, PATCH, reading(resource, measured), approve_all=True)

    assert verdict(92.4) == Verdict(
        "defer", f"{resource} at 92.4% is above max_{resource}_percent 80%"
    )
    assert verdict(80.5) == Verdict(
        "defer", f"{resource} at 80.5% is above max_{resource}_percent 80%"
    )
    assert verdict(80.0) == APPLY_PATCH  # at the threshold is not above it
    assert verdict(None) == APPLY_PATCH  # not measured: imposes nothing


def test_a_threshold_bounds_only_its_own_resource() -> None:
    policy = Policy(max_cpu_percent=50)
    others_full = Conditions(
        now=at(12, 0), cpu_percent=10.0, memory_percent=99.0, disk_percent=99.0
    )

    assert judge(policy, PATCH, others_full, approve_all=True) == APPLY_PATCH


def test_the_first_condition_that_fails_is_the_one_reported() -> None:
    policy = Policy(
        maintenance_windows=("02:00-04:00",),
        min_interval_s=3600,
        max_cpu_percent=50,
        max_memory_percent=50,
        max_disk_percent=50,
    )

    def reason(now: datetime, since: float, cpu: float, memory: float) -> str:
        conditions = Conditions(
            now=now,
            since_last_upgrade_s=since,
            cpu_percent=cpu,
            memory_percent=memory,
            disk_percent=75.0,
        )
        return judge(policy, PATCH, conditions, approve_all=True).reason

    assert reason(at(12, 0), 60, 75, 75).startswith("outside the maintenance windows")
    assert reason(at(3, 0), 60, 75, 75).startswith("the last upgrade was 60 s ago")
    assert reason(at(3, 0), 7200, 75, 75) == "cpu at 75.0% is above max_cpu_percent 50%"
    assert reason(at(3, 0), 7200, 25, 75) == "memory at 75.0% is above max_memory_percent 50%"
    assert reason(at(3, 0), 7200, 25, 25) == "disk at 75.0% is above max_disk_percent 50%"


# -- from noodle.toml ------------------------------------------------------------------


def test_a_policy_read_from_noodle_toml_is_judged_as_written(tmp_path: Path) -> None:
    (tmp_path / "noodle.toml").write_text(
        textwrap.dedent(
            """\
            [noodle]
            environment = "production"

            [policy.production]
            auto_approve = ["patch"]
            maintenance_windows = ["22:00 - 2:00"]
            max_disk_percent = 90
            """
        ),
        encoding="utf-8",
    )
    policy = load_project(tmp_path).policy

    def verdict(change: Change, now: datetime, disk: float) -> Verdict:
        return judge(policy, change, Conditions(now=now, disk_percent=disk), approve_all=True)

    assert verdict(PATCH, at(1, 0), 50.0) == APPLY_PATCH
    assert verdict(PATCH, at(1, 0), 95.0) == Verdict(
        "defer", "disk at 95.0% is above max_disk_percent 90%"
    )
    assert verdict(PATCH, at(12, 0), 50.0).reason == (
        "outside the maintenance windows (22:00-02:00); it runs in the next one"
    )
    assert verdict(Change("parser", "minor"), at(1, 0), 50.0) == Verdict(
        "pending", "a minor change needs approval (auto_approve: patch)"
    )
