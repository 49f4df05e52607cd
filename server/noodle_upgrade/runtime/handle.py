"""The stable object an application calls a component through.

Each version a handle serves gets its own ``Handle`` subclass whose class attributes are
that version's bindings: callables as static entries (a call costs one cached type
lookup), data attributes as properties that read the active version live, so a module
global that is rebound later is never stale. A swap assigns the handle's ``__class__``:
one reference change, so every name switches in the same instant.

There is deliberately no ``__getattr__``: its mere presence puts CPython's slower
attribute hook on every lookup (measured 1.10× a direct call on a trivial function,
against 1.04× without it; routing calls through it costs ~5×; docs/benchmarks.md).
A call that has looked its function up finishes on the version it started on.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noodle_upgrade.runtime.slot import ComponentSlot


class Handle:
    __slots__ = ("_noodle_slot",)
    _noodle_slot: ComponentSlot

    def __init__(self, slot: ComponentSlot) -> None:
        object.__setattr__(self, "_noodle_slot", slot)

    if TYPE_CHECKING:  # for type checkers only: at run time it would slow every call

        def __getattr__(self, name: str) -> Any: ...

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"cannot set {name!r} on the handle of component {self._noodle_slot.name!r}: "
            "a handle is read-only; change the component's code and upgrade it"
        )

    def __dir__(self) -> list[str]:
        return sorted(exposed_names(self._noodle_slot.active.target))

    def __repr__(self) -> str:
        slot = self._noodle_slot
        return f"<Handle {slot.name} {slot.active.version}>"

    @property
    def __noodle_component__(self) -> str:
        return self._noodle_slot.name

    @property
    def __noodle_version__(self) -> str:
        return str(self._noodle_slot.active.version)


def handle_class(component: str, version: object, bindings: dict[str, object]) -> type[Handle]:
    """A ``Handle`` subclass for one version of one component; its attributes are its
    bindings. Switching a handle's ``__class__`` to another is the atomic swap."""
    namespace: dict[str, object] = {"__slots__": (), **bindings}
    return type(f"Handle[{component} {version}]", (Handle,), namespace)


def exposed_names(target: Any) -> list[str]:
    """The public attributes a handle offers (names without a leading underscore)."""
    names = vars(target) if inspect.ismodule(target) else dict.fromkeys(dir(target))
    return [name for name in names if not name.startswith("_")]


def is_method_like(target: Any, name: str) -> bool:
    """Whether ``name`` is code to call rather than data to read, without running it."""
    static = inspect.getattr_static(target, name, None)
    if isinstance(static, staticmethod | classmethod):
        return True
    if isinstance(static, property):
        return False
    return callable(static)
