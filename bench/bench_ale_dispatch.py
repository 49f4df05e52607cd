"""ALE's dispatcher: what interception costs (goal: unrouted ≤ +15% of ``numpy.dot``).

For each call, interleaved rounds, minimum per side:

- original: the function as numpy ships it;
- unrouted: the dispatcher's wrapper with no live route, the price every intercepted call
  pays: a counter and one comparison, plus one sample in 1024 calls (signature, timing
  and call site, recorded into a real store), amortised;
- routed: the wrapper serving a promoted candidate, dispatcher included: the guard (exact
  types, then length and element types, or dtype, shape and layout) and the candidate;
- candidate: the candidate called directly, so that routed − candidate is what routing
  itself costs.

The calls: ``numpy.dot`` on two 8-element float64 arrays (the design's reference for the
unrouted overhead; the candidate ``a.dot(b)`` skips numpy's ``__array_function__``
dispatch but saves less than routing costs, so a route there does not pay: the promotion
must not keep it), on two 3-float lists (the pilot's small-list call: a pure-Python sum
of products, expected ≥ 1.5× faster than ``numpy.dot`` with the dispatcher included), and
``numpy.matmul`` on two 2×2 float64 arrays routed to ``x1.dot(x2)``.

Read the ratios: the machines are shared and noisy, absolute times are not the point.
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from common import best_per_call, header, table, verdict
from noodle_upgrade import ale
from noodle_upgrade.ale.dispatcher import Dispatcher, compile_candidate
from noodle_upgrade.ale.model import Candidate, Status
from noodle_upgrade.ale.session import DEFAULT_SAMPLE_RATE, Session
from noodle_upgrade.store import Store
from noodle_upgrade.store.ale import AleStore

UNROUTED_GOAL = 0.15  # overhead over numpy.dot on the arrays
ROUTED_LIST_GOAL = 1.5  # speedup of the promoted route on the lists
ROUNDS = 30
NUMBER = 10_000

LIST_DOT = """\
from operator import mul
from numpy import float64


def candidate(a, b):
    return float64(sum(map(mul, a, b)))
"""


@dataclass(frozen=True)
class Case:
    label: str
    function: str  # the dotted target
    args: tuple[Any, Any]
    key: str  # the signature the candidate serves
    source: str
    goal: str  # "unrouted", "routed" or "" (shown, no goal)

    @property
    def attribute(self) -> str:
        return self.function.rpartition(".")[2]


CASES = [
    Case(
        "numpy.dot, two 8-element float64 arrays",
        "numpy.dot",
        (numpy.arange(8.0), numpy.arange(8.0)),
        "ndarray[float64](8)C, ndarray[float64](8)C",
        "def candidate(a, b):\n    return a.dot(b)\n",
        "unrouted",
    ),
    Case(
        "numpy.dot, two 3-float lists",
        "numpy.dot",
        ([1.5, 2.5, 3.5], [4.5, 5.5, 6.5]),
        "list[float](3), list[float](3)",
        LIST_DOT,
        "routed",
    ),
    Case(
        "numpy.matmul, two 2x2 float64 arrays",
        "numpy.matmul",
        (numpy.ones((2, 2)), numpy.ones((2, 2))),
        "ndarray[float64](2,2)C, ndarray[float64](2,2)C",
        "def candidate(x1, x2):\n    return x1.dot(x2)\n",
        "",
    ),
]


def promote(db_path: Path) -> None:
    """Store each case's candidate as a promoted route, as ``noodle ale approve`` would."""
    with Store.open(db_path) as store:
        ale_store = AleStore(store)
        for index, case in enumerate(CASES):
            candidate = Candidate(
                id=f"bench-{index}",
                function=case.function,
                signature=case.key,
                family="bench",
                source=case.source,
            )
            ale_store.insert_candidate(candidate, status=Status.VALIDATED)
            ale_store.set_status(candidate.id, Status.PROMOTED, actor="bench")


def timer(function: Callable[..., Any], args: tuple[Any, Any]) -> timeit.Timer:
    return timeit.Timer("f(a, b)", globals={"f": function, "a": args[0], "b": args[1]})


def goal_text(case: Case, overhead: float, speedup: float) -> str:
    if case.goal == "unrouted":
        return f"unrouted ≤ +{UNROUTED_GOAL:.0%} {verdict(overhead <= UNROUTED_GOAL)}"
    if case.goal == "routed":
        return f"routed ≥ {ROUTED_LIST_GOAL}× {verdict(speedup >= ROUTED_LIST_GOAL)}"
    return ""


def measure(case: Case, session: Session) -> list[str]:
    dispatcher = session.dispatcher(case.function)
    original = dispatcher.original
    # The same wrapper with no route: a second dispatcher over the same original.
    unrouted = Dispatcher(
        case.function,
        original,
        session.recorder,
        interval=round(1 / DEFAULT_SAMPLE_RATE),
        warm_seconds=0.0,
    ).wrapper
    routed = getattr(numpy, case.attribute)
    route = next(route for route in dispatcher.routes if route.guard.key == case.key)
    candidate = compile_candidate(route.record.candidate)
    assert numpy.array_equal(routed(*case.args), original(*case.args))
    timers = {
        "original": timer(original, case.args),
        "unrouted": timer(unrouted, case.args),
        "routed": timer(routed, case.args),
        "candidate": timer(candidate, case.args),
    }
    best = best_per_call(timers, ROUNDS, NUMBER)
    overhead = best["unrouted"] / best["original"] - 1
    speedup = best["original"] / best["routed"]
    return [
        case.label,
        f"{best['original'] * 1e9:.0f}",
        f"{best['unrouted'] * 1e9:.0f} ({overhead:+.0%})",
        f"{best['routed'] * 1e9:.0f} ({speedup:.2f}×)",
        f"{best['candidate'] * 1e9:.0f}",
        f"{(best['routed'] - best['candidate']) * 1e9:.0f}",
        goal_text(case, overhead, speedup),
    ]


def main() -> int:
    header("ALE dispatcher: intercepted calls, unrouted and routed")
    rows = []
    with tempfile.TemporaryDirectory(prefix="noodle-bench-ale-") as folder:
        db_path = Path(folder) / "state.db"
        promote(db_path)
        targets = sorted({case.function for case in CASES})
        with ale.enable(db_path, targets=targets, warm_seconds=0.0) as session:
            rows = [measure(case, session) for case in CASES]
    headers = ["call", "original ns", "unrouted ns", "routed ns", "candidate ns", "routing ns"]
    print(table([*headers, "goal"], rows))
    print(
        "unrouted: +% over the original; routed: × speedup over the original, dispatcher "
        "included; routing: routed − candidate"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
