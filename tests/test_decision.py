"""The decision engine: a transparent, reproducible score with reasons a user reads."""

from __future__ import annotations

import json
import math

import pytest
from packaging.version import Version

from noodle_upgrade.engine.decision import (
    Decision,
    DecisionInput,
    Outcomes,
    OutcomeStats,
    decide,
    recommend_strategy,
)
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import BumpKind

THRESHOLD = 0.8  # Settings().decision_threshold

HISTORY = [
    ("parser", "canary", "succeeded", 3),
    ("parser", "canary", "rolled_back", 1),
    ("parser", "immediate", "refused", 2),
    ("lexer", "canary", "succeeded", 5),
    ("lexer", "immediate", "failed", 1),
    ("lexer", "immediate", "interrupted", 4),
]


def _input(
    bump: BumpKind = BumpKind.PATCH,
    old: str = "1.0.0",
    new: str = "1.0.1",
    *,
    component: str = "parser",
    critical: bool = False,
    strategy: str = "canary",
    warnings: tuple[str, ...] = (),
    breaking: int = 0,
    stats: OutcomeStats | None = None,
    stateful: bool = False,
) -> DecisionInput:
    return DecisionInput(
        component=component,
        from_version=Version(old),
        to_version=Version(new),
        bump=bump,
        critical=critical,
        strategy=strategy,
        warnings=warnings,
        breaking_changes=breaking,
        stats=stats if stats is not None else OutcomeStats(),
        stateful=stateful,
    )


def _texts(decision: Decision) -> list[str]:
    return [reason.text for reason in decision.reasons]


def _weight(decision: Decision, factor: str) -> float:
    (reason,) = [reason for reason in decision.reasons if reason.factor == factor]
    return reason.weight


# -- reproducibility ------------------------------------------------------------------


def test_the_same_input_gives_the_same_decision_and_reason_texts() -> None:
    stats = OutcomeStats.from_counts(HISTORY)
    first = decide(
        _input(BumpKind.MINOR, "1.0.0", "1.1.0", warnings=("w1",), stats=stats), THRESHOLD
    )
    # Built again from scratch, with the history rows in another order.
    again = decide(
        _input(
            BumpKind.MINOR,
            "1.0.0",
            "1.1.0",
            warnings=("w1",),
            stats=OutcomeStats.from_counts(reversed(HISTORY)),
        ),
        THRESHOLD,
    )

    assert again == first
    assert _texts(first) == [
        "minor bump 1.0.0 → 1.1.0: moderate risk (-0.15)",
        "1 validation warning (-0.05 each, at most -0.20): w1 (-0.05)",
        "3 of 4 upgrades of parser succeeded (Laplace-smoothed success rate 0.67); "
        "2 refusals before loading not counted (+0.03)",
        "8 of 9 canary upgrades across all components succeeded "
        "(Laplace-smoothed success rate 0.82) (+0.03)",
    ]
    assert first.confidence == 0.8651
    assert first.risk == 0.1349
    assert first.approve
    assert first.verdict == "approved: confidence 0.8651 ≥ threshold 0.8"
    assert first.recommended_strategy == "gradual"


def test_the_confidence_is_one_plus_the_reason_weights() -> None:
    decision = decide(
        _input(
            BumpKind.MAJOR,
            "1.4.0",
            "2.0.0",
            warnings=("a", "b"),
            breaking=1,
            stats=OutcomeStats.from_counts(HISTORY),
        ),
        THRESHOLD,
    )

    assert decision.confidence == pytest.approx(1 + sum(r.weight for r in decision.reasons))
    assert decision.risk == pytest.approx(1 - decision.confidence)


def test_the_decision_is_plain_json() -> None:
    decision = decide(_input(critical=True), THRESHOLD)
    data = json.loads(json.dumps(decision.to_dict()))

    assert data["approve"] is False
    assert data["verdict"] == "needs approval: parser is critical (confidence 0.75)"
    assert [reason["factor"] for reason in data["reasons"]] == [
        "bump",
        "critical",
        "component_history",
        "strategy_history",
    ]


# -- the factors ----------------------------------------------------------------------


def test_a_fresh_patch_is_low_risk_and_approved() -> None:
    decision = decide(_input(), THRESHOLD)

    assert decision.confidence == 0.95
    assert decision.risk == 0.05
    assert decision.approve
    assert _texts(decision) == [
        "patch bump 1.0.0 → 1.0.1: low risk (-0.05)",
        "no recorded upgrades of parser (Laplace-smoothed success rate 0.50): neutral (+0.00)",
        "no recorded canary upgrades across all components "
        "(Laplace-smoothed success rate 0.50): neutral (+0.00)",
    ]


def test_bump_kinds_rank_patch_minor_prerelease_major() -> None:
    cases = [
        (BumpKind.PATCH, "1.0.0", "1.0.1"),
        (BumpKind.MINOR, "1.0.0", "1.1.0"),
        (BumpKind.PRERELEASE, "1.0.0rc1", "1.0.0rc2"),
        (BumpKind.MAJOR, "1.0.0", "2.0.0"),
    ]
    decisions = [decide(_input(bump, old, new), THRESHOLD) for bump, old, new in cases]

    assert [d.confidence for d in decisions] == [0.95, 0.85, 0.7, 0.5]
    assert [d.approve for d in decisions] == [True, True, False, False]
    assert decisions[3].verdict == "needs approval: confidence 0.5 < threshold 0.8"
    assert decisions[3].reasons[0].detail == (
        "major bump 1.0.0 → 2.0.0: high risk, expect breaking API changes"
    )


def test_a_score_exactly_at_the_threshold_is_approved() -> None:
    # 1 - 0.15 is 0.85 only after rounding; a float sum alone would miss the threshold.
    assert decide(_input(BumpKind.MINOR, "1.0.0", "1.1.0"), 0.85).approve
    assert not decide(_input(BumpKind.MINOR, "1.0.0", "1.1.0"), 0.8501).approve


def test_a_prerelease_target_adds_risk() -> None:
    decision = decide(_input(BumpKind.MINOR, "1.0.0", "1.1.0rc1"), THRESHOLD)

    assert "parser 1.1.0rc1 is a pre-release (-0.15)" in _texts(decision)
    assert decision.confidence == 0.7
    assert not decision.approve


def test_a_critical_component_is_never_approved_and_the_reasons_say_so() -> None:
    decision = decide(_input(critical=True), threshold=0.0)

    assert not decision.approve
    assert decision.confidence == 0.75
    veto = "critical component: parser always needs approval, whatever the score (-0.20)"
    assert veto in _texts(decision)
    assert decision.verdict == "needs approval: parser is critical (confidence 0.75)"


def test_validation_warnings_cost_five_points_each_up_to_twenty() -> None:
    one = decide(_input(warnings=("manifest: unknown key 'x'",)), THRESHOLD)
    six = decide(_input(warnings=tuple(f"w{i}" for i in range(6))), THRESHOLD)

    assert _weight(one, "warnings") == -0.05
    assert "1 validation warning (-0.05 each, at most -0.20): manifest: unknown key 'x'" in [
        reason.detail for reason in one.reasons
    ]
    assert _weight(six, "warnings") == -0.2
    assert six.confidence == 0.75


def test_breaking_changes_hold_back_even_a_patch() -> None:
    one = decide(_input(breaking=1), THRESHOLD)
    many = decide(_input(BumpKind.MAJOR, "1.0.0", "2.0.0", breaking=7), THRESHOLD)

    assert not one.approve
    assert one.confidence == 0.75
    assert (
        "1 breaking API change from 1.0.0 to 1.0.1 (-0.20 each, at most -0.60) (-0.20)"
        in _texts(one)
    )
    assert _weight(many, "breaking_changes") == -0.6
    assert many.confidence == 0.0  # clamped
    assert many.risk == 1.0


def test_a_rollback_direction_is_named() -> None:
    decision = decide(_input(BumpKind.MINOR, "1.1.0", "1.0.0"), THRESHOLD)

    assert decision.reasons[0].detail == "minor rollback 1.1.0 → 1.0.0: moderate risk"


# -- learning from outcomes -------------------------------------------------------------


def test_no_history_is_neutral() -> None:
    decision = decide(_input(), THRESHOLD)

    assert _weight(decision, "component_history") == 0.0
    assert _weight(decision, "strategy_history") == 0.0


def test_failures_lower_the_confidence_until_even_a_patch_needs_approval() -> None:
    stats = OutcomeStats()
    scores = []
    for _ in range(3):
        stats = stats.record("parser", "immediate", "rolled_back")
        scores.append(decide(_input(stats=stats), THRESHOLD))

    assert [d.confidence for d in scores] == [0.85, 0.8, 0.77]
    assert [d.approve for d in scores] == [True, True, False]
    assert (
        "0 of 3 upgrades of parser succeeded (Laplace-smoothed success rate 0.20) (-0.18)"
        in _texts(scores[-1])
    )


def test_successes_raise_the_confidence_but_never_approve_a_major() -> None:
    stats = OutcomeStats.from_counts(
        [("parser", "canary", "succeeded", 200), ("lexer", "canary", "succeeded", 500)]
    )
    fresh = decide(_input(BumpKind.PRERELEASE, "1.0.0rc1", "1.0.0rc2"), THRESHOLD)
    proven = decide(_input(BumpKind.PRERELEASE, "1.0.0rc1", "1.0.0rc2", stats=stats), THRESHOLD)
    major = decide(_input(BumpKind.MAJOR, "1.0.0", "2.0.0", stats=stats), THRESHOLD)

    assert not fresh.approve
    assert proven.approve
    assert proven.confidence > fresh.confidence
    assert major.confidence < THRESHOLD


def test_the_strategy_record_counts_across_components() -> None:
    stats = OutcomeStats.from_counts(
        [("lexer", "immediate", "failed", 4), ("optimizer", "canary", "succeeded", 4)]
    )
    immediate = decide(_input(strategy="immediate", stats=stats), THRESHOLD)
    canary = decide(_input(strategy="canary", stats=stats), THRESHOLD)

    assert _weight(immediate, "component_history") == 0.0  # parser has no history
    assert _weight(immediate, "strategy_history") < 0 < _weight(canary, "strategy_history")
    assert (
        "0 of 4 immediate upgrades across all components succeeded "
        "(Laplace-smoothed success rate 0.17)" in [r.detail for r in immediate.reasons]
    )


def test_refusals_are_reported_but_do_not_count_as_failures() -> None:
    refused = OutcomeStats.from_counts([("parser", "canary", "refused", 5)])
    decision = decide(_input(stats=refused), THRESHOLD)

    assert _weight(decision, "component_history") == 0.0
    assert decision.reasons[1].detail == (
        "no recorded upgrades of parser (Laplace-smoothed success rate 0.50): neutral; "
        "5 refusals before loading not counted"
    )


# -- statistics ----------------------------------------------------------------------


def test_outcome_stats_total_per_component_and_per_strategy() -> None:
    stats = OutcomeStats.from_counts(HISTORY)

    assert stats.of("parser", "canary") == Outcomes(succeeded=3, rolled_back=1)
    assert stats.for_component("parser") == Outcomes(succeeded=3, rolled_back=1, refused=2)
    assert stats.for_strategy("immediate") == Outcomes(failed=1, refused=2)  # not interrupted
    assert stats.total() == Outcomes(succeeded=8, failed=1, rolled_back=1, refused=2)
    assert stats.for_component("vm_engine") == Outcomes()
    assert OutcomeStats.from_counts(reversed(HISTORY)) == stats  # row order does not matter
    assert Outcomes().success_rate == 0.5
    assert Outcomes(succeeded=3, rolled_back=1).success_rate == pytest.approx(4 / 6)


def test_recording_an_outcome_leaves_the_old_statistics_alone() -> None:
    before = OutcomeStats.from_counts(HISTORY)
    after = before.record("parser", "canary", "failed")

    assert before.of("parser", "canary").failed == 0
    assert after.of("parser", "canary").failed == 1
    assert before.record("parser", "canary", "in_progress") == before


def test_bad_statistics_are_refused() -> None:
    with pytest.raises(ValidationError, match="'exploded' is not an upgrade status"):
        OutcomeStats.from_counts([("parser", "canary", "exploded", 1)])
    with pytest.raises(ValidationError, match="succeeded=-1"):
        Outcomes(succeeded=-1)


# -- arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan])
def test_a_threshold_outside_zero_to_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValidationError, match="expected a number in \\[0, 1\\]"):
        decide(_input(), threshold)


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValidationError, match="strategy 'yolo' is unknown"):
        _input(strategy="yolo")


# -- strategy advice -------------------------------------------------------------------


def test_a_major_bump_is_canaried() -> None:
    advice = recommend_strategy(_input(BumpKind.MAJOR, "1.0.0", "2.0.0"))

    assert advice.strategy == "canary"
    assert advice.reason.startswith("major bump: canary sends a small share of calls")


def test_a_stateful_component_gets_blue_green_instead_of_canary() -> None:
    advice = recommend_strategy(_input(critical=True, stateful=True))

    assert advice.strategy == "blue_green"
    assert advice.reason.startswith(
        "critical component; the component is stateful, so its calls cannot be split"
    )


def test_a_patch_with_a_good_record_is_immediate() -> None:
    good = OutcomeStats.from_counts([("parser", "canary", "succeeded", 2)])
    advice = recommend_strategy(_input(stats=good))

    assert advice.strategy == "immediate"
    assert advice.reason == (
        "patch change with a good record (2 of 2 upgrades succeeded): one atomic switch, "
        "the old version kept for rollback"
    )
    assert decide(_input(stats=good), THRESHOLD).recommended_strategy == "immediate"


def test_a_patch_without_a_record_and_a_minor_go_gradually() -> None:
    assert recommend_strategy(_input()).strategy == "gradual"
    assert recommend_strategy(_input()).reason.startswith(
        "patch change without a good record yet (no recorded upgrades)"
    )
    assert recommend_strategy(_input(BumpKind.MINOR, "1.0.0", "1.1.0")).strategy == "gradual"


def test_a_poor_record_means_canary_even_for_a_patch() -> None:
    poor = OutcomeStats.from_counts(
        [("parser", "immediate", "failed", 2), ("parser", "immediate", "succeeded", 1)]
    )
    advice = recommend_strategy(_input(stats=poor))

    assert advice.strategy == "canary"
    assert advice.reason.startswith("a poor record (1 of 3 upgrades succeeded): canary")
