"""The component store as the runtime sees it: every version of every component.

The store may grow while the process runs; asking for a version the registry does not
know rescans the folder once before giving up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.version import Version

from noodle_upgrade.engine.manifest import load_component_manifest, scan_store
from noodle_upgrade.errors import ComponentNotFoundError, NoodleError
from noodle_upgrade.models import ComponentDescriptor


class Registry:
    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self._lock = threading.Lock()
        self._versions: dict[str, list[ComponentDescriptor]] = {}
        self.problems: list[str] = []
        self.rescan()

    def rescan(self) -> None:
        versions, problems = scan_store(self.store_dir)
        with self._lock:
            self._versions, self.problems = versions, problems

    def available(self) -> Mapping[str, Sequence[ComponentDescriptor]]:
        return self._versions

    def versions(self, name: str) -> Sequence[ComponentDescriptor]:
        return self._versions.get(name, [])

    def find(self, name: str, version: Version) -> ComponentDescriptor | None:
        return next((d for d in self.versions(name) if d.version == version), None)

    def ensure(self, name: str, version: Version | None = None) -> None:
        """Rescan once when ``name`` (or that version of it) is not known yet."""
        known = self.find(name, version) if version else self.versions(name)
        if not known:
            self.rescan()

    def broken(self, name: str, version: Version) -> NoodleError | None:
        """Why a version folder that exists is not offered: its manifest's error."""
        folder = self.store_dir / name / str(version)
        if self.find(name, version) is not None or not folder.is_dir():
            return None
        try:
            load_component_manifest(folder)
        except NoodleError as exc:
            return exc
        return None

    def get(self, name: str, version: Version) -> ComponentDescriptor:
        self.ensure(name, version)
        descriptor = self.find(name, version)
        if descriptor is None:
            have = ", ".join(str(d.version) for d in self.versions(name)) or "none"
            raise ComponentNotFoundError(
                f"{self.store_dir}: {name} {version} is not in the component store "
                f"(versions of {name}: {have})"
            )
        return descriptor
