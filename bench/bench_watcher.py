"""From a version folder appearing in the store to its pending proposal (goal: ≤ 1 s).

A deploy tool either renames a finished folder into the store (one event) or copies
the files in one by one (a burst). Both are timed from the moment the folder is in
place (renamed, or its last file written) to the ``proposal.created`` event, idle and
while two threads keep the application's CPUs busy calling a component.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import LEXER_SOURCE, header, project, table
from noodle_upgrade import Runtime
from noodle_upgrade.runtime.events import Event
from noodle_upgrade.scaffold import write_component

COMPONENTS = 10
TRIALS = 15
GUARD_S = 10.0


class Arrivals:
    """When each version's proposal was created (perf_counter), as events come in."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        if event.kind == "proposal.created":
            with self._changed:
                self.seen[f"{event.component}@{event.data['version']}"] = time.perf_counter()
                self._changed.notify_all()

    def wait(self, key: str) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: key in self.seen, GUARD_S):
                raise SystemExit(f"no proposal for {key} within {GUARD_S} s")
            return self.seen[key]


def renamed_in(root: Path, name: str, version: str) -> float:
    """Write the folder aside (a dot-folder the watcher ignores), then rename it in."""
    staging = root / "components" / ".staging"
    folder = write_component(staging, name, version, LEXER_SOURCE)
    target = root / "components" / name / version
    os.rename(folder, target)
    return time.perf_counter()


def copied_in(root: Path, name: str, version: str) -> float:
    write_component(root, name, version, LEXER_SOURCE)
    return time.perf_counter()


def busy(rt: Runtime, stop: threading.Event) -> None:
    lexer = rt.load("lexer0")
    while not stop.is_set():
        lexer.tokenize("12 + 34 * (5 - 6)")


def measure(
    root: Path, rt: Runtime, arrivals: Arrivals, place: Callable[[Path, str, str], float], tag: int
) -> list[float]:
    delays = []
    for trial in range(TRIALS):
        name = f"lexer{trial % COMPONENTS}"
        version = f"1.{tag}.{trial}"
        placed = place(root, name, version)
        delays.append((arrivals.wait(f"{name}@{version}") - placed) * 1e3)
        time.sleep(0.05)
    return delays


def main() -> int:
    header("The watcher: version folder in the store -> pending proposal")
    rows = []
    with project({f"lexer{n}": ">=1" for n in range(COMPONENTS)}) as root:
        for n in range(COMPONENTS):
            write_component(root, f"lexer{n}", "1.0.0", LEXER_SOURCE)
        (root / "components" / ".staging").mkdir()
        with Runtime.open(root, control=False) as rt:
            arrivals = Arrivals()
            rt.subscribe(arrivals)
            if not rt.wait_until_watching(GUARD_S):
                raise SystemExit("the watcher did not start")
            stop = threading.Event()
            threads: list[threading.Thread] = []
            for tag, (label, place, loaded) in enumerate(
                (
                    ("renamed in, idle", renamed_in, False),
                    ("copied in, idle", copied_in, False),
                    ("renamed in, 2 busy threads", renamed_in, True),
                    ("copied in, 2 busy threads", copied_in, True),
                ),
                start=1,
            ):
                if loaded and not threads:
                    threads = [threading.Thread(target=busy, args=(rt, stop)) for _ in range(2)]
                    for thread in threads:
                        thread.start()
                delays = measure(root, rt, arrivals, place, tag)
                rows.append(
                    [
                        label,
                        f"{statistics.median(delays):.0f}",
                        f"{sorted(delays)[int(len(delays) * 0.95)]:.0f}",
                        f"{max(delays):.0f}",
                    ]
                )
            stop.set()
            for thread in threads:
                thread.join()
    print(f"{COMPONENTS} components, {TRIALS} new versions per row; milliseconds (goal ≤ 1000)")
    print(table(["how the folder arrives", "p50", "p95", "max"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
