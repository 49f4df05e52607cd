"""A version folder's public API, read from its source with ``ast``.

The code is never imported: the analysis runs in the CLI, the planner and the editor
on versions that may be broken, slow to import or hostile, and it must not touch the
running process's ``sys.modules``. Each file is parsed once.

Paths are dotted from the version folder, which is how the runtime's synthetic
package sees the code (``runtime.loader``): the entry module ``tomli`` is ``tomli``, its
submodule ``tomli/_parser.py`` is ``tomli._parser``, and a relative import resolves
against the importing module's package inside the version (``from .pair_b import b``
in a top-level ``pair.py`` names ``pair_b.b``). Modules the version's relative imports
reach outside the entry package (such a sibling ``pair_b.py``) are read too, so the
aliases into them resolve; absolute imports name code outside the version, except
those under the entry package's own top-level name.

Where a package binds a name that is also one of its submodules (``from .loads import
loads`` in ``pkg/__init__.py``), the package's binding is what ``pkg.loads`` is, as at
run time once the package is imported; the submodule's members keep their paths
(``pkg.loads.loads``). griffe shows the submodule there instead. Two more departures
from griffe, both toward what exists at run time: ``abc.abstractproperty`` is a property
(an attribute), and names bound under ``if __name__ == "__main__":`` are not API.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from noodle_upgrade.analysis._collector import collector_paused
from noodle_upgrade.analysis._module_reader import (
    FunctionNode,
    ModuleDraft,
    ModuleReader,
    Scope,
)
from noodle_upgrade.analysis.api import Api, ApiObject, Kind
from noodle_upgrade.errors import ValidationError

ERROR_CODE = "analysis-error"


class ParsedFiles:
    """Syntax trees by the content of their file, shared by the extractions of several
    versions: two versions of a package share most files byte for byte, and parsing is
    half the cost of an extraction. The trees are only read, never changed."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._trees: dict[bytes, ast.Module] = {}

    def parse(self, file: Path) -> ast.Module:
        source = file.read_bytes()  # bytes: ``ast`` honours the file's coding cookie
        key = hashlib.blake2b(source, digest_size=16).digest()
        tree = self._trees.get(key)
        if tree is None:
            tree = _parse(file, source)
            if len(self._trees) >= self._capacity:
                self._trees.pop(next(iter(self._trees)))  # the oldest
            self._trees[key] = tree
        return tree


def extract_api(
    folder: Path,
    entry: str,
    *,
    component: str,
    version: str,
    parsed: ParsedFiles | None = None,
) -> Api:
    """The API of the version in ``folder`` whose ``component.toml`` says ``entry``
    (``module`` or ``module:factory``); ``component`` and ``version`` label it.
    ``parsed`` reuses the trees of files another extraction read already.

    Raises ``ValidationError`` (code ``analysis-error``) for a missing entry module or a
    file that cannot be read or parsed, naming the file, line and column.
    """
    root, colon, factory = entry.partition(":")
    if not _is_dotted_name(root) or (colon and not _is_identifier(factory)):
        raise ValidationError(
            f"{folder}: entry {entry!r} is not 'module' or 'module:factory' (Python identifiers)",
            code=ERROR_CODE,
        )
    reader = _VersionReader(folder, root, parsed or ParsedFiles())
    try:
        with collector_paused():
            objects = reader.read()
    except OSError as exc:
        where = exc.filename or folder
        raise ValidationError(
            f"{where}: cannot be read: {exc.strerror or exc}", code=ERROR_CODE
        ) from exc
    api = Api(component, version, root, objects)
    handle_root = _handle_root(api, reader.functions, factory)
    return replace(api, handle_root=handle_root, factory=factory or None)


@dataclass(frozen=True)
class _Source:
    file: Path
    is_package: bool


class _VersionReader:
    """Finds a version's modules, reads each once, and assembles the flat object map."""

    def __init__(self, folder: Path, root: str, parsed: ParsedFiles) -> None:
        self._folder = folder
        self._parsed = parsed
        self._root = root
        self._top = root.partition(".")[0]
        self._sources: dict[str, _Source | None] = {}
        self._modules: dict[str, ModuleDraft] = {}
        self._queue: list[str] = []
        self._queued: set[str] = set()
        self._package_folders: set[Path] = set()  # guards against symlink loops
        self.functions: dict[str, tuple[str, FunctionNode]] = {}  # path: (module, node)

    def read(self) -> dict[str, ApiObject]:
        if self._source(self._root) is None:
            raise self._missing_entry()
        self.reach(self._root)
        while self._queue:
            self._read_module(self._queue.pop())
        return self._objects()

    def _missing_entry(self) -> ValidationError:
        relative = self._root.replace(".", "/")
        hint = ""
        if (self._folder / relative).is_dir():
            hint = f" ({relative}/ has no __init__.py; namespace packages are not analysed)"
        return ValidationError(
            f"{self._folder}: entry module {self._root!r} not found: expected "
            f"{relative}.py or {relative}/__init__.py in the version folder{hint}",
            code=ERROR_CODE,
        )

    # --- what ModuleReader asks of the version (VersionModules) ---

    def is_inside(self, module: str) -> bool:
        return module.partition(".")[0] == self._top

    def reach(self, path: str) -> None:
        if path not in self._queued and self._source(path) is not None:
            self._queued.add(path)
            self._queue.append(path)

    def star_names(self, module: str) -> list[str] | None:
        draft = self._read_module(module)
        return None if draft is None else draft.public_names()

    # --- files ---

    def _source(self, path: str) -> _Source | None:
        """Where the module ``path`` lives in the version folder, if it does."""
        if path in self._sources:
            return self._sources[path]
        found = None
        parts = path.split(".")
        if all(part.isidentifier() for part in parts):
            base = self._folder.joinpath(*parts)
            module = base.with_name(f"{parts[-1]}.py")
            if (base / "__init__.py").is_file():
                found = _Source(base / "__init__.py", is_package=True)
            elif module.is_file():
                found = _Source(module, is_package=False)
        self._sources[path] = found
        return found

    def _read_module(self, path: str) -> ModuleDraft | None:
        if path in self._modules:
            return self._modules[path]  # read already, or being read (an import cycle)
        source = self._source(path)
        if source is None:
            return None
        self._queued.add(path)
        tree = self._parsed.parse(source.file)
        draft = ModuleDraft(
            path, source.file.relative_to(self._folder).as_posix(), source.is_package, Scope(path)
        )
        self._modules[path] = draft
        reader = ModuleReader(draft, self)
        try:
            reader.read(tree)
        except RecursionError:
            raise _analysis_error(source.file, 1, 1, "too deeply nested to analyse") from None
        self.functions.update((p, (path, node)) for p, node in reader.functions.items())
        if source.is_package:
            draft.submodules = self._submodules(source.file.parent)
            for name in draft.submodules:
                self.reach(f"{path}.{name}")
        return draft

    def _submodules(self, folder: Path) -> list[str]:
        """A package folder's modules and packages (folders with ``__init__.py``)."""
        real = folder.resolve()
        if real in self._package_folders:
            return []
        self._package_folders.add(real)
        names: dict[str, None] = {}
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                stem, suffix = os.path.splitext(entry.name)
                if entry.is_dir():
                    package = entry.name != "__pycache__" and entry.name.isidentifier()
                    if package and os.path.isfile(os.path.join(entry.path, "__init__.py")):
                        names[entry.name] = None
                elif suffix == ".py" and stem != "__init__" and stem.isidentifier():
                    names[stem] = None
        return list(names)

    # --- assembly ---

    def _objects(self) -> dict[str, ApiObject]:
        objects: dict[str, ApiObject] = {}
        shadowed: list[ApiObject] = []
        for path in sorted(self._modules):
            draft = self._modules[path]
            package_path, _, name = path.rpartition(".")
            package = self._modules.get(package_path)
            if package is None or name not in package.scope.members:
                objects[path] = draft.module_object()
            else:
                shadowed.append(draft.module_object())
            draft.scope.emit(objects)
        for module in shadowed:
            if _leads_back(objects, module.path):
                objects[module.path] = module  # the package's binding is the submodule itself
        return objects


def _leads_back(objects: dict[str, ApiObject], path: str) -> bool:
    """Whether the alias at ``path`` leads, alias after alias, back to ``path`` (a star
    import that re-binds a submodule to itself, say)."""
    seen: set[str] = set()
    found = objects.get(path)
    while found is not None and found.kind is Kind.ALIAS and found.path not in seen:
        if found.target == path:
            return True
        seen.add(found.path)
        found = objects.get(found.target or "")
    return False


def _parse(file: Path, source: bytes) -> ast.Module:
    try:
        return ast.parse(source, filename=str(file))
    except SyntaxError as exc:
        raise _analysis_error(file, exc.lineno, exc.offset, exc.msg) from None
    except ValueError as exc:  # null bytes, on some Python versions
        raise _analysis_error(file, 1, 1, str(exc)) from None
    except (RecursionError, MemoryError):
        raise _analysis_error(file, 1, 1, "too deeply nested to parse") from None


def _analysis_error(
    file: Path, line: int | None, column: int | None, message: str
) -> ValidationError:
    return ValidationError(
        f"{file}:{max(line or 1, 1)}:{max(column or 1, 1)}: {message}", code=ERROR_CODE
    )


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _is_dotted_name(text: str) -> bool:
    return all(_is_identifier(part) for part in text.split("."))


# --- what a factory entry's handle reaches ---


def _handle_root(api: Api, functions: dict[str, tuple[str, FunctionNode]], factory: str) -> str:
    """The class a ``module:factory`` entry's instances are, when the source says so
    (the factory is that class, is annotated to return it, or only returns calls of
    it); else the entry module."""
    if not factory:
        return api.root
    found = api.resolve(f"{api.root}.{factory}")
    if found is not None and found.kind is Kind.CLASS:
        return found.path
    if found is not None and found.kind is Kind.FUNCTION and found.path in functions:
        module, node = functions[found.path]
        return _returned_class(api, module, node) or api.root
    return api.root


def _returned_class(api: Api, module: str, function: FunctionNode) -> str | None:
    if function.returns is not None:
        annotation = function.returns
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            named = _class_named(api, module, annotation.value.strip())  # "Counter"
        else:
            named = _class_named(api, module, ast.unparse(annotation))
        if named is not None:
            return named
    called = {
        _class_named(api, module, ast.unparse(value.func)) if isinstance(value, ast.Call) else None
        for value in _returned_values(function)
    }
    only = called.pop() if len(called) == 1 else None
    return only


def _returned_values(function: FunctionNode) -> Iterator[ast.expr | None]:
    """What each ``return`` of ``function`` itself returns (not of nested functions)."""
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            yield node.value
        elif not isinstance(node, FunctionNode | ast.ClassDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def _class_named(api: Api, module: str, dotted: str) -> str | None:
    """The class of the version that ``dotted`` names in ``module``'s namespace."""
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    found = api.resolve(f"{module}.{parts[0]}")
    for part in parts[1:]:
        found = None if found is None else api.resolve(f"{found.path}.{part}")
    return found.path if found is not None and found.kind is Kind.CLASS else None
