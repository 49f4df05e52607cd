"""The VM: runs bytecode on a stack whose values live in the memory manager's heap.

``execute(code, memory, jit, inputs)`` gets the memory manager's and the JIT compiler's
handles from the application, and the program's inputs (``{"x": 5}``). Each run opens a
frame in the memory manager, allocates every intermediate value there and closes the
frame at the end; a program longer than ``JIT_THRESHOLD`` instructions is compiled by
the JIT instead of interpreted.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release
from noodle_upgrade.scaffold import ManifestValue

VM_ENGINE_1_0_0 = '''\
"""VM engine 1.0.0: an if/elif interpreter."""

JIT_THRESHOLD = 15


def execute(code, memory, jit, inputs):
    frame = memory.open_frame()
    try:
        if len(code) >= JIT_THRESHOLD:
            return memory.load(memory.allocate(frame, jit.compile_code(code)(inputs)))
        stack = []
        for opcode, argument in code:
            if opcode == "push":
                stack.append(memory.allocate(frame, argument))
                continue
            if opcode == "input":
                stack.append(memory.allocate(frame, inputs[argument]))
                continue
            right = memory.load(stack.pop())
            left = memory.load(stack.pop())
            if opcode == "add":
                value = left + right
            elif opcode == "sub":
                value = left - right
            elif opcode == "mul":
                value = left * right
            else:
                raise RuntimeError(f"unknown opcode {opcode!r}")
            stack.append(memory.allocate(frame, value))
        (result,) = stack
        return memory.load(result)
    finally:
        memory.close_frame(frame)
'''

VM_ENGINE_1_1_0 = '''\
"""VM engine 1.1.0: a dispatch table, and the JIT takes over from 9 instructions on."""

import operator

JIT_THRESHOLD = 9
DISPATCH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


def execute(code, memory, jit, inputs):
    frame = memory.open_frame()
    try:
        if len(code) >= JIT_THRESHOLD:
            return memory.load(memory.allocate(frame, jit.compile_code(code)(inputs)))
        allocate, load = memory.allocate, memory.load
        stack = []
        push, pop = stack.append, stack.pop
        for opcode, argument in code:
            if opcode == "push":
                push(allocate(frame, argument))
            elif opcode == "input":
                push(allocate(frame, inputs[argument]))
            else:
                right = load(pop())
                push(allocate(frame, DISPATCH[opcode](load(pop()), right)))
        (result,) = stack
        return load(result)
    finally:
        memory.close_frame(frame)
'''

_MANIFEST: dict[str, ManifestValue] = {
    "type": "runtime",
    "critical": True,
    "dependencies": {
        "bytecode_generator": ">=1.0,<2",
        "memory_manager": ">=1.0,<3",
        "jit_compiler": ">=1.0,<2",
    },
}

RELEASES = (
    Release("vm_engine", "1.0.0", "if/elif interpreter", VM_ENGINE_1_0_0, manifest=_MANIFEST),
    Release(
        "vm_engine",
        "1.1.0",
        "dispatch table, JIT from 9 instructions",
        VM_ENGINE_1_1_0,
        manifest=_MANIFEST,
    ),
)
