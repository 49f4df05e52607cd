"""Concurrent load: threads call a function in a loop and record what they saw.

A ``Timeline`` numbers the versions a component had, in order (epoch 0, 1, …). Each
call reads the epoch before and after it, so the test can check afterwards that what
the call observed was a version active at some moment during that call: neither a
stale version after a swap had finished nor one that never ran.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PROGRESS_TIMEOUT_S = 60.0  # a liveness guard for stuck threads, not a speed check
# Threads switch this often under load (CPython's default is 5 ms): finer interleaving
# makes races likelier to show, and lets the thread that swaps get the GIL back quickly.
SWITCH_INTERVAL_S = 0.0002


@dataclass
class Timeline:
    """The versions a component went through; append after each successful switch."""

    versions: list[str]

    def epoch(self) -> int:
        return len(self.versions) - 1

    def switched(self, version: str) -> None:
        self.versions.append(version)

    def possible(self, before: int, after: int) -> set[str]:
        """Versions active at some point between reading ``before`` and ``after``.

        A switch happens inside an operation, before the test appends its version, so
        the version after ``after`` may already have served the call.
        """
        return set(self.versions[before : after + 2])


@dataclass
class LoadResult:
    calls: int
    errors: list[BaseException]
    error_count: int
    observed: Counter[tuple[int, Hashable, int]] = field(default_factory=Counter)

    def values(self) -> set[Hashable]:
        return {value for _, value, _ in self.observed}


class LoadRunner:
    """``threads`` threads calling ``call()`` until stopped."""

    def __init__(
        self,
        call: Callable[[], Hashable],
        *,
        threads: int = 8,
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self._call = call
        self._epoch = epoch
        self._stop = threading.Event()
        self._calls = [0] * threads
        self._counters: list[Counter[tuple[int, Hashable, int]]] = [
            Counter() for _ in range(threads)
        ]
        self._errors: list[BaseException] = []
        self._error_count = 0
        self._errors_lock = threading.Lock()
        self.result: LoadResult | None = None
        self._threads = [
            threading.Thread(target=self._run, args=(index,), name=f"load-{index}", daemon=True)
            for index in range(threads)
        ]

    def _run(self, index: int) -> None:
        call, epoch, counter, calls = self._call, self._epoch, self._counters[index], self._calls
        while not self._stop.is_set():
            before = epoch()
            try:
                value = call()
            except BaseException as exc:
                with self._errors_lock:
                    self._error_count += 1
                    if len(self._errors) < 20:
                        self._errors.append(exc)
                continue
            counter[(before, value, epoch())] += 1
            calls[index] += 1

    @property
    def calls(self) -> int:
        return sum(self._calls)

    def start(self) -> LoadRunner:
        for thread in self._threads:
            thread.start()
        return self

    def progress(self, calls: int = 200) -> None:
        """Wait until every thread has made at least ``calls`` more successful calls."""
        targets = [done + calls for done in self._calls]
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while any(done < target for done, target in zip(self._calls, targets, strict=True)):
            if self._error_count:
                raise AssertionError(f"load calls failed: {self._errors!r}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"load threads made no progress in {PROGRESS_TIMEOUT_S:g} s: {self._calls}"
                )
            time.sleep(0.001)

    def stop(self) -> LoadResult:
        """Stop the threads (once) and return everything they recorded."""
        if self.result is not None:
            return self.result
        self._stop.set()
        for thread in self._threads:
            thread.join(PROGRESS_TIMEOUT_S)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        observed: Counter[tuple[int, Hashable, int]] = Counter()
        for counter in self._counters:
            observed.update(counter)
        self.result = LoadResult(self.calls, list(self._errors), self._error_count, observed)
        return self.result


@contextmanager
def running(
    call: Callable[[], Hashable], *, threads: int = 8, epoch: Callable[[], int] = lambda: 0
) -> Iterator[LoadRunner]:
    """Run the load for the ``with`` block; it is stopped when the block ends, and
    ``runner.stop()`` (or ``runner.result``) then gives what it recorded."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        runner = LoadRunner(call, threads=threads, epoch=epoch).start()
        try:
            yield runner
        finally:
            runner.stop()
    finally:
        sys.setswitchinterval(interval)
