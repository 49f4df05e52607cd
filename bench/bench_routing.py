"""Routing during a rollout, and how fast a failing canary is withdrawn.

1. The cost of a call through a Handle while a canary routes 5% of calls to the
   candidate (every call is routed and timed) against the same call in steady state
   (goal: ≤ 2×), on the realistic ~2 µs tokenizer.
2. From the moment a canary starts serving a release that raises, to the moment the
   rollback is complete and ``rt.upgrade`` has returned; and from the failed analysis
   to that moment. Four worker threads keep calling throughout.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import timeit
from contextlib import suppress
from pathlib import Path
from typing import Any

from common import (
    EXPRESSION,
    LEXER_SOURCE,
    SETTINGS,
    best_per_call,
    header,
    pin,
    project,
    table,
    verdict,
)
from noodle_upgrade import Runtime
from noodle_upgrade.runtime.events import Event
from noodle_upgrade.scaffold import write_component

ROUTING_GOAL = 2.0
ROUNDS, NUMBER = 9, 20_000
FAULTY_SOURCE = LEXER_SOURCE.replace(
    "    return _TOKEN.findall(text)", "    raise RuntimeError('faulty release')"
)
WITHDRAWALS = 5


def routing_cost(root: Path) -> list[str]:
    """Time the handle call in steady state and during a long-held canary step."""
    settings = {**SETTINGS, "upgrade_timeout": 4.0}
    with Runtime.open(root, settings=settings) as rt:
        handle = rt.load("lexer")
        timer = {"call": timeit.Timer("h.tokenize(x)", globals={"h": handle, "x": EXPRESSION})}
        steady = best_per_call(timer, ROUNDS, NUMBER)["call"]
        started = threading.Event()
        rt.subscribe(lambda event: started.set() if event.kind == "rollout.step" else None)
        worker = threading.Thread(
            target=rt.upgrade,
            args=("lexer", "1.1.0"),
            kwargs={"strategy": "canary", "step_seconds": 3.0, "min_calls": 10**9},
        )
        worker.start()
        started.wait(10)
        routed = best_per_call(timer, ROUNDS, NUMBER)["call"]
        # The candidate never reaches min_calls: the rollout ends at upgrade_timeout.
        worker.join()
    ratio = routed / steady
    return [
        "handle call during a 5% canary",
        f"{steady * 1e9:.0f} ns",
        f"{routed * 1e9:.0f} ns",
        f"{ratio:.2f}×",
        f"≤ {ROUTING_GOAL}× {verdict(ratio <= ROUTING_GOAL)}",
    ]


def withdrawal_times(root: Path) -> tuple[list[float], list[float]]:
    """Milliseconds from exposure, and from the failed verdict, to the completed rollback."""
    from_exposure, from_verdict = [], []
    with Runtime.open(root, settings=SETTINGS) as rt:
        handle = rt.load("lexer")
        stop = threading.Event()
        marks: dict[str, float] = {}

        def on_event(event: Event) -> None:
            if event.kind == "rollout.step":
                marks.setdefault("exposed", time.perf_counter())
            if event.kind == "rollout.analysis" and event.data.get("outcome") == "fail":
                marks.setdefault("failed", time.perf_counter())

        rt.subscribe(on_event)

        def call() -> None:
            while not stop.is_set():
                with suppress(RuntimeError):  # the faulty release's: the analysis counts them
                    handle.tokenize(EXPRESSION)

        workers = [threading.Thread(target=call) for _ in range(4)]
        for thread in workers:
            thread.start()
        try:
            for _ in range(WITHDRAWALS):
                marks.clear()
                result = rt.upgrade(
                    "lexer", "9.0.0", strategy="canary", step_seconds=1.0, min_calls=20
                )
                done = time.perf_counter()
                assert result.error_code == "analysis-failed", result.error_message
                from_exposure.append((done - marks["exposed"]) * 1e3)
                from_verdict.append((done - marks["failed"]) * 1e3)
        finally:
            stop.set()
            for thread in workers:
                thread.join()
    return from_exposure, from_verdict


def main() -> int:
    header("Routing during a rollout")
    with project({"lexer": ">=1"}) as root:
        write_component(root, "lexer", "1.0.0", LEXER_SOURCE)
        write_component(root, "lexer", "1.1.0", LEXER_SOURCE)
        write_component(root, "lexer", "9.0.0", FAULTY_SOURCE, upgrade_from=["1.0.0"])
        pin(root, {"lexer": "1.0.0"}, {"lexer": ">=1"})
        row = routing_cost(root)
        print(table(["measure", "steady", "routed", "ratio", "goal"], [row]))
        print()
        exposure, after_verdict = withdrawal_times(root)
    rows: list[list[Any]] = []
    for label, values in (
        ("canary exposed → rollback done", exposure),
        ("failed verdict → rollback done", after_verdict),
    ):
        rows.append([label, f"{statistics.median(values):.1f}", f"{max(values):.1f}", len(values)])
    print("a release that raises on every call, 4 threads calling; milliseconds")
    print(table(["measure", "median", "max", "n"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
