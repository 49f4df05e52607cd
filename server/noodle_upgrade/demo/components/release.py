"""A release of a demo component, and how it is written into a project's store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from noodle_upgrade.scaffold import ManifestValue, write_component


@dataclass(frozen=True)
class Release:
    """One version of one component: its code and the fields of its ``component.toml``."""

    name: str
    version: str
    summary: str  # what this version changes, one line for the narrative
    code: str
    entry: str | None = None  # default: the module named after the component
    manifest: Mapping[str, ManifestValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def publish(root: Path, release: Release) -> Path:
    """Write ``release`` into the component store of the project at ``root``."""
    fields: dict[str, ManifestValue] = {"description": release.summary, **release.manifest}
    return write_component(
        root, release.name, release.version, release.code, entry=release.entry, sign=False, **fields
    )
