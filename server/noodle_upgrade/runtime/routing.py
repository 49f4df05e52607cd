"""Per-call routing during a rollout: which version serves a call, and what it measured.

Weighted routing is deterministic: call number *n* goes to the candidate when the
fractional part of *n*·φ (the golden ratio, a Weyl sequence) is below the share. That
spreads the share evenly over any run of calls and, unlike ``n * share mod 1``, never
locks onto a periodic call pattern: a caller alternating two functions at 50% would
otherwise send every call of one function to the candidate and none of the other. A
caller that sets a routing key (``rt.routing_key(request_id)``) is routed by a hash of
the key instead, so one request sees one version throughout.

These wrappers replace the handle's steady bindings only while a rollout runs; the
steady path never pays for them.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, Protocol

from noodle_upgrade.engine.step_analysis import Samples, SideSample
from noodle_upgrade.runtime.gate import Gate

routing_key: ContextVar[object | None] = ContextVar("noodle_routing_key", default=None)


@contextmanager
def routing_key_scope(key: object) -> Iterator[None]:
    token = routing_key.set(key)
    try:
        yield
    finally:
        routing_key.reset(token)


# frac(n·φ) in millionths: (√5 − 1) / 2 ≈ 0.618034. Small multiples of it stay far from
# whole numbers, so calls of any short period p still meet every share evenly.
WEYL_STEP, WEYL_PERIOD = 618_034, 1_000_000


def key_bucket(key: object) -> int:
    """A stable bucket in [0, 1000) for a routing key (the same in every process)."""
    return zlib.crc32(str(key).encode()) % 1000


class Recorder:
    """What one side of one function did since it was last drained. Appends are
    atomic in CPython; draining swaps the lists, so no lock is taken on a call."""

    __slots__ = ("errors", "latencies")

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.errors: list[int] = []

    def drain(self) -> SideSample:
        latencies, errors = self.latencies, self.errors
        self.latencies, self.errors = [], []
        return SideSample(tuple(latencies), len(errors))


class Split:
    """The state a rollout's wrappers share: the candidate's share, and per function
    one recorder for each side."""

    __slots__ = ("counter", "functions", "permille", "retry_on_stable")

    def __init__(self, *, retry_on_stable: bool) -> None:
        self.permille = 0
        self.counter = itertools.count(1)
        self.retry_on_stable = retry_on_stable
        self.functions: dict[str, tuple[Recorder, Recorder]] = {}

    def set_share(self, percent: float) -> None:
        self.permille = round(percent * 10)

    def recorders(self, function: str) -> tuple[Recorder, Recorder]:
        """(stable, candidate) recorders of ``function``, made once when it is wrapped."""
        return self.functions.setdefault(function, (Recorder(), Recorder()))

    def take(self) -> Samples:
        """What each function did since the last take."""
        return {
            name: (stable.drain(), candidate.drain())
            for name, (stable, candidate) in list(self.functions.items())
        }


def split_call(
    split: Split, name: str, stable_fn: Callable[..., Any], candidate_fn: Callable[..., Any]
) -> Callable[..., Any]:
    """A function that routes each call to the stable or the candidate version."""
    clock = time.perf_counter_ns
    next_call = split.counter.__next__
    key_of = routing_key.get
    on_stable, on_candidate = split.recorders(name)

    def call(*args: Any, **kwargs: Any) -> Any:
        key = key_of()
        permille = split.permille
        if key is None:
            to_candidate = next_call() * WEYL_STEP % WEYL_PERIOD < permille * 1000
        else:
            to_candidate = key_bucket(key) < permille
        side = on_candidate if to_candidate else on_stable
        start = clock()
        try:
            result = (candidate_fn if to_candidate else stable_fn)(*args, **kwargs)
        except Exception:
            side.errors.append(1)
            if to_candidate and split.retry_on_stable:
                # An idempotent component: the caller gets the stable answer, while the
                # analysis still counts the candidate's failure.
                return stable_fn(*args, **kwargs)
            raise
        side.latencies.append(clock() - start)
        return result

    return call


def measured_call(split: Split, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, counted as the candidate side: a version watched after its switch."""
    clock = time.perf_counter_ns
    _, on_candidate = split.recorders(name)

    def call(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = function(*args, **kwargs)
        except Exception:
            on_candidate.errors.append(1)
            raise
        on_candidate.latencies.append(clock() - start)
        return result

    return call


Compare = Callable[[Any, Any], bool]


def results_equal(expected: Any, actual: Any) -> bool:
    """The default shadow comparison: ``==``, with NaN equal to NaN and array-likes
    compared element by element."""
    if expected is actual or _both_nan(expected, actual):
        return True
    try:
        return bool(expected == actual)
    except Exception:  # e.g. numpy arrays: == gives an array whose truth is ambiguous
        all_equal = getattr(expected == actual, "all", None)
        return bool(all_equal()) if callable(all_equal) else repr(expected) == repr(actual)


def _both_nan(expected: Any, actual: Any) -> bool:
    return (
        isinstance(expected, float)
        and isinstance(actual, float)
        and math.isnan(expected)
        and math.isnan(actual)
    )


class Shadow:
    """Copies of calls run on the candidate in a worker thread, compared, never served.

    The queue is bounded: when the candidate falls behind, copies are dropped (and
    counted) rather than slowing the application down.
    """

    def __init__(self, compare: Compare, deadline_s: float, queue_size: int = 1024) -> None:
        self.compare = compare
        self.deadline_s = deadline_s
        self.compared = 0
        self.mismatches = 0
        self.errors = 0
        self.examples: list[str] = []
        self.latencies: list[int] = []
        self.dropped: list[None] = []  # one per copy not taken; appends are atomic
        self._queue: queue.Queue[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Any] | None
        ]
        self._queue = queue.Queue(maxsize=queue_size)
        self._running_since: float | None = None
        self._worker = threading.Thread(target=self._work, name="noodle: shadow", daemon=True)
        self._worker.start()

    def submit(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        expected: Any,
    ) -> None:
        try:
            self._queue.put_nowait((function, args, kwargs, expected))
        except queue.Full:
            self.dropped.append(None)

    def overdue(self) -> bool:
        """Whether the candidate has been stuck in one call past its deadline."""
        since = self._running_since
        return since is not None and time.monotonic() - since > self.deadline_s

    def stop(self) -> None:
        # When the queue is full the worker is stuck or behind: it is a daemon, holds no
        # lock, and its results are no longer read.
        with suppress(queue.Full):
            self._queue.put_nowait(None)

    def sample(self) -> SideSample:
        return SideSample(tuple(self.latencies), self.errors)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            function, args, kwargs, expected = item
            self._running_since = time.monotonic()
            start = time.perf_counter_ns()
            try:
                actual = function(*args, **kwargs)
            except Exception as exc:
                self._record(False, f"raised {type(exc).__name__}: {exc}")
                self.errors += 1
            else:
                self.latencies.append(time.perf_counter_ns() - start)
                same = self._same(expected, actual)
                self._record(same, f"expected {expected!r}, got {actual!r}")
            finally:
                self._running_since = None

    def _same(self, expected: Any, actual: Any) -> bool:
        try:
            return self.compare(expected, actual)
        except Exception:
            return False

    def _record(self, same: bool, what: str) -> None:
        self.compared += 1
        if not same:
            self.mismatches += 1
            if len(self.examples) < 3:
                self.examples.append(what[:200])


def shadow_call(
    shadow: Shadow,
    split: Split,
    name: str,
    stable_fn: Callable[..., Any],
    candidate_fn: Callable[..., Any],
) -> Callable[..., Any]:
    """Serve from the stable version; hand a copy of the call to the shadow."""
    clock = time.perf_counter_ns
    submit = shadow.submit
    on_stable, _ = split.recorders(name)

    def call(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = stable_fn(*args, **kwargs)
        except Exception:
            on_stable.errors.append(1)
            raise
        on_stable.latencies.append(clock() - start)
        submit(candidate_fn, args, kwargs, result)
        return result

    return call


class Pool(Protocol):
    """What a pooled call needs of its slot."""

    members: list[Any]
    renewed: frozenset[int]
    gate: Gate


def pooled_call(pool: Pool, attribute: str, split: Split | None) -> Callable[..., Any]:
    """Spread calls over a pool's members in turn, through the pool's gate.

    With a ``split``, each call is also counted for the member's side: members that a
    rolling upgrade put in are the candidate, the others the stable version.
    """
    gate, inside = pool.gate, pool.gate.inside
    turn = itertools.count().__next__
    if split is None:

        def call(*args: Any, **kwargs: Any) -> Any:
            inside.append(None)  # Gate.enter, inlined
            if gate.closed:
                gate.wait_open()
            try:
                members = pool.members
                return getattr(members[turn() % len(members)], attribute)(*args, **kwargs)
            finally:
                inside.pop()

        return call
    clock = time.perf_counter_ns
    on_stable, on_candidate = split.recorders(attribute)

    def measured(*args: Any, **kwargs: Any) -> Any:
        inside.append(None)
        if gate.closed:
            gate.wait_open()
        try:
            members = pool.members
            member = members[turn() % len(members)]
            side = on_candidate if id(member) in pool.renewed else on_stable
            start = clock()
            try:
                result = getattr(member, attribute)(*args, **kwargs)
            except Exception:
                side.errors.append(1)
                raise
            side.latencies.append(clock() - start)
            return result
        finally:
            inside.pop()

    return measured
