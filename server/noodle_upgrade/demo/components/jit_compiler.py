"""The JIT compiler: bytecode → a Python closure that computes the result directly.

The VM hands long programs to it instead of interpreting them. No ``eval``: the closure
is built from small functions, one per instruction; it takes the program's inputs.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release

JIT_COMPILER_1_0_0 = '''\
"""JIT compiler 1.0.0: closures composed at compile time."""

import operator

OPERATIONS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


def _constant(value):
    return lambda inputs: value


def _input(name):
    return lambda inputs: inputs[name]


def _binary(operation, left, right):
    return lambda inputs: operation(left(inputs), right(inputs))


def compile_code(code):
    stack = []
    for opcode, argument in code:
        if opcode == "push":
            stack.append(_constant(argument))
        elif opcode == "input":
            stack.append(_input(argument))
        else:
            right = stack.pop()
            left = stack.pop()
            stack.append(_binary(OPERATIONS[opcode], left, right))
    (program,) = stack
    return program
'''

RELEASES = (
    Release(
        "jit_compiler",
        "1.0.0",
        "closure compiler",
        JIT_COMPILER_1_0_0,
        manifest={"type": "runtime", "dependencies": {"bytecode_generator": ">=1.0,<2"}},
    ),
)
