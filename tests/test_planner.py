"""Upgrade planning: refusals with their codes and messages, activation, ordering."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from noodle_upgrade.engine.planner import (
    UpgradePlan,
    activation_order,
    check_rollback,
    dependents_of,
    plan_upgrade,
    resolve_activation,
)
from noodle_upgrade.engine.versions import parse_specifier
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import BumpKind, ComponentDescriptor

Store = dict[str, list[ComponentDescriptor]]


def _d(
    name: str,
    version: str,
    *,
    upgrade_from: list[str] | None = None,
    needs: Mapping[str, str] | None = None,
    hot_swappable: bool = True,
) -> ComponentDescriptor:
    return ComponentDescriptor(
        name=name,
        version=Version(version),
        entry=name,
        folder=Path(f"/store/{name}/{version}"),
        hot_swappable=hot_swappable,
        upgrade_from=None if upgrade_from is None else tuple(Version(v) for v in upgrade_from),
        dependencies={dep: parse_specifier(spec) for dep, spec in (needs or {}).items()},
    )


def _store(*descriptors: ComponentDescriptor) -> Store:
    store: Store = {}
    for descriptor in sorted(descriptors, key=lambda d: (d.name, d.version)):
        store.setdefault(descriptor.name, []).append(descriptor)
    return store


def _active(store: Store, **versions: str) -> dict[str, ComponentDescriptor]:
    return {
        name: next(d for d in store[name] if d.version == Version(version))
        for name, version in versions.items()
    }


def _constraints(**texts: str) -> dict[str, SpecifierSet]:
    return {name: parse_specifier(text) for name, text in texts.items()}


def _plan(
    store: Store,
    target: str | None,
    *,
    active: Mapping[str, ComponentDescriptor] | None = None,
    constraints: Mapping[str, SpecifierSet] | None = None,
    name: str = "parser",
) -> UpgradePlan:
    active = active if active is not None else {name: store[name][0]}
    return plan_upgrade(
        name,
        None if target is None else Version(target),
        current=active[name].version,
        available=store,
        active=active,
        constraints=constraints or {},
    )


def _refusal(code: str, *parts: str, call: Callable[[], object]) -> str:
    """Assert ``call`` refuses with ``code`` and a one-line message naming every one of
    ``parts``; return the message."""
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    for part in parts:
        assert part in caught.value.message, (part, caught.value.message)
    assert "\n" not in caught.value.message
    return caught.value.message


def _versions(descriptors: Sequence[ComponentDescriptor]) -> list[str]:
    return [str(d.version) for d in descriptors]


PARSERS = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0"), _d("parser", "2.0.0"))


# --- plan_upgrade: successful plans ---------------------------------------------------


def test_plan_a_minor_upgrade() -> None:
    plan = _plan(PARSERS, "1.1.0")
    assert plan.component == "parser"
    assert (plan.from_version, plan.to_version) == (Version("1.0.0"), Version("1.1.0"))
    assert plan.bump is BumpKind.MINOR
    assert plan.target is PARSERS["parser"][1]
    assert plan.path == ["1.0.0", "1.1.0"]
    assert plan.warnings == ()


def test_plan_walks_a_multi_step_path_across_a_major() -> None:
    store = _store(
        _d("parser", "1.0.0"),
        _d("parser", "1.1.0", upgrade_from=["1.0.0"]),
        _d("parser", "2.0.0", upgrade_from=["1.1.0"]),
    )
    plan = _plan(store, "2.0.0")
    assert _versions(plan.steps) == ["1.1.0", "2.0.0"]
    assert plan.path == ["1.0.0", "1.1.0", "2.0.0"]
    assert plan.bump is BumpKind.MAJOR
    assert any("major" in warning for warning in plan.warnings)


def test_intermediate_steps_need_not_satisfy_dependencies() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("parser", "1.0.0"),
        _d("parser", "1.1.0", upgrade_from=["1.0.0"], needs={"lexer": ">=5"}),
        _d("parser", "2.0.0", upgrade_from=["1.1.0"], needs={"lexer": ">=1"}),
    )
    active = _active(store, lexer="1.0.0", parser="1.0.0")
    assert _plan(store, "2.0.0", active=active).path == ["1.0.0", "1.1.0", "2.0.0"]


def test_plan_from_a_version_no_longer_in_the_store() -> None:
    store = _store(_d("parser", "1.1.0"), _d("parser", "1.2.0"))
    gone = _d("parser", "1.0.0")
    plan = _plan(store, "1.2.0", active={"parser": gone})
    assert plan.path == ["1.0.0", "1.2.0"]


def test_pre_releases_count_when_they_are_what_is_active_or_named() -> None:
    store = _store(
        _d("lexer", "2.0.0rc1"),
        _d("parser", "1.0.0"),
        _d("parser", "1.1.0b2", needs={"lexer": ">=1"}),
    )
    active = _active(store, lexer="2.0.0rc1", parser="1.0.0")
    plan = _plan(store, "1.1.0b2", active=active, constraints=_constraints(parser=">=1"))
    assert plan.to_version == Version("1.1.0b2")
    assert "parser 1.1.0b2 is a pre-release" in plan.warnings


# --- plan_upgrade: every refusal ------------------------------------------------------


def test_unknown_component() -> None:
    _refusal(
        "unknown-component",
        "'tokenizer'",
        "parser",
        call=lambda: plan_upgrade(
            "tokenizer",
            Version("1.0"),
            current=Version("0.9"),
            available=PARSERS,
            active={},
            constraints={},
        ),
    )


def test_target_not_in_store() -> None:
    message = _refusal("invalid-version", call=lambda: _plan(PARSERS, "9.9.9"))
    assert message == (
        "parser 9.9.9 is not in the component store (available: 1.0.0, 1.1.0, 2.0.0)"
    )


def test_target_already_active() -> None:
    _refusal("already-active", "parser 1.0.0", call=lambda: _plan(PARSERS, "1.0.0"))


def test_downgrade_is_refused() -> None:
    active = _active(PARSERS, parser="1.1.0")
    message = _refusal("downgrade", call=lambda: _plan(PARSERS, "1.0.0", active=active))
    assert message == (
        "parser 1.0.0 is lower than the active 1.1.0: an upgrade never goes back; use rollback"
    )


def test_target_outside_the_constraint() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0"), _d("parser", "2.0.0"))
    store["parser"][2] = _d("parser", "2.0.0", upgrade_from=["1.0.0"])
    message = _refusal(
        "unsatisfiable-constraint",
        "parser 2.0.0 is outside the constraint '>=1.0,<2' in noodle.toml [components]",
        "1.1.0",  # what the constraint does allow
        call=lambda: _plan(store, "2.0.0", constraints=_constraints(parser=">=1.0,<2")),
    )
    assert "(store versions inside it: 1.0.0, 1.1.0)" in message


def test_target_not_hot_swappable() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0", hot_swappable=False))
    _refusal(
        "not-hot-swappable",
        "parser 1.1.0",
        "hot_swappable = false",
        "/store/parser/1.1.0/component.toml",
        call=lambda: _plan(store, "1.1.0"),
    )


def test_no_path_names_what_the_target_accepts() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "3.0.0", upgrade_from=["2.5.0"]))
    message = _refusal("no-upgrade-path", call=lambda: _plan(store, "3.0.0"))
    assert message.startswith(
        "no upgrade path from parser 1.0.0 to 3.0.0: "
        "3.0.0 accepts upgrades from 2.5.0 only (upgrade_from)"
    )
    assert "2.5.0 is not in the store" in message


def test_no_path_when_the_accepted_version_cannot_be_reached() -> None:
    store = _store(
        _d("parser", "1.0.0"),
        _d("parser", "2.5.0"),  # no upgrade_from: only 2.x may enter it
        _d("parser", "3.0.0", upgrade_from=["2.5.0"]),
    )
    _refusal(
        "no-upgrade-path",
        "3.0.0 accepts upgrades from 2.5.0 only",
        "2.5.0 cannot be reached from 1.0.0",
        call=lambda: _plan(store, "3.0.0"),
    )


def test_no_path_across_a_major_without_upgrade_from() -> None:
    _refusal(
        "no-upgrade-path",
        "from parser 1.0.0 to 2.0.0",
        "declares no upgrade_from",
        "earlier 2.x versions only",
        "/store/parser/2.0.0/component.toml",
        call=lambda: _plan(PARSERS, "2.0.0"),
    )


def test_target_needs_a_newer_active_dependency() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("parser", "1.0.0"),
        _d("parser", "1.1.0", needs={"lexer": ">=2"}),
    )
    active = _active(store, lexer="1.0.0", parser="1.0.0")
    message = _refusal("dependency-conflict", call=lambda: _plan(store, "1.1.0", active=active))
    assert message == "parser 1.1.0 needs lexer >=2 but lexer 1.0.0 is active"


def test_target_needs_an_inactive_component() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0", needs={"lexer": ""}))
    message = _refusal("dependency-conflict", call=lambda: _plan(store, "1.1.0"))
    assert message == "parser 1.1.0 needs lexer, which is not active"


def test_target_would_break_an_active_dependent() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("lexer", "2.0.0", upgrade_from=["1.0.0"]),
        _d("optimizer", "1.1.0", needs={"lexer": "<2"}),
        _d("parser", "1.0.0", needs={"lexer": ">=1"}),
    )
    active = _active(store, lexer="1.0.0", optimizer="1.1.0", parser="1.0.0")
    message = _refusal(
        "dependency-conflict",
        call=lambda: _plan(store, "2.0.0", active=active, name="lexer"),
    )
    assert message == "lexer 2.0.0 would break optimizer 1.1.0, which needs lexer <2"


def test_target_that_closes_a_dependency_cycle() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("lexer", "1.1.0", needs={"parser": ">=1"}),
        _d("parser", "1.0.0", needs={"lexer": ">=1"}),
    )
    active = _active(store, lexer="1.0.0", parser="1.0.0")
    _refusal(
        "dependency-cycle",
        "dependency cycle: lexer -> parser -> lexer",
        call=lambda: _plan(store, "1.1.0", active=active, name="lexer"),
    )


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("1.2.0", "unsatisfiable-constraint"),  # outside, not hot-swappable, no path
        ("1.1.0", "not-hot-swappable"),  # not hot-swappable and no path
        ("1.0.5", "no-upgrade-path"),  # no path and a dependency conflict
    ],
)
def test_checks_run_in_the_documented_order(target: str, code: str) -> None:
    store = _store(
        _d("parser", "1.0.0"),
        _d("parser", "1.0.5", upgrade_from=[], needs={"lexer": ">=9"}),
        _d("parser", "1.1.0", upgrade_from=[], hot_swappable=False),
        _d("parser", "1.2.0", upgrade_from=[], hot_swappable=False),
    )
    _refusal(code, call=lambda: _plan(store, target, constraints=_constraints(parser="<1.2")))


# --- plan_upgrade: target=None --------------------------------------------------------


def test_newest_valid_version_is_chosen() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("parser", "1.0.0"),
        _d("parser", "1.1.0"),
        _d("parser", "1.2.0", needs={"lexer": ">=2"}),  # dependency conflict
        _d("parser", "1.3.0", hot_swappable=False),
        _d("parser", "2.0.0", upgrade_from=["1.0.0"]),  # outside the constraint
    )
    active = _active(store, lexer="1.0.0", parser="1.0.0")
    plan = _plan(store, None, active=active, constraints=_constraints(parser="<2"))
    assert plan.to_version == Version("1.1.0")
    assert plan.path == ["1.0.0", "1.1.0"]


def test_newest_without_a_constraint_takes_the_highest() -> None:
    store = _store(
        _d("parser", "1.0.0"), _d("parser", "1.1.0"), _d("parser", "2.0.0", upgrade_from=["1.1"])
    )
    assert _plan(store, None).path == ["1.0.0", "1.1.0", "2.0.0"]


def test_nothing_newer_is_already_active() -> None:
    active = _active(PARSERS, parser="2.0.0")
    _refusal(
        "already-active",
        "parser 2.0.0",
        "nothing newer",
        "1.0.0, 1.1.0, 2.0.0",
        call=lambda: _plan(PARSERS, None, active=active),
    )


def test_newest_refused_gives_the_newest_candidates_reason() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "2.0.0", upgrade_from=["1.0.0"]))
    _refusal(
        "unsatisfiable-constraint",
        "parser 2.0.0 is outside the constraint '<2'",
        call=lambda: _plan(store, None, constraints=_constraints(parser="<2")),
    )


def test_newest_skips_pre_releases_unless_named() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0-rc.1"))
    _refusal("already-active", "1.1.0rc1", call=lambda: _plan(store, None))
    assert _plan(store, "1.1.0-rc.1").to_version == Version("1.1.0rc1")
    pre = _constraints(parser=">=1.1.0rc1")
    store["parser"].reverse()  # the order the store lists versions in does not matter
    assert _plan(store, None, active=_active(store, parser="1.0.0"), constraints=pre).path == [
        "1.0.0",
        "1.1.0rc1",
    ]


# --- check_rollback -------------------------------------------------------------------


def test_rollback_target_whose_own_dependency_moved_on() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("lexer", "2.0.0"),
        _d("parser", "1.0.0", needs={"lexer": "<2"}),
        _d("parser", "1.1.0"),
    )
    active = _active(store, lexer="2.0.0", parser="1.1.0")
    _refusal(
        "dependency-conflict",
        "parser 1.0.0 needs lexer <2 but lexer 2.0.0 is active",
        call=lambda: check_rollback("parser", Version("1.0.0"), active=active, available=store),
    )


def test_rollback_to_a_lower_version() -> None:
    active = _active(PARSERS, parser="1.1.0")
    target = check_rollback("parser", Version("1.0.0"), active=active, available=PARSERS)
    assert target is PARSERS["parser"][0]


def test_rollback_target_must_be_in_the_store() -> None:
    _refusal(
        "invalid-version",
        "parser 0.9.0",
        "available: 1.0.0, 1.1.0, 2.0.0",
        call=lambda: check_rollback("parser", Version("0.9.0"), active={}, available=PARSERS),
    )


def test_rollback_of_an_unknown_component() -> None:
    _refusal(
        "unknown-component",
        "'lexer'",
        call=lambda: check_rollback("lexer", Version("1.0"), active={}, available=PARSERS),
    )


def test_rollback_that_would_break_a_dependent() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("lexer", "2.0.0"),
        _d("parser", "2.0.0", needs={"lexer": ">=2"}),
    )
    active = _active(store, lexer="2.0.0", parser="2.0.0")
    message = _refusal(
        "dependency-conflict",
        call=lambda: check_rollback("lexer", Version("1.0.0"), active=active, available=store),
    )
    assert message == "lexer 1.0.0 would break parser 2.0.0, which needs lexer >=2"


# --- resolve_activation ---------------------------------------------------------------

STACK = _store(
    _d("lexer", "1.0.0"),
    _d("lexer", "1.1.0"),
    _d("lexer", "2.0.0"),
    _d("parser", "1.0.0", needs={"lexer": ">=1.0"}),
    _d("parser", "1.1.0", needs={"lexer": ">=1.1,<2"}),
    _d("parser", "2.0.0", needs={"lexer": ">=2"}),
)


def _chosen(choice: Mapping[str, ComponentDescriptor]) -> dict[str, str]:
    return {name: str(d.version) for name, d in choice.items()}


def test_first_start_picks_the_highest_allowed_versions() -> None:
    choice, warnings = resolve_activation(
        _constraints(lexer=">=1", parser=">=1.0,<2"), STACK, locked={}
    )
    # components are decided in alphabetical order: lexer keeps its newest, parser fits in
    assert _chosen(choice) == {"lexer": "2.0.0", "parser": "1.0.0"}
    assert warnings == [
        "parser 1.0.0 is activated rather than the newest allowed 1.1.0: "
        "parser 1.1.0 needs lexer >=1.1,<2 but lexer 2.0.0 is activated"
    ]


def test_backtracking_lowers_an_earlier_choice() -> None:
    store = _store(
        _d("lexer", "1.0.0"),
        _d("lexer", "2.0.0"),
        _d("parser", "1.0.0", needs={"lexer": "<2"}),
    )
    choice, warnings = resolve_activation(_constraints(lexer="", parser=""), store, locked={})
    assert _chosen(choice) == {"lexer": "1.0.0", "parser": "1.0.0"}
    assert warnings == [
        "lexer 1.0.0 is activated rather than the newest allowed 2.0.0: parser 1.0.0 needs lexer <2"
    ]


def test_no_backtracking_needed_gives_no_warnings() -> None:
    choice, warnings = resolve_activation(_constraints(lexer="", parser=""), STACK, locked={})
    assert _chosen(choice) == {"lexer": "2.0.0", "parser": "2.0.0"}
    assert warnings == []


def test_locked_versions_stay_and_others_fit_around_them() -> None:
    choice, warnings = resolve_activation(
        _constraints(lexer="", parser=""), STACK, locked={"lexer": Version("1.0.0")}
    )
    assert _chosen(choice) == {"lexer": "1.0.0", "parser": "1.0.0"}
    assert any(
        "parser 1.0.0 is activated rather than the newest allowed 2.0.0" in w
        and "lexer 1.0.0 is activated" in w
        for w in warnings
    )


def test_a_lock_outside_the_constraint_is_kept_with_a_warning() -> None:
    choice, warnings = resolve_activation(
        _constraints(lexer="==1.1.0"), STACK, locked={"lexer": Version("2.0.0")}
    )
    assert _chosen(choice) == {"lexer": "2.0.0"}
    assert len(warnings) == 1
    assert "lexer 2.0.0" in warnings[0] and "'==1.1.0'" in warnings[0]


def test_a_lock_no_longer_in_the_store_falls_back_with_a_warning() -> None:
    choice, warnings = resolve_activation(
        _constraints(lexer=">=1"), STACK, locked={"lexer": Version("1.5.0")}
    )
    assert _chosen(choice) == {"lexer": "2.0.0"}
    assert len(warnings) == 1
    assert "lexer 1.5.0" in warnings[0] and "no longer in the component store" in warnings[0]


def test_a_lock_for_an_unlisted_component_is_reported() -> None:
    choice, warnings = resolve_activation(
        _constraints(lexer=">=1"), STACK, locked={"parser": Version("1.0.0")}
    )
    assert _chosen(choice) == {"lexer": "2.0.0"}
    assert any("parser 1.0.0" in w and "no longer listed" in w for w in warnings)


def test_activation_of_a_component_not_in_the_store() -> None:
    _refusal(
        "unknown-component",
        "noodle.toml [components] lists 'tokenizer'",
        "lexer, parser",
        call=lambda: resolve_activation(_constraints(tokenizer=""), STACK, locked={}),
    )


def test_activation_constraint_nothing_satisfies() -> None:
    message = _refusal(
        "unsatisfiable-constraint",
        call=lambda: resolve_activation(_constraints(lexer=">=3"), STACK, locked={}),
    )
    assert message == (
        "no version of lexer satisfies the constraint '>=3' in noodle.toml [components] "
        "(available: 1.0.0, 1.1.0, 2.0.0)"
    )


def test_activation_with_no_working_combination_names_the_pair() -> None:
    store = _store(_d("lexer", "1.0.0"), _d("parser", "2.0.0", needs={"lexer": ">=2"}))
    _refusal(
        "dependency-conflict",
        "parser 2.0.0 needs lexer >=2 but the newest lexer allowed by '==1.0.0'",
        "is 1.0.0",
        call=lambda: resolve_activation(_constraints(lexer="==1.0.0", parser=""), store, locked={}),
    )


def test_activation_conflict_with_a_lock_says_so() -> None:
    _refusal(
        "dependency-conflict",
        "parser 2.0.0 needs lexer >=2 but lexer is locked at the active 1.0.0",
        call=lambda: resolve_activation(
            _constraints(lexer="", parser="==2.0.0"), STACK, locked={"lexer": Version("1.0.0")}
        ),
    )


def test_activation_dependency_on_an_unlisted_component() -> None:
    message = _refusal(
        "dependency-conflict",
        call=lambda: resolve_activation(_constraints(parser="<2"), STACK, locked={}),
    )
    assert message == (
        "parser 1.1.0 needs lexer >=1.1,<2, which is not listed in noodle.toml [components]"
    )


def test_an_unlisted_dependency_is_an_error_not_a_reason_to_pick_an_older_version() -> None:
    store = _store(_d("parser", "1.0.0"), _d("parser", "1.1.0", needs={"lexer": ""}))
    _refusal(
        "dependency-conflict",
        "parser 1.1.0 needs lexer, which is not listed in noodle.toml [components]",
        call=lambda: resolve_activation(_constraints(parser=""), store, locked={}),
    )


def test_backtracking_over_several_components() -> None:
    store = _store(
        _d("a", "1.0"),
        _d("a", "2.0"),
        _d("b", "1.0", needs={"a": ">=2"}),
        _d("b", "2.0"),
        _d("c", "1.0", needs={"a": "<2"}),
    )
    choice, _ = resolve_activation(_constraints(a="", b="", c=""), store, locked={})
    assert _chosen(choice) == {"a": "1.0", "b": "2.0", "c": "1.0"}


def test_activation_cycle() -> None:
    store = _store(_d("a", "1.0", needs={"b": ""}), _d("b", "1.0", needs={"a": ">=1"}))
    _refusal(
        "dependency-cycle",
        "dependency cycle: a -> b -> a",
        call=lambda: resolve_activation(_constraints(a="", b=""), store, locked={}),
    )


def test_activation_prefers_final_releases_but_falls_back_to_pre_releases() -> None:
    store = _store(_d("lexer", "1.0.0"), _d("lexer", "1.1.0-rc.1"), _d("parser", "2.0.0b1"))
    choice, _ = resolve_activation(_constraints(lexer="", parser=">=1"), store, locked={})
    assert _chosen(choice) == {"lexer": "1.0.0", "parser": "2.0.0b1"}


# --- ordering and blast radius --------------------------------------------------------


def _world(**needs: str) -> dict[str, ComponentDescriptor]:
    """``a="b,c"``: component a 1.0 needs b and c."""
    return {
        name: _d(name, "1.0", needs={dep: "" for dep in deps.split(",") if dep})
        for name, deps in needs.items()
    }


def test_activation_order_puts_dependencies_first_and_ties_alphabetical() -> None:
    world = _world(vm="bytecode,memory", bytecode="parser", parser="lexer", lexer="", memory="")
    world["alpha"] = _d("alpha", "1.0", needs={"vm": ""})
    assert activation_order(world) == ["lexer", "memory", "parser", "bytecode", "vm", "alpha"]


def test_activation_order_ignores_dependencies_outside_the_choice() -> None:
    assert activation_order(_world(b="a,z", c="")) == ["b", "c"]


def test_activation_order_names_the_cycle_path() -> None:
    _refusal(
        "dependency-cycle",
        "dependency cycle: b -> c -> d -> b",
        "b 1.0 needs c",
        call=lambda: activation_order(_world(a="b", b="c", c="d", d="b")),
    )


def test_self_dependency_is_a_cycle() -> None:
    _refusal("dependency-cycle", "a -> a", call=lambda: activation_order(_world(a="a")))


def test_dependents_of_lists_the_blast_radius_sorted() -> None:
    world = _world(vm="parser", optimizer="parser,lexer", parser="lexer", lexer="")
    assert dependents_of("parser", world) == ["optimizer", "vm"]
    assert dependents_of("lexer", world) == ["optimizer", "parser"]
    assert dependents_of("vm", world) == []
