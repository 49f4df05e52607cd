"""A component's own config file on disk: read, render, back up, replace, restore.

The new content is written to a file beside the old one before anything is switched, so
everything that can fail (a full disk, a read-only folder) fails while nothing has changed
yet; the switch itself is one ``os.replace``, atomic on POSIX, so a reader sees either the
whole old file or the whole new one. Before that, the old file is copied to
``<state>/config-backups/<operation id>/<path relative to the project root>``: a failed
upgrade, a rollback and recovery after a crash put it back from there.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from noodle_upgrade.durable import (
    is_temporary,
    mode_of,
    move_into_place,
    write_atomically,
    write_beside,
)
from noodle_upgrade.engine.manifest import toml_error_message
from noodle_upgrade.errors import ConfigError, NoodleError
from noodle_upgrade.models import ProjectConfig

BACKUPS = "config-backups"
RESTORE_FAILED = "config-restore-failed"


@contextmanager
def reported_as(code: str) -> Iterator[None]:
    """Errors inside count as ``code``: the step of the operation that they failed."""
    try:
        yield
    except NoodleError as exc:
        exc.code = code
        raise


def read_config(path: Path) -> dict[str, Any]:
    """The file's content as a dict, by its suffix (``.toml`` or ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(toml_error_message(path, text, exc)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top, got {type(data).__name__}")
    return data


def render_config(path: Path, config: Mapping[str, Any]) -> bytes:
    """``config`` in the file's format; a value the format cannot hold is an error."""
    try:
        if path.suffix == ".toml":
            return tomli_w.dumps(config).encode()
        text = json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ConfigError(
            f"{path}: the migrated config cannot be written as {kind}: {exc}"
        ) from None
    return f"{text}\n".encode()


def backup_folder(project: ProjectConfig, op_id: str) -> Path:
    """Where operation ``op_id`` keeps the files it replaced, by their project-relative path."""
    return project.state_dir / BACKUPS / op_id


def _reason(exc: OSError | NoodleError) -> str:
    return exc.message if isinstance(exc, NoodleError) else str(exc.strerror)


@dataclass
class ConfigReplacement:
    """A config file's next content, staged beside it, and the backup of what it replaces."""

    project: ProjectConfig
    op_id: str
    relative: str  # POSIX, relative to the project root
    staged: Path
    backup: Path | None  # None: the file did not exist
    committed: bool = False

    @property
    def target(self) -> Path:
        return self.project.root / self.relative

    def commit(self) -> None:
        """Put the staged content in place: one rename."""
        move_into_place(self.staged, self.target)
        self.committed = True

    def revert(self) -> str | None:
        """Leave the file as it was before the operation: drop the staged content, or
        after the commit put the backup back. Returns a message when that fails."""
        if not self.committed:
            self.staged.unlink(missing_ok=True)
            shutil.rmtree(backup_folder(self.project, self.op_id), ignore_errors=True)
            return None
        try:
            if self.backup is None:
                self.target.unlink(missing_ok=True)
            else:
                write_atomically(
                    self.target, self.backup.read_bytes(), self.op_id, create_folders=True
                )
        except (OSError, NoodleError) as exc:
            kept = f"; the previous content is in {self.backup}" if self.backup else ""
            return f"{self.target}: could not be restored ({_reason(exc)}){kept}"
        self.committed = False
        return None

    def describe(self) -> dict[str, str | None]:
        """For ``UpgradeResult.metrics["config"]``."""
        return {"file": self.relative, "backup": str(self.backup) if self.backup else None}


def stage_replacement(
    project: ProjectConfig, op_id: str, relative: str, content: bytes, mode: int | None = None
) -> ConfigReplacement:
    """Back up ``relative`` (when it exists) under ``op_id``, and stage ``content`` beside it.

    Nothing the component reads changes until ``commit``.
    """
    target = project.root / relative
    backup = _back_up(project, op_id, relative)
    try:
        staged = write_beside(target, content, op_id, mode, create_folders=True)
    except NoodleError:
        shutil.rmtree(backup_folder(project, op_id), ignore_errors=True)
        raise
    return ConfigReplacement(project, op_id, relative, staged, backup)


def _back_up(project: ProjectConfig, op_id: str, relative: str) -> Path | None:
    """Copy the file to ``op_id``'s backup folder; None when there is no file."""
    target = project.root / relative
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read: {exc.strerror}") from None
    backup = backup_folder(project, op_id) / relative
    write_atomically(backup, current, op_id, mode_of(target), create_folders=True)
    return backup


def backed_up(project: ProjectConfig, op_id: str) -> list[tuple[str, Path]]:
    """(project-relative path, backup) of every file operation ``op_id`` replaced."""
    folder = backup_folder(project, op_id)
    if not folder.is_dir():
        return []
    return [
        (path.relative_to(folder).as_posix(), path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not is_temporary(path, op_id)
    ]


def stage_restore(project: ProjectConfig, from_op: str, op_id: str) -> ConfigReplacement | None:
    """Stage the file that operation ``from_op`` replaced back into place, backing up the
    current one under ``op_id``, so that nothing is lost either way. None when ``from_op``
    replaced nothing. (An operation replaces one file: its component's.)"""
    found = backed_up(project, from_op)
    if not found:
        return None
    relative, backup = found[0]
    try:
        content = backup.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{backup}: cannot read the backup: {exc.strerror}") from None
    return stage_replacement(project, op_id, relative, content, mode_of(backup))


def restore_after_crash(project: ProjectConfig, operation_ids: Iterable[str]) -> list[str]:
    """Put back every file that interrupted operations had backed up; one message per file.

    For an operation the process did not live to commit, the component stays at its
    previous version, so the file it read belongs back too. A file already holding its
    backed-up content is rewritten harmlessly (the crash came before the write).
    """
    messages = []
    for op_id in operation_ids:
        for relative, backup in backed_up(project, op_id):
            target = project.root / relative
            try:
                write_atomically(
                    target, backup.read_bytes(), op_id, mode_of(backup), create_folders=True
                )
            except (OSError, ConfigError) as exc:
                messages.append(
                    f"{target}: operation {op_id} was interrupted, but its backup {backup} "
                    f"could not be put back ({_reason(exc)}); copy it by hand"
                )
                continue
            messages.append(f"{target}: restored from {backup} (operation {op_id} was interrupted)")
    return messages
