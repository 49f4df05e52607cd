"""A component version's public API, as static analysis sees it (the code never runs).

The model is flat: every module, class, function, method and attribute of the version
is one ``ApiObject`` under its dotted path (``tomli._parser.loads``), and a name bound by
an import (``from ._parser import loads`` in ``tomli/__init__.py``) is an ``ALIAS``
whose ``target`` is the path it names. ``Api.resolve`` follows aliases inside the
version; a target outside it (``typing.Any``) stays an alias.

Who builds and reads it:

- ``analysis.extract.extract_api(folder, entry) -> Api`` parses a version folder with
  ``ast``;
- ``analysis.diff.diff_api(old, new) -> ApiDiff`` compares two versions with griffe's
  breakage kinds and suggests a bump;
- ``analysis.impact`` checks a workspace's call sites against an ``Api``.

Which objects are public is the diff's business (``analysis.diff``, griffe's rules);
the model keeps every object, private ones included, because call sites in a workspace
may reach them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    MODULE = "module"
    CLASS = "class"
    FUNCTION = "function"  # methods too: a function whose parent is a class
    ATTRIBUTE = "attribute"
    ALIAS = "alias"


class ParameterKind(StrEnum):
    """Python's parameter kinds, spelled as griffe spells them."""

    POSITIONAL_ONLY = "positional-only"
    POSITIONAL_OR_KEYWORD = "positional or keyword"
    VAR_POSITIONAL = "variadic positional"
    KEYWORD_ONLY = "keyword-only"
    VAR_KEYWORD = "variadic keyword"


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: ParameterKind
    default: str | None = None  # the default's source text (ast.unparse); None: none
    annotation: str | None = None

    @property
    def required(self) -> bool:
        variadic = self.kind in (ParameterKind.VAR_POSITIONAL, ParameterKind.VAR_KEYWORD)
        return self.default is None and not variadic


@dataclass(frozen=True)
class Location:
    """Where an object is defined: a POSIX path relative to the version folder, and the
    1-based line of its definition."""

    file: str
    line: int


@dataclass(frozen=True)
class ApiObject:
    path: str  # dotted, from the entry module: "tomli.loads", "parser.Parser.parse"
    kind: Kind
    location: Location | None = None
    parameters: tuple[Parameter, ...] = ()  # FUNCTION: in order, self/cls included
    returns: str | None = None  # FUNCTION: the return annotation's source text
    decorators: tuple[str, ...] = ()  # FUNCTION, CLASS: source text of each decorator
    bases: tuple[str, ...] = ()  # CLASS: source text of each base expression
    value: str | None = None  # ATTRIBUTE: the assigned value's source text
    annotation: str | None = None  # ATTRIBUTE: its annotation's source text
    members: tuple[str, ...] = ()  # MODULE, CLASS: names of direct members, in order
    exports: tuple[str, ...] | None = None  # MODULE: __all__ when it is a literal
    target: str | None = None  # ALIAS: the dotted path it names

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def parent(self) -> str | None:
        parent = self.path.rpartition(".")[0]
        return parent or None


@dataclass(frozen=True)
class Api:
    """One version's objects by path; ``root`` is the entry module's path.

    ``handle_root`` is what a ``Handle`` of the component reaches: the entry module, or
    for a factory entry (``module:create``) the class the factory returns when the
    analysis can tell (else the module). ``factory`` names a factory entry's factory
    (``create``): with it, a ``handle_root`` that is the module means "an instance of a
    class the analysis cannot tell", not the module itself.
    """

    component: str
    version: str
    root: str
    objects: Mapping[str, ApiObject] = field(default_factory=dict)
    handle_root: str | None = None
    factory: str | None = None

    def get(self, path: str) -> ApiObject | None:
        return self.objects.get(path)

    def resolve(self, path: str) -> ApiObject | None:
        """The object at ``path``, aliases followed while they stay inside the version
        (a cycle or a dangling alias gives the last alias reached)."""
        seen: set[str] = set()
        found = self.objects.get(path)
        while found is not None and found.kind is Kind.ALIAS and found.target not in seen:
            seen.add(found.path)
            target = self.objects.get(found.target or "")
            if target is None:
                return found
            found = target
        return found

    def members(self, path: str) -> Iterator[ApiObject]:
        """The direct members of the module or class at ``path``, in order."""
        owner = self.resolve(path)
        if owner is None:
            return
        for name in owner.members:
            member = self.objects.get(f"{owner.path}.{name}")
            if member is not None:
                yield member
