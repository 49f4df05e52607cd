"""Strategy names and parameters (seed 000's names), validated before anything runs.

Every strategy accepts the whole parameter set and ignores what it does not use;
values come from keyword arguments over ``strategies.strategy_configs`` over defaults.
Which strategy may serve which component is decided here too, before anything loads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from noodle_upgrade.config import Settings
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import STRATEGY_NAMES, ComponentDescriptor
from noodle_upgrade.runtime.routing import Compare, results_equal

# name -> (type, default, lower bound, upper bound)
PARAMETERS: dict[str, tuple[type, float, float, float]] = {
    "initial_percentage": (float, 5.0, 0.1, 100.0),  # gradual: gradual_rollout_percentage
    "increment_percentage": (float, 5.0, 0.0, 100.0),
    "max_percentage": (float, 50.0, 0.1, 100.0),
    "step_seconds": (float, 2.0, 0.0, 86400.0),
    "min_calls": (int, 20, 0, 1e9),
    "error_rate_threshold": (float, 0.05, 0.0, 1.0),
    "latency_factor": (float, 1.5, 1.0, 1000.0),
    "switchback_delay": (float, 30.0, 0.0, 86400.0),
    "batch_size": (int, 1, 1, 1e6),
    # ours, for shadow: a deadline per shadowed call, and an A/A phase that first
    # compares the stable version with itself to prove the comparison is meaningful
    "shadow_timeout": (float, 1.0, 0.0, 3600.0),
    "aa_calls": (int, 0, 0, 1e9),
}
OTHER_PARAMETERS = ("compare",)  # a callable (expected, actual) -> bool, for shadow
WEIGHTED = ("gradual", "canary")
NEEDS_TRAFFIC = (*WEIGHTED, "shadow", "rolling")  # they judge a candidate by live calls


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    parameters: Mapping[str, float]
    compare: Compare = results_equal

    def __getitem__(self, name: str) -> float:
        return self.parameters[name]

    def steps(self) -> list[float]:
        """The candidate's share (percent) at each step of a weighted rollout."""
        if self.name == "gradual":
            return _doubling(self["initial_percentage"])
        start, increment = self["initial_percentage"], self["increment_percentage"]
        last = max(self["max_percentage"], start)
        shares = [start]
        while increment > 0 and shares[-1] + increment <= last + 1e-9:
            shares.append(round(shares[-1] + increment, 6))
        return shares


def _doubling(start: float) -> list[float]:
    shares = [start]
    while shares[-1] < 100:
        shares.append(min(100.0, shares[-1] * 2))
    return shares


def _coerce(name: str, value: Any) -> float:
    kind, _, low, high = PARAMETERS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"strategy parameter {name}={value!r} is invalid: expected a number "
            f"between {low:g} and {high:g}"
        )
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError(
            f"strategy parameter {name}={value!r} is out of range: allowed {low:g} to {high:g}"
        )
    if kind is int and not number.is_integer():
        raise ValidationError(f"strategy parameter {name}={value!r} must be a whole number")
    return number


def resolve_strategy(
    name: str | None, parameters: Mapping[str, Any], settings: Settings
) -> StrategyConfig:
    chosen = name or settings.default_strategy
    if chosen not in STRATEGY_NAMES:
        raise ValidationError(
            f"unknown strategy {chosen!r}: expected one of {', '.join(STRATEGY_NAMES)}"
        )
    unknown = sorted(set(parameters) - set(PARAMETERS) - set(OTHER_PARAMETERS))
    if unknown:
        allowed = ", ".join([*PARAMETERS, *OTHER_PARAMETERS])
        raise ValidationError(
            f"unknown strategy parameter(s) {', '.join(unknown)}: allowed {allowed}"
        )
    compare = parameters.get("compare", results_equal)
    if not callable(compare):
        raise ValidationError(
            f"strategy parameter compare={compare!r} is invalid: expected a callable "
            "(expected, actual) -> bool"
        )
    configured = dict(settings.strategy_configs.get(chosen, {}))
    if chosen == "gradual":  # its first step has a setting of its own (seed 002)
        configured.setdefault("initial_percentage", settings.gradual_rollout_percentage)
    merged = {
        key: _coerce(key, parameters.get(key, configured.get(key, default)))
        for key, (_, default, _, _) in PARAMETERS.items()
    }
    return StrategyConfig(chosen, merged, compare)


def check_applicable(strategy: str, target: ComponentDescriptor) -> None:
    """Refuse a strategy that cannot be safe for this kind of component."""
    reason = _not_applicable(strategy, target)
    if reason is not None:
        raise ValidationError(
            f"strategy {strategy!r} cannot upgrade {target.key}: {reason}",
            code="strategy-not-applicable",
        )


def _not_applicable(strategy: str, target: ComponentDescriptor) -> str | None:
    pooled = target.pool_size > 1
    if strategy in WEIGHTED and target.stateful and not pooled:
        return (
            "it is stateful, and splitting calls between two instances would let their "
            "states diverge; use immediate or blue_green"
        )
    if strategy == "shadow" and not target.shadow_safe:
        return (
            "shadow runs every call twice, so side effects would happen twice; "
            "mark the component shadow_safe = true if its calls have none"
        )
    if strategy == "shadow" and target.stateful:
        return "shadow needs a stateless component (a shadow instance's state would drift)"
    if strategy == "rolling" and not pooled:
        return "rolling replaces instances of a pool; declare pool = N with a factory entry"
    if strategy != "rolling" and pooled:
        return "a pooled component is upgraded instance by instance: use rolling"
    return None
