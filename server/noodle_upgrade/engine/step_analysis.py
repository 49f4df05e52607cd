"""Analysis of one rollout step, after Argo Rollouts' model. Pure: numbers in, verdict out.

A step compares what the candidate did with what the stable version did over the same
interval: error rate, median latency against the stable baseline, result mismatches
(shadow) and the candidate's health check. The failure limit is 0: one failed metric
fails the step. Too few candidate calls is *inconclusive*: the step holds, it never
passes on missing evidence.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class SideSample:
    """What one side (stable or candidate) did during a step."""

    latencies_ns: Sequence[int] = ()  # one per successful call, or a sample of them
    errors: int = 0
    successes: int | None = None  # when ``latencies_ns`` is a sample: how many there were

    @property
    def calls(self) -> int:
        succeeded = len(self.latencies_ns) if self.successes is None else self.successes
        return succeeded + self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def median_ns(self) -> float | None:
        return float(statistics.median(self.latencies_ns)) if self.latencies_ns else None


@dataclass(frozen=True)
class Thresholds:
    min_calls: int = 20
    error_rate: float = 0.05
    latency_factor: float = 1.5


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    metric: str | None  # the metric that failed, or why the step is inconclusive
    reason: str
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL


def baseline_ns(stable: SideSample, previous: float | None, min_calls: int) -> float | None:
    """The latency the candidate is judged against: this step's stable median when the
    stable side had enough calls (both ran under the same load), else the last one."""
    if stable.calls >= min_calls and stable.median_ns is not None:
        return stable.median_ns
    return previous


def analyse_step(
    stable: SideSample,
    candidate: SideSample,
    *,
    baseline: float | None,
    thresholds: Thresholds,
    mismatches: int = 0,
    compared: int = 0,
    health_error: str | None = None,
    check_latency: bool = True,
) -> Verdict:
    """Judge one step. ``baseline`` is the stable median latency to compare with.

    The error rate that fails a step is the candidate's excess over the stable
    version's: errors a component raises by design (bad input) do not count against it.
    ``check_latency=False`` serves shadows, whose calls run on another thread.
    """
    measured: dict[str, Any] = {
        "candidate_calls": candidate.calls,
        "candidate_errors": candidate.errors,
        "candidate_error_rate": round(candidate.error_rate, 4),
        "candidate_p50_ms": _ms(candidate.median_ns),
        "stable_calls": stable.calls,
        "stable_error_rate": round(stable.error_rate, 4),
        "stable_p50_ms": _ms(baseline),
        "mismatches": mismatches,
        "compared": compared,
    }
    if health_error is not None:
        return Verdict(Outcome.FAIL, "health", f"health check failed: {health_error}", measured)
    if mismatches:
        reason = f"{mismatches} of {compared} compared results differ from the stable version's"
        return Verdict(Outcome.FAIL, "mismatches", reason, measured)
    if candidate.calls < thresholds.min_calls:
        reason = f"{candidate.calls} candidate calls, fewer than min_calls={thresholds.min_calls}"
        return Verdict(Outcome.INCONCLUSIVE, "min_calls", reason, measured)
    excess = candidate.error_rate - stable.error_rate
    if excess > thresholds.error_rate:
        reason = (
            f"error rate {candidate.error_rate:.3f} ({candidate.errors} of {candidate.calls} "
            f"calls) against the stable {stable.error_rate:.3f}, "
            f"above error_rate_threshold={thresholds.error_rate:g}"
        )
        return Verdict(Outcome.FAIL, "error_rate", reason, measured)
    if not check_latency:
        reason = f"{candidate.calls} calls, error rate {candidate.error_rate:.3f}"
        return Verdict(Outcome.PASS, None, reason, measured)
    return _judge_latency(candidate, baseline, thresholds, measured)


def _judge_latency(
    candidate: SideSample, baseline: float | None, thresholds: Thresholds, measured: dict[str, Any]
) -> Verdict:
    median = candidate.median_ns
    if baseline is None or median is None:
        reason = "no stable baseline latency yet"
        return Verdict(Outcome.INCONCLUSIVE, "baseline", reason, measured)
    factor = median / baseline if baseline else float("inf")
    measured["latency_factor"] = round(factor, 3)
    if factor > thresholds.latency_factor:
        reason = (
            f"median latency {_ms(median)} ms is {factor:.2f}× the stable {_ms(baseline)} ms, "
            f"above latency_factor={thresholds.latency_factor:g}"
        )
        return Verdict(Outcome.FAIL, "latency", reason, measured)
    reason = (
        f"{candidate.calls} calls, error rate {candidate.error_rate:.3f}, "
        f"latency {factor:.2f}× stable"
    )
    return Verdict(Outcome.PASS, None, reason, measured)


def _ms(nanoseconds: float | None) -> float | None:
    return None if nanoseconds is None else round(nanoseconds / 1e6, 4)
