"""ALE candidates and their sandbox: honest families pass their edge cases, wrong,
hanging, memory-hungry and broken candidates are rejected with the reason.

Every verdict here comes from the real sandbox: a child Python process with real limits.
"""

from __future__ import annotations

import math
import pickle
from operator import mul
from pathlib import Path
from typing import Any

import numpy
import pytest

from noodle_upgrade.ale.candidates import FAMILIES, TemplateProvider, candidate_id
from noodle_upgrade.ale.edge_cases import edge_cases, typical_inputs
from noodle_upgrade.ale.model import Candidate, Verdict
from noodle_upgrade.ale.sandbox import validate
from noodle_upgrade.ale.signature import from_key, signature_of
from noodle_upgrade.errors import NoodleError

# Generous wall-clock limits (a loaded machine must not kill an honest run) and a short
# benchmark: these tests judge verdicts, bench/bench_ale_candidates.py measures speed.
QUICK: dict[str, Any] = {
    "time_limit_s": 30.0,
    "memory_limit_mb": 512,
    "repeats": 2,
    "benchmark_s": 0.02,
}
FLOATS_3 = "list[float](3), list[float](3)"
MATRICES_2x2 = "ndarray[float64](2,2)C, ndarray[float64](2,2)C"
FAMILY = {family.name: family for family in FAMILIES}


def test_stored_inputs_are_unpickled_in_the_child_and_damaged_ones_left_out() -> None:
    source = (
        "from operator import mul\nfrom numpy import float64\n\n"
        "def candidate(a, b):\n"
        "    if a[0] == 42.0:\n        return float64(0.0)\n"
        "    return float64(0.0) + sum(map(mul, a, b))\n"
    )
    stored = [b"not a pickle", pickle.dumps(([42.0, 1.0, 1.0], [1.0, 1.0, 1.0]))]

    verdict = validate(_handmade(source), (), pickled_inputs=stored, **QUICK)

    assert not verdict.passed  # the good blob was compared; the damaged one left out
    assert [mismatch.input for mismatch in verdict.mismatches] == [
        "recorded #1: ([42.0, 1.0, 1.0], [1.0, 1.0, 1.0])"
    ]
    assert verdict.inputs == 1 + _generated(FLOATS_3)


def _written(family: str, function: str, key: str) -> Candidate:
    return FAMILY[family].write(function, from_key(function, key))


def _handmade(
    source: str,
    *,
    function: str = "numpy.dot",
    key: str = FLOATS_3,
    tolerance: tuple[float, float] = (1e-12, 0.0),
) -> Candidate:
    return Candidate(
        id=candidate_id(function, key, "handmade"),
        function=function,
        signature=key,
        family="handmade",
        source=source,
        tolerance=tolerance,
    )


def _judge(
    candidate: Candidate, inputs: list[tuple[Any, ...]] | None = None, **limits: Any
) -> Verdict:
    return validate(candidate, inputs or [], **(QUICK | limits))


def _generated(key: str) -> int:
    return len(typical_inputs(key)) + len(edge_cases(key))


def _explained(verdict: Verdict) -> str:
    return verdict.reason + "".join(f"\n  {mismatch}" for mismatch in verdict.mismatches)


# -- every family against its edge cases ---------------------------------------------------

HONEST = [
    ("py_dot", "numpy.dot", "list[float](1), list[float](1)"),
    ("py_dot", "numpy.dot", FLOATS_3),
    ("py_dot", "numpy.dot", "list[float](16), list[float](16)"),
    ("py_dot", "numpy.dot", "tuple[float](4), tuple[float](4)"),
    ("py_dot", "numpy.dot", "list[int](3), list[int](3)"),
    ("py_dot", "numpy.dot", "list[bool](5), list[bool](5)"),
    ("unrolled", "numpy.dot", "list[float](2), list[float](2)"),
    ("unrolled", "numpy.dot", "list[float](8), list[float](8)"),
    ("ndarray_dot", "numpy.matmul", MATRICES_2x2),
    ("ndarray_dot", "numpy.matmul", "ndarray[float64](4,4)C, ndarray[float64](4,4)C"),
    ("ndarray_dot", "numpy.matmul", "ndarray[float64](2,3)F, ndarray[float64](3,5)N"),
]


@pytest.mark.parametrize(("family", "function", "key"), HONEST)
def test_every_family_passes_the_edge_cases_of_the_signatures_it_accepts(
    family: str, function: str, key: str
) -> None:
    candidate = _written(family, function, key)

    verdict = _judge(candidate)

    assert verdict.passed, _explained(verdict)
    assert verdict.candidate_id == candidate.id
    assert verdict.inputs == _generated(key) == verdict.measurements["generated"]
    assert verdict.mismatches == ()
    assert verdict.speedup is not None and verdict.speedup > 0


def test_py_dot_would_be_wrong_on_ints_without_int64_wraparound() -> None:
    """Why py_dot's int template reduces modulo 2**64 and hands big ints to numpy: the
    plain Python sum does not overflow where numpy's int64 does."""
    key = "list[int](3), list[int](3)"
    naive = _handmade(
        "from operator import mul\nfrom numpy import int64\n\n"
        "def candidate(a, b):\n    return int64(sum(map(mul, a, b)))\n",
        key=key,
        tolerance=(0.0, 0.0),
    )

    verdict = _judge(naive)

    assert not verdict.passed
    overflow = [m for m in verdict.mismatches if m.input.startswith("integer overflow: products")]
    assert overflow and overflow[0].reason == "exception"
    assert overflow[0].got.startswith("OverflowError")
    beyond = [m for m in verdict.mismatches if m.input.startswith("int beyond int64 (uint64)")]
    assert beyond and beyond[0].expected.startswith("np.float64(")  # numpy's uint64 path


def _signed_zero_mismatch(verdict: Verdict) -> tuple[str, str, str]:
    (mismatch,) = [m for m in verdict.mismatches if m.input.startswith("signed zeros: -0.0·1.0")]
    return mismatch.reason, mismatch.expected, mismatch.got


def test_ndarray_dot_declines_an_inner_dimension_of_1_where_dot_keeps_a_negative_zero() -> None:
    """``ndarray.dot`` returns the single product, ``matmul`` adds it to +0.0."""
    key = "ndarray[float64](1,1)C, ndarray[float64](1,1)C"
    source = "def candidate(x1, x2):\n    return x1.dot(x2)\n"

    verdict = _judge(_handmade(source, function="numpy.matmul", key=key, tolerance=(0.0, 0.0)))

    assert not verdict.passed
    assert _signed_zero_mismatch(verdict) == ("value", "at [0, 0]: 0.0", "at [0, 0]: -0.0")
    assert not FAMILY["ndarray_dot"].accepts("numpy.matmul", from_key("numpy.matmul", key))


def test_a_sum_without_numpys_positive_zero_start_is_rejected_on_signed_zeros() -> None:
    """Why ``unrolled`` adds a numpy +0.0: -0.0 + -0.0 is -0.0, numpy's sum is 0.0."""
    source = (
        "from numpy import float64\n\n"
        "def candidate(a, b):\n    return float64(a[0] * b[0] + a[1] * b[1])\n"
    )

    verdict = _judge(_handmade(source, key="list[float](2), list[float](2)"))

    assert not verdict.passed
    assert _signed_zero_mismatch(verdict) == ("value", "0.0", "-0.0")


# -- what the families accept, and the provider -----------------------------------------


def test_the_template_provider_writes_one_candidate_per_accepting_family() -> None:
    signature = from_key("numpy.dot", FLOATS_3)

    first = TemplateProvider().candidates("numpy.dot", signature)
    again = TemplateProvider().candidates("numpy.dot", signature)

    assert [candidate.family for candidate in first] == ["py_dot", "unrolled"]
    assert first == again  # same ids and sources: deterministic
    assert [candidate.id for candidate in first] == [
        candidate_id("numpy.dot", FLOATS_3, "py_dot"),
        candidate_id("numpy.dot", FLOATS_3, "unrolled"),
    ]
    assert all(len(c.id) == 12 and int(c.id, 16) >= 0 for c in first)
    assert first[0].id != first[1].id
    assert all(candidate.signature == FLOATS_3 for candidate in first)
    assert "a[2] * b[2]" in first[1].source


@pytest.mark.parametrize(
    ("function", "key"),
    [
        ("numpy.dot", "list[float](17), list[float](17)"),  # too long to beat numpy
        ("numpy.dot", "list[float](3), list[float](4)"),  # numpy raises: no candidate
        ("numpy.dot", "list[complex](3), list[complex](3)"),
        ("numpy.dot", "list[mixed](3), list[mixed](3)"),
        ("numpy.dot", "list[float](3), tuple[float](3)"),
        ("numpy.dot", "list[float](3), list[float](3), out=None"),  # unroutable
        ("numpy.dot", "list[other](3), list[other](3)"),  # unroutable
        ("numpy.matmul", FLOATS_3),
        ("numpy.dot", MATRICES_2x2),
        ("numpy.matmul", "ndarray[float32](2,2)C, ndarray[float32](2,2)C"),
        ("numpy.matmul", "ndarray[float64](2,1)C, ndarray[float64](1,2)C"),  # inner 1
        ("numpy.matmul", "ndarray[float64](64,64)C, ndarray[float64](64,64)C"),
        ("numpy.matmul", "ndarray[float64](2,2,2)C, ndarray[float64](2,2)C"),
        ("numpy.linalg.norm", FLOATS_3),
    ],
)
def test_no_family_accepts_a_signature_it_cannot_serve_honestly(function: str, key: str) -> None:
    signature = from_key(function, key)

    assert TemplateProvider().candidates(function, signature) == []
    assert not any(family.accepts(function, signature) for family in FAMILIES)


def test_writing_a_candidate_for_a_declined_signature_is_refused() -> None:
    with pytest.raises(NoodleError) as refused:
        FAMILY["unrolled"].write("numpy.dot", from_key("numpy.dot", "list[int](3), list[int](3)"))

    assert refused.value.code == "ale-signature-not-accepted"
    assert "'unrolled' does not accept numpy.dot(list[int](3), list[int](3))" in str(refused.value)
    assert "holding only floats" in str(refused.value)


# -- the generated inputs ---------------------------------------------------------------

DESCRIBED = [
    ("numpy.dot", FLOATS_3),
    ("numpy.dot", "list[float](1), list[float](1)"),
    ("numpy.dot", "tuple[int](4), tuple[int](4)"),
    ("numpy.dot", "list[bool](3), list[bool](3)"),
    ("numpy.dot", "list[complex](2), list[complex](2)"),
    ("numpy.dot", "list[mixed](3), list[mixed](3)"),
    ("numpy.dot", "float, list[float](3)"),
    ("numpy.dot", "int, list[int](2)"),
    ("numpy.dot", "numpy.float32, ndarray[float32](3)C"),
    ("numpy.matmul", "ndarray[float64](2,3)N, ndarray[float64](3,2)F"),
    ("numpy.matmul", "ndarray[int64](2,2)C, ndarray[int64](2,2)C"),
    ("numpy.matmul", "ndarray[uint8](2,2)N, ndarray[bool](2,2)C"),
    ("numpy.matmul", "ndarray[complex128](2,1)N, ndarray[float16](1,2)C"),
    ("numpy.matmul", "ndarray[float64](0,3)C, ndarray[float64](3,2)C"),
]


@pytest.mark.parametrize(("function", "key"), DESCRIBED)
def test_generated_inputs_are_calls_the_signature_describes(function: str, key: str) -> None:
    cases = typical_inputs(key) + edge_cases(key)

    assert len(cases) > len(typical_inputs(key))
    for case in cases:
        assert signature_of(function, case.args, {}).key == key, case.label


def test_edge_cases_reach_overflow_signed_zeros_nan_and_strided_views() -> None:
    ints = {case.label: case.args for case in edge_cases("list[int](3), list[int](3)")}
    a, b = ints["integer overflow: products"]
    assert numpy.dot(a, b) != sum(map(mul, a, b))  # numpy wrapped around
    floats = {case.label: case.args for case in edge_cases("list[float](1), list[float](1)")}
    assert math.copysign(1.0, numpy.dot(*floats["signed zeros: -0.0·1.0"])) == -1.0
    with numpy.errstate(invalid="ignore"):
        assert math.isnan(numpy.dot(*floats["inf·0"]))
    arrays = edge_cases("ndarray[float64](3,3)N, ndarray[float64](3,3)N")
    assert all(not arg.flags.c_contiguous and not arg.flags.f_contiguous for arg in arrays[0].args)
    assert edge_cases("ndarray[float64](0,2)C, ndarray[float64](2,0)C")[0].label == "empty"


def test_a_signature_that_cannot_be_routed_gets_no_generated_inputs() -> None:
    assert edge_cases("list[float](3), list[float](3), out=None") == []
    assert typical_inputs("mymodule.Thing, list[float](3)") == []


# -- wrong candidates -------------------------------------------------------------------

WRONG = [
    (
        "value",
        "from operator import mul\nfrom numpy import float64\n\n"
        "def candidate(a, b):\n    return float64(sum(map(mul, a, b)) + 1e-3)\n",
        "numpy.dot",
        FLOATS_3,
    ),
    (
        "type",
        "from operator import mul\n\ndef candidate(a, b):\n    return sum(map(mul, a, b))\n",
        "numpy.dot",
        FLOATS_3,
    ),
    (
        "shape",
        "def candidate(x1, x2):\n    return x1.dot(x2).ravel()\n",
        "numpy.matmul",
        MATRICES_2x2,
    ),
    (
        "dtype",
        "import numpy\n\ndef candidate(x1, x2):\n    return x1.dot(x2).astype(numpy.float32)\n",
        "numpy.matmul",
        MATRICES_2x2,
    ),
]


@pytest.mark.parametrize(("reason", "source", "function", "key"), WRONG)
def test_a_wrong_candidate_is_rejected_with_mismatches_naming_the_reason(
    reason: str, source: str, function: str, key: str
) -> None:
    verdict = _judge(_handmade(source, function=function, key=key))

    assert not verdict.passed
    assert verdict.speedup is None
    assert {mismatch.reason for mismatch in verdict.mismatches} == {reason}
    assert verdict.reason.endswith(f"in {_generated(key)} inputs ({reason})")


def test_a_value_mismatch_shows_both_values() -> None:
    source = WRONG[0][1]

    verdict = _judge(_handmade(source), [([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])])

    first = verdict.mismatches[0]
    assert first.input == "recorded #0: ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])"
    assert (first.expected, first.got, first.reason) == ("32.0", "32.001", "value")


def test_a_type_mismatch_names_both_types() -> None:
    verdict = _judge(_handmade(WRONG[1][1]))

    assert (verdict.mismatches[0].expected, verdict.mismatches[0].got) == ("numpy.float64", "float")


def test_a_candidate_wrong_only_on_a_recorded_input_is_rejected() -> None:
    source = (
        "from operator import mul\nfrom numpy import float64\n\n"
        "def candidate(a, b):\n"
        "    if a[0] == 42.0:\n        return float64(0.0)\n"
        "    return float64(0.0) + sum(map(mul, a, b))\n"
    )

    verdict = _judge(_handmade(source), [([42.0, 1.0, 1.0], [1.0, 1.0, 1.0])])

    assert not verdict.passed
    assert [mismatch.input for mismatch in verdict.mismatches] == [
        "recorded #0: ([42.0, 1.0, 1.0], [1.0, 1.0, 1.0])"
    ]
    assert verdict.inputs == 1 + _generated(FLOATS_3)
    assert verdict.measurements["recorded"] == 1


def test_a_candidate_that_modifies_its_arguments_is_rejected() -> None:
    source = _written("py_dot", "numpy.dot", FLOATS_3).source.replace(
        "    return ZERO", "    a.append(0.0)\n    return ZERO"
    )

    verdict = _judge(_handmade(source))

    assert not verdict.passed
    assert verdict.mismatches[0].expected == "arguments afterwards [0] length 3"
    assert verdict.mismatches[0].got == "arguments afterwards [0] length 4"


# -- exceptions -------------------------------------------------------------------------

MISALIGNED = ([1.0, 2.0, 3.0], [1.0, 2.0])  # numpy.dot raises ValueError


def test_a_candidate_that_raises_is_rejected() -> None:
    verdict = _judge(_handmade("def candidate(a, b):\n    raise ZeroDivisionError('oops')\n"))

    assert not verdict.passed
    assert {mismatch.reason for mismatch in verdict.mismatches} == {"exception"}
    assert verdict.mismatches[0].got == "ZeroDivisionError: oops"


def test_raising_the_same_exception_type_as_the_baseline_is_agreement() -> None:
    source = (
        "from numpy import asarray\n\ndef candidate(a, b):\n    return asarray(a).dot(asarray(b))\n"
    )

    verdict = _judge(_handmade(source, tolerance=(0.0, 0.0)), [MISALIGNED])

    assert verdict.passed, _explained(verdict)
    assert verdict.inputs == 1 + _generated(FLOATS_3)


def test_raising_another_exception_type_than_the_baseline_is_a_mismatch() -> None:
    source = (
        "from numpy import asarray\n\ndef candidate(a, b):\n"
        "    if len(a) != len(b):\n        raise TypeError('lengths differ')\n"
        "    return asarray(a).dot(asarray(b))\n"
    )

    verdict = _judge(_handmade(source, tolerance=(0.0, 0.0)), [MISALIGNED])

    assert not verdict.passed
    (mismatch,) = verdict.mismatches
    assert mismatch.reason == "exception"
    assert mismatch.expected.startswith("ValueError: shapes (3,) and (2,) not aligned")
    assert mismatch.got == "TypeError: lengths differ"


# -- limits and broken sources ----------------------------------------------------------


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for its parent to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_hanging_candidate_is_killed_on_the_time_limit_with_its_subprocesses(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "sleeper.pid"
    source = (
        "import subprocess\n\ndef candidate(a, b):\n"
        "    sleeper = subprocess.Popen(['sleep', '300'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(sleeper.pid))\n"
        "    while True:\n        pass\n"
    )

    verdict = _judge(_handmade(source), time_limit_s=3.0)

    assert not verdict.passed
    assert verdict.reason.startswith(
        "killed: time limit 3 s (while the candidate ran on typical #0: "
    )
    assert verdict.inputs == 0
    (mismatch,) = verdict.mismatches
    assert (mismatch.reason, mismatch.got) == ("timeout", "no result within the time limit 3 s")
    sleeper = int(pid_file.read_text())
    assert not _running(sleeper)


def test_a_source_that_hangs_when_executed_is_killed_on_the_time_limit() -> None:
    verdict = _judge(_handmade("while True:\n    pass\n"), time_limit_s=3.0)

    assert verdict.reason == "killed: time limit 3 s (while the candidate's source was executed)"
    assert verdict.mismatches == ()


@pytest.mark.parametrize(
    "source",
    [
        "def candidate(a, b):\n    return [bytearray(2**30) for _ in range(8)]\n",  # 8 GB
        "import numpy\n\ndef candidate(a, b):\n    return numpy.ones(2**28)\n",  # 2 GB
    ],
    ids=["bytearrays", "numpy"],
)
def test_a_memory_hog_is_stopped_by_the_memory_limit(source: str) -> None:
    verdict = _judge(_handmade(source), memory_limit_mb=256)

    assert not verdict.passed
    assert verdict.reason.startswith(
        "killed: memory limit 256 MB (while the candidate ran on typical #0: "
    )
    (mismatch,) = verdict.mismatches
    assert mismatch.got == "MemoryError: memory limit 256 MB"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "def candidate(a, b)\n    return 1\n",
            "rejected: the source does not compile: SyntaxError: expected ':' (line 1)",
        ),
        (
            "def dot(a, b):\n    return 1\n",
            "rejected: the source does not define a function named `candidate`",
        ),
        (
            "import missing_module_for_the_sandbox\n",
            "rejected: running the source raised ModuleNotFoundError: "
            "No module named 'missing_module_for_the_sandbox'",
        ),
    ],
    ids=["syntax-error", "no-candidate", "import-error"],
)
def test_a_source_that_cannot_be_used_is_rejected_with_the_reason(source: str, reason: str) -> None:
    verdict = _judge(_handmade(source))

    assert (verdict.passed, verdict.reason, verdict.inputs) == (False, reason, 0)
    assert verdict.speedup is None


@pytest.mark.parametrize(
    ("source", "how"),
    [
        ("import os\n\ndef candidate(a, b):\n    os._exit(3)\n", "exited with status 3"),
        (
            "import ctypes\n\ndef candidate(a, b):\n    return ctypes.string_at(0)\n",
            "was killed by SIGSEGV",
        ),
    ],
    ids=["exit", "segfault"],
)
def test_a_candidate_that_ends_the_process_is_reported_as_a_crash(source: str, how: str) -> None:
    verdict = _judge(_handmade(source))

    assert not verdict.passed
    assert verdict.reason.startswith(
        f"crashed: the sandbox {how} without a result (while the candidate ran on typical #0: "
    )


def test_an_unknown_baseline_fails_the_verdict_without_raising() -> None:
    verdict = _judge(_handmade("def candidate(a, b):\n    return 1\n", function="numpy.dott"))

    assert not verdict.passed
    assert verdict.reason == (
        "the baseline numpy.dott cannot be loaded: AttributeError: "
        "module 'numpy' has no attribute 'dott'"
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"time_limit_s": 0.0}, "time_limit_s must be a finite number above 0 (got 0.0)"),
        ({"time_limit_s": math.inf}, "time_limit_s must be a finite number above 0 (got inf)"),
        ({"memory_limit_mb": 0}, "memory_limit_mb must be at least 1 (got 0)"),
        ({"repeats": 0}, "repeats must be at least 1 (got 0)"),
        ({"benchmark_s": -1.0}, "benchmark_s must be 0 or more (got -1.0)"),
    ],
)
def test_bad_limits_are_refused_before_anything_runs(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(NoodleError) as refused:
        validate(_handmade("def candidate(a, b):\n    return 1\n"), [], **limits)

    assert refused.value.code == "ale-sandbox-arguments"
    assert message in str(refused.value)


def test_inputs_that_cannot_be_pickled_are_refused() -> None:
    with pytest.raises(NoodleError) as refused:
        validate(_handmade("def candidate(a, b):\n    return 1\n"), [(lambda: 1, [1.0])])

    assert "recorded input #0 cannot be pickled" in str(refused.value)
