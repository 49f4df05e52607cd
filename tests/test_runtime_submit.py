"""``rt.submit``: a long rollout starts in the background and hands back its id."""

from __future__ import annotations

import pytest

from helpers.load import running
from helpers.project import Project, greeter_source
from noodle_upgrade import NoodleError, ValidationError


@pytest.fixture
def greeter(project: Project) -> Project:
    project.constraints({"greeter": "==1.0.0"})
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    with project.open():
        pass
    project.constraints({"greeter": ">=1"})
    project.add("greeter", "1.1.0", greeter_source("1.1.0"))
    return project


def test_a_submitted_canary_runs_in_the_background(greeter: Project) -> None:
    with greeter.open() as rt:
        handle = rt.load("greeter")
        with running(lambda: handle.hello(), threads=4) as load:
            load.progress()
            request = rt.submit("greeter", "1.1.0", strategy="canary", step_seconds=0.2)
            assert rt.status()["components"]["greeter"]["state"] == "upgrading"
            result = rt.wait(request, timeout=60)
        assert load.stop().errors == []
        assert result.success, result.error_message
        assert result.request_id == request
        assert rt.version("greeter") == "1.1.0"
        assert rt.history("greeter")[0].id == request


def test_misuse_raises_at_submit_and_nothing_starts(greeter: Project) -> None:
    with greeter.open() as rt:
        with pytest.raises(ValidationError, match="unknown strategy 'sideways'"):
            rt.submit("greeter", "1.1.0", strategy="sideways")
        with pytest.raises(NoodleError, match="no upgrade 'up-nope' was submitted"):
            rt.wait("up-nope")
        assert rt.history("greeter") == []
