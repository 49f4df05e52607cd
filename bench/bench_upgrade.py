"""Whole immediate upgrades and rollbacks of a small component, one after another.

Goals (DESIGN §6): a whole upgrade ≤ 25 ms (the seed reports 45–120 ms), judged here at
p95 of the call (p99 of ~130 samples is the second slowest operation, which on a shared
machine says more about the neighbours than about the engine; it is printed too), and
the switch, the point of no return, p99 ≤ 1 ms.

A chain of versions 1.0.0, 1.1.0, … of a small lexer is upgraded through in the pattern
upgrade, upgrade, rollback (a rollback goes back one version, so the next upgrade goes
on to a version not loaded yet). Each operation is a whole one: validate and plan, load
in isolation, health check, switch, post-check, commit to the SQLite store with its
audit record, events and retention. Three numbers per operation:

- ``total_ms``: the engine's own metric (``UpgradeResult.metrics``), taken once the
  outcome is committed to the store (events and retention come after it);
- ``call``: the wall time of the ``rt.upgrade()`` / ``rt.rollback()`` call, commit,
  audit, events and retention included: what the caller waits for;
- ``switch_ms``: the reference swap itself, during which calls see the change.

The same for a stateful component (factory entry, snapshot/restore, migrate and
downgrade hooks); for it ``switch_ms`` leaves out the state move, which happens while
the component's gate holds calls, just before the swap (``held_ms`` counts both).

Last, upgrades near the top of a chain of 20 and of 500 stored versions, interleaved:
the time of an upgrade should not depend on how many versions the store keeps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common import (
    EXPRESSION,
    SETTINGS,
    TOKENS,
    header,
    percentile,
    pin,
    project,
    table,
    verdict,
    write_lexer_chain,
)
from noodle_upgrade import Runtime
from noodle_upgrade.models import UpgradeResult

UPGRADE_GOAL_MS = 25.0
SWITCH_GOAL_MS = 1.0
SEED_LOWER_MS = 45.0

OPERATIONS = 200  # stateless: upgrade, upgrade, rollback, …
STATEFUL_OPERATIONS = 90
SCALING_UPGRADES = 15
FEW_VERSIONS, MANY_VERSIONS = 20, 500


@dataclass
class Timings:
    """Milliseconds per measure, in the order the operations ran."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, measure: str, value: float) -> None:
        self.samples.setdefault(measure, []).append(value)

    def get(self, measure: str) -> list[float]:
        return self.samples.get(measure, [])


@dataclass(frozen=True)
class Goal:
    """A limit on one percentile of a measure."""

    limit_ms: float
    q: float

    def text(self) -> str:
        return f"p{self.q:g} ≤ {self.limit_ms:g} ms"


UPGRADE_GOAL = Goal(UPGRADE_GOAL_MS, 95)
SWITCH_GOAL = Goal(SWITCH_GOAL_MS, 99)

# (what, the samples, the goal) of every goal checked, for the summary
Checks = list[tuple[str, list[float], Goal]]


def versions_needed(operations: int) -> int:
    """Versions the pattern upgrade, upgrade, rollback walks through in ``operations``."""
    return operations - operations // 3 + 1  # a rollback's target is loaded already


def run_pattern(
    rt: Runtime,
    name: str,
    versions: Sequence[str],
    operations: int,
    between: Callable[[], None],
) -> Timings:
    """Upgrade, upgrade, rollback … ``operations`` times, up the chain ``versions``."""
    timings = Timings()
    position = versions.index(rt.version(name))
    for index in range(operations):
        started = time.perf_counter()
        result: UpgradeResult
        if index % 3 == 2:
            kind = "rollback"
            result = rt.rollback(name)
        else:
            kind = "upgrade"
            position += 1
            result = rt.upgrade(name, versions[position])
        call_ms = (time.perf_counter() - started) * 1e3
        if not result.success:
            raise SystemExit(f"{kind} {index} failed: {result.error_code}: {result.error_message}")
        if index == 0:  # the first upgrade pays for imports the others reuse
            timings.add("cold", call_ms)
        else:
            timings.add(f"{kind} total_ms", result.metrics["total_ms"])
            timings.add(f"{kind} call", call_ms)
            timings.add(f"{kind} switch_ms", result.metrics["switch_ms"])
        between()
    return timings


def stat_row(label: str, values: Sequence[float], goal: Goal | None = None) -> list[str]:
    cells = [percentile(values, q) for q in (50, 95, 99)] + [max(values)]
    shown = goal.text() if goal else ""
    return [label, str(len(values)), *(f"{cell:.3f}" for cell in cells), shown]


HEADERS = ["measure", "n", "p50", "p95", "p99", "max", "goal"]


def stateless(checks: Checks) -> None:
    name = "lexer"
    count = versions_needed(OPERATIONS)
    with project({}) as root:
        versions = write_lexer_chain(root, name, count)
        pin(root, {name: versions[0]}, {name: ">=1,<2"})
        with Runtime.open(root, settings=SETTINGS) as rt:
            handle: Any = rt.load(name)

            def check() -> None:
                if handle.tokenize(EXPRESSION) != TOKENS:
                    raise SystemExit("the lexer answered wrongly after an operation")

            timings = run_pattern(rt, name, versions, OPERATIONS, check)
    up_call = timings.get("upgrade call")
    rows = [
        stat_row("upgrade total_ms", timings.get("upgrade total_ms")),
        stat_row("upgrade call", up_call, UPGRADE_GOAL),
        stat_row("upgrade switch_ms", timings.get("upgrade switch_ms"), SWITCH_GOAL),
        stat_row("rollback total_ms", timings.get("rollback total_ms")),
        stat_row("rollback call", timings.get("rollback call")),
        stat_row("rollback switch_ms", timings.get("rollback switch_ms"), SWITCH_GOAL),
    ]
    print(
        f"\n{name}: {len(versions)} versions, {OPERATIONS} operations "
        "(upgrade, upgrade, rollback, …); milliseconds"
    )
    print(table(HEADERS, rows))
    print(f"first upgrade (cold, not in the table): {timings.get('cold')[0]:.3f} ms")
    checks.append(("whole upgrade (call)", up_call, UPGRADE_GOAL))
    checks.append(("upgrade switch", timings.get("upgrade switch_ms"), SWITCH_GOAL))
    checks.append(("rollback switch", timings.get("rollback switch_ms"), SWITCH_GOAL))


def stateful(checks: Checks) -> None:
    name = "lexer"
    count = versions_needed(STATEFUL_OPERATIONS)
    calls = 0
    with project({}) as root:
        versions = write_lexer_chain(root, name, count, stateful=True)
        pin(root, {name: versions[0]}, {name: ">=1,<2"})
        with Runtime.open(root, settings=SETTINGS) as rt:
            handle: Any = rt.load(name)

            def call() -> None:
                nonlocal calls
                for _ in range(10):
                    handle.tokenize(EXPRESSION)
                calls += 10

            call()
            timings = run_pattern(rt, name, versions, STATEFUL_OPERATIONS, call)
            served = handle.served()
    rows = [
        stat_row("upgrade total_ms", timings.get("upgrade total_ms")),
        stat_row("upgrade call", timings.get("upgrade call"), UPGRADE_GOAL),
        stat_row("upgrade switch_ms", timings.get("upgrade switch_ms"), SWITCH_GOAL),
        stat_row("rollback call", timings.get("rollback call")),
        stat_row("rollback switch_ms", timings.get("rollback switch_ms"), SWITCH_GOAL),
    ]
    print(
        f"\nstateful {name} (factory entry, migrate and downgrade hooks): {len(versions)} "
        f"versions, {STATEFUL_OPERATIONS} operations; milliseconds"
    )
    print(table(HEADERS, rows))
    kept = "kept" if served == calls else f"LOST: {served} counted, {calls} made"
    print(f"state across every operation: {kept}")
    checks.append(("stateful whole upgrade (call)", timings.get("upgrade call"), UPGRADE_GOAL))
    checks.append(("stateful upgrade switch", timings.get("upgrade switch_ms"), SWITCH_GOAL))
    checks.append(("stateful rollback switch", timings.get("rollback switch_ms"), SWITCH_GOAL))


def scaling(checks: Checks) -> None:
    """Upgrades near the top of a short and of a long chain, interleaved."""
    sizes = {"few": FEW_VERSIONS, "many": MANY_VERSIONS}
    walls: dict[str, list[float]] = {name: [] for name in sizes}
    with project({}) as root:
        chains = {name: write_lexer_chain(root, name, count) for name, count in sizes.items()}
        start = {name: count - SCALING_UPGRADES - 2 for name, count in sizes.items()}
        pin(
            root,
            {name: chains[name][start[name]] for name in sizes},
            dict.fromkeys(sizes, ">=1,<2"),
        )
        with Runtime.open(root, settings=SETTINGS) as rt:
            for step in range(1, SCALING_UPGRADES + 1):
                for name in sizes:
                    began = time.perf_counter()
                    result = rt.upgrade(name, chains[name][start[name] + step])
                    if step > 1:  # the first pays for imports
                        walls[name].append((time.perf_counter() - began) * 1e3)
                    if not result.success:
                        raise SystemExit(f"upgrade failed: {result.error_message}")
    few, many = walls["few"], walls["many"]
    print("\none upgrade near the top of the chain, by versions in the store; milliseconds")
    rows = [
        stat_row(f"{FEW_VERSIONS} versions: call", few),
        stat_row(f"{MANY_VERSIONS} versions: call", many, UPGRADE_GOAL),
    ]
    print(table(HEADERS, rows))
    ratio = percentile(many, 50) / percentile(few, 50)
    print(f"p50 ratio {MANY_VERSIONS} / {FEW_VERSIONS} versions: {ratio:.2f}× (flat would be ~1×)")
    checks.append((f"whole upgrade, {MANY_VERSIONS} versions stored", many, UPGRADE_GOAL))


def main() -> int:
    header("Whole immediate upgrades and rollbacks")
    checks: Checks = []
    stateless(checks)
    stateful(checks)
    scaling(checks)
    print("\nsummary")
    rows = []
    for what, samples, goal in checks:
        value = percentile(samples, goal.q)
        rows.append([what, goal.text(), f"{value:.3f} ms", verdict(value <= goal.limit_ms)])
    print(table(["measure", "goal", "measured", "verdict"], rows))
    whole = next(samples for what, samples, _ in checks if what == "whole upgrade (call)")
    print(
        f"whole upgrade / the seed's lower bound ({SEED_LOWER_MS:g} ms): "
        f"p50 {percentile(whole, 50) / SEED_LOWER_MS:.3f}, "
        f"p95 {percentile(whole, 95) / SEED_LOWER_MS:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
