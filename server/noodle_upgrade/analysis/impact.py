"""Which call sites in a workspace a component version breaks (``noodle impact``, the
editor's ``breaking-call`` diagnostics).

Two pure steps: ``find_uses`` reads Python source and finds the places where a component
is used through the runtime; ``check_uses`` holds them against a version's ``Api``.
``scan_workspace`` runs the first over a folder.

**What counts as a handle.** ``<anything>.load("name")`` with exactly one argument, a
string literal (also as ``name="name"``), is a handle of ``name`` (``rt.load``,
``self.rt.load``, ``runtime.load``); a ``.load`` of anything else (a variable, an
f-string, two arguments) is not. A handle is used directly
(``rt.load("parser").parse(...)``) or through what it is bound to:

- a name: ``parser = rt.load("parser")``, ``parser: Handle = ...``, ``p := ...``,
  aliases ``other = parser`` and casts ``cast(Parser, rt.load("parser"))``;
- an attribute of ``self``: ``self.parser = rt.load("parser")`` in any method, or
  ``parser = rt.load("parser")`` in the class body, makes ``self.parser`` a handle in
  every method of that class (``self`` is a method's first parameter, whatever its
  name). An attribute that the class binds to two different components is none.

**Scopes, deliberately simple.** Each function has its own scope; a name it does not
bind is looked up in the enclosing functions, then in the module (class bodies are not
visible from methods, as in Python). Within one scope, statements count in source order
and the last binding wins, whatever the control flow: any other binding of the name
(assignment, ``for`` target, import, ``def``, ``with … as``, ``except … as``,
parameter, ``del``) ends it. Function bodies are read after the scope that contains
them, so they see the module's final bindings. Comprehensions and lambdas get a scope of
their own. Nothing else is inferred: no types, no return values, no tuple unpacking, no
attributes of other objects, no subclasses.

**A use** is an attribute chain after a handle (``parser.parse``, ``parser.Parser.parse``),
called or not; positions are those of the names in the chain (1-based lines, 0-based
columns counted in characters), so an editor can underline the one at fault.

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
import io
import os
import re
import tokenize
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noodle_upgrade.analysis._collector import collector_paused
from noodle_upgrade.analysis.api import Api, ApiObject, Kind, Parameter, ParameterKind

# Folders a workspace scan never enters (dot-folders are skipped too).
SKIPPED_FOLDERS = frozenset({".venv", "venv", ".git", "node_modules", "__pycache__", ".noodle"})

# Finding codes (stable: the CLI's --json and the editor's diagnostics carry them).
REMOVED = "removed"
UNKNOWN_KEYWORD = "unknown-keyword"
MISSING_ARGUMENT = "missing-argument"
TOO_MANY_ARGUMENTS = "too-many-arguments"
NOT_CALLABLE = "not-callable"

# A file that does not contain this cannot load a component; it is not even parsed.
_LOAD_MARKER = ".load("


@dataclass(frozen=True)
class Span:
    """Where a name is in a file: 1-based lines, 0-based columns in characters."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Use:
    """One place a component is used through the runtime: ``chain`` is the attribute
    names after the handle and ``spans`` their positions, one each."""

    file: str
    component: str
    chain: tuple[str, ...]
    spans: tuple[Span, ...]
    is_call: bool = False
    positional: int = 0  # positional arguments written out (a ``*args`` not counted)
    keywords: tuple[str, ...] = ()  # keyword arguments written out, in order
    keyword_spans: tuple[Span, ...] = ()  # where each keyword's name is, in that order
    star_args: bool = False  # the call unpacks ``*args``
    star_kwargs: bool = False  # the call unpacks ``**kwargs``

    @property
    def span(self) -> Span:
        """The position of the last name: the one being used."""
        return self.spans[-1]

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    @property
    def end_line(self) -> int:
        return self.span.end_line

    @property
    def end_column(self) -> int:
        return self.span.end_column


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


@dataclass(frozen=True)
class Problem:
    """A file the scan could not read or parse (it goes on with the others)."""

    file: str
    message: str


@dataclass
class Scan:
    uses: list[Use] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Finding uses


def find_uses(source: str, file: str, components: Collection[str] | None = None) -> list[Use]:
    """The uses of components (of ``components`` only, when given) in one file's source,
    in source order; ``file`` is copied into each. A syntax error raises ``SyntaxError``
    (a source without ``.load(`` is not parsed at all)."""
    if _LOAD_MARKER not in source:
        return []
    tree = ast.parse(source, filename=file)
    finder = _UseFinder(file, components, _Columns(source))
    finder.read_module(tree)
    return finder.uses()


def scan_workspace(
    root: Path, components: Collection[str] | None = None, *, exclude: Iterable[Path] = ()
) -> Scan:
    """The uses in every ``*.py`` file under ``root`` (files named by their POSIX path
    relative to ``root``, in path order). Skipped: ``SKIPPED_FOLDERS``, dot-folders and
    the folders in ``exclude`` (the component store). A file that cannot be read,
    decoded or parsed becomes a ``Problem``."""
    scan = Scan()
    with collector_paused():
        for path, file in _python_files(root, exclude):
            _scan_file(scan, path, file, components)
    return scan


def _scan_file(scan: Scan, path: Path, file: str, components: Collection[str] | None) -> None:
    try:
        data = path.read_bytes()
        if _LOAD_MARKER.encode() not in data:
            return
        scan.uses.extend(find_uses(_decode(data), file, components))
    except OSError as exc:
        scan.problems.append(Problem(file, f"cannot read {file}: {exc.strerror or exc}"))
    except (UnicodeDecodeError, LookupError) as exc:
        scan.problems.append(Problem(file, f"cannot decode {file}: {exc}"))
    except (SyntaxError, ValueError) as exc:
        scan.problems.append(Problem(file, f"cannot parse {file}: {_syntax_message(exc)}"))
    except RecursionError:
        scan.problems.append(Problem(file, f"cannot analyse {file}: nested too deeply"))


def _python_files(root: Path, exclude: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Each ``*.py`` file to scan, with its POSIX path relative to ``root``."""
    top = os.path.realpath(root)
    excluded = {os.path.realpath(folder) for folder in exclude}
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and os.path.join(folder, name) not in excluded
        )
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(folder, name)
                yield path, path.relative_to(top).as_posix()


def _decode(data: bytes) -> str:
    """Source bytes as text, honouring a PEP 263 coding declaration."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def _syntax_message(exc: SyntaxError | ValueError) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f"line {exc.lineno}: {exc.msg}"
    return str(exc)


class _Columns:
    """Turns ``ast``'s columns (UTF-8 byte offsets) into character offsets."""

    def __init__(self, source: str) -> None:
        self._lines: list[bytes] | None = None
        if not source.isascii():
            self._lines = [line.encode() for line in re.split(r"\r\n|\r|\n", source)]

    def span(self, node: ast.Attribute) -> Span:
        """The attribute's name: the last token of the node."""
        line = node.end_lineno or node.lineno
        end = node.end_col_offset or 0
        start = end - len(node.attr.encode())
        return Span(line, self._chars(line, start), line, self._chars(line, end))

    def keyword(self, node: ast.keyword) -> Span:
        """A keyword argument's name: it starts the node (``strict=True``)."""
        start = node.col_offset
        end = start + len((node.arg or "").encode())
        return Span(
            node.lineno, self._chars(node.lineno, start), node.lineno, self._chars(node.lineno, end)
        )

    def _chars(self, line: int, offset: int) -> int:
        if self._lines is None:
            return offset
        return len(self._lines[line - 1][:offset].decode(errors="replace"))


@dataclass(eq=False)
class _Class:
    """A class being read: the handles its attributes were bound to."""

    attributes: dict[str, list[_Root]] = field(default_factory=dict)


@dataclass(frozen=True)
class _SelfOf:
    """The first parameter of a method of ``owner``."""

    owner: _Class


@dataclass(frozen=True)
class _AttributeOf:
    """``self.<name>`` in ``owner``: a handle if the class binds it to one (known once
    every method has been read)."""

    owner: _Class
    name: str


_Root = str | _AttributeOf  # what a handle expression is: a component, or a self attribute
_Binding = _Root | _SelfOf | None  # None: bound to something else


@dataclass(eq=False)
class _Scope:
    parent: _Scope | None
    owner: _Class | None = None  # set for a class body
    names: dict[str, _Binding] = field(default_factory=dict)

    def lookup(self, name: str) -> _Binding:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def function_parent(self) -> _Scope:
        """The scope a function defined here sees: class bodies are skipped."""
        scope = self
        while scope.owner is not None and scope.parent is not None:
            scope = scope.parent
        return scope


@dataclass(frozen=True)
class _Found:
    """A use whose root may still be a self attribute."""

    root: _Root
    chain: tuple[str, ...]
    spans: tuple[Span, ...]
    call: ast.Call | None


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


class _UseFinder:
    """One walk over a module (function bodies deferred until their scope is complete)."""

    def __init__(self, file: str, components: Collection[str] | None, columns: _Columns):
        self._file = file
        self._components = components
        self._columns = columns
        self._scope = _Scope(parent=None)
        self._deferred: deque[tuple[_FunctionNode, _Scope, _Class | None]] = deque()
        self._found: list[_Found] = []

    def read_module(self, module: ast.Module) -> None:
        self._statements(module.body)
        while self._deferred:
            function, parent, owner = self._deferred.popleft()
            self._function_body(function, parent, owner)

    def uses(self) -> list[Use]:
        uses = []
        for found in self._found:
            component = _component_of(found.root, set())
            if component is None:
                continue
            uses.append(self._use(component, found))
        uses.sort(key=lambda use: (use.span.line, use.span.column))
        return uses

    def _use(self, component: str, found: _Found) -> Use:
        call = found.call
        if call is None:
            return Use(self._file, component, found.chain, found.spans)
        positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
        named = [(keyword, keyword.arg) for keyword in call.keywords if keyword.arg is not None]
        return Use(
            self._file,
            component,
            found.chain,
            found.spans,
            is_call=True,
            positional=len(positional),
            keywords=tuple(name for _, name in named),
            keyword_spans=tuple(self._columns.keyword(keyword) for keyword, _ in named),
            star_args=len(positional) != len(call.args),
            star_kwargs=any(keyword.arg is None for keyword in call.keywords),
        )

    # -- statements that bind ------------------------------------------------------------

    def _statements(self, statements: Sequence[ast.stmt]) -> None:
        for statement in statements:
            self._visit(statement)

    def _visit(self, node: ast.AST) -> None:
        kind = type(node)
        if kind in _LEAVES:
            return
        method = _VISITORS.get(kind)
        if method is not None:
            method(self, node)
        else:
            self._children(node)

    def _children(self, node: ast.AST) -> None:
        # ast.iter_child_nodes, without its generators: this loop is the scan's hot path
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self._visit(item)
            elif isinstance(value, ast.AST):
                self._visit(value)

    def _assign(self, node: ast.Assign) -> None:
        self._visit(node.value)
        root = self._root_of(node.value)
        for target in node.targets:
            self._bind(target, root)

    def _annotated_assign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._visit(node.value)
            self._bind(node.target, self._root_of(node.value))

    def _named_expression(self, node: ast.NamedExpr) -> None:
        self._visit(node.value)
        self._bind(node.target, self._root_of(node.value))

    def _augmented_assign(self, node: ast.AugAssign) -> None:
        self._visit(node.value)
        self._bind(node.target, None)

    def _bind(self, target: ast.expr, root: _Root | None) -> None:
        if isinstance(target, ast.Name):
            self._scope.names[target.id] = root
            if self._scope.owner is not None and root is not None:
                self._scope.owner.attributes.setdefault(target.id, []).append(root)
            return
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            binding = self._scope.lookup(target.value.id)
            if isinstance(binding, _SelfOf):
                if root is not None:
                    binding.owner.attributes.setdefault(target.attr, []).append(root)
                return
        self._visit(target)

    def _name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self._scope.names[node.id] = None

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self._scope.names[alias.asname or alias.name.partition(".")[0]] = None

    def _except_handler(self, node: ast.ExceptHandler) -> None:
        if node.name is not None:
            self._scope.names[node.name] = None
        self._children(node)

    def _match_capture(self, node: ast.MatchAs | ast.MatchStar | ast.MatchMapping) -> None:
        name = node.rest if isinstance(node, ast.MatchMapping) else node.name
        if name is not None:
            self._scope.names[name] = None
        self._children(node)

    # -- definitions -----------------------------------------------------------------------

    def _function(self, node: _FunctionNode) -> None:
        for expression in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults):
            if expression is not None:
                self._visit(expression)
        owner = None if _is_staticmethod(node) else self._scope.owner
        self._deferred.append((node, self._scope.function_parent(), owner))
        self._scope.names[node.name] = None

    def _function_body(self, node: _FunctionNode, parent: _Scope, owner: _Class | None) -> None:
        self._scope = _Scope(parent=parent)
        parameters = _parameter_names(node.args)
        for name in parameters:
            self._scope.names[name] = None
        positional = [*node.args.posonlyargs, *node.args.args]
        if owner is not None and positional:
            self._scope.names[positional[0].arg] = _SelfOf(owner)
        self._statements(node.body)

    def _class(self, node: ast.ClassDef) -> None:
        for expression in (*node.decorator_list, *node.bases, *node.keywords):
            self._visit(expression)
        outer = self._scope
        self._scope = _Scope(parent=outer, owner=_Class())
        self._statements(node.body)
        self._scope = outer
        outer.names[node.name] = None

    def _lambda(self, node: ast.Lambda) -> None:
        for expression in (*node.args.defaults, *node.args.kw_defaults):
            if expression is not None:
                self._visit(expression)
        outer = self._scope
        self._scope = _Scope(parent=outer.function_parent())
        for name in _parameter_names(node.args):
            self._scope.names[name] = None
        self._visit(node.body)
        self._scope = outer

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        outer = self._scope
        self._scope = _Scope(parent=outer)
        for generator in node.generators:
            self._visit(generator.iter)
            self._visit(generator.target)
            for condition in generator.ifs:
                self._visit(condition)
        if isinstance(node, ast.DictComp):
            self._visit(node.key)
            self._visit(node.value)
        else:
            self._visit(node.elt)
        self._scope = outer

    # -- expressions that use --------------------------------------------------------------

    def _attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._chain(node, None)
        else:
            self._visit(node.value)

    def _call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            self._chain(node.func, node)
        else:
            self._visit(node.func)
        for argument in node.args:
            self._visit(argument)
        for keyword in node.keywords:
            self._visit(keyword.value)

    def _chain(self, node: ast.Attribute, call: ast.Call | None) -> None:
        """Record the use an attribute chain makes of a handle, if it makes one."""
        links = [node]
        base = node.value
        while isinstance(base, ast.Attribute):
            links.append(base)
            base = base.value
        links.reverse()
        root: _Root | None = None
        if isinstance(base, ast.Name):
            binding = self._scope.lookup(base.id)
            if isinstance(binding, _SelfOf):
                root = _AttributeOf(binding.owner, links[0].attr)
                links = links[1:]
            else:
                root = binding
        else:
            self._visit(base)
            if isinstance(base, ast.Call):
                root = self._loaded(base)
        if root is not None and links:
            chain = tuple(link.attr for link in links)
            spans = tuple(self._columns.span(link) for link in links)
            self._found.append(_Found(root, chain, spans, call))

    def _root_of(self, value: ast.expr) -> _Root | None:
        """The handle an expression evaluates to, if it is one."""
        if isinstance(value, ast.Call):
            if _is_cast(value):
                return self._root_of(value.args[1])
            return self._loaded(value)
        if isinstance(value, ast.Name):
            binding = self._scope.lookup(value.id)
            return None if isinstance(binding, _SelfOf) else binding
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            binding = self._scope.lookup(value.value.id)
            if isinstance(binding, _SelfOf):
                return _AttributeOf(binding.owner, value.attr)
        return None

    def _loaded(self, call: ast.Call) -> str | None:
        """The component ``<anything>.load("name")`` loads."""
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "load"):
            return None
        named = [k.value for k in call.keywords if k.arg == "name"]
        if len(call.args) + len(call.keywords) != 1 or len(call.args + named) != 1:
            return None
        argument = (call.args + named)[0]
        if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
            return None
        if self._components is not None and argument.value not in self._components:
            return None
        return argument.value


# Nodes that hold nothing to read: contexts, operators and constants.
_LEAVES = frozenset(
    {
        ast.Constant,
        *(
            kind
            for base in (ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)
            for kind in base.__subclasses__()
        ),
    }
)
_VISITORS: dict[type[ast.AST], Callable[[_UseFinder, Any], None]] = {
    ast.Assign: _UseFinder._assign,
    ast.AnnAssign: _UseFinder._annotated_assign,
    ast.AugAssign: _UseFinder._augmented_assign,
    ast.NamedExpr: _UseFinder._named_expression,
    ast.Name: _UseFinder._name,
    ast.Import: _UseFinder._import,
    ast.ImportFrom: _UseFinder._import,
    ast.ExceptHandler: _UseFinder._except_handler,
    ast.MatchAs: _UseFinder._match_capture,
    ast.MatchStar: _UseFinder._match_capture,
    ast.MatchMapping: _UseFinder._match_capture,
    ast.FunctionDef: _UseFinder._function,
    ast.AsyncFunctionDef: _UseFinder._function,
    ast.ClassDef: _UseFinder._class,
    ast.Lambda: _UseFinder._lambda,
    **dict.fromkeys(_COMPREHENSIONS, _UseFinder._comprehension),
    ast.Attribute: _UseFinder._attribute,
    ast.Call: _UseFinder._call,
}


def _is_cast(call: ast.Call) -> bool:
    """``cast(Parser, rt.load("parser"))``, ``typing.cast(…)``: a typed handle."""
    function = call.func
    name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
    return name == "cast" and len(call.args) == 2 and not call.keywords


def _component_of(root: _Root, seen: set[_AttributeOf]) -> str | None:
    """The component a root names, following self attributes (cycles name none)."""
    if isinstance(root, str):
        return root
    if root in seen:
        return None
    seen.add(root)
    components = {_component_of(bound, seen) for bound in root.owner.attributes.get(root.name, [])}
    components.discard(None)
    return components.pop() if len(components) == 1 else None


def _parameter_names(arguments: ast.arguments) -> list[str]:
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    return [arg.arg for arg in every]


def _is_staticmethod(node: _FunctionNode) -> bool:
    return any(
        isinstance(decorator, ast.Name | ast.Attribute)
        and _decorator_name(ast.unparse(decorator)) == "staticmethod"
        for decorator in node.decorator_list
    )


# ---------------------------------------------------------------------------------------
# Checking uses against a version

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


def _decorator_name(text: str) -> str:
    """``functools.lru_cache(maxsize=None)`` → ``lru_cache``."""
    return text.partition("(")[0].rsplit(".", 1)[-1].strip().lstrip("@")


def _decorator_names(function: ApiObject) -> frozenset[str]:
    return frozenset(_decorator_name(text) for text in function.decorators)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


_LITERALS = (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set, *_COMPREHENSIONS)


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
