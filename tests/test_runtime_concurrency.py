"""Swaps under load: 8 threads call continuously while versions change under them.

Nothing is mocked: components are modules on disk, the threads are real, the state
store is a SQLite file in ``tmp_path``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from helpers.load import PROGRESS_TIMEOUT_S, LoadResult, Timeline, running
from helpers.project import Project, counter_source, greeter_source, noodle_modules, pair_source
from noodle_upgrade.models import UpgradeResult, UpgradeStatus

THREADS = 8


def check_whole_versions(result: LoadResult, timeline: Timeline) -> None:
    """Every call saw one whole version, active at some moment of that call."""
    assert result.error_count == 0, result.errors
    for (before, value, after), count in result.observed.items():
        first, second = value
        assert first == second, f"{count} call(s) mixed versions {first} and {second}"
        possible = timeline.possible(before, after)
        assert first in possible, (
            f"{count} call(s) saw {first} while only {sorted(possible)} were active "
            f"(epochs {before}..{after} of {timeline.versions})"
        )
    # Every version that was switched in served calls: the swaps really happened.
    assert {pair[0] for pair in result.values()} == set(timeline.versions)


def test_swaps_under_eight_threads_serve_only_whole_versions(project: Project) -> None:
    project.constraints({"pair": ">=1,<3"})
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        project.add("pair", version, pair_source(version))
    project.add("pair", "2.0.0", pair_source("2.0.0"), upgrade_from=["1.2.0"])
    # 1.0.0 is locked first, so the newer versions are upgrades from it.
    project.constraints({"pair": "==1.0.0"})
    project.open().close()
    project.constraints({"pair": ">=1,<3"})

    with project.open() as rt:
        handle = rt.load("pair")
        timeline = Timeline([rt.version("pair")])
        assert timeline.versions == ["1.0.0"]
        # Look ``compute`` up on the handle at every call, as callers of a handle do (a
        # function fetched once stays the function of the version it came from).
        with running(lambda: handle.compute(), threads=THREADS, epoch=timeline.epoch) as load:
            load.progress()
            for _ in range(3):
                for operation, version in [
                    ("upgrade", "1.1.0"),
                    ("upgrade", "1.2.0"),
                    ("rollback", None),  # -> 1.1.0
                    ("upgrade", "2.0.0"),  # 1.1.0 -> 1.2.0 -> 2.0.0 in one call
                    ("rollback", None),  # -> 1.1.0, where that call started
                    ("rollback", None),  # -> 1.0.0
                ]:
                    if operation == "upgrade":
                        result = rt.upgrade("pair", version)
                    else:
                        result = rt.rollback("pair")
                    assert result.success, result.error_message
                    timeline.switched(result.to_version)
                    assert rt.version("pair") == result.to_version
                    load.progress()
        seen = load.stop()

        assert timeline.versions[-1] == "1.0.0"
        assert handle.compute() == ("1.0.0", "1.0.0")
        check_whole_versions(seen, timeline)
        assert seen.calls > 0
        # Versions no rollback point needs were unloaded again.
        assert rt.status()["components"]["pair"]["loaded"] == ["1.0.0"]
        loaded = {name.split(".")[1] for name in noodle_modules()}
        assert not any(name.startswith("pair__2_0_0") for name in loaded), loaded


def test_stateful_counter_loses_no_increment_across_swaps_and_rollbacks(
    project: Project,
) -> None:
    project.constraints({"counter": "==1.0.0"})
    project.add(
        "counter",
        "1.0.0",
        counter_source("1.0.0"),
        entry="counter:create",
    )
    project.open().close()  # locks 1.0.0
    # The state hooks are slow on purpose (they sleep, so the callers' threads run
    # meanwhile): a call that slipped past the quiesced gate would hit state that was
    # already copied, and its increment would be lost.
    project.add(
        "counter",
        "1.1.0",
        counter_source("1.1.0", downgrade="time.sleep(0.01); return state"),
        entry="counter:create",
        downgrade="counter:downgrade",
    )
    project.add(
        "counter",
        "2.0.0",
        counter_source(
            "2.0.0",
            key="count",
            migrate='time.sleep(0.01); return {"count": state["n"], "chain": state["chain"]}',
            downgrade='time.sleep(0.01); return {"n": state["count"], "chain": state["chain"]}',
        ),
        entry="counter:create",
        migrate="counter:migrate",
        downgrade="counter:downgrade",
        upgrade_from=["1.1.0"],
    )
    project.constraints({"counter": ">=1,<3"})

    with project.open() as rt:
        handle = rt.load("counter")
        timeline = Timeline([rt.version("counter")])

        def increment() -> tuple[str, str]:
            version, _ = handle.inc()
            return (version, version)

        with running(increment, threads=THREADS, epoch=timeline.epoch) as load:
            load.progress()
            for operation, version in [
                ("upgrade", "1.1.0"),
                ("upgrade", "2.0.0"),  # migrate: {"n"} -> {"count"}
                ("rollback", None),  # downgrade: {"count"} -> {"n"}, back on 1.1.0
                ("upgrade", "2.0.0"),
                ("rollback", None),
                ("rollback", None),  # 1.1.0's downgrade: back on 1.0.0
            ]:
                if operation == "upgrade":
                    result = rt.upgrade("counter", version)
                else:
                    result = rt.rollback("counter")
                assert result.success, result.error_message
                timeline.switched(result.to_version)
                load.progress()
        seen = load.stop()

        check_whole_versions(seen, timeline)
        assert timeline.versions == ["1.0.0", "1.1.0", "2.0.0", "1.1.0", "2.0.0", "1.1.0", "1.0.0"]
        assert handle.version() == "1.0.0"
        assert handle.value() == seen.calls  # not one increment lost or doubled


def test_a_second_operation_on_a_busy_component_is_turned_away(
    project: Project, tmp_path: Path
) -> None:
    """While one upgrade runs (its health check waits for a file), the old version keeps
    serving, and a concurrent upgrade or rollback of the same component is refused."""
    started, go = tmp_path / "started", tmp_path / "go"
    project.constraints({"svc": "==1.0.0"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    project.open().close()
    project.constraints({"svc": ">=1,<2"})
    project.add("svc", "1.1.0", greeter_source("1.1.0"))
    project.add(
        "svc",
        "1.2.0",
        greeter_source(
            "1.2.0",
            "\n\nimport pathlib, time\n\n\ndef health():\n"
            f"    pathlib.Path({str(started)!r}).write_text('checking')\n"
            f"    while not pathlib.Path({str(go)!r}).exists():\n"
            "        time.sleep(0.002)\n"
            "    return True\n",
        ),
        health_check="svc:health",
    )
    with project.open() as rt:
        handle = rt.load("svc")
        assert rt.upgrade("svc", "1.1.0").success
        outcome: list[UpgradeResult] = []
        worker = threading.Thread(target=lambda: outcome.append(rt.upgrade("svc", "1.2.0")))
        worker.start()
        try:
            deadline = time.monotonic() + PROGRESS_TIMEOUT_S
            while not started.exists():
                assert time.monotonic() < deadline and worker.is_alive(), outcome
                time.sleep(0.002)

            assert handle.hello() == "1.1.0"  # still served while the upgrade validates
            assert rt.status()["components"]["svc"]["state"] == "upgrading"
            second = rt.upgrade("svc", "1.2.0")
            assert (second.success, second.status, second.error_code) == (
                False,
                UpgradeStatus.REFUSED,
                "busy",
            )
            assert "busy" in second.error_message
            refused = rt.rollback("svc")
            assert (refused.success, refused.status, refused.error_code) == (
                False,
                UpgradeStatus.REFUSED,
                "busy",
            )
        finally:
            go.write_text("go")
            worker.join(PROGRESS_TIMEOUT_S)
        assert [result.success for result in outcome] == [True], outcome
        assert rt.version("svc") == "1.2.0"
        assert handle.hello() == "1.2.0"
        assert rt.status()["components"]["svc"]["state"] == "active"
