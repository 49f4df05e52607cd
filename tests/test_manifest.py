"""noodle.toml, component.toml and the component store, read from real files."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from noodle_upgrade.engine.manifest import load_component_manifest, load_project, scan_store
from noodle_upgrade.errors import ConfigError, ManifestError
from noodle_upgrade.models import ComponentType, Policy

DIGEST = "ab" * 32


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    entry = re.search(r'^\s*entry\s*=\s*"([\w.]+)', text, re.MULTILINE)
    if path.name == "component.toml" and entry:  # the entry module the manifest names
        module = path.parent.joinpath(*entry.group(1).split(".")).with_suffix(".py")
        module.parent.mkdir(parents=True, exist_ok=True)
        module.touch()
    return path


def project(root: Path, text: str) -> Path:
    write(root / "noodle.toml", text)
    return root


def version_folder(store: Path, name: str, version: str, body: str = "") -> Path:
    """A version folder whose manifest starts with name/version/entry, then ``body``."""
    folder = store / name / version
    header = f'[component]\nname = "{name}"\nversion = "{version}"\nentry = "{name}"\n'
    write(folder / "component.toml", header + textwrap.dedent(body))
    return folder


# ---------------------------------------------------------------------------- noodle.toml


def test_project_reads_every_section(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [noodle]
        store = "store"
        state = "var/state"
        environment = "production"

        [components]
        lexer = "==1.0.0"
        parser = ">=1.0,<2"
        optimizer = "1.1.0"

        [policy.production]
        strategy = "canary"
        auto_approve = ["patch", "minor"]
        maintenance_windows = ["02:00-04:00", "23:30-00:30"]
        min_interval_s = 3600
        max_cpu_percent = 80
        max_memory_percent = 85.5
        max_disk_percent = 90
        """,
    )

    config = load_project(root)

    assert config.root == tmp_path
    assert config.store_dir == tmp_path / "store"
    assert config.state_dir == tmp_path / "var" / "state"
    assert config.environment == "production"
    assert config.components == {
        "lexer": SpecifierSet("==1.0.0"),
        "parser": SpecifierSet(">=1.0,<2"),
        "optimizer": SpecifierSet("==1.1.0"),  # a bare version means exactly that one
    }
    assert config.policy == Policy(
        strategy="canary",
        auto_approve=("patch", "minor"),
        maintenance_windows=("02:00-04:00", "23:30-00:30"),
        min_interval_s=3600.0,
        max_cpu_percent=80.0,
        max_memory_percent=85.5,
        max_disk_percent=90.0,
    )
    assert config.warnings == ()


def test_an_empty_project_file_gives_every_default(tmp_path: Path) -> None:
    config = load_project(project(tmp_path, ""))

    assert config.store_dir == tmp_path / "components"
    assert config.state_dir == tmp_path / ".noodle"
    assert config.environment == "development"
    assert config.components == {}
    assert config.policies == {}
    assert config.policy == Policy()
    assert config.warnings == ()


def test_project_root_may_be_a_string_and_absolute_paths_stay(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    project(tmp_path, f'[noodle]\nstore = "{elsewhere}"\n')

    assert load_project(str(tmp_path)).store_dir == elsewhere


def test_missing_project_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    assert str(caught.value) == (
        f"{tmp_path}/noodle.toml: not found; run `noodle init` to create a project"
    )


def test_policy_windows_are_normalised_and_may_cross_midnight(tmp_path: Path) -> None:
    project(tmp_path, '[policy.development]\nmaintenance_windows = ["22:00 - 2:00"]\n')

    assert load_project(tmp_path).policy.maintenance_windows == ("22:00-02:00",)


def test_unknown_keys_and_sections_are_warnings_with_lines(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        [noodle]
        store = "components"
        colour = "red"

        [extras]
        x = 1

        [policy.production]
        strategy = "canary"
        max_gpu_percent = 50
        """,
    )

    warnings = load_project(tmp_path).warnings

    path = tmp_path / "noodle.toml"
    assert f"{path}:3: unknown key 'colour' in [noodle] (allowed: store, state, environment)" in (
        warnings
    )
    assert any(w.startswith(f"{path}:5: unknown section [extras]") for w in warnings)
    assert any(
        w.startswith(f"{path}:10: unknown key 'max_gpu_percent' in [policy.production]")
        for w in warnings
    )
    assert len(warnings) == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('strategy = "big_bang"', "field 'strategy' in [policy.production]: expected one of"),
        ('auto_approve = ["huge"]', "expected a list of change kinds from major, minor, patch"),
        ('auto_approve = "patch"', "field 'auto_approve'"),
        ('maintenance_windows = ["24:00-01:00"]', "hours 00-23, minutes 00-59"),
        ('maintenance_windows = ["02:60-03:00"]', "got '02:60-03:00'"),
        ('maintenance_windows = ["2am-4am"]', "expected windows as 'HH:MM-HH:MM'"),
        ('maintenance_windows = ["02:00-02:00"]', "start and end differ"),
        ("min_interval_s = -1", "field 'min_interval_s' in [policy.production]: expected a number"),
        ("max_cpu_percent = 120", "expected a number from 0 to 100, got 120"),
        ("max_memory_percent = nan", "expected a number from 0 to 100, got nan"),
        ("max_disk_percent = true", "expected a number from 0 to 100, got True"),
    ],
)
def test_invalid_policy_values_name_file_line_and_field(
    tmp_path: Path, line: str, expected: str
) -> None:
    project(tmp_path, f"[noodle]\nenvironment = 'production'\n\n[policy.production]\n{line}\n")

    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    assert str(caught.value).startswith(f"{tmp_path}/noodle.toml:5: ")
    assert expected in str(caught.value)
    assert caught.value.code == "manifest-error"


def test_policy_must_be_one_table_per_environment(tmp_path: Path) -> None:
    project(tmp_path, '[policy]\nstrategy = "canary"\n')

    with pytest.raises(ConfigError, match=r"noodle\.toml:2: \[policy\] holds one table per env"):
        load_project(tmp_path)


def test_invalid_component_specifier_keeps_its_code(tmp_path: Path) -> None:
    project(tmp_path, '[components]\nlexer = "==1.0"\nparser = "> = banana"\n')

    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    assert caught.value.code == "invalid-specifier"
    assert str(caught.value).startswith(
        f"{tmp_path}/noodle.toml:3: field 'parser' in [components]: '> = banana' is not a valid"
    )


def test_component_specifier_must_be_a_string(tmp_path: Path) -> None:
    project(tmp_path, "[components]\nlexer = 1.0\n")

    with pytest.raises(ConfigError, match=r"noodle\.toml:2: .*'lexer'.*expected a version spec"):
        load_project(tmp_path)


def test_invalid_component_name_in_project(tmp_path: Path) -> None:
    project(tmp_path, '[components]\n"my parser" = ">=1"\n')

    with pytest.raises(ConfigError, match=r"noodle\.toml:2: component name 'my parser'"):
        load_project(tmp_path)


def test_project_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    project(tmp_path, '[noodle]\nstore = "components"\nstate == ".noodle"\n')

    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)

    assert str(caught.value).startswith(f"{tmp_path}/noodle.toml:3:8: invalid TOML: ")


def test_noodle_section_values_must_be_non_empty_strings(tmp_path: Path) -> None:
    project(tmp_path, '[noodle]\nstore = ""\n')

    with pytest.raises(ConfigError, match=r"noodle\.toml:2: field 'store' in \[noodle\]"):
        load_project(tmp_path)


# ---------------------------------------------------------------------------- component.toml


def test_manifest_reads_every_field(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "parser" / "1.1.0" / "component.toml",
        f"""
        [component]
        name = "parser"
        version = "1.1.0"
        description = "Expression parser"
        type = "compiler"
        entry = "parser.core:create"
        hot_swappable = false
        critical = true
        idempotent = true
        shadow_safe = true
        health_check = "parser:health"
        migrate = "parser.state:migrate_state"
        downgrade = "parser:downgrade"
        upgrade_from = ["1.0.0", "1.0.1"]
        sha256 = "{DIGEST}"
        pool = 4

        [component.dependencies]
        lexer = ">=1.0,<2"
        memory_manager = "2.0"
        """,
    ).parent

    descriptor = load_component_manifest(folder)

    assert descriptor.name == "parser"
    assert descriptor.version == Version("1.1.0")
    assert descriptor.folder == folder
    assert descriptor.description == "Expression parser"
    assert descriptor.component_type is ComponentType.COMPILER
    assert descriptor.entry_module == "parser.core"
    assert descriptor.factory == "create"
    assert descriptor.hot_swappable is False
    assert descriptor.critical is True
    assert descriptor.idempotent is True
    assert descriptor.shadow_safe is True
    assert descriptor.health_check == "parser:health"
    assert descriptor.migrate == "parser.state:migrate_state"
    assert descriptor.downgrade == "parser:downgrade"
    assert descriptor.upgrade_from == (Version("1.0.0"), Version("1.0.1"))
    assert descriptor.sha256 == DIGEST
    assert descriptor.pool == 4
    assert descriptor.dependencies == {
        "lexer": SpecifierSet(">=1.0,<2"),
        "memory_manager": SpecifierSet("==2.0"),
    }
    assert descriptor.warnings == ()


def test_manifest_with_only_required_fields_gets_the_defaults(tmp_path: Path) -> None:
    descriptor = load_component_manifest(version_folder(tmp_path, "lexer", "1.0.0"))

    assert descriptor.description == ""
    assert descriptor.component_type is ComponentType.LIBRARY
    assert descriptor.hot_swappable is True
    assert descriptor.critical is False
    assert descriptor.idempotent is False
    assert descriptor.shadow_safe is False
    assert descriptor.health_check is None
    assert descriptor.migrate is None
    assert descriptor.downgrade is None
    assert descriptor.upgrade_from is None
    assert descriptor.sha256 is None
    assert descriptor.pool == 1
    assert descriptor.dependencies == {}
    assert descriptor.stateful is False
    assert descriptor.warnings == ()


def test_manifest_error_message_matches_the_documented_form(tmp_path: Path) -> None:
    folder = version_folder(tmp_path, "parser", "1.0.0", 'description = "x"\n\npool = "two"\n')

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert str(caught.value) == (
        f"{folder}/component.toml:7: field 'pool': expected an integer ≥ 1, got 'two'"
    )
    assert caught.value.code == "manifest-error"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("pool = 0", "field 'pool': expected an integer ≥ 1, got 0"),
        ("pool = true", "field 'pool': expected an integer ≥ 1, got True"),
        ('hot_swappable = "yes"', "field 'hot_swappable': expected true or false, got 'yes'"),
        ("critical = 1", "field 'critical': expected true or false, got 1"),
        ('type = "widget"', "field 'type': expected one of runtime, compiler, ai, deployment"),
        ("description = 3", "field 'description': expected a string, got 3"),
        ('health_check = "parser"', "field 'health_check': expected 'module:function'"),
        ('migrate = "parser:1up"', "field 'migrate': expected 'module:function'"),
        ('downgrade = "parser:"', "field 'downgrade': expected 'module:function'"),
        ('sha256 = "ABCD"', "field 'sha256': expected 64 lowercase hex characters"),
        (f'sha256 = "{DIGEST.upper()}"', "field 'sha256': expected 64 lowercase hex"),
        ('upgrade_from = "1.0.0"', "field 'upgrade_from': expected a list of version strings"),
        ("dependencies = 3", "field 'dependencies': expected a table"),
    ],
)
def test_wrong_types_name_file_line_and_field(tmp_path: Path, line: str, expected: str) -> None:
    folder = version_folder(tmp_path, "parser", "1.0.0", line + "\n")

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert str(caught.value).startswith(f"{folder}/component.toml:5: {expected}")


@pytest.mark.parametrize(
    "entry", ["my-parser", "parser:create:now", "parser.:create", "1parser", "class", "parser:def"]
)
def test_invalid_entry_is_refused(tmp_path: Path, entry: str) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(
        folder / "component.toml",
        f'[component]\nname = "parser"\nversion = "1.0.0"\nentry = "{entry}"\n',
    )

    with pytest.raises(ManifestError, match=r"component\.toml:4: field 'entry': expected 'module'"):
        load_component_manifest(folder)


@pytest.mark.parametrize("entry", ["parser", "pkg.sub.mod", "parser:create", "_p.q:_make"])
def test_valid_entries_are_accepted(tmp_path: Path, entry: str) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(
        folder / "component.toml",
        f'[component]\nname = "parser"\nversion = "1.0.0"\nentry = "{entry}"\n',
    )

    assert load_component_manifest(folder).entry == entry


def test_entry_module_must_exist_in_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "greeter" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "component.toml").write_text(
        '[component]\nname = "greeter"\nversion = "1.0.0"\nentry = "greeter.py"\n'
    )
    (folder / "greeter.py").touch()
    with pytest.raises(ManifestError, match=r"component\.toml:4: .*no module greeter/py\.py"):
        load_component_manifest(folder)


@pytest.mark.parametrize("missing", ["name", "version", "entry"])
def test_missing_required_field_is_named(tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    fields = {"name": '"parser"', "version": '"1.0.0"', "entry": '"parser"'}
    del fields[missing]
    body = "".join(f"{key} = {value}\n" for key, value in fields.items())
    write(folder / "component.toml", "# a comment\n[component]\n" + body)

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert str(caught.value).startswith(
        f"{folder}/component.toml:2: missing required field '{missing}' in [component]"
    )


def test_manifest_without_component_table(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(folder / "component.toml", '[package]\nname = "parser"\n')

    with pytest.raises(ManifestError, match=r"component\.toml: missing table \[component\]"):
        load_component_manifest(folder)


def test_invalid_version_keeps_its_code_and_location(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(folder / "component.toml", '[component]\nname = "parser"\nversion = "one"\nentry = "p"\n')

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert caught.value.code == "invalid-version"
    assert str(caught.value).startswith(
        f"{folder}/component.toml:3: field 'version': 'one' is not a valid version"
    )


def test_version_must_be_quoted(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0"
    write(folder / "component.toml", '[component]\nname = "parser"\nversion = 1.0\nentry = "p"\n')

    with pytest.raises(ManifestError, match=r"component\.toml:3: field 'version': expected a ver"):
        load_component_manifest(folder)


def test_invalid_upgrade_from_entry_is_an_invalid_version(tmp_path: Path) -> None:
    folder = version_folder(tmp_path, "parser", "1.1.0", 'upgrade_from = ["1.0.0", "latest"]\n')

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert caught.value.code == "invalid-version"
    assert "component.toml:5: field 'upgrade_from': 'latest'" in str(caught.value)


def test_invalid_dependency_specifier_points_at_its_line(tmp_path: Path) -> None:
    folder = version_folder(
        tmp_path, "parser", "1.0.0", '\n[component.dependencies]\nlexer = ">=1"\nvm = "=>2"\n'
    )

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert caught.value.code == "invalid-specifier"
    assert str(caught.value).startswith(f"{folder}/component.toml:8: field 'vm': '=>2'")


def test_invalid_dependency_name(tmp_path: Path) -> None:
    folder = version_folder(tmp_path, "parser", "1.0.0", '[component.dependencies]\n"a b" = "1"\n')

    with pytest.raises(ManifestError, match=r"component\.toml:6: dependency name 'a b' is invalid"):
        load_component_manifest(folder)


def test_name_must_match_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(
        folder / "component.toml", '[component]\nname = "lexer"\nversion = "1.0.0"\nentry = "x"\n'
    )

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    message = str(caught.value)
    assert message.startswith(f"{folder}/component.toml:2: name 'lexer' does not match")
    assert "'parser'" in message


def test_version_must_match_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(folder / "component.toml", '[component]\nname = "parser"\nversion = "1.1"\nentry = "x"\n')

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    message = str(caught.value)
    assert message.startswith(f"{folder}/component.toml:3: version '1.1' does not match")
    assert "'1.0.0'" in message


def test_version_folder_is_compared_as_a_version(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0"
    write(
        folder / "component.toml", '[component]\nname = "parser"\nversion = "1.0.0"\nentry = "p"\n'
    )

    assert load_component_manifest(folder).version == Version("1.0")


def test_manifest_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    write(folder / "component.toml", '[component]\nname = "parser\n')

    with pytest.raises(ManifestError) as caught:
        load_component_manifest(folder)

    assert caught.value.code == "manifest-error"
    assert str(caught.value).startswith(f"{folder}/component.toml:2:")
    assert "invalid TOML" in str(caught.value)


def test_missing_manifest_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "parser" / "1.0.0"
    folder.mkdir(parents=True)

    with pytest.raises(ManifestError, match=r"1\.0\.0/component\.toml: not found"):
        load_component_manifest(folder)


def test_unknown_manifest_keys_are_warnings(tmp_path: Path) -> None:
    folder = version_folder(
        tmp_path, "parser", "1.0.0", 'colour = "red"\nhot_swapable = false\n\n[build]\nx = 1\n'
    )

    descriptor = load_component_manifest(folder)

    path = folder / "component.toml"
    assert descriptor.hot_swappable is True  # the misspelt key changed nothing
    assert set(descriptor.warnings) == {
        f"{path}:5: unknown key 'colour' (ignored)",
        f"{path}:6: unknown key 'hot_swapable' (ignored; did you mean 'hot_swappable'?)",
        f"{path}:8: unknown key 'build' (ignored)",
    }


# ---------------------------------------------------------------------------- the store


def test_missing_store_is_an_empty_store(tmp_path: Path) -> None:
    assert scan_store(tmp_path / "components") == ({}, [])


def test_store_versions_are_sorted_as_versions(tmp_path: Path) -> None:
    for version in ["1.10.0", "1.9.0", "1.0.0", "2.0.0rc1"]:
        version_folder(tmp_path, "parser", version)
    version_folder(tmp_path, "lexer", "0.1")

    found, problems = scan_store(tmp_path)

    assert problems == []
    assert sorted(found) == ["lexer", "parser"]
    assert [str(d.version) for d in found["parser"]] == ["1.0.0", "1.9.0", "1.10.0", "2.0.0rc1"]


def test_a_broken_version_does_not_hide_its_siblings(tmp_path: Path) -> None:
    version_folder(tmp_path, "parser", "1.0.0")
    broken = version_folder(tmp_path, "parser", "1.1.0", "pool = -3\n")
    version_folder(tmp_path, "parser", "1.2.0")
    write(tmp_path / "lexer" / "1.0.0" / "component.toml", "[component\n")

    found, problems = scan_store(tmp_path)

    assert [str(d.version) for d in found["parser"]] == ["1.0.0", "1.2.0"]
    assert "lexer" not in found
    assert len(problems) == 2
    assert any(p.startswith(f"{broken}/component.toml:5: field 'pool'") for p in problems)
    assert any(p.startswith(f"{tmp_path}/lexer/1.0.0/component.toml:1:") for p in problems)


def test_store_ignores_hidden_folders_caches_and_files(tmp_path: Path) -> None:
    version_folder(tmp_path, "parser", "1.0.0")
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "parser" / "__pycache__").mkdir()
    (tmp_path / "parser" / ".draft").mkdir()
    write(tmp_path / "README.md", "the store\n")
    write(tmp_path / "parser" / "NOTES.md", "notes\n")

    found, problems = scan_store(tmp_path)

    assert problems == []
    assert list(found) == ["parser"]
    assert len(found["parser"]) == 1


def test_version_folder_without_manifest_is_a_problem(tmp_path: Path) -> None:
    version_folder(tmp_path, "parser", "1.0.0")
    (tmp_path / "parser" / "1.1.0").mkdir()

    found, problems = scan_store(tmp_path)

    assert len(found["parser"]) == 1
    assert problems == [
        f"{tmp_path}/parser/1.1.0/component.toml: not found "
        "(every version folder in <store>/<name>/<version>/component.toml needs one)"
    ]


def test_two_folders_for_one_version_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path / "parser" / "1.0" / "component.toml",
        '[component]\nname = "parser"\nversion = "1.0"\nentry = "p"\n',
    )
    version_folder(tmp_path, "parser", "1.0.0")

    found, problems = scan_store(tmp_path)

    assert [d.folder.name for d in found["parser"]] == ["1.0"]
    assert len(problems) == 1
    assert "1.0.0/component.toml: version 1.0.0 is also in" in problems[0]
