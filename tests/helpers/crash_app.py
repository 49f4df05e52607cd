"""Run in a child process: an application that kills itself with SIGKILL mid-operation.

Usage: ``python crash_app.py PROJECT COMPONENT CALL VERSION STRATEGY KILL_AT [NAME=VALUE ...]``.

Opens a runtime on PROJECT (control endpoint off) and calls ``COMPONENT.CALL()`` from
two threads. Once both have made some calls, it upgrades COMPONENT to VERSION with
STRATEGY (each ``NAME=VALUE`` is a strategy parameter, its value in JSON) or, when
STRATEGY is ``rollback``, rolls COMPONENT back to its live rollback point to VERSION.

A subscriber to the runtime's events waits for KILL_AT: an event kind
(``upgrade.started``, ``upgrade.succeeded``, ``rollback.succeeded``) or ``kind:stage``
(``upgrade.stage:switched``, ``rollback.stage:loaded``). Subscribers run synchronously
in the thread that runs the operation, so the SIGKILL sent from there stops the
process at exactly that point. Just before, it prints one JSON line: ``killed_at``, the
``operation`` id, the version the process ``serving`` at that instant, the calls
completed before the operation began (``calls_before``) and what the callers saw go
wrong (``errors``). Had it lived, it would print ``{"result": ...}`` and exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from noodle_upgrade import Runtime
from noodle_upgrade.models import UpgradeResult
from noodle_upgrade.runtime.events import Event

THREADS = 2
WARM_UP_CALLS = 20  # per thread, before the operation starts: it meets real traffic
WARM_UP_TIMEOUT_S = 60.0  # a guard against callers that never get going


class Callers:
    """Threads calling one method of a handle until told to stop; they count and keep
    what went wrong."""

    def __init__(self, call: Callable[[], object]) -> None:
        self._call = call
        self.calls = [0] * THREADS
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index,), daemon=True)
            for index in range(THREADS)
        ]

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self._call()
            except Exception as exc:  # what a test wants to see never happen
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.calls[index] += 1
            time.sleep(0.0002)  # leave the shared cores some room

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        while min(self.calls) < WARM_UP_CALLS:
            if time.monotonic() > deadline:
                raise SystemExit(f"the callers made only {self.calls} calls: {self.errors}")
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def killer(
    kill_at: str, component: str, report: Callable[[], dict[str, Any]]
) -> Callable[[Event], None]:
    """A subscriber that prints ``report()`` and SIGKILLs this process at ``kill_at``."""
    kind, _, stage = kill_at.partition(":")

    def on_event(event: Event) -> None:
        if event.kind != kind or event.component != component:
            return
        if stage and event.data.get("stage") != stage:
            return
        line = {"killed_at": kill_at, "operation": event.data.get("id"), **report()}
        print(json.dumps(line), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    return on_event


def operate(
    rt: Runtime, component: str, version: str, strategy: str, parameters: dict[str, Any]
) -> UpgradeResult:
    if strategy != "rollback":
        return rt.upgrade(component, version, strategy=strategy, **parameters)
    points = [p for p in rt.store.rollback_points(component) if p.version == version]
    if not points:
        raise SystemExit(f"{component} has no live rollback point to {version}")
    return rt.rollback(component, points[0].id)


def parse_parameters(pairs: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise SystemExit(f"strategy parameter {pair!r} is not NAME=VALUE")
        parameters[name] = json.loads(value)
    return parameters


def main(
    project: str,
    component: str,
    call: str,
    version: str,
    strategy: str,
    kill_at: str,
    *pairs: str,
) -> None:
    parameters = parse_parameters(list(pairs))
    with Runtime.open(project, control=False) as rt:
        handle = rt.load(component)
        # Looked up on every call: attribute access on the handle is what routes.
        callers = Callers(lambda: getattr(handle, call)())
        callers.start()
        calls_before = sum(callers.calls)

        def report() -> dict[str, Any]:
            return {
                "serving": rt.version(component),
                "calls_before": calls_before,
                "errors": list(callers.errors),
            }

        rt.subscribe(killer(kill_at, component, report))
        result = operate(rt, component, version, strategy, parameters)
        callers.stop()
        print(json.dumps({"result": result.to_dict()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
