"""The update watcher (seed 003 §2.2): the component store and ``noodle.toml``, via watchfiles.

Two loops, each in its own daemon thread: one watches the store folder recursively (a
new version folder, a file of one changing), the other the project root without
recursion, for ``noodle.toml`` only — watching the root recursively would also watch
virtual environments and ``node_modules``. A store folder that does not exist yet is
awaited by watching its nearest existing parent.

watchfiles groups a burst of changes (a folder being copied) and yields it once the
burst has been quiet for ``QUIET_MS``; the callbacks then rescan, so a folder copied
in two bursts is simply looked at twice. Dot-folders in the store (a git export in
progress in ``.incoming``) and ``__pycache__`` are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

from noodle_upgrade.errors import NoodleError

log = logging.getLogger("noodle_upgrade.watcher")

QUIET_MS = 50  # a burst of changes is over after this much silence
LONGEST_BURST_MS = 400  # changes are reported at least this often during a long copy
# watchfiles yields an empty set after this much idle time: the first one says the
# watch is established, and each one lets a stopped loop notice sooner.
IDLE_YIELD_MS = 250


class ProjectWatcher:
    def __init__(
        self,
        store_dir: Path,
        manifest_path: Path,
        on_store_change: Callable[[], None],
        on_manifest_change: Callable[[], None],
    ) -> None:
        self.store_dir, self.manifest_path = store_dir, manifest_path
        self._on_store, self._on_manifest = on_store_change, on_manifest_change
        self._stop = threading.Event()
        self._ready = (threading.Event(), threading.Event())
        self._threads = (
            threading.Thread(target=self._store_loop, name="noodle: watch store", daemon=True),
            threading.Thread(target=self._manifest_loop, name="noodle: watch toml", daemon=True),
        )
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until both watches are established (changes from then on are seen)."""
        return all(ready.wait(timeout) for ready in self._ready)

    def stop(self) -> None:
        """Stop both loops; they exit within a watchfiles step (~50 ms) on their own, so
        closing a runtime does not wait for them."""
        self._stop.set()

    # -- the loops ------------------------------------------------------------------------

    def _store_loop(self) -> None:
        ready = self._ready[0]
        looked = False  # what the store held before the watch began is looked at once
        while not self._stop.is_set():
            if self.store_dir.is_dir():
                accept = _StoreFilter(self.store_dir)
                for changes in self._changes(self.store_dir, accept, True, ready):
                    if changes or not looked:
                        looked = True
                        self._notify(self._on_store)
            else:  # wait for the store (or a folder on the way to it) to appear
                parent = _nearest_existing(self.store_dir.parent)
                for changes in self._changes(parent, _any_change, False, ready):
                    if changes:
                        break
                if self.store_dir.is_dir():
                    self._notify(self._on_store)

    def _manifest_loop(self) -> None:
        only_manifest = _NamedFile(self.manifest_path.name)
        root = self.manifest_path.parent
        for changes in self._changes(root, only_manifest, False, self._ready[1]):
            if changes:
                self._notify(self._on_manifest)

    def _changes(
        self,
        path: Path,
        accept: Callable[[Change, str], bool],
        recursive: bool,
        ready: threading.Event,
    ) -> Iterator[set[tuple[Change, str]]]:
        try:
            for changes in watch(
                path,
                watch_filter=accept,
                debounce=LONGEST_BURST_MS,
                step=QUIET_MS,
                stop_event=self._stop,
                rust_timeout=IDLE_YIELD_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
                recursive=recursive,
                ignore_permission_denied=True,
            ):
                ready.set()
                yield changes
        except (OSError, RuntimeError) as exc:  # the folder vanished under the watch
            log.debug("watch on %s ended: %s", path, exc)
            self._stop.wait(IDLE_YIELD_MS / 1000)

    def _notify(self, callback: Callable[[], None]) -> None:
        if self._stop.is_set():
            return
        try:
            callback()
        except NoodleError:
            if not self._stop.is_set():  # a store closed under a stopping watch is expected
                log.exception("reacting to a change failed")


class _StoreFilter(DefaultFilter):
    def __init__(self, store_dir: Path) -> None:
        super().__init__()
        self.store_dir = store_dir

    def __call__(self, change: Change, path: str) -> bool:
        try:
            inside = Path(path).relative_to(self.store_dir).parts
        except ValueError:  # reported through another spelling of the folder (a link)
            inside = Path(path).parts[-3:]
        return super().__call__(change, path) and not any(p.startswith(".") for p in inside)


class _NamedFile:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, change: Change, path: str) -> bool:
        return Path(path).name == self.name


def _any_change(change: Change, path: str) -> bool:
    return True


def _nearest_existing(path: Path) -> Path:
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path
