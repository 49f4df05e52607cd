"""The application the demo upgrades: a compiler and VM wired from component handles.

It holds one handle per component and passes handles along where a component needs
another (the VM gets the memory manager and the JIT), so components never import each
other and every call reaches whatever version is active at that moment.

The protocols below are the components' API as the application relies on it; a handle
is typed as the protocol its component promises (``typing.cast``), which is what a
release with a breaking change (parser 2.0.0 renames ``parse``) would violate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from noodle_upgrade.runtime.runtime import Runtime

PIPELINE = (
    "lexer",
    "parser",
    "optimizer",
    "bytecode_generator",
    "vm_engine",
    "memory_manager",
    "jit_compiler",
)

Token = tuple[str, int | str]
Tree = tuple[Any, ...]  # ("int", 7) or (operator, left, right)
Bytecode = list[tuple[str, int | str | None]]
Inputs = Mapping[str, int]


class Lexer(Protocol):
    def tokenize(self, source: str) -> list[Token]: ...


class Parser(Protocol):
    def parse(self, tokens: list[Token]) -> Tree: ...


class Optimizer(Protocol):
    def optimize(self, tree: Tree) -> Tree: ...


class BytecodeGenerator(Protocol):
    def generate(self, tree: Tree) -> Bytecode: ...


class MemoryManager(Protocol):
    def open_frame(self) -> int: ...
    def allocate(self, frame: int, value: int) -> int: ...
    def load(self, ref: int) -> int: ...
    def close_frame(self, frame: int) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def snapshot(self) -> dict[str, Any]: ...


class JitCompiler(Protocol):
    def compile_code(self, code: Bytecode) -> Callable[[Inputs], int]: ...


class VmEngine(Protocol):
    def execute(
        self, code: Bytecode, memory: MemoryManager, jit: JitCompiler, inputs: Inputs
    ) -> int: ...


class Toolchain:
    def __init__(self, rt: Runtime) -> None:
        self.lexer = cast(Lexer, rt.load("lexer"))
        self.parser = cast(Parser, rt.load("parser"))
        self.optimizer = cast(Optimizer, rt.load("optimizer"))
        self.bytecode_generator = cast(BytecodeGenerator, rt.load("bytecode_generator"))
        self.vm_engine = cast(VmEngine, rt.load("vm_engine"))
        self.memory_manager = cast(MemoryManager, rt.load("memory_manager"))
        self.jit_compiler = cast(JitCompiler, rt.load("jit_compiler"))

    def compile(self, source: str) -> Bytecode:
        """Source text → bytecode, through lexer, parser, optimizer and generator."""
        tokens = self.lexer.tokenize(source)
        tree = self.optimizer.optimize(self.parser.parse(tokens))
        return self.bytecode_generator.generate(tree)

    def run(self, source: str, inputs: Inputs | None = None) -> int:
        """Compile ``source`` and execute it on the VM with ``inputs``; the program's value."""
        code = self.compile(source)
        memory, jit = self.memory_manager, self.jit_compiler
        result: object = self.vm_engine.execute(code, memory, jit, dict(inputs or {}))
        if not isinstance(result, int):
            raise TypeError(f"the VM returned {type(result).__name__} {result!r}, not an int")
        return result

    def memory_stats(self) -> dict[str, Any]:
        return self.memory_manager.stats()
