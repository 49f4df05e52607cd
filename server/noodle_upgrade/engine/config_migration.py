"""Migrating a component's own configuration file between versions (seed 003 §8).

A version declares in its ``component.toml`` (``[component.config]``) how a config file
written for an earlier version becomes one it can read: keys to rename, defaults to add,
keys to remove, and a ``transform`` hook for whatever those cannot say. This module is the
pure part: the declaration, which migration each step of an upgrade path applies, and
applying it to a dict. ``engine.manifest`` reads the declaration from the TOML,
``runtime.config_files`` reads and writes the file, ``runtime.transaction`` decides when.

Keys are dotted paths into nested tables (``"limits.depth"``); a key whose own name holds
a dot cannot be addressed. Within one migration the operations run in the order of
``OPERATIONS``, so an ``add`` of a renamed key's new name is the default used when the
file had neither name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from noodle_upgrade.errors import ConfigError

if TYPE_CHECKING:
    from noodle_upgrade.models import ComponentDescriptor

MIGRATION_FAILED = "config-migration-failed"
CONFIG_SUFFIXES = (".toml", ".json")
OPERATIONS = ("rename", "add", "remove", "transform")
"""The operations of one migration, in the order they are applied."""

Transform = Callable[[dict[str, Any], str], object]
"""``(config, from_version) -> config``: a version's ``transform`` hook, resolved."""
Validate = Callable[[dict[str, Any]], object]
"""``(config) -> None``, raises when the config is invalid: the ``validate`` hook."""


def is_dotted_key(text: object) -> bool:
    """``"a"`` or ``"a.b.c"``: non-empty names without surrounding blanks, joined by dots."""
    return isinstance(text, str) and all(part and part == part.strip() for part in text.split("."))


def flatten_keys(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"a": {"b": 1}, "c": {}}`` → ``("a.b", 1), ("c", {})``: nested tables as dotted keys.

    TOML spells one key three ways (``a.b = 1``, ``"a.b" = 1``, ``a = { b = 1 }``); this
    makes them one. An empty table stays a value of its own.
    """
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten_keys(value, f"{dotted}.")
        else:
            yield dotted, value


def overlap(first: str, second: str) -> bool:
    """Whether one dotted key is the other or lies inside it (``a`` and ``a.b``)."""
    a, b = first.split("."), second.split(".")
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


# ---------------------------------------------------------------------------- the declaration


@dataclass(frozen=True)
class ConfigMigration:
    """One ``[[component.config.migrations]]`` table: entering its version from another."""

    from_version: Version | None = None  # None: from any earlier version
    rename: tuple[tuple[str, str], ...] = ()  # (old key, new key)
    add: tuple[tuple[str, Any], ...] = ()  # (key, value set when the key is absent)
    remove: tuple[str, ...] = ()
    transform: str | None = None  # "module:function"

    def conflict(self) -> tuple[str, str] | None:
        """The first two operations that contradict each other: (field, why), or None."""
        arrows = [(f"'{old}' -> '{new}'", old, new) for old, new in self.rename]
        for index, (arrow, old, new) in enumerate(arrows):
            if overlap(old, new):
                return "rename", f"rename {arrow} moves a key into itself"
            for other, *keys in arrows[index + 1 :]:
                if any(overlap(mine, theirs) for mine in (old, new) for theirs in keys):
                    return "rename", (
                        f"renames {arrow} and {other} overlap: a key takes part in one rename "
                        "only (to chain renames, declare them in two versions)"
                    )
        for key in self.remove:
            for arrow, old, new in arrows:
                if overlap(key, old) or overlap(key, new):
                    return "remove", f"'{key}' is removed and renamed ({arrow}) by one migration"
        added = [key for key, _ in self.add]
        for index, key in enumerate(added):
            for other in added[index + 1 :]:
                if overlap(key, other):
                    return "add", f"'{key}' and '{other}' are added by one migration"
            for removed in self.remove:
                if overlap(key, removed):
                    return "add", f"'{key}' is added and '{removed}' removed by one migration"
            for arrow, old, _ in arrows:
                if overlap(key, old):
                    return "add", f"'{key}' is added back after rename {arrow} moved it away"
        return None


@dataclass(frozen=True)
class ConfigDeclaration:
    """``[component.config]``: the component's config file and how to migrate it."""

    file: str  # POSIX path relative to the project root, .toml or .json
    required: tuple[str, ...] = ()
    validate: str | None = None  # "module:function"
    migrations: tuple[ConfigMigration, ...] = ()

    def migration_from(self, version: Version) -> ConfigMigration | None:
        """The migration for a step from ``version``: one declared for it, else the general one."""
        exact = next((m for m in self.migrations if m.from_version == version), None)
        return exact or next((m for m in self.migrations if m.from_version is None), None)


def check_file(text: str) -> str | None:
    """What is wrong with a ``file`` value, or None: relative, inside the project, known suffix."""
    path = PurePosixPath(text)
    if not text.strip() or path.is_absolute() or ".." in path.parts or "\\" in text:
        return "a path relative to the project root, with '/' and without '..'"
    if path.suffix not in CONFIG_SUFFIXES:
        return f"a file ending in {' or '.join(CONFIG_SUFFIXES)}"
    return None


# ---------------------------------------------------------------------------- an upgrade's plan


@dataclass(frozen=True)
class ConfigStep:
    """One step of an upgrade path whose version migrates the file."""

    from_version: Version
    version: Version
    migration: ConfigMigration


@dataclass(frozen=True)
class ConfigPlan:
    """What one upgrade does to the component's config file, step by step."""

    component: str
    file: str
    target: Version
    steps: tuple[ConfigStep, ...]
    required: tuple[str, ...]  # the target's
    validate: str | None  # the target's hook


def plan_config(start: Version, path: Sequence[ComponentDescriptor]) -> ConfigPlan | None:
    """The migrations an upgrade from ``start`` along ``path`` applies, or None without any
    ``[component.config]`` on the path. ``path`` is every version walked; the last is the
    target, whose ``required`` and ``validate`` judge the result."""
    declaring = [(step, step.config) for step in path if step.config is not None]
    if not declaring:
        return None
    first, declared = declaring[0]
    for step, other in declaring[1:]:
        if other.file != declared.file:
            raise ConfigError(
                f"{first.name} {first.version} declares config file '{declared.file}', "
                f"{step.version} '{other.file}' ([component.config] file): the versions on "
                "one upgrade path must migrate the same file",
                code=MIGRATION_FAILED,
            )
    steps = []
    previous = start
    for step in path:
        migration = step.config.migration_from(previous) if step.config else None
        if migration is not None:
            steps.append(ConfigStep(previous, step.version, migration))
        previous = step.version
    target = path[-1]
    return ConfigPlan(
        component=target.name,
        file=declared.file,
        target=target.version,
        steps=tuple(steps),
        required=target.config.required if target.config else (),
        validate=target.config.validate if target.config else None,
    )


def migrate_config(
    plan: ConfigPlan,
    config: Mapping[str, Any],
    transforms: Mapping[Version, Transform],
    validate: Validate | None,
) -> dict[str, Any]:
    """Apply every step's migration in order, then check the result; ``config`` is left as
    it was. ``transforms`` holds each step version's resolved ``transform`` hook."""
    migrated = copy.deepcopy(dict(config))
    for step in plan.steps:
        where = (
            f"config migration of {plan.component} {step.from_version} -> {step.version} "
            f"({plan.file})"
        )
        hook = transforms.get(step.version)
        migrated = apply_migration(migrated, step.migration, str(step.from_version), hook, where)
    check_config(plan, migrated, validate)
    return migrated


def check_config(plan: ConfigPlan, config: dict[str, Any], validate: Validate | None) -> None:
    """The target's ``required`` keys must be there and its ``validate`` hook must accept."""
    where = f"config of {plan.component} {plan.target} ({plan.file})"
    missing = [key for key in plan.required if not has_key(config, key)]
    if missing:
        raise ConfigError(
            f"{where}: required key{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(key) for key in missing)} missing after migration "
            "([component.config] required); add a migration that sets them",
            code=MIGRATION_FAILED,
        )
    if validate is not None:
        try:
            validate(copy.deepcopy(config))
        except Exception as exc:
            raise ConfigError(
                f"{where}: rejected by validate hook {plan.validate!r}: "
                f"{type(exc).__name__}: {exc}",
                code=MIGRATION_FAILED,
            ) from exc


# ---------------------------------------------------------------------------- the operations


class _NotATable(Exception):
    """A dotted key runs through a value that is not a table."""

    def __init__(self, key: str, value: object) -> None:
        super().__init__(key)
        self.key, self.value = key, value


def _make_tables(config: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    """The table that ``parts`` names, creating the missing ones on the way."""
    table = config
    for depth, part in enumerate(parts):
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            raise _NotATable(".".join(parts[: depth + 1]), child)
        table = child
    return table


def _found(config: dict[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """(table, name) holding ``key``, or None when the config does not have it."""
    *parents, name = key.split(".")
    table: object = config
    for part in parents:
        table = table.get(part) if isinstance(table, dict) else None
    return (table, name) if isinstance(table, dict) and name in table else None


def has_key(config: dict[str, Any], key: str) -> bool:
    return _found(config, key) is not None


def _place(config: dict[str, Any], key: str, where: str, what: str) -> tuple[dict[str, Any], str]:
    """(table, name) where ``key`` goes, creating the tables on the way."""
    *parents, name = key.split(".")
    try:
        return _make_tables(config, parents), name
    except _NotATable as exc:
        raise ConfigError(
            f"{where}: {what}: '{exc.key}' is {exc.value!r}, not a table, so '{key}' cannot "
            "be set; change it by hand or in a transform hook",
            code=MIGRATION_FAILED,
        ) from None


def apply_migration(
    config: dict[str, Any],
    migration: ConfigMigration,
    from_version: str,
    transform: Transform | None,
    where: str,
) -> dict[str, Any]:
    """Apply one migration's operations, in the order of ``OPERATIONS``, to a copy of
    ``config``. ``where`` starts every error message: component, versions and file."""
    result = copy.deepcopy(config)
    for old, new in migration.rename:
        source = _found(result, old)
        if source is None:  # never set, or renamed by hand already
            continue
        table, name = _place(result, new, where, f"rename '{old}' -> '{new}'")
        if name in table:
            raise ConfigError(
                f"{where}: rename '{old}' -> '{new}': the file has both keys; keep one of "
                "them and upgrade again",
                code=MIGRATION_FAILED,
            )
        source_table, source_name = source
        table[name] = source_table.pop(source_name)
    for key, value in migration.add:
        table, name = _place(result, key, where, f"add '{key}'")
        table.setdefault(name, copy.deepcopy(value))  # never overwrite what the user set
    for key in migration.remove:
        found = _found(result, key)
        if found is not None:
            del found[0][found[1]]
    if transform is not None:
        result = _transformed(result, migration, from_version, transform, where)
    return result


def _transformed(
    config: dict[str, Any],
    migration: ConfigMigration,
    from_version: str,
    transform: Transform,
    where: str,
) -> dict[str, Any]:
    what = f"transform hook {migration.transform!r}"
    try:
        returned = transform(config, from_version)
    except Exception as exc:
        raise ConfigError(
            f"{where}: {what} raised {type(exc).__name__}: {exc}", code=MIGRATION_FAILED
        ) from exc
    if not isinstance(returned, Mapping):
        raise ConfigError(
            f"{where}: {what} returned {type(returned).__name__}, expected the config as a dict",
            code=MIGRATION_FAILED,
        )
    bad = [key for key in returned if not isinstance(key, str)]
    if bad:
        raise ConfigError(
            f"{where}: {what} returned a dict with non-string keys {bad!r}",
            code=MIGRATION_FAILED,
        )
    # A copy: the hook may have returned a module global that later steps would change.
    return copy.deepcopy(dict(returned))
