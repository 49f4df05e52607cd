"""The bytecode generator: syntax tree → stack-machine code.

Code is a list of ``(opcode, argument)`` tuples: ``("push", 7)``, ``("input", "x")``,
``("add", None)``, ``("sub", None)``, ``("mul", None)``; running it leaves the result on
the stack.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release

BYTECODE_GENERATOR_1_0_0 = '''\
"""Bytecode generator 1.0.0: post-order walk of the tree."""

OPCODES = {"+": "add", "-": "sub", "*": "mul"}


def generate(tree):
    code = []
    _emit(tree, code)
    return code


def _emit(tree, code):
    if tree[0] == "int":
        code.append(("push", tree[1]))
        return
    if tree[0] == "var":
        code.append(("input", tree[1]))
        return
    operator, left, right = tree
    _emit(left, code)
    _emit(right, code)
    code.append((OPCODES[operator], None))
'''

RELEASES = (
    Release(
        "bytecode_generator",
        "1.0.0",
        "post-order stack code",
        BYTECODE_GENERATOR_1_0_0,
        manifest={"type": "compiler", "dependencies": {"parser": ">=1.0,<2"}},
    ),
)
