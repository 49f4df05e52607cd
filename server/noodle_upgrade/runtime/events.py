"""Structured events: written to the store and handed to in-process subscribers.

The dashboard, the language server and ``noodle events`` watch the engine through them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from noodle_upgrade.errors import StoreError
from noodle_upgrade.store import Store

log = logging.getLogger("noodle_upgrade.events")


@dataclass(frozen=True)
class Event:
    kind: str
    component: str | None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    id: int = 0


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every event from now on; returns the unsubscribe."""
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not subscriber]

        return unsubscribe

    def publish(self, kind: str, component: str | None = None, /, **data: Any) -> Event:
        try:
            event_id = self._store.append_event(kind, component, data)
        except StoreError:
            # An event that cannot be stored is still worth showing live; the audit
            # record of the same action is what must be durable, and it is written apart.
            log.exception("could not store event %s", kind)
            event_id = 0
        return self._deliver(Event(kind, component, data, id=event_id))

    def announce(self, kind: str, component: str | None = None, /, **data: Any) -> Event:
        """Hand an event to live subscribers only: progress that is noise in history
        (an upgrade's stages) and not worth a write on the upgrade's path."""
        return self._deliver(Event(kind, component, data))

    def _deliver(self, event: Event) -> Event:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, event.kind)
        return event
