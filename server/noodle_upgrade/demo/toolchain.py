"""The application the demo upgrades: a compiler and VM wired from component handles.

It holds one handle per component and passes handles along where a component needs
another (the VM gets the memory manager and the JIT), so components never import each
other and every call reaches whatever version is active at that moment.

The protocols below are the components' API as the application relies on it; a handle
is typed as the protocol its component promises (``typing.cast``), which is what a
release with a breaking change (parser 2.0.0 renames ``parse``) would violate.

Compiled programs are cached by source text in a version-keyed cache
(``rt.cache(depends_on=COMPILE_STAGES)``): whenever what serves the lexer, parser,
optimizer or bytecode generator changes (an upgrade, a rollback, a rollout starting or
ending), the cache drops its entries and every program recompiles on its next use. No
bytecode made by an old version is run after a swap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from noodle_upgrade.runtime.cache import CacheStats, VersionedCache
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

COMPILE_STAGES = ("lexer", "parser", "optimizer", "bytecode_generator")

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
    def stats(self) -> dict[str, Any]: ...


class VmEngine(Protocol):
    def execute(
        self, code: Bytecode, memory: MemoryManager, jit: JitCompiler, inputs: Inputs
    ) -> int: ...


class Toolchain:
    def __init__(self, rt: Runtime, *, cache_size: int = 4096) -> None:
        self.lexer = cast(Lexer, rt.load("lexer"))
        self.parser = cast(Parser, rt.load("parser"))
        self.optimizer = cast(Optimizer, rt.load("optimizer"))
        self.bytecode_generator = cast(BytecodeGenerator, rt.load("bytecode_generator"))
        self.vm_engine = cast(VmEngine, rt.load("vm_engine"))
        self.memory_manager = cast(MemoryManager, rt.load("memory_manager"))
        self.jit_compiler = cast(JitCompiler, rt.load("jit_compiler"))
        # Auto-recompile on upgrade: entries belong to what served the compile stages.
        self.compiled: VersionedCache[str, Bytecode] = rt.cache(
            depends_on=COMPILE_STAGES, maxsize=cache_size, name="compiled programs"
        )

    def compile_uncached(self, source: str) -> Bytecode:
        """Source text → bytecode, through lexer, parser, optimizer and generator."""
        tokens = self.lexer.tokenize(source)
        tree = self.optimizer.optimize(self.parser.parse(tokens))
        return self.bytecode_generator.generate(tree)

    def compile(self, source: str) -> Bytecode:
        """The bytecode of ``source``: from the cache, or compiled by the active versions."""
        return self.compiled.get_or_compute(source, lambda: self.compile_uncached(source))

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

    def cache_stats(self) -> CacheStats:
        return self.compiled.stats


# --- a reference for comparing code by meaning ------------------------------------------

# Inputs at which two codes must agree to count as the same program (shadow's compare).
PROBES: tuple[Inputs, ...] = ({"x": -7}, {"x": 0}, {"x": 3}, {"x": 12})


def run_reference(code: Bytecode, inputs: Inputs) -> int:
    """Run bytecode on a plain stack machine that shares no code with the components."""
    stack: list[int] = []
    for opcode, argument in code:
        if opcode == "push" and isinstance(argument, int):
            stack.append(argument)
        elif opcode == "input" and isinstance(argument, str):
            stack.append(inputs[argument])
        else:
            right, left = stack.pop(), stack.pop()
            if opcode == "add":
                stack.append(left + right)
            elif opcode == "sub":
                stack.append(left - right)
            elif opcode == "mul":
                stack.append(left * right)
            else:
                raise ValueError(f"unknown instruction {(opcode, argument)!r}")
    (result,) = stack
    return result


def same_meaning(expected: object, actual: object) -> bool:
    """Shadow's ``compare`` hook for the bytecode generator: two codes are the same
    program when they compute the same values, whatever their instruction order."""
    if expected == actual:
        return True
    if not isinstance(expected, list) or not isinstance(actual, list):
        return False
    try:
        return all(run_reference(expected, p) == run_reference(actual, p) for p in PROBES)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
