"""What the runtime's procedures share: project, settings, store, registry, slots, events."""

from __future__ import annotations

from dataclasses import dataclass, field

from noodle_upgrade.config import Settings
from noodle_upgrade.engine.registry import Registry
from noodle_upgrade.errors import ComponentNotFoundError
from noodle_upgrade.models import ComponentDescriptor, ProjectConfig
from noodle_upgrade.runtime.api_cache import ApiCache
from noodle_upgrade.runtime.events import EventBus
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.store import Store


@dataclass
class Context:
    project: ProjectConfig
    settings: Settings
    store: Store
    registry: Registry
    events: EventBus
    slots: dict[str, ComponentSlot] = field(default_factory=dict)
    apis: ApiCache = field(default_factory=ApiCache)

    def active_descriptors(self) -> dict[str, ComponentDescriptor]:
        return {name: slot.active.descriptor for name, slot in self.slots.items()}

    def slot(self, name: str) -> ComponentSlot:
        try:
            return self.slots[name]
        except KeyError:
            listed = ", ".join(sorted(self.slots)) or "none"
            raise ComponentNotFoundError(
                f"component {name!r} is not active in this runtime "
                f"({self.project.manifest_path} [components] lists: {listed})"
            ) from None
