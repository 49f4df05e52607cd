"""Read ``noodle.toml``, ``component.toml`` manifests and the component store (DESIGN §3).

Reading these files is the only I/O here. Every error is one line that names the file and,
where it can be found, the line, the field and what is allowed. tomllib reports no positions
for values, so lines are found by looking for ``key =`` in the text of the right table.
"""

from __future__ import annotations

import difflib
import keyword
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from noodle_upgrade.engine.config_migration import (
    ConfigDeclaration,
    ConfigMigration,
    check_file,
    flatten_keys,
    is_dotted_key,
)
from noodle_upgrade.engine.git_tags import GitSource, TagPattern, check_path_pattern
from noodle_upgrade.engine.versions import parse_specifier, parse_version
from noodle_upgrade.errors import ConfigError, ManifestError, NoodleError, ValidationError
from noodle_upgrade.models import (
    STRATEGY_NAMES,
    BumpKind,
    ComponentDescriptor,
    ComponentType,
    Policy,
    ProjectConfig,
)

PROJECT_FILE = "noodle.toml"
MANIFEST_FILE = "component.toml"
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
NAME_RULE = "letters, digits, '_' and '-', starting with a letter or '_'"
LAYOUT = "<store>/<name>/<version>/component.toml"

# `[table]`, or `[[array]]` whose every occurrence is a table of its own.
_HEADER = re.compile(r"^\s*(?:\[\[([^\[\]]+)\]\]|\[([^\[\]]+)\])\s*(?:#.*)?$")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# ---------------------------------------------------------------------------- the source text


def toml_error_message(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """``path:line:column: invalid TOML: …`` from tomllib's message (3.11 has no attributes)."""
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position:
        reason = message[: position.start()]
        return f"{path}:{position[1]}:{position[2]}: invalid TOML: {reason}"
    if _TOML_AT_END.search(message):
        last_line = max(1, len(text.splitlines()))
        reason = _TOML_AT_END.sub("", message)
        return f"{path}:{last_line}: invalid TOML: {reason} (at end of file)"
    return f"{path}: invalid TOML: {message}"


def _table_name(header: str) -> str:
    # `[ policy."production" ]` and `[policy.production]` name the same table.
    return re.sub(r"[\s\"']", "", header)


class _Source:
    """One TOML file's text: finds lines for messages and builds errors of the right class."""

    def __init__(self, path: Path, text: str, error: type[NoodleError], qualify: bool) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.error_class = error
        # noodle.toml has several tables with the same keys ([policy.*]): name the table.
        self.qualify = qualify

    @classmethod
    def read(
        cls, path: Path, error: type[NoodleError], *, qualify: bool
    ) -> tuple[_Source, dict[str, Any]]:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise error(f"{path}: not UTF-8 text", code="manifest-error") from None
        except OSError as exc:
            raise error(f"{path}: cannot read: {exc.strerror}", code="manifest-error") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(toml_error_message(path, text, exc), code="manifest-error") from None
        return cls(path, text, error, qualify), data

    def _header_lines(self) -> list[tuple[int, str]]:
        """(line index, table name); the n-th ``[[array]]`` table is named ``array[n]``."""
        found = []
        arrays: dict[str, int] = {}
        for index, line in enumerate(self.lines):
            match = _HEADER.match(line)
            if match and match[1]:
                name = _table_name(match[1])
                arrays[name] = arrays.get(name, -1) + 1
                found.append((index, f"{name}[{arrays[name]}]"))
            elif match:
                found.append((index, _table_name(match[2])))
        return found

    def table_line(self, table: str) -> int | None:
        """Line (1-based) of ``[table]``, or of the first ``[table.sub]`` when only those exist."""
        for index, name in self._header_lines():
            if name == table or name.startswith(f"{table}."):
                return index + 1
        return None

    def key_line(self, table: str | None, key: str) -> int | None:
        """Line of ``key =`` in ``[table]`` (top level when None); anywhere as a fallback."""
        pattern = re.compile(
            rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*="""
        )
        start, end = 0, len(self.lines)
        if table is not None:
            headers = self._header_lines()
            start_line = next((i for i, name in headers if name == table), None)
            if start_line is not None:
                start = start_line + 1
                end = next((i for i, _ in headers if i > start_line), end)
        else:
            end = next((i for i, _ in self._header_lines()), end)
        for index in range(start, end):
            if pattern.match(self.lines[index]):
                return index + 1
        for index, line in enumerate(self.lines):
            if pattern.match(line):
                return index + 1
        return None

    def at(self, table: str | None, key: str | None = None) -> str:
        """``path:line`` for a key (or a table when ``key`` is None); just ``path`` if not found."""
        if key is None:
            line = self.table_line(table) if table else None
        else:
            # A top-level name may be a key or a table header (`[foo]`).
            line = (self.table_line(key) if table is None else None) or self.key_line(table, key)
        return f"{self.path}:{line}" if line else str(self.path)

    def fail(
        self, table: str | None, key: str | None, message: str, code: str = "manifest-error"
    ) -> NoReturn:
        raise self.error_class(f"{self.at(table, key)}: {message}", code=code)

    def field_name(self, table: str, key: str) -> str:
        return f"field '{key}' in [{table}]" if self.qualify else f"field '{key}'"

    def wrong(self, table: str, key: str, expected: str, value: object) -> NoReturn:
        self.fail(table, key, f"{self.field_name(table, key)}: expected {expected}, got {value!r}")

    def unknown_key(self, table: str | None, key: str, allowed: tuple[str, ...]) -> str:
        where = f" in [{table}]" if self.qualify and table else ""
        hint = "ignored"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            hint = f"ignored; did you mean '{close[0]}'?"
        elif self.qualify:
            hint = f"allowed: {', '.join(allowed)}"
        return f"{self.at(table, key)}: unknown key '{key}'{where} ({hint})"


# ---------------------------------------------------------------------------- value checks

_Check = Callable[[_Source, str, str, object], Any]
"""(source, table, key, raw value) -> checked value; raises the source's error class."""


def _string(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        src.wrong(table, key, "a string", value)
    return value


def _non_empty(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        src.wrong(table, key, "a non-empty string", value)
    return value.strip()


def _boolean(src: _Source, table: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        src.wrong(table, key, "true or false", value)
    return value


def _name(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        src.wrong(table, key, f"a component name ({NAME_RULE})", value)
    return value


def _is_dotted_identifier(text: str) -> bool:
    parts = text.split(".")
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in parts)


def _entry(src: _Source, table: str, key: str, value: object) -> str:
    module, colon, factory = value.partition(":") if isinstance(value, str) else ("", "", "")
    factory_ok = not colon or (factory.isidentifier() and not keyword.iskeyword(factory))
    if not (isinstance(value, str) and _is_dotted_identifier(module) and factory_ok):
        src.wrong(table, key, "'module' or 'module:factory' (Python identifiers)", value)
    return value


def _hook(src: _Source, table: str, key: str, value: object) -> str:
    module, colon, function = value.partition(":") if isinstance(value, str) else ("", "", "")
    function_ok = function.isidentifier() and not keyword.iskeyword(function)
    if not (isinstance(value, str) and colon and _is_dotted_identifier(module) and function_ok):
        src.wrong(table, key, "'module:function' (Python identifiers)", value)
    return value


def _version(src: _Source, table: str, key: str, value: object) -> Version:
    if not isinstance(value, str):
        src.wrong(table, key, 'a version string in quotes, e.g. "1.2.0"', value)
    try:
        return parse_version(value)
    except ValidationError as exc:
        src.fail(table, key, f"{src.field_name(table, key)}: {exc.message}", code=exc.code)


def _specifier(src: _Source, table: str, key: str, value: object) -> SpecifierSet:
    if not isinstance(value, str):
        src.wrong(table, key, 'a version specifier string, e.g. ">=1.0,<2"', value)
    try:
        return parse_specifier(value)
    except ValidationError as exc:
        # The location is looked up only on failure: scanning a big store stays cheap.
        src.fail(table, key, f"{src.field_name(table, key)}: {exc.message}", code=exc.code)


def _component_type(src: _Source, table: str, key: str, value: object) -> ComponentType:
    allowed = [kind.value for kind in ComponentType]
    if not isinstance(value, str) or value not in allowed:
        src.wrong(table, key, f"one of {', '.join(allowed)}", value)
    return ComponentType(value)


def _upgrade_from(src: _Source, table: str, key: str, value: object) -> tuple[Version, ...]:
    if not isinstance(value, list):
        src.wrong(table, key, 'a list of version strings, e.g. ["1.0.0"]', value)
    return tuple(_version(src, table, key, item) for item in value)


def _sha256(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        src.wrong(table, key, "64 lowercase hex characters (see `noodle hash FOLDER`)", value)
    return value


def _pool(src: _Source, table: str, key: str, value: object) -> int:
    # bool is an int in Python; `pool = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        src.wrong(table, key, "an integer ≥ 1", value)
    return value


def _dependencies(src: _Source, table: str, key: str, value: object) -> dict[str, SpecifierSet]:
    if not isinstance(value, dict):
        src.wrong(table, key, "a table of component name = version specifier", value)
    deps_table = f"{table}.{key}"
    deps: dict[str, SpecifierSet] = {}
    for name, spec in value.items():
        if not NAME_PATTERN.match(name):
            src.fail(
                deps_table, name, f"dependency name {name!r} is invalid (allowed: {NAME_RULE})"
            )
        deps[name] = _specifier(src, deps_table, name, spec)
    return deps


def _number(limit: float | None) -> _Check:
    """A finite number ≥ 0, and ≤ ``limit`` when one is given."""
    expected = "a number ≥ 0" if limit is None else f"a number from 0 to {limit:g}"

    def check(src: _Source, table: str, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            src.wrong(table, key, expected, value)
        number = float(value)
        if not math.isfinite(number) or number < 0 or (limit is not None and number > limit):
            src.wrong(table, key, expected, value)
        return number

    return check


def _strategy(src: _Source, table: str, key: str, value: object) -> str:
    if value not in STRATEGY_NAMES:
        src.wrong(table, key, f"one of {', '.join(STRATEGY_NAMES)}", value)
    return str(value)


def _auto_approve(src: _Source, table: str, key: str, value: object) -> tuple[str, ...]:
    allowed = [*(kind.value for kind in BumpKind if kind is not BumpKind.NONE), "rollback"]
    expected = f"a list of change kinds from {', '.join(allowed)}"
    if not isinstance(value, list) or any(item not in allowed for item in value):
        src.wrong(table, key, expected, value)
    return tuple(dict.fromkeys(str(item) for item in value))


def _window(src: _Source, table: str, key: str, item: object) -> str:
    expected = "windows as 'HH:MM-HH:MM' (hours 00-23, minutes 00-59), e.g. ['02:00-04:00']"
    match = _WINDOW.match(item) if isinstance(item, str) else None
    if not match:
        src.wrong(table, key, expected, item)
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or end_h > 23 or start_m > 59 or end_m > 59:
        src.wrong(table, key, expected, item)
    if (start_h, start_m) == (end_h, end_m):
        src.wrong(table, key, "a window whose start and end differ", item)
    return f"{start_h:02d}:{start_m:02d}-{end_h:02d}:{end_m:02d}"


def _windows(src: _Source, table: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        src.wrong(table, key, "a list of 'HH:MM-HH:MM' strings, e.g. ['02:00-04:00']", value)
    return tuple(_window(src, table, key, item) for item in value)


def _apply(
    src: _Source,
    table: str,
    data: Mapping[str, object],
    fields: Mapping[str, tuple[str, _Check]],
    warnings: list[str],
) -> dict[str, Any]:
    """Check each known key into its attribute; unknown keys become warnings."""
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in fields:
            warnings.append(src.unknown_key(table, key, tuple(fields)))
            continue
        attribute, check = fields[key]
        values[attribute] = check(src, table, key, raw)
    return values


# ---------------------------------------------------------------------------- [component.config]

_CONFIG = "component.config"
_MIGRATIONS = "component.config.migrations"


def _subtable(src: _Source, table: str, key: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        src.wrong(table, key, f"a table [{table}.{key}]", value)
    return value


def _tables(src: _Source, table: str, key: str, value: object) -> list[dict[str, object]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        src.wrong(table, key, f"tables [[{table}.{key}]]", value)
    return value


def _config_file(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        src.wrong(table, key, "a path relative to the project root, e.g. 'config/app.toml'", value)
    problem = check_file(value)
    if problem is not None:
        src.wrong(table, key, problem, value)
    return value


def _dotted_keys(src: _Source, table: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(is_dotted_key(item) for item in value):
        src.wrong(table, key, 'a list of keys, dotted into tables, e.g. ["a", "b.c"]', value)
    return tuple(value)


def _renames(src: _Source, table: str, key: str, value: object) -> tuple[tuple[str, str], ...]:
    pairs = list(flatten_keys(value)) if isinstance(value, dict) else []
    if not pairs or not all(is_dotted_key(old) and is_dotted_key(new) for old, new in pairs):
        src.wrong(table, key, 'a table of old key = "new key", e.g. { old = "new" }', value)
    return tuple(pairs)


def _additions(src: _Source, table: str, key: str, value: object) -> tuple[tuple[str, Any], ...]:
    pairs = list(flatten_keys(value)) if isinstance(value, dict) else []
    if not pairs or not all(is_dotted_key(name) for name, _ in pairs):
        src.wrong(table, key, "a table of key = default value, e.g. { new_setting = true }", value)
    return tuple(pairs)


_CONFIG_FIELDS: dict[str, tuple[str, _Check]] = {
    "file": ("file", _config_file),
    "required": ("required", _dotted_keys),
    "validate": ("validate", _hook),
    "migrations": ("migrations", _tables),
}
_MIGRATION_FIELDS: dict[str, tuple[str, _Check]] = {
    "from": ("from_version", _version),
    "rename": ("rename", _renames),
    "add": ("add", _additions),
    "remove": ("remove", _dotted_keys),
    "transform": ("transform", _hook),
}


def _config_declaration(
    src: _Source, table: dict[str, object], version: Version, warnings: list[str]
) -> ConfigDeclaration:
    """``[component.config]``: unknown keys are warnings, unknown operations errors (a
    misspelt operation would silently not migrate)."""
    if "file" not in table:
        src.fail(
            _CONFIG,
            None,
            f"missing required field 'file' in [{_CONFIG}] (the config file, relative to the "
            "project root)",
        )
    values = _apply(src, _CONFIG, table, _CONFIG_FIELDS, warnings)
    migrations = [
        _migration(src, index, raw, version)
        for index, raw in enumerate(values.pop("migrations", []))
    ]
    starts: set[Version | None] = set()
    for index, migration in enumerate(migrations):
        start = migration.from_version
        if start in starts:
            src.fail(
                f"{_MIGRATIONS}[{index}]",
                "from" if start else None,
                f"a second migration from {start or 'any earlier version (no from)'}; "
                "declare one per starting version",
            )
        starts.add(start)
    return ConfigDeclaration(**values, migrations=tuple(migrations))


def _migration(
    src: _Source, index: int, table: dict[str, object], version: Version
) -> ConfigMigration:
    name = f"{_MIGRATIONS}[{index}]"  # how _Source names the index-th [[…]] table
    for key in table:
        if key not in _MIGRATION_FIELDS:
            close = difflib.get_close_matches(key, list(_MIGRATION_FIELDS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            src.fail(
                name,
                key,
                f"unknown operation '{key}' in [[{_MIGRATIONS}]] "
                f"(allowed: {', '.join(_MIGRATION_FIELDS)}){hint}",
            )
    migration = ConfigMigration(**_apply(src, name, table, _MIGRATION_FIELDS, []))
    if migration.from_version is not None and migration.from_version >= version:
        src.fail(
            name,
            "from",
            f"from = '{migration.from_version}': a migration into {version} must start "
            "from an earlier version",
        )
    conflict = migration.conflict()
    if conflict is not None:
        src.fail(name, conflict[0], conflict[1])
    return migration


# ---------------------------------------------------------------------------- component.toml

_COMPONENT_FIELDS: dict[str, tuple[str, _Check]] = {
    "name": ("name", _name),
    "version": ("version", _version),
    "entry": ("entry", _entry),
    "description": ("description", _string),
    "type": ("component_type", _component_type),
    "hot_swappable": ("hot_swappable", _boolean),
    "critical": ("critical", _boolean),
    "idempotent": ("idempotent", _boolean),
    "shadow_safe": ("shadow_safe", _boolean),
    "health_check": ("health_check", _hook),
    "migrate": ("migrate", _hook),
    "downgrade": ("downgrade", _hook),
    "upgrade_from": ("upgrade_from", _upgrade_from),
    "sha256": ("sha256", _sha256),
    "pool": ("pool", _pool),
    "dependencies": ("dependencies", _dependencies),
    "config": ("config", _subtable),  # read by _config_declaration once the version is known
}
_REQUIRED = ("name", "version", "entry")


def load_component_manifest(folder: Path) -> ComponentDescriptor:
    """Read ``<folder>/component.toml``; the folder must be ``<store>/<name>/<version>``."""
    # abspath, not resolve: a symlinked version folder keeps the name it is stored under.
    folder = Path(os.path.abspath(folder))
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(
            f"{path}: not found (every version folder in {LAYOUT} needs one)",
            code="manifest-error",
        )
    src, data = _Source.read(path, ManifestError, qualify=False)
    table = data.get("component")
    if not isinstance(table, dict):
        src.fail(None, None, "missing table [component] (it declares name, version and entry)")
    warnings = [src.unknown_key(None, key, ("component",)) for key in data if key != "component"]
    for key in _REQUIRED:
        if key not in table:
            src.fail(
                "component",
                None,
                f"missing required field '{key}' in [component] (required: {', '.join(_REQUIRED)})",
            )
    values = _apply(src, "component", table, _COMPONENT_FIELDS, warnings)
    _check_layout(src, folder, values["name"], values["version"])
    _check_entry_exists(src, folder, values["entry"])
    if "config" in values:
        values["config"] = _config_declaration(src, values["config"], values["version"], warnings)
    if values.get("pool", 1) > 1 and ":" not in values["entry"]:
        warnings.append(
            f"{src.at('component', 'pool')}: pool = {values['pool']} is ignored: only a "
            "factory entry ('module:factory') builds instances to pool"
        )
    return ComponentDescriptor(folder=folder, warnings=tuple(warnings), **values)


def _check_entry_exists(src: _Source, folder: Path, entry: str) -> None:
    """The entry module must be in the folder: a typo fails here, not at import time."""
    module = folder.joinpath(*entry.partition(":")[0].split("."))
    if module.with_suffix(".py").is_file() or module.is_dir():
        return
    src.fail(
        "component",
        "entry",
        f"entry {entry!r}: no module {module.relative_to(folder).as_posix()}.py or package "
        f"{module.relative_to(folder).as_posix()}/ in {folder} "
        "(entry names a module without '.py', e.g. 'parser' or 'parser:create')",
    )


def _check_layout(src: _Source, folder: Path, name: str, version: Version) -> None:
    if name != folder.parent.name:
        src.fail(
            "component",
            "name",
            f"name {name!r} does not match its folder "
            f"{folder.parent.name!r} (the store layout is {LAYOUT})",
        )
    try:
        folder_version: Version | None = Version(folder.name)
    except InvalidVersion:
        folder_version = None
    if folder_version != version:
        src.fail(
            "component",
            "version",
            f"version '{version}' does not match its folder "
            f"{folder.name!r} (the store layout is {LAYOUT})",
        )


# ---------------------------------------------------------------------------- the store


def scan_store(store_dir: Path) -> tuple[dict[str, list[ComponentDescriptor]], list[str]]:
    """Every readable version in ``<store>/<name>/<version>/``, oldest first, and the problems.

    One broken manifest is one problem string; it never hides the other versions.
    A missing store folder is an empty store.
    """
    found: dict[str, list[ComponentDescriptor]] = {}
    problems: list[str] = []
    for name_dir in _subfolders(store_dir, problems):
        versions = _scan_component(name_dir, problems)
        if versions:
            found[name_dir.name] = versions
    return found, problems


def _subfolders(folder: Path, problems: list[str]) -> list[Path]:
    if not folder.exists():
        return []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        problems.append(f"{folder}: cannot list the folder: {exc.strerror}")
        return []
    return [
        entry
        for entry in entries
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != "__pycache__"
    ]


def _scan_component(name_dir: Path, problems: list[str]) -> list[ComponentDescriptor]:
    by_version: dict[Version, ComponentDescriptor] = {}
    for version_dir in _subfolders(name_dir, problems):
        try:
            descriptor = load_component_manifest(version_dir)
        except NoodleError as exc:
            problems.append(exc.message)
            continue
        twin = by_version.get(descriptor.version)
        if twin is not None:
            # "1.0" and "1.0.0" are one version: keep the first, report the second.
            problems.append(
                f"{descriptor.manifest_path}: version {descriptor.version} is also "
                f"in {twin.folder} (one folder per version)"
            )
            continue
        by_version[descriptor.version] = descriptor
    return [by_version[version] for version in sorted(by_version)]


# ---------------------------------------------------------------------------- noodle.toml

_NOODLE_FIELDS: dict[str, tuple[str, _Check]] = {
    "store": ("store", _non_empty),
    "state": ("state", _non_empty),
    "environment": ("environment", _non_empty),
}
_POLICY_FIELDS: dict[str, tuple[str, _Check]] = {
    "strategy": ("strategy", _strategy),
    "auto_approve": ("auto_approve", _auto_approve),
    "maintenance_windows": ("maintenance_windows", _windows),
    "min_interval_s": ("min_interval_s", _number(None)),
    "max_cpu_percent": ("max_cpu_percent", _number(100)),
    "max_memory_percent": ("max_memory_percent", _number(100)),
    "max_disk_percent": ("max_disk_percent", _number(100)),
}
_SECTIONS = ("noodle", "components", "policy", "sources")


def load_project(root: Path | str) -> ProjectConfig:
    """Read ``<root>/noodle.toml``: store and state folders, component constraints, policies."""
    root_path = Path(os.path.abspath(root))
    path = root_path / PROJECT_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run `noodle init` to create a project")
    src, data = _Source.read(path, ConfigError, qualify=True)
    warnings = [
        f"{src.at(None, key)}: unknown section [{key}] (allowed: [noodle], [components], "
        "[policy.<environment>], [sources.git])"
        for key in data
        if key not in _SECTIONS
    ]
    settings = _apply(src, "noodle", _table(src, data, "noodle"), _NOODLE_FIELDS, warnings)
    environment = settings.get("environment", "development")
    policies = _policies(src, _table(src, data, "policy"), warnings)
    return ProjectConfig(
        root=root_path,
        store_dir=root_path / settings.get("store", "components"),
        state_dir=root_path / settings.get("state", ".noodle"),
        environment=environment,
        components=_components(src, _table(src, data, "components")),
        policies=policies,
        git_source=_git_source(src, _table(src, data, "sources"), warnings),
        warnings=tuple(warnings),
    )


def _table(src: _Source, data: Mapping[str, object], key: str) -> dict[str, object]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        src.fail(None, key, f"{key!r} must be a table [{key}], got {value!r}")
    return value


def _components(src: _Source, table: Mapping[str, object]) -> dict[str, SpecifierSet]:
    components: dict[str, SpecifierSet] = {}
    for name, spec in table.items():
        if not NAME_PATTERN.match(name):
            src.fail(
                "components",
                name,
                f"component name {name!r} in [components] is invalid (allowed: {NAME_RULE})",
            )
        components[name] = _specifier(src, "components", name, spec)
    return components


def _policies(src: _Source, table: Mapping[str, object], warnings: list[str]) -> dict[str, Policy]:
    policies: dict[str, Policy] = {}
    for environment, body in table.items():
        name = f"policy.{environment}"
        if not isinstance(body, dict):
            # `[policy]` + `strategy = …` would silently apply to no environment.
            src.fail(
                "policy",
                environment,
                f"[policy] holds one table per environment, e.g. "
                f"[policy.production]; got {environment} = {body!r}",
            )
        values = _apply(src, name, body, _POLICY_FIELDS, warnings)
        policies[environment] = Policy(**values)
    return policies


def _tag_pattern(src: _Source, table: str, key: str, value: object) -> str:
    text = _string(src, table, key, value)
    try:
        return TagPattern(text).text
    except ConfigError as exc:
        src.fail(table, key, f"{src.field_name(table, key)}: {exc.message}")


def _repo_path(src: _Source, table: str, key: str, value: object) -> str:
    try:
        return check_path_pattern(_string(src, table, key, value))
    except ConfigError as exc:
        src.fail(table, key, f"{src.field_name(table, key)}: {exc.message}")


def _interval(src: _Source, table: str, key: str, value: object) -> float:
    # 0 would poll git in a busy loop; `not 0 < value < inf` also refuses nan.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        src.wrong(table, key, "a number of seconds > 0", value)
    return float(value)


_GIT_FIELDS: dict[str, tuple[str, _Check]] = {
    "repo": ("repo", _non_empty),
    "tags": ("tags", _tag_pattern),
    "path": ("path", _repo_path),
    "interval_s": ("interval_s", _interval),
}
_SOURCES = ("git",)


def _git_source(src: _Source, table: Mapping[str, object], warnings: list[str]) -> GitSource | None:
    """``[sources.git]``; other kinds of source are warnings, so a newer file still loads."""
    for kind in table:
        if kind not in _SOURCES:
            header = src.table_line(f"sources.{kind}")
            where = f"{src.path}:{header}" if header else src.at("sources", kind)
            warnings.append(
                f"{where}: unknown source [sources.{kind}] "
                f"(ignored; allowed: {', '.join(f'[sources.{name}]' for name in _SOURCES)})"
            )
    body = table.get("git")
    if body is None:
        return None
    if not isinstance(body, dict):
        src.fail("sources", "git", f"[sources.git] must be a table, got git = {body!r}")
    if "repo" not in body:
        src.fail(
            "sources.git",
            None,
            "missing required field 'repo' in [sources.git] (the git repository whose "
            "tags are releases, relative to the project root)",
        )
    return GitSource(**_apply(src, "sources.git", body, _GIT_FIELDS, warnings))
