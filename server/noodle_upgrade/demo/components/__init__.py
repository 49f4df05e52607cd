"""The demo's component store: every release of every component of the toy language.

Each module of this package describes one component and holds the source of each of its
versions as a string, written to disk by :func:`publish` with
:func:`noodle_upgrade.scaffold.write_component`. Components never import each other: the
application hands them the handles they need (the VM gets the memory manager's and the
JIT's), exactly as a service would wire its parts.

The language: integers, the input ``x``, ``+ - *`` and parentheses. The pipeline:
source → lexer → parser → optimizer → bytecode_generator → vm_engine (+ memory_manager,
jit_compiler) → result.

What each release is for in the story: good releases for each strategy to promote, and
faulty ones for each safety net to catch: optimizer 1.2.0 (its self-test fails), 1.2.1
(raises on deep programs: the canary analysis), bytecode_generator 1.2.0 (wrong code: the
shadow comparison), memory_manager 2.0.1 (leaks once serving: the blue-green watch) and
parser 2.0.0 (a breaking API: the dependency check).
"""

from __future__ import annotations

from collections.abc import Iterable

from noodle_upgrade.demo.components import (
    bytecode_generator,
    jit_compiler,
    lexer,
    memory_manager,
    optimizer,
    parser,
    vm_engine,
)
from noodle_upgrade.demo.components.release import Release, publish

__all__ = ["CATALOGUE", "CONSTRAINTS", "INITIAL", "Release", "publish", "release", "releases"]

_MODULES = (lexer, parser, optimizer, bytecode_generator, vm_engine, memory_manager, jit_compiler)
CATALOGUE: dict[str, Release] = {r.key: r for module in _MODULES for r in module.RELEASES}


def release(name: str, version: str) -> Release:
    """The release ``name@version`` of the catalogue (``KeyError`` names what exists)."""
    try:
        return CATALOGUE[f"{name}@{version}"]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise KeyError(f"the demo has no release {name}@{version} (known: {known})") from None


def releases(keys: Iterable[str]) -> list[Release]:
    """Releases by ``name@version`` key, in the order given."""
    return [release(*key.split("@", 1)) for key in keys]


# What the store holds when the runtime starts; the rest is published as the story goes.
INITIAL = (
    "lexer@1.0.0",
    "parser@1.0.0",
    "optimizer@1.0.0",
    "bytecode_generator@1.0.0",
    "vm_engine@1.0.0",
    "memory_manager@1.0.0",
    "jit_compiler@1.0.0",
)

# noodle.toml [components]: what the project accepts. parser admits 2.x on purpose, so
# that what refuses parser 2.0.0 is its dependents' constraints, not the project's.
CONSTRAINTS = {
    "lexer": ">=1.0,<2",
    "parser": ">=1.0",
    "optimizer": ">=1.0,<2",
    "bytecode_generator": "~=1.0",
    "vm_engine": ">=1.0,<2",
    "memory_manager": ">=1.0,<3",
    "jit_compiler": "~=1.0",
}
