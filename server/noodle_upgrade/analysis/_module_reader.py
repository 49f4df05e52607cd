"""The statements of one parsed module, turned into draft namespaces (``extract``'s half
that knows Python's binding rules; the other half finds files and assembles the ``Api``).

Only what binds a name at module or class level is read: ``def``, ``class``,
assignments, imports, and the bodies of the compound statements around them (every
branch of an ``if``/``try``, ``if TYPE_CHECKING:`` included, and loops, ``with`` and
``match``; not a script's ``if __name__ == "__main__":``), plus ``self.x = …`` in a
class's ``__init__``. A name bound twice keeps its first position among the members and its
last binding, as in a Python namespace and in griffe; a property keeps the getter's
definition when its setter or deleter follows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from noodle_upgrade.analysis.api import ApiObject, Kind, Location, Parameter, ParameterKind

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

_PROPERTY_DECORATORS = frozenset({"property", "cached_property", "abstractproperty"})
_PROPERTY_ACCESSORS = frozenset({"getter", "setter", "deleter"})
_BLOCKS = (
    ast.If,
    ast.Try,
    ast.TryStar,
    ast.With,
    ast.AsyncWith,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Match,
)


@dataclass
class Scope:
    """A module's or a class's namespace while it is read: members by name, in the
    order their names were first bound."""

    path: str
    members: dict[str, ApiObject | ClassDraft] = field(default_factory=dict)

    def child(self, name: str) -> str:
        return f"{self.path}.{name}"

    def emit(self, objects: dict[str, ApiObject]) -> None:
        """Add every member, nested class members included, to ``objects``."""
        for member in self.members.values():
            if isinstance(member, ClassDraft):
                objects[member.head.path] = replace(
                    member.head, members=tuple(member.scope.members)
                )
                member.scope.emit(objects)
            else:
                objects[member.path] = member


@dataclass
class ClassDraft:
    head: ApiObject  # the class without its members, which ``scope`` collects
    scope: Scope


@dataclass
class ModuleDraft:
    path: str
    file: str  # POSIX, relative to the version folder
    is_package: bool
    scope: Scope
    exports: list[str] | None = None
    submodules: list[str] = field(default_factory=list)  # a package's, by name

    @property
    def package_parts(self) -> list[str]:
        """The package relative imports start from ("" is the version folder)."""
        parts = self.path.split(".")
        return parts if self.is_package else parts[:-1]

    def public_names(self) -> list[str]:
        """What ``from <this module> import *`` binds."""
        if self.exports is not None:
            return list(self.exports)
        return [name for name in self.scope.members if not name.startswith("_")]

    def module_object(self) -> ApiObject:
        names = [*self.scope.members, *(n for n in self.submodules if n not in self.scope.members)]
        return ApiObject(
            self.path,
            Kind.MODULE,
            Location(self.file, 1),
            members=tuple(names),
            exports=None if self.exports is None else tuple(dict.fromkeys(self.exports)),
        )


class VersionModules(Protocol):
    """What reading one module needs from the rest of the version."""

    def is_inside(self, module: str) -> bool:
        """Whether an absolute import of ``module`` names this version's own code."""
        ...

    def reach(self, path: str) -> None:
        """Note that ``path`` is imported; if it is a module of the version, read it."""
        ...

    def star_names(self, module: str) -> list[str] | None:
        """The names ``from module import *`` binds, or None outside the version."""
        ...


class ModuleReader:
    """Reads one module's statements into its ``ModuleDraft``; ``functions`` collects
    the module-level function nodes by path (the factory analysis reads their returns)."""

    def __init__(self, draft: ModuleDraft, version: VersionModules) -> None:
        self._draft = draft
        self._version = version
        self.functions: dict[str, FunctionNode] = {}

    def read(self, tree: ast.Module) -> None:
        self._body(self._draft.scope, tree.body)

    def _location(self, node: ast.stmt) -> Location:
        return Location(self._draft.file, node.lineno)

    def _body(self, scope: Scope, statements: Sequence[ast.stmt]) -> None:
        for node in statements:
            self._statement(scope, node)

    def _statement(self, scope: Scope, node: ast.stmt) -> None:
        if isinstance(node, FunctionNode):
            self._function(scope, node)
        elif isinstance(node, ast.ClassDef):
            self._class(scope, node)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self._assign(scope, node, target, node.value, None)
        elif isinstance(node, ast.AnnAssign):
            self._assign(scope, node, node.target, node.value, _text(node.annotation))
        elif isinstance(node, ast.AugAssign):
            self._augment_all(scope, node)
        elif isinstance(node, ast.Expr):
            self._extend_all(scope, node.value)
        elif isinstance(node, ast.Import):
            self._import(scope, node)
        elif isinstance(node, ast.ImportFrom):
            self._import_from(scope, node)
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            self._body(scope, node.orelse)  # a script's code: never runs on import
        elif isinstance(node, _BLOCKS):
            for block in _blocks(node):
                self._body(scope, block)

    def _function(self, scope: Scope, node: FunctionNode) -> None:
        decorators = tuple(_text(d) for d in node.decorator_list)
        path = scope.child(node.name)
        kinds = {d.rpartition(".")[2] for d in decorators}
        if kinds & _PROPERTY_DECORATORS or kinds & _PROPERTY_ACCESSORS:
            existing = scope.members.get(node.name)
            accessor = bool(kinds & _PROPERTY_ACCESSORS)
            if accessor and isinstance(existing, ApiObject) and existing.kind is Kind.ATTRIBUTE:
                return  # the getter already defines the property
            annotation = None if node.returns is None else _text(node.returns)
            prop = ApiObject(
                path,
                Kind.ATTRIBUTE,
                self._location(node),
                decorators=decorators,
                annotation=annotation,
            )
            scope.members[node.name] = prop
            return
        scope.members[node.name] = ApiObject(
            path,
            Kind.FUNCTION,
            self._location(node),
            parameters=_parameters(node.args),
            returns=None if node.returns is None else _text(node.returns),
            decorators=decorators,
        )
        if scope is self._draft.scope:
            self.functions[path] = node
        elif node.name == "__init__" and node.args.args:
            self._instance_attributes(scope, node)

    def _class(self, scope: Scope, node: ast.ClassDef) -> None:
        path = scope.child(node.name)
        head = ApiObject(
            path,
            Kind.CLASS,
            self._location(node),
            decorators=tuple(_text(d) for d in node.decorator_list),
            bases=tuple(_text(b) for b in node.bases),
        )
        draft = ClassDraft(head, Scope(path))
        scope.members[node.name] = draft
        self._body(draft.scope, node.body)

    def _instance_attributes(self, scope: Scope, init: FunctionNode) -> None:
        """``self.x = …`` (also annotated, also in tuples) anywhere in ``__init__``'s
        own body makes ``x`` an attribute of the class."""
        instance = init.args.args[0].arg
        for node in _simple_statements(init.body):
            if isinstance(node, ast.Assign):
                pairs = [pair for target in node.targets for pair in _targets(target, node.value)]
                annotation = None
            elif isinstance(node, ast.AnnAssign):
                pairs = list(_targets(node.target, node.value))
                annotation = _text(node.annotation)
            else:
                continue
            for target, value in pairs:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == instance
                ):
                    self._bind_attribute(scope, node, target.attr, value, annotation)

    def _assign(
        self,
        scope: Scope,
        node: ast.Assign | ast.AnnAssign,
        target: ast.expr,
        value: ast.expr | None,
        annotation: str | None,
    ) -> None:
        for leaf, leaf_value in _targets(target, value):
            if isinstance(leaf, ast.Name):
                self._bind_attribute(scope, node, leaf.id, leaf_value, annotation)
        if scope is self._draft.scope and isinstance(target, ast.Name) and target.id == "__all__":
            self._draft.exports = None if value is None else _literal_names(value)

    def _bind_attribute(
        self,
        scope: Scope,
        node: ast.stmt,
        name: str,
        value: ast.expr | None,
        annotation: str | None,
    ) -> None:
        attribute = ApiObject(
            scope.child(name),
            Kind.ATTRIBUTE,
            self._location(node),
            value=None if value is None else _text(value),
            annotation=annotation,
        )
        existing = scope.members.get(name)
        if isinstance(existing, ApiObject) and existing.kind is Kind.ATTRIBUTE:
            # ``x: int`` then ``x = 0`` (or the reverse) describe one attribute, as in griffe
            attribute = replace(
                attribute,
                value=attribute.value if value is not None else existing.value,
                annotation=annotation or existing.annotation,
            )
        scope.members[name] = attribute

    def _augment_all(self, scope: Scope, node: ast.AugAssign) -> None:
        target = node.target
        if scope is self._draft.scope and isinstance(target, ast.Name) and target.id == "__all__":
            added = _literal_names(node.value) if isinstance(node.op, ast.Add) else None
            self._add_exports(added)

    def _extend_all(self, scope: Scope, call: ast.expr) -> None:
        """``__all__.extend([...])`` and ``__all__.append("x")``."""
        if not (
            scope is self._draft.scope
            and isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "__all__"
            and call.func.attr in ("extend", "append")
            and len(call.args) == 1
            and not call.keywords
        ):
            return
        argument = call.args[0]
        if call.func.attr == "extend":
            self._add_exports(_literal_names(argument))
        elif isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            self._add_exports([argument.value])
        else:
            self._add_exports(None)

    def _add_exports(self, names: list[str] | None) -> None:
        exports = self._draft.exports
        self._draft.exports = None if exports is None or names is None else [*exports, *names]

    def _import(self, scope: Scope, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname is None:  # ``import a.b`` binds ``a``
                name = target = alias.name.partition(".")[0]
            else:
                name, target = alias.asname, alias.name
            self._bind_alias(scope, node, name, target)
            if self._version.is_inside(alias.name):
                self._version.reach(alias.name)

    def _import_from(self, scope: Scope, node: ast.ImportFrom) -> None:
        module = self._from_module(node)
        if module is None:
            return  # a relative import that climbs out of the version folder
        inside = node.level > 0 or self._version.is_inside(module)
        if inside and module:
            self._version.reach(module)
        for alias in node.names:
            if alias.name == "*":
                self._star(scope, node, module)
                continue
            target = f"{module}.{alias.name}" if module else alias.name
            self._bind_alias(scope, node, alias.asname or alias.name, target)
            if inside:
                self._version.reach(target)  # ``from . import sub`` names a module

    def _from_module(self, node: ast.ImportFrom) -> str | None:
        """The absolute (version-relative) module an ``import from`` reads."""
        if node.level == 0:
            return node.module or ""
        package = self._draft.package_parts
        climb = node.level - 1
        if climb > len(package):
            return None
        parts = package[: len(package) - climb]
        if node.module:
            parts.extend(node.module.split("."))
        return ".".join(parts)

    def _star(self, scope: Scope, node: ast.ImportFrom, module: str) -> None:
        inside = node.level > 0 or self._version.is_inside(module)
        names = self._version.star_names(module) if inside else None
        for name in names or ():
            self._bind_alias(scope, node, name, f"{module}.{name}" if module else name)

    def _bind_alias(self, scope: Scope, node: ast.stmt, name: str, target: str) -> None:
        path = scope.child(name)
        if path == target:
            return  # ``from . import sub`` in ``pkg/__init__.py``: the submodule itself
        scope.members[name] = ApiObject(path, Kind.ALIAS, self._location(node), target=target)


def _text(node: ast.AST) -> str:
    """``ast.unparse(node)``, with a shortcut for the plain names that most
    annotations, defaults and bases are (unparsing is the costliest step after parsing)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and type(node.value) in _PLAIN_CONSTANTS:
        return repr(node.value)  # what ast.unparse gives for these, far cheaper
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return ast.unparse(node)


_PLAIN_CONSTANTS = (int, float, bool, type(None), bytes)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists nested in a compound statement, in source order."""
    if isinstance(node, ast.Try | ast.TryStar):
        yield node.body
        for handler in node.handlers:
            yield handler.body
        yield node.orelse
        yield node.finalbody
    elif isinstance(node, ast.Match):
        for case in node.cases:
            yield case.body
    elif isinstance(node, ast.If | ast.For | ast.AsyncFor | ast.While):
        yield node.body
        yield node.orelse
    elif isinstance(node, ast.With | ast.AsyncWith):
        yield node.body


def _is_main_guard(test: ast.expr) -> bool:
    """``if __name__ == "__main__":``"""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _simple_statements(statements: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements of a function's own body, through nested blocks but not into nested
    functions or classes (their ``self`` is another object)."""
    for node in statements:
        if isinstance(node, _BLOCKS):
            for block in _blocks(node):
                yield from _simple_statements(block)
        elif not isinstance(node, FunctionNode | ast.ClassDef):
            yield node


def _targets(
    target: ast.expr, value: ast.expr | None
) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    """The leaf targets of an assignment, each with the part of the value it receives:
    ``a, b = 1, 2`` pairs ``a`` with ``1``; when the shapes differ, every leaf gets the
    whole value."""
    if isinstance(target, ast.Starred):
        yield target.value, value
    elif isinstance(target, ast.Tuple | ast.List):
        values: list[ast.expr | None] = [value] * len(target.elts)
        if (
            isinstance(value, ast.Tuple | ast.List)
            and len(value.elts) == len(target.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        ):
            values = list(value.elts)
        for element, part in zip(target.elts, values, strict=True):
            yield from _targets(element, part)
    else:
        yield target, value


def _literal_names(node: ast.expr) -> list[str] | None:
    """The strings of a list/tuple literal (or a ``+`` of such), else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_names(node.left), _literal_names(node.right)
        return None if left is None or right is None else [*left, *right]
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    names = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return names if len(names) == len(node.elts) else None


def _parameters(args: ast.arguments) -> tuple[Parameter, ...]:
    positional = [
        *((a, ParameterKind.POSITIONAL_ONLY) for a in args.posonlyargs),
        *((a, ParameterKind.POSITIONAL_OR_KEYWORD) for a in args.args),
    ]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    parameters = [_parameter(a, kind, d) for (a, kind), d in zip(positional, defaults, strict=True)]
    if args.vararg is not None:
        parameters.append(_parameter(args.vararg, ParameterKind.VAR_POSITIONAL, None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parameters.append(_parameter(arg, ParameterKind.KEYWORD_ONLY, default))
    if args.kwarg is not None:
        parameters.append(_parameter(args.kwarg, ParameterKind.VAR_KEYWORD, None))
    return tuple(parameters)


def _parameter(arg: ast.arg, kind: ParameterKind, default: ast.expr | None) -> Parameter:
    return Parameter(
        arg.arg,
        kind,
        default=None if default is None else _text(default),
        annotation=None if arg.annotation is None else _text(arg.annotation),
    )
