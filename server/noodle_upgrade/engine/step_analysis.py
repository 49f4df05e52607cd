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
class FunctionLatency:
    """One function's latency in a step: the candidate's calls against the stable
    baseline of the same function. Components mix cheap and costly functions, so
    only like is compared with like."""

    name: str
    candidate: SideSample
    baseline_ns: float | None


def merged(samples: Sequence[SideSample]) -> SideSample:
    """The counts of several samples together (no latencies: they compare per function)."""
    return SideSample((), sum(s.errors for s in samples), sum(s.calls - s.errors for s in samples))


Samples = dict[str, tuple[SideSample, SideSample]]  # function -> (stable, candidate)
Baselines = dict[str, float]  # function -> stable median latency (ns)
LATENCY_SAMPLE = 4096  # latencies a side keeps for its median, at most twice this


@dataclass
class Accumulated:
    """What one side did so far: exact counts, and every ``stride``-th latency.

    Analysed at every tick, so it must not grow with traffic: keeping (and sorting)
    every latency of a busy step or a long warm window held the GIL for longer at each
    tick, stalling callers for hundreds of milliseconds. When the sample passes twice
    ``LATENCY_SAMPLE`` it keeps every other one and the stride doubles: a systematic
    sample over the whole interval, whose median tracks the full one.
    """

    latencies: list[int] = field(default_factory=list)
    successes: int = 0
    errors: int = 0
    stride: int = 1

    def add(self, sample: SideSample) -> SideSample:
        fresh = sample.latencies_ns
        first = -self.successes % self.stride  # the next call number on the stride
        self.latencies.extend(fresh[first :: self.stride])
        self.successes += sample.calls - sample.errors
        self.errors += sample.errors
        while len(self.latencies) > 2 * LATENCY_SAMPLE:
            self.latencies = self.latencies[::2]
            self.stride *= 2
        return self.sample()

    def sample(self) -> SideSample:
        return SideSample(tuple(self.latencies), self.errors, self.successes)


WARMUP_CALLS = 10  # a fresh version's first calls per function run cold


class StepTally:
    """What a step saw so far, per function and side (0 stable, 1 candidate).

    The candidate's first ``WARMUP_CALLS`` latencies of each function are left out of
    its median: a version just imported runs its first calls unspecialised and with cold
    caches, which read as a slowdown of identical code."""

    def __init__(self) -> None:
        self._sides: dict[tuple[str, int], Accumulated] = {}
        self._warming: dict[str, int] = {}

    def add(self, functions: Samples) -> None:
        for name, (stable, candidate) in functions.items():
            self._accumulated(name, 0).add(stable)
            self._accumulated(name, 1).add(self._warmed(name, candidate))

    def _accumulated(self, name: str, side: int) -> Accumulated:
        return self._sides.setdefault((name, side), Accumulated())

    def _warmed(self, name: str, sample: SideSample) -> SideSample:
        skip = min(WARMUP_CALLS - self._warming.get(name, 0), len(sample.latencies_ns))
        if skip <= 0:
            return sample
        self._warming[name] = self._warming.get(name, 0) + skip
        # the calls still count (for min_calls and the error rate); their latencies do not
        return SideSample(sample.latencies_ns[skip:], sample.errors, sample.calls - sample.errors)

    def side(self, name: str, side: int) -> SideSample:
        seen = self._sides.get((name, side))
        return seen.sample() if seen is not None else SideSample()

    def total(self, side: int) -> SideSample:
        return merged([acc.sample() for (_, s), acc in self._sides.items() if s == side])

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._sides})

    def baselines(self, enough: int) -> Baselines:
        """Each function's stable median in this step, where it had enough calls.

        Only calls made side by side with the candidate's are a fair baseline: a median
        from an earlier step was taken under other load (and read 2.4× too fast once)."""
        found: Baselines = {}
        for name in self.names():
            stable = self.side(name, 0)
            if stable.calls - stable.errors >= enough and stable.median_ns is not None:
                found[name] = stable.median_ns
        return found


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
    functions: Sequence[FunctionLatency] = (),
) -> Verdict:
    """Judge one step. ``baseline`` is the stable median latency to compare with, or
    ``functions`` gives each function's candidate latency and baseline to judge apart.

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
    judged = functions or [FunctionLatency("", candidate, baseline)]
    return _judge_functions(candidate, judged, thresholds, measured)


def _judge_functions(
    candidate: SideSample,
    functions: Sequence[FunctionLatency],
    thresholds: Thresholds,
    measured: dict[str, Any],
) -> Verdict:
    """Each function with enough calls and a baseline is judged on its own; the worst
    one speaks for the step."""
    enough = thresholds.min_calls
    judged = {
        f.name: f
        for f in functions
        if f.candidate.calls >= enough and f.baseline_ns and f.candidate.median_ns is not None
    }
    if not judged:
        reason = f"no function has {enough} candidate calls and a stable baseline latency yet"
        return Verdict(Outcome.INCONCLUSIVE, "baseline", reason, measured)
    factors = {name: _factor(f) for name, f in judged.items()}
    measured["latency"] = {
        name: {
            "candidate_p50_ms": _ms(f.candidate.median_ns),
            "stable_p50_ms": _ms(f.baseline_ns),
            "factor": round(factors[name], 3),
        }
        for name, f in judged.items()
    }
    worst = max(factors, key=factors.__getitem__)
    factor = factors[worst]
    measured.update(
        latency_factor=round(factor, 3),
        latency_function=worst,
        candidate_p50_ms=_ms(judged[worst].candidate.median_ns),
        stable_p50_ms=_ms(judged[worst].baseline_ns),
    )
    judged_worst = judged[worst]
    if factor > thresholds.latency_factor and _felt(judged_worst):
        reason = (
            f"{f'{worst}(): ' if worst else ''}median latency "
            f"{_ms(judged_worst.candidate.median_ns)} ms is {factor:.2f}× the stable "
            f"{_ms(judged_worst.baseline_ns)} ms, above "
            f"latency_factor={thresholds.latency_factor:g}"
        )
        return Verdict(Outcome.FAIL, "latency", reason, measured)
    reason = (
        f"{candidate.calls} calls, error rate {candidate.error_rate:.3f}, "
        f"latency at most {factor:.2f}× stable{f' ({worst})' if worst else ''}"
    )
    return Verdict(Outcome.PASS, None, reason, measured)


LATENCY_FLOOR_NS = 5_000


def _factor(function: FunctionLatency) -> float:
    return (function.candidate.median_ns or 0.0) / (function.baseline_ns or 1.0)


def _felt(function: FunctionLatency) -> bool:
    """A slowdown under ``LATENCY_FLOOR_NS`` per call fails nothing: microsecond calls
    jitter by more than their own cost under load (two identical ~3 µs functions
    measured 1.17-1.58× apart), and no caller feels it."""
    return (function.candidate.median_ns or 0.0) - (function.baseline_ns or 0.0) >= LATENCY_FLOOR_NS


def _ms(nanoseconds: float | None) -> float | None:
    return None if nanoseconds is None else round(nanoseconds / 1e6, 4)
