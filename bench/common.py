"""Helpers shared by the benchmarks: projects to run on, a lexer to call, and statistics.

Every benchmark prints ratios measured in one run: the machines are shared and noisy,
so two numbers taken side by side in the same process are what to read, not either one.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import timeit
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from noodle_upgrade import Runtime
from noodle_upgrade.scaffold import ManifestValue, write_component, write_project

# The control server would add a thread that the numbers do not need.
SETTINGS: Mapping[str, object] = {"control_enabled": False}

# The call the benchmarks make: a short expression through a real tokenizer (~2 µs).
EXPRESSION = "12 + 34 * (5 - 6)"
TOKENS = ["12", "+", "34", "*", "(", "5", "-", "6", ")"]

# A trivial function (~100 ns): the worst case for any per-call overhead.
TRIVIAL_SOURCE = """
def tokenize(text):
    return text.split()
"""

LEXER_SOURCE = """
import re

_TOKEN = re.compile(r"\\d+(?:\\.\\d+)?|\\w+|[-+*/()]")


def tokenize(text):
    return _TOKEN.findall(text)


def health():
    return tokenize("1 + 2") == ["1", "+", "2"]
"""

# The same lexer as a stateful component: a factory entry whose instance counts the
# calls it served, with the hooks that carry the count across upgrades and rollbacks.
STATEFUL_LEXER_SOURCE = """
import re
import threading

_TOKEN = re.compile(r"\\d+(?:\\.\\d+)?|\\w+|[-+*/()]")


class Lexer:
    def __init__(self):
        self._lock = threading.Lock()
        self.calls = 0

    def tokenize(self, text):
        with self._lock:
            self.calls += 1
        return _TOKEN.findall(text)

    def served(self):
        return self.calls

    def snapshot(self):
        return {"calls": self.calls}

    def restore(self, state):
        self.calls = state["calls"]


def create():
    return Lexer()


def health():
    return create().tokenize("1 + 2") == ["1", "+", "2"]


def migrate(state, from_version):
    return dict(state)


def downgrade(state, to_version):
    return dict(state)
"""


def lexer_manifest(name: str, *, stateful: bool) -> dict[str, ManifestValue]:
    """The manifest fields of the lexer named ``name`` (its module is ``<name>.py``)."""
    fields: dict[str, ManifestValue] = {"health_check": f"{name}:health"}
    if stateful:
        fields |= {
            "entry": f"{name}:create",
            "migrate": f"{name}:migrate",
            "downgrade": f"{name}:downgrade",
        }
    return fields


@contextmanager
def project(components: Mapping[str, str]) -> Iterator[Path]:
    """A temporary project whose ``noodle.toml`` lists ``components``; removed after."""
    with tempfile.TemporaryDirectory(prefix="noodle-bench-") as folder:
        yield write_project(Path(folder), components)


def write_lexer_chain(root: Path, name: str, count: int, *, stateful: bool = False) -> list[str]:
    """Write versions ``1.0.0`` … ``1.<count-1>.0`` of a lexer component; returns them."""
    source = STATEFUL_LEXER_SOURCE if stateful else LEXER_SOURCE
    # entry= is among the fields, which scaffold types apart from the others
    fields: dict[str, Any] = lexer_manifest(name, stateful=stateful)
    versions = [f"1.{minor}.0" for minor in range(count)]
    for version in versions:
        write_component(root, name, version, source, **fields)
    return versions


def pin(root: Path, start: Mapping[str, str], constraints: Mapping[str, str]) -> None:
    """Make ``start`` the active versions while later ones wait in the store.

    A runtime activates the newest version a constraint allows unless the store's lock
    says otherwise: open it once pinned to ``start``, then widen the constraints.
    """
    write_project(root, {name: f"=={version}" for name, version in start.items()})
    with Runtime.open(root, settings=SETTINGS):
        pass
    write_project(root, constraints)


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``values``."""
    if not values:
        return math.nan
    ordered = values if presorted else sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def best_per_call(timers: Mapping[str, timeit.Timer], rounds: int, number: int) -> dict[str, float]:
    """The fastest seconds per call of each timer over ``rounds`` interleaved rounds.

    Interleaving puts every side under the same machine load; the minimum is the run
    least disturbed by other processes.
    """
    best = dict.fromkeys(timers, math.inf)
    for _ in range(rounds):
        for label, timer in timers.items():
            best[label] = min(best[label], timer.timeit(number) / number)
    return best


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(cell) for cell in cells)
        parts = [first.ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def header(title: str) -> None:
    """The benchmark's title and what the machine was doing when it started."""
    print(f"\n{title}\n{'=' * len(title)}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"Python {sys.version.split()[0]}, {cpus} CPUs{load}; read the ratios of this one run")
