"""A real third-party package as a component: tomli 2.0.1 <-> 2.2.1 swapped under load.

The two releases are the unmodified ``tomli/`` folders of their PyPI wheels
(``tests/fixtures/packages/tomli/<version>/``); each is a package with relative imports,
so every version must resolve them inside itself.
"""

from __future__ import annotations

import sys
import tomllib

import pytest

from helpers.load import Timeline, running
from helpers.project import FIXTURES, Project

TOMLI = FIXTURES / "packages" / "tomli"

DOCUMENT = """\
title = "NoodleCore"
version = 3
ratio = 0.25
enabled = true
released = 2024-11-27T22:12:00Z
tags = ["lexer", "parser", { name = "vm", hot = true }]
notes = \"\"\"
two lines,
  kept as written\"\"\"

[owner]
name = "Tom"
dob = 1979-05-27

[[servers]]
host = "alpha"
ports = [8000, 8001]

[[servers]]
host = "beta"
ports = [9000]
"""
EXPECTED = tomllib.loads(DOCUMENT)


def version_of(function: object) -> str:
    """The component version a function was loaded from, read from its module name:
    ``_noodle_components.tomli__2_2_1.tomli._parser`` -> ``2.2.1``."""
    package = function.__module__.split(".")[1]  # type: ignore[attr-defined]
    return ".".join(package.removeprefix("tomli__").split("_")[:3])


def test_tomli_releases_swap_under_load(project: Project) -> None:
    project.constraints({"tomli": ">=2,<3"})
    project.add_package(TOMLI / "2.0.1", "tomli", "2.0.1")
    with project.open() as rt:
        handle = rt.load("tomli")
        assert rt.version("tomli") == "2.0.1"
        old_loads = handle.loads
        assert old_loads(DOCUMENT) == EXPECTED
        # The newer release is installed while the application runs.
        project.add_package(TOMLI / "2.2.1", "tomli", "2.2.1")
        timeline = Timeline(["2.0.1"])

        def parse() -> tuple[str, str]:
            loads = handle.loads
            assert loads(DOCUMENT) == EXPECTED, version_of(loads)
            version = version_of(loads)
            return (version, version)

        with running(parse, threads=8, epoch=timeline.epoch) as load:
            load.progress(20)
            for operation in ("upgrade", "rollback", "upgrade", "rollback", "upgrade"):
                if operation == "upgrade":
                    result = rt.upgrade("tomli", "2.2.1")
                else:
                    result = rt.rollback("tomli")
                assert result.success, result.error_message
                timeline.switched(result.to_version)
                load.progress(20)
        result_of_load = load.stop()

        assert result_of_load.error_count == 0, result_of_load.errors
        for (before, (version, _), after), count in result_of_load.observed.items():
            possible = timeline.possible(before, after)
            assert version in possible, (count, version, before, after, timeline.versions)
        assert {value[0] for value in result_of_load.values()} == {"2.0.1", "2.2.1"}

        assert rt.version("tomli") == "2.2.1"
        new_loads = handle.loads
        assert new_loads(DOCUMENT) == EXPECTED
        # Two distinct module trees: each version's relative imports stayed inside it.
        assert new_loads is not old_loads
        old_parser = sys.modules[old_loads.__module__]  # kept loaded for the rollback point
        new_parser = sys.modules[new_loads.__module__]
        assert new_parser is not old_parser
        assert version_of(old_loads) == "2.0.1"
        assert version_of(new_loads) == "2.2.1"
        for loads in (old_loads, new_loads):
            package = loads.__module__.rsplit(".", 1)[0]  # ..._noodle_components.tomli__X.tomli
            assert loads.__globals__["match_to_datetime"].__module__ == f"{package}._re"
            assert loads.__globals__["__name__"] == f"{package}._parser"
        assert "tomli" not in sys.modules  # nothing leaked under the package's own name

        # Each version raises its own TOMLDecodeError, and the handle offers the active one.
        with pytest.raises(handle.TOMLDecodeError):
            handle.loads("key = ")
        assert handle.TOMLDecodeError.__module__.startswith("_noodle_components.tomli__2_2_1")
