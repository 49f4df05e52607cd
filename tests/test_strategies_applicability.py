"""Which strategy may upgrade which kind of component: a strategy that cannot be safe
for a component is refused before anything loads (``strategy-not-applicable``)."""

from __future__ import annotations

import pytest

from helpers.behaviour import calc_source, locked_calc
from helpers.project import Project, counter_source, noodle_modules
from noodle_upgrade.models import UpgradeStatus

COUNTER = "counter:create"


def refused_cleanly(project: Project, name: str, strategy: str, **parameters: object) -> str:
    """Upgrade ``name`` to 1.1.0 with ``strategy``: check that it was refused with
    nothing loaded and nothing changed, and return the refusal's message."""
    with project.open() as rt:
        handle = rt.load(name)
        before = noodle_modules()

        result = rt.upgrade(name, "1.1.0", strategy=strategy, **parameters)

        assert result.status is UpgradeStatus.REFUSED, result.error_message
        assert result.error_code == "strategy-not-applicable"
        assert noodle_modules() == before  # nothing of 1.1.0 was ever imported
        assert rt.status()["components"][name]["loaded"] == ["1.0.0"]
        assert handle.__noodle_version__ == "1.0.0"
        assert rt.store.active_versions() == {name: "1.0.0"}
        assert rt.store.rollback_points(name) == []
        last = rt.history(name)[0]
        assert (last.id, last.status, last.strategy) == (
            result.request_id,
            UpgradeStatus.REFUSED,
            strategy,
        )
        assert last.error_code == "strategy-not-applicable"
        message = result.error_message or ""
        assert f"strategy {strategy!r} cannot upgrade {name}@1.1.0" in message, message
        return message


@pytest.mark.parametrize("strategy", ["canary", "gradual"])
def test_a_weighted_rollout_is_refused_for_a_stateful_component(
    project: Project, strategy: str
) -> None:
    """Two instances each taking part of the calls would each hold part of the state."""
    project.constraints({"counter": "==1.0.0"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    project.open().close()
    project.constraints({"counter": ">=1"})
    project.add("counter", "1.1.0", counter_source("1.1.0"), entry=COUNTER)

    message = refused_cleanly(project, "counter", strategy, step_seconds=0.2, min_calls=20)

    assert "stateful" in message and "immediate or blue_green" in message


def test_a_stateful_component_may_still_go_blue_green(project: Project) -> None:
    project.constraints({"counter": "==1.0.0"})
    project.add("counter", "1.0.0", counter_source("1.0.0"), entry=COUNTER)
    project.open().close()
    project.constraints({"counter": ">=1"})
    project.add("counter", "1.1.0", counter_source("1.1.0"), entry=COUNTER)
    with project.open() as rt:
        handle = rt.load("counter")
        handle.inc()

        result = rt.upgrade("counter", "1.1.0", strategy="blue_green", switchback_delay=0)

        assert result.success, result.error_message
        assert handle.inc() == ("1.1.0", 2)


def test_rolling_is_refused_for_a_component_without_a_pool(project: Project) -> None:
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0"))

    message = refused_cleanly(project, "calc", "rolling", batch_size=1)

    assert "pool" in message
