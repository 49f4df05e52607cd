"""Component versions with chosen behaviour, for strategy tests: right, faulty, slow,
wrong on some inputs, noisy, or hanging — real modules written to disk.

Every version is a plain module (``entry = "calc"``) offering ``add(a, b)`` and
``version()``. ``add`` is the call a test loads; what goes wrong with it is chosen here:

- ``fail_every=3``: every third call of this version raises ``CalcFault``;
- ``fail_when_exists=path``: every call raises once ``path`` exists (a switch a test
  flips while callers run);
- ``extra_us``: each call busy-waits this much more than ``base_us`` (a slowdown of a
  fixed duration: a busy-wait holds the GIL, so it costs the same under any load);
- ``wrong_for=7``: ``add(7, b)`` answers one too many (a wrong result, not an error);
- ``off_by``: every answer is off by this small amount (floating-point noise);
- ``clock=True``: ``add`` returns ``time.perf_counter_ns()`` (nondeterministic);
- ``hang_until_exists=path``: every call blocks until ``path`` exists (a hang the test
  can end, so no thread stays stuck after it).

``base_us`` gives every call a fixed cost (a busy-wait), so latencies compare real work
rather than the clock's own jitter on a sub-microsecond call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

from helpers.project import Project, noodle_modules
from noodle_upgrade import Runtime
from noodle_upgrade.models import UpgradeResult, UpgradeStatus
from noodle_upgrade.scaffold import ManifestValue

FAULT = "CalcFault"


def calc_source(
    version: str,
    *,
    base_us: float = 0.0,
    extra_us: float = 0.0,
    fail_every: int = 0,
    fail_when_exists: Path | None = None,
    wrong_for: int | None = None,
    off_by: float = 0.0,
    clock: bool = False,
    hang_until_exists: Path | None = None,
) -> str:
    lines = [
        "import itertools",
        "import os",
        "import time",
        "",
        f"VERSION = {version!r}",
        f"COST_S = {(base_us + extra_us) / 1e6!r}",
        "_calls = itertools.count(1)",
        "",
        "",
        f"class {FAULT}(RuntimeError):",
        "    pass",
        "",
        "",
        "def version():",
        "    return VERSION",
        "",
        "",
        "def add(a, b):",
        "    number = next(_calls)",
    ]
    if hang_until_exists is not None:
        lines += [
            "    gives_up = time.monotonic() + 60",
            f"    while not os.path.exists({str(hang_until_exists)!r}):",
            "        if time.monotonic() > gives_up:",
            "            break",
            "        time.sleep(0.005)",
        ]
    if base_us or extra_us:
        lines += [
            "    started = time.perf_counter()",
            "    while time.perf_counter() - started < COST_S:",
            "        pass",
        ]
    if fail_every:
        lines += [
            f"    if number % {fail_every} == 0:",
            f"        raise {FAULT}(f'{{VERSION}} fails call {{number}}')",
        ]
    if fail_when_exists is not None:
        lines += [
            f"    if os.path.exists({str(fail_when_exists)!r}):",
            f"        raise {FAULT}(f'{{VERSION}} fails call {{number}}: the flag is set')",
        ]
    if clock:
        lines += ["    return time.perf_counter_ns()"]
        return "\n".join(lines) + "\n"
    result = "a + b"
    if wrong_for is not None:
        result += f" + (1 if a == {wrong_for} else 0)"
    if off_by:
        result += f" + {off_by!r}"
    lines += [f"    return {result}"]
    return "\n".join(lines) + "\n"


def locked_calc(project: Project, stable: str, **manifest: ManifestValue) -> None:
    """Write ``calc`` 1.0.0 with ``stable`` as its code, make it the active version (a
    first start records the lock), then accept any ``calc >= 1``: versions added later
    are upgrades from 1.0.0."""
    project.constraints({"calc": "==1.0.0"})
    project.add("calc", "1.0.0", stable, **manifest)
    project.open().close()
    project.constraints({"calc": ">=1"})


def faults_as_values(call: Callable[[], Hashable]) -> Callable[[], Hashable]:
    """``call``, with a candidate's ``CalcFault`` returned as the value ``"fault"``: for
    load on a faulty release whose callers are expected to see its failures."""

    def tolerant() -> Hashable:
        try:
            return call()
        except RuntimeError as exc:
            if type(exc).__name__ == FAULT:
                return "fault"
            raise

    return tolerant


def check_withdrawn(
    project: Project,
    rt: Runtime,
    result: UpgradeResult,
    modules_before: set[str],
    *,
    stable: str = "1.0.0",
    status: UpgradeStatus = UpgradeStatus.ROLLED_BACK,
    deterministic: bool = True,
) -> None:
    """The candidate left no trace: the handle serves ``stable`` again, none of the
    candidate's modules stays in ``sys.modules``, the store's lock is unchanged (read
    with raw SQLite), no rollback point was left, and history records ``status``.
    ``deterministic=False`` skips checking ``add``'s answers (a ``clock`` component)."""
    assert not result.success
    assert result.status is status, (result.status, result.error_message)
    handle = rt.load("calc")
    assert rt.version("calc") == stable
    assert handle.__noodle_version__ == stable
    assert all(handle.version() == stable for _ in range(200))
    if deterministic:
        assert all(handle.add(2, 3) == 5 for _ in range(200))
    assert noodle_modules() == modules_before
    assert rt.status()["components"]["calc"]["loaded"] == [stable]
    assert rt.store.active_versions() == {"calc": stable}
    assert project.sql("SELECT active_version FROM components WHERE name = 'calc'") == [(stable,)]
    assert rt.store.rollback_points("calc") == []
    last = rt.history("calc")[0]
    assert (last.kind, last.id, last.status) == ("upgrade", result.request_id, status)
    assert last.error_code == result.error_code
