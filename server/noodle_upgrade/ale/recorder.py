"""Sampled calls aggregated in memory, written to the store in batches.

The dispatcher hands over one sampled call at a time (``record``); nothing here touches
the store on that path. Aggregates per (function, signature) — estimated calls, timed
samples, their total duration, calls per call site — wait in memory until a flush writes
them all in one transaction (``AleStore.record_usage``): every ``flush_seconds`` from a
daemon thread, and at ``close`` (``ale.disable``, which also runs at interpreter exit).
A failed flush keeps its aggregates for the next one.

Memory is bounded: at most ``max_signatures`` distinct signatures per session and
``max_sites`` call sites per signature; what comes past the cap is counted under
``OVERFLOW`` (and logged once), so totals stay right while detail is dropped.

Real inputs: each routable signature keeps a reservoir of ``reservoir_size`` argument
tuples (Algorithm R: the i-th sample replaces a random slot with probability K/i, so
every sample has the same chance to be kept). The count continues from the store's, so
a reservoir stays uniform across processes. An input is pickled when it is taken — the
caller may change its arrays afterwards — and skipped when it does not pickle or is
larger than ``max_input_bytes``; pending inputs are capped at ``max_pending_bytes``.
``keep_inputs=False`` keeps none (privacy).
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from noodle_upgrade.errors import NoodleError
from noodle_upgrade.store.ale import OVERFLOW, AleStore, Usage

log = logging.getLogger("noodle_upgrade.ale")

FLUSH_SECONDS = 5.0
MAX_SIGNATURES = 1000
MAX_SITES = 64
RESERVOIR_SIZE = 16
MAX_INPUT_BYTES = 64 * 1024
MAX_PENDING_BYTES = 8 * 1024 * 1024


@dataclass
class _Aggregate:
    calls: int = 0
    sampled: int = 0
    total_ns: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    sites: dict[str, int] = field(default_factory=dict)
    inputs: dict[int, bytes] = field(default_factory=dict)

    def usage(self, function: str, signature: str) -> Usage:
        return Usage(
            function=function,
            signature=signature,
            calls=self.calls,
            sampled=self.sampled,
            total_ns=self.total_ns,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            sites=dict(self.sites),
            inputs=dict(self.inputs),
        )

    def merge(self, other: _Aggregate) -> None:
        """Fold ``other`` (older, from a failed flush) into this one."""
        self.calls += other.calls
        self.sampled += other.sampled
        self.total_ns += other.total_ns
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        for site, calls in other.sites.items():
            self.sites[site] = self.sites.get(site, 0) + calls
        for slot, data in other.inputs.items():
            self.inputs.setdefault(slot, data)  # this one's inputs are newer


@dataclass(frozen=True)
class Limits:
    """The recorder's bounds (see the module docstring)."""

    max_signatures: int = MAX_SIGNATURES
    max_sites: int = MAX_SITES
    reservoir_size: int = RESERVOIR_SIZE
    max_input_bytes: int = MAX_INPUT_BYTES
    max_pending_bytes: int = MAX_PENDING_BYTES


class Recorder:
    """Buffers sampled calls; ``flush`` writes them. Thread-safe."""

    def __init__(
        self,
        ale_store: AleStore,
        totals: Callable[[], Mapping[str, int]],
        *,
        keep_inputs: bool = True,
        flush_seconds: float = FLUSH_SECONDS,
        limits: Limits = Limits(),
    ) -> None:
        self._store = ale_store
        self._totals = totals  # exact calls per function so far (the dispatchers' counters)
        self.keep_inputs = keep_inputs
        self._flush_seconds = flush_seconds
        self._limits = limits
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Aggregate] = {}
        self._pending_bytes = 0
        self._known: set[tuple[str, str]] = set()  # distinct signatures seen (the cap)
        self._overflowed: set[str] = set()
        self._reservoir_seen: dict[tuple[str, str], int] = {}
        self._flushed_totals: dict[str, int] = {}
        self._flush_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        self.inputs_skipped = 0

    def seed_reservoirs(self, sampled: Mapping[tuple[str, str], int]) -> None:
        """Continue Algorithm R from the samples earlier processes stored."""
        with self._lock:
            for key, count in sampled.items():
                self._reservoir_seen.setdefault(key, count)

    # -- the dispatcher's side -----------------------------------------------------------

    def record(
        self,
        function: str,
        key: str,
        routable: bool,
        site: str,
        duration_ns: int | None,
        weight: int,
        args: tuple[Any, ...] | None,
    ) -> None:
        """One sampled call of ``function`` with signature ``key``, standing for ``weight``
        calls. ``duration_ns`` is None for a call a route served (not the baseline's time);
        ``args`` of a routable call are offered to the reservoir."""
        now = time.time()
        with self._lock:
            counted = self._admit(function, key)
            aggregate = self._pending.get(counted)
            if aggregate is None:
                aggregate = self._pending[counted] = _Aggregate(first_seen=now)
            aggregate.calls += weight
            aggregate.last_seen = now
            if duration_ns is not None:
                aggregate.sampled += 1
                aggregate.total_ns += duration_ns
            if site not in aggregate.sites and len(aggregate.sites) >= self._limits.max_sites:
                site = OVERFLOW
            aggregate.sites[site] = aggregate.sites.get(site, 0) + weight
            keep = routable and duration_ns is not None and counted[1] == key
            slot = self._reservoir_slot(counted) if keep and args is not None else None
        if slot is not None and args is not None:
            self._keep_input(counted, slot, args)

    def _admit(self, function: str, signature: str) -> tuple[str, str]:
        """The key to count under: the signature's own, or the overflow bucket past the cap."""
        key = (function, signature)
        if key in self._known:
            return key
        if len(self._known) < self._limits.max_signatures:
            self._known.add(key)
            return key
        if function not in self._overflowed:
            self._overflowed.add(function)
            log.warning(
                "ALE: more than %d distinct signatures recorded; further ones of %s are "
                "counted together as %r",
                self._limits.max_signatures,
                function,
                OVERFLOW,
            )
        return (function, OVERFLOW)

    def _reservoir_slot(self, key: tuple[str, str]) -> int | None:
        """Algorithm R over the baseline's timed samples of a routable signature."""
        if not self.keep_inputs:
            return None
        seen = self._reservoir_seen.get(key, 0) + 1
        self._reservoir_seen[key] = seen
        size = self._limits.reservoir_size
        slot = seen - 1 if seen <= size else int(self._random.random() * seen)
        return slot if slot < size else None

    def _keep_input(self, key: tuple[str, str], slot: int, args: tuple[Any, ...]) -> None:
        # Pickled outside the lock: other threads' samples need not wait for it.
        try:
            data = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # anything may fail to pickle: a lock, a generator, a bad __reduce__
            data = None
        with self._lock:
            if data is None or len(data) > self._limits.max_input_bytes:
                self.inputs_skipped += 1
                return
            if self._pending_bytes + len(data) > self._limits.max_pending_bytes:
                self.inputs_skipped += 1
                return
            # A flush may have taken the call's aggregate meanwhile: the input joins the next.
            now = time.time()
            aggregate = self._pending.setdefault(key, _Aggregate(first_seen=now, last_seen=now))
            previous = aggregate.inputs.get(slot)
            self._pending_bytes += len(data) - (len(previous) if previous else 0)
            aggregate.inputs[slot] = data

    # -- flushing ----------------------------------------------------------------------

    def flush(self) -> int:
        """Write what is pending in one transaction; returns how many signatures it wrote.

        A store error is raised after the aggregates are put back for the next flush.
        """
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._pending_bytes = 0
            totals = dict(self._totals())
            deltas = {
                function: calls - self._flushed_totals.get(function, 0)
                for function, calls in totals.items()
            }
            usages = [aggregate.usage(*key) for key, aggregate in pending.items()]
            try:
                self._store.record_usage(usages, deltas)
            except BaseException:
                self._restore(pending)
                raise
            self._flushed_totals.update(totals)
            return len(usages)

    def _restore(self, pending: dict[tuple[str, str], _Aggregate]) -> None:
        with self._lock:
            for key, older in pending.items():
                current = self._pending.setdefault(key, _Aggregate(first_seen=older.first_seen))
                current.merge(older)
            self._pending_bytes = sum(
                len(data)
                for aggregate in self._pending.values()
                for data in aggregate.inputs.values()
            )

    def start(self) -> None:
        """Flush every ``flush_seconds`` from a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="noodle-ale-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except NoodleError as exc:  # kept for the next flush
                log.warning("ALE: cannot write what was recorded (will retry): %s", exc)
            except Exception:  # a bug must not end the flushing for the process's life
                log.exception("ALE: flushing what was recorded failed (will retry)")

    def close(self) -> None:
        """Stop the flush thread and flush what is left (errors propagate)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()


_site_paths: dict[str, str] = {}


def site_of(filename: str, line: int) -> str:
    """``path:line`` with an absolute path, the way editors name files."""
    path = _site_paths.get(filename)
    if path is None:
        real = filename.startswith("<") or os.path.isabs(filename)
        path = _site_paths[filename] = filename if real else os.path.abspath(filename)
    return f"{path}:{line}"
