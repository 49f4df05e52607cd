"""The project as the command line sees it when no runtime serves it: files and store.

Nothing here imports component code; reading status, history or a plan is safe to do
next to a running application.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from noodle_upgrade.config import load_settings
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.engine.planner import UpgradePlan, plan_upgrade
from noodle_upgrade.engine.registry import Registry
from noodle_upgrade.engine.versions import parse_version
from noodle_upgrade.errors import ComponentNotFoundError, StoreError
from noodle_upgrade.models import ComponentDescriptor, ProjectConfig
from noodle_upgrade.store import Store


@dataclass
class OfflineProject:
    config: ProjectConfig
    store: Store
    registry: Registry

    def locked(self) -> dict[str, str]:
        return self.store.active_versions()

    def active_descriptors(self) -> dict[str, ComponentDescriptor]:
        active = {}
        for name, version in self.locked().items():
            descriptor = self.registry.find(name, Version(version))
            if descriptor is not None:
                active[name] = descriptor
        return active

    def problems(self) -> list[str]:
        """What the user should fix: noodle.toml warnings and unreadable manifests."""
        return [*self.config.warnings, *self.registry.problems]

    def status(self) -> dict[str, Any]:
        locked = self.locked()
        components = {}
        for name in sorted(self.config.components):
            components[name] = {
                "version": locked.get(name),
                "state": "active" if name in locked else "not-activated",
                "constraint": str(self.config.components[name]) or "any",
                "available": [str(d.version) for d in self.registry.versions(name)],
                "rollback_points": [p.id for p in self.store.rollback_points(name)],
            }
        return {
            "live": False,
            "project": str(self.config.root),
            "environment": self.config.environment,
            "components": components,
            "pending": [record.to_dict() for record in self.store.proposals(open_only=True)],
        }

    def plan(self, name: str, version: str | None) -> UpgradePlan:
        active = self.active_descriptors()
        if name not in active:
            raise ComponentNotFoundError(
                f"component {name!r} has no active version in {self.store.path}: "
                + (
                    "it is activated when the application first opens its Runtime"
                    if name in self.config.components
                    else "it is not listed in noodle.toml [components]"
                )
            )
        target = parse_version(version, "target version") if version is not None else None
        return plan_upgrade(
            name,
            target,
            current=active[name].version,
            available=self.registry.available(),
            active=active,
            constraints=self.config.components,
        )


@contextmanager
def open_offline(root: Path, *, create_store: bool = False) -> Iterator[OfflineProject]:
    config = load_project(root)
    load_settings(config.root)  # invalid NOODLE_* values are reported by every command
    if not create_store and not config.db_path.exists():
        raise StoreError(
            f"{config.db_path}: no state store yet; it is created when the application "
            "opens its Runtime (or by `noodle init`)"
        )
    store = Store.open(config.db_path)
    try:
        yield OfflineProject(config, store, Registry(config.store_dir))
    finally:
        store.close()
