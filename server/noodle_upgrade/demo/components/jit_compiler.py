"""The JIT compiler: bytecode → a Python closure that computes the result directly.

The VM hands long programs to it instead of interpreting them. No ``eval``: the closure
is built from small functions, one per instruction; it takes the program's inputs.

It is the demo's pooled component: ``entry = "jit_compiler:create"`` with ``pool = 4``,
so the runtime builds four compiler instances and spreads calls over them. Each instance
counts what it compiled (its state); a rolling upgrade replaces the instances one batch
at a time, carrying each one's counters into its replacement.

- 1.0.0: one closure per instruction.
- 1.1.0: an operation with a constant operand gets a closure of its own (one call
  fewer per run), and each instance counts how many it specialized (its ``migrate``
  adds that counter to a 1.0.0 instance's state).
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release
from noodle_upgrade.scaffold import ManifestValue

POOL_SIZE = 4

_CLOSURES = """\
import operator
import threading

OPERATIONS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


def _constant(value):
    return lambda inputs: value


def _input(name):
    return lambda inputs: inputs[name]


def _binary(operation, left, right):
    return lambda inputs: operation(left(inputs), right(inputs))
"""

_METHODS = """
    def __init__(self):
        self._lock = threading.Lock()
        self._counters = dict(self.COUNTERS)

    def _count(self, **amounts):
        with self._lock:
            for key, amount in amounts.items():
                self._counters[key] += amount

    def stats(self):
        with self._lock:
            return {"version": self.version, **self._counters}

    def snapshot(self):
        with self._lock:
            return dict(self._counters)

    def restore(self, state):
        with self._lock:
            self._counters = dict(state)


def create():
    return JitCompiler()
"""

JIT_COMPILER_1_0_0 = (
    '''\
"""JIT compiler 1.0.0: closures composed at compile time, one per instruction."""

'''
    + _CLOSURES
    + """

class JitCompiler:
    version = "1.0.0"
    COUNTERS = {"compiled": 0, "instructions": 0}

    def compile_code(self, code):
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
        self._count(compiled=1, instructions=len(code))
        return program
"""
    + _METHODS
)

JIT_COMPILER_1_1_0 = (
    '''\
"""JIT compiler 1.1.0: operations with a constant operand get a closure of their own."""

'''
    + _CLOSURES
    + """

def _with_constant_left(operation, value, right):
    return lambda inputs: operation(value, right(inputs))


def _with_constant_right(operation, left, value):
    return lambda inputs: operation(left(inputs), value)


class JitCompiler:
    version = "1.1.0"
    COUNTERS = {"compiled": 0, "instructions": 0, "specialized": 0}

    def compile_code(self, code):
        stack = []  # (True, value) for a constant, (False, closure) otherwise
        specialized = 0
        for opcode, argument in code:
            if opcode == "push":
                stack.append((True, argument))
            elif opcode == "input":
                stack.append((False, _input(argument)))
            else:
                (right_constant, right), (left_constant, left) = stack.pop(), stack.pop()
                operation = OPERATIONS[opcode]
                if left_constant and right_constant:
                    stack.append((True, operation(left, right)))
                elif left_constant:
                    stack.append((False, _with_constant_left(operation, left, right)))
                    specialized += 1
                elif right_constant:
                    stack.append((False, _with_constant_right(operation, left, right)))
                    specialized += 1
                else:
                    stack.append((False, _binary(operation, left, right)))
        ((constant, program),) = stack
        self._count(compiled=1, instructions=len(code), specialized=specialized)
        return _constant(program) if constant else program
"""
    + _METHODS
    + '''

def migrate(state, from_version):
    """1.0.0 -> 1.1.0: nothing specialized yet."""
    return {**state, "specialized": state.get("specialized", 0)}


def health():
    # 6 - x * 2 + 3 * 4 with x = 5
    code = [("push", 6), ("input", "x"), ("push", 2), ("mul", None), ("sub", None),
            ("push", 3), ("push", 4), ("mul", None), ("add", None)]
    return create().compile_code(code)({"x": 5}) == 8
'''
)

_MANIFEST: dict[str, ManifestValue] = {
    "type": "runtime",
    "pool": POOL_SIZE,
    "dependencies": {"bytecode_generator": ">=1.0,<2"},
}

RELEASES = (
    Release(
        "jit_compiler",
        "1.0.0",
        "closure compiler, a pool of four",
        JIT_COMPILER_1_0_0,
        entry="jit_compiler:create",
        manifest=_MANIFEST,
    ),
    Release(
        "jit_compiler",
        "1.1.0",
        "specializes operations on a constant",
        JIT_COMPILER_1_1_0,
        entry="jit_compiler:create",
        manifest={
            **_MANIFEST,
            "migrate": "jit_compiler:migrate",
            "health_check": "jit_compiler:health",
        },
    ),
)
