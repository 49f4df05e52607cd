"""Fixtures shared by the test suite: a project folder on ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.project import Project
from noodle_upgrade.store import Store


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project folder; write ``noodle.toml`` with ``project.constraints``."""
    return Project(tmp_path / "project")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a project's state store lives; nothing is created yet."""
    return tmp_path / "project" / ".noodle" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """A state store opened (and migrated) on ``db_path``."""
    with Store.open(db_path) as opened:
        yield opened
