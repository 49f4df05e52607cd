"""The memory manager: the VM's heap, and the demo's stateful component.

Its entry is a factory (``memory_manager:create``): the handle routes to the instance, and
an upgrade moves the instance's state into the new one (``snapshot`` → ``migrate`` →
``restore``) while calls are held at the gate. Values live in numbered cells; a VM run
opens a frame, allocates its values in it and closes it, which frees them. Refs handed
out before a swap stay valid after it, in both directions.

- 1.0.0: ``cells`` {ref: value} and ``frames`` {frame: [refs]}.
- 1.1.0: adds ``peak_cells``; its ``migrate`` fills it in from a 1.0.0 state.
- 2.0.0: arenas, one per frame, and counters grouped: a new state shape.
  ``upgrade_from = ["1.1.0"]``, so 1.0.0 → 2.0.0 walks 1.0.0 → 1.1.0 → 2.0.0, migrating at
  each step; its ``downgrade`` hook converts the state back for a rollback, so nothing
  counted since the upgrade is lost.
- 2.0.1 (faulty): keeps the arenas of closed frames on a free list for reuse, and never
  reuses them: memory grows with every program run. Its health check (cells held by
  closed frames under a limit) passes when it is loaded and fails once it has served for
  a moment, which is what a blue-green warm window watches for: it switches back to the
  still-loaded 2.0.0, and 2.0.1's ``downgrade`` hook hands the live state back.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release

MEMORY_MANAGER_1_0_0 = '''\
"""Memory manager 1.0.0: a cell table and a frame table."""

import threading


class MemoryManager:
    version = "1.0.0"

    def __init__(self):
        self._lock = threading.Lock()
        self._cells = {}
        self._frames = {}
        self._next_ref = 1
        self._next_frame = 1
        self._allocations = 0
        self._frames_opened = 0

    def open_frame(self):
        with self._lock:
            frame = self._next_frame
            self._next_frame += 1
            self._frames[frame] = []
            self._frames_opened += 1
            return frame

    def allocate(self, frame, value):
        with self._lock:
            ref = self._next_ref
            self._next_ref += 1
            self._cells[ref] = value
            self._frames[frame].append(ref)
            self._allocations += 1
            return ref

    def load(self, ref):
        return self._cells[ref]

    def close_frame(self, frame):
        with self._lock:
            for ref in self._frames.pop(frame):
                del self._cells[ref]

    def stats(self):
        with self._lock:
            return {
                "version": self.version,
                "allocations": self._allocations,
                "frames_opened": self._frames_opened,
                "open_frames": len(self._frames),
                "live_cells": len(self._cells),
            }

    def snapshot(self):
        with self._lock:
            return {
                "cells": dict(self._cells),
                "frames": {frame: list(refs) for frame, refs in self._frames.items()},
                "next_ref": self._next_ref,
                "next_frame": self._next_frame,
                "allocations": self._allocations,
                "frames_opened": self._frames_opened,
            }

    def restore(self, state):
        with self._lock:
            self._cells = dict(state["cells"])
            self._frames = {frame: list(refs) for frame, refs in state["frames"].items()}
            self._next_ref = state["next_ref"]
            self._next_frame = state["next_frame"]
            self._allocations = state["allocations"]
            self._frames_opened = state["frames_opened"]


def create():
    return MemoryManager()
'''

MEMORY_MANAGER_1_1_0 = '''\
"""Memory manager 1.1.0: also tracks the peak number of live cells."""

import threading


class MemoryManager:
    version = "1.1.0"

    def __init__(self):
        self._lock = threading.Lock()
        self._cells = {}
        self._frames = {}
        self._next_ref = 1
        self._next_frame = 1
        self._allocations = 0
        self._frames_opened = 0
        self._peak_cells = 0

    def open_frame(self):
        with self._lock:
            frame = self._next_frame
            self._next_frame += 1
            self._frames[frame] = []
            self._frames_opened += 1
            return frame

    def allocate(self, frame, value):
        with self._lock:
            ref = self._next_ref
            self._next_ref += 1
            self._cells[ref] = value
            self._frames[frame].append(ref)
            self._allocations += 1
            self._peak_cells = max(self._peak_cells, len(self._cells))
            return ref

    def load(self, ref):
        return self._cells[ref]

    def close_frame(self, frame):
        with self._lock:
            for ref in self._frames.pop(frame):
                del self._cells[ref]

    def stats(self):
        with self._lock:
            return {
                "version": self.version,
                "allocations": self._allocations,
                "frames_opened": self._frames_opened,
                "open_frames": len(self._frames),
                "live_cells": len(self._cells),
                "peak_cells": self._peak_cells,
            }

    def snapshot(self):
        with self._lock:
            return {
                "cells": dict(self._cells),
                "frames": {frame: list(refs) for frame, refs in self._frames.items()},
                "next_ref": self._next_ref,
                "next_frame": self._next_frame,
                "allocations": self._allocations,
                "frames_opened": self._frames_opened,
                "peak_cells": self._peak_cells,
            }

    def restore(self, state):
        with self._lock:
            self._cells = dict(state["cells"])
            self._frames = {frame: list(refs) for frame, refs in state["frames"].items()}
            self._next_ref = state["next_ref"]
            self._next_frame = state["next_frame"]
            self._allocations = state["allocations"]
            self._frames_opened = state["frames_opened"]
            self._peak_cells = state["peak_cells"]


def create():
    return MemoryManager()


def migrate(state, from_version):
    """1.0.0 → 1.1.0: the peak is at least what is live now."""
    return {**state, "peak_cells": state.get("peak_cells", len(state["cells"]))}
'''

MEMORY_MANAGER_2_0_0 = '''\
"""Memory manager 2.0.0: one arena per frame; closing a frame drops its arena whole."""

import threading


class MemoryManager:
    version = "2.0.0"

    def __init__(self):
        self._lock = threading.Lock()
        self._arenas = {}  # frame -> {ref: value}
        self._owner = {}  # ref -> frame
        self._next = {"ref": 1, "frame": 1}
        self._counters = {"allocations": 0, "frames_opened": 0, "peak_cells": 0}

    def open_frame(self):
        with self._lock:
            frame = self._next["frame"]
            self._next["frame"] += 1
            self._arenas[frame] = {}
            self._counters["frames_opened"] += 1
            return frame

    def allocate(self, frame, value):
        with self._lock:
            ref = self._next["ref"]
            self._next["ref"] += 1
            self._arenas[frame][ref] = value
            self._owner[ref] = frame
            counters = self._counters
            counters["allocations"] += 1
            if len(self._owner) > counters["peak_cells"]:
                counters["peak_cells"] = len(self._owner)
            return ref

    def load(self, ref):
        return self._arenas[self._owner[ref]][ref]

    def close_frame(self, frame):
        with self._lock:
            for ref in self._arenas.pop(frame):
                del self._owner[ref]

    def stats(self):
        with self._lock:
            return {
                "version": self.version,
                **self._counters,
                "open_frames": len(self._arenas),
                "live_cells": len(self._owner),
            }

    def snapshot(self):
        with self._lock:
            return {
                "format": 2,
                "arenas": {frame: dict(cells) for frame, cells in self._arenas.items()},
                "next": dict(self._next),
                "counters": dict(self._counters),
            }

    def restore(self, state):
        with self._lock:
            self._arenas = {frame: dict(cells) for frame, cells in state["arenas"].items()}
            self._owner = {ref: frame for frame, cells in self._arenas.items() for ref in cells}
            self._next = dict(state["next"])
            self._counters = dict(state["counters"])


def create():
    return MemoryManager()


def migrate(state, from_version):
    """1.1.0 → 2.0.0: split the cell table into one arena per frame."""
    if not from_version.startswith("1."):
        raise ValueError(f"cannot migrate a memory manager state from {from_version}")
    cells = state["cells"]
    return {
        "format": 2,
        "arenas": {
            frame: {ref: cells[ref] for ref in refs} for frame, refs in state["frames"].items()
        },
        "next": {"ref": state["next_ref"], "frame": state["next_frame"]},
        "counters": {
            "allocations": state["allocations"],
            "frames_opened": state["frames_opened"],
            "peak_cells": state.get("peak_cells", len(cells)),
        },
    }


def downgrade(state, to_version):
    """2.0.0 → 1.x for a rollback: merge the arenas back into one cell table."""
    arenas = state["arenas"]
    counters = state["counters"]
    old = {
        "cells": {ref: value for cells in arenas.values() for ref, value in cells.items()},
        "frames": {frame: list(cells) for frame, cells in arenas.items()},
        "next_ref": state["next"]["ref"],
        "next_frame": state["next"]["frame"],
        "allocations": counters["allocations"],
        "frames_opened": counters["frames_opened"],
    }
    if to_version != "1.0.0":
        old["peak_cells"] = counters["peak_cells"]
    return old
'''


def _patched(source: str, *edits: tuple[str, str]) -> str:
    """``source`` with each ``old`` replaced by ``new``; every ``old`` must be there."""
    for old, new in edits:
        if old not in source:
            raise AssertionError(f"the release to patch has no {old!r}")
        source = source.replace(old, new)
    return source


MEMORY_MANAGER_2_0_1 = _patched(
    MEMORY_MANAGER_2_0_0,
    (
        "Memory manager 2.0.0: one arena per frame; closing a frame drops its arena whole.",
        "Memory manager 2.0.1: arenas of closed frames go to a free list, for reuse.",
    ),
    ("import threading\n", "import threading\nimport weakref\n"),
    ('version = "2.0.0"', 'version = "2.0.1"'),
    (
        '"peak_cells": 0}\n',
        '"peak_cells": 0}\n        self._free = []  # arenas of closed frames, kept for reuse\n',
    ),
    (
        """            for ref in self._arenas.pop(frame):
                del self._owner[ref]
""",
        """            arena = self._arenas.pop(frame)
            for ref in arena:
                del self._owner[ref]
            self._free.append(arena)  # the bug: nothing ever takes an arena back, or clears it
""",
    ),
    (
        '"live_cells": len(self._owner),\n',
        '"live_cells": len(self._owner),\n'
        '                "retained_cells": sum(len(arena) for arena in self._free),\n',
    ),
    (
        """def create():
    return MemoryManager()
""",
        """_INSTANCES = weakref.WeakSet()
_RETAINED_LIMIT = 2_000


def create():
    manager = MemoryManager()
    _INSTANCES.add(manager)
    return manager


def _health():
    \"\"\"Closed frames must not hold on to their cells.\"\"\"
    for manager in list(_INSTANCES):
        retained = manager.stats()["retained_cells"]
        if retained > _RETAINED_LIMIT:
            raise AssertionError(
                f"closed frames still hold {retained:,} cells (limit {_RETAINED_LIMIT:,})"
            )
    return True
""",
    ),
    (
        '''def downgrade(state, to_version):
    """2.0.0 → 1.x for a rollback: merge the arenas back into one cell table."""
''',
        '''def downgrade(state, to_version):
    """For a rollback: to 2.0.0 the state is the same (the free list is the leak, not
    state); to 1.x, merge the arenas back into one cell table."""
    if to_version.startswith("2."):
        return state
''',
    ),
)

RELEASES = (
    Release(
        "memory_manager",
        "1.0.0",
        "cell table",
        MEMORY_MANAGER_1_0_0,
        entry="memory_manager:create",
        manifest={"type": "runtime"},
    ),
    Release(
        "memory_manager",
        "1.1.0",
        "tracks peak live cells",
        MEMORY_MANAGER_1_1_0,
        entry="memory_manager:create",
        manifest={"type": "runtime", "migrate": "memory_manager:migrate"},
    ),
    Release(
        "memory_manager",
        "2.0.0",
        "arena per frame (new state shape)",
        MEMORY_MANAGER_2_0_0,
        entry="memory_manager:create",
        manifest={
            "type": "runtime",
            "migrate": "memory_manager:migrate",
            "downgrade": "memory_manager:downgrade",
            "upgrade_from": ["1.1.0"],
        },
    ),
    Release(
        "memory_manager",
        "2.0.1",
        "free list for closed arenas (faulty: never reused, memory grows)",
        MEMORY_MANAGER_2_0_1,
        entry="memory_manager:create",
        manifest={
            "type": "runtime",
            "health_check": "memory_manager:_health",
            "downgrade": "memory_manager:downgrade",
            "upgrade_from": ["2.0.0"],
        },
    ),
)
