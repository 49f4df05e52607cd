"""Version-keyed caches: nothing computed by an old version is served after a swap.

``rt.cache(depends_on=[...])`` gives a :class:`VersionedCache` whose entries belong to
the active versions of the components it depends on. The demo's compile cache uses one,
so an upgraded lexer or parser recompiles every program on its next use.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

# The active versions a cache depends on, compared with ``==``: strings, or the
# ``packaging`` ``Version`` objects the runtime holds (no ``str()`` on the hit path).
Versions = tuple[object, ...]


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made. ``invalidations`` counts the times entries
    were dropped because the versions changed (``clear()`` is not counted)."""

    hits: int
    misses: int
    invalidations: int
    evictions: int
    size: int
    maxsize: int | None


class VersionedCache(Generic[K, V]):
    """A thread-safe LRU cache whose entries are valid for one tuple of active versions.

    ``versions()`` returns the active versions of the components the cached values
    depend on. Every access reads it under the cache's lock and compares it with the
    tuple the entries belong to; when they differ, all entries are dropped first. So a
    value computed while versions A were active is never returned by an access that
    observes versions B.

    :meth:`get_or_compute` also covers a computation that runs across a swap: it reads
    the versions before computing and stores the value only if no access has observed
    other versions since and they are still the same afterwards; otherwise the value
    goes back to this caller (whose call began on the old version, like an in-flight
    call on a handle) but is not cached. ``cache[key] = value`` cannot know when its
    value was computed and stores it for the versions active at that moment: prefer
    ``get_or_compute`` for values computed through components.

    Why no event subscription: comparing versions on access is exact at the instant of
    the access and costs one tuple comparison; an event arrives after the switch (calls
    in between would be served stale), can be missed, and cannot tell whether a
    computation in progress started before or after the swap, so the version check
    would still be needed. The price of checking lazily is memory: after a swap the old
    entries (and whatever of the old version they reference) stay until the next access.

    ``versions`` runs under the lock on every access: it must be cheap and must not use
    this cache. ``maxsize`` bounds the entries (least recently used go first); ``None``
    means unbounded.
    """

    def __init__(
        self,
        versions: Callable[[], Versions],
        *,
        maxsize: int | None = 1024,
        name: str = "cache",
    ) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"VersionedCache {name!r}: maxsize must be ≥ 1 or None, not {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self._versions = versions
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._tag: Versions = versions()  # the versions the entries belong to
        self._epoch = 0  # bumped whenever an access observes other versions
        self._hits = 0
        self._misses = 0
        self._invalidations = 0
        self._evictions = 0

    # -- the version check; every method below calls it with the lock held ---------------

    def _sync(self) -> None:
        current = self._versions()
        if current != self._tag:
            self._epoch += 1
            self._invalidations += 1
            self._entries.clear()
        # Also when equal: the next comparison then meets the same objects, which tuple
        # comparison settles by identity without calling ``Version.__eq__``.
        self._tag = current

    def _store(self, key: K, value: V) -> None:
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        if self.maxsize is not None and len(entries) > self.maxsize:
            entries.popitem(last=False)
            self._evictions += 1

    def _lookup(self, key: K) -> V | Literal[_Missing.MISSING]:
        try:
            value = self._entries[key]
        except KeyError:
            self._misses += 1
            return _MISSING
        self._hits += 1
        if self.maxsize is not None:
            self._entries.move_to_end(key)
        return value

    # -- the public API ------------------------------------------------------------------

    @property
    def versions(self) -> Versions:
        """The active versions, as the cache observes them now."""
        with self._lock:
            self._sync()
            return self._tag

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: T) -> V | T: ...
    def get(self, key: K, default: object = None) -> object:
        with self._lock:
            self._sync()
            value = self._lookup(key)
        return default if value is _MISSING else value

    def __getitem__(self, key: K) -> V:
        with self._lock:
            self._sync()
            value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._sync()
            self._store(key, value)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            self._sync()
            del self._entries[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._sync()
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            self._sync()
            return len(self._entries)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``compute()``'s, cached if no swap intervened.

        ``compute`` runs without the lock, so other threads go on meanwhile; two threads
        that miss the same key may both compute it, and both get the entry stored first.
        An exception from ``compute`` propagates and nothing is cached.
        """
        with self._lock:
            self._sync()
            cached = self._lookup(key)
            epoch = self._epoch
        if cached is not _MISSING:
            return cached
        value = compute()
        with self._lock:
            self._sync()
            if self._epoch != epoch:
                return value  # computed (at least partly) by versions no longer active
            if key in self._entries:  # another thread stored it meanwhile: share that one
                self._entries.move_to_end(key)
                return self._entries[key]
            self._store(key, value)
        return value

    def clear(self) -> None:
        """Drop every entry (not counted as an invalidation)."""
        with self._lock:
            self._entries.clear()

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            self._sync()
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                invalidations=self._invalidations,
                evictions=self._evictions,
                size=len(self._entries),
                maxsize=self.maxsize,
            )

    def __repr__(self) -> str:
        with self._lock:
            tag, size = self._tag, len(self._entries)
        versions = "/".join(map(str, tag)) or "-"
        bound = "unbounded" if self.maxsize is None else f"max {self.maxsize}"
        return f"<VersionedCache {self.name} {versions}: {size} entries, {bound}>"
