"""Where a workspace uses components through the runtime (``noodle impact``, the
editor's ``breaking-call`` diagnostics): ``find_uses`` reads one file's source,
``scan_workspace`` a folder; ``analysis.impact`` checks the uses against a version.

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

# Folders a workspace scan never enters (dot-folders are skipped too).
SKIPPED_FOLDERS = frozenset({".venv", "venv", ".git", "node_modules", "__pycache__", ".noodle"})

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
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


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
    **dict.fromkeys(COMPREHENSIONS, _UseFinder._comprehension),
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
        and decorator_name(ast.unparse(decorator)) == "staticmethod"
        for decorator in node.decorator_list
    )


def decorator_name(text: str) -> str:
    """``functools.lru_cache(maxsize=None)`` → ``lru_cache``."""
    return text.partition("(")[0].rsplit(".", 1)[-1].strip().lstrip("@")
