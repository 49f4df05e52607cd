"""Version math: PEP 440 parsing (SemVer strings parse too), specifiers, bump kinds and
the upgrade path between two versions of one component (DESIGN §3).

Pure functions, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import BumpKind, ComponentDescriptor


def parse_version(text: str, where: str = "") -> Version:
    """Parse a PEP 440 version; ``where`` says where it was found, for the error."""
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        prefix = f"{where}: " if where else ""
        raise ValidationError(
            f"{prefix}{text!r} is not a valid version (PEP 440 or SemVer, e.g. 1.2.0)",
            code="invalid-version",
        ) from None


def parse_specifier(text: str, where: str = "") -> SpecifierSet:
    """Parse a PEP 440 specifier set; a bare version means exactly that version."""
    cleaned = str(text).strip()
    if cleaned and cleaned[0].isdigit():
        cleaned = f"=={cleaned}"
    try:
        return SpecifierSet(cleaned)
    except InvalidSpecifier:
        prefix = f"{where}: " if where else ""
        raise ValidationError(
            f"{prefix}{text!r} is not a valid version specifier "
            "(PEP 440, e.g. '==1.0.0', '>=1.0,<2', '~=1.1')",
            code="invalid-specifier",
        ) from None


_BUMP_BY_POSITION = (BumpKind.MAJOR, BumpKind.MINOR, BumpKind.PATCH)


def bump_kind(old: Version, new: Version) -> BumpKind:
    """The kind of change from ``old`` to ``new``, read from the release numbers.

    The first release part that differs decides (missing parts count as 0): the first is
    MAJOR, the second MINOR, any later one PATCH (so ``1.0.0.1`` is a patch of ``1.0.0``).
    When the release numbers are equal and only the pre-, post-, dev- or local part
    differs, the change is PRERELEASE; equal versions are NONE. The comparison is by
    position only: ``0.1 -> 0.2`` is MINOR (no SemVer 0.x special case), and it is
    symmetric (a downgrade is classified like the upgrade it undoes).
    """
    if old == new:
        return BumpKind.NONE
    width = max(len(old.release), len(new.release), 3)
    old_release = old.release + (0,) * (width - len(old.release))
    new_release = new.release + (0,) * (width - len(new.release))
    for index, (before, after) in enumerate(zip(old_release, new_release, strict=True)):
        if before != after:
            return _BUMP_BY_POSITION[min(index, 2)]
    return BumpKind.PRERELEASE


def accepts_upgrade(descriptor: ComponentDescriptor, source: Version) -> bool:
    """Whether ``descriptor``'s version can be entered directly from ``source``.

    Only forward steps count. A version with ``upgrade_from`` accepts exactly the versions
    listed there; one without accepts every earlier version of the same major version.
    """
    if source >= descriptor.version:
        return False
    if descriptor.upgrade_from is None:
        return source.major == descriptor.version.major
    return source in descriptor.upgrade_from


def upgrade_path(
    versions: Sequence[ComponentDescriptor], current: Version, target: Version
) -> list[ComponentDescriptor] | None:
    """The shortest chain of upgrade steps from ``current`` to ``target`` (DESIGN §3).

    Returns the descriptor of every version walked after ``current``, the last being
    ``target``; ``None`` when there is no path, when ``target`` is not in ``versions`` or
    when ``current >= target`` (callers refuse those cases themselves). ``current`` need not
    be in ``versions``. Among the shortest chains the one whose steps are highest wins,
    compared from the first step on: a chain jumps as far as it can as early as it can.
    """
    by_version = {descriptor.version: descriptor for descriptor in versions}
    if current >= target or target not in by_version:
        return None
    if accepts_upgrade(by_version[target], current):
        return [by_version[target]]
    # Steps only go forward, so only versions between the two can be on the path.
    between = {v: d for v, d in by_version.items() if current < v <= target}
    distance = _steps_to(target, between, current)
    if current not in distance:
        return None
    path: list[ComponentDescriptor] = []
    node = current
    while node != target:
        node = max(
            version
            for version, descriptor in between.items()
            if distance.get(version) == distance[node] - 1 and accepts_upgrade(descriptor, node)
        )
        path.append(between[node])
    return path


def _steps_to(
    target: Version, by_version: Mapping[Version, ComponentDescriptor], current: Version
) -> dict[Version, int]:
    """Breadth-first search backwards from ``target``: the fewest steps from each node,
    up to ``current`` (every node nearer to the target is known by then)."""
    unreached = [*(v for v in by_version if v != target), current]
    distance = {target: 0}
    queue = deque([target])
    while queue and current not in distance:
        node = queue.popleft()
        descriptor = by_version[node]
        still = []
        for source in unreached:
            if accepts_upgrade(descriptor, source):
                distance[source] = distance[node] + 1
                queue.append(source)
            else:
                still.append(source)
        unreached = still
    return distance
