"""Typed models shared by every layer (seed 000's data models, DESIGN §3 formats).

Pure data: no I/O here. Versions are ``packaging`` objects inside the engine and
normalised strings at the public edges (results, store, CLI).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from noodle_upgrade.engine.config_migration import ConfigDeclaration
from noodle_upgrade.engine.git_tags import GitSource

STRATEGY_NAMES = ("immediate", "gradual", "canary", "blue_green", "rolling", "shadow")


class ComponentType(StrEnum):
    RUNTIME = "runtime"
    COMPILER = "compiler"
    AI = "ai"
    DEPLOYMENT = "deployment"
    LIBRARY = "library"


class UpgradeStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed before the switch: nothing changed
    ROLLED_BACK = "rolled_back"  # failed after the switch: switched back
    REFUSED = "refused"  # refused by validation: nothing was loaded
    INTERRUPTED = "interrupted"  # the process died while it ran


class ProposalState(StrEnum):
    """What became of something the runtime proposed itself."""

    PENDING = "pending"  # waits for an operator's approve or reject
    DEFERRED = "deferred"  # approved by policy; waits for a window, an interval, resources
    APPROVED = "approved"  # running now
    APPLIED = "applied"
    FAILED = "failed"  # approved, but the operation did not succeed
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # a newer proposal, or an operator's own upgrade, replaced it

    @property
    def open(self) -> bool:
        return self in (ProposalState.PENDING, ProposalState.DEFERRED)


class BumpKind(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"
    PRERELEASE = "prerelease"
    NONE = "none"


class ValidationLevel(StrEnum):
    STRICT = "strict"
    NORMAL = "normal"
    PERMISSIVE = "permissive"


def new_id(prefix: str) -> str:
    """A short unique id that says what it identifies (``up-3f9c…``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ComponentDescriptor:
    """One version of one component, as its ``component.toml`` declares it."""

    name: str
    version: Version
    entry: str
    folder: Path
    description: str = ""
    component_type: ComponentType = ComponentType.LIBRARY
    hot_swappable: bool = True
    critical: bool = False
    health_check: str | None = None
    migrate: str | None = None
    downgrade: str | None = None
    upgrade_from: tuple[Version, ...] | None = None
    sha256: str | None = None
    idempotent: bool = False
    shadow_safe: bool = False
    pool: int = 1
    dependencies: Mapping[str, SpecifierSet] = field(default_factory=dict)
    config: ConfigDeclaration | None = None  # [component.config]: its own config file
    warnings: tuple[str, ...] = ()

    @property
    def manifest_path(self) -> Path:
        return self.folder / "component.toml"

    @property
    def entry_module(self) -> str:
        return self.entry.partition(":")[0]

    @property
    def factory(self) -> str | None:
        """The factory function's name when ``entry`` is ``module:factory``."""
        return self.entry.partition(":")[2] or None

    @property
    def stateful(self) -> bool:
        return self.factory is not None

    @property
    def pool_size(self) -> int:
        """Instances the runtime builds: ``pool`` for a factory entry, else one module."""
        return self.pool if self.stateful else 1

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Policy:
    """``[policy.<environment>]``: gates only upgrades the runtime proposes itself."""

    strategy: str | None = None
    auto_approve: tuple[str, ...] = ()  # bump kinds, and "rollback"
    maintenance_windows: tuple[str, ...] = ()
    min_interval_s: float | None = None
    max_cpu_percent: float | None = None
    max_memory_percent: float | None = None
    max_disk_percent: float | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """``noodle.toml`` at the project root."""

    root: Path
    store_dir: Path
    state_dir: Path
    environment: str = "development"
    components: Mapping[str, SpecifierSet] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=dict)
    git_source: GitSource | None = None  # [sources.git]: releases tagged in a repository
    warnings: tuple[str, ...] = ()

    @property
    def manifest_path(self) -> Path:
        return self.root / "noodle.toml"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def policy(self) -> Policy:
        return self.policies.get(self.environment, Policy())


@dataclass
class UpgradeRequest:
    component_name: str
    target_version: str
    current_version: str
    strategy: str = "immediate"
    parameters: dict[str, Any] = field(default_factory=dict)
    requested_by: str = "api"
    request_id: str = field(default_factory=lambda: new_id("up"))
    requested_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RollbackPoint:
    """Where one ``upgrade`` call started; ``rollback`` returns here."""

    id: str
    component_name: str
    version: str
    upgrade_id: str
    created_at: float
    to_version: str  # the version the upgrade installed


@dataclass
class UpgradeResult:
    request_id: str
    success: bool
    component_name: str
    from_version: str
    to_version: str
    status: UpgradeStatus
    execution_time: float = 0.0
    strategy: str = "immediate"
    path: list[str] = field(default_factory=list)
    rollback_point: RollbackPoint | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    error_code: str | None = None
    warnings: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    completed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "success": self.success,
            "component": self.component_name,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "status": str(self.status),
            "strategy": self.strategy,
            "path": list(self.path),
            "rollback_point": self.rollback_point.id if self.rollback_point else None,
            "execution_time": self.execution_time,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "warnings": list(self.warnings),
            "metrics": dict(self.metrics),
        }
