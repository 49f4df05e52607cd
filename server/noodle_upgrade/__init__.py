"""NoodleCore Upgrade: live, safe upgrades of versioned components in a running process."""

from noodle_upgrade.errors import (
    ComponentNotFoundError,
    ConfigError,
    HotSwapError,
    ManifestError,
    NoodleError,
    RollbackError,
    StoreError,
    ValidationError,
)
from noodle_upgrade.models import RollbackPoint, UpgradeResult, UpgradeStatus
from noodle_upgrade.runtime.handle import Handle
from noodle_upgrade.runtime.runtime import Runtime

__all__ = [
    "ComponentNotFoundError",
    "ConfigError",
    "Handle",
    "HotSwapError",
    "ManifestError",
    "NoodleError",
    "RollbackError",
    "RollbackPoint",
    "Runtime",
    "StoreError",
    "UpgradeResult",
    "UpgradeStatus",
    "ValidationError",
]
