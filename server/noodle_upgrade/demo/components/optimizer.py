"""The optimizer: syntax tree → simpler syntax tree.

1.0.0 applies algebraic identities (``x * 1``, ``x + 0``, ``x * 0``); 1.1.0 adds constant
folding. 1.2.0 rewrites folding with an explicit stack (no recursion limit) and pops the
operands in the wrong order, so ``1 - 2`` folds to ``1``: its self-test health check
catches it and the release never serves a call. 1.2.1 fixes the order but keeps operands in
a preallocated array of four slots: its self-test passes, and about a quarter of real
programs (those that need a fifth operand) raise ``IndexError``. A canary finds out; every
release declares ``idempotent = true`` (optimizing is pure), so a call that fails on the
canary is retried on the stable version and no caller sees the error.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release
from noodle_upgrade.scaffold import ManifestValue

# The self-test every optimizer release ships as its health check.
_SELF_TEST = '''

SELF_TEST = [
    (("-", ("int", 1), ("int", 2)), -1),
    (("*", ("+", ("int", 2), ("int", 3)), ("int", 4)), 20),
    (("-", ("int", 10), ("-", ("int", 4), ("int", 1))), 7),
    (("+", ("*", ("var", "x"), ("int", 1)), ("-", ("int", 3), ("int", 5))), 5),
]
SELF_TEST_INPUTS = {"x": 7}


def _value(tree):
    if tree[0] == "int":
        return tree[1]
    if tree[0] == "var":
        return SELF_TEST_INPUTS[tree[1]]
    operator, left, right = tree
    return FOLD[operator](_value(left), _value(right))


def health():
    """Optimizing must never change what a program computes."""
    for tree, expected in SELF_TEST:
        optimized = optimize(tree)
        if _value(optimized) != expected:
            raise AssertionError(f"optimize({tree!r}) gave {optimized!r}, which computes "
                                 f"{_value(optimized)}, not {expected}")
    return True
'''

_COMMON = '''\
import operator

FOLD = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def _identities(operator_, left, right):
    """x + 0, 0 + x, x - 0, x * 1, 1 * x → x; x * 0, 0 * x → 0."""
    zero, one = ("int", 0), ("int", 1)
    if operator_ == "+" and right == zero or operator_ == "-" and right == zero:
        return left
    if operator_ == "+" and left == zero:
        return right
    if operator_ == "*":
        if one in (left, right):
            return right if left == one else left
        if zero in (left, right):
            return zero
    return (operator_, left, right)
'''

OPTIMIZER_1_0_0 = (
    '''\
"""Optimizer 1.0.0: algebraic identities only."""

'''
    + _COMMON
    + """

def optimize(tree):
    if tree[0] in ("int", "var"):
        return tree
    operator_, left, right = tree
    return _identities(operator_, optimize(left), optimize(right))
"""
    + _SELF_TEST
)

OPTIMIZER_1_1_0 = (
    '''\
"""Optimizer 1.1.0: identities and constant folding."""

'''
    + _COMMON
    + """

def optimize(tree):
    if tree[0] in ("int", "var"):
        return tree
    operator_, left, right = tree
    left, right = optimize(left), optimize(right)
    if left[0] == "int" and right[0] == "int":
        return ("int", FOLD[operator_](left[1], right[1]))
    return _identities(operator_, left, right)
"""
    + _SELF_TEST
)

OPTIMIZER_1_2_0 = (
    '''\
"""Optimizer 1.2.0: folding with an explicit stack, no recursion limit on deep programs."""

'''
    + _COMMON
    + """

def optimize(tree):
    work = [(tree, False)]
    done = []
    while work:
        node, children_done = work.pop()
        if node[0] in ("int", "var"):
            done.append(node)
        elif not children_done:
            work.append((node, True))
            work.append((node[2], False))
            work.append((node[1], False))
        else:
            left = done.pop()  # the bug: the right operand was finished last, so this is it
            right = done.pop()
            if left[0] == "int" and right[0] == "int":
                done.append(("int", FOLD[node[0]](left[1], right[1])))
            else:
                done.append(_identities(node[0], left, right))
    return done[0]
"""
    + _SELF_TEST
)

OPTIMIZER_1_2_1 = (
    '''\
"""Optimizer 1.2.1: 1.2.0's stack-based folding, operand order fixed.

Operands go to a preallocated array (no list growth on the hot path); the self-test never
needs more than three slots, so four looked like plenty.
"""

'''
    + _COMMON
    + """

MAX_OPERANDS = 4


def optimize(tree):
    work = [(tree, False)]
    operands = [None] * MAX_OPERANDS
    top = 0
    while work:
        node, children_done = work.pop()
        if node[0] in ("int", "var"):
            operands[top] = node  # the bug: IndexError once a program needs a fifth slot
            top += 1
        elif not children_done:
            work.append((node, True))
            work.append((node[2], False))
            work.append((node[1], False))
        else:
            left, right = operands[top - 2], operands[top - 1]
            top -= 2
            if left[0] == "int" and right[0] == "int":
                operands[top] = ("int", FOLD[node[0]](left[1], right[1]))
            else:
                operands[top] = _identities(node[0], left, right)
            top += 1
    return operands[0]
"""
    + _SELF_TEST
)

_MANIFEST: dict[str, ManifestValue] = {
    "type": "compiler",
    "health_check": "optimizer:health",
    "idempotent": True,  # a failed canary call may be retried on the stable version
    "shadow_safe": True,
    "dependencies": {"parser": ">=1.0,<2"},
}

RELEASES = (
    Release("optimizer", "1.0.0", "algebraic identities", OPTIMIZER_1_0_0, manifest=_MANIFEST),
    Release("optimizer", "1.1.0", "adds constant folding", OPTIMIZER_1_1_0, manifest=_MANIFEST),
    Release(
        "optimizer",
        "1.2.0",
        "stack-based folding (faulty: swaps operands)",
        OPTIMIZER_1_2_0,
        manifest=_MANIFEST,
    ),
    Release(
        "optimizer",
        "1.2.1",
        "operand order fixed; four operand slots (faulty: deep programs raise)",
        OPTIMIZER_1_2_1,
        manifest=_MANIFEST,
    ),
)
