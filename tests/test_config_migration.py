"""Config file migrations: the declaration in component.toml, the path, the operations.

The pure part of ``[component.config]``: reading the declaration (errors name the file and
line), choosing each step's migration along an upgrade path, and applying rename, add,
remove and transform to a dict. The runtime side is in test_runtime_config_migration.py.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from helpers.component_config import declare_config
from helpers.project import Project, greeter_source
from noodle_upgrade.engine.config_migration import (
    ConfigDeclaration,
    ConfigMigration,
    apply_migration,
    migrate_config,
    plan_config,
)
from noodle_upgrade.engine.manifest import load_component_manifest
from noodle_upgrade.errors import ConfigError, ManifestError
from noodle_upgrade.models import ComponentDescriptor

WHERE = "config migration of parser 1.0.0 -> 1.1.0 (config/parser.toml)"


def apply(config: dict[str, Any], hook: Any = None, **operations: Any) -> dict[str, Any]:
    """Apply one migration of ``operations``; ``hook`` is its resolved transform."""
    return apply_migration(config, ConfigMigration(**operations), "1.0.0", hook, WHERE)


def failure(config: dict[str, Any], **operations: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        apply(config, **operations)
    assert raised.value.code == "config-migration-failed"
    return raised.value.message


# ---------------------------------------------------------------------------- the operations


def test_rename_keeps_the_value_under_the_new_name() -> None:
    assert apply({"old_name": [1, 2], "other": "x"}, rename=(("old_name", "new_name"),)) == {
        "new_name": [1, 2],
        "other": "x",
    }


def test_dotted_keys_reach_into_tables_and_create_the_ones_missing() -> None:
    config = {"limits": {"depth": 3, "width": 9}}

    migrated = apply(config, rename=(("limits.depth", "bounds.depth.max"),))

    assert migrated == {"limits": {"width": 9}, "bounds": {"depth": {"max": 3}}}


def test_a_key_the_file_does_not_have_is_not_renamed_or_removed() -> None:
    config = {"new_name": 1, "limits": 5}

    migrated = apply(
        config,
        rename=(("old_name", "new_name"), ("limits.depth", "depth")),
        remove=("gone", "limits.width"),
    )

    assert migrated == config  # renamed by hand already; 'limits' is no table to look into


def test_rename_onto_a_key_the_file_has_fails_naming_both_keys_and_where() -> None:
    message = failure({"old_name": 1, "new_name": 2}, rename=(("old_name", "new_name"),))

    assert message.startswith(f"{WHERE}: rename 'old_name' -> 'new_name': the file has both")


def test_add_sets_absent_keys_only_and_never_overwrites_what_the_user_set() -> None:
    config = {"kept": False, "limits": {"depth": 3}}

    migrated = apply(
        config,
        add=(("kept", True), ("new_setting", {"a": [1]}), ("limits.depth", 10), ("limits.w", 4)),
    )

    assert migrated == {
        "kept": False,
        "new_setting": {"a": [1]},
        "limits": {"depth": 3, "w": 4},
    }


def test_add_or_rename_through_a_value_that_is_not_a_table_fails() -> None:
    assert "'limits' is 5, not a table, so 'limits.depth' cannot be set" in failure(
        {"limits": 5}, add=(("limits.depth", 1),)
    )
    assert "rename 'a' -> 'b.c': 'b' is 'x', not a table" in failure(
        {"a": 1, "b": "x"}, rename=(("a", "b.c"),)
    )


def test_remove_deletes_keys_at_any_depth() -> None:
    config = {"deprecated_setting": 1, "limits": {"old": 2, "depth": 3}}

    migrated = apply(config, remove=("deprecated_setting", "limits.old"))

    assert migrated == {"limits": {"depth": 3}}


def test_operations_run_in_the_order_rename_add_remove_transform() -> None:
    seen: list[dict[str, Any]] = []

    def transform(config: dict[str, Any], from_version: str) -> dict[str, Any]:
        seen.append(copy.deepcopy(config))
        return {**config, "from": from_version}

    migrated = apply(
        {"a": 1, "c": 3},
        transform,
        rename=(("a", "b"),),
        add=(("b", 99), ("d", 4)),  # 'b' exists once renamed: the add is only a default
        remove=("c",),
        transform="parser:migrate_config",
    )

    assert seen == [{"b": 1, "d": 4}]
    assert migrated == {"b": 1, "d": 4, "from": "1.0.0"}


def test_an_add_of_the_new_name_is_the_default_when_the_old_one_was_absent() -> None:
    assert apply({}, rename=(("a", "b"),), add=(("b", 0),)) == {"b": 0}


def test_the_input_is_never_changed_even_by_a_transform_that_edits_in_place() -> None:
    config = {"limits": {"depth": 3}, "list": [1]}
    before = copy.deepcopy(config)

    def transform(edited: dict[str, Any], _: str) -> dict[str, Any]:
        edited["limits"]["depth"] = 0
        edited["list"].append(2)
        return edited

    apply(config, transform, rename=(("limits.depth", "depth"),), transform="p:t")
    apply(config, transform, transform="p:t")

    assert config == before


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (RuntimeError("no depth"), "transform hook 'p:t' raised RuntimeError: no depth"),
        (["a"], "transform hook 'p:t' returned list, expected the config as a dict"),
        ({1: "a"}, "transform hook 'p:t' returned a dict with non-string keys [1]"),
    ],
    ids=["raises", "not-a-dict", "non-string-keys"],
)
def test_a_transform_that_fails_is_named_with_its_error(returned: object, expected: str) -> None:
    def transform(config: dict[str, Any], from_version: str) -> object:
        if isinstance(returned, Exception):
            raise returned
        return returned

    with pytest.raises(ConfigError) as raised:
        apply({"a": 1}, transform, transform="p:t")

    assert raised.value.message == f"{WHERE}: {expected}"
    assert raised.value.code == "config-migration-failed"


# ---------------------------------------------------------------------------- along a path


def descriptor(version: str, config: ConfigDeclaration | None) -> ComponentDescriptor:
    return ComponentDescriptor(
        name="parser", version=Version(version), entry="parser", folder=Path(version), config=config
    )


def declaration(*migrations: ConfigMigration, **fields: Any) -> ConfigDeclaration:
    return ConfigDeclaration(
        file=fields.pop("file", "config/parser.toml"), migrations=migrations, **fields
    )


def test_each_step_applies_its_own_migration_in_order() -> None:
    path = [
        descriptor("1.1.0", declaration(ConfigMigration(rename=(("a", "b"),), transform="p:t"))),
        descriptor("1.2.0", None),  # declares nothing: its step changes nothing
        descriptor("2.0.0", declaration(ConfigMigration(rename=(("b", "c"),), transform="p:t"))),
    ]
    plan = plan_config(Version("1.0.0"), path)
    assert plan is not None
    calls: list[tuple[str, str]] = []

    def recorder(version: str) -> Any:
        def transform(config: dict[str, Any], from_version: str) -> dict[str, Any]:
            calls.append((from_version, version))
            return {**config, "steps": [*config.get("steps", []), version]}

        return transform

    migrated = migrate_config(
        plan,
        {"a": 1},
        {Version(v): recorder(v) for v in ("1.1.0", "2.0.0")},
        validate=None,
    )

    assert [(str(s.from_version), str(s.version)) for s in plan.steps] == [
        ("1.0.0", "1.1.0"),
        ("1.2.0", "2.0.0"),
    ]
    assert calls == [("1.0.0", "1.1.0"), ("1.2.0", "2.0.0")]
    assert migrated == {"c": 1, "steps": ["1.1.0", "2.0.0"]}


def test_a_migration_from_the_exact_version_wins_over_the_general_one() -> None:
    general = ConfigMigration(add=(("general", True),))
    exact = ConfigMigration(from_version=Version("1.0.5"), add=(("exact", True),))
    target = descriptor("1.1.0", declaration(general, exact))

    for start, chosen in (("1.0.5", exact), ("1.0.0", general)):
        plan = plan_config(Version(start), [target])
        assert plan is not None and [step.migration for step in plan.steps] == [chosen]
    only_exact = descriptor("1.1.0", declaration(exact))
    plan = plan_config(Version("1.0.0"), [only_exact])
    assert plan is not None and plan.steps == ()  # still checked: required, validate


def test_a_path_without_any_config_declaration_has_no_plan() -> None:
    assert plan_config(Version("1.0.0"), [descriptor("1.1.0", None)]) is None


def test_the_versions_on_a_path_must_declare_the_same_file() -> None:
    path = [descriptor("1.1.0", declaration()), descriptor("2.0.0", declaration(file="b.json"))]

    with pytest.raises(ConfigError) as raised:
        plan_config(Version("1.0.0"), path)

    assert raised.value.code == "config-migration-failed"
    assert "parser 1.1.0 declares config file 'config/parser.toml', 2.0.0 'b.json'" in (
        raised.value.message
    )


def test_the_target_judges_the_result_with_required_and_validate() -> None:
    target = descriptor(
        "1.1.0", declaration(required=("max_depth", "limits.depth", "name"), validate="p:check")
    )
    plan = plan_config(Version("1.0.0"), [target])
    assert plan is not None
    given: list[dict[str, Any]] = []

    def reject(config: dict[str, Any]) -> None:
        given.append(config)
        config.clear()  # a copy: the migrated config is not the hook's to change
        raise ValueError("max_depth must be positive")

    with pytest.raises(ConfigError) as missing:
        migrate_config(plan, {"limits": {}, "name": "x"}, {}, None)
    with pytest.raises(ConfigError) as rejected:
        migrate_config(plan, {"max_depth": 0, "limits": {"depth": 1}, "name": "x"}, {}, reject)

    where = "config of parser 1.1.0 (config/parser.toml)"
    assert missing.value.message.startswith(
        f"{where}: required keys 'max_depth', 'limits.depth' missing after migration"
    )
    assert rejected.value.message == (
        f"{where}: rejected by validate hook 'p:check': ValueError: max_depth must be positive"
    )
    assert given == [{}]
    assert {missing.value.code, rejected.value.code} == {"config-migration-failed"}


# ---------------------------------------------------------------------------- component.toml

DECLARED = """
[component.config]
file = "config/parser.toml"
required = ["max_depth", "limits.depth"]
validate = "parser:validate_config"

[[component.config.migrations]]
from = "1.0.0"
rename = { old_name = "new_name", limits.depth = "limits.max_depth" }
add = { new_setting = true, "limits.width" = 3, tables = { a = { b = 1 } }, empty = {} }
remove = ["deprecated_setting"]
transform = "parser:migrate_config"

[[component.config.migrations]]
remove = ["legacy"]
"""


def test_the_declaration_is_read_with_dotted_keys_in_every_spelling(project: Project) -> None:
    folder = declare_config(project, "parser", "1.1.0", greeter_source("1.1.0"), DECLARED)

    config = load_component_manifest(folder).config

    assert config == ConfigDeclaration(
        file="config/parser.toml",
        required=("max_depth", "limits.depth"),
        validate="parser:validate_config",
        migrations=(
            ConfigMigration(
                from_version=Version("1.0.0"),
                rename=(("old_name", "new_name"), ("limits.depth", "limits.max_depth")),
                add=(("new_setting", True), ("limits.width", 3), ("tables.a.b", 1), ("empty", {})),
                remove=("deprecated_setting",),
                transform="parser:migrate_config",
            ),
            ConfigMigration(remove=("legacy",)),
        ),
    )


def test_a_manifest_without_config_declares_none(project: Project) -> None:
    assert load_component_manifest(project.add("p", "1.0.0", greeter_source("1"))).config is None


def test_unknown_keys_of_the_config_table_are_warnings_with_their_line(project: Project) -> None:
    folder = declare_config(
        project,
        "parser",
        "1.1.0",
        greeter_source("1.1.0"),
        '[component.config]\nfile = "a.json"\nrequird = []\n',
    )

    descriptor = load_component_manifest(folder)

    assert descriptor.config == ConfigDeclaration(file="a.json")
    line = project.manifest("parser", "1.1.0").read_text().splitlines().index("requird = []") + 1
    assert descriptor.warnings == (
        f"{folder / 'component.toml'}:{line}: unknown key 'requird' (ignored; did you mean "
        "'required'?)",
    )


MIGRATION = "[component.config]\nfile = 'c.toml'\n\n[[component.config.migrations]]\n"
SECOND = "\n[[component.config.migrations]]\n"
ERRORS = {
    "unknown-operation": (
        MIGRATION + "from = '1.0.0'\nrenam = { a = 'b' }\n",
        "renam = ",
        "unknown operation 'renam' in [[component.config.migrations]] (allowed: from, rename, "
        "add, remove, transform); did you mean 'rename'?",
    ),
    "unknown-operation-in-the-second-table": (
        MIGRATION + "remove = ['x']\n" + SECOND + "remove = ['y']\ndelete = ['z']\n",
        "delete = ",
        "unknown operation 'delete'",
    ),
    "rename-not-a-table": (
        MIGRATION + "rename = ['a', 'b']\n",
        "rename = ",
        "field 'rename': expected a table of old key = \"new key\"",
    ),
    "rename-to-a-number": (
        MIGRATION + "rename = { a = 1 }\n",
        "rename = ",
        "field 'rename': expected a table of old key = \"new key\"",
    ),
    "rename-to-a-bad-key": (
        MIGRATION + "rename = { a = 'b..c' }\n",
        "rename = ",
        "field 'rename': expected a table of old key",
    ),
    "add-not-a-table": (
        MIGRATION + "add = 'x'\n",
        "add = ",
        "field 'add': expected a table of key = default value",
    ),
    "remove-not-a-list": (
        MIGRATION + "remove = 'x'\n",
        "remove = ",
        "field 'remove': expected a list of keys",
    ),
    "transform-not-a-hook": (
        MIGRATION + "transform = 'migrate_config'\n",
        "transform = ",
        "field 'transform': expected 'module:function'",
    ),
    "from-not-a-version": (
        MIGRATION + "from = 'one'\n",
        "from = ",
        "field 'from': 'one' is not a valid version",
    ),
    "from-not-earlier": (
        MIGRATION + "from = '1.1.0'\nremove = ['x']\n",
        "from = ",
        "from = '1.1.0': a migration into 1.1.0 must start from an earlier version",
    ),
    "two-from-the-same-version": (
        MIGRATION + "from = '1.0'\n" + SECOND + "from = '1.0.0'\n",
        "from = '1.0.0'",
        "a second migration from 1.0.0; declare one per starting version",
    ),
    "two-general-migrations": (
        MIGRATION + "remove = ['a']\n" + SECOND + "remove = ['b']\n",
        "[[component.config.migrations]]",  # the second one's header
        "a second migration from any earlier version (no from)",
    ),
    "rename-onto-a-renamed-key": (
        MIGRATION + "rename = { a = 'b', c = 'b' }\n",
        "rename = ",
        "renames 'a' -> 'b' and 'c' -> 'b' overlap: a key takes part in one rename only",
    ),
    "rename-into-itself": (
        MIGRATION + "rename = { a = 'a.b' }\n",
        "rename = ",
        "rename 'a' -> 'a.b' moves a key into itself",
    ),
    "rename-and-remove": (
        MIGRATION + "rename = { a = 'b' }\nremove = ['b']\n",
        "remove = ",
        "'b' is removed and renamed ('a' -> 'b') by one migration",
    ),
    "add-and-remove": (
        MIGRATION + "add = { x = { y = 1 } }\nremove = ['x']\n",
        "add = ",
        "'x.y' is added and 'x' removed by one migration",
    ),
    "add-back-a-renamed-key": (
        MIGRATION + "rename = { a = 'b' }\nadd = { a = 1 }\n",
        "add = ",
        "'a' is added back after rename 'a' -> 'b' moved it away",
    ),
    "add-twice": (
        MIGRATION + "add = { 'x.y' = 1, x = { y = 2 } }\n",
        "add = ",
        "'x.y' and 'x.y' are added by one migration",
    ),
    "file-missing": (
        "[component.config]\nrequired = ['a']\n",
        "[component.config]",
        "missing required field 'file' in [component.config]",
    ),
    "file-absolute": (
        "[component.config]\nfile = '/etc/app.toml'\n",
        "file = ",
        "field 'file': expected a path relative to the project root, with '/' and without '..'",
    ),
    "file-outside-the-project": (
        "[component.config]\nfile = '../app.toml'\n",
        "file = ",
        "without '..', got '../app.toml'",
    ),
    "file-of-another-format": (
        "[component.config]\nfile = 'app.yaml'\n",
        "file = ",
        "field 'file': expected a file ending in .toml or .json, got 'app.yaml'",
    ),
    "required-not-keys": (
        "[component.config]\nfile = 'a.toml'\nrequired = 'max_depth'\n",
        "required = ",
        "field 'required': expected a list of keys, dotted into tables",
    ),
    "validate-not-a-hook": (
        "[component.config]\nfile = 'a.toml'\nvalidate = 'parser.validate'\n",
        "validate = ",
        "field 'validate': expected 'module:function'",
    ),
    "migrations-not-tables": (
        "[component.config]\nfile = 'a.toml'\nmigrations = ['x']\n",
        "migrations = ",
        "field 'migrations': expected tables [[component.config.migrations]]",
    ),
}


@pytest.mark.parametrize(("config", "at", "expected"), ERRORS.values(), ids=ERRORS.keys())
def test_a_bad_declaration_names_the_file_and_line(
    project: Project, config: str, at: str, expected: str
) -> None:
    folder = declare_config(project, "parser", "1.1.0", greeter_source("1.1.0"), config)
    lines = (folder / "component.toml").read_text().splitlines()
    line = max(number for number, text in enumerate(lines, 1) if text.startswith(at))

    with pytest.raises(ManifestError) as raised:
        load_component_manifest(folder)

    # A bad version keeps its own code, as everywhere in a manifest.
    code = "invalid-version" if "not a valid version" in expected else "manifest-error"
    assert raised.value.code == code
    message = raised.value.message
    assert message.startswith(f"{folder / 'component.toml'}:{line}: "), (line, message)
    assert expected in message


def test_config_must_be_a_table(project: Project) -> None:
    folder = project.add("parser", "1.1.0", greeter_source("1.1.0"), config="config.toml")

    with pytest.raises(ManifestError, match=re.escape("field 'config': expected a table")):
        load_component_manifest(folder)
