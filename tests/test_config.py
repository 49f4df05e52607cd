"""Runtime settings: overrides > NOODLE_* environment > config file > defaults."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from noodle_upgrade.config import (
    Settings,
    describe_settings,
    load_settings,
    setting_names,
    settings_reference,
)
from noodle_upgrade.errors import ConfigError
from noodle_upgrade.models import ValidationLevel

# The structure seed 002 documents for runtime_upgrade_config.json, as a user would copy it.
SEED_CONFIG = {
    "runtime_upgrade": {
        "enabled": True,
        "hot_swap": {
            "enabled": True,
            "max_concurrent_swaps": 3,
            "swap_timeout": 30,
            "retry_attempts": 3,
            "retry_delay": 5.0,
        },
        "rollback": {
            "enabled": True,
            "max_rollback_points": 10,
            "rollback_retention_days": 30,
            "automatic_rollback": {"enabled": False, "trigger_threshold": 0.5},
        },
        "validation": {"level": "strict", "pre_upgrade_checks": True},
        "components": {"registry_path": "runtime_components", "auto_discovery": True},
        "strategies": {
            "default_strategy": "gradual",
            "strategy_configs": {
                "immediate": {"timeout": 60, "rollback_on_failure": True},
                "gradual": {"timeout": 300, "rollback_percentage": 10},
                "blue_green": {"timeout": 600, "switchback_delay": 30},
                "canary": {
                    "initial_percentage": 5,
                    "increment_percentage": 5,
                    "max_percentage": 50,
                },
                "rolling": {"batch_size": 10, "batch_delay": 60},
            },
        },
        "monitoring": {"enabled": True, "alert_thresholds": {"error_rate": 0.05}},
    }
}


def write_toml(root: Path, text: str, name: str = "runtime_upgrade_config.toml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def write_json(root: Path, data: object, name: str = "runtime_upgrade_config.json") -> Path:
    path = root / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- defaults


def test_no_file_and_no_environment_gives_every_default(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})

    assert settings == Settings()
    assert settings.runtime_upgrade_enabled is True
    assert settings.hot_swap_enabled is True
    assert settings.swap_timeout == 30.0
    assert settings.upgrade_timeout == 300.0
    assert settings.rollback_enabled is True
    assert settings.max_rollback_points == 10
    assert settings.validation_level is ValidationLevel.STRICT
    assert settings.auto_upgrade_approval is False
    assert settings.gradual_rollout_percentage == 10.0
    assert settings.default_strategy == "immediate"
    assert settings.strategy_configs == {}
    assert settings.max_concurrent_upgrades == 3
    assert settings.decision_threshold == 0.8
    assert settings.operation_switch_interval == 0.0
    assert settings.triggers_enabled is False
    assert settings.trigger_interval == 30.0
    assert settings.trigger_window == 2.0
    assert settings.control_enabled is True
    assert settings.log_level == "INFO"
    assert settings.config_file is None
    assert settings.warnings == ()
    assert {source for *_, source in describe_settings(settings)} == {"default"}


def test_unrelated_noodle_variables_are_ignored(tmp_path: Path) -> None:
    environ = {"NOODLE_DEBUG": "banana", "NOODLE_COMPILER_UPGRADE_TIMEOUT": "-1"}

    assert load_settings(tmp_path, environ=environ) == Settings()


def test_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={"NOODLE_LOG_LEVEL": "", "NOODLE_SWAP_TIMEOUT": " "})

    assert settings.log_level == "INFO"
    assert settings.swap_timeout == 30.0


# ---------------------------------------------------------------------------- environment


def test_every_setting_is_read_from_its_variable(tmp_path: Path) -> None:
    environ = {
        "NOODLE_RUNTIME_UPGRADE_ENABLED": "0",
        "NOODLE_HOT_SWAP_ENABLED": "false",
        "NOODLE_SWAP_TIMEOUT": "2.5",
        "NOODLE_UPGRADE_TIMEOUT": "600",
        "NOODLE_ROLLBACK_ENABLED": "off",
        "NOODLE_MAX_ROLLBACK_POINTS": "4",
        "NOODLE_UPGRADE_VALIDATION_LEVEL": "Permissive",
        "NOODLE_AUTO_UPGRADE_APPROVAL": "yes",
        "NOODLE_GRADUAL_ROLLOUT_PERCENTAGE": "25",
        "NOODLE_DEFAULT_STRATEGY": "canary",
        "NOODLE_MAX_CONCURRENT_UPGRADES": "1",
        "NOODLE_AI_UPGRADE_DECISION_THRESHOLD": "0.5",
        "NOODLE_OPERATION_SWITCH_INTERVAL": "0.001",
        "NOODLE_RUNTIME_UPGRADE_TRIGGERS": "1",
        "NOODLE_TRIGGER_INTERVAL": "5",
        "NOODLE_TRIGGER_WINDOW": "0.5",
        "NOODLE_CONTROL": "no",
        "NOODLE_CONTROL_TRANSPORT": "TCP",
        "NOODLE_WATCH": "0",
        "NOODLE_POLICY_CHECK_INTERVAL": "0.25",
        "NOODLE_LOG_LEVEL": "debug",
    }

    settings = load_settings(tmp_path, environ=environ)

    assert settings == Settings(
        runtime_upgrade_enabled=False,
        hot_swap_enabled=False,
        swap_timeout=2.5,
        upgrade_timeout=600.0,
        rollback_enabled=False,
        max_rollback_points=4,
        validation_level=ValidationLevel.PERMISSIVE,
        auto_upgrade_approval=True,
        gradual_rollout_percentage=25.0,
        default_strategy="canary",
        strategy_configs={"gradual": {"initial_percentage": 25.0}},
        max_concurrent_upgrades=1,
        decision_threshold=0.5,
        operation_switch_interval=0.001,
        triggers_enabled=True,
        trigger_interval=5.0,
        trigger_window=0.5,
        control_enabled=False,
        control_transport="tcp",
        watch_enabled=False,
        policy_check_interval=0.25,
        log_level="DEBUG",
    )
    assert {source for *_, source in describe_settings(settings)} == {"env"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
    ],
)
def test_boolean_spellings(tmp_path: Path, text: str, expected: bool) -> None:
    settings = load_settings(tmp_path, environ={"NOODLE_HOT_SWAP_ENABLED": text})

    assert settings.hot_swap_enabled is expected


def test_invalid_validation_level_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={"NOODLE_UPGRADE_VALIDATION_LEVEL": "extreme"})

    assert str(caught.value) == (
        "NOODLE_UPGRADE_VALIDATION_LEVEL='extreme' is invalid: "
        "expected one of strict, normal, permissive"
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "NOODLE_HOT_SWAP_ENABLED",
            "maybe",
            "expected a boolean (1/0, true/false, yes/no, on/off)",
        ),
        ("NOODLE_RUNTIME_UPGRADE_ENABLED", "2", "expected a boolean"),
        ("NOODLE_SWAP_TIMEOUT", "0", "expected a number > 0"),
        ("NOODLE_SWAP_TIMEOUT", "soon", "expected a number > 0"),
        ("NOODLE_UPGRADE_TIMEOUT", "inf", "expected a number > 0"),
        ("NOODLE_UPGRADE_TIMEOUT", "nan", "expected a number > 0"),
        ("NOODLE_MAX_ROLLBACK_POINTS", "0", "expected an integer ≥ 1"),
        ("NOODLE_MAX_ROLLBACK_POINTS", "2.5", "expected an integer ≥ 1"),
        ("NOODLE_GRADUAL_ROLLOUT_PERCENTAGE", "0", "expected a number in (0, 100]"),
        ("NOODLE_GRADUAL_ROLLOUT_PERCENTAGE", "100.5", "expected a number in (0, 100]"),
        ("NOODLE_DEFAULT_STRATEGY", "big_bang", "expected one of immediate, gradual, canary"),
        ("NOODLE_MAX_CONCURRENT_UPGRADES", "-3", "expected an integer ≥ 1"),
        ("NOODLE_AI_UPGRADE_DECISION_THRESHOLD", "1.5", "expected a number in [0, 1]"),
        ("NOODLE_LOG_LEVEL", "TRACE", "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_invalid_variables_name_variable_value_and_allowed(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={variable: value})

    assert str(caught.value).startswith(f"{variable}={value!r} is invalid: {expected}")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NOODLE_GRADUAL_ROLLOUT_PERCENTAGE", "100"),
        ("NOODLE_AI_UPGRADE_DECISION_THRESHOLD", "0"),
        ("NOODLE_AI_UPGRADE_DECISION_THRESHOLD", "1"),
        ("NOODLE_SWAP_TIMEOUT", "0.001"),
    ],
)
def test_range_limits_that_are_allowed(tmp_path: Path, variable: str, value: str) -> None:
    settings = load_settings(tmp_path, environ={variable: value})

    assert [row[3] for row in describe_settings(settings) if row[2] == variable] == ["env"]


def test_variables_are_read_from_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOODLE_MAX_ROLLBACK_POINTS", "7")

    assert load_settings(tmp_path).max_rollback_points == 7


# ---------------------------------------------------------------------------- config file


def test_toml_file_values_are_read(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
        [runtime_upgrade]
        enabled = false
        upgrade_timeout = 120
        auto_upgrade_approval = true
        decision_threshold = 0.9
        log_level = "warning"

        [runtime_upgrade.hot_swap]
        enabled = false
        swap_timeout = 5
        max_concurrent_swaps = 2
        operation_switch_interval = 0.0005

        [runtime_upgrade.rollback]
        enabled = false
        max_rollback_points = 3

        [runtime_upgrade.validation]
        level = "normal"

        [runtime_upgrade.control]
        enabled = false
        transport = "unix"

        [runtime_upgrade.watch]
        enabled = false
        policy_check_interval = 2

        [runtime_upgrade.triggers]
        enabled = true
        interval = 10
        window = 1

        [runtime_upgrade.strategies]
        default_strategy = "blue_green"

        [runtime_upgrade.strategies.strategy_configs.gradual]
        initial_percentage = 20

        [runtime_upgrade.strategies.strategy_configs.canary]
        initial_percentage = 1
        latency_factor = 2.0
        """,
    )

    settings = load_settings(tmp_path, environ={})

    assert settings == Settings(
        runtime_upgrade_enabled=False,
        hot_swap_enabled=False,
        swap_timeout=5.0,
        upgrade_timeout=120.0,
        rollback_enabled=False,
        max_rollback_points=3,
        validation_level=ValidationLevel.NORMAL,
        auto_upgrade_approval=True,
        gradual_rollout_percentage=20.0,
        default_strategy="blue_green",
        strategy_configs={
            "gradual": {"initial_percentage": 20},
            "canary": {"initial_percentage": 1, "latency_factor": 2.0},
        },
        max_concurrent_upgrades=2,
        decision_threshold=0.9,
        operation_switch_interval=0.0005,
        triggers_enabled=True,
        trigger_interval=10.0,
        trigger_window=1.0,
        control_enabled=False,
        control_transport="unix",
        watch_enabled=False,
        policy_check_interval=2.0,
        log_level="WARNING",
        config_file=path,
    )
    assert {source for *_, source in describe_settings(settings)} == {"file"}


def test_seed_json_file_loads_and_warns_about_keys_we_do_not_use(tmp_path: Path) -> None:
    path = write_json(tmp_path, SEED_CONFIG)

    settings = load_settings(tmp_path, environ={})

    assert settings.config_file == path
    assert settings.default_strategy == "gradual"
    assert settings.swap_timeout == 30.0
    assert settings.strategy_configs["canary"]["max_percentage"] == 50
    assert settings.gradual_rollout_percentage == 10.0  # the seed's gradual has no initial_%
    assert set(settings.warnings) == {
        f"{path}: unknown key 'runtime_upgrade.{key}' (ignored)"
        for key in [
            "hot_swap.retry_attempts",
            "hot_swap.retry_delay",
            "rollback.rollback_retention_days",
            "rollback.automatic_rollback",
            "validation.pre_upgrade_checks",
            "components",
            "monitoring",
        ]
    }


def test_unknown_top_level_keys_are_warnings(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"self_improvement": {"enabled": True}, "runtime_upgrade": {}})

    settings = load_settings(tmp_path, environ={})

    assert settings.warnings == (
        f"{path}: unknown key 'self_improvement' (ignored; settings live under 'runtime_upgrade')",
    )


def test_toml_file_is_preferred_over_json(tmp_path: Path) -> None:
    toml_path = write_toml(tmp_path, "[runtime_upgrade]\nupgrade_timeout = 1\n")
    write_json(tmp_path, {"runtime_upgrade": {"upgrade_timeout": 2}})

    settings = load_settings(tmp_path, environ={})

    assert settings.config_file == toml_path
    assert settings.upgrade_timeout == 1.0


def test_config_file_variable_is_relative_to_the_project(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    write_toml(tmp_path, "[runtime_upgrade]\nupgrade_timeout = 1\n")
    chosen = write_json(tmp_path / "conf", {"runtime_upgrade": {"upgrade_timeout": 9}}, "x.json")

    settings = load_settings(tmp_path, environ={"NOODLE_CONFIG_FILE": "conf/x.json"})

    assert settings.config_file == chosen
    assert settings.upgrade_timeout == 9.0


def test_missing_config_file_named_by_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={"NOODLE_CONFIG_FILE": "nope.toml"})

    assert str(caught.value).startswith(
        f"NOODLE_CONFIG_FILE='nope.toml' is invalid: {tmp_path}/nope.toml is not a file"
    )


def test_unsupported_config_file_type(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("runtime_upgrade: {}\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"settings\.yaml: unsupported config file type '\.yaml'"):
        load_settings(tmp_path, environ={"NOODLE_CONFIG_FILE": "settings.yaml"})


def test_invalid_file_value_names_file_key_value_and_allowed(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"runtime_upgrade": {"hot_swap": {"swap_timeout": -5}}})

    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})

    assert str(caught.value) == (
        f"{path}: runtime_upgrade.hot_swap.swap_timeout=-5 is invalid: expected a number > 0"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"enabled": "sometimes"}, "runtime_upgrade.enabled='sometimes' is invalid"),
        ({"enabled": 2}, "runtime_upgrade.enabled=2 is invalid: expected a boolean"),
        ({"rollback": {"max_rollback_points": 2.5}}, "max_rollback_points=2.5 is invalid"),
        ({"rollback": {"max_rollback_points": True}}, "max_rollback_points=True is invalid"),
        ({"log_level": 10}, "runtime_upgrade.log_level=10 is invalid: expected one of DEBUG"),
        ({"hot_swap": True}, "runtime_upgrade.hot_swap must be a table, got True"),
        (
            {"strategies": {"strategy_configs": {"big_bang": {}}}},
            "strategy_configs is invalid: unknown strategy 'big_bang' (allowed: immediate,",
        ),
        (
            {"strategies": {"strategy_configs": {"canary": {"steps": [5, 10]}}}},
            "strategy_configs is invalid: canary.steps=[5, 10]: expected a number, boolean or",
        ),
        (
            {"strategies": {"strategy_configs": {"canary": 5}}},
            "strategy_configs is invalid: 'canary': expected a table of parameters, got 5",
        ),
        (
            {"strategies": {"strategy_configs": {"gradual": {"initial_percentage": 0}}}},
            "gradual.initial_percentage=0 is invalid: expected a number in (0, 100]",
        ),
    ],
)
def test_invalid_file_values(tmp_path: Path, data: dict[str, object], expected: str) -> None:
    path = write_json(tmp_path, {"runtime_upgrade": data})

    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})

    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_file_values_are_validated_even_when_a_variable_wins(tmp_path: Path) -> None:
    write_toml(tmp_path, '[runtime_upgrade.validation]\nlevel = "extreme"\n')

    with pytest.raises(ConfigError, match=r"runtime_upgrade\.validation\.level='extreme'"):
        load_settings(tmp_path, environ={"NOODLE_UPGRADE_VALIDATION_LEVEL": "normal"})


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "runtime_upgrade_config.json"
    path.write_text('{\n  "runtime_upgrade": {\n    "enabled": tru\n  }\n}\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})

    assert str(caught.value).startswith(f"{path}:3:16: invalid JSON: ")


def test_invalid_toml_gives_line_and_column(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[runtime_upgrade]\nenabled = yes\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})

    assert str(caught.value).startswith(f"{path}:2:11: invalid TOML: ")


def test_config_file_must_hold_a_table(tmp_path: Path) -> None:
    write_json(tmp_path, [1, 2])

    with pytest.raises(ConfigError, match=r"expected a table with a 'runtime_upgrade' table"):
        load_settings(tmp_path, environ={})


# ---------------------------------------------------------------------------- precedence


def test_environment_beats_file_beats_default(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        """
        [runtime_upgrade]
        upgrade_timeout = 100

        [runtime_upgrade.hot_swap]
        swap_timeout = 10
        """,
    )

    settings = load_settings(tmp_path, environ={"NOODLE_SWAP_TIMEOUT": "20"})

    assert settings.swap_timeout == 20.0  # env over file
    assert settings.upgrade_timeout == 100.0  # file over default
    assert settings.max_rollback_points == 10  # default
    sources = {row[0]: row[3] for row in describe_settings(settings)}
    assert sources["swap_timeout"] == "env"
    assert sources["upgrade_timeout"] == "file"
    assert sources["max_rollback_points"] == "default"


def test_overrides_beat_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        environ={"NOODLE_SWAP_TIMEOUT": "20", "NOODLE_LOG_LEVEL": "ERROR"},
        overrides={"swap_timeout": 1, "log_level": None},
    )

    assert settings.swap_timeout == 1.0
    assert settings.log_level == "ERROR"  # a None override means "not given"
    sources = {row[0]: row[3] for row in describe_settings(settings)}
    assert sources["swap_timeout"] == "override"
    assert sources["log_level"] == "env"


def test_overrides_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={}, overrides={"default_strategy": "yolo"})

    assert str(caught.value) == (
        "override default_strategy='yolo' is invalid: "
        "expected one of immediate, gradual, canary, blue_green, rolling, shadow"
    )


def test_unknown_override_lists_the_allowed_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={}, overrides={"swap_timeot": 3})

    message = str(caught.value)
    assert message.startswith("unknown setting 'swap_timeot' in overrides (allowed: ")
    assert "swap_timeout" in message
    assert "config_file" not in message


def test_gradual_percentage_from_environment_reaches_strategy_configs(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        """
        [runtime_upgrade.strategies.strategy_configs.gradual]
        initial_percentage = 20
        timeout = 300
        """,
    )

    settings = load_settings(tmp_path, environ={"NOODLE_GRADUAL_ROLLOUT_PERCENTAGE": "40"})

    assert settings.gradual_rollout_percentage == 40.0
    assert settings.strategy_configs["gradual"] == {"initial_percentage": 40.0, "timeout": 300}


# ---------------------------------------------------------------------------- reference


def test_reference_lists_every_setting_with_its_variable_and_default() -> None:
    rows = {row["name"]: row for row in settings_reference()}

    assert set(rows) == set(setting_names())
    assert rows["validation_level"] == {
        "name": "validation_level",
        "env": "NOODLE_UPGRADE_VALIDATION_LEVEL",
        "file_key": "runtime_upgrade.validation.level",
        "type": "one of strict, normal, permissive",
        "default": "strict",
        "description": rows["validation_level"]["description"],
    }
    assert rows["strategy_configs"]["env"] == ""
    assert rows["auto_upgrade_approval"]["default"] == "false"
    assert all(row["description"] for row in rows.values())


def test_every_seed_variable_we_support_is_in_the_reference() -> None:
    variables = {row["env"] for row in settings_reference()}

    assert {
        "NOODLE_RUNTIME_UPGRADE_ENABLED",
        "NOODLE_HOT_SWAP_ENABLED",
        "NOODLE_UPGRADE_TIMEOUT",
        "NOODLE_ROLLBACK_ENABLED",
        "NOODLE_UPGRADE_VALIDATION_LEVEL",
        "NOODLE_AUTO_UPGRADE_APPROVAL",
        "NOODLE_GRADUAL_ROLLOUT_PERCENTAGE",
        "NOODLE_MAX_CONCURRENT_UPGRADES",
        "NOODLE_AI_UPGRADE_DECISION_THRESHOLD",
        "NOODLE_LOG_LEVEL",
    } <= variables
