"""Triggers: an unhealthy component proposes a rollback or an upgrade, with the numbers."""

from __future__ import annotations

import math

import pytest
from packaging.version import Version

from noodle_upgrade.engine.triggers import (
    Observation,
    Proposal,
    TriggerConfig,
    evaluate,
    symptoms,
)
from noodle_upgrade.errors import ValidationError

CONFIG = TriggerConfig()  # error_rate 0.05, latency_factor 1.5, min_calls 50
NEWER = Version("1.2.0")


def _seen(
    calls: int = 100, errors: int = 0, p50: float = 1.0, baseline: float | None = 1.0
) -> Observation:
    return Observation(
        component="parser", calls=calls, errors=errors, p50_ms=p50, baseline_p50_ms=baseline
    )


def test_an_error_spike_after_an_upgrade_proposes_a_rollback() -> None:
    proposal = evaluate(_seen(errors=10), CONFIG, newer_available=NEWER, has_rollback_point=True)

    assert proposal == Proposal(
        kind="rollback",
        component="parser",
        reason="parser: error rate 10.0% (10 of 100 calls) is more than 5.0% above its usual 0.0%; "
        "the last upgrade is the suspect: roll back to its rollback point",
        target_version=None,
    )


def test_a_slowdown_without_a_rollback_point_proposes_the_newest_version() -> None:
    proposal = evaluate(
        _seen(p50=3.0, baseline=1.5), CONFIG, newer_available=NEWER, has_rollback_point=False
    )

    assert proposal is not None
    assert proposal.kind == "upgrade"
    assert proposal.target_version == NEWER
    assert proposal.reason == (
        "parser: median latency 3.00 ms is 2.00× the baseline 1.50 ms (limit 1.5×); "
        "no rollback point, so upgrade to 1.2.0, the newest compatible version"
    )


def test_nothing_to_propose_without_a_rollback_point_or_a_newer_version() -> None:
    assert (
        evaluate(_seen(errors=50), CONFIG, newer_available=None, has_rollback_point=False) is None
    )


def test_a_healthy_component_proposes_nothing() -> None:
    healthy = _seen(errors=2, p50=1.2, baseline=1.0)

    assert symptoms(healthy, CONFIG) == []
    assert evaluate(healthy, CONFIG, newer_available=NEWER, has_rollback_point=True) is None


def test_too_few_calls_are_not_evidence() -> None:
    every_call_failed = _seen(calls=49, errors=49, p50=100.0)

    assert (
        evaluate(every_call_failed, CONFIG, newer_available=NEWER, has_rollback_point=True) is None
    )
    assert evaluate(
        _seen(calls=50, errors=49), CONFIG, newer_available=NEWER, has_rollback_point=True
    )


def test_thresholds_are_exceeded_only_above_them() -> None:
    at_the_limits = _seen(calls=100, errors=5, p50=1.5, baseline=1.0)
    just_above = _seen(calls=100, errors=6, p50=1.51, baseline=1.0)

    assert symptoms(at_the_limits, CONFIG) == []
    assert len(symptoms(just_above, CONFIG)) == 2


def test_both_symptoms_are_named() -> None:
    proposal = evaluate(
        _seen(errors=20, p50=4.0, baseline=1.0),
        CONFIG,
        newer_available=None,
        has_rollback_point=True,
    )

    assert proposal is not None
    assert proposal.reason.startswith(
        "parser: error rate 20.0% (20 of 100 calls) is more than 5.0% above its usual 0.0% and "
        "median latency 4.00 ms is 4.00× the baseline 1.00 ms (limit 1.5×); "
    )


def test_without_a_baseline_latency_is_not_judged() -> None:
    assert symptoms(_seen(p50=1000.0, baseline=None), CONFIG) == []


def test_the_configuration_moves_the_thresholds() -> None:
    strict = TriggerConfig(error_rate=0.01, latency_factor=1.1, min_calls=10)
    seen = _seen(calls=20, errors=1, p50=1.2, baseline=1.0)

    assert symptoms(seen, CONFIG) == []
    assert symptoms(seen, strict) == [
        "error rate 5.0% (1 of 20 calls) is more than 1.0% above its usual 0.0%",
        "median latency 1.20 ms is 1.20× the baseline 1.00 ms (limit 1.1×)",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"errors": 101}, "observation of parser: errors=101 exceeds calls=100"),
        ({"calls": -1, "errors": 0}, "calls=-1 is invalid: expected an integer ≥ 0"),
        ({"p50": math.nan}, "p50_ms=nan is invalid: expected a number ≥ 0"),
        ({"baseline": 0.0}, "baseline_p50_ms=0.0 is invalid: expected a number > 0"),
    ],
)
def test_impossible_observations_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _seen(**kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_rate": 1.5}, "error_rate=1.5 is invalid: expected a number ≥ 0 and ≤ 1"),
        ({"latency_factor": 0.5}, "latency_factor=0.5 is invalid: expected a number ≥ 1"),
        ({"min_calls": 2.5}, "min_calls=2.5 is invalid: expected an integer ≥ 0"),
    ],
)
def test_a_bad_trigger_configuration_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TriggerConfig(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == f"trigger configuration: {message}"


def test_errors_the_component_raises_by_design_are_not_a_symptom() -> None:
    """A parser that rejects 10% of its input as bad is healthy at 12%, not at 20%."""
    usual = Observation("parser", 100, 12, 1.0, 1.0, baseline_error_rate=0.10)
    assert symptoms(usual, CONFIG) == []
    spike = Observation("parser", 100, 20, 1.0, 1.0, baseline_error_rate=0.10)
    assert symptoms(spike, CONFIG) == [
        "error rate 20.0% (20 of 100 calls) is more than 5.0% above its usual 10.0%"
    ]
