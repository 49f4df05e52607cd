"""Change analysis in a live runtime: the API a version's callers see decides whether its
declared bump is honest (refused at strict, a warning at normal, not looked at when
permissive), weighs in the decision engine, and tells an operator what a proposal breaks.

Every version is dropped into the store while the runtime runs, as a release would be.
"""

from __future__ import annotations

import pytest

from helpers.project import Project, counter_source, noodle_modules
from noodle_upgrade.models import UpgradeStatus

WITHOUT_FAREWELL = 'def greet(name):\n    return f"hello {name}"\n'
SERVICE = WITHOUT_FAREWELL + '\n\ndef farewell(name):\n    return f"goodbye {name}"\n'
WITH_SHOUT = SERVICE + "\n\ndef shout(name):\n    return name.upper()\n"
# Both public functions gone, a new one in their place: two breaking changes.
RENAMED = 'def welcome(name):\n    return f"hello {name}"\n'


@pytest.fixture
def service(project: Project) -> Project:
    """``svc`` 1.0.0 (``greet``, ``farewell``), the version a first start activates."""
    project.constraints({"svc": ">=1,<3"})
    project.add("svc", "1.0.0", SERVICE)
    return project


# ------------------------------------------------------------------ the declared bump


@pytest.mark.parametrize(
    ("version", "code", "finding"),
    [
        pytest.param(
            "1.1.0",
            WITHOUT_FAREWELL,
            "declared minor, the API change needs a major bump: 1 breaking change "
            "(first: object-removed svc.farewell: function 'farewell' was removed)",
            id="a-removal-in-a-minor",
        ),
        pytest.param(
            "1.0.1",
            WITH_SHOUT,
            "declared patch, the API change needs a minor bump: 1 addition "
            "(first: object-added svc.shout: function 'shout' was added)",
            id="an-addition-in-a-patch",
        ),
    ],
)
def test_strict_validation_refuses_an_understated_bump_and_changes_nothing(
    service: Project, version: str, code: str, finding: str
) -> None:
    with service.open() as rt:
        handle = rt.load("svc")
        modules = noodle_modules()
        service.add("svc", version, code)

        result = rt.upgrade("svc", version)

        assert result.status is UpgradeStatus.REFUSED
        assert result.error_code == "understated-bump"
        assert result.error_message == f"strict validation refuses: understated bump: {finding}"
        assert handle.farewell("ann") == "goodbye ann"
        assert rt.version("svc") == "1.0.0"
        assert rt.store.active_versions() == {"svc": "1.0.0"}
        assert noodle_modules() == modules, "the refused version was loaded"
        entry = rt.history("svc")[0]
        assert (entry.to_version, entry.status, entry.error_code) == (
            version,
            UpgradeStatus.REFUSED,
            "understated-bump",
        )


def test_the_same_removal_released_as_a_major_goes_through(service: Project) -> None:
    with service.open() as rt:
        handle = rt.load("svc")
        service.add("svc", "2.0.0", WITHOUT_FAREWELL, upgrade_from=["1.0.0"])

        result = rt.upgrade("svc", "2.0.0")

        assert result.success, result.error_message
        assert result.metrics["api"] == {"breaking": 1, "additions": 0, "suggested_bump": "major"}
        assert handle.greet("ann") == "hello ann"
        with pytest.raises(AttributeError, match="farewell"):
            handle.farewell("ann")


def test_normal_validation_lets_an_understated_bump_through_with_a_warning(
    service: Project,
) -> None:
    with service.open(validation_level="normal") as rt:
        handle = rt.load("svc")
        service.add("svc", "1.0.1", WITH_SHOUT)

        result = rt.upgrade("svc", "1.0.1")

        assert result.success, result.error_message
        assert handle.shout("ann") == "ANN"
        assert result.metrics["api"] == {"breaking": 0, "additions": 1, "suggested_bump": "minor"}
        assert (
            "understated bump: declared patch, the API change needs a minor bump: 1 addition "
            "(first: object-added svc.shout: function 'shout' was added)"
        ) in result.warnings


def test_permissive_validation_does_not_analyse_the_change(service: Project) -> None:
    with service.open(validation_level="permissive") as rt:
        service.add("svc", "1.1.0", WITHOUT_FAREWELL)

        result = rt.upgrade("svc", "1.1.0")

        assert result.success, result.error_message
        assert "api" not in result.metrics
        assert not any("understated" in warning for warning in result.warnings)
        assert rt.version("svc") == "1.1.0"


def test_private_names_may_change_in_a_patch(project: Project) -> None:
    project.constraints({"svc": ">=1,<2"})
    project.add(
        "svc",
        "1.0.0",
        "def greet(name):\n    return _polite(name)\n\n\n"
        'def _polite(name):\n    return f"hello {name}"\n\n\n'
        "def _unused():\n    return None\n",
    )
    with project.open() as rt:
        handle = rt.load("svc")
        # _polite renamed, _unused removed, _shout added: none of them is the API.
        project.add(
            "svc",
            "1.0.1",
            "def greet(name):\n    return _formal(name)\n\n\n"
            'def _formal(name):\n    return f"good day {name}"\n\n\n'
            "def _shout(name):\n    return name.upper()\n",
        )

        result = rt.upgrade("svc", "1.0.1")

        assert result.success, result.error_message
        assert result.metrics["api"] == {"breaking": 0, "additions": 0, "suggested_bump": "patch"}
        assert result.warnings == []
        assert handle.greet("ann") == "good day ann"


def test_a_version_that_does_not_parse_fails_at_its_import_and_says_analysis_was_skipped(
    service: Project,
) -> None:
    with service.open() as rt:
        handle = rt.load("svc")
        service.add("svc", "1.0.1", "def greet(name:\n")

        result = rt.upgrade("svc", "1.0.1")

        assert result.status is UpgradeStatus.FAILED
        assert result.error_code == "import-error"
        assert "SyntaxError" in (result.error_message or "")
        [skipped] = [w for w in result.warnings if w.startswith("change analysis skipped: ")]
        assert "svc.py:1:" in skipped
        assert "api" not in result.metrics
        assert handle.greet("ann") == "hello ann"
        assert rt.version("svc") == "1.0.0"


# ------------------------------------------------------------------ decisions and proposals


def test_the_decision_engine_weighs_the_breaking_changes_of_a_major(service: Project) -> None:
    with service.open() as rt:
        service.add("svc", "1.1.0", WITH_SHOUT)
        service.add("svc", "2.0.0", RENAMED, upgrade_from=["1.0.0"])

        major = {reason.factor: reason for reason in rt.assess("svc", "2.0.0").reasons}
        minor = {reason.factor: reason for reason in rt.assess("svc", "1.1.0").reasons}

        breaking = major["breaking_changes"]
        assert breaking.detail.startswith("2 breaking API changes from 1.0.0 to 2.0.0")
        assert breaking.weight < 0
        assert "breaking_changes" not in minor


def test_a_proposed_major_tells_the_operator_what_it_breaks(service: Project) -> None:
    with service.open(watch_enabled=False) as rt:
        service.add("svc", "1.1.0", WITH_SHOUT)
        [minor] = rt.check_for_updates()
        assert (minor["version"], minor["state"]) == ("1.1.0", "pending")
        assert minor["detail"]["breaking"] == []
        assert "breaks the API" not in minor["reason"]

        service.add("svc", "2.0.0", RENAMED, upgrade_from=["1.0.0"])
        [major] = [p for p in rt.check_for_updates() if p["version"] == "2.0.0"]

        assert major["state"] == "pending"
        assert major["detail"]["breaking"] == [
            {
                "kind": "object-removed",
                "path": "svc.farewell",
                "detail": "function 'farewell' was removed",
            },
            {
                "kind": "object-removed",
                "path": "svc.greet",
                "detail": "function 'greet' was removed",
            },
        ]
        assert major["reason"].endswith(
            "; it breaks the API: object-removed svc.farewell: "
            "function 'farewell' was removed and 1 more"
        )
        assert rt.load("svc").greet("ann") == "hello ann"  # nothing ran on its own


# ------------------------------------------------------------------ factory components

COUNTER = "counter:create"
CHAIN_METHOD = "    def chain(self):\n        return list(self.chain_)\n\n"
RESET_METHOD = "    def reset(self):\n        self.value_ = 0\n\n"


def counter_class(version: str, class_name: str, *, chain: bool = True, reset: bool = False) -> str:
    """``counter_source`` with its class named ``class_name``, without ``chain()`` or with
    a ``reset()`` method."""
    source = counter_source(version).replace("class Counter:", f"class {class_name}:")
    source = source.replace("return Counter()", f"return {class_name}()")
    if not chain:
        source = source.replace(CHAIN_METHOD, "")
    if reset:
        source = source.replace(CHAIN_METHOD, CHAIN_METHOD + RESET_METHOD)
    return source


@pytest.mark.parametrize("class_name", ["Counter", "_Counter"])
def test_the_api_of_a_factory_component_is_the_methods_of_its_instance(
    project: Project, class_name: str
) -> None:
    """Callers reach the instance ``create()`` returns, whether or not the module makes
    its class public."""
    project.constraints({"counter": ">=1,<2"})
    project.add("counter", "1.0.0", counter_class("1.0.0", class_name), entry=COUNTER)
    with project.open() as rt:
        handle = rt.load("counter")
        handle.inc()
        project.add(
            "counter", "1.1.0", counter_class("1.1.0", class_name, chain=False), entry=COUNTER
        )

        refused = rt.upgrade("counter", "1.1.0")

        assert refused.error_code == "understated-bump", refused.error_message
        assert f"object-removed counter.{class_name}.chain: method 'chain' was removed" in (
            refused.error_message or ""
        )
        assert handle.inc() == ("1.0.0", 2)  # the instance kept serving, with its state
        assert handle.chain() == []

        project.add(
            "counter", "1.2.0", counter_class("1.2.0", class_name, reset=True), entry=COUNTER
        )
        added = rt.upgrade("counter", "1.2.0")

        assert added.success, added.error_message
        assert added.metrics["api"] == {"breaking": 0, "additions": 1, "suggested_bump": "minor"}
        assert handle.inc() == ("1.2.0", 3)
        handle.reset()
        assert handle.value() == 0
