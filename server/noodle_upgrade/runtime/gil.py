"""A responsive GIL for the short, blocking phases of an operation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

RESPONSIVE_SECONDS = 0.0001


@contextmanager
def responsive_gil() -> Iterator[None]:
    """Shorten the GIL switch interval while an operation's blocking phases run.

    An upgrade waits on SQLite and on helper threads a few dozen times; after each
    wait it needs the GIL back from the application's busy threads, which costs up to
    a whole switch interval (5 ms by default), often several. Measured under 4 busy
    threads: upgrades of 280-630 ms at 5 ms, 40-75 ms at 0.1 ms, while the application
    kept ≥ 0.98 of its throughput over the window (bench/bench_under_load.py).
    Rollout steps, which mostly wait, run at the application's own interval.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, RESPONSIVE_SECONDS))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
