"""``noodle diff`` and ``noodle impact`` as a user runs them: real subprocesses on a real
project. Both read files only: no runtime runs and, unless one ran before, no state store
exists; only ``impact``'s dependents come from the store's lock.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from helpers.cli import assert_one_line_error, noodle, noodle_json
from helpers.project import FIXTURES, Project

GREET = 'def greet(name, *, loud=False):\n    return f"hello {name}"\n'
FAREWELL = '\n\ndef farewell(name):\n    return f"goodbye {name}"\n'
SHOUT = "\n\ndef shout(name):\n    return name.upper()\n"
# greet() takes a required title and no loud keyword any more; farewell() is gone.
GREET_2 = 'def greet(name, title):\n    return f"hello {title} {name}"\n'

APP = """\
from noodle_upgrade import Runtime

rt = Runtime.open(".")
svc = rt.load("svc")
svc.greet("ann", loud=True)
svc.farewell("ann")
"""
JOBS = 'def nightly(rt):\n    rt.load("svc").greet("bob")\n'

# What 2.0.0 breaks in APP and JOBS, in the order of the files and their uses.
BROKEN_BY_2 = [
    {  # in file, line and column order
        "path": "app.py",
        "line": 5,
        "column": 4,
        "end_line": 5,
        "end_column": 9,
        "code": "missing-argument",
        "message": "greet() in svc 2.0.0 is missing required argument 'title'",
    },
    {
        "path": "app.py",
        "line": 5,
        "column": 17,
        "end_line": 5,
        "end_column": 21,
        "code": "unknown-keyword",
        "message": "greet() in svc 2.0.0 has no parameter 'loud'",
    },
    {
        "path": "app.py",
        "line": 6,
        "column": 4,
        "end_line": 6,
        "end_column": 12,
        "code": "removed",
        "message": "svc 2.0.0 has no function 'farewell'",
    },
    {
        "path": "pkg/jobs.py",
        "line": 2,
        "column": 19,
        "end_line": 2,
        "end_column": 24,
        "code": "missing-argument",
        "message": "greet() in svc 2.0.0 is missing required argument 'title'",
    },
]


@pytest.fixture
def releases(project: Project) -> Project:
    """``svc`` 1.0.0, 1.1.0 (adds ``shout``), 1.2.0 (drops ``farewell``: understated) and
    2.0.0 (breaks ``greet`` too); the project was never opened."""
    project.constraints({"svc": ">=1,<3"})
    project.add("svc", "1.0.0", GREET + FAREWELL)
    project.add("svc", "1.1.0", GREET + FAREWELL + SHOUT)
    project.add("svc", "1.2.0", GREET)
    project.add("svc", "2.0.0", GREET_2)
    return project


@pytest.fixture
def workspace(releases: Project) -> Project:
    """``releases`` with application code that uses ``svc``: at the root and in a package."""
    (releases.root / "app.py").write_text(APP)
    (releases.root / "pkg").mkdir()
    (releases.root / "pkg" / "jobs.py").write_text(JOBS)
    return releases


def finished_json(done: subprocess.CompletedProcess[str], exit_code: int) -> Any:
    """What a ``--json`` command printed, after checking how it exited."""
    assert done.returncode == exit_code, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def words(text: str) -> str:
    """``text`` with its line breaks and runs of spaces as single spaces: the console
    wraps long lines at its width."""
    return " ".join(text.split())


# ------------------------------------------------------------------ noodle diff


def test_diff_reports_the_changes_and_the_bump_they_need(releases: Project) -> None:
    covered = noodle_json(releases.root, "diff", "svc", "1.0.0", "1.1.0")
    understated = finished_json(
        noodle(releases.root, "diff", "svc", "1.0.0", "1.2.0", "--json"), exit_code=1
    )

    assert covered == {
        "component": "svc",
        "from_version": "1.0.0",
        "to_version": "1.1.0",
        "breaking": [],
        "additions": [
            {"kind": "object-added", "path": "svc.shout", "detail": "function 'shout' was added"}
        ],
        "suggested_bump": "minor",
        "declared_bump": "minor",
        "finding": None,
    }
    assert understated["breaking"] == [
        {
            "kind": "object-removed",
            "path": "svc.farewell",
            "detail": "function 'farewell' was removed",
        }
    ]
    assert (understated["declared_bump"], understated["suggested_bump"]) == ("minor", "major")
    assert understated["finding"] == (
        "understated bump: declared minor, the API change needs a major bump: 1 breaking "
        "change (first: object-removed svc.farewell: function 'farewell' was removed)"
    )
    assert not (releases.root / ".noodle").exists(), "a read-only command created the store"


def test_diff_as_a_table_names_each_breaking_change(releases: Project) -> None:
    understated = noodle(releases.root, "diff", "svc", "1.0.0", "1.2.0")
    major = noodle(releases.root, "diff", "svc", "1.0.0", "2.0.0")

    assert understated.returncode == 1, understated.stderr
    assert "svc 1.0.0 → 1.2.0: 1 breaking, 0 added; declared minor, suggested major" in (
        understated.stdout
    )
    assert any(
        "object-removed" in line and "svc.farewell" in line
        for line in understated.stdout.splitlines()
    ), understated.stdout
    assert "✘ understated bump: declared minor, the API change needs a major bump" in words(
        understated.stdout
    )
    assert major.returncode == 0, major.stderr
    assert "svc 1.0.0 → 2.0.0: 3 breaking, 0 added; declared major, suggested major" in (
        major.stdout
    )
    for kind in ("object-removed", "parameter-added-required", "parameter-removed"):
        assert kind in major.stdout
    assert "understated" not in major.stdout


def test_diff_with_a_version_not_in_the_store_is_one_clear_error(releases: Project) -> None:
    done = noodle(releases.root, "diff", "svc", "1.0.0", "9.0.0")

    assert done.returncode == 1
    assert done.stdout == ""
    assert_one_line_error(
        done, "svc 9.0.0 is not in the component store", "versions of svc: 1.0.0, 1.1.0"
    )


def test_diff_with_a_version_that_does_not_parse_names_its_file_and_line(
    releases: Project,
) -> None:
    releases.add("svc", "2.0.1", "def greet(name:\n")

    done = noodle(releases.root, "diff", "svc", "2.0.0", "2.0.1")

    assert done.returncode == 1
    assert_one_line_error(done, str(Path("svc", "2.0.1", "svc.py")) + ":1:", "never closed")


def test_diff_on_real_packaging_releases_finds_legacy_version_removed(project: Project) -> None:
    project.constraints({"packaging": ">=21"})
    for version in ("21.3", "22.0"):
        project.add_package(FIXTURES / "packages" / "packaging" / version, "packaging", version)

    report = noodle_json(project.root, "diff", "packaging", "21.3", "22.0")

    assert {
        "kind": "object-removed",
        "path": "packaging.version.LegacyVersion",
        "detail": "class 'LegacyVersion' was removed",
    } in report["breaking"]
    assert (report["declared_bump"], report["suggested_bump"], report["finding"]) == (
        "major",
        "major",
        None,
    )


# ------------------------------------------------------------------ noodle impact


def test_impact_lists_each_call_site_the_version_breaks(workspace: Project) -> None:
    report = finished_json(noodle(workspace.root, "impact", "svc", "2.0.0", "--json"), 1)
    table = noodle(workspace.root, "impact", "svc", "2.0.0")

    assert report == {
        "component": "svc",
        "version": "2.0.0",
        "uses": 3,
        "call_sites": BROKEN_BY_2,
        "dependents": [],
        "problems": [],
    }
    assert table.returncode == 1, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "svc 2.0.0: 3 use(s) in the workspace, 4 broken"
    # file:line:column, the column 1-based as editors count it
    assert "app.py:6:5: svc 2.0.0 has no function 'farewell'" in lines
    assert "pkg/jobs.py:2:20: greet() in svc 2.0.0 is missing required argument 'title'" in lines


def test_impact_of_a_compatible_version_finds_nothing_broken(workspace: Project) -> None:
    report = finished_json(noodle(workspace.root, "impact", "svc", "1.1.0", "--json"), 0)

    assert (report["uses"], report["call_sites"], report["problems"]) == (3, [], [])
    assert not (workspace.root / ".noodle").exists()


def test_impact_skips_the_component_store_and_the_state_folder(workspace: Project) -> None:
    (workspace.root / "noodle.toml").write_text(
        '[noodle]\nstate = "runtime-state"\n\n[components]\nsvc = ">=1,<3"\n'
    )
    gone = 'def f(rt):\n    rt.load("svc").farewell("x")\n'
    (workspace.root / "components" / "svc" / "1.0.0" / "examples.py").write_text(gone)
    (workspace.root / "runtime-state").mkdir()
    (workspace.root / "runtime-state" / "hooks.py").write_text(gone)

    report = finished_json(noodle(workspace.root, "impact", "svc", "2.0.0", "--json"), 1)

    assert report["uses"] == 3
    assert report["call_sites"] == BROKEN_BY_2


def test_a_file_that_does_not_parse_is_a_warning_and_the_others_are_still_checked(
    workspace: Project,
) -> None:
    (workspace.root / "pkg" / "broken.py").write_text('def f(rt):\n    rt.load("svc").greet(\n')

    done = noodle(workspace.root, "impact", "svc", "2.0.0")

    assert done.returncode == 1  # the other files' call sites break
    assert "svc 2.0.0: 3 use(s) in the workspace, 4 broken" in done.stdout
    assert "Traceback" not in done.stderr
    [warning] = done.stderr.strip().splitlines()
    assert warning.startswith("noodle: warning: ")
    assert "pkg/broken.py" in warning and "line 2" in warning


def test_impact_lists_the_dependents_once_the_project_ran(project: Project) -> None:
    project.constraints({"svc": ">=1,<3", "client": ">=1,<2"})
    project.add("svc", "1.0.0", GREET + FAREWELL)
    project.add("client", "1.0.0", "def run():\n    return 1\n", dependencies={"svc": ">=1,<2"})
    never_ran = noodle_json(project.root, "impact", "svc", "1.0.0")
    project.open().close()  # locks svc 1.0.0 and client 1.0.0
    project.add("svc", "1.1.0", GREET + FAREWELL + SHOUT)
    project.add("svc", "2.0.0", GREET_2)

    major = noodle_json(project.root, "impact", "svc", "2.0.0")
    minor = noodle(project.root, "impact", "svc", "1.1.0")

    assert never_ran["dependents"] == []
    assert major["dependents"] == [
        {
            "name": "client",
            "version": "1.0.0",
            "requires": str(SpecifierSet(">=1,<2")),
            "accepts": False,
        }
    ]
    assert minor.returncode == 0, minor.stderr
    assert f"dependent client 1.0.0 requires svc {SpecifierSet('>=1,<2')}: accepts it" in (
        minor.stdout
    )
