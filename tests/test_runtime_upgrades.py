"""Upgrades through the public API: multi-step paths, state migration, refusals, misuse.

Every refusal or failure must leave the running process and the store exactly as they
were: same version, same behaviour, no stray modules, same lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers.project import Project, counter_source, greeter_source, noodle_modules
from noodle_upgrade import Runtime
from noodle_upgrade.errors import (
    ComponentNotFoundError,
    ConfigError,
    RollbackError,
    ValidationError,
)
from noodle_upgrade.models import UpgradeStatus

COUNTER = "counter:create"


def locked_at(project: Project, constraints: dict[str, str], **pins: str) -> None:
    """Record ``pins`` as the active versions (a first start), then write ``constraints``.

    Later starts keep the locked versions, so newer ones in the store are upgrades.
    """
    project.constraints({name: f"=={version}" for name, version in pins.items()})
    project.open().close()
    project.constraints(constraints)


# ------------------------------------------------------------------ multi-step upgrades


def test_multi_step_upgrade_migrates_at_every_step_and_rolls_back_to_its_start(
    project: Project,
) -> None:
    project.constraints({"counter": ">=1,<3"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    with project.open() as rt:
        handle = rt.load("counter")
        for _ in range(3):
            handle.inc()
        before = noodle_modules()
        # Both versions appear while the runtime runs; 2.0.0 only accepts 1.1.0.
        project.add(
            "counter",
            "1.1.0",
            counter_source(
                "1.1.0",
                migrate='return {**state, "chain": [*state["chain"], f"{from_version}->1.1.0"]}',
            ),
            entry=COUNTER,
            migrate="counter:migrate",
            upgrade_from=["1.0.0"],
        )
        project.add(
            "counter",
            "2.0.0",
            counter_source(
                "2.0.0",
                key="count",
                migrate=(
                    'return {"count": state["n"], '
                    '"chain": [*state["chain"], f"{from_version}->2.0.0"]}'
                ),
            ),
            entry=COUNTER,
            migrate="counter:migrate",
            upgrade_from=["1.1.0"],
        )

        assert rt.plan("counter", "2.0.0").path == ["1.0.0", "1.1.0", "2.0.0"]
        result = rt.upgrade("counter", "2.0.0")

        assert result.success, result.error_message
        assert result.status is UpgradeStatus.SUCCEEDED
        assert (result.from_version, result.to_version) == ("1.0.0", "2.0.0")
        assert result.path == ["1.1.0", "2.0.0"]
        assert rt.version("counter") == "2.0.0"
        assert handle.version() == "2.0.0"
        # Each step's migrate ran, in order, on the previous step's output.
        assert handle.chain() == ["1.0.0->1.1.0", "1.1.0->2.0.0"]
        assert handle.value() == 3
        assert handle.inc() == ("2.0.0", 4)
        # The intermediate step lent its hook and was unloaded; 1.0.0 stays for rollback.
        added = {name.split(".")[1] for name in noodle_modules() - before}
        assert len(added) == 1 and re.fullmatch(r"counter__2_0_0(_\d+)?", added.pop())
        assert rt.status()["components"]["counter"]["loaded"] == ["1.0.0", "2.0.0"]
        assert result.rollback_point is not None
        assert result.rollback_point.version == "1.0.0"
        assert rt.history("counter")[0].path == ["1.1.0", "2.0.0"]

        back = rt.rollback("counter")

        assert back.success, back.error_message
        assert (back.from_version, back.to_version) == ("2.0.0", "1.0.0")
        assert rt.version("counter") == "1.0.0"
        assert handle.version() == "1.0.0"
        assert handle.value() == 3  # 2.0.0 has no downgrade hook: the point's state
        assert handle.chain() == []
        assert rt.store.active_versions() == {"counter": "1.0.0"}
        # One upgrade call left one rollback point, now used up.
        with pytest.raises(RollbackError, match="no rollback point"):
            rt.rollback("counter")


# ------------------------------------------------------------------ state migration


def test_migrate_converts_the_state_shape(project: Project) -> None:
    project.constraints({"counter": ">=1,<3"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    project.add(
        "counter",
        "2.0.0",
        counter_source(
            "2.0.0", key="count", migrate='return {"count": state["n"] * 10, "chain": ["x10"]}'
        ),
        entry=COUNTER,
        migrate="counter:migrate",
        upgrade_from=["1.0.0"],
    )
    locked_at(project, {"counter": ">=1,<3"}, counter="1.0.0")

    with project.open() as rt:
        handle = rt.load("counter")
        assert [handle.inc() for _ in range(2)] == [("1.0.0", 1), ("1.0.0", 2)]

        result = rt.upgrade("counter", "2.0.0")

        assert result.success, result.error_message
        assert handle.value() == 20  # {"n": 2} became {"count": 20}
        assert handle.chain() == ["x10"]
        assert handle.inc() == ("2.0.0", 21)


def test_broken_migration_fails_before_the_switch(project: Project) -> None:
    project.constraints({"counter": ">=1,<3"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    project.add(
        "counter",
        "2.0.0",
        counter_source("2.0.0", key="count", migrate='return {"count": state["missing"]}'),
        entry=COUNTER,
        migrate="counter:migrate",
        upgrade_from=["1.0.0"],
    )
    locked_at(project, {"counter": ">=1,<3"}, counter="1.0.0")

    with project.open() as rt:
        handle = rt.load("counter")
        handle.inc()
        handle.inc()
        modules = noodle_modules()

        result = rt.upgrade("counter", "2.0.0")

        assert not result.success
        assert result.status is UpgradeStatus.FAILED
        assert result.error_code == "migration-failed"
        assert "KeyError" in result.error_message and "missing" in result.error_message
        assert "2.0.0" in result.error_message
        # The old instance keeps serving, with its state, and takes new calls.
        assert rt.version("counter") == "1.0.0"
        assert handle.inc() == ("1.0.0", 3)
        assert rt.store.active_versions() == {"counter": "1.0.0"}
        assert rt.store.rollback_points("counter") == []
        assert noodle_modules() == modules, "the refused version's modules stayed loaded"
        assert rt.status()["components"]["counter"]["loaded"] == ["1.0.0"]
        assert rt.history("counter")[0].status is UpgradeStatus.FAILED


def test_failing_post_switch_check_switches_back_with_the_state(project: Project) -> None:
    """The health check passes before the switch and fails after it: rolled back."""
    project.constraints({"counter": ">=1,<3"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    project.add(
        "counter",
        "1.1.0",
        counter_source(
            "1.1.0",
            extra="\nCHECKS = []\n\n\ndef health():\n    CHECKS.append(1)\n"
            "    return len(CHECKS) == 1\n",
        ),
        entry=COUNTER,
        health_check="counter:health",
    )
    locked_at(project, {"counter": ">=1,<3"}, counter="1.0.0")

    with project.open() as rt:
        handle = rt.load("counter")
        for _ in range(5):
            handle.inc()
        modules = noodle_modules()

        result = rt.upgrade("counter", "1.1.0")

        assert result.status is UpgradeStatus.ROLLED_BACK
        assert result.error_code == "health-check-failed"
        assert "counter:health" in result.error_message
        assert rt.version("counter") == "1.0.0"
        assert handle.inc() == ("1.0.0", 6)
        assert rt.store.active_versions() == {"counter": "1.0.0"}
        assert noodle_modules() == modules
        assert rt.history("counter")[0].status is UpgradeStatus.ROLLED_BACK


# ------------------------------------------------------------------ refusals


@dataclass
class Refusal:
    """One way an upgrade of ``svc`` (active at 1.0.0) must be turned down."""

    target: str
    status: UpgradeStatus
    code: str
    # Called once the runtime runs, to put the offending version into the store.
    prepare: Callable[[Project], object]
    # What the message must name; a callable gets the project (for file paths).
    names: list[str | Callable[[Project], str]] = field(default_factory=list)
    constraint: str = ">=0.1"
    others: dict[str, str] = field(default_factory=dict)  # other components, at open


def _tamper(project: Project) -> None:
    folder = project.add("svc", "1.1.0", greeter_source("1.1.0"), sign=True)
    (folder / "svc.py").write_text(greeter_source("1.1.0", "import os\n"))


def _manifest(version: str) -> Callable[[Project], str]:
    return lambda project: str(project.manifest("svc", version))


REFUSALS = {
    "no-upgrade-path": Refusal(
        "2.0.0",
        UpgradeStatus.REFUSED,
        "no-upgrade-path",
        lambda p: p.add("svc", "2.0.0", greeter_source("2.0.0"), upgrade_from=["1.5.0"]),
        ["no upgrade path", "1.0.0", "2.0.0", "1.5.0"],
    ),
    "no-upgrade-path-across-major": Refusal(
        "2.0.0",
        UpgradeStatus.REFUSED,
        "no-upgrade-path",
        lambda p: p.add("svc", "2.0.0", greeter_source("2.0.0")),
        ["upgrade_from", "2.x", _manifest("2.0.0")],
    ),
    "downgrade": Refusal(
        "0.9.0",
        UpgradeStatus.REFUSED,
        "downgrade",
        lambda p: p.add("svc", "0.9.0", greeter_source("0.9.0")),
        ["0.9.0", "lower than the active 1.0.0", "rollback"],
    ),
    "outside-constraint": Refusal(
        "1.5.0",
        UpgradeStatus.REFUSED,
        "unsatisfiable-constraint",
        lambda p: p.add("svc", "1.5.0", greeter_source("1.5.0")),
        ["1.5.0", ">=0.1,<1.5", "noodle.toml [components]"],
        constraint=">=0.1,<1.5",
    ),
    "bad-sha256": Refusal(
        "1.1.0",
        UpgradeStatus.REFUSED,
        "integrity-mismatch",
        _tamper,
        ["sha256", "svc@1.1.0", _manifest("1.1.0")],
    ),
    "health-check-false": Refusal(
        "1.1.0",
        UpgradeStatus.FAILED,
        "health-check-failed",
        lambda p: p.add(
            "svc",
            "1.1.0",
            greeter_source("1.1.0", "\n\ndef health():\n    return False\n"),
            health_check="svc:health",
        ),
        ["svc:health", "svc@1.1.0", "returned False"],
    ),
    "health-check-raises": Refusal(
        "1.1.0",
        UpgradeStatus.FAILED,
        "health-check-failed",
        lambda p: p.add(
            "svc",
            "1.1.0",
            greeter_source("1.1.0", "\n\ndef health():\n    raise OSError('disk on fire')\n"),
            health_check="svc:health",
        ),
        ["svc:health", "svc@1.1.0", "OSError", "disk on fire"],
    ),
    "syntax-error": Refusal(
        "1.1.0",
        UpgradeStatus.FAILED,
        "import-error",
        lambda p: p.add("svc", "1.1.0", "def hello(:\n    return '1.1.0'\n"),
        ["svc@1.1.0", "SyntaxError", "svc.py", _manifest("1.1.0")],
    ),
    "raises-at-import": Refusal(
        "1.1.0",
        UpgradeStatus.FAILED,
        "import-error",
        # A sibling module is imported first: it must not stay behind either.
        lambda p: p.add(
            "svc",
            "1.1.0",
            {
                "svc.py": (
                    "from . import svc_helper\n\n\ndef hello():\n    return '1.1.0'\n\n\n"
                    "raise RuntimeError('no config')\n"
                ),
                "svc_helper.py": "X = 1\n",
            },
        ),
        ["svc@1.1.0", "RuntimeError", "no config"],
    ),
    "dependency-break": Refusal(
        "2.0.0",
        UpgradeStatus.REFUSED,
        "dependency-conflict",
        lambda p: p.add("svc", "2.0.0", greeter_source("2.0.0"), upgrade_from=["1.0.0"]),
        ["svc 2.0.0 would break app 1.0.0", "svc >=1,<2"],
        others={"app": ">=1,<2"},
    ),
    "version-not-in-store": Refusal(
        "1.9.0",
        UpgradeStatus.REFUSED,
        "invalid-version",
        lambda p: p.add("svc", "1.1.0", greeter_source("1.1.0")),
        ["svc 1.9.0 is not in the component store", "1.0.0, 1.1.0"],
    ),
    "not-hot-swappable": Refusal(
        "1.1.0",
        UpgradeStatus.REFUSED,
        "not-hot-swappable",
        lambda p: p.add("svc", "1.1.0", greeter_source("1.1.0"), hot_swappable=False),
        ["svc 1.1.0", "hot_swappable = false", _manifest("1.1.0")],
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_refused_or_failed_upgrade_changes_nothing(project: Project, case: Refusal) -> None:
    constraints = {"svc": case.constraint}
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    for other, needs in case.others.items():
        constraints[other] = "==1.0.0"
        project.add(other, "1.0.0", "def run():\n    return 'ok'\n", dependencies={"svc": needs})
    project.constraints(constraints)

    with project.open() as rt:
        handle = rt.load("svc")
        case.prepare(project)
        lock = rt.store.active_versions()
        modules = noodle_modules()
        audit_before = rt.store.verify_audit().records

        result = rt.upgrade("svc", case.target)

        assert not result.success
        assert result.status is case.status, result.error_message
        assert result.error_code == case.code, result.error_message
        assert result.from_version == "1.0.0"
        for name in case.names:
            expected = name(project) if callable(name) else name
            assert expected in result.error_message, (expected, result.error_message)
        # Nothing changed: version, behaviour, modules, lock, rollback points.
        assert rt.version("svc") == "1.0.0"
        assert handle.hello() == "1.0.0"
        assert noodle_modules() == modules, "a refused version left modules in sys.modules"
        assert rt.status()["components"]["svc"]["loaded"] == ["1.0.0"]
        assert rt.store.active_versions() == lock
        assert rt.store.rollback_points("svc") == []
        # ... and the refusal is on record, in the history and the audit chain.
        entry = rt.history("svc")[0]
        assert (entry.kind, entry.status, entry.error_code) == ("upgrade", case.status, case.code)
        audit = rt.store.verify_audit()
        assert audit.ok and audit.records > audit_before

    with project.open() as rt:  # a restart finds the same version active
        assert rt.version("svc") == "1.0.0"
        assert rt.load("svc").hello() == "1.0.0"


def test_misuse_raises_an_error_that_says_what_is_wrong(project: Project) -> None:
    project.constraints({"svc": ">=1"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    project.add("svc", "1.1.0", greeter_source("1.1.0"))
    locked_at(project, {"svc": ">=1"}, svc="1.0.0")

    with project.open() as rt:
        with pytest.raises(ComponentNotFoundError, match=r"'nope'.*svc"):
            rt.upgrade("nope", "1.1.0")
        with pytest.raises(ComponentNotFoundError, match="'nope'"):
            rt.load("nope")
        with pytest.raises(ComponentNotFoundError, match="'nope'"):
            rt.rollback("nope")
        with pytest.raises(ValidationError, match=r"unknown strategy 'warp'.*immediate"):
            rt.upgrade("svc", "1.1.0", strategy="warp")
        with pytest.raises(ValidationError, match=r"unknown strategy parameter.*speed"):
            rt.upgrade("svc", "1.1.0", speed=3)
        with pytest.raises(ValidationError, match=r"initial_percentage.*out of range"):
            rt.upgrade("svc", "1.1.0", initial_percentage=150)
        with pytest.raises(ValidationError, match=r"'one\.two' is not a valid version"):
            rt.upgrade("svc", "one.two")
        with pytest.raises(RollbackError, match="no rollback point"):
            rt.rollback("svc")
        with pytest.raises(RollbackError, match="'rp-nope' does not exist"):
            rt.rollback("svc", to="rp-nope")

        # None of that touched anything.
        assert rt.version("svc") == "1.0.0"
        assert rt.history() == []
        assert rt.upgrade("svc", "1.1.0").success
        assert rt.load("svc").hello() == "1.1.0"


def test_the_handle_offers_exactly_the_active_versions_names(project: Project) -> None:
    project.constraints({"svc": ">=1"})
    project.add(
        "svc", "1.0.0", greeter_source("1.0.0", "\nLIMIT = 10\n\n\ndef old_only():\n    return 1\n")
    )
    with project.open() as rt:
        handle = rt.load("svc")
        project.add(  # old_only() is gone: a breaking change, so a major version
            "svc",
            "2.0.0",
            greeter_source("2.0.0", "\nLIMIT = 20\n\n\ndef new_only():\n    return 2\n"),
            upgrade_from=["1.0.0"],
        )
        assert (handle.hello(), handle.LIMIT, handle.old_only()) == ("1.0.0", 10, 1)
        with pytest.raises(AttributeError):
            handle.new_only()

        assert rt.upgrade("svc", "2.0.0").success

        assert (handle.hello(), handle.LIMIT, handle.new_only()) == ("2.0.0", 20, 2)
        with pytest.raises(AttributeError):
            handle.old_only  # noqa: B018
        assert "new_only" in dir(handle) and "old_only" not in dir(handle)
        with pytest.raises(AttributeError, match="read-only"):
            handle.LIMIT = 5

        assert rt.rollback("svc").success

        assert (handle.hello(), handle.LIMIT, handle.old_only()) == ("1.0.0", 10, 1)
        with pytest.raises(AttributeError):
            handle.new_only  # noqa: B018


def test_upgrade_without_a_version_takes_the_newest_the_constraint_allows(
    project: Project,
) -> None:
    project.constraints({"svc": ">=1,<2"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    with project.open() as rt:
        for version in ("1.1.0", "1.2.0", "2.0.0", "1.3.0rc1"):
            project.add("svc", version, greeter_source(version))

        result = rt.upgrade("svc")

        assert result.success, result.error_message
        assert (result.from_version, result.to_version) == ("1.0.0", "1.2.0")
        assert rt.load("svc").hello() == "1.2.0"
        # Nothing newer is allowed: the refusal gives the newest candidate's reason.
        again = rt.upgrade("svc")
        assert (again.status, again.error_code) == (
            UpgradeStatus.REFUSED,
            "unsatisfiable-constraint",
        )
        assert "2.0.0" in again.error_message and ">=1,<2" in again.error_message
        assert rt.version("svc") == "1.2.0"


def test_only_the_configured_number_of_rollback_points_is_kept(project: Project) -> None:
    project.constraints({"svc": ">=1"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    with project.open(max_rollback_points=1) as rt:
        for version in ("1.1.0", "1.2.0"):
            project.add("svc", version, greeter_source(version))
            assert rt.upgrade("svc", version).success
        # 1.0.0's point was released, and 1.0.0 unloaded with it.
        assert [p.version for p in rt.store.rollback_points("svc")] == ["1.1.0"]
        assert rt.status()["components"]["svc"]["loaded"] == ["1.1.0", "1.2.0"]

        assert rt.rollback("svc").to_version == "1.1.0"
        with pytest.raises(RollbackError, match="no rollback point"):
            rt.rollback("svc")
        assert rt.load("svc").hello() == "1.1.0"


def test_closing_the_runtime_forgets_every_version_it_loaded(project: Project) -> None:
    start = noodle_modules()
    project.constraints({"svc": ">=1"})
    project.add("svc", "1.0.0", greeter_source("1.0.0"))
    with project.open() as rt:
        project.add("svc", "1.1.0", greeter_source("1.1.0"))
        assert rt.upgrade("svc", "1.1.0").success
        handle = rt.load("svc")
        assert len(noodle_modules() - start) == 4  # two versions: package + module each
    assert noodle_modules() == start
    assert handle.hello() == "1.1.0"  # code already bound keeps working after close


def test_open_refuses_a_tampered_active_version_and_loads_nothing(project: Project) -> None:
    project.constraints({"alpha": "==1.0.0", "svc": "==1.0.0"})
    project.add("alpha", "1.0.0", greeter_source("1.0.0"))
    folder = project.add("svc", "1.0.0", greeter_source("1.0.0"), sign=True)
    project.open().close()
    (folder / "svc.py").write_text(greeter_source("6.6.6"))
    modules = noodle_modules()

    with pytest.raises(ValidationError, match="sha256") as raised:
        project.open()

    assert raised.value.code == "integrity-mismatch"
    assert str(project.manifest("svc", "1.0.0")) in raised.value.message
    assert noodle_modules() == modules


def test_open_without_a_project_raises_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere/noodle\.toml: not found"):
        Runtime.open(tmp_path / "nowhere")
