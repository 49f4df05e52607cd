"""ALE candidates: the speedup of each template family per signature, as the sandbox sees it.

Every row is one ``ale.sandbox.validate`` run: the candidate is compared with its
baseline on the signature's typical and edge-case inputs in the sandbox child, then both
are timed there, interleaved (baseline, candidate, baseline, …), on the typical inputs
(what stands in for recorded ones), and the fastest round of each side is kept. The
ratio is the candidate's alone: the dispatcher that routes to it adds its own cost
(bench_ale_dispatch.py).

DESIGN §6 goal: a promoted route is never slower than the baseline and ≥ 1.5× faster on
the pilot's small-list calls (``numpy.dot`` of short float lists).
"""

from __future__ import annotations

import sys

from common import header, table, verdict
from noodle_upgrade.ale.candidates import FAMILIES
from noodle_upgrade.ale.sandbox import validate
from noodle_upgrade.ale.signature import from_key

SMALL_LIST_GOAL = 1.5
REPEATS = 9
FAMILY = {family.name: family for family in FAMILIES}

ROWS = [
    # (family, function, signature key, a small-list call of the pilot?)
    ("py_dot", "numpy.dot", "list[float](3), list[float](3)", True),
    ("py_dot", "numpy.dot", "list[float](8), list[float](8)", True),
    ("py_dot", "numpy.dot", "list[float](16), list[float](16)", True),
    ("unrolled", "numpy.dot", "list[float](3), list[float](3)", True),
    ("unrolled", "numpy.dot", "list[float](8), list[float](8)", True),
    ("py_dot", "numpy.dot", "list[int](3), list[int](3)", False),
    ("py_dot", "numpy.dot", "list[bool](4), list[bool](4)", False),
    ("ndarray_dot", "numpy.matmul", "ndarray[float64](2,2)C, ndarray[float64](2,2)C", False),
    ("ndarray_dot", "numpy.matmul", "ndarray[float64](4,4)C, ndarray[float64](4,4)C", False),
    ("ndarray_dot", "numpy.matmul", "ndarray[float64](16,16)C, ndarray[float64](16,16)C", False),
]


def measure(family: str, function: str, key: str, small_list: bool) -> list[str]:
    candidate = FAMILY[family].write(function, from_key(function, key))
    judged = validate(candidate, [], time_limit_s=60.0, repeats=REPEATS, benchmark_s=1.0)
    call = f"{function}({key})"
    if not judged.passed or judged.speedup is None:
        return [call, family, "-", "-", "-", "-", judged.reason or "no benchmark"]
    goal = SMALL_LIST_GOAL if small_list else 1.0
    return [
        call,
        family,
        f"{judged.inputs} / {len(judged.mismatches)}",
        f"{judged.measurements['baseline_ns']:.0f}",
        f"{judged.measurements['candidate_ns']:.0f}",
        f"{judged.speedup:.2f}×",
        f"≥ {goal}× {verdict(judged.speedup >= goal)}",
    ]


def main() -> int:
    header(f"ALE candidates: speedup per family and signature (interleaved, min of {REPEATS})")
    rows = [measure(*row) for row in ROWS]
    columns = ["call", "family", "inputs / mismatches", "baseline ns", "candidate ns"]
    print(table([*columns, "speedup", "goal"], rows))
    print(
        f"\nGoal: ≥ {SMALL_LIST_GOAL}× on the pilot's small-list calls (numpy.dot of short "
        "float lists), never slower elsewhere. The candidate alone, without the dispatcher."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
