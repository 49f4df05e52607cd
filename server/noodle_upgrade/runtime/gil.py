"""An optionally shorter GIL switch interval for the blocking phases of an operation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def responsive_gil(seconds: float) -> Iterator[None]:
    """Shorten the GIL switch interval to ``seconds`` (0: leave it) while it runs.

    An upgrade waits on SQLite and on helper threads a few dozen times; after each
    wait it needs the GIL back from the application's busy threads, which costs up to a
    switch interval (5 ms by default), often several. Under 4 threads that never leave
    the CPU (bench/bench_under_load.py) an upgrade took ~1.3 s at 5 ms, ~0.23 s at 0.5 ms
    and ~0.09 s at 0.1 ms — but the p99 of the application's calls made meanwhile rose
    to 2.6-3.0× at 0.5 ms and 5-14× at 0.1 ms, against ~1.0× with the interval left
    alone. The callers' latency is the promise, so the default leaves it
    (``operation_switch_interval`` 0).
    Rollout steps, which mostly wait, always run at the application's own interval.
    """
    previous = sys.getswitchinterval()
    if seconds <= 0 or seconds >= previous:
        yield
        return
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
