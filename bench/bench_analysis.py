"""Change analysis at the sizes issue 5 names: a 20k-line package diffed between two
versions (extraction of both included), and the impact of a version on a 20k-line
workspace (goal for each: ≤ 1 s).

The code is generated with the shape of real library code: modules of classes with
docstrings, methods with positional, keyword-only and defaulted parameters, module
functions and constants; the second version renames, removes and adds a few things.
The workspace calls the component through ``rt.load`` handles in functions and methods.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import header, table
from noodle_upgrade.analysis.api import Api
from noodle_upgrade.analysis.diff import ApiDiff, diff_api
from noodle_upgrade.analysis.extract import ParsedFiles, extract_api
from noodle_upgrade.analysis.impact import Finding, check_uses
from noodle_upgrade.analysis.uses import scan_workspace

LINES = 20_000
ROUNDS = 5

CLASS = '''

class Widget{n}(Base):
    """A widget of kind {n}: it renders, resizes and reports its state."""

    LIMIT = {n}

    def __init__(self, name, size=10, *, color="red", tags=()):
        self.name = name
        self.size = size
        self.color = color
        self.tags = tuple(tags)

    def render(self, target, *, scale=1.0{extra}):
        """Draw the widget on ``target``."""
        width = self.size * scale
        return target.draw(self.name, width, self.color)

    def resize(self, width, height=None):
        self.size = width if height is None else max(width, height)
        return self.size

    @property
    def area(self):
        return self.size * self.size


def make_widget{n}(name, *args, **kwargs):
    """Build a Widget{n}."""
    return Widget{n}(name, *args, **kwargs)
'''

HEADER = '''"""Widgets, part {m}."""

from ._base import Base
'''

WORKSPACE = """
def job{n}(rt):
    widgets = rt.load("widgets")
    made = widgets.make_widget{k}("w{n}", 3, color="blue")
    size = widgets.compute(1, 2)
    return made, size


class Service{n}:
    def __init__(self, rt):
        self.widgets = rt.load("widgets")

    def run(self):
        return self.widgets.make_widget{k}("s{n}")
"""


def write_package(root: Path, version: str, changed: Callable[[int], bool]) -> int:
    """A package of about ``LINES`` lines; the modules ``changed`` picks carry this
    release's changes (a new optional parameter), the others are the same bytes in every
    release, as in a real one. Returns the lines written."""
    package = root / "widgets"
    package.mkdir(parents=True)
    (package / "_base.py").write_text("class Base:\n    pass\n")
    init = "from .core import *\n\n\ndef compute(a, b, *, mode='sum'):\n    return a + b\n"
    if version != "1.0.0":  # a parameter removed: the breaking change to find
        init = "from .core import *\n\n\ndef compute(a, *, mode='sum'):\n    return a\n"
    (package / "__init__.py").write_text(init)
    (package / "core.py").write_text("from .part0 import *\n")
    lines, module = 0, 0
    while lines < LINES:
        text = HEADER.format(m=module)
        for n in range(module * 40, module * 40 + 40):
            extra = ", dpi=96" if changed(module) and n % 7 == 0 else ""
            text += CLASS.format(n=n, extra=extra)
        (package / f"part{module}.py").write_text(text)
        lines += text.count("\n")
        module += 1
    return lines


def write_workspace(root: Path, every: int) -> int:
    """About ``LINES`` lines of application code; one file in ``every`` uses the
    component through handles, the others are code of the same size that does not."""
    lines, file = 0, 0
    while lines < LINES:
        text = "".join(WORKSPACE.format(n=n, k=n % 40) for n in range(file * 50, file * 50 + 50))
        if file % every:
            text = text.replace('rt.load("widgets")', "rt.settings")
        (root / f"app{file}.py").write_text(text)
        lines += text.count("\n")
        file += 1
    return lines


def write_real_releases(root: Path) -> int:
    """Two releases of real code: this Python's own ``asyncio`` package, the second with
    a new function in two of its modules. Returns its lines."""
    source = Path(sysconfig.get_paths()["stdlib"]) / "asyncio"
    for version in ("1.0.0", "1.1.0"):
        shutil.copytree(
            source, root / version / "asyncio", ignore=shutil.ignore_patterns("__pycache__")
        )
    for module in ("queues.py", "locks.py"):
        changed = root / "1.1.0" / "asyncio" / module
        changed.write_text(
            changed.read_text() + "\n\ndef added(value, *, strict=False):\n    return value\n"
        )
    return sum(f.read_text().count("\n") for f in (root / "1.0.0").rglob("*.py"))


def timed(work: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    header("Change analysis: diff of a 20k-line package, impact on a 20k-line workspace")
    with tempfile.TemporaryDirectory(prefix="noodle-bench-") as folder:
        root = Path(folder)
        package_lines = write_package(root / "1.0.0", "1.0.0", lambda module: False)
        write_package(root / "2.0.0", "2.0.0", lambda module: True)  # every file changed
        write_package(root / "1.1.0", "1.1.0", lambda module: module in (3, 7))
        every, some = root / "every", root / "some"
        every.mkdir()
        some.mkdir()
        workspace_lines = write_workspace(every, 1)
        write_workspace(some, 10)

        def extract(version: str, parsed: ParsedFiles | None = None) -> Api:
            return extract_api(
                root / version, "widgets", component="widgets", version=version, parsed=parsed
            )

        def diff(version: str) -> ApiDiff:
            parsed = ParsedFiles()  # what `noodle diff` does: one cache for both versions
            return diff_api(extract("1.0.0", parsed), extract(version, parsed))

        real = root / "real"
        real_lines = write_real_releases(real)

        def diff_real() -> ApiDiff:
            parsed = ParsedFiles()
            old, new = (
                extract_api(real / v, "asyncio", component="asyncio", version=v, parsed=parsed)
                for v in ("1.0.0", "1.1.0")
            )
            return diff_api(old, new)

        def impact(workspace: Path) -> list[Finding]:
            return check_uses(scan_workspace(workspace, ["widgets"]).uses, target)

        target = extract("2.0.0")
        found = {version: diff(version) for version in ("2.0.0", "1.1.0")}
        uses = {path.name: len(scan_workspace(path).uses) for path in (every, some)}
        rows = []
        for label, work in (
            ("extract one version", lambda: extract("1.0.0")),
            ("diff 1.0.0 → 2.0.0 (every file changed)", lambda: diff("2.0.0")),
            ("diff 1.0.0 → 1.1.0 (2 files changed)", lambda: diff("1.1.0")),
            (f"diff of real code: asyncio, {real_lines:,} lines, 2 files changed", diff_real),
            ("impact, every file uses the component", lambda: impact(every)),
            ("impact, 1 file in 10 uses it", lambda: impact(some)),
        ):
            samples = timed(work)
            rows.append([label, f"{min(samples):.3f}", f"{statistics.median(samples):.3f}"])
    print(
        f"package: {package_lines:,} lines per version, {len(target.objects):,} objects; "
        + "; ".join(
            f"to {v}: {len(d.breaking)} breaking, {len(d.additions)} additions"
            for v, d in found.items()
        )
    )
    print(
        f"workspace: {workspace_lines:,} lines; {uses['every']:,} uses when every file uses "
        f"the component, {uses['some']:,} when one in ten does"
    )
    print(f"best and median of {ROUNDS} rounds, seconds (goal ≤ 1)")
    print(table(["measure", "best", "median"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
