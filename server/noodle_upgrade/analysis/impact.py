"""Which uses of a component a version breaks: ``check_uses`` holds the uses that
``analysis.uses`` found against the version's ``Api`` (pure).

**Checking** walks the chain from ``Api.handle_root`` (an instance for a factory entry:
its methods are bound; nothing is checked when the factory's class is unknown) through
modules and classes (inherited members included, as far as the bases are inside the
version). Whatever the analysis cannot see through is accepted, never reported: an
import from outside the version, a property, a function with a decorator that may change
its signature, a class with a decorator (a ``@dataclass`` writes ``__init__``), a
``__getattr__``, a base class from elsewhere. A name missing from a factory's instance
is reported only when it is called (a method): extraction sees the attributes
``__init__`` sets, and other methods may set more. A call that unpacks ``*args`` or
``**kwargs`` has its arity unknown: only its explicit keywords are checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from noodle_upgrade.analysis.api import Api, ApiObject, Kind, Parameter, ParameterKind
from noodle_upgrade.analysis.uses import COMPREHENSIONS, Span, Use, decorator_name

# Finding codes (stable: the CLI's --json and the editor's diagnostics carry them).
REMOVED = "removed"
UNKNOWN_KEYWORD = "unknown-keyword"
MISSING_ARGUMENT = "missing-argument"
TOO_MANY_ARGUMENTS = "too-many-arguments"
NOT_CALLABLE = "not-callable"


@dataclass(frozen=True)
class Finding:
    """A use that the checked version breaks, at the name to underline."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    component: str
    message: str
    code: str


# Decorators that keep a function's signature, by their last dotted name; any other may
# change it, and the function's calls are not checked.
_SIGNATURE_KEEPING = frozenset(
    {"staticmethod", "classmethod", "abstractmethod", "cache", "lru_cache", "override", "final"}
)
# Decorators that make a function an attribute (``x.setter`` is named ``setter``).
_PROPERTY_LIKE = frozenset({"property", "cached_property", "setter", "getter", "deleter"})
# Bases that add no public member and no constructor, as ``Api.resolve`` names them.
_TRANSPARENT_BASES = frozenset({"object", "abc.ABC", "typing.Generic", "typing_extensions.Generic"})
_POSITIONAL = (ParameterKind.POSITIONAL_ONLY, ParameterKind.POSITIONAL_OR_KEYWORD)
_BY_KEYWORD = (ParameterKind.POSITIONAL_OR_KEYWORD, ParameterKind.KEYWORD_ONLY)
# What ``object.__init__`` accepts: a class without ``__init__`` takes no argument.
_OBJECT_INIT = (Parameter("self", ParameterKind.POSITIONAL_ONLY),)


def check_uses(uses: Iterable[Use], api: Api) -> list[Finding]:
    """The findings of the uses of ``api.component`` that its version ``api.version``
    breaks, in the order of ``uses`` (uses of other components are ignored)."""
    checker = _Checker(api)
    return [
        finding for use in uses if use.component == api.component for finding in checker.check(use)
    ]


@dataclass(frozen=True)
class _Target:
    """What an attribute chain has reached so far."""

    obj: ApiObject
    instance: bool = False  # an instance of the class ``obj`` (a factory's handle)
    bound: bool = False  # a function called without its first parameter


class _Unknown:
    """The analysis cannot tell what the name is: nothing is reported."""


class _Missing:
    """The name certainly does not exist."""


_UNKNOWN = _Unknown()
_MISSING = _Missing()
_Lookup = _Target | _Unknown | _Missing


class _Checker:
    def __init__(self, api: Api) -> None:
        self._api = api
        self._label = f"{api.component} {api.version}"
        root = api.resolve(api.handle_root or api.root)
        # A factory whose class the analysis could not tell: its instance is opaque.
        opaque = api.factory is not None and (root is None or root.kind is not Kind.CLASS)
        self._root = None if opaque else root

    def check(self, use: Use) -> list[Finding]:
        if self._root is None:
            return []
        target = _Target(self._root, instance=self._root.kind is Kind.CLASS)
        for index, name in enumerate(use.chain):
            if _is_dunder(name):  # the handle's own (``__noodle_version__``) or Python's
                return []
            called = use.is_call and index == len(use.chain) - 1
            found = self._member(target, name, called=called)
            if isinstance(found, _Missing):
                return [self._removed(use, index, called=called)]
            if isinstance(found, _Unknown):
                return []
            target = found
        return self._check_call(use, target) if use.is_call else []

    def _removed(self, use: Use, index: int, *, called: bool) -> Finding:
        what = "function" if called else "attribute"
        dotted = ".".join(use.chain[: index + 1])
        message = f"{self._label} has no {what} '{dotted}'"
        return _finding(use, use.spans[index], REMOVED, message)

    # -- names -----------------------------------------------------------------------------

    def _member(self, target: _Target, name: str, *, called: bool) -> _Lookup:
        owner = target.obj
        if owner.kind is Kind.MODULE:
            if self._api.get(f"{owner.path}.{name}") is not None:
                return self._reached(f"{owner.path}.{name}", instance=False)
            return _UNKNOWN if "__getattr__" in owner.members else _MISSING
        if owner.kind is Kind.CLASS:
            classes, complete = self._ancestry(owner)
            for cls in classes:
                if self._api.get(f"{cls.path}.{name}") is not None:
                    return self._reached(f"{cls.path}.{name}", instance=target.instance)
            hooked = any(
                hook in cls.members
                for cls in classes
                for hook in ("__getattr__", "__getattribute__")
            )
            # An instance may get attributes in any method; extraction sees __init__'s only.
            # A name that is called is a method, and methods are all seen.
            unseen_attribute = target.instance and not called
            return _MISSING if complete and not hooked and not unseen_attribute else _UNKNOWN
        return _UNKNOWN  # attributes of functions, data and imports are beyond the analysis

    def _reached(self, path: str, *, instance: bool) -> _Lookup:
        member = self._api.resolve(path)
        if member is None or member.kind is Kind.ALIAS:
            return _UNKNOWN
        if member.kind is not Kind.FUNCTION:
            return _Target(member)
        decorators = _decorator_names(member)
        if decorators & _PROPERTY_LIKE:
            return _UNKNOWN
        bound = "classmethod" in decorators or (instance and "staticmethod" not in decorators)
        return _Target(member, bound=bound)

    def _ancestry(self, cls: ApiObject) -> tuple[list[ApiObject], bool]:
        """The class and its bases inside the version, depth first (close enough to the
        MRO to find a member), and whether every base was known."""
        classes: list[ApiObject] = []
        return classes, self._collect_ancestry(cls, classes)

    def _collect_ancestry(self, cls: ApiObject, classes: list[ApiObject]) -> bool:
        if any(known.path == cls.path for known in classes):
            return True
        classes.append(cls)
        complete = True
        for text in cls.bases:
            base = self._base(cls, text)
            if isinstance(base, ApiObject):
                complete = self._collect_ancestry(base, classes) and complete
            elif base is _UNKNOWN:
                complete = False
        return complete

    def _base(self, cls: ApiObject, text: str) -> ApiObject | _Unknown | None:
        """The class a base expression names; None for a transparent base."""
        parts = text.partition("[")[0].strip().split(".")
        if parts == ["object"]:
            return None
        found = self._api.resolve(f"{self._module_of(cls)}.{parts[0]}")
        rest = parts[1:]
        while rest and found is not None and found.kind is not Kind.ALIAS:
            found = self._api.resolve(f"{found.path}.{rest.pop(0)}")
        if found is None:
            return _UNKNOWN
        if found.kind is Kind.ALIAS:
            outside = ".".join([found.target or "", *rest])
            return None if outside in _TRANSPARENT_BASES else _UNKNOWN
        return found if found.kind is Kind.CLASS else _UNKNOWN

    def _module_of(self, obj: ApiObject) -> str:
        path = obj.parent
        while path is not None:
            owner = self._api.get(path)
            if owner is not None and owner.kind is Kind.MODULE:
                return path
            path = path.rpartition(".")[0] or None
        return self._api.root

    # -- calls -----------------------------------------------------------------------------

    def _check_call(self, use: Use, target: _Target) -> list[Finding]:
        called = target.obj
        dotted = ".".join(use.chain)
        if called.kind is Kind.MODULE or (
            called.kind is Kind.ATTRIBUTE and _is_literal(called.value)
        ):
            what = "a module" if called.kind is Kind.MODULE else "an attribute"
            message = f"'{dotted}' in {self._label} is {what}, not callable"
            return [_finding(use, use.span, NOT_CALLABLE, message)]
        if called.kind is Kind.CLASS:
            parameters = self._constructor(called)
            bound = True
        elif called.kind is Kind.FUNCTION and _decorator_names(called) <= _SIGNATURE_KEEPING:
            parameters, bound = called.parameters, target.bound
        else:
            return []
        if parameters is None:
            return []
        return _Call(use, f"{dotted}() in {self._label}").check(parameters, bound=bound)

    def _constructor(self, cls: ApiObject) -> tuple[Parameter, ...] | None:
        """The parameters of the ``__init__`` a call of ``cls`` runs, if known."""
        classes, complete = self._ancestry(cls)
        if cls.decorators or not complete:
            return None
        for owner in classes:
            if "__new__" in owner.members:
                return None
            if "__init__" in owner.members:
                init = self._api.resolve(f"{owner.path}.__init__")
                known = init is not None and init.kind is Kind.FUNCTION
                if known and init is not None and _decorator_names(init) <= _SIGNATURE_KEEPING:
                    return init.parameters
                return None
        return _OBJECT_INIT


@dataclass(frozen=True)
class _Call:
    """One call held against one signature; ``name`` says what is called, where."""

    use: Use
    name: str

    def check(self, parameters: Sequence[Parameter], *, bound: bool) -> list[Finding]:
        if bound and parameters and parameters[0].kind in _POSITIONAL:
            parameters = parameters[1:]
        findings = self._keywords(parameters)
        if not (self.use.star_args or self.use.star_kwargs):
            findings += self._arity(parameters)
        return findings

    def _keywords(self, parameters: Sequence[Parameter]) -> list[Finding]:
        if any(p.kind is ParameterKind.VAR_KEYWORD for p in parameters):
            return []
        by_name = {p.name: p for p in parameters}
        findings = []
        spans = self.use.keyword_spans or (self.use.span,) * len(self.use.keywords)
        for keyword, span in zip(self.use.keywords, spans, strict=True):
            parameter = by_name.get(keyword)
            if parameter is None or parameter.kind not in _BY_KEYWORD:
                detail = "no parameter" if parameter is None else "a positional-only parameter"
                message = f"{self.name} has {detail} '{keyword}'"
                findings.append(_finding(self.use, span, UNKNOWN_KEYWORD, message))
        return findings

    def _arity(self, parameters: Sequence[Parameter]) -> list[Finding]:
        findings = []
        positional = [p for p in parameters if p.kind in _POSITIONAL]
        given = self.use.positional
        variadic = any(p.kind is ParameterKind.VAR_POSITIONAL for p in parameters)
        if given > len(positional) and not variadic:
            takes = _count(len(positional), "positional argument")
            message = f"{self.name} takes {takes}, {given} given"
            findings.append(_finding(self.use, self.use.span, TOO_MANY_ARGUMENTS, message))
        by_keyword = {p.name for p in parameters if p.kind in _BY_KEYWORD}
        covered = {p.name for p in positional[:given]} | (by_keyword & set(self.use.keywords))
        missing = [p for p in parameters if p.required and p.name not in covered]
        if missing:
            names = ", ".join(f"'{p.name}'" for p in missing)
            noun = "argument" if len(missing) == 1 else "arguments"
            message = f"{self.name} is missing required {noun} {names}"
            findings.append(_finding(self.use, self.use.span, MISSING_ARGUMENT, message))
        return findings


def _finding(use: Use, span: Span, code: str, message: str) -> Finding:
    return Finding(
        use.file,
        span.line,
        span.column,
        span.end_line,
        span.end_column,
        use.component,
        message,
        code,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _decorator_names(function: ApiObject) -> frozenset[str]:
    return frozenset(decorator_name(text) for text in function.decorators)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


_LITERALS = (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set, *COMPREHENSIONS)


def _is_literal(value: str | None) -> bool:
    """Whether an attribute's value is a display or a constant: certainly not callable
    (anything else, such as ``make_parser()``, might be)."""
    if value is None:
        return False
    try:
        expression = ast.parse(value, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(expression, _LITERALS)
