"""Triggers (seed 001): an active component's health proposes an upgrade or a rollback.

Pure: the caller measures (calls, errors, median latency against a baseline) and says what
is possible; ``evaluate`` says what to propose, if anything, and why, with the measured
values in the reason. A proposal is only a proposal: policy and the decision engine
(``engine.decision``) decide whether it runs.

The rules, in order:

1. Fewer than ``min_calls`` calls: nothing (not enough evidence to act on).
2. A symptom is an error rate above ``error_rate`` or a median latency above
   ``latency_factor`` × the baseline's (only when a baseline is known). No symptom: nothing.
3. With a rollback point the recent upgrade is the suspect: propose a rollback to it.
4. Otherwise, when a newer compatible version exists: propose an upgrade to it.
5. Otherwise: nothing can be done automatically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from packaging.version import Version

from noodle_upgrade.errors import ValidationError

ProposalKind = Literal["upgrade", "rollback"]


@dataclass(frozen=True)
class Observation:
    """What one component did over one window of calls."""

    component: str
    calls: int
    errors: int
    p50_ms: float
    baseline_p50_ms: float | None = None  # the median before the window; None: unknown
    baseline_error_rate: float = 0.0  # errors the component raises by design (bad input)

    def __post_init__(self) -> None:
        where = f"observation of {self.component}"
        _require_count(where, "calls", self.calls)
        _require_count(where, "errors", self.errors)
        if self.errors > self.calls:
            raise ValidationError(
                f"{where}: errors={self.errors} exceeds calls={self.calls} "
                "(every error is a call that failed)"
            )
        _require_number(where, "p50_ms", self.p50_ms, low=0.0, low_open=False)
        if self.baseline_p50_ms is not None:
            _require_number(where, "baseline_p50_ms", self.baseline_p50_ms, low=0.0, low_open=True)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class TriggerConfig:
    """Thresholds: an error rate above ``error_rate``, a median above ``latency_factor`` ×
    baseline; windows with fewer than ``min_calls`` calls are ignored."""

    error_rate: float = 0.05
    latency_factor: float = 1.5
    min_calls: int = 50

    def __post_init__(self) -> None:
        where = "trigger configuration"
        _require_number(where, "error_rate", self.error_rate, low=0.0, low_open=False, high=1.0)
        _require_number(where, "latency_factor", self.latency_factor, low=1.0, low_open=False)
        _require_count(where, "min_calls", self.min_calls)


@dataclass(frozen=True)
class Proposal:
    """What a trigger proposes. ``target_version`` is the version to upgrade to; for a
    rollback it is None: the component's last rollback point says where it goes."""

    kind: ProposalKind
    component: str
    reason: str
    target_version: Version | None


def symptoms(observation: Observation, config: TriggerConfig) -> list[str]:
    """What is wrong with ``observation``, with the measured values; empty when healthy or
    when there are too few calls to tell."""
    if observation.calls < config.min_calls:
        return []
    found = []
    rate, usual = observation.error_rate, observation.baseline_error_rate
    if rate - usual > config.error_rate:
        found.append(
            f"error rate {_percent(rate)} ({observation.errors} of {observation.calls} calls) "
            f"is more than {_percent(config.error_rate)} above its usual {_percent(usual)}"
        )
    baseline = observation.baseline_p50_ms
    if baseline is not None and observation.p50_ms > config.latency_factor * baseline:
        factor = observation.p50_ms / baseline
        found.append(
            f"median latency {observation.p50_ms:.2f} ms is {factor:.2f}× the baseline "
            f"{baseline:.2f} ms (limit {config.latency_factor:g}×)"
        )
    return found


def evaluate(
    observation: Observation,
    config: TriggerConfig,
    *,
    newer_available: Version | None,
    has_rollback_point: bool,
) -> Proposal | None:
    """The proposal ``observation`` calls for, or None (healthy, too few calls, or no remedy).

    ``newer_available`` is the newest version the component can be upgraded to (the
    planner's choice: inside the constraint, with an upgrade path); ``has_rollback_point``
    whether a live rollback point exists for it.
    """
    found = symptoms(observation, config)
    if not found:
        return None
    name = observation.component
    what = f"{name}: {' and '.join(found)}"
    if has_rollback_point:
        return Proposal(
            "rollback",
            name,
            f"{what}; the last upgrade is the suspect: roll back to its rollback point",
            None,
        )
    if newer_available is not None:
        return Proposal(
            "upgrade",
            name,
            f"{what}; no rollback point, so upgrade to {newer_available}, "
            "the newest compatible version",
            newer_available,
        )
    return None


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _require_count(where: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{where}: {name}={value!r} is invalid: expected an integer ≥ 0")


def _require_number(
    where: str,
    name: str,
    value: object,
    *,
    low: float,
    low_open: bool,
    high: float | None = None,
) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (high is None or value <= high)
    )
    if not ok:
        bound = f"> {low:g}" if low_open else f"≥ {low:g}"
        allowed = f"a number {bound}" + (f" and ≤ {high:g}" if high is not None else "")
        raise ValidationError(f"{where}: {name}={value!r} is invalid: expected {allowed}")
