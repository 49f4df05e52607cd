"""A component's own config file migrates with its upgrades, on real projects.

``svc`` reads ``config/svc.toml`` (or ``.json``) at every call. Its 1.1.0 declares how a
1.0.0 file becomes its own. Every failure must leave the file exactly as it was, byte
for byte; every switch back, rollback and crash recovery must put the old file back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

from helpers.component_config import declare_config, reader_source
from helpers.project import Project, counter_source, noodle_modules
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.models import UpgradeStatus
from noodle_upgrade.runtime.config_files import restore_after_crash
from noodle_upgrade.store import Store

SCRIPT = Path(__file__).resolve().parent / "helpers" / "upgrade_and_wait.py"
CHILD_TIMEOUT_S = 60.0  # a guard against a stuck child, not a speed check

OLD = {"old_name": "fast", "deprecated_setting": True, "limits": {"depth": 3, "width": 8}}
NEW = {"new_name": "fast", "new_setting": True, "limits": {"max_depth": 6, "width": 8}}
OLD_TEXT = {
    "toml": (
        "# written by hand: comments are kept in the backup\n"
        'old_name = "fast"\ndeprecated_setting = true\n\n[limits]\ndepth = 3\nwidth = 8\n'
    ),
    "json": json.dumps(OLD, indent=4) + "\n",
}
MIGRATE_CONFIG = """

def migrate_config(config, from_version):
    config["limits"]["max_depth"] *= 2
    return config


def validate_config(config):
    if config["limits"]["max_depth"] <= 0:
        raise ValueError("limits.max_depth must be positive")
"""
DECLARATION = """
[component.config]
file = "config/svc.{fmt}"
required = ["new_name", "limits.max_depth"]
validate = "svc:validate_config"

[[component.config.migrations]]
from = "1.0.0"
rename = {{ old_name = "new_name", "limits.depth" = "limits.max_depth" }}
add = {{ new_setting = true, limits = {{ width = 100 }} }}
remove = ["deprecated_setting"]
transform = "svc:migrate_config"
"""


def parse(path: Path) -> dict[str, Any]:
    text = path.read_text()
    parsed: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return parsed


class Svc:
    """``svc`` 1.0.0 active with its config file written, 1.1.0 to add to the store."""

    def __init__(self, project: Project, fmt: str = "toml") -> None:
        self.project, self.fmt = project, fmt
        self.config = project.root / "config" / f"svc.{fmt}"
        project.constraints({"svc": "==1.0.0"})
        project.add("svc", "1.0.0", reader_source("1.0.0", self.config))
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(OLD_TEXT[fmt])
        self.original = self.config.read_bytes()
        project.open().close()
        project.constraints({"svc": ">=1,<3"})

    def add(
        self,
        version: str = "1.1.0",
        extra: str = MIGRATE_CONFIG,
        declaration: str = DECLARATION,
        **manifest: Any,
    ) -> Path:
        """A version whose code is ``reader_source`` + ``extra``; ``declaration`` is a
        format string: ``{fmt}`` becomes the file's suffix, braces are doubled."""
        code = reader_source(version, self.config, extra)
        return declare_config(
            self.project, "svc", version, code, declaration.format(fmt=self.fmt), **manifest
        )

    def backups(self, op_id: str) -> Path:
        return self.project.root / ".noodle" / "config-backups" / op_id


@pytest.fixture(params=["toml", "json"])
def svc(project: Project, request: pytest.FixtureRequest) -> Svc:
    return Svc(project, request.param)


# ---------------------------------------------------------------------------- upgrades


def test_upgrade_migrates_the_file_the_new_code_reads_it_and_the_old_one_is_kept(
    svc: Svc,
) -> None:
    svc.config.chmod(0o640)
    svc.add()
    with svc.project.open() as rt:
        handle = rt.load("svc")
        assert handle.settings() == OLD

        result = rt.upgrade("svc", "1.1.0")

        assert result.success, result.error_message
        assert parse(svc.config) == NEW
        assert handle.version() == "1.1.0"
        assert handle.settings() == NEW
        backup = svc.backups(result.request_id) / "config" / svc.config.name
        assert backup.read_bytes() == svc.original
        assert result.metrics["config"] == {
            "file": f"config/{svc.config.name}",
            "backup": str(backup),
            "changed": True,
        }
    assert svc.config.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in svc.config.parent.iterdir()] == [svc.config.name]  # no temp file


def test_a_multi_step_upgrade_applies_each_steps_migration_and_rolls_back_to_the_start(
    project: Project,
) -> None:
    svc = Svc(project)

    def step(version: str, rename: str) -> dict[str, Any]:
        """Each step renames one key and stamps the version it came from."""
        return {
            "extra": "\n\ndef migrate_config(config, from_version):\n"
            f"    return {{**config, 'from_{version}': from_version}}\n",
            "declaration": "[component.config]\nfile = 'config/svc.toml'\n\n"
            f"[[component.config.migrations]]\nrename = {{{{ {rename} }}}}\n"
            "transform = 'svc:migrate_config'\n",
        }

    svc.add("1.1.0", **step("1_1", "old_name = 'name'"), upgrade_from=["1.0.0"])
    svc.add("2.0.0", **step("2_0", "name = 'label'"), upgrade_from=["1.1.0"])
    with project.open() as rt:
        result = rt.upgrade("svc", "2.0.0")

        assert result.success, result.error_message
        assert result.path == ["1.1.0", "2.0.0"]
        assert rt.load("svc").settings() == {
            "label": "fast",
            "deprecated_setting": True,
            "limits": {"depth": 3, "width": 8},
            "from_1_1": "1.0.0",
            "from_2_0": "1.1.0",
        }

        assert rt.rollback("svc").success

        assert svc.config.read_bytes() == svc.original
        assert rt.load("svc").settings() == OLD


FAILURES = {
    "transform-raises": (
        MIGRATE_CONFIG.replace('config["limits"]["max_depth"] *= 2', 'raise KeyError("speed")'),
        DECLARATION,
        ["transform hook 'svc:migrate_config'", "raised KeyError: 'speed'", "1.0.0 -> 1.1.0"],
    ),
    "validate-rejects": (
        MIGRATE_CONFIG.replace("*= 2", "*= -1"),
        DECLARATION,
        ["validate hook 'svc:validate_config'", "limits.max_depth must be positive"],
    ),
    "required-missing": (
        MIGRATE_CONFIG,
        DECLARATION.replace('required = ["new_name"', 'required = ["cache_dir", "new_name"'),
        ["config of svc 1.1.0", "required key 'cache_dir' missing after migration"],
    ),
    "rename-onto-a-key-the-file-has": (
        MIGRATE_CONFIG,
        DECLARATION.replace('old_name = "new_name"', 'old_name = "deprecated_setting"').replace(
            'remove = ["deprecated_setting"]', "remove = []"
        ),
        ["rename 'old_name' -> 'deprecated_setting': the file has both keys"],
    ),
    "cannot-be-written": (
        MIGRATE_CONFIG.replace('config["limits"]["max_depth"] *= 2', 'config["tags"] = {"a"}'),
        DECLARATION,
        ["the migrated config cannot be written as"],
    ),
    "transform-not-found": (
        "",
        DECLARATION,
        ["hook 'svc:migrate_config' cannot be resolved", "AttributeError"],
    ),
}


@pytest.mark.parametrize(("extra", "declaration", "names"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_migration_fails_the_upgrade_and_changes_nothing(
    svc: Svc, extra: str, declaration: str, names: list[str]
) -> None:
    svc.add(extra=extra, declaration=declaration)
    with svc.project.open() as rt:
        handle = rt.load("svc")
        modules = noodle_modules()

        result = rt.upgrade("svc", "1.1.0")

        assert result.status is UpgradeStatus.FAILED
        assert result.error_code == "config-migration-failed", result.error_message
        message = result.error_message or ""
        for name in [*names, f"config/{svc.config.name}"]:
            assert name in message, (name, message)
        assert svc.config.read_bytes() == svc.original
        assert not svc.backups(result.request_id).exists()
        assert sorted(svc.config.parent.iterdir()) == [svc.config]
        assert rt.version("svc") == "1.0.0"
        assert handle.settings() == OLD
        assert noodle_modules() == modules
        assert rt.store.rollback_points("svc") == []


def test_a_config_file_that_does_not_parse_fails_the_upgrade_with_its_line(svc: Svc) -> None:
    svc.config.write_text(OLD_TEXT[svc.fmt] + "oops\n")
    broken = svc.config.read_bytes()
    svc.add()
    with svc.project.open() as rt:
        result = rt.upgrade("svc", "1.1.0")

    assert (result.status, result.error_code) == (UpgradeStatus.FAILED, "config-migration-failed")
    line = len(OLD_TEXT[svc.fmt].splitlines()) + 1  # the line "oops" is on
    message = result.error_message or ""
    assert message.startswith(f"{svc.config}:{line}:"), message
    assert f"invalid {svc.fmt.upper()}: " in message
    assert svc.config.read_bytes() == broken


def test_a_failing_check_after_the_switch_puts_the_old_file_back(svc: Svc) -> None:
    checks = "\nCHECKS = []\n\n\ndef health():\n    CHECKS.append(1)\n    return len(CHECKS) == 1\n"
    svc.add(extra=MIGRATE_CONFIG + checks, health_check="svc:health")
    with svc.project.open() as rt:
        handle = rt.load("svc")

        result = rt.upgrade("svc", "1.1.0")

        assert result.status is UpgradeStatus.ROLLED_BACK
        assert result.error_code == "health-check-failed"
        assert svc.config.read_bytes() == svc.original
        assert result.metrics["config"]["restored"] is True
        assert (handle.version(), handle.settings()) == ("1.0.0", OLD)


@pytest.mark.parametrize("restart", [False, True], ids=["live", "after-restart"])
def test_rollback_puts_the_old_file_back_and_keeps_the_current_one(svc: Svc, restart: bool) -> None:
    svc.add()
    rt = svc.project.open()
    try:
        upgrade = rt.upgrade("svc", "1.1.0")
        assert upgrade.success, upgrade.error_message
        svc.config.write_text(svc.config.read_text().replace("true", "false"))  # tuned by hand
        edited = svc.config.read_bytes()
        if restart:  # the upgrade's backup is on disk, not in the process
            rt.close()
            rt = svc.project.open()

        back = rt.rollback("svc")

        assert back.success, back.error_message
        assert svc.config.read_bytes() == svc.original
        assert rt.load("svc").settings() == OLD
        kept = svc.backups(back.request_id) / "config" / svc.config.name
        assert kept.read_bytes() == edited
        assert back.metrics["config"] == {
            "file": f"config/{svc.config.name}",
            "backup": str(kept),
            "restored_from": str(svc.backups(upgrade.request_id) / "config" / svc.config.name),
        }
    finally:
        rt.close()


def test_with_nothing_to_migrate_the_file_is_still_judged_and_else_left_alone(
    project: Project,
) -> None:
    svc = Svc(project)
    svc.add(declaration=DECLARATION.replace('from = "1.0.0"', 'from = "0.9.0"'))
    with project.open() as rt:
        refused = rt.upgrade("svc", "1.1.0")
        assert refused.error_code == "config-migration-failed"
        assert "required keys 'new_name', 'limits.max_depth' missing" in (
            refused.error_message or ""
        )

        svc.config.write_text("# tuned by hand\nnew_name = 'x'\n[limits]\nmax_depth = 4\n")
        hand_written = svc.config.read_bytes()
        result = rt.upgrade("svc", "1.1.0")

        assert result.success, result.error_message
        assert svc.config.read_bytes() == hand_written
        assert result.metrics["config"] == {
            "file": "config/svc.toml",
            "backup": None,
            "changed": False,
        }
        assert not svc.backups(result.request_id).exists()


def test_a_missing_config_file_is_a_warning_and_nothing_else(project: Project) -> None:
    svc = Svc(project)
    svc.config.unlink()
    svc.add()
    with project.open() as rt:
        result = rt.upgrade("svc", "1.1.0")

    assert result.success, result.error_message
    assert result.warnings == [
        f"{svc.config}: not found, so there is no config to migrate (svc@1.1.0 declares it "
        "in [component.config])"
    ]
    assert "config" not in result.metrics
    assert not svc.config.exists()
    assert not (project.root / ".noodle" / "config-backups").exists()


def test_a_component_without_config_declaration_touches_no_file(project: Project) -> None:
    svc = Svc(project)
    project.add("svc", "1.1.0", reader_source("1.1.0", svc.config))
    with project.open() as rt:
        result = rt.upgrade("svc", "1.1.0")
        assert result.success, result.error_message
        assert rt.rollback("svc").success

    assert "config" not in result.metrics
    assert svc.config.read_bytes() == svc.original
    assert not (project.root / ".noodle" / "config-backups").exists()


def test_a_switch_that_cannot_drain_drops_the_staged_file_and_changes_nothing(
    project: Project,
) -> None:
    """The new content waits beside the file until the gate is closed: a drain that times
    out leaves neither a changed file nor a temporary one nor a backup."""
    blocking = (
        "\n\ndef _block(self, started, release):\n    started.set()\n    release.wait()\n"
        "\n\nCounter.block = _block\n"
    )
    config = project.root / "config" / "counter.toml"
    config.parent.mkdir(parents=True)
    config.write_text("old_name = 1\n")
    original = config.read_bytes()
    project.constraints({"counter": ">=1"})
    project.add("counter", "1.0.0", counter_source("1.0.0", extra=blocking), entry="counter:create")
    with project.open(swap_timeout=0.2) as rt:
        declare_config(
            project,
            "counter",
            "1.1.0",
            counter_source("1.1.0"),
            "[component.config]\nfile = 'config/counter.toml'\n\n"
            "[[component.config.migrations]]\nrename = { old_name = 'new_name' }\n",
            entry="counter:create",
        )
        started, release = threading.Event(), threading.Event()
        in_flight = threading.Thread(target=rt.load("counter").block, args=(started, release))
        in_flight.start()
        started.wait()
        try:
            result = rt.upgrade("counter", "1.1.0")
        finally:
            release.set()
            in_flight.join()

        assert (result.status, result.error_code) == (UpgradeStatus.FAILED, "drain-timeout")
        assert config.read_bytes() == original
        assert sorted(config.parent.iterdir()) == [config]
        assert not (project.root / ".noodle" / "config-backups" / result.request_id).exists()
        assert rt.version("counter") == "1.0.0"


# ---------------------------------------------------------------------------- a crash


def test_restore_after_crash_puts_back_the_file_of_an_interrupted_upgrade(
    project: Project, tmp_path: Path
) -> None:
    svc = Svc(project)
    # The check after the switch kills the process: the file is written, nothing committed.
    dies = (
        "\nCHECKS = []\n\n\ndef health():\n    CHECKS.append(1)\n"
        "    if len(CHECKS) == 2:\n        __import__('os')._exit(17)\n    return True\n"
    )
    svc.add(extra=MIGRATE_CONFIG + dies, health_check="svc:health")
    child = subprocess.run(
        [sys.executable, str(SCRIPT), str(project.root), "svc", "1.1.0", str(tmp_path / "never")],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "NOODLE_CONTROL": "0"},
    )
    assert child.returncode == 17, child.stderr
    assert parse(svc.config) == NEW  # the process died past the write

    with Store.open(project.db_path) as store:
        interrupted = [entry.id for entry in store.recover_interrupted()]
    messages = restore_after_crash(load_project(project.root), interrupted)

    assert len(interrupted) == 1
    backup = svc.backups(interrupted[0]) / "config" / "svc.toml"
    assert messages == [
        f"{svc.config}: restored from {backup} (operation {interrupted[0]} was interrupted)"
    ]
    assert svc.config.read_bytes() == svc.original
    assert restore_after_crash(load_project(project.root), ["up-unknown"]) == []
    with project.open() as rt:
        assert rt.version("svc") == "1.0.0"
        assert rt.load("svc").settings() == OLD
