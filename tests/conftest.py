"""Fixtures shared by the test suite: a project folder on ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.project import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project folder; write ``noodle.toml`` with ``project.constraints``."""
    return Project(tmp_path / "project")
