"""What changed in a component's public API between two versions, and the bump it calls for.

The breaking-change rules are griffe's (``griffe.find_breaking_changes``, griffe 2.x), so a
report from ``noodle diff`` reads like one from ``griffe check`` and the two agree on real
packages (tests/test_analysis_griffe.py keeps them honest):

- the walk starts at the old version's root module and visits every *public* member
  (griffe's rules: a non-underscore submodule is always public; else a module with a
  non-empty ``__all__`` exports exactly those names; else a name with one leading
  underscore is private, and so is a name bound by an import), recursing into modules and
  classes; a class's members include those it inherits from bases inside the version;
- a public name missing from the new version is ``object-removed``; one that names another
  kind of object is ``object-changed-kind``; a class with fewer bases is
  ``class-removed-base``; a function's parameters are compared one by one by name (see
  ``_Comparison._parameters``) and its return annotation as griffe 2.x does;
- a name bound by an import is compared by what it names (``Api.resolve``, in both
  versions), so a definition moved to another module and re-exported under the same public
  name breaks nothing; a name whose target lies outside the version (``typing.Any``) cannot
  be looked at and is skipped, as griffe skips it;
- each old object is compared once, however many public names reach it;
- like griffe 2.x, attribute values are not compared (a constant such as ``__version__``
  changes every release), so ``attribute-changed-value`` is never reported; and a return
  annotation only breaks when it disappears (griffe does not compare types yet).

We differ from griffe in two places, both where griffe misses a break:

- griffe never compares an object defined in place in the old version with the same name
  imported in the new one (its visited-path bookkeeping marks the old path before it
  resolves the new alias); we compare the two;
- griffe counts a name as imported, hence private, if any import in its module binds it,
  even when an assignment rebinds it later; ``Api`` keeps only the last binding, so such
  a name is public here (packaging 21.3's ``requirements.MARKER_EXPR``).

What griffe does not do, we add: ``additions`` lists public names that only the new version
has and new optional parameters of existing functions, which decide between a minor and a
patch bump. And for a factory entry (``module:create``), the class of the instance a handle
reaches (``Api.handle_root``) is compared as well, even when the module keeps it private
(``_Counter``): its methods are what the component's callers use.

Pure: no I/O. Linear in the size of the two APIs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple

from packaging.version import Version

from noodle_upgrade.analysis.api import Api, ApiObject, Kind, Location, Parameter, ParameterKind
from noodle_upgrade.models import BumpKind


class BreakageKind(StrEnum):
    """griffe's breakage kinds, in kebab case."""

    OBJECT_REMOVED = "object-removed"
    OBJECT_CHANGED_KIND = "object-changed-kind"
    PARAMETER_REMOVED = "parameter-removed"
    PARAMETER_ADDED_REQUIRED = "parameter-added-required"
    PARAMETER_MOVED = "parameter-moved"
    PARAMETER_CHANGED_KIND = "parameter-changed-kind"
    PARAMETER_CHANGED_DEFAULT = "parameter-changed-default"
    PARAMETER_CHANGED_REQUIRED = "parameter-changed-required"
    RETURN_CHANGED_TYPE = "return-changed-type"
    # Part of griffe's vocabulary, never reported: griffe 2.x compares no attribute values.
    ATTRIBUTE_CHANGED_VALUE = "attribute-changed-value"
    CLASS_REMOVED_BASE = "class-removed-base"


AdditionKind = Literal["object-added", "parameter-added-optional"]


@dataclass(frozen=True)
class Breakage:
    """One breaking change. ``path`` is the changed object's dotted path (for a parameter,
    its function's); ``detail`` says in one sentence what changed; ``old`` and ``new`` are
    the values compared, as source text, when there are any; ``location`` is where the
    object is defined (in the old version when it was removed, else in the new one)."""

    kind: BreakageKind
    path: str
    detail: str
    old: str | None = None
    new: str | None = None
    location: Location | None = None

    def to_dict(self) -> dict[str, str]:
        return {"kind": str(self.kind), "path": self.path, "detail": self.detail}


@dataclass(frozen=True)
class Addition:
    kind: AdditionKind
    path: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass(frozen=True)
class ApiDiff:
    """Both lists are sorted by path, then kind (parameters keep their signature order)."""

    breaking: tuple[Breakage, ...] = ()
    additions: tuple[Addition, ...] = ()

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        """The JSON shape of ``noodle diff --json``, without the bump fields."""
        return {
            "breaking": [breakage.to_dict() for breakage in self.breaking],
            "additions": [addition.to_dict() for addition in self.additions],
        }


def diff_api(old: Api, new: Api) -> ApiDiff:
    """Compare two versions of one component's API (module docstring: the rules)."""
    comparison = _Comparison(old, new)
    old_root, new_root = old.resolve(old.root), new.resolve(new.root)
    if old_root is not None and new_root is not None:
        comparison.members(old_root, new_root)
    old_instance, new_instance = _instance_class(old), _instance_class(new)
    if old_instance is not None and new_instance is not None:
        comparison.compare(old_instance, new_instance)  # a no-op when the walk compared it
    return ApiDiff(
        breaking=tuple(sorted(comparison.breaking, key=lambda b: (b.path, b.kind))),
        additions=tuple(sorted(comparison.additions.values(), key=lambda a: (a.path, a.kind))),
    )


def _instance_class(api: Api) -> ApiObject | None:
    """The class of a factory's instance, when the analysis can tell it."""
    if api.factory is None or api.handle_root is None:
        return None
    found = api.resolve(api.handle_root)
    return found if found is not None and found.kind is Kind.CLASS else None


def suggested_bump(diff: ApiDiff) -> BumpKind:
    """Major for any breaking change, minor for any addition, patch otherwise."""
    if diff.breaking:
        return BumpKind.MAJOR
    if diff.additions:
        return BumpKind.MINOR
    return BumpKind.PATCH


def bump_finding(
    diff: ApiDiff, declared: BumpKind, *, old_version: Version | None = None
) -> str | None:
    """A one-line finding when ``declared`` (the bump the version numbers say) is smaller
    than the change, else ``None``.

    Breaking changes need a major bump and additions a minor one; a larger bump than needed
    is never a finding. ``old_version``, the version upgraded from, relaxes two cases where
    the version numbers promise nothing:

    - before 1.0 (``0.x``), a minor bump may break: SemVer promises no stability during
      initial development, and the common reading (Cargo, npm's ``^0.2``) treats ``0.x`` to
      ``0.(x+1)`` as the breaking step; a ``0.x`` patch that breaks is still a finding;
    - from a pre-release to another pre-release or the final release of the same version
      (``2.0.0rc1 -> 2.0.0``), anything may change (SemVer: a pre-release "might not
      satisfy the intended compatibility requirements").
    """
    if old_version is not None and old_version.is_prerelease and declared is BumpKind.PRERELEASE:
        return None
    initial_development = old_version is not None and old_version.major == 0
    may_break = declared is BumpKind.MAJOR or (initial_development and declared is BumpKind.MINOR)
    if diff.breaking and not may_break:
        need = "a minor bump at least (0.x)" if initial_development else "a major bump"
        return _understated(declared, need, diff.breaking, "breaking change")
    if diff.additions and declared not in (BumpKind.MAJOR, BumpKind.MINOR):
        return _understated(declared, "a minor bump", diff.additions, "addition")
    return None


def _understated(
    declared: BumpKind, need: str, changes: tuple[Breakage | Addition, ...], noun: str
) -> str:
    first = changes[0]
    count = f"{len(changes)} {noun}{'' if len(changes) == 1 else 's'}"
    return (
        f"understated bump: declared {declared}, the API change needs {need}: {count} "
        f"(first: {first.kind} {first.path}: {first.detail})"
    )


class _Member(NamedTuple):
    """A member as the walk sees it: ``inherited`` members come from a base class (griffe
    never counts those as imported, whatever they are in their own class)."""

    obj: ApiObject
    inherited: bool


class _Comparison:
    def __init__(self, old: Api, new: Api) -> None:
        self.old = _Tree(old)
        self.new = _Tree(new)
        self.breaking: list[Breakage] = []
        # Keyed so that a container reached from two old objects lists its additions once.
        self.additions: dict[tuple[str, str, str], Addition] = {}
        self._compared: set[str] = set()

    def members(self, old_owner: ApiObject, new_owner: ApiObject) -> None:
        """Compare the members of a module or class (both resolved)."""
        old_members = self.old.members(old_owner)
        new_members = self.new.members(new_owner)
        for name, old_member in old_members.items():
            if not _is_public(old_owner, name, old_member):
                continue
            new_member = new_members.get(name)
            if new_member is None:
                self._removed(f"{old_owner.path}.{name}", old_member.obj)
            else:
                self.compare(old_member.obj, new_member.obj)
        for name, new_member in new_members.items():
            before = old_members.get(name)
            was_public = before is not None and _is_public(old_owner, name, before)
            if not was_public and _is_public(new_owner, name, new_member):
                what = self.new.describe(new_member.obj)
                self._add("object-added", f"{new_owner.path}.{name}", f"{what} '{name}' was added")

    def _removed(self, path: str, obj: ApiObject) -> None:
        what = self.old.describe(obj)
        self.breaking.append(
            Breakage(
                BreakageKind.OBJECT_REMOVED,
                path,
                f"{what} '{obj.name}' was removed",
                location=obj.location,
            )
        )

    def compare(self, old_member: ApiObject, new_member: ApiObject) -> None:
        old_obj = self.old.api.resolve(old_member.path)
        new_obj = self.new.api.resolve(new_member.path)
        if old_obj is None or new_obj is None or Kind.ALIAS in (old_obj.kind, new_obj.kind):
            return  # an import from outside the version: nothing to look at
        if old_obj.path in self._compared:
            return
        self._compared.add(old_obj.path)
        if old_obj.kind is not new_obj.kind:
            self.breaking.append(
                Breakage(
                    BreakageKind.OBJECT_CHANGED_KIND,
                    new_obj.path,
                    f"'{new_obj.name}' changed from {old_obj.kind} to {new_obj.kind}",
                    old=str(old_obj.kind),
                    new=str(new_obj.kind),
                    location=new_obj.location,
                )
            )
        elif old_obj.kind is Kind.MODULE:
            self.members(old_obj, new_obj)
        elif old_obj.kind is Kind.CLASS:
            self._bases(old_obj, new_obj)
            self.members(old_obj, new_obj)
        elif old_obj.kind is Kind.FUNCTION:
            if old_obj.parameters != new_obj.parameters:  # most functions do not change
                self._parameters(old_obj, new_obj)
            self._returns(old_obj, new_obj)

    def _bases(self, old_class: ApiObject, new_class: ApiObject) -> None:
        # griffe's test: only a shorter list of bases breaks (a renamed base does not).
        if new_class.bases != old_class.bases and len(new_class.bases) < len(old_class.bases):
            gone = [base for base in old_class.bases if base not in new_class.bases]
            self.breaking.append(
                Breakage(
                    BreakageKind.CLASS_REMOVED_BASE,
                    new_class.path,
                    f"base class{'es' if len(gone) > 1 else ''} "
                    f"{', '.join(repr(base) for base in gone)} removed",
                    old=", ".join(old_class.bases),
                    new=", ".join(new_class.bases),
                    location=new_class.location,
                )
            )

    def _parameters(self, old_function: ApiObject, new_function: ApiObject) -> None:
        """griffe's parameter rules; parameters match by name (the first of a repeated one)."""
        new_by_name: dict[str, tuple[int, Parameter]] = {}
        for index, parameter in enumerate(new_function.parameters):
            new_by_name.setdefault(parameter.name, (index, parameter))
        new_kinds = {parameter.kind for parameter in new_function.parameters}

        def broke(kind: BreakageKind, detail: str, old: str | None, new: str | None) -> None:
            location = new_function.location
            self.breaking.append(Breakage(kind, new_function.path, detail, old, new, location))

        for old_index, old in enumerate(old_function.parameters):
            label = _label(old)
            if old.name not in new_by_name:
                if not _absorbed(old, new_kinds):
                    broke(BreakageKind.PARAMETER_REMOVED, f"{label} was removed", old.name, None)
                continue
            new_index, new = new_by_name[old.name]
            if new.required and not old.required:
                broke(
                    BreakageKind.PARAMETER_CHANGED_REQUIRED, f"{label} is now required", None, None
                )
            if old.kind in _POSITIONAL and new.kind in _POSITIONAL and new_index != old_index:
                detail = f"{label} moved from position {old_index} to {new_index}"
                broke(BreakageKind.PARAMETER_MOVED, detail, str(old_index), str(new_index))
            if old.kind is not new.kind and _incompatible_kinds(old.kind, new.kind, new_kinds):
                detail = f"{label} changed kind from {old.kind} to {new.kind}"
                broke(BreakageKind.PARAMETER_CHANGED_KIND, detail, str(old.kind), str(new.kind))
            # Variadic parameters have no default: when neither side is required, both have one.
            if not old.required and not new.required and old.default != new.default:
                detail = f"{label} default changed from {old.default} to {new.default}"
                broke(BreakageKind.PARAMETER_CHANGED_DEFAULT, detail, old.default, new.default)
        old_names = {parameter.name for parameter in old_function.parameters}
        for new in new_function.parameters:
            if new.name in old_names:
                continue
            if new.required:
                detail = f"required {_label(new)} was added"
                broke(BreakageKind.PARAMETER_ADDED_REQUIRED, detail, None, new.name)
            else:
                self._add(
                    "parameter-added-optional",
                    new_function.path,
                    f"optional {_label(new)} was added",
                )

    def _returns(self, old_function: ApiObject, new_function: ApiObject) -> None:
        # griffe 2.x only compares presence: an annotation that disappears breaks; one that
        # appears, or changes, does not (griffe leaves comparing types to a future version).
        if old_function.returns is not None and new_function.returns is None:
            self.breaking.append(
                Breakage(
                    BreakageKind.RETURN_CHANGED_TYPE,
                    new_function.path,
                    f"return annotation '{old_function.returns}' was removed",
                    old=old_function.returns,
                    location=new_function.location,
                )
            )

    def _add(self, kind: AdditionKind, path: str, detail: str) -> None:
        self.additions.setdefault((kind, path, detail), Addition(kind, path, detail))


_POSITIONAL = frozenset({ParameterKind.POSITIONAL_ONLY, ParameterKind.POSITIONAL_OR_KEYWORD})


def _absorbed(removed: Parameter, new_kinds: set[ParameterKind]) -> bool:
    """Whether the new signature still accepts a removed parameter: a keyword-only one through
    ``**kwargs``, a positional-only one through ``*args``, one that was both only through
    both (griffe's rules)."""
    var_positional = ParameterKind.VAR_POSITIONAL in new_kinds
    var_keyword = ParameterKind.VAR_KEYWORD in new_kinds
    match removed.kind:
        case ParameterKind.KEYWORD_ONLY:
            return var_keyword
        case ParameterKind.POSITIONAL_ONLY:
            return var_positional
        case ParameterKind.POSITIONAL_OR_KEYWORD:
            return var_positional and var_keyword
        case _:
            return False


def _incompatible_kinds(
    old: ParameterKind, new: ParameterKind, new_kinds: set[ParameterKind]
) -> bool:
    """griffe's list of kind changes that break a caller (``old`` differs from ``new``)."""
    return (
        (old is ParameterKind.POSITIONAL_ONLY and new is ParameterKind.KEYWORD_ONLY)
        or (old is ParameterKind.KEYWORD_ONLY and new is ParameterKind.POSITIONAL_ONLY)
        or (
            old is ParameterKind.POSITIONAL_OR_KEYWORD
            and new in (ParameterKind.POSITIONAL_ONLY, ParameterKind.KEYWORD_ONLY)
        )
        or (
            new is ParameterKind.VAR_KEYWORD
            and old is not ParameterKind.KEYWORD_ONLY
            and ParameterKind.VAR_POSITIONAL not in new_kinds
        )
        or (
            new is ParameterKind.VAR_POSITIONAL
            and old is not ParameterKind.POSITIONAL_ONLY
            and ParameterKind.VAR_KEYWORD not in new_kinds
        )
    )


def _is_public(owner: ApiObject, name: str, member: _Member) -> bool:
    """griffe's ``is_public`` for ``member``, named ``name`` in the resolved module or class
    ``owner``.

    Unlike ``Api.is_public`` (a path's rule), a submodule ignores its package's ``__all__``,
    an empty ``__all__`` counts as none, and an imported name is private unless exported.
    """
    if member.obj.kind is Kind.MODULE and not name.startswith("_"):
        return True
    if owner.kind is Kind.MODULE and owner.exports:
        return name in owner.exports
    special = name.startswith("__") and name.endswith("__")
    if name.startswith("_") and not special:
        return False
    return member.inherited or member.obj.kind is not Kind.ALIAS


class _Tree:
    """One version's objects seen as griffe sees them: members with inherited ones, and
    what a name describes."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._linearizations: dict[str, tuple[ApiObject, ...] | None] = {}

    def members(self, owner: ApiObject) -> dict[str, _Member]:
        """``owner``'s members by name; a class's inherited ones first, as griffe lists them."""
        own = {name: _Member(obj, inherited=False) for name, obj in self._own(owner)}
        if owner.kind is not Kind.CLASS:
            return own
        inherited: dict[str, _Member] = {}
        for base in reversed(self._linearization(owner)[1:]):
            for name, obj in self._own(base):
                if name not in own:
                    inherited[name] = _Member(obj, inherited=True)
        return {**inherited, **own}

    def _own(self, owner: ApiObject) -> Iterator[tuple[str, ApiObject]]:
        """``Api.members`` with names, for an owner already resolved (the walk's hot path)."""
        for name in owner.members:
            member = self.api.get(f"{owner.path}.{name}")
            if member is not None:
                yield name, member

    def describe(self, obj: ApiObject) -> str:
        """What ``obj`` is, in a word, for a detail sentence."""
        target = self.api.resolve(obj.path) or obj
        if target.kind is Kind.ALIAS:
            return "name"
        parent = self.api.get(target.parent or "")
        if target.kind is Kind.FUNCTION and parent is not None and parent.kind is Kind.CLASS:
            return "method"
        return str(target.kind)

    def _linearization(self, cls: ApiObject) -> tuple[ApiObject, ...]:
        """``cls`` and its bases inside the version in C3 order (Python's MRO); just ``cls``
        when the hierarchy has a cycle or no consistent order (griffe gives up there too)."""
        try:
            return self._mro(cls, ())
        except _NoLinearization:
            return (cls,)

    def _mro(self, cls: ApiObject, below: tuple[str, ...]) -> tuple[ApiObject, ...]:
        """``below``: the classes whose MRO needs this one; a base among them is a cycle, and
        ``cls`` is on it, so a failure is remembered for ``cls`` whoever asks."""
        if cls.path in self._linearizations:
            known = self._linearizations[cls.path]
            if known is None:
                raise _NoLinearization
            return known
        try:
            chain = (*below, cls.path)
            bases = list(self._bases(cls))
            if any(base.path in chain for base in bases):
                raise _NoLinearization
            lines = [list(self._mro(base, chain)) for base in bases]
            found = (cls, *_c3_merge([*lines, bases]))
        except _NoLinearization:
            self._linearizations[cls.path] = None
            raise
        self._linearizations[cls.path] = found
        return found

    def _bases(self, cls: ApiObject) -> Iterator[ApiObject]:
        """The classes inside the version that ``cls``'s base expressions name."""
        for text in cls.bases:
            # ``Generic[T]`` and ``namedtuple("P", "x y")`` name what precedes the bracket.
            dotted = text.split("[", 1)[0].split("(", 1)[0].strip()
            parts = dotted.split(".")
            if not all(part.isidentifier() for part in parts):
                continue
            base = self._lookup(cls.parent, parts)
            if base is not None and base.kind is Kind.CLASS:
                yield base

    def _lookup(self, scope: str | None, parts: list[str]) -> ApiObject | None:
        """A dotted name as the code at ``scope`` sees it: the first part in the nearest
        enclosing scope that binds it (else as an absolute path), the rest as attributes."""
        found: ApiObject | None = None
        while scope and found is None:
            found = self.api.resolve(f"{scope}.{parts[0]}")
            scope = scope.rpartition(".")[0]
        found = found or self.api.resolve(parts[0])
        for part in parts[1:]:
            if found is None or found.kind is Kind.ALIAS:
                return None
            found = self.api.resolve(f"{found.path}.{part}")
        return found


class _NoLinearization(Exception):
    pass


def _c3_merge(sequences: list[list[ApiObject]]) -> list[ApiObject]:
    """Python's C3 merge: repeatedly take the first head that no sequence has in its tail."""
    remaining = [sequence for sequence in sequences if sequence]
    merged: list[ApiObject] = []
    while remaining:
        tails = {obj.path for sequence in remaining for obj in sequence[1:]}
        head = next((s[0] for s in remaining if s[0].path not in tails), None)
        if head is None:
            raise _NoLinearization
        merged.append(head)
        remaining = [rest for s in remaining if (rest := [o for o in s if o.path != head.path])]
    return merged


def _label(parameter: Parameter) -> str:
    """``parameter 'timeout'``, ``parameter '*args'``."""
    stars = {ParameterKind.VAR_POSITIONAL: "*", ParameterKind.VAR_KEYWORD: "**"}
    return f"parameter '{stars.get(parameter.kind, '')}{parameter.name}'"
