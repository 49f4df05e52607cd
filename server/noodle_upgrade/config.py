"""Runtime settings: overrides > ``NOODLE_*`` environment > config file > defaults (seed 002).

One table (``_SPECS``) describes every setting: its environment variable, its key in the config
file, how it is checked and what it means. Loading, ``describe_settings`` and the documentation
(``settings_reference``) all read that table, so they cannot drift apart.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from noodle_upgrade.engine.manifest import toml_error_message
from noodle_upgrade.errors import ConfigError
from noodle_upgrade.models import STRATEGY_NAMES, ValidationLevel

ROOT_KEY = "runtime_upgrade"
CONFIG_FILE_VARIABLE = "NOODLE_CONFIG_FILE"
CONFIG_FILE_NAMES = ("runtime_upgrade_config.toml", "runtime_upgrade_config.json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Scalar = float | int | bool | str


@dataclass(frozen=True)
class Settings:
    """Validated runtime settings; ``Settings()`` is the defaults."""

    runtime_upgrade_enabled: bool = True
    hot_swap_enabled: bool = True
    swap_timeout: float = 30.0
    upgrade_timeout: float = 300.0
    rollback_enabled: bool = True
    max_rollback_points: int = 10
    validation_level: ValidationLevel = ValidationLevel.STRICT
    auto_upgrade_approval: bool = False
    gradual_rollout_percentage: float = 10.0
    default_strategy: str = "immediate"
    strategy_configs: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)
    max_concurrent_upgrades: int = 3
    decision_threshold: float = 0.8
    operation_switch_interval: float = 0.0
    triggers_enabled: bool = False
    trigger_interval: float = 30.0
    trigger_window: float = 2.0
    control_enabled: bool = True
    control_transport: str = "auto"
    watch_enabled: bool = True
    policy_check_interval: float = 5.0
    log_level: str = "INFO"
    config_file: Path | None = None
    warnings: tuple[str, ...] = ()
    # Where each setting came from: "override", "env", "file"; absent means "default".
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)


# ---------------------------------------------------------------------------- kinds of value


class _Invalid(Exception):
    """A value a kind rejects; ``detail`` replaces the generic "expected …" when given."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Kind:
    """How one kind of setting is parsed: from env text or a typed file/override value."""

    parse: Callable[[object], object]
    expected: str


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    # JSON files often say 1/0; anything else numeric is a mistake.
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    raise _Invalid()


BOOLEAN = _Kind(_parse_bool, "a boolean (1/0, true/false, yes/no, on/off)")


def _to_number(value: object, integer: bool) -> float | int:
    if isinstance(value, bool):
        raise _Invalid()
    if isinstance(value, str):
        try:
            return int(value.strip()) if integer else float(value.strip())
        except ValueError:
            raise _Invalid() from None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if integer and not value.is_integer():
            raise _Invalid()
        return int(value) if integer and math.isfinite(value) else value
    raise _Invalid()


def _number(
    low: float, high: float | None = None, *, low_open: bool = False, integer: bool = False
) -> _Kind:
    """A finite number in [low, high] (low excluded when ``low_open``)."""
    noun = "an integer" if integer else "a number"
    if high is None:
        expected = f"{noun} {'>' if low_open else '≥'} {low:g}"
    else:
        expected = f"{noun} in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(value: object) -> float | int:
        number = _to_number(value, integer)
        too_low = number <= low if low_open else number < low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            raise _Invalid()
        return number if integer else float(number)

    return _Kind(parse, expected)


def _choice(
    options: tuple[str, ...], convert: Callable[[str], object] = str, *, upper: bool = False
) -> _Kind:
    """One of ``options``, matched case-insensitively and returned in canonical case."""

    def parse(value: object) -> object:
        if isinstance(value, str):
            text = value.strip().upper() if upper else value.strip().lower()
            if text in options:
                return convert(text)
        raise _Invalid()

    return _Kind(parse, f"one of {', '.join(options)}")


def _parse_strategy_configs(value: object) -> dict[str, dict[str, Scalar]]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a table of strategy name = table of parameters")
    configs: dict[str, dict[str, Scalar]] = {}
    for strategy, params in value.items():
        if strategy not in STRATEGY_NAMES:
            allowed = ", ".join(STRATEGY_NAMES)
            raise _Invalid(f"unknown strategy {strategy!r} (allowed: {allowed})")
        if not isinstance(params, Mapping):
            raise _Invalid(f"{strategy!r}: expected a table of parameters, got {params!r}")
        configs[strategy] = {key: _scalar(strategy, key, item) for key, item in params.items()}
    return configs


def _scalar(strategy: str, key: str, value: object) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"{strategy}.{key}={value!r}: expected a finite number")
    if not isinstance(value, bool | int | float | str):
        raise _Invalid(f"{strategy}.{key}={value!r}: expected a number, boolean or string")
    return value


STRATEGY_CONFIGS = _Kind(_parse_strategy_configs, "a table of strategy name = table of scalars")

# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class _Spec:
    name: str  # the Settings field and the override keyword
    env: str | None  # None: set in the config file only
    file_key: str  # dotted, under the file's "runtime_upgrade" table
    kind: _Kind
    description: str


_SPECS: tuple[_Spec, ...] = (
    _Spec(
        "runtime_upgrade_enabled",
        "NOODLE_RUNTIME_UPGRADE_ENABLED",
        "enabled",
        BOOLEAN,
        "Enable the runtime upgrade system.",
    ),
    _Spec(
        "hot_swap_enabled",
        "NOODLE_HOT_SWAP_ENABLED",
        "hot_swap.enabled",
        BOOLEAN,
        "Enable hot-swapping of components in the running process.",
    ),
    _Spec(
        "swap_timeout",
        "NOODLE_SWAP_TIMEOUT",
        "hot_swap.swap_timeout",
        _number(0, low_open=True),
        "Seconds allowed for each import, factory call and health check, and for a "
        "stateful component's calls in flight to finish before its state moves.",
    ),
    _Spec(
        "upgrade_timeout",
        "NOODLE_UPGRADE_TIMEOUT",
        "upgrade_timeout",
        _number(0, low_open=True),
        "Seconds allowed for loading and checking a new version before its switch "
        "(past it the upgrade fails and nothing changes), and for a rollout step to "
        "become conclusive (past it the candidate is withdrawn).",
    ),
    _Spec(
        "rollback_enabled",
        "NOODLE_ROLLBACK_ENABLED",
        "rollback.enabled",
        BOOLEAN,
        "Allow explicit rollbacks (rt.rollback, noodle rollback). A failed check after "
        "the switch always switches back.",
    ),
    _Spec(
        "max_rollback_points",
        "NOODLE_MAX_ROLLBACK_POINTS",
        "rollback.max_rollback_points",
        _number(1, integer=True),
        "Rollback points kept per component.",
    ),
    _Spec(
        "validation_level",
        "NOODLE_UPGRADE_VALIDATION_LEVEL",
        "validation.level",
        _choice(tuple(level.value for level in ValidationLevel), ValidationLevel),
        "strict: manifest warnings and a major upgrade of a stateful component without "
        "a migrate hook refuse the upgrade; normal: they are warnings; permissive: also "
        "skips the health check after the switch.",
    ),
    _Spec(
        "auto_upgrade_approval",
        "NOODLE_AUTO_UPGRADE_APPROVAL",
        "auto_upgrade_approval",
        BOOLEAN,
        "Auto-approve every kind of change the runtime proposes itself (watcher, "
        "triggers) where [policy.<environment>] sets no auto_approve; critical components, "
        "windows, intervals and thresholds still apply.",
    ),
    _Spec(
        "gradual_rollout_percentage",
        "NOODLE_GRADUAL_ROLLOUT_PERCENTAGE",
        "strategies.strategy_configs.gradual.initial_percentage",
        _number(0, 100, low_open=True),
        "Share of calls (percent) the new version gets at the first step of a gradual "
        "rollout; each step doubles it up to 100.",
    ),
    _Spec(
        "default_strategy",
        "NOODLE_DEFAULT_STRATEGY",
        "strategies.default_strategy",
        _choice(STRATEGY_NAMES),
        "Strategy used when an upgrade names none.",
    ),
    _Spec(
        "strategy_configs",
        None,
        "strategies.strategy_configs",
        STRATEGY_CONFIGS,
        "Per-strategy parameter defaults (e.g. canary.initial_percentage); "
        "keyword arguments of an upgrade override them.",
    ),
    _Spec(
        "max_concurrent_upgrades",
        "NOODLE_MAX_CONCURRENT_UPGRADES",
        "hot_swap.max_concurrent_swaps",
        _number(1, integer=True),
        "Upgrades that may run at the same time (today every operation runs alone).",
    ),
    _Spec(
        "decision_threshold",
        "NOODLE_AI_UPGRADE_DECISION_THRESHOLD",
        "decision_threshold",
        _number(0, 1),
        "Confidence (0-1) the decision engine needs before an upgrade the runtime "
        "proposes itself runs without an operator's approval.",
    ),
    _Spec(
        "operation_switch_interval",
        "NOODLE_OPERATION_SWITCH_INTERVAL",
        "hot_swap.operation_switch_interval",
        _number(0),
        "GIL switch interval (seconds) while an operation loads, switches and commits; "
        "0 leaves the application's. Shorter makes upgrades under CPU-bound load finish "
        "sooner, at a cost in the application's tail latency (see docs/benchmarks.md).",
    ),
    _Spec(
        "triggers_enabled",
        "NOODLE_RUNTIME_UPGRADE_TRIGGERS",
        "triggers.enabled",
        BOOLEAN,
        "Watch components in sampled windows and propose a rollback or an upgrade on an "
        "error-rate spike or a latency degradation (off by default: a watched window "
        "routes calls through a measuring wrapper).",
    ),
    _Spec(
        "trigger_interval",
        "NOODLE_TRIGGER_INTERVAL",
        "triggers.interval",
        _number(0, low_open=True),
        "Seconds between two trigger observations of a component.",
    ),
    _Spec(
        "trigger_window",
        "NOODLE_TRIGGER_WINDOW",
        "triggers.window",
        _number(0, low_open=True),
        "Seconds one trigger observation measures a component's calls.",
    ),
    _Spec(
        "control_enabled",
        "NOODLE_CONTROL",
        "control.enabled",
        BOOLEAN,
        "Serve the local control endpoint (see control_transport) through which the CLI, "
        "editors and the dashboard reach a live runtime.",
    ),
    _Spec(
        "control_transport",
        "NOODLE_CONTROL_TRANSPORT",
        "control.transport",
        _choice(("auto", "unix", "tcp")),
        "How the control endpoint listens: a Unix socket (mode 0600), TCP on 127.0.0.1 "
        "with a random token kept in a 0600 file, or auto (Unix where available).",
    ),
    _Spec(
        "watch_enabled",
        "NOODLE_WATCH",
        "watch.enabled",
        BOOLEAN,
        "Watch the component store and noodle.toml (watchfiles): new versions become "
        "proposals that [policy.<environment>] applies or holds for approval.",
    ),
    _Spec(
        "policy_check_interval",
        "NOODLE_POLICY_CHECK_INTERVAL",
        "watch.policy_check_interval",
        _number(0, low_open=True),
        "Seconds between two checks of deferred proposals (maintenance window, minimum "
        "interval, resource thresholds).",
    ),
    _Spec(
        "log_level",
        "NOODLE_LOG_LEVEL",
        "log_level",
        _choice(LOG_LEVELS, upper=True),
        "Log level of NoodleCore Upgrade's loggers.",
    ),
)
_BY_NAME = {spec.name: spec for spec in _SPECS}
_FILE_KEYS = {spec.file_key for spec in _SPECS}

# ---------------------------------------------------------------------------- loading


def load_settings(
    project_root: Path,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Settings from overrides > ``NOODLE_*`` variables > config file > defaults.

    Every value present in any layer is validated, so a bad config file is reported even while
    an environment variable hides it. Empty variables count as unset; ``None`` overrides too.
    """
    env = os.environ if environ is None else environ
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in overrides (allowed: {', '.join(_BY_NAME)})"
        )
    path = _config_path(Path(project_root), env)
    data, warnings = _read_config_file(path) if path else ({}, [])
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in _SPECS:
        # Lowest precedence first: a later layer's value replaces an earlier one's.
        layers: list[tuple[str, Mapping[str, Any], str, str]] = [
            ("file", data, spec.file_key, f"{path}: {ROOT_KEY}.{spec.file_key}"),
            ("env", _env_layer(env, spec), spec.env or "", spec.env or ""),
            ("override", given, spec.name, f"override {spec.name}"),
        ]
        for source, layer, key, origin in layers:
            raw = _lookup(layer, key)
            if raw is not _MISSING:
                values[spec.name] = _check(spec, raw, origin)
                sources[spec.name] = source
    _sync_gradual(values, sources)
    return Settings(**values, config_file=path, warnings=tuple(warnings), sources=sources)


def _sync_gradual(values: dict[str, Any], sources: dict[str, str]) -> None:
    # gradual_rollout_percentage *is* strategy_configs.gradual.initial_percentage in the file;
    # when a variable or override sets it, strategies reading strategy_configs must see it too.
    if sources.get("gradual_rollout_percentage") not in ("env", "override"):
        return
    configs = {name: dict(params) for name, params in values.get("strategy_configs", {}).items()}
    configs.setdefault("gradual", {})["initial_percentage"] = values["gradual_rollout_percentage"]
    values["strategy_configs"] = configs
    sources.setdefault("strategy_configs", sources["gradual_rollout_percentage"])


def _env_layer(env: Mapping[str, str], spec: _Spec) -> dict[str, str]:
    if spec.env is None or not env.get(spec.env, "").strip():
        return {}
    return {spec.env: env[spec.env]}


_MISSING = object()


def _lookup(data: Mapping[str, Any], dotted: str) -> object:
    """``data["a"]["b"]`` for ``"a.b"``; ``_MISSING`` when any step is absent."""
    if dotted in data:
        return data[dotted]
    node: object = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _check(spec: _Spec, raw: object, origin: str) -> object:
    try:
        return spec.kind.parse(raw)
    except _Invalid as exc:
        if exc.detail:
            raise ConfigError(f"{origin} is invalid: {exc.detail}") from None
        raise ConfigError(f"{origin}={raw!r} is invalid: expected {spec.kind.expected}") from None


def _config_path(root: Path, env: Mapping[str, str]) -> Path | None:
    named = env.get(CONFIG_FILE_VARIABLE, "").strip()
    if named:
        path = root / Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_FILE_VARIABLE}={named!r} is invalid: {path} is not a file "
                f"(expected a .toml or .json config file; relative paths start at {root})"
            )
        return path
    for name in CONFIG_FILE_NAMES:
        if (root / name).is_file():
            return root / name
    return None


def _read_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The ``runtime_upgrade`` table of a JSON or TOML file, and warnings for unknown keys."""
    document = _parse_file(path, _read_text(path))
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a table with a {ROOT_KEY!r} table at the top")
    warnings = [
        f"{path}: unknown key {key!r} (ignored; settings live under {ROOT_KEY!r})"
        for key in document
        if key != ROOT_KEY
    ]
    table = document.get(ROOT_KEY, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {ROOT_KEY!r} must be a table, got {table!r}")
    _warn_unknown(path, table, "", warnings)
    return table, warnings


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _parse_file(path: Path, text: str) -> object:
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(toml_error_message(path, text, exc)) from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    raise ConfigError(
        f"{path}: unsupported config file type {path.suffix!r} (allowed: .toml, .json)"
    )


def _warn_unknown(path: Path, table: Mapping[str, Any], prefix: str, warnings: list[str]) -> None:
    """Warn once per unknown key; the seed's file has many keys that are not ours."""
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if dotted in _FILE_KEYS:
            continue
        if any(known.startswith(f"{dotted}.") for known in _FILE_KEYS):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path}: {ROOT_KEY}.{dotted} must be a table, got {value!r}")
            _warn_unknown(path, value, f"{dotted}.", warnings)
            continue
        warnings.append(f"{path}: unknown key '{ROOT_KEY}.{dotted}' (ignored)")


# ---------------------------------------------------------------------------- describing


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe_settings(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(field, value, environment variable, source) per setting; source is env, file,
    default or override."""
    return [
        (
            spec.name,
            _show(getattr(settings, spec.name)),
            spec.env or "",
            settings.sources.get(spec.name, "default"),
        )
        for spec in _SPECS
    ]


def origin(settings: Settings, name: str) -> str:
    """Where a setting's value came from, in words a user can act on."""
    spec = _BY_NAME[name]
    value = _show(getattr(settings, name))
    source = settings.sources.get(name, "default")
    if source == "env":
        return f"{spec.env}={value}"
    if source == "file":
        return f"{spec.file_key} = {value} in {settings.config_file}"
    return f"{name} = {value} ({source})"


def settings_reference() -> list[dict[str, str]]:
    """One row per setting for the configuration reference in the docs."""
    defaults = Settings()
    return [
        {
            "name": spec.name,
            "env": spec.env or "",
            "file_key": f"{ROOT_KEY}.{spec.file_key}",
            "type": spec.kind.expected,
            "default": _show(getattr(defaults, spec.name)),
            "description": spec.description,
        }
        for spec in _SPECS
    ]


def setting_names() -> tuple[str, ...]:
    """The settings ``load_settings`` reads (the override keywords)."""
    return tuple(spec.name for spec in _SPECS)


def _check_table_matches_settings() -> None:
    # The table and the dataclass must list the same settings; fail at import, not in use.
    declared = {f.name for f in fields(Settings)} - {"config_file", "warnings", "sources"}
    if declared != set(_BY_NAME):
        raise RuntimeError(f"config table and Settings disagree: {declared ^ set(_BY_NAME)}")


_check_table_matches_settings()
