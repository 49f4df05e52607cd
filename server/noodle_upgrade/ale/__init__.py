"""Adaptive Library Evolution (DESIGN §5): record real calls into external libraries
(pilot: ``numpy.dot``, ``numpy.matmul``), prove faster candidates equivalent in a
sandbox, and route calls to them per input signature.

``from noodle_upgrade import ale``; ``ale.enable(project)`` … ``ale.disable()``
(``ale.session``). They are looked up on first use, so that importing a part of ALE (its
model, its store) does not import the dispatcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noodle_upgrade.ale.session import current, disable, enable, refresh_routes

__all__ = ["current", "disable", "enable", "refresh_routes"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from noodle_upgrade.ale import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
