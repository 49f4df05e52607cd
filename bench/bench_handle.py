"""Calling through a Handle vs calling the component directly (goal: ≤ 1.05×).

Three calls, one thread:

- trivial: ``text.split()`` (~100 ns), where any per-call overhead shows at its largest;
- realistic: a regex tokenizer on a short expression (~2 µs);
- stateful: the same tokenizer as a method of a factory-made instance, which the Handle
  calls through the component's gate (so that a swap can quiesce it); direct is the
  same method of an instance made by the same factory.

The trivial call is also timed through two handles the design avoids: one whose class
merely *has* a ``__getattr__`` besides the class bindings (its presence stops CPython
3.11 from specialising the attribute load), and one that routes every name through
``__getattr__`` alone, the obvious design.

Interleaved rounds, minimum per side: the machines are shared and noisy, so the ratio
of two minima from one run is the number to read, not the absolute times.
"""

from __future__ import annotations

import sys
import timeit
from typing import Any

from common import (
    EXPRESSION,
    LEXER_SOURCE,
    SETTINGS,
    STATEFUL_LEXER_SOURCE,
    TRIVIAL_SOURCE,
    best_per_call,
    header,
    project,
    table,
    verdict,
)
from noodle_upgrade import Runtime
from noodle_upgrade.runtime.handle import Handle
from noodle_upgrade.runtime.loader import ROOT_PACKAGE
from noodle_upgrade.scaffold import write_component

GOAL = 1.05
ROUNDS = 15
# (label, component, source, factory entry or None, calls per round)
CASES = [
    ("trivial: text.split()", "trivial", TRIVIAL_SOURCE, None, 200_000),
    ("realistic: regex tokenizer", "lexer", LEXER_SOURCE, None, 20_000),
    ("stateful: tokenizer method", "counter", STATEFUL_LEXER_SOURCE, "create", 20_000),
]


def direct_target(name: str, factory: str | None) -> Any:
    """What the application would call without noodle: the module, or a new instance."""
    suffix = f".{name}"
    module = next(
        module
        for key, module in sys.modules.items()
        if key.startswith(f"{ROOT_PACKAGE}.{name}__") and key.endswith(suffix)
    )
    return module if factory is None else getattr(module, factory)()


def with_getattr(handle: Handle) -> Handle:
    """The same handle, from a subclass that also has a ``__getattr__`` fallback."""
    slot = handle._noodle_slot

    def fallback(_handle: Handle, name: str) -> Any:
        return getattr(slot.active.target, name)

    namespace = {"__slots__": (), "__getattr__": fallback}
    cls: type[Handle] = type("HandleWithGetattr", (type(handle),), namespace)
    return cls(slot)


class Routed:
    """The obvious handle: every attribute forwarded to the active version."""

    __slots__ = ("_slot",)

    def __init__(self, handle: Handle) -> None:
        self._slot = handle._noodle_slot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._slot.active.target, name)


def timer(target: object) -> timeit.Timer:
    return timeit.Timer("t.tokenize(x)", globals={"t": target, "x": EXPRESSION})


def main() -> int:
    header("Calling through a Handle vs a direct call")
    rows = []
    with project({name: ">=1" for _, name, _, _, _ in CASES}) as root:
        for _, name, source, factory, _ in CASES:
            entry = f"{name}:{factory}" if factory else None
            write_component(root, name, "1.0.0", source, entry=entry)
        with Runtime.open(root, settings=SETTINGS) as rt:
            for label, name, _, factory, number in CASES:
                handle = rt.load(name)
                timers = {label: timer(handle)}
                if name == "trivial":  # the designs the Handle avoids
                    timers["  Handle that also has __getattr__"] = timer(with_getattr(handle))
                    timers["  routed by __getattr__ alone"] = timer(Routed(handle))
                best = best_per_call(
                    {"direct": timer(direct_target(name, factory)), **timers}, ROUNDS, number
                )
                for shown in timers:
                    ratio = best[shown] / best["direct"]
                    goal = f"≤ {GOAL} {verdict(ratio <= GOAL)}" if shown == label else ""
                    rows.append(
                        [
                            shown,
                            f"{best['direct'] * 1e9:.1f}",
                            f"{best[shown] * 1e9:.1f}",
                            f"{ratio:.3f}",
                            goal,
                        ]
                    )
    print(table(["call", "direct ns", "Handle ns", "ratio", "goal"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
