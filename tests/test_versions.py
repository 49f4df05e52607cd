"""Version math: bump kinds and the upgrade path between two versions of one component."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from packaging.version import Version

from noodle_upgrade.engine.versions import (
    accepts_upgrade,
    bump_kind,
    parse_version,
    upgrade_path,
)
from noodle_upgrade.models import BumpKind, ComponentDescriptor


def _d(version: str, upgrade_from: list[str] | None = None) -> ComponentDescriptor:
    return ComponentDescriptor(
        name="parser",
        version=Version(version),
        entry="parser",
        folder=Path("/x"),
        upgrade_from=None if upgrade_from is None else tuple(Version(v) for v in upgrade_from),
    )


def _walk(path: list[ComponentDescriptor] | None) -> list[str] | None:
    return None if path is None else [str(step.version) for step in path]


# --- bump kinds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("1.0.0", "2.0.0", BumpKind.MAJOR),
        ("1.9.9", "2.0.0", BumpKind.MAJOR),
        ("1.0.0", "1.1.0", BumpKind.MINOR),
        ("1.0.0", "1.0.1", BumpKind.PATCH),
        ("1", "1.0.1", BumpKind.PATCH),  # missing parts count as 0
        ("1.0", "1.1", BumpKind.MINOR),
        ("1.0.0", "1.0.0.1", BumpKind.PATCH),  # parts past the third are patches
        ("0.1.0", "0.2.0", BumpKind.MINOR),  # 0.x: by position, no SemVer special case
        ("0.1.0", "1.0.0", BumpKind.MAJOR),
        ("1.0.0-beta.1", "1.0.0", BumpKind.PRERELEASE),  # SemVer pre-release string
        ("1.0.0-alpha", "1.0.0-beta.1", BumpKind.PRERELEASE),
        ("1.0.0-beta.1", "1.1.0", BumpKind.MINOR),
        ("1.0.0", "1.0.0.post1", BumpKind.PRERELEASE),
        ("1.0.0.dev1", "1.0.0", BumpKind.PRERELEASE),
        ("1.0.0", "1.0.0+build.5", BumpKind.PRERELEASE),
        ("1.0.0", "1.0.0", BumpKind.NONE),
        ("1.0", "1.0.0", BumpKind.NONE),  # equal versions, different spelling
        ("2.0.0", "1.0.0", BumpKind.MAJOR),  # by position: a downgrade reads the same
    ],
)
def test_bump_kind(old: str, new: str, kind: BumpKind) -> None:
    assert bump_kind(parse_version(old), parse_version(new)) is kind


# --- upgrade paths --------------------------------------------------------------------


def test_default_rule_goes_straight_to_any_later_version_of_the_same_major() -> None:
    store = [_d("1.0.0"), _d("1.1.0"), _d("1.2.0")]
    assert _walk(upgrade_path(store, Version("1.0.0"), Version("1.2.0"))) == ["1.2.0"]


def test_default_rule_never_crosses_a_major_version() -> None:
    store = [_d("1.0.0"), _d("1.1.0"), _d("2.0.0")]
    assert upgrade_path(store, Version("1.0.0"), Version("2.0.0")) is None
    assert upgrade_path(store, Version("1.1.0"), Version("2.0.0")) is None


def test_upgrade_from_chain_walks_every_step() -> None:
    store = [_d("1.0.0"), _d("1.1.0", ["1.0.0"]), _d("2.0.0", ["1.1.0"])]
    path = upgrade_path(store, Version("1.0.0"), Version("2.0.0"))
    assert _walk(path) == ["1.1.0", "2.0.0"]
    assert path is not None and path[-1] is store[-1]


def test_upgrade_from_restricts_the_sources() -> None:
    store = [_d("1.0.0"), _d("1.1.0"), _d("1.2.0", ["1.1.0"])]
    assert _walk(upgrade_path(store, Version("1.0.0"), Version("1.2.0"))) == ["1.1.0", "1.2.0"]
    assert accepts_upgrade(store[2], Version("1.1.0"))
    assert not accepts_upgrade(store[2], Version("1.0.0"))


def test_empty_upgrade_from_accepts_nothing() -> None:
    store = [_d("1.0.0"), _d("1.1.0", [])]
    assert upgrade_path(store, Version("1.0.0"), Version("1.1.0")) is None


def test_shortest_path_wins_over_a_longer_one() -> None:
    store = [
        _d("1.0.0"),
        _d("1.1.0", ["1.0.0"]),
        _d("1.2.0", ["1.1.0"]),
        _d("2.0.0", ["1.2.0", "1.0.0"]),
    ]
    assert _walk(upgrade_path(store, Version("1.0.0"), Version("2.0.0"))) == ["2.0.0"]


def test_ties_prefer_the_highest_steps() -> None:
    store = [_d("1.0.0"), _d("1.1.0"), _d("1.2.0"), _d("2.0.0", ["1.1.0", "1.2.0"])]
    path = upgrade_path(store, Version("1.0.0"), Version("2.0.0"))
    assert _walk(path) == ["1.2.0", "2.0.0"]
    # the same answer whatever order the store lists its versions in
    assert _walk(upgrade_path(store[::-1], Version("1.0.0"), Version("2.0.0"))) == _walk(path)


def test_current_need_not_be_in_the_store() -> None:
    store = [_d("1.1.0"), _d("2.0.0", ["1.0.5"])]
    assert _walk(upgrade_path(store, Version("1.0.0"), Version("1.1.0"))) == ["1.1.0"]
    assert _walk(upgrade_path(store, Version("1.0.5"), Version("2.0.0"))) == ["2.0.0"]


def test_only_forward_steps() -> None:
    # 1.5.0 lists 2.0.0, but a step never goes down: 1.0.0 -> 2.0.0 -> 1.5.0 is no path
    store = [_d("1.0.0"), _d("1.5.0", ["2.0.0"]), _d("2.0.0", ["1.0.0"])]
    assert upgrade_path(store, Version("1.0.0"), Version("1.5.0")) is None
    assert upgrade_path(store, Version("2.0.0"), Version("1.5.0")) is None


def test_versions_compare_by_value_not_spelling() -> None:
    store = [_d("1.0"), _d("2.0.0", ["1.0"])]
    assert _walk(upgrade_path(store, Version("1.0.0"), Version("2"))) == ["2.0.0"]


def test_semver_prerelease_upgrades_to_its_release() -> None:
    store = [_d("1.0.0-beta.1"), _d("1.0.0")]
    assert _walk(upgrade_path(store, Version("1.0.0-beta.1"), Version("1.0.0"))) == ["1.0.0"]


def test_no_path_when_equal_or_target_missing() -> None:
    store = [_d("1.0.0"), _d("1.1.0")]
    assert upgrade_path(store, Version("1.1.0"), Version("1.1.0")) is None
    assert upgrade_path(store, Version("1.0.0"), Version("1.5.0")) is None


# --- property: random small graphs against brute force --------------------------------

_POOL = ["0.9", "1.0", "1.1", "1.2", "1.5", "2.0rc1", "2.0", "2.1", "3.0"]


def _edge(source: Version, target: ComponentDescriptor) -> bool:
    """The edge rule, written out again independently of the code under test."""
    if not source < target.version:
        return False
    if target.upgrade_from is None:
        return source.release[0] == target.version.release[0]
    return any(source == listed for listed in target.upgrade_from)


def _random_store(rng: random.Random) -> list[ComponentDescriptor]:
    store = []
    for version in sorted(rng.sample(_POOL, rng.randint(2, 7)), key=Version):
        lower = [v for v in _POOL if Version(v) < Version(version)]
        pool = lower if lower and rng.random() < 0.8 else _POOL  # mostly forward edges
        sources = (
            None if rng.random() < 0.3 else rng.sample(pool, min(len(pool), rng.randint(0, 3)))
        )
        store.append(_d(version, sources))
    return store


def _shortest_chains(
    store: list[ComponentDescriptor], current: Version, target: Version
) -> list[list[ComponentDescriptor]]:
    """Every valid chain of the fewest steps, found by trying all increasing chains."""
    by_version = {descriptor.version: descriptor for descriptor in store}
    between = sorted(v for v in by_version if current < v < target)
    for size in range(len(between) + 1):
        chains = []
        for middle in itertools.combinations(between, size):
            steps = [by_version[v] for v in (*middle, target)]
            sources = [current, *middle]
            if all(_edge(source, step) for source, step in zip(sources, steps, strict=True)):
                chains.append(steps)
        if chains:
            return chains
    return []


def test_random_paths_are_valid_and_shortest() -> None:
    rng = random.Random(20240611)
    found = multi_step = ties = 0
    for _ in range(2000):
        store = _random_store(rng)
        target = rng.choice(store).version
        lower = [v for v in _POOL if Version(v) < target]
        current = Version(rng.choice(lower if lower and rng.random() < 0.8 else _POOL))
        path = upgrade_path(store, current, target)
        if current == target:
            assert path is None
            continue
        chains = _shortest_chains(store, current, target) if current < target else []
        if not chains:
            assert path is None, (store, current, target)
            continue
        found += 1
        assert path is not None, (store, current, target)
        sources = [current, *(step.version for step in path[:-1])]
        assert all(_edge(source, step) for source, step in zip(sources, path, strict=True))
        assert path[-1].version == target
        assert len(path) == len(chains[0])
        best = max(chains, key=lambda chain: [step.version for step in chain])
        assert path == best
        ties += len(chains) > 1
        multi_step += len(path) > 1
    # the generator makes enough graphs with a path, some of several steps, to mean something
    assert found > 400
    assert multi_step > 50
    assert ties >= 3
