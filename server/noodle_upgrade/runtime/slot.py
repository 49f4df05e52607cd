"""One component inside a running process: its active version, the versions kept loaded
for rollback, and the single reference every call goes through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from packaging.version import Version

from noodle_upgrade.errors import HotSwapError
from noodle_upgrade.runtime.gate import Gate
from noodle_upgrade.runtime.handle import Handle, exposed_names, handle_class, is_method_like
from noodle_upgrade.runtime.loader import LoadedVersion, unload_package
from noodle_upgrade.runtime.routing import Split, measured_call, pooled_call

Wrap = Callable[[str, Callable[..., Any]], Callable[..., Any]]
SplitFactory = Callable[[str, Callable[..., Any], Callable[..., Any]], Callable[..., Any]]


def function_of(loaded: LoadedVersion, name: str) -> Callable[..., Any]:
    function = getattr(loaded.target, name, None)
    if callable(function):
        return function  # type: ignore[no-any-return]

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError(f"{loaded.descriptor.key} has no function {name!r}")

    return missing


class ComponentSlot:
    def __init__(self, active: LoadedVersion) -> None:
        self.name = active.descriptor.name
        self.active = active
        self.loaded: dict[Version, LoadedVersion] = {active.version: active}
        self.gate = Gate()
        self.members: list[Any] = active.instances  # a pool's instances, as served now
        self.renewed: frozenset[int] = frozenset()  # ids of members a rolling put in
        self.generation = 0  # bumped at every change of what serves calls
        self._foreign = False  # the handle routes calls to another version than active
        self.handle = self._handle_class(active)(self)
        self._lock = threading.Lock()

    @property
    def stateful(self) -> bool:
        return self.active.descriptor.stateful

    def _handle_class(
        self, loaded: LoadedVersion, wrap: Wrap | None = None, split: Split | None = None
    ) -> type[Handle]:
        """The handle class that serves ``loaded``: its bindings are class attributes.

        ``wrap(name, function)`` replaces each function while a rollout routes calls;
        ``split`` measures a pool's calls while a rolling upgrade replaces members.
        """
        target, stateful = loaded.target, loaded.descriptor.stateful
        entries: dict[str, object] = {}
        for name in exposed_names(target):
            if not is_method_like(target, name):
                entries[name] = self._live(name)
            elif loaded.pooled:
                entries[name] = staticmethod(pooled_call(self, name, split))
            elif stateful:
                entries[name] = staticmethod(self._gated(name, split))
            elif wrap is not None:
                entries[name] = staticmethod(wrap(name, getattr(target, name)))
            else:
                entries[name] = staticmethod(getattr(target, name))
        return handle_class(self.name, loaded.version, entries)

    def _install(self, cls: type[Handle], *, foreign: bool) -> None:
        """Serve through ``cls``; ``foreign`` when it routes calls to another version."""
        with self._lock:
            object.__setattr__(self.handle, "__class__", cls)
            if foreign or self._foreign:  # what serves calls changes: caches must know
                self.generation += 1
            self._foreign = foreign

    def measure(self, split: Split) -> None:
        """Count the active version's calls (a pool's by member, for a rolling upgrade;
        a stateful component's through its gate) without changing what serves them."""
        self._install(self._handle_class(self.active, split=split), foreign=False)

    def set_members(self, members: list[Any], renewed: frozenset[int]) -> None:
        with self._lock:
            self.renewed = renewed
            self.members = members  # one reference: a call picks from the old or the new list
            self.generation += 1

    def route(self, candidate: LoadedVersion, split: SplitFactory) -> None:
        """Serve each function through ``split(name, stable_fn, candidate_fn)`` while a
        rollout runs.

        A function the candidate lacks raises there, so a removed API shows up as the
        candidate's errors instead of as a crash after promotion.
        """

        def wrap(name: str, stable_fn: Callable[..., Any]) -> Callable[..., Any]:
            return split(name, stable_fn, function_of(candidate, name))

        self._install(self._handle_class(self.active, wrap), foreign=candidate is not self.active)

    def unroute(self) -> None:
        """Back to the active version's steady bindings."""
        self._install(self._handle_class(self.active), foreign=False)

    def _live(self, attribute: str) -> property:
        slot = self
        return property(lambda _handle: getattr(slot.active.target, attribute))

    def _gated(self, attribute: str, split: Split | None = None) -> Callable[..., Any]:
        # Resolved after the gate: a call held during a state move runs on the new version.
        gate, slot = self.gate, self
        inside = gate.inside

        def call(*args: Any, **kwargs: Any) -> Any:
            inside.append(None)  # Gate.enter, inlined: this runs on every call
            if gate.closed:
                gate.wait_open()
            try:
                return getattr(slot.active.target, attribute)(*args, **kwargs)
            finally:
                inside.pop()

        call.__name__ = call.__qualname__ = attribute
        return call if split is None else measured_call(split, attribute, call)

    def switch(self, new: LoadedVersion) -> float:
        """The point of no return: one reference change. Returns its duration in seconds.

        The handle's ``__class__`` is the reference: every name of the new version
        becomes visible in the same instant, and none of the old one stays.
        """
        cls = self._handle_class(new)
        started = time.perf_counter()
        with self._lock:
            self.loaded[new.version] = new
            self.active = new
            self.members, self.renewed = new.instances, frozenset()
            object.__setattr__(self.handle, "__class__", cls)
            self.generation += 1
            self._foreign = False
        return time.perf_counter() - started

    @contextmanager
    def quiesced(self, timeout: float) -> Iterator[None]:
        """Hold new calls of a stateful component and wait for those in flight."""
        if not self.stateful:
            yield
            return
        if not self.gate.close(timeout):
            raise HotSwapError(
                f"component {self.name!r} still had calls in flight after {timeout:g} s; "
                "nothing was changed (raise NOODLE_SWAP_TIMEOUT for long calls)",
                code="drain-timeout",
            )
        try:
            yield
        finally:
            self.gate.open()

    def release(self, keep: set[Version]) -> list[Version]:
        """Unload versions that are neither active nor kept for a rollback point."""
        released = []
        with self._lock:
            for version in list(self.loaded):
                if version != self.active.version and version not in keep:
                    unload_package(self.loaded.pop(version).package)
                    released.append(version)
        return released
