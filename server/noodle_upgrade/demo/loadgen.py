"""Concurrent load: threads that compile and run random programs and check every answer.

The expected answer never comes from the components under test: each program is
generated as a tree whose value, for the run's input ``x``, is computed directly; the tree
is then rendered to text. The text
evaluator :func:`evaluate` is a second, independent reference (used by the tests to
check the generator and available to anyone who wants to check a program by hand).
"""

from __future__ import annotations

import random
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

# A generated program: an integer, an input's name, or (operator, left, right).
Expr: TypeAlias = "int | str | tuple[str, Expr, Expr]"
Inputs = Mapping[str, int]

OPERATORS = ("+", "-", "*")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
_ATOM = 3  # precedence of a literal or a parenthesised expression
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class Program:
    source: str
    inputs: Inputs  # the values of its inputs for this run: {"x": 5}
    expected: int


# --- generating programs ----------------------------------------------------------------


def value_of(expr: Expr, inputs: Inputs | None = None) -> int:
    """The value of a generated tree, computed directly in Python."""
    if isinstance(expr, int):
        return expr
    if isinstance(expr, str):
        return (inputs or {})[expr]
    operator, left, right = expr
    a, b = value_of(left, inputs), value_of(right, inputs)
    if operator == "+":
        return a + b
    if operator == "-":
        return a - b
    return a * b


def random_expr(rng: random.Random, leaves: int, input_share: float = 0.3) -> Expr:
    """A random tree with ``leaves`` leaves: integers 0 to 99, or the input ``x``."""
    if leaves <= 1:
        return "x" if rng.random() < input_share else rng.randint(0, 99)
    split = rng.randint(1, leaves - 1)
    return (rng.choice(OPERATORS), random_expr(rng, split), random_expr(rng, leaves - split))


def render(expr: Expr, rng: random.Random | None = None, extra_parens: float = 0.15) -> str:
    """Source text for ``expr``: the parentheses it needs, plus some it does not."""

    def text(node: Expr) -> tuple[str, int]:
        if not isinstance(node, tuple):
            return str(node), _ATOM
        operator, left, right = node
        precedence = _PRECEDENCE[operator]
        left_text, left_precedence = text(left)
        right_text, right_precedence = text(right)
        if left_precedence < precedence:  # (a + b) * c
            left_text = f"({left_text})"
        if right_precedence <= precedence:  # a - (b + c), a * (b * c): kept as written
            right_text = f"({right_text})"
        combined = f"{left_text} {operator} {right_text}"
        if rng is not None and rng.random() < extra_parens:
            return f"({combined})", _ATOM
        return combined, precedence

    return text(expr)[0]


def random_program(rng: random.Random, max_leaves: int = 12) -> Program:
    expr = random_expr(rng, rng.randint(1, max_leaves))
    inputs = {"x": rng.randint(-50, 50)}
    return Program(render(expr, rng), inputs, value_of(expr, inputs))


class ProgramMix:
    """Programs as a service sees them: some sources come back again and again (a fixed
    hot set, run with fresh inputs each time), the rest are new. Hot sources are what a
    compile cache saves work on."""

    def __init__(self, seed: int, *, hot_programs: int = 256, hot_share: float = 0.5) -> None:
        rng = random.Random(seed)
        self.hot_share = hot_share
        self.hot: list[tuple[Expr, str]] = []
        for _ in range(hot_programs):
            expr = random_expr(rng, rng.randint(1, 12))
            self.hot.append((expr, render(expr, rng)))

    def next(self, rng: random.Random) -> Program:
        if self.hot and rng.random() < self.hot_share:
            expr, source = rng.choice(self.hot)
            inputs = {"x": rng.randint(-50, 50)}
            return Program(source, inputs, value_of(expr, inputs))
        return random_program(rng)


# --- the independent text evaluator -----------------------------------------------------


def evaluate(source: str, inputs: Inputs | None = None) -> int:
    """Evaluate a program's text: integers, inputs, ``+ - *``, parentheses, any whitespace.

    Shunting-yard over its own scanner, sharing no code with the demo's components.
    Raises ``ValueError`` on malformed input and ``KeyError`` on an input not given.
    """
    inputs = inputs or {}
    values: list[int] = []
    pending: list[str] = []  # operators and "("

    def reduce() -> None:
        operator = pending.pop()
        if len(values) < 2:
            raise ValueError(f"operator {operator!r} is missing an operand in {source!r}")
        b, a = values.pop(), values.pop()
        values.append(a + b if operator == "+" else a - b if operator == "-" else a * b)

    expect_operand = True
    position = 0
    while position < len(source):
        char = source[position]
        if char.isspace():
            position += 1
        elif char in _DIGITS:
            if not expect_operand:
                raise ValueError(f"two operands in a row at offset {position} of {source!r}")
            start = position
            while position < len(source) and source[position] in _DIGITS:
                position += 1
            values.append(int(source[start:position]))
            expect_operand = False
        elif (char.isalpha() or char == "_") and char.isascii() and expect_operand:
            start = position
            while position < len(source) and (
                source[position].isalnum() or source[position] == "_"
            ):
                position += 1
            values.append(inputs[source[start:position]])
            expect_operand = False
        elif char in _PRECEDENCE and not expect_operand:
            while pending and pending[-1] != "(" and _PRECEDENCE[pending[-1]] >= _PRECEDENCE[char]:
                reduce()
            pending.append(char)
            expect_operand = True
            position += 1
        elif char == "(" and expect_operand:
            pending.append(char)
            position += 1
        elif char == ")" and not expect_operand:
            while pending and pending[-1] != "(":
                reduce()
            if not pending:
                raise ValueError(f"unbalanced ')' at offset {position} of {source!r}")
            pending.pop()
            position += 1
        else:
            raise ValueError(f"unexpected {char!r} at offset {position} of {source!r}")
    if expect_operand:
        raise ValueError(f"{source!r} ends where an operand is expected")
    while pending:
        if pending[-1] == "(":
            raise ValueError(f"unbalanced '(' in {source!r}")
        reduce()
    (result,) = values
    return result


# --- the load -------------------------------------------------------------------------


@dataclass
class _Worker:
    """One load thread's counters; only that thread writes them."""

    calls: int = 0
    errors: int = 0
    wrong: int = 0
    starts: array[float] = field(default_factory=lambda: array("d"))
    latencies: array[float] = field(default_factory=lambda: array("d"))


@dataclass(frozen=True)
class LoadTotals:
    calls: int
    errors: int  # the call raised: a client-visible error
    wrong_answers: int  # the call returned, with the wrong value
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class Failure:
    """A sample of what went wrong, for the report."""

    source: str
    inputs: Inputs
    expected: int
    outcome: str  # "raised TypeError: …" or "returned 12"


class LoadGenerator:
    """``threads`` threads calling ``run(source)`` on random programs until stopped.

    Each call is timed (``time.perf_counter``); ``think_s`` is a pause between a thread's
    calls, so the load is a busy service rather than a GIL-saturating spin. ``hot_share``
    of the programs come from a fixed set of ``hot_programs`` sources (see
    :class:`ProgramMix`).
    """

    def __init__(
        self,
        run: Callable[[str, Inputs], int],
        *,
        threads: int = 4,
        think_s: float = 0.0005,
        seed: int = 20240611,
        max_failures: int = 5,
        hot_programs: int = 256,
        hot_share: float = 0.5,
    ) -> None:
        self._run = run
        self._mix = ProgramMix(seed - 1, hot_programs=hot_programs, hot_share=hot_share)
        self._think_s = think_s
        self._seed = seed
        self._max_failures = max_failures
        self._workers = [_Worker() for _ in range(threads)]
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._failures: list[Failure] = []
        self._failures_lock = threading.Lock()
        self._started = 0.0
        self._stopped: float | None = None

    @property
    def threads(self) -> int:
        return len(self._workers)

    def start(self) -> None:
        self._started = time.perf_counter()
        for index, worker in enumerate(self._workers):
            thread = threading.Thread(
                target=self._loop,
                args=(worker, random.Random(self._seed + index)),
                name=f"noodle-demo-load-{index}",
                daemon=True,  # never keeps the process alive if the demo itself fails
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._stopped is None:
            self._stopped = time.perf_counter()

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop(self, worker: _Worker, rng: random.Random) -> None:
        run, think, stop, mix = self._run, self._think_s, self._stop, self._mix
        clock = time.perf_counter
        while not stop.is_set():
            program = mix.next(rng)
            started = clock()
            try:
                got = run(program.source, program.inputs)
            except Exception as exc:
                latency = clock() - started
                worker.errors += 1
                self._fail(program, f"raised {type(exc).__name__}: {exc}")
            else:
                latency = clock() - started
                if got != program.expected:
                    worker.wrong += 1
                    self._fail(program, f"returned {got!r}")
            worker.starts.append(started)
            worker.latencies.append(latency)
            worker.calls += 1
            if think > 0:
                time.sleep(think)

    def _fail(self, program: Program, outcome: str) -> None:
        with self._failures_lock:
            if len(self._failures) < self._max_failures:
                failure = Failure(program.source, program.inputs, program.expected, outcome)
                self._failures.append(failure)

    # -- reading -------------------------------------------------------------------------

    def totals(self) -> LoadTotals:
        end = self._stopped if self._stopped is not None else time.perf_counter()
        return LoadTotals(
            calls=sum(w.calls for w in self._workers),
            errors=sum(w.errors for w in self._workers),
            wrong_answers=sum(w.wrong for w in self._workers),
            elapsed_s=end - self._started if self._started else 0.0,
        )

    def failures(self) -> list[Failure]:
        with self._failures_lock:
            return list(self._failures)

    def timings(self) -> list[tuple[float, float]]:
        """``(start, latency)`` of every call, in seconds; read it after :meth:`stop`."""
        pairs: list[tuple[float, float]] = []
        for worker in self._workers:
            count = min(len(worker.starts), len(worker.latencies))
            pairs.extend(zip(worker.starts[:count], worker.latencies[:count], strict=True))
        return pairs
