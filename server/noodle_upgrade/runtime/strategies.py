"""Strategy names and parameters (seed 000's names), validated before anything runs.

Every strategy accepts the whole parameter set and ignores what it does not use;
values come from keyword arguments over ``strategies.strategy_configs`` over defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from noodle_upgrade.config import Settings
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import STRATEGY_NAMES

AVAILABLE = ("immediate",)

# name -> (type, default, lower bound, upper bound)
PARAMETERS: dict[str, tuple[type, float, float, float]] = {
    "initial_percentage": (float, 5.0, 0.0, 100.0),
    "increment_percentage": (float, 5.0, 0.0, 100.0),
    "max_percentage": (float, 50.0, 0.0, 100.0),
    "step_seconds": (float, 2.0, 0.0, 86400.0),
    "min_calls": (int, 20, 0, 1e9),
    "error_rate_threshold": (float, 0.05, 0.0, 1.0),
    "latency_factor": (float, 1.5, 1.0, 1000.0),
    "switchback_delay": (float, 30.0, 0.0, 86400.0),
    "batch_size": (int, 1, 1, 1e6),
}


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    parameters: Mapping[str, float]


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
    if chosen not in AVAILABLE:
        raise ValidationError(
            f"strategy {chosen!r} is not available in this build yet "
            f"(available: {', '.join(AVAILABLE)})"
        )
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValidationError(
            f"unknown strategy parameter(s) {', '.join(unknown)}: allowed {', '.join(PARAMETERS)}"
        )
    configured = settings.strategy_configs.get(chosen, {})
    merged = {
        key: _coerce(key, parameters.get(key, configured.get(key, default)))
        for key, (_, default, _, _) in PARAMETERS.items()
    }
    return StrategyConfig(chosen, merged)
