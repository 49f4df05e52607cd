"""Throughput and latency of calls in a window that holds an upgrade vs a steady window.

Goals (DESIGN §6): during an upgrade under concurrent load, zero failed calls,
throughput ≥ 95% and p99 latency ≤ 1.10× of steady state (the seed reports −15% and
+67%).

WORKERS threads call ``handle.tokenize(EXPRESSION)`` through the component's Handle in
a loop (~2 µs of real work per call) and record every call's latency. The main thread
alternates steady windows and upgrade windows of the same length; in the middle of each
upgrade window it fires an upgrade or, every other time, a rollback. Pairs alternate
their order (steady first, then upgrade first) so that a drift of the machine's load
does not favour one side. Calls are counted in the window they started in; a call that
raises or answers wrongly is a failed call.

CPython threads share one interpreter lock: the workers and the upgrade take turns
rather than run side by side, so an upgrade's work is paid by the calls directly. The
numbers say how much; nothing here assumes it.

Besides the windows, the rows "during the operation" cover only the time from the
start to the end of each upgrade or rollback call: the local effect a window dilutes.
"""

from __future__ import annotations

import sys
import threading
import time
from array import array
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

THROUGHPUT_GOAL = 0.95
P99_GOAL = 1.10

WORKERS = 4
WINDOW_S = 0.5
PAIRS = 10
WARMUP_S = 0.3
VERSIONS = PAIRS // 2 + 2  # upgrades and rollbacks alternate

# Where a call can start. An upgrade window has two parts: the time its operation runs
# and the rest, so that the calls made during the operation itself can be told apart.
STEADY, UPGRADE, OPERATION = "steady", "upgrade", "operation"
PARTS = (STEADY, UPGRADE, OPERATION)
WINDOWS = 2 * PAIRS
WARMUP = WINDOWS * len(PARTS)  # the phase numbers below it are (window, part)
STOP = -1


def phase_of(window: int, part: str) -> int:
    return window * len(PARTS) + PARTS.index(part)


@dataclass
class Calls:
    """Calls pooled over some phases: their time, latencies (ns, sorted) and failures."""

    seconds: float = 0.0
    latencies: list[int] = field(default_factory=list)
    failed: int = 0

    def add(self, other: Calls) -> None:
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        self.failed += other.failed

    def done(self) -> Calls:
        self.latencies.sort()
        return self

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        """The ``q``-th percentile in µs; call ``done()`` first."""
        return percentile(self.latencies, q, presorted=True) / 1e3


@dataclass
class Recorder:
    """What one worker saw, per phase number: latencies (ns) and failed calls."""

    latencies: list[array[int]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def worker(handle: Any, phase: list[int], recorder: Recorder, ready: threading.Barrier) -> None:
    latencies = [array("q") for _ in range(WARMUP + 1)]
    failed = [0] * (WARMUP + 1)
    clock, text, expected = time.perf_counter_ns, EXPRESSION, TOKENS
    ready.wait()
    while (current := phase[0]) != STOP:
        started = clock()
        try:
            ok = handle.tokenize(text) == expected
        except Exception:
            ok = False
        latencies[current].append(clock() - started)
        if not ok:
            failed[current] += 1
    recorder.latencies, recorder.failed = latencies, failed


def sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


@dataclass
class Measured:
    windows: list[dict[str, Calls]]  # per window, per part
    kinds: list[str]  # STEADY or UPGRADE, per window
    operations: list[float]  # wall time of each upgrade or rollback (ms)
    made: int  # every call, the warm-up's included


def measure(rt: Runtime, name: str, versions: list[str]) -> Measured:
    """Alternate steady and upgrade windows while WORKERS threads call the handle."""
    handle: Any = rt.load(name)
    phase = [WARMUP]
    seconds = [dict.fromkeys(PARTS, 0.0) for _ in range(WINDOWS)]
    kinds: list[str] = []
    operations: list[float] = []
    recorders = [Recorder() for _ in range(WORKERS)]
    ready = threading.Barrier(WORKERS + 1)
    threads = [
        threading.Thread(target=worker, args=(handle, phase, recorder, ready), daemon=True)
        for recorder in recorders
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(WARMUP_S)
    position = 0  # in versions; the operations alternate: upgrade, rollback, …

    def window(number: int, kind: str) -> None:
        nonlocal position
        kinds.append(kind)
        began = time.perf_counter()
        phase[0] = phase_of(number, kind)
        sleep_until(began + WINDOW_S / 2)
        if kind == UPGRADE:
            op_began = time.perf_counter()
            phase[0] = phase_of(number, OPERATION)
            if len(operations) % 2 == 0:
                position += 1
                result = rt.upgrade(name, versions[position])
            else:
                result = rt.rollback(name)  # back to the version before the upgrade
            op_ended = time.perf_counter()
            phase[0] = phase_of(number, UPGRADE)
            operations.append((op_ended - op_began) * 1e3)
            seconds[number][OPERATION] = op_ended - op_began
            if not result.success:
                raise SystemExit(f"operation failed: {result.error_message}")
        sleep_until(began + WINDOW_S)
        seconds[number][kind] += time.perf_counter() - began - seconds[number][OPERATION]

    try:
        for pair in range(PAIRS):
            order = (STEADY, UPGRADE) if pair % 2 == 0 else (UPGRADE, STEADY)
            for offset, kind in enumerate(order):
                window(2 * pair + offset, kind)
    finally:
        phase[0] = STOP
        for thread in threads:
            thread.join()
    windows = []
    for number in range(WINDOWS):
        parts = {}
        for part in PARTS:
            calls = Calls(seconds=seconds[number][part])
            for recorder in recorders:
                calls.latencies.extend(recorder.latencies[phase_of(number, part)])
                calls.failed += recorder.failed[phase_of(number, part)]
            parts[part] = calls
        windows.append(parts)
    made = sum(len(found) for recorder in recorders for found in recorder.latencies)
    return Measured(windows, kinds, operations, made)


def pooled(measured: Measured, kind: str, parts: tuple[str, ...]) -> Calls:
    calls = Calls()
    for window_kind, window in zip(measured.kinds, measured.windows, strict=True):
        if window_kind == kind:
            for part in parts:
                calls.add(window[part])
    return calls.done()


def pair_ratios(measured: Measured) -> tuple[list[float], list[float]]:
    """Per pair of windows: upgrade / steady throughput, and upgrade / steady p99."""
    throughput, p99 = [], []
    for pair in range(PAIRS):
        sides: dict[str, Calls] = {}
        for number in (2 * pair, 2 * pair + 1):
            calls = Calls()
            for part in PARTS:
                calls.add(measured.windows[number][part])
            sides[measured.kinds[number]] = calls.done()
        throughput.append(sides[UPGRADE].throughput / sides[STEADY].throughput)
        p99.append(sides[UPGRADE].p(99) / sides[STEADY].p(99))
    return throughput, p99


def spread(values: list[float]) -> str:
    return f"{percentile(values, 50):.3f} [{min(values):.3f} … {max(values):.3f}]"


def report(title: str, measured: Measured) -> dict[str, float]:
    steady = pooled(measured, STEADY, PARTS)
    upgrade = pooled(measured, UPGRADE, PARTS)
    during = pooled(measured, UPGRADE, (OPERATION,))

    def row(label: str, calls: Calls) -> list[str]:
        return [
            label,
            f"{calls.seconds:.3f}",
            f"{len(calls.latencies):,}",
            f"{calls.throughput:,.0f}",
            f"{calls.p(50):.2f}",
            f"{calls.p(99):.2f}",
            f"{calls.p(99.9):.1f}",
            f"{calls.latencies[-1] / 1e3:,.0f}",
            str(calls.failed),
        ]

    throughput = upgrade.throughput / steady.throughput
    p99 = upgrade.p(99) / steady.p(99)
    failed = upgrade.failed + steady.failed
    pair_throughput, pair_p99 = pair_ratios(measured)
    print(f"\n{title}")
    print(
        table(
            ["calls", "s", "calls", "calls/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "failed"],
            [
                row("in steady windows", steady),
                row("in upgrade windows", upgrade),
                row("  during the operation", during),
            ],
        )
    )
    print(
        table(
            ["upgrade / steady", "pooled", "goal", "per pair: median [min … max]"],
            [
                [
                    "throughput",
                    f"{throughput:.3f}",
                    f"≥ {THROUGHPUT_GOAL} {verdict(throughput >= THROUGHPUT_GOAL)}",
                    spread(pair_throughput),
                ],
                [
                    "p99 latency",
                    f"{p99:.3f}",
                    f"≤ {P99_GOAL} {verdict(p99 <= P99_GOAL)}",
                    spread(pair_p99),
                ],
                ["failed calls", str(failed), f"0 {verdict(failed == 0)}", ""],
                [
                    "  during the operation: throughput",
                    f"{during.throughput / steady.throughput:.3f}",
                    "",
                    "",
                ],
                ["  during the operation: p99", f"{during.p(99) / steady.p(99):.3f}", "", ""],
            ],
        )
    )
    operations = measured.operations
    print(
        f"{len(operations)} operations under load: median {percentile(operations, 50):.1f} ms, "
        f"max {max(operations):.1f} ms of wall time; windows lasted "
        f"{steady.seconds / PAIRS:.3f} s (steady) and {upgrade.seconds / PAIRS:.3f} s "
        "(upgrade) on average"
    )
    return {
        "throughput": throughput,
        "p99": p99,
        "failed": float(failed),
        "steady calls/s": steady.throughput,
        "steady p99": steady.p(99),
        "pair throughput": percentile(pair_throughput, 50),
    }


def run(stateful: bool) -> dict[str, float]:
    name = "lexer"
    with project({}) as root:
        versions = write_lexer_chain(root, name, VERSIONS, stateful=stateful)
        pin(root, {name: versions[0]}, {name: ">=1,<2"})
        with Runtime.open(root, settings=SETTINGS) as rt:
            measured = measure(rt, name, versions)
            handle: Any = rt.load(name)
            served = handle.served() if stateful else None
    title = (
        f"{'stateful ' if stateful else ''}{name}: {WORKERS} threads, {PAIRS} pairs of "
        f"{WINDOW_S:g} s windows, an upgrade or a rollback in each upgrade window"
    )
    outcome = report(title, measured)
    if served is not None:
        kept = "kept" if served == measured.made else "LOST"
        print(f"state: the component counted {served:,} calls of {measured.made:,} made: {kept}")
    return outcome


def main() -> int:
    header("Calls under concurrent load: windows with an upgrade vs steady windows")
    print(f"calls: tokenize({EXPRESSION!r}) from {WORKERS} worker threads")
    stateless = run(stateful=False)
    stateful = run(stateful=True)
    print("\nsummary (upgrade windows / steady windows)")
    rows = [
        [
            label,
            f"{outcome['throughput']:.3f}",
            f"{outcome['pair throughput']:.3f}",
            f"{outcome['p99']:.3f}",
            f"{outcome['failed']:.0f}",
            f"{outcome['steady calls/s']:,.0f}",
            f"{outcome['steady p99']:.2f}",
        ]
        for label, outcome in (("stateless", stateless), ("stateful", stateful))
    ]
    headers = ["component", "throughput (≥ 0.95)", "pair median", "p99 (≤ 1.10)", "failed (0)"]
    print(table([*headers, "steady calls/s", "steady p99 µs"], rows))
    ratio = stateful["steady calls/s"] / stateless["steady calls/s"]
    print(f"steady throughput, stateful (gated) / stateless: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
