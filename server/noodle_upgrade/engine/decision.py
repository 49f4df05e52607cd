"""Upgrade decisions (seed 001's "AI decision engine"): a transparent score, no external model.

Pure: no I/O, no clock, no globals. The same ``DecisionInput`` and threshold always give an
identical ``Decision``, reason texts included.

The model
---------
Confidence starts at 1 and every factor adds a signed weight to it (a negative weight is
risk). The sum is clamped to [0, 1] and rounded to 4 decimal places (so that
``1 - 0.05 - 0.15`` meets a threshold of 0.8 exactly); ``risk = 1 - confidence``.

=====================  ==========================================================  ===========
factor                 when                                                         weight
=====================  ==========================================================  ===========
``bump``               always, by bump kind (``BUMP_WEIGHTS``): none, patch,        0, -0.05,
                       minor, prerelease, major                                     -0.15, -0.30,
                                                                                    -0.50
``prerelease``         the target is a pre-release but the bump is not              -0.15
                       ``prerelease`` (``1.0.0 -> 1.1.0rc1``)
``critical``           the component is critical; it also vetoes approval           -0.20
``warnings``           per validation warning, at most ``WARNINGS_CAP``             -0.05 (≥ -0.20)
``breaking_changes``   per breaking API change, at most ``BREAKING_CAP``            -0.20 (≥ -0.60)
``component_history``  always: ``w × (2p - 1)``, p the component's smoothed          w = 0.10 gain,
                       success rate over all its upgrades, whatever the strategy    0.30 loss
``strategy_history``   always: ``w × (2p - 1)``, p the strategy's smoothed           w = 0.05 gain,
                       success rate over all components                             0.10 loss
=====================  ==========================================================  ===========

The history terms weigh a success rate above 0.5 with the *gain* weight and one below with
the *loss* weight: most upgrades succeed, so a success is expected news and a failure the
stronger evidence. With the default threshold 0.8, a fresh patch (0.95) or minor (0.85)
is approved, a pre-release or major is not; a long clean record can lift a pre-release
over the threshold but never a major (at most 0.50 + 0.10 + 0.05); after three failed
upgrades of a component even its patch scores below it (0.95 - 0.18 = 0.77, before the
strategy's term).

Success rates use Laplace smoothing, ``p = (succeeded + 1) / (attempts + 2)`` where attempts
are the upgrades that ran (succeeded, failed, rolled back). No history gives p = 0.5, a
neutral term of exactly 0; a short history moves the score little and a long one more.
Refused upgrades never ran the version, so they say nothing about it and are not counted
(the reason text reports them); interrupted ones (the process died) are not counted either.

``approve`` is ``confidence >= threshold`` (``Settings.decision_threshold``, variable
``NOODLE_AI_UPGRADE_DECISION_THRESHOLD``), except that a critical component is never
approved, whatever its score.

Learning: ``OutcomeStats`` is built from the store's journal of finished upgrades
(``Store.outcome_stats``). Every upgrade writes its outcome there, so every outcome updates
the statistics the next decision reads; ``OutcomeStats.record`` does the same in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import STRATEGY_NAMES, BumpKind, UpgradeStatus

# ---------------------------------------------------------------------------- weights

BUMP_WEIGHTS: Mapping[BumpKind, float] = {
    BumpKind.NONE: 0.0,
    BumpKind.PATCH: -0.05,
    BumpKind.MINOR: -0.15,
    BumpKind.PRERELEASE: -0.30,
    BumpKind.MAJOR: -0.50,
}
PRERELEASE_TARGET_WEIGHT = -0.15
CRITICAL_WEIGHT = -0.20
WARNING_WEIGHT = -0.05
WARNINGS_CAP = -0.20
BREAKING_CHANGE_WEIGHT = -0.20
BREAKING_CAP = -0.60
# History terms: weight × (2p - 1), with the GAIN weight when p > 0.5 and the LOSS weight
# when p < 0.5. Most upgrades succeed, so a failure is the stronger evidence.
COMPONENT_HISTORY_GAIN = 0.10
COMPONENT_HISTORY_LOSS = 0.30
STRATEGY_HISTORY_GAIN = 0.05
STRATEGY_HISTORY_LOSS = 0.10

# Strategy advice: a smoothed success rate at or above GOOD_RECORD is a good record (at
# least 2 of 2, 5 of 6, …); below POOR_RECORD, more upgrades failed than succeeded.
GOOD_RECORD = 0.75
POOR_RECORD = 0.5

_DIGITS = 4  # confidence and weights are rounded to this many decimal places

_BUMP_WORDS: Mapping[BumpKind, str] = {
    BumpKind.NONE: "no version change",
    BumpKind.PATCH: "low risk",
    BumpKind.MINOR: "moderate risk",
    BumpKind.PRERELEASE: "elevated risk: only the pre-, post- or dev-release part changes",
    BumpKind.MAJOR: "high risk, expect breaking API changes",
}

# ---------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Outcomes:
    """How many recorded upgrades ended each way."""

    succeeded: int = 0
    failed: int = 0  # failed before the switch
    rolled_back: int = 0  # failed after the switch, switched back
    refused: int = 0  # refused by validation: the version never ran

    def __post_init__(self) -> None:
        for name in ("succeeded", "failed", "rolled_back", "refused"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"outcome count {name}={value!r}: expected an integer ≥ 0")

    @property
    def attempts(self) -> int:
        """Upgrades that ran the version: refused ones did not."""
        return self.succeeded + self.failed + self.rolled_back

    @property
    def failures(self) -> int:
        return self.failed + self.rolled_back

    @property
    def success_rate(self) -> float:
        """Laplace-smoothed: ``(succeeded + 1) / (attempts + 2)``; 0.5 with no history."""
        return (self.succeeded + 1) / (self.attempts + 2)

    def __add__(self, other: Outcomes) -> Outcomes:
        return Outcomes(
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.rolled_back + other.rolled_back,
            self.refused + other.refused,
        )


_COUNTED = {
    UpgradeStatus.SUCCEEDED: "succeeded",
    UpgradeStatus.FAILED: "failed",
    UpgradeStatus.ROLLED_BACK: "rolled_back",
    UpgradeStatus.REFUSED: "refused",
}


@dataclass(frozen=True)
class OutcomeStats:
    """Recorded upgrade outcomes per (component, strategy).

    ``entries`` is kept sorted with one entry per pair, so equal statistics compare (and
    hash) equal however they were built. Build it with ``from_counts`` from the rows
    ``Store.outcome_stats`` returns, or add one outcome with ``record``.
    """

    entries: tuple[tuple[str, str, Outcomes], ...] = ()

    def __post_init__(self) -> None:
        merged: dict[tuple[str, str], Outcomes] = {}
        for component, strategy, outcomes in self.entries:
            key = (component, strategy)
            merged[key] = merged.get(key, Outcomes()) + outcomes
        normal = tuple((c, s, o) for (c, s), o in sorted(merged.items()))
        object.__setattr__(self, "entries", normal)

    @classmethod
    def from_counts(cls, rows: Iterable[tuple[str, str, str, int]]) -> OutcomeStats:
        """From ``(component, strategy, status, count)`` rows; statuses that are not an
        outcome (``in_progress``, ``interrupted``) are skipped."""
        entries: list[tuple[str, str, Outcomes]] = []
        for component, strategy, status, count in rows:
            field_name = _COUNTED.get(_status(status))
            if field_name is not None:
                entries.append((component, strategy, Outcomes(**{field_name: count})))
        return cls(tuple(entries))

    def record(self, component: str, strategy: str, status: str) -> OutcomeStats:
        """These statistics with one more outcome (unchanged for a non-outcome status)."""
        return OutcomeStats.from_counts([(component, strategy, status, 1)]).merged(self)

    def merged(self, other: OutcomeStats) -> OutcomeStats:
        """Both statistics added up (say, the store's and those recorded since)."""
        return OutcomeStats(self.entries + other.entries)

    def of(self, component: str, strategy: str) -> Outcomes:
        return self._sum(lambda c, s: c == component and s == strategy)

    def for_component(self, component: str) -> Outcomes:
        """Every upgrade of ``component``, whatever its strategy."""
        return self._sum(lambda c, _s: c == component)

    def for_strategy(self, strategy: str) -> Outcomes:
        """Every upgrade with ``strategy``, whatever its component."""
        return self._sum(lambda _c, s: s == strategy)

    def total(self) -> Outcomes:
        return self._sum(lambda _c, _s: True)

    def _sum(self, wanted: Callable[[str, str], bool]) -> Outcomes:
        total = Outcomes()
        for component, strategy, outcomes in self.entries:
            if wanted(component, strategy):
                total = total + outcomes
        return total


def _status(status: str) -> UpgradeStatus:
    try:
        return UpgradeStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in UpgradeStatus)
        raise ValidationError(
            f"outcome status {status!r} is not an upgrade status (allowed: {allowed})"
        ) from None


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DecisionInput:
    """Everything a decision looks at; nothing else can change its outcome.

    ``bump`` is taken as given (``engine.versions.bump_kind(from_version, to_version)``,
    or the plan's ``UpgradePlan.bump``); a ``to_version`` below ``from_version`` is
    described as a rollback.
    """

    component: str
    from_version: Version
    to_version: Version
    bump: BumpKind
    critical: bool
    strategy: str
    warnings: tuple[str, ...] = ()  # validation warnings of the planned upgrade
    breaking_changes: int = 0  # breaking API changes found by change analysis
    stats: OutcomeStats = field(default_factory=OutcomeStats)
    stateful: bool = False  # a factory entry: its calls cannot be split between versions

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:
            raise ValidationError(
                f"strategy {self.strategy!r} is unknown (allowed: {', '.join(STRATEGY_NAMES)})"
            )
        count = self.breaking_changes
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationError(f"breaking_changes={count!r}: expected an integer ≥ 0")


@dataclass(frozen=True)
class Reason:
    """One factor's contribution to the confidence, in words a user reads."""

    factor: str
    weight: float  # added to the confidence; negative is risk
    detail: str

    @property
    def text(self) -> str:
        """``detail`` with the weight: ``"patch bump 1.0.0 → 1.0.1: low risk (-0.05)"``."""
        return f"{self.detail} ({_signed(self.weight)})"

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "weight": self.weight, "detail": self.detail}


@dataclass(frozen=True)
class StrategyAdvice:
    strategy: str
    reason: str


@dataclass(frozen=True)
class Decision:
    component: str
    confidence: float  # in [0, 1]
    risk: float  # 1 - confidence
    approve: bool  # confidence >= threshold, and the component is not critical
    threshold: float
    reasons: tuple[Reason, ...]
    recommended_strategy: str
    strategy_reason: str

    @property
    def verdict(self) -> str:
        """One line: the outcome and what decided it."""
        # Exact numbers (confidence has 4 decimals): 0.7999 must not read as 0.80 < 0.80.
        score = f"confidence {self.confidence:g}"
        if self.approve:
            return f"approved: {score} ≥ threshold {self.threshold:g}"
        if any(reason.factor == "critical" for reason in self.reasons):
            return f"needs approval: {self.component} is critical ({score})"
        return f"needs approval: {score} < threshold {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "confidence": self.confidence,
            "risk": self.risk,
            "approve": self.approve,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "reasons": [reason.to_dict() for reason in self.reasons],
            "recommended_strategy": self.recommended_strategy,
            "strategy_reason": self.strategy_reason,
        }


def decide(input: DecisionInput, threshold: float) -> Decision:
    """Score ``input`` with the additive model of this module and gate it at ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValidationError(f"decision threshold {threshold!r}: expected a number in [0, 1]")
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValidationError(f"decision threshold {threshold!r}: expected a number in [0, 1]")
    reasons = _reasons(input)
    total = 1.0
    for reason in reasons:
        total += reason.weight
    confidence = _round(min(1.0, max(0.0, total)))
    advice = recommend_strategy(input)
    return Decision(
        component=input.component,
        confidence=confidence,
        risk=_round(1.0 - confidence),
        approve=not input.critical and confidence >= threshold,
        threshold=float(threshold),
        reasons=reasons,
        recommended_strategy=advice.strategy,
        strategy_reason=advice.reason,
    )


def _reasons(input: DecisionInput) -> tuple[Reason, ...]:
    reasons = [_bump_reason(input)]
    if input.to_version.is_prerelease and input.bump is not BumpKind.PRERELEASE:
        reasons.append(
            Reason(
                "prerelease",
                PRERELEASE_TARGET_WEIGHT,
                f"{input.component} {input.to_version} is a pre-release",
            )
        )
    if input.critical:
        reasons.append(
            Reason(
                "critical",
                CRITICAL_WEIGHT,
                f"critical component: {input.component} always needs approval, whatever the score",
            )
        )
    if input.warnings:
        count = len(input.warnings)
        reasons.append(
            Reason(
                "warnings",
                _round(max(WARNINGS_CAP, WARNING_WEIGHT * count)),
                f"{_plural(count, 'validation warning')} ({_signed(WARNING_WEIGHT)} each, "
                f"at most {_signed(WARNINGS_CAP)}): {'; '.join(input.warnings)}",
            )
        )
    if input.breaking_changes:
        count = input.breaking_changes
        reasons.append(
            Reason(
                "breaking_changes",
                _round(max(BREAKING_CAP, BREAKING_CHANGE_WEIGHT * count)),
                f"{_plural(count, 'breaking API change')} from {input.from_version} to "
                f"{input.to_version} ({_signed(BREAKING_CHANGE_WEIGHT)} each, "
                f"at most {_signed(BREAKING_CAP)})",
            )
        )
    component = input.stats.for_component(input.component)
    reasons.append(
        _history_reason(
            "component_history",
            (COMPONENT_HISTORY_GAIN, COMPONENT_HISTORY_LOSS),
            component,
            f"upgrades of {input.component}",
        )
    )
    strategy = input.stats.for_strategy(input.strategy)
    reasons.append(
        _history_reason(
            "strategy_history",
            (STRATEGY_HISTORY_GAIN, STRATEGY_HISTORY_LOSS),
            strategy,
            f"{input.strategy} upgrades across all components",
        )
    )
    return tuple(reasons)


def _bump_reason(input: DecisionInput) -> Reason:
    weight = BUMP_WEIGHTS[input.bump]
    if input.bump is BumpKind.NONE:
        return Reason("bump", weight, f"no version change ({input.to_version})")
    change = f"{input.from_version} → {input.to_version}"
    if input.bump is BumpKind.PRERELEASE:
        kind = "pre-release change"
    elif input.to_version < input.from_version:
        kind = f"{input.bump.value} rollback"
    else:
        kind = f"{input.bump.value} bump"
    return Reason("bump", weight, f"{kind} {change}: {_BUMP_WORDS[input.bump]}")


def _history_reason(
    factor: str, weights: tuple[float, float], outcomes: Outcomes, what: str
) -> Reason:
    rate = outcomes.success_rate
    gain, loss = weights
    weight = gain if rate > 0.5 else loss
    smoothed = f"Laplace-smoothed success rate {rate:.2f}"
    if outcomes.attempts == 0:
        detail = f"no recorded {what} ({smoothed}): neutral"
    else:
        detail = f"{outcomes.succeeded} of {outcomes.attempts} {what} succeeded ({smoothed})"
    if outcomes.refused:
        detail += f"; {_plural(outcomes.refused, 'refusal')} before loading not counted"
    return Reason(factor, _round(weight * (2.0 * rate - 1.0)), detail)


# ---------------------------------------------------------------------------- strategies


def recommend_strategy(input: DecisionInput) -> StrategyAdvice:
    """The strategy this upgrade should run with, and why.

    Caution (a major bump, a pre-release, a critical component, breaking changes, or a
    record with more failures than successes) means canary, or blue_green for a stateful
    component, whose calls cannot be split between two versions. A patch with a good
    record (smoothed success rate ≥ ``GOOD_RECORD``) goes immediate. Anything else goes
    gradual (blue_green when stateful).
    """
    record = input.stats.for_component(input.component)
    cautions = _cautions(input, record)
    if cautions:
        why = " and ".join(cautions)
        if input.stateful:
            return StrategyAdvice("blue_green", f"{why}; {_BLUE_GREEN_WHY}")
        return StrategyAdvice(
            "canary",
            f"{why}: canary sends a small share of calls to the new version first and rolls "
            "back automatically past the error and latency thresholds",
        )
    small = input.bump in (BumpKind.PATCH, BumpKind.NONE)
    if small and record.success_rate >= GOOD_RECORD:
        return StrategyAdvice(
            "immediate",
            f"{input.bump.value} change with a good record ({_record_text(record)}): "
            "one atomic switch, the old version kept for rollback",
        )
    if small:
        why = f"{input.bump.value} change without a good record yet ({_record_text(record)})"
    else:
        why = f"{input.bump.value} bump"
    if input.stateful:
        return StrategyAdvice("blue_green", f"{why}; {_BLUE_GREEN_WHY}")
    return StrategyAdvice(
        "gradual", f"{why}: gradual moves calls over in weight steps while health holds"
    )


_BLUE_GREEN_WHY = (
    "the component is stateful, so its calls cannot be split between two versions: "
    "blue_green smoke-tests the new version beside the old and keeps the old one warm "
    "for an instant switch back"
)


def _cautions(input: DecisionInput, record: Outcomes) -> list[str]:
    cautions = []
    if input.bump is BumpKind.MAJOR:
        cautions.append("major bump")
    if input.bump is BumpKind.PRERELEASE or input.to_version.is_prerelease:
        cautions.append("pre-release")
    if input.critical:
        cautions.append("critical component")
    if input.breaking_changes:
        cautions.append(_plural(input.breaking_changes, "breaking API change"))
    if record.attempts and record.success_rate < POOR_RECORD:
        cautions.append(f"a poor record ({_record_text(record)})")
    return cautions


# ---------------------------------------------------------------------------- helpers


def _record_text(record: Outcomes) -> str:
    if not record.attempts:
        return "no recorded upgrades"
    return f"{record.succeeded} of {record.attempts} upgrades succeeded"


def _round(value: float) -> float:
    return round(value, _DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _signed(weight: float) -> str:
    return f"{_round(weight):+.2f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
