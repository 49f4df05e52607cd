"""Canary and promotion: live calls decide whether a route stays, on the caller's thread.

``ale.enable(project, hooks=canary_hooks(store))`` gives every live route a hook
(``ale.dispatcher.RouteHook``):

- a ``canary`` route serves about ``share`` of its calls (a counter, so the share is
  exact and repeatable, not random). Every ``shadow_every``-th call it served is run
  again through the original, on copies of the list and array arguments (the original
  must not see what the candidate may have left behind, nor touch the caller's data),
  and compared with ``equivalence.compare_outcomes`` under the candidate's tolerance,
  both sides timed. A mismatch or an exception demotes it with what differed. After
  ``promote_after`` shadowed calls without a mismatch it is promoted when its median
  time is below the original's median / ``min_speedup``, else demoted with the numbers;
- a ``promoted`` route serves every call and is demoted when the candidate raises.

Each status change is conditional (``expect``: two processes deciding at once cannot
both win), audited by the store, and followed by ``ale.refresh_routes()``, so the
process serves the new decision at once. A hook decides once: after its decision it
neither shadows nor writes again, and a demoted canary admits nothing more. A store
error is logged, never raised into the caller.

The times are the candidate's call as the dispatcher measures it and the original's
call in the shadow: the dispatcher's routing cost (~0.5 µs on two lists, see
docs/ale.md) is in neither, because the hook cannot see the caller's side of the call.
A candidate whose whole saving is smaller than the routing can be promoted although it
does not pay; ``min_speedup`` is the margin to ask for.

The call on which a mismatch is found returns the original's value (the shadow has it;
``on_call`` hands it back to the dispatcher), so the caller never sees the wrong value.
Only when the original raised there is the candidate's value returned: a hook cannot
raise into the caller.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import statistics
import threading
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import numpy

from noodle_upgrade.ale import session
from noodle_upgrade.ale.dispatcher import HookFactory, RouteHook
from noodle_upgrade.ale.equivalence import Outcome, compare_outcomes
from noodle_upgrade.ale.model import Status
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.store.ale import AleStore, CandidateRecord
from noodle_upgrade.store.db import Store

log = logging.getLogger("noodle_upgrade.ale")

ACTOR = "ale.promotion"

StoreTarget = str | os.PathLike[str] | AleStore


def canary_hooks(
    store: StoreTarget,
    *,
    share: float = 0.1,
    shadow_every: int = 1,
    promote_after: int = 200,
    min_speedup: float = 1.0,
) -> HookFactory:
    """The hook factory for ``ale.enable(..., hooks=...)``; bad settings raise
    ``ValidationError`` before anything is enabled."""
    _check_number("share", share, low=0.0, high=1.0)
    _check_count("shadow_every", shadow_every)
    _check_count("promote_after", promote_after)
    _check_number("min_speedup", min_speedup, low=0.0, high=None)
    decide = _Decider(_status_writer(store))

    def make_hook(record: CandidateRecord, original: Callable[..., Any]) -> RouteHook | None:
        if record.status is Status.PROMOTED:
            return PromotedHook(record, decide)
        if record.status is Status.CANARY:
            return CanaryHook(
                record, original, decide, share, shadow_every, promote_after, min_speedup
            )
        return None

    return make_hook


class CanaryHook:
    """A canary route: a share of calls, shadowed, until promoted or demoted."""

    def __init__(
        self,
        record: CandidateRecord,
        original: Callable[..., Any],
        decide: _Decider,
        share: float,
        shadow_every: int,
        promote_after: int,
        min_speedup: float,
    ) -> None:
        self._record = record
        self._original = original
        self._decide = decide
        self._share = share
        self._shadow_every = shadow_every
        self._promote_after = promote_after
        self._min_speedup = min_speedup
        self._offered = itertools.count()  # next() is atomic under the GIL
        self._lock = threading.Lock()
        self._served = 0
        self._candidate_ns: list[int] = []
        self._original_ns: list[int] = []
        self._decided: Status | None = None

    def admit(self) -> bool:
        if self._decided is Status.DEMOTED:
            return False
        n = next(self._offered)
        return int((n + 1) * self._share) > int(n * self._share)

    def on_call(
        self, args: tuple[Any, ...], result_or_exc: object, duration_ns: int
    ) -> tuple[Any] | None:
        """``(the original's value,)`` when the shadow disagrees: the caller gets it."""
        if self._decided is not None:
            return None
        if isinstance(result_or_exc, Exception):
            self._settle(Status.DEMOTED, f"the candidate raised {_exception_text(result_or_exc)}")
            return None
        with self._lock:
            self._served += 1
            shadowed = self._served % self._shadow_every == 0
        if not shadowed:
            return None
        expected, original_ns = _shadow(self._original, args)
        difference = compare_outcomes(
            expected, Outcome(value=result_or_exc), self._record.candidate.tolerance
        )
        if difference is not None:
            self._settle(
                Status.DEMOTED,
                f"a live call differed ({difference.reason}): the original gave "
                f"{difference.expected}, the candidate {difference.got}",
            )
            return None if expected.error is not None else (expected.value,)
        with self._lock:
            self._candidate_ns.append(duration_ns)
            self._original_ns.append(original_ns)
            if len(self._candidate_ns) < self._promote_after:
                return None
            candidate_median = statistics.median(self._candidate_ns)
            original_median = statistics.median(self._original_ns)
        self._judge_speed(candidate_median, original_median)
        return None

    def _judge_speed(self, candidate_median: float, original_median: float) -> None:
        numbers = (
            f"{self._promote_after} shadowed calls equal; median {candidate_median:.0f} ns "
            f"against the original's {original_median:.0f} ns (min_speedup {self._min_speedup})"
        )
        if candidate_median < original_median / self._min_speedup:
            self._settle(Status.PROMOTED, numbers)
        else:
            self._settle(Status.DEMOTED, f"slower than asked: {numbers}")

    def _settle(self, status: Status, reason: str) -> None:
        with self._lock:
            if self._decided is not None:
                return
            self._decided = status
        self._decide(self._record, status, reason, expect=Status.CANARY)


class PromotedHook:
    """A promoted route: every call; the candidate raising demotes it."""

    def __init__(self, record: CandidateRecord, decide: _Decider) -> None:
        self._record = record
        self._decide = decide
        self._lock = threading.Lock()
        self._demoted = False

    def admit(self) -> bool:
        return not self._demoted

    def on_call(self, args: tuple[Any, ...], result_or_exc: object, duration_ns: int) -> None:
        if not isinstance(result_or_exc, Exception):
            return
        with self._lock:
            if self._demoted:
                return
            self._demoted = True
        reason = f"the promoted candidate raised {_exception_text(result_or_exc)}"
        self._decide(self._record, Status.DEMOTED, reason, expect=Status.PROMOTED)


StatusWriter = Callable[[Callable[[AleStore], object]], None]


class _Decider:
    """Writes one decision, audited and conditional, then reloads the routes."""

    def __init__(self, write: StatusWriter) -> None:
        self._write = write

    def __call__(
        self, record: CandidateRecord, status: Status, reason: str, *, expect: Status
    ) -> None:
        try:
            self._write(
                lambda ale_store: ale_store.set_status(
                    record.id, status, actor=ACTOR, reason=reason, expect=(expect,)
                )
            )
        except Exception:  # the caller's call must not fail for the store's sake
            log.exception("ALE: could not mark candidate %s %s (%s)", record.id, status, reason)
            return
        log.warning("ALE: candidate %s is %s: %s", record.id, status, reason)
        try:
            session.refresh_routes()
        except Exception:
            log.exception("ALE: reloading the routes after candidate %s failed", record.id)


def _status_writer(store: StoreTarget) -> StatusWriter:
    if isinstance(store, AleStore):
        return lambda write: _ignore(write(store))
    if isinstance(store, str | os.PathLike):
        path = Path(store)

        def write_to_path(write: Callable[[AleStore], object]) -> None:
            with Store.open(path) as opened:  # decisions are rare: a connection each
                write(AleStore(opened))

        return write_to_path
    raise ValidationError(
        f"canary_hooks: store {store!r} is not allowed; give a state database path or an AleStore"
    )


def _ignore(_: object) -> None:
    return None


def _shadow(original: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Outcome, int]:
    """The original's outcome on copies of ``args``, and how long it took."""
    copies = tuple(copy.copy(arg) if isinstance(arg, list | numpy.ndarray) else arg for arg in args)
    start = perf_counter_ns()
    try:
        value = original(*copies)
    except Exception as exc:
        return Outcome(error=exc), perf_counter_ns() - start
    return Outcome(value=value), perf_counter_ns() - start


def _exception_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_number(name: str, value: object, *, low: float, high: float | None) -> None:
    allowed = f"a number in ({low:g}, {high:g}]" if high is not None else f"a number above {low:g}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > low
        or (high is not None and value > high)
    ):
        raise ValidationError(f"canary_hooks: {name}={value!r} is not allowed; give {allowed}")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"canary_hooks: {name}={value!r} is not allowed; give a whole number of at least 1"
        )
