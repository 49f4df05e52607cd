"""The analysis of one rollout step (engine.step_analysis): numbers in, verdict out.

Argo Rollouts' model: a step passes only on enough evidence, fails on the first metric
past its limit (failure limit 0), and is inconclusive when it has too few calls.
"""

from __future__ import annotations

import pytest

from noodle_upgrade.engine.step_analysis import (
    LATENCY_SAMPLE,
    WARMUP_CALLS,
    Accumulated,
    FunctionLatency,
    Outcome,
    SideSample,
    StepTally,
    Thresholds,
    analyse_step,
)

LIMITS = Thresholds(min_calls=20, error_rate=0.05, latency_factor=1.5)
US = 1_000  # one microsecond in nanoseconds


def side(calls: int, *, errors: int = 0, latency_us: float = 10.0) -> SideSample:
    """``calls`` calls, ``errors`` of them failed, the others took ``latency_us``."""
    return SideSample(tuple([int(latency_us * US)] * (calls - errors)), errors)


STABLE = side(200)  # 200 calls, no error, 10 µs each


def test_a_step_with_enough_calls_no_errors_and_similar_latency_passes() -> None:
    verdict = analyse_step(STABLE, side(30, latency_us=11), baseline=10 * US, thresholds=LIMITS)

    assert verdict.outcome is Outcome.PASS
    assert not verdict.failed
    assert verdict.metric is None
    assert verdict.measurements["candidate_calls"] == 30
    assert verdict.measurements["candidate_errors"] == 0
    assert verdict.measurements["stable_calls"] == 200
    assert verdict.measurements["latency_factor"] == pytest.approx(1.1)
    assert verdict.measurements["candidate_p50_ms"] == pytest.approx(0.011)
    assert verdict.measurements["stable_p50_ms"] == pytest.approx(0.010)
    assert "30 calls" in verdict.reason and "1.10× stable" in verdict.reason


def test_an_error_rate_above_the_stable_ones_by_more_than_the_threshold_fails() -> None:
    verdict = analyse_step(STABLE, side(30, errors=10), baseline=10 * US, thresholds=LIMITS)

    assert verdict.outcome is Outcome.FAIL and verdict.failed
    assert verdict.metric == "error_rate"
    assert verdict.measurements["candidate_error_rate"] == pytest.approx(0.3333)
    assert verdict.measurements["stable_error_rate"] == 0
    assert "error rate 0.333 (10 of 30 calls)" in verdict.reason
    assert "error_rate_threshold=0.05" in verdict.reason


def test_the_error_rate_counts_only_the_excess_over_the_stable_version() -> None:
    """Errors a component raises by design (bad input) also happen on the stable side;
    they are not the candidate's fault."""
    stable = side(200, errors=60)  # 0.30
    candidate = side(30, errors=10)  # 0.33: 0.03 more, under 0.05

    verdict = analyse_step(stable, candidate, baseline=10 * US, thresholds=LIMITS)

    assert verdict.outcome is Outcome.PASS, verdict.reason
    assert verdict.measurements["stable_error_rate"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("errors", "outcome"),
    [(1, Outcome.PASS), (2, Outcome.FAIL)],  # 1 of 20 is exactly the threshold: not above
)
def test_the_error_rate_threshold_is_a_strict_limit(errors: int, outcome: Outcome) -> None:
    verdict = analyse_step(side(100), side(20, errors=errors), baseline=10 * US, thresholds=LIMITS)
    assert verdict.outcome is outcome, verdict.reason


def test_a_median_latency_past_latency_factor_times_the_baseline_fails() -> None:
    verdict = analyse_step(STABLE, side(30, latency_us=20), baseline=10 * US, thresholds=LIMITS)

    assert verdict.outcome is Outcome.FAIL
    assert verdict.metric == "latency"
    assert verdict.measurements["latency_factor"] == pytest.approx(2.0)
    assert verdict.measurements["candidate_p50_ms"] == pytest.approx(0.02)
    assert "2.00× the stable" in verdict.reason and "latency_factor=1.5" in verdict.reason


def test_latency_is_judged_on_the_median_not_on_outliers() -> None:
    # A third of the calls were slow (a pause, a GC): the typical call is still fast.
    candidate = SideSample(tuple([10 * US] * 20 + [500 * US] * 9))
    verdict = analyse_step(STABLE, candidate, baseline=10 * US, thresholds=LIMITS)
    assert verdict.outcome is Outcome.PASS, verdict.reason


def test_a_latency_factor_exactly_at_the_limit_passes() -> None:
    verdict = analyse_step(STABLE, side(30, latency_us=15), baseline=10 * US, thresholds=LIMITS)
    assert verdict.outcome is Outcome.PASS, verdict.reason


def test_fewer_candidate_calls_than_min_calls_is_inconclusive_never_a_pass() -> None:
    verdict = analyse_step(STABLE, side(19), baseline=10 * US, thresholds=LIMITS)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert not verdict.failed
    assert verdict.metric == "min_calls"
    assert "19 candidate calls, fewer than min_calls=20" in verdict.reason


def test_too_few_calls_stays_inconclusive_even_when_they_failed_or_were_slow() -> None:
    """Failure limit 0 applies to evidence: a handful of calls proves nothing either way."""
    for candidate in (side(10, errors=10), side(10, latency_us=100)):
        verdict = analyse_step(STABLE, candidate, baseline=10 * US, thresholds=LIMITS)
        assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.reason


def test_without_a_stable_baseline_latency_the_step_is_inconclusive() -> None:
    verdict = analyse_step(SideSample(), side(30), baseline=None, thresholds=LIMITS)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.metric == "baseline"


def test_a_failed_health_check_fails_the_step_whatever_the_numbers() -> None:
    for candidate in (side(30), side(0)):  # good numbers, or none at all
        verdict = analyse_step(
            STABLE,
            candidate,
            baseline=10 * US,
            thresholds=LIMITS,
            health_error="database unreachable",
        )
        assert verdict.outcome is Outcome.FAIL
        assert verdict.metric == "health"
        assert verdict.reason == "health check failed: database unreachable"


def test_any_result_mismatch_fails_the_step() -> None:
    verdict = analyse_step(
        STABLE, side(50), baseline=None, thresholds=LIMITS, mismatches=1, compared=50
    )

    assert verdict.outcome is Outcome.FAIL
    assert verdict.metric == "mismatches"
    assert verdict.measurements["mismatches"] == 1
    assert verdict.measurements["compared"] == 50
    assert "1 of 50 compared results differ" in verdict.reason


def test_check_latency_false_ignores_latency_and_needs_no_baseline() -> None:
    """Shadow calls run on another thread: their latency says nothing about callers'."""
    slow = side(30, latency_us=1_000)

    verdict = analyse_step(
        SideSample(), slow, baseline=None, thresholds=LIMITS, compared=30, check_latency=False
    )

    assert verdict.outcome is Outcome.PASS, verdict.reason
    assert "latency_factor" not in verdict.measurements
    # Errors still count without latency.
    failing = analyse_step(
        SideSample(), side(30, errors=5), baseline=None, thresholds=LIMITS, check_latency=False
    )
    assert failing.metric == "error_rate"


def test_a_side_sample_counts_successes_and_errors() -> None:
    sample = SideSample((3 * US, 1 * US, 2 * US), errors=1)

    assert sample.calls == 4
    assert sample.error_rate == pytest.approx(0.25)
    assert sample.median_ns == 2 * US
    assert SideSample().calls == 0
    assert SideSample().error_rate == 0.0
    assert SideSample().median_ns is None


def test_the_baseline_is_this_steps_stable_median_where_it_had_calls() -> None:
    tally = StepTally()
    tally.add({"parse": (side(5, latency_us=7), SideSample()), "lex": (SideSample(), side(5))})
    # At 100% the stable side has no calls left: no baseline, rather than a stale one.
    assert tally.baselines(enough=3) == {"parse": 7 * US}
    assert tally.baselines(enough=10) == {}


def test_latency_is_judged_function_by_function() -> None:
    """A cheap and a costly function in one component: mixing their calls in one median
    would compare whichever kind of call happened to land on each side."""
    cheap_on_candidate = [
        FunctionLatency("version", side(40, latency_us=1), 1 * US),
        FunctionLatency("add", side(4, latency_us=20), 20 * US),
    ]
    verdict = analyse_step(
        STABLE, side(44), baseline=None, thresholds=LIMITS, functions=cheap_on_candidate
    )
    assert verdict.outcome is Outcome.PASS, verdict.reason

    slower_add = [
        FunctionLatency("version", side(40, latency_us=1), 1 * US),
        FunctionLatency("add", side(25, latency_us=50), 20 * US),
    ]
    verdict = analyse_step(STABLE, side(65), baseline=None, thresholds=LIMITS, functions=slower_add)
    assert verdict.outcome is Outcome.FAIL and verdict.metric == "latency"
    assert verdict.reason.startswith("add(): median latency 0.05 ms is 2.50×")
    assert verdict.measurements["latency_function"] == "add"


def test_a_slowdown_too_small_to_feel_fails_nothing() -> None:
    """3 µs against 1 µs is 3×, but microsecond calls jitter by that much under load."""
    tiny = [FunctionLatency("version", side(40, latency_us=3), 1 * US)]
    verdict = analyse_step(STABLE, side(40), baseline=None, thresholds=LIMITS, functions=tiny)
    assert verdict.outcome is Outcome.PASS, verdict.reason
    assert verdict.measurements["latency_factor"] == pytest.approx(3.0)


def test_a_sampled_side_counts_every_call_but_keeps_few_latencies() -> None:
    sample = SideSample((1 * US, 2 * US), errors=3, successes=1_000)

    assert sample.calls == 1_003
    assert sample.error_rate == pytest.approx(3 / 1_003)
    assert sample.median_ns == 1.5 * US


def test_accumulating_a_busy_step_keeps_exact_counts_and_a_bounded_median_sample() -> None:
    """Analysed at every tick: the work must not grow with traffic, the verdict must
    not change. A million calls arrive in ticks of uneven sizes."""
    accumulated = Accumulated()
    calls = 0
    for tick in range(200):
        size = 2_000 + 37 * tick
        # latencies cycle through 1..100 µs: the true median is 50.5 µs
        batch = tuple((calls + n) % 100 * US + US for n in range(size))
        so_far = accumulated.add(SideSample(batch, errors=tick % 3))
        calls += size
        assert len(so_far.latencies_ns) <= 2 * LATENCY_SAMPLE

    assert so_far.successes == calls
    assert so_far.errors == sum(tick % 3 for tick in range(200))
    assert so_far.calls == calls + so_far.errors
    assert so_far.median_ns == pytest.approx(50.5 * US, rel=0.05)


def test_a_fresh_versions_first_calls_count_but_not_their_latency() -> None:
    """The first calls of a version just imported run cold: they would read as a
    slowdown of identical code."""
    tally = StepTally()
    cold = SideSample(tuple([50 * US] * WARMUP_CALLS + [10 * US] * 20))
    tally.add({"add": (side(30), cold)})
    warm = tally.side("add", 1)
    assert warm.calls == WARMUP_CALLS + 20
    assert warm.median_ns == 10 * US
