"""The bytecode generator: syntax tree → stack-machine code.

Code is a list of ``(opcode, argument)`` tuples: ``("push", 7)``, ``("input", "x")``,
``("add", None)``, ``("sub", None)``, ``("mul", None)``; running it leaves the result on
the stack.

- 1.0.0: a post-order walk, operands in source order.
- 1.1.0: Sethi–Ullman order: for ``+`` and ``*``, which commute, the operand that needs
  the deeper stack goes first, so programs run on a shallower VM stack. Its code differs
  from 1.0.0's while meaning the same, so a shadow compares results by meaning (the
  demo's ``compare`` hook runs both codes), not with ``==``.
- 1.2.0 (faulty): generalises the reordering to every operator and forgets that ``-``
  does not commute, so ``7 - 2 * x`` runs as ``2 * x - 7``. No health check could tell;
  a shadow does, and no caller ever receives its code.

Every release is ``shadow_safe``: generating code has no side effects.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release
from noodle_upgrade.scaffold import ManifestValue

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

_SETHI_ULLMAN = '''\

OPCODES = {"+": "add", "-": "sub", "*": "mul"}
REORDERED = %s


def generate(tree):
    return _emit(tree)[1]


def _emit(tree):
    """(stack slots the subtree needs, its code)."""
    if tree[0] == "int":
        return 1, [("push", tree[1])]
    if tree[0] == "var":
        return 1, [("input", tree[1])]
    operator, left, right = tree
    left_need, left_code = _emit(left)
    right_need, right_code = _emit(right)
    if operator in REORDERED and right_need > left_need:
        left_need, left_code, right_need, right_code = right_need, right_code, left_need, left_code
    return max(left_need, right_need + 1), left_code + right_code + [(OPCODES[operator], None)]
'''

BYTECODE_GENERATOR_1_1_0 = (
    '''\
"""Bytecode generator 1.1.0: Sethi-Ullman order, the deeper operand of + and * first."""
'''
    + _SETHI_ULLMAN % '{"+", "*"}  # the operators that commute'
)

BYTECODE_GENERATOR_1_2_0 = (
    '''\
"""Bytecode generator 1.2.0: Sethi-Ullman order for every operator."""
'''
    + _SETHI_ULLMAN % '{"+", "*", "-"}  # the bug: "-" does not commute'
)

_MANIFEST: dict[str, ManifestValue] = {
    "type": "compiler",
    "shadow_safe": True,
    "dependencies": {"parser": ">=1.0,<2"},
}

RELEASES = (
    Release(
        "bytecode_generator",
        "1.0.0",
        "post-order stack code",
        BYTECODE_GENERATOR_1_0_0,
        manifest=_MANIFEST,
    ),
    Release(
        "bytecode_generator",
        "1.1.0",
        "Sethi–Ullman order: shallower VM stack",
        BYTECODE_GENERATOR_1_1_0,
        manifest=_MANIFEST,
    ),
    Release(
        "bytecode_generator",
        "1.2.0",
        "reorders every operator (faulty: '-' does not commute)",
        BYTECODE_GENERATOR_1_2_0,
        manifest=_MANIFEST,
    ),
)
