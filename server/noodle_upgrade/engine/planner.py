"""Upgrade planning (DESIGN §3): which versions to walk, which to activate, and in what order.

Pure logic over descriptors, no I/O: callers pass what the component store holds
(``available``: every version per component, ascending), what runs (``active``) and
``noodle.toml [components]`` (``constraints``). Every refusal is a ``ValidationError``
whose ``code`` says which rule failed and whose message names what, where and what is
allowed.

Pre-releases: a version a user names explicitly, a locked version and an active
dependency are checked against specifiers with pre-releases allowed (they are facts, not
choices). When the planner chooses by itself it skips pre-releases: ``plan_upgrade``
unless the current version is one or the constraint names one, ``resolve_activation``
unless no final release satisfies the constraint (PEP 440's rule).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from noodle_upgrade.engine.versions import bump_kind, upgrade_path
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import BumpKind, ComponentDescriptor

_CONFIG = "noodle.toml [components]"


@dataclass(frozen=True)
class UpgradePlan:
    """An upgrade that passed every check: the versions to walk, in order."""

    component: str
    from_version: Version
    to_version: Version
    steps: tuple[ComponentDescriptor, ...]  # each version walked, last is the target
    bump: BumpKind
    warnings: tuple[str, ...] = ()

    @property
    def target(self) -> ComponentDescriptor:
        return self.steps[-1]

    @property
    def path(self) -> list[str]:
        """Every version as a string, start included: ``["1.0.0", "1.1.0", "2.0.0"]``."""
        return [str(self.from_version), *(str(step.version) for step in self.steps)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "from_version": str(self.from_version),
            "to_version": str(self.to_version),
            "path": [str(step.version) for step in self.steps],
            "bump": str(self.bump),
            "warnings": list(self.warnings),
        }


class _Conflict(NamedTuple):
    """``needer`` needs ``dependency`` within ``spec``; ``provider`` is what is there
    (``None``: the dependency is not available at all)."""

    needer: ComponentDescriptor
    dependency: str
    spec: SpecifierSet
    provider: ComponentDescriptor | None


# --- upgrades -------------------------------------------------------------------------


def plan_upgrade(
    name: str,
    target: Version | None,
    *,
    current: Version,
    available: Mapping[str, Sequence[ComponentDescriptor]],
    active: Mapping[str, ComponentDescriptor],
    constraints: Mapping[str, SpecifierSet],
) -> UpgradePlan:
    """Check an upgrade of ``name`` from ``current`` to ``target`` and plan its steps.

    ``target=None`` picks the newest version that passes every check; when none does the
    refusal is ``already-active`` if the store holds nothing newer, otherwise the reason
    the newest candidate fails.
    """
    versions = _store_versions(name, available)
    if target is None:
        return _plan_newest(name, versions, current, active, constraints)
    descriptor = _find_version(name, target, versions)
    return _plan_to(name, descriptor, versions, current, active, constraints)


def _plan_newest(
    name: str,
    versions: Sequence[ComponentDescriptor],
    current: Version,
    active: Mapping[str, ComponentDescriptor],
    constraints: Mapping[str, SpecifierSet],
) -> UpgradePlan:
    candidates = _newer_candidates(versions, current, constraints.get(name))
    if not candidates:
        raise ValidationError(_nothing_newer(name, versions, current), code="already-active")
    refusals: list[ValidationError] = []
    for candidate in candidates:
        try:
            return _plan_to(name, candidate, versions, current, active, constraints)
        except ValidationError as refusal:
            refusals.append(refusal)
    newest = refusals[0]
    tried = _versions_text(candidates)
    raise ValidationError(
        f"no newer version of {name} can be upgraded to (tried {tried}); "
        f"the newest is refused: {newest.message}",
        code=newest.code,
    )


def _newer_candidates(
    versions: Sequence[ComponentDescriptor], current: Version, constraint: SpecifierSet | None
) -> list[ComponentDescriptor]:
    """Versions above ``current``, newest first; pre-releases only when opted into."""
    allow_pre = current.is_prerelease or bool(constraint is not None and constraint.prereleases)
    newer = [
        descriptor
        for descriptor in versions
        if descriptor.version > current and (allow_pre or not descriptor.version.is_prerelease)
    ]
    return sorted(newer, key=lambda descriptor: descriptor.version, reverse=True)


def _nothing_newer(name: str, versions: Sequence[ComponentDescriptor], current: Version) -> str:
    message = (
        f"{name} {current} is active and the component store holds nothing newer "
        f"(available: {_versions_text(versions)})"
    )
    skipped = [descriptor for descriptor in versions if descriptor.version > current]
    if skipped:
        message += f"; pre-releases ({_versions_text(skipped)}) are upgraded to only when named"
    return message


def _plan_to(
    name: str,
    target: ComponentDescriptor,
    versions: Sequence[ComponentDescriptor],
    current: Version,
    active: Mapping[str, ComponentDescriptor],
    constraints: Mapping[str, SpecifierSet],
) -> UpgradePlan:
    """Every check of an explicit target, in the documented order."""
    _check_direction(name, target.version, current)
    _check_constraint(name, target.version, constraints.get(name), versions)
    _check_hot_swappable(target)
    steps = upgrade_path(versions, current, target.version)
    if steps is None:
        raise ValidationError(_no_path(name, target, versions, current), code="no-upgrade-path")
    _raise_conflicts(_unmet_in_active(target, active))
    _raise_conflicts(_broken_dependents(name, target.version, active))
    activation_order({**active, name: target})
    bump = bump_kind(current, target.version)
    return UpgradePlan(
        component=name,
        from_version=current,
        to_version=target.version,
        steps=tuple(steps),
        bump=bump,
        warnings=_plan_warnings(name, current, target.version, bump),
    )


def _check_direction(name: str, target: Version, current: Version) -> None:
    if target == current:
        raise ValidationError(
            f"{name} {target} is already active: nothing to upgrade", code="already-active"
        )
    if target < current:
        raise ValidationError(
            f"{name} {target} is lower than the active {current}: "
            "an upgrade never goes back; use rollback",
            code="downgrade",
        )


def _check_constraint(
    name: str,
    target: Version,
    constraint: SpecifierSet | None,
    versions: Sequence[ComponentDescriptor],
) -> None:
    if constraint is None or _satisfies(target, constraint):
        return
    inside = [descriptor for descriptor in versions if _satisfies(descriptor.version, constraint)]
    allowed = (
        f"store versions inside it: {_versions_text(inside)}" if inside else "no store version is"
    )
    raise ValidationError(
        f"{name} {target} is outside the constraint '{_spec_text(constraint)}' "
        f"in {_CONFIG} ({allowed})",
        code="unsatisfiable-constraint",
    )


def _check_hot_swappable(target: ComponentDescriptor) -> None:
    if target.hot_swappable:
        return
    raise ValidationError(
        f"{target.name} {target.version} is not hot-swappable (hot_swappable = false in "
        f"{target.manifest_path}): it cannot be swapped into a running process",
        code="not-hot-swappable",
    )


def _no_path(
    name: str,
    target: ComponentDescriptor,
    versions: Sequence[ComponentDescriptor],
    current: Version,
) -> str:
    head = f"no upgrade path from {name} {current} to {target.version}: "
    version = target.version
    if target.upgrade_from is None:
        return head + (
            f"{version} declares no upgrade_from, so it accepts upgrades from earlier "
            f"{version.major}.x versions only; list the versions it accepts in upgrade_from "
            f"of {target.manifest_path}"
        )
    if not target.upgrade_from:
        return head + f"{version} accepts no upgrades (its upgrade_from is empty)"
    accepted = target.upgrade_from
    stored = {descriptor.version for descriptor in versions}
    missing = [source for source in accepted if source not in stored]
    if len(missing) == len(accepted):
        reason = f"{_join(missing)} {'is' if len(missing) == 1 else 'are'} not in the store"
    elif len(accepted) == 1:
        reason = f"{_join(accepted)} cannot be reached from {current}"
    else:
        reason = f"none of them can be reached from {current}"
    return head + (
        f"{version} accepts upgrades from {_join(accepted)} only (upgrade_from), and {reason}"
    )


def _plan_warnings(name: str, current: Version, target: Version, bump: BumpKind) -> tuple[str, ...]:
    warnings: list[str] = []
    if bump is BumpKind.MAJOR:
        warnings.append(
            f"{name} {current} -> {target} is a major upgrade: expect breaking API changes"
        )
    if target.is_prerelease:
        warnings.append(f"{name} {target} is a pre-release")
    return tuple(warnings)


# --- rollbacks ------------------------------------------------------------------------


def check_rollback(
    name: str,
    to_version: Version,
    *,
    active: Mapping[str, ComponentDescriptor],
    available: Mapping[str, Sequence[ComponentDescriptor]],
) -> ComponentDescriptor:
    """The descriptor to roll back to, if it is in the store and conflicts with nothing.

    Lower versions are allowed (that is what a rollback is for), but the target must
    still work with what is active now, both ways: a dependency that was upgraded since
    may no longer satisfy it.
    """
    descriptor = _find_version(name, to_version, _store_versions(name, available))
    _raise_conflicts(
        _unmet_in_active(descriptor, active) + _broken_dependents(name, descriptor.version, active)
    )
    return descriptor


# --- dependencies ---------------------------------------------------------------------


def dependents_of(name: str, active: Mapping[str, ComponentDescriptor]) -> list[str]:
    """Active components whose dependencies mention ``name`` (the blast radius), sorted."""
    return sorted(
        other
        for other, descriptor in active.items()
        if other != name and name in descriptor.dependencies
    )


def _unmet_in_active(
    target: ComponentDescriptor, active: Mapping[str, ComponentDescriptor]
) -> list[str]:
    """The target's dependencies that the active versions do not satisfy."""
    problems = []
    for dependency, spec in sorted(target.dependencies.items()):
        if dependency == target.name:
            continue
        provider = active.get(dependency)
        if provider is None:
            problems.append(
                f"{target.name} {target.version} needs {_requirement(dependency, spec)}, "
                "which is not active"
            )
        elif not _satisfies(provider.version, spec):
            problems.append(
                f"{target.name} {target.version} needs {_requirement(dependency, spec)} "
                f"but {dependency} {provider.version} is active"
            )
    return problems


def _broken_dependents(
    name: str, version: Version, active: Mapping[str, ComponentDescriptor]
) -> list[str]:
    """What switching ``name`` to ``version`` would break among the other active components."""
    problems = []
    for other in dependents_of(name, active):
        descriptor = active[other]
        spec = descriptor.dependencies[name]
        if not _satisfies(version, spec):
            problems.append(
                f"{name} {version} would break {other} {descriptor.version}, "
                f"which needs {_requirement(name, spec)}"
            )
    return problems


def _raise_conflicts(problems: list[str]) -> None:
    if problems:
        raise ValidationError("; ".join(problems), code="dependency-conflict")


# --- activation -----------------------------------------------------------------------


def resolve_activation(
    constraints: Mapping[str, SpecifierSet],
    available: Mapping[str, Sequence[ComponentDescriptor]],
    locked: Mapping[str, Version],
) -> tuple[dict[str, ComponentDescriptor], list[str]]:
    """The version to activate for every component listed in ``constraints``.

    A locked version (the one recorded as active) stays when it is still in the store;
    otherwise the newest version satisfying the constraint such that every chosen
    version's dependencies are satisfied by the others (backtracking over the candidates,
    newest first, components in alphabetical order). A best candidate that depends on a
    component not listed in ``constraints`` is an error, not a reason to backtrack.
    Returns the choice and warnings (locks kept or dropped, versions passed over).
    """
    warnings = _unlisted_locks(constraints, locked)
    candidates = {
        name: _activation_candidates(name, constraints[name], available, locked, warnings)
        for name in sorted(constraints)
    }
    _check_listed(candidates)
    choice = _search(candidates)
    if choice is None:
        raise ValidationError(
            _no_combination(candidates, constraints, locked), code="dependency-conflict"
        )
    activation_order(choice)
    warnings.extend(_passed_over(choice, candidates))
    return choice, warnings


def _unlisted_locks(
    constraints: Mapping[str, SpecifierSet], locked: Mapping[str, Version]
) -> list[str]:
    return [
        f"{name} {version} was active but {name} is no longer listed in {_CONFIG}; "
        "it is not activated"
        for name, version in sorted(locked.items())
        if name not in constraints
    ]


def _activation_candidates(
    name: str,
    constraint: SpecifierSet,
    available: Mapping[str, Sequence[ComponentDescriptor]],
    locked: Mapping[str, Version],
    warnings: list[str],
) -> list[ComponentDescriptor]:
    """The versions ``name`` may be activated at, best first (a lock leaves exactly one)."""
    versions = _store_versions(name, available, listed=True)
    pinned = locked.get(name)
    if pinned is not None:
        kept = _version_in(pinned, versions)
        if kept is not None:
            if not _satisfies(pinned, constraint):
                warnings.append(
                    f"{name} {pinned} stays active (it is locked) although it is outside the "
                    f"constraint '{_spec_text(constraint)}' in {_CONFIG}; "
                    "upgrade or roll back to a version inside it"
                )
            return [kept]
        warnings.append(
            f"{name} {pinned} was active but is no longer in the component store; "
            f"choosing again from {_versions_text(versions)}"
        )
    allowed = set(constraint.filter(descriptor.version for descriptor in versions))
    chosen = [descriptor for descriptor in versions if descriptor.version in allowed]
    if not chosen:
        raise ValidationError(
            f"no version of {name} satisfies the constraint '{_spec_text(constraint)}' "
            f"in {_CONFIG} (available: {_versions_text(versions)})",
            code="unsatisfiable-constraint",
        )
    return sorted(chosen, key=lambda descriptor: descriptor.version, reverse=True)


def _check_listed(candidates: Mapping[str, Sequence[ComponentDescriptor]]) -> None:
    """The best candidates may only depend on listed components: never backtrack past that."""
    unlisted = [
        _describe(conflict, "")
        for name in sorted(candidates)
        for conflict in _unmet(candidates[name][0], {}, candidates)
    ]
    _raise_conflicts(unlisted)


def _search(
    candidates: Mapping[str, Sequence[ComponentDescriptor]],
) -> dict[str, ComponentDescriptor] | None:
    """Backtracking: the first combination, newest first, whose dependencies all hold."""
    names = sorted(candidates)
    chosen: dict[str, ComponentDescriptor] = {}

    def assign(index: int) -> bool:
        if index == len(names):
            return True
        for candidate in candidates[names[index]]:
            trial = {**chosen, candidate.name: candidate}
            if not any(_unmet(descriptor, trial, candidates) for descriptor in trial.values()):
                chosen[candidate.name] = candidate
                if assign(index + 1):
                    return True
                del chosen[candidate.name]
        return False

    return chosen if assign(0) else None


def _unmet(
    needer: ComponentDescriptor,
    chosen: Mapping[str, ComponentDescriptor],
    listed: Container[str],
) -> list[_Conflict]:
    """``needer``'s dependencies that ``chosen`` breaks; unchosen listed ones are open."""
    conflicts = []
    for dependency, spec in sorted(needer.dependencies.items()):
        provider = chosen.get(dependency)
        if dependency not in listed:
            conflicts.append(_Conflict(needer, dependency, spec, None))
        elif provider is not None and not _satisfies(provider.version, spec):
            conflicts.append(_Conflict(needer, dependency, spec, provider))
    return conflicts


def _no_combination(
    candidates: Mapping[str, Sequence[ComponentDescriptor]],
    constraints: Mapping[str, SpecifierSet],
    locked: Mapping[str, Version],
) -> str:
    """Why the search failed, told for the best candidate of every component."""
    best = {name: options[0] for name, options in candidates.items()}
    conflicts = [
        conflict for name in sorted(best) for conflict in _unmet(best[name], best, candidates)
    ]
    if not conflicts:  # the best combination always fails when the search does
        return "no combination of versions satisfies every dependency"
    conflict = conflicts[0]
    if conflict.provider is None:
        return _describe(conflict, "")
    dependency, provider = conflict.dependency, conflict.provider.version
    if locked.get(dependency) == provider:
        where = f"but {dependency} is locked at the active {provider}"
    else:
        allowed = _spec_text(constraints[dependency]) or "any version"
        where = f"but the newest {dependency} allowed by '{allowed}' in {_CONFIG} is {provider}"
    return f"no combination of versions satisfies every dependency: {_describe(conflict, where)}"


def _passed_over(
    choice: Mapping[str, ComponentDescriptor],
    candidates: Mapping[str, Sequence[ComponentDescriptor]],
) -> list[str]:
    """A warning for every component activated below its newest allowed version."""
    warnings = []
    for name in sorted(choice):
        newest = candidates[name][0]
        if choice[name] == newest:
            continue
        warnings.append(
            f"{name} {choice[name].version} is activated rather than the newest allowed "
            f"{newest.version}: {_passed_over_reason(newest, choice, candidates)}"
        )
    return warnings


def _passed_over_reason(
    newest: ComponentDescriptor,
    choice: Mapping[str, ComponentDescriptor],
    listed: Container[str],
) -> str:
    trial = {**choice, newest.name: newest}
    for name in sorted(trial):
        for conflict in _unmet(trial[name], trial, listed):
            if conflict.needer is newest and conflict.provider is not None:
                provider = conflict.provider
                return _describe(conflict, f"but {provider.name} {provider.version} is activated")
            if newest in (conflict.needer, conflict.provider):
                return _describe(conflict, "")
    return f"{newest.name} {newest.version} cannot be combined with the other versions chosen"


def _describe(conflict: _Conflict, where: str) -> str:
    needs = f"{conflict.needer.name} {conflict.needer.version} needs "
    requirement = _requirement(conflict.dependency, conflict.spec)
    if conflict.provider is None:
        return f"{needs}{requirement}, which is not listed in {_CONFIG}"
    return f"{needs}{requirement} {where}" if where else f"{needs}{requirement}"


def activation_order(chosen: Mapping[str, ComponentDescriptor]) -> list[str]:
    """Every component in ``chosen``, dependencies first, ties alphabetical.

    Dependencies on components outside ``chosen`` are ignored; a cycle is refused with
    ``dependency-cycle`` naming its path.
    """
    remaining = set(chosen)
    order: list[str] = []
    while remaining:
        ready = [name for name in remaining if not _waiting_on(chosen[name], remaining)]
        if not ready:
            raise ValidationError(_cycle_message(chosen, remaining), code="dependency-cycle")
        first = min(ready)
        order.append(first)
        remaining.remove(first)
    return order


def _waiting_on(descriptor: ComponentDescriptor, remaining: set[str]) -> list[str]:
    return sorted(name for name in descriptor.dependencies if name in remaining)


def _cycle_message(chosen: Mapping[str, ComponentDescriptor], remaining: set[str]) -> str:
    """Every remaining component waits on another remaining one: walk until one repeats."""
    walked: list[str] = []
    node = min(remaining)
    while node not in walked:
        walked.append(node)
        node = _waiting_on(chosen[node], remaining)[0]
    cycle = [*walked[walked.index(node) :], node]
    needs = ", ".join(
        f"{name} {chosen[name].version} needs "
        f"{_requirement(after, chosen[name].dependencies[after])}"
        for name, after in pairwise(cycle)
    )
    return (
        f"dependency cycle: {' -> '.join(cycle)} ({needs}); "
        "a component can only be activated after its dependencies"
    )


# --- small helpers --------------------------------------------------------------------


def _store_versions(
    name: str, available: Mapping[str, Sequence[ComponentDescriptor]], *, listed: bool = False
) -> Sequence[ComponentDescriptor]:
    versions = available.get(name)
    if versions:
        return versions
    held = ", ".join(sorted(other for other, found in available.items() if found))
    holds = f"it holds: {held}" if held else "the store is empty"
    subject = f"{_CONFIG} lists {name!r}, but it" if listed else f"component {name!r}"
    raise ValidationError(
        f"{subject} is not in the component store ({holds})", code="unknown-component"
    )


def _find_version(
    name: str, version: Version, versions: Sequence[ComponentDescriptor]
) -> ComponentDescriptor:
    found = _version_in(version, versions)
    if found is None:
        raise ValidationError(
            f"{name} {version} is not in the component store "
            f"(available: {_versions_text(versions)})",
            code="invalid-version",
        )
    return found


def _version_in(
    version: Version, versions: Sequence[ComponentDescriptor]
) -> ComponentDescriptor | None:
    return next((descriptor for descriptor in versions if descriptor.version == version), None)


def _satisfies(version: Version, spec: SpecifierSet) -> bool:
    return spec.contains(version, prereleases=True)


def _spec_text(spec: SpecifierSet) -> str:
    """The specifiers in the order they were written (``str()`` sorts them)."""
    return ",".join(str(specifier) for specifier in spec)


def _requirement(name: str, spec: SpecifierSet) -> str:
    text = _spec_text(spec)
    return f"{name} {text}" if text else name


def _versions_text(versions: Iterable[ComponentDescriptor]) -> str:
    return _join(descriptor.version for descriptor in versions) or "none"


def _join(versions: Iterable[Version]) -> str:
    return ", ".join(str(version) for version in versions)
