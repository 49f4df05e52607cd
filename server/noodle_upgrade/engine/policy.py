"""Deployment policy (``[policy.<environment>]``, seed 001): may a proposal run now?

Pure: the caller measures the conditions (clock, last upgrade, resources) and says what
is proposed; ``judge`` says whether it runs now, waits for an operator, or waits for
the conditions, with the measured values in the reason. Policy only ever sees what the
runtime proposes itself; an explicit request is the operator's approval and never
comes here.

The rules, in order:

1. A critical component always waits for an operator (``pending``).
2. A kind of change that ``auto_approve`` does not list waits for an operator.
3. An auto-approved change waits (``deferred``) outside every maintenance window,
   within ``min_interval_s`` of the component's last upgrade, or while a resource is
   above its threshold; it runs once all of them allow it.
4. Otherwise it runs (``apply``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from noodle_upgrade.models import Policy

Action = Literal["apply", "pending", "defer"]
ROLLBACK = "rollback"  # the kind of change a rollback proposal is, next to the bump kinds


@dataclass(frozen=True)
class Change:
    """What is proposed: its kind is a bump kind (``patch``, ``minor``, …) or ``rollback``."""

    component: str
    kind: str
    critical: bool = False


@dataclass(frozen=True)
class Conditions:
    """What the caller measured when it asks; a resource not measured is None."""

    now: datetime  # local wall-clock time: maintenance windows are local times
    since_last_upgrade_s: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def judge(policy: Policy, change: Change, conditions: Conditions, *, approve_all: bool) -> Verdict:
    """Apply, hold for an operator, or defer ``change`` under ``policy``.

    ``approve_all`` stands for every kind in ``auto_approve`` where the policy lists none
    (the ``auto_upgrade_approval`` setting).
    """
    waiting = needs_operator(policy, change, approve_all=approve_all)
    if waiting is not None:
        return Verdict("pending", waiting)
    deferred = not_now(policy, conditions)
    if deferred is not None:
        return Verdict("defer", deferred)
    return Verdict("apply", f"{change.kind} of {change.component} auto-approved by policy")


def needs_operator(policy: Policy, change: Change, *, approve_all: bool) -> str | None:
    """Why ``change`` waits for an operator, or None when policy approves it."""
    if change.critical:
        return f"{change.component} is critical: every change needs an operator's approval"
    allowed = [str(kind) for kind in policy.auto_approve]
    if approve_all and not allowed:
        return None
    if change.kind not in allowed:
        listed = ", ".join(allowed) or "nothing"
        return f"a {change.kind} change needs approval (auto_approve: {listed})"
    return None


def not_now(policy: Policy, conditions: Conditions) -> str | None:
    """Why an approved change must wait, or None when it may run now."""
    if policy.maintenance_windows and not in_window(policy.maintenance_windows, conditions.now):
        windows = ", ".join(policy.maintenance_windows)
        return f"outside the maintenance windows ({windows}); it runs in the next one"
    since = conditions.since_last_upgrade_s
    if policy.min_interval_s is not None and since is not None and since < policy.min_interval_s:
        left = math.ceil(policy.min_interval_s - since)  # never "runs in 0 s" while it waits
        return (
            f"the last upgrade was {math.floor(since)} s ago, min_interval_s is "
            f"{policy.min_interval_s:g}; it runs in {left} s"
        )
    for name, measured, limit in (
        ("cpu", conditions.cpu_percent, policy.max_cpu_percent),
        ("memory", conditions.memory_percent, policy.max_memory_percent),
        ("disk", conditions.disk_percent, policy.max_disk_percent),
    ):
        if limit is not None and measured is not None and measured > limit:
            return f"{name} at {measured:.1f}% is above max_{name}_percent {limit:g}%"
    return None


def in_window(windows: tuple[str, ...], now: datetime) -> bool:
    """Whether ``now`` falls in one of the ``HH:MM-HH:MM`` windows (end exclusive; a
    window whose end is before its start wraps past midnight, e.g. ``22:00-02:00``)."""
    minute = now.hour * 60 + now.minute
    for window in windows:
        start, end = (_minutes(part) for part in window.split("-"))
        inside = start <= minute < end if start <= end else minute >= start or minute < end
        if inside:
            return True
    return False


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
