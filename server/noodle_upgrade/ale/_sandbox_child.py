"""The sandbox's child process: one candidate judged against its baseline.

``ale.sandbox`` runs ``python -m noodle_upgrade.ale._sandbox_child PAYLOAD REPORT``. The
payload (a pickle the parent wrote) holds the candidate, its baseline's dotted name, the
recorded inputs, the limits and the benchmark budget. The report is JSON lines: a
``progress`` line before each step that could hang or blow up (so a parent that has to
kill the child can say where it was), then one ``result`` line.

The order of the steps is chosen so that the limits fall on the candidate and not on
the sandbox: numpy, the baseline and the inputs are loaded first; then the address
space may grow by ``memory_limit_mb`` at most and the CPU time is capped (a backstop for
the parent's wall-clock kill); then the candidate's source is executed and compared. A
``MemoryError`` raised under the limit ends the run with the ``memory`` outcome; the
limit is lifted again to write the report.

Each side gets its own copy of every input (the cases are built twice; building is
deterministic), so a candidate that modifies its arguments cannot spoil the baseline's
inputs, and the arguments are compared after the calls as well as the results.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import json
import math
import pickle
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from noodle_upgrade.ale.edge_cases import Case, edge_cases, typical_inputs
from noodle_upgrade.ale.equivalence import (
    Difference,
    Outcome,
    compare,
    compare_outcomes,
    describe,
)

# Returned while the memory limit still holds: a constant, nothing to allocate.
OUT_OF_MEMORY: dict[str, Any] = {"outcome": "memory"}
CPU_MARGIN_S = 1  # the CPU cap is a backstop: the parent kills on wall-clock time first
BENCHMARK_SHARE = 0.5  # of the time left at the benchmark, at most


class Reporter:
    """Writes the report's JSON lines unbuffered: a killed child leaves its last step."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def progress(self, **fields: Any) -> None:
        self._write({"progress": fields})

    def result(self, **fields: Any) -> None:
        self._write({"result": fields})

    def _write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record).encode() + b"\n")


class Rejected(Exception):
    """The candidate's source cannot be used: the reason is the message."""


def main(argv: list[str]) -> int:
    payload_path, report_path = argv
    with open(report_path, "ab", buffering=0) as stream:
        report = Reporter(stream)
        payload = pickle.loads(Path(payload_path).read_bytes())
        report.result(**judge(payload, report))
    return 0


def judge(payload: dict[str, Any], report: Reporter) -> dict[str, Any]:
    """Everything the child does, as the ``result`` record's fields."""
    try:
        baseline = resolve(payload["function"])
    except Exception as exc:
        return {"outcome": "baseline", "reason": f"{type(exc).__name__}: {exc}"}
    try:
        cases_for_baseline = build_cases(payload)
        cases_for_candidate = build_cases(payload)
    except Exception as exc:
        return {"outcome": "inputs", "reason": f"{type(exc).__name__}: {exc}"}
    lift = limit(payload["memory_limit_mb"], payload["time_limit_s"])
    try:
        candidate = load(payload["source"], payload["candidate_id"], report)
        return compare_all(
            baseline, candidate, cases_for_baseline, cases_for_candidate, payload, report
        )
    except MemoryError:
        return OUT_OF_MEMORY
    except Rejected as exc:
        return {"outcome": "rejected", "reason": str(exc)}
    finally:
        lift()


def resolve(function: str) -> Callable[..., Any]:
    """The object a dotted name such as ``numpy.dot`` names: its module, then attributes."""
    parts = function.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        if not callable(found):
            raise TypeError(f"{function} is a {type(found).__name__}, not a function")
        return found  # type: ignore[no-any-return]
    raise ImportError(f"no module of {function!r} can be imported")


def build_cases(payload: dict[str, Any]) -> list[tuple[Case, bool]]:
    """Every input to compare on, each with whether it is one to benchmark on.

    Recorded inputs are benchmarked; without any, the typical ones stand in for them.
    """
    recorded = [
        Case(f"recorded #{number}", args)
        for number, data in enumerate(payload["inputs"])
        if (args := _unpickled(data)) is not None
    ]
    typical = typical_inputs(payload["signature"])
    generated = [*typical, *edge_cases(payload["signature"])]
    benchmarked = {id(case) for case in (recorded or typical)}
    return [(case, id(case) in benchmarked) for case in [*recorded, *generated]]


def _unpickled(data: bytes) -> tuple[Any, ...] | None:
    """A recorded input, or None for one that no longer loads (numpy changed, a class
    moved): it is left out. Unpickling happens here, in the limited child, because a
    pickle from the store is code."""
    try:
        return tuple(pickle.loads(data))
    except Exception:
        return None


def limit(memory_limit_mb: int, time_limit_s: float) -> Callable[[], None]:
    """Cap the address space's growth and the CPU time; returns what lifts the first cap."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = address_space_bytes() + memory_limit_mb * 2**20
    for inherited in (soft, hard):  # never loosen a limit the sandbox was started under
        if inherited != resource.RLIM_INFINITY:
            ceiling = min(ceiling, inherited)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_soft = math.ceil(used.ru_utime + used.ru_stime + time_limit_s) + CPU_MARGIN_S
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if cpu_hard == resource.RLIM_INFINITY or cpu_soft < cpu_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def address_space_bytes() -> int:
    """The process's virtual size now (Linux); 0 where it cannot be read."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def load(source: str, candidate_id: str, report: Reporter) -> Callable[..., Any]:
    report.progress(step="load")
    try:
        code = compile(source, f"<candidate {candidate_id}>", "exec")
    except SyntaxError as exc:
        raise Rejected(
            f"the source does not compile: SyntaxError: {exc.msg} (line {exc.lineno})"
        ) from None
    namespace: dict[str, Any] = {"__name__": "noodle_ale_candidate", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except MemoryError:
        raise
    except BaseException as exc:  # SystemExit too: the source is the candidate's
        raise Rejected(f"running the source raised {type(exc).__name__}: {exc}") from None
    candidate = namespace.get("candidate")
    if not callable(candidate):
        raise Rejected("the source does not define a function named `candidate`")
    return candidate  # type: ignore[no-any-return]


def call(function: Callable[..., Any], args: tuple[Any, ...]) -> Outcome:
    try:
        return Outcome(value=function(*args))
    except MemoryError:
        raise
    except BaseException as exc:
        return Outcome(error=exc)


def compare_all(
    baseline: Callable[..., Any],
    candidate: Callable[..., Any],
    cases_for_baseline: list[tuple[Case, bool]],
    cases_for_candidate: list[tuple[Case, bool]],
    payload: dict[str, Any],
    report: Reporter,
) -> dict[str, Any]:
    """Compare on every input, then benchmark when nothing differed."""
    tolerance = tuple(payload["tolerance"])
    mismatches = []
    bench_baseline, bench_candidate = [], []
    for (case, benchmarked), (twin, _) in zip(cases_for_baseline, cases_for_candidate, strict=True):
        shown = f"{case.label}: {describe(case.args)}"
        report.progress(step="compare", side="baseline", input=shown)
        expected = call(baseline, case.args)
        report.progress(step="compare", side="candidate", input=shown)
        got = call(candidate, twin.args)
        difference = compare_outcomes(expected, got, tolerance) or arguments_changed(case, twin)
        if difference is not None:
            mismatches.append({"input": shown, **asdict(difference)})
        elif benchmarked and expected.error is None:
            bench_baseline.append(case.args)
            bench_candidate.append(twin.args)
    fields: dict[str, Any] = {
        "outcome": "compared",
        "inputs": len(cases_for_baseline),
        "recorded": len(payload["inputs"]),
        "mismatches": mismatches,
    }
    if not mismatches and bench_baseline:
        report.progress(step="benchmark")
        fields["benchmark"] = benchmark(
            baseline, candidate, bench_baseline, bench_candidate, payload
        )
    return fields


def arguments_changed(case: Case, twin: Case) -> Difference | None:
    """A difference when the two sides left their (equal) arguments in different states."""
    difference = compare(case.args, twin.args, (0.0, 0.0))
    if difference is None:
        return None
    return Difference(
        difference.reason,
        f"arguments afterwards {difference.expected}",
        f"arguments afterwards {difference.got}",
    )


def benchmark(
    baseline: Callable[..., Any],
    candidate: Callable[..., Any],
    baseline_inputs: list[tuple[Any, ...]],
    candidate_inputs: list[tuple[Any, ...]],
    payload: dict[str, Any],
) -> dict[str, Any]:
    """Interleaved rounds (baseline, candidate, baseline, …); the fastest round of each.

    Interleaving puts both under the same machine load; the minimum is the round least
    disturbed by other processes. A first pass of each sizes the rounds to the budget.
    """
    repeats = payload["repeats"]
    left = payload["deadline"] - time.monotonic()  # the parent's clock: the same on Linux
    budget = max(0.0, min(payload["benchmark_s"], left * BENCHMARK_SHARE))
    one_pass = max(timed(baseline, baseline_inputs, 1), timed(candidate, candidate_inputs, 1), 1e-9)
    number = max(1, int(budget / (2 * repeats * one_pass)))
    best_baseline = best_candidate = math.inf
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection would land in one side's round
    try:
        for _ in range(repeats):
            best_baseline = min(best_baseline, timed(baseline, baseline_inputs, number))
            best_candidate = min(best_candidate, timed(candidate, candidate_inputs, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    calls = number * len(baseline_inputs)
    return {
        "baseline_ns": best_baseline / calls * 1e9,
        "candidate_ns": best_candidate / calls * 1e9,
        "calls_per_round": calls,
        "rounds": repeats,
        "benchmark_inputs": len(baseline_inputs),
    }


def timed(function: Callable[..., Any], inputs: list[tuple[Any, ...]], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        for args in inputs:
            function(*args)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
