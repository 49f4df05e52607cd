"""The demo's component store: every release of every component of the toy language.

Each module of this package describes one component and holds the source of each of its
versions as a string, written to disk by :func:`publish` with
:func:`noodle_upgrade.scaffold.write_component`. Components never import each other: the
application hands them the handles they need (the VM gets the memory manager's and the
JIT's), exactly as a service would wire its parts.

The language: integers, ``+ - *`` and parentheses. The pipeline:
source → lexer → parser → optimizer → bytecode_generator → vm_engine (+ memory_manager,
jit_compiler) → result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from noodle_upgrade.scaffold import ManifestValue, write_component


@dataclass(frozen=True)
class Release:
    """One version of one component: its code and the fields of its ``component.toml``."""

    name: str
    version: str
    summary: str  # what this version changes, one line for the narrative
    code: str
    entry: str | None = None  # default: the module named after the component
    manifest: Mapping[str, ManifestValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def publish(root: Path, release: Release) -> Path:
    """Write ``release`` into the component store of the project at ``root``."""
    fields: dict[str, ManifestValue] = {"description": release.summary, **release.manifest}
    return write_component(root, release.name, release.version, release.code, entry=release.entry, **fields)


def _catalogue() -> dict[str, Release]:
    from noodle_upgrade.demo.components import (
        bytecode_generator,
        jit_compiler,
        lexer,
        memory_manager,
        optimizer,
        parser,
        vm_engine,
    )

    modules = (lexer, parser, optimizer, bytecode_generator, vm_engine, memory_manager, jit_compiler)
    return {release.key: release for module in modules for release in module.RELEASES}


def release(name: str, version: str) -> Release:
    """The release ``name@version`` of the catalogue (``KeyError`` names what exists)."""
    catalogue = _catalogue()
    try:
        return catalogue[f"{name}@{version}"]
    except KeyError:
        raise KeyError(f"the demo has no release {name}@{version} ({', '.join(catalogue)})") from None


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
