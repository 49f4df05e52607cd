"""Judge one candidate against its baseline in a child process with limits (DESIGN §5, §7).

``validate`` writes the candidate, the baseline's dotted name and the recorded inputs to
a temporary folder and runs ``python -m noodle_upgrade.ale._sandbox_child`` there, in a
session of its own. The child compares candidate and baseline on the recorded inputs,
typical random ones and the edge cases of the signature (``ale.edge_cases``) under the
rules of ``ale.equivalence``, then benchmarks both interleaved, and reports JSON lines.

Limits: the child caps its own address-space growth (``memory_limit_mb`` beyond what
Python, numpy and the baseline take) and CPU time; the parent kills the whole process
group when ``time_limit_s`` of wall-clock time have passed (a candidate's
subprocesses go with it), and after a normal exit too. BLAS runs on one thread in the
child: small calls do not use more, and thread stacks would eat the memory budget.

The limits protect against mistakes (a hang, a memory hog, a crash, wrong results), not
against a hostile candidate: the child is an ordinary Python process of the same user.

Every misbehaviour of the candidate becomes a ``Verdict`` with ``passed=False`` and a
reason; ``validate`` raises only for its own bad arguments or unpicklable inputs.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import noodle_upgrade
from noodle_upgrade.ale.model import Candidate, Mismatch, Verdict
from noodle_upgrade.errors import NoodleError

CHILD_MODULE = "noodle_upgrade.ale._sandbox_child"
MISMATCHES_KEPT = 20  # a verdict shows the first ones; its reason counts them all
OUTPUT_SHOWN = 400  # characters of the child's output quoted when it crashes
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def validate(
    candidate: Candidate,
    inputs: Sequence[tuple[Any, ...]],
    *,
    time_limit_s: float = 10.0,
    memory_limit_mb: int = 512,
    repeats: int = 7,
    benchmark_s: float = 1.0,
    pickled_inputs: Sequence[bytes] = (),
) -> Verdict:
    """Compare ``candidate`` with its baseline on ``inputs`` (recorded positional
    arguments) and the signature's edge cases, then benchmark: the sandbox's verdict.
    ``pickled_inputs`` are recorded inputs as the store keeps them: only the child
    unpickles them (a pickle is code), and one that does not load is left out.

    ``benchmark_s`` is the time the interleaved rounds may take in all; it is cut to
    half of what is left of ``time_limit_s`` when that is less.
    """
    _check_arguments(time_limit_s, memory_limit_mb, repeats, benchmark_s)
    recorded = [*_pickled(inputs), *pickled_inputs]
    limits = {"time_limit_s": time_limit_s, "memory_limit_mb": memory_limit_mb}
    with tempfile.TemporaryDirectory(prefix="noodle-ale-sandbox-") as folder:
        root = Path(folder)
        payload = {
            "candidate_id": candidate.id,
            "function": candidate.function,
            "signature": candidate.signature,
            "source": candidate.source,
            "tolerance": list(candidate.tolerance),
            "inputs": recorded,
            "repeats": repeats,
            "benchmark_s": benchmark_s,
            "deadline": time.monotonic() + time_limit_s,
            **limits,
        }
        (root / "payload.pickle").write_bytes(pickle.dumps(payload))
        started = time.monotonic()
        killed, returncode = _run_child(root, time_limit_s)
        elapsed = time.monotonic() - started
        records = _records(root / "report.jsonl")
        output = _tail(root / "output.txt")
    measurements: dict[str, Any] = {**limits, "elapsed_s": round(elapsed, 3)}
    judge = _Judgement(candidate, records, measurements)
    if killed:
        return judge.killed(f"time limit {time_limit_s:g} s", timed_out=True)
    result = records[-1].get("result") if records else None
    if isinstance(result, dict):
        return judge.from_result(result, memory_limit_mb)
    return judge.crashed(returncode, output)


def _check_arguments(
    time_limit_s: float, memory_limit_mb: int, repeats: int, benchmark_s: float
) -> None:
    problems = []
    if not 0 < time_limit_s < math.inf:
        problems.append(f"time_limit_s must be a finite number above 0 (got {time_limit_s!r})")
    if memory_limit_mb < 1:
        problems.append(f"memory_limit_mb must be at least 1 (got {memory_limit_mb!r})")
    if repeats < 1:
        problems.append(f"repeats must be at least 1 (got {repeats!r})")
    if not benchmark_s >= 0:
        problems.append(f"benchmark_s must be 0 or more (got {benchmark_s!r})")
    if problems:
        raise NoodleError("ale sandbox: " + "; ".join(problems), code="ale-sandbox-arguments")


def _pickled(inputs: Sequence[tuple[Any, ...]]) -> list[bytes]:
    recorded = []
    for number, args in enumerate(inputs):
        try:
            recorded.append(pickle.dumps(tuple(args)))
        except Exception as exc:
            raise NoodleError(
                f"ale sandbox: recorded input #{number} cannot be pickled for the child "
                f"process ({type(exc).__name__}: {exc}); inputs must be tuples of "
                "picklable positional arguments",
                code="ale-sandbox-arguments",
            ) from None
    return recorded


def _run_child(root: Path, time_limit_s: float) -> tuple[bool, int]:
    """Run the child in ``root``; (killed on the time limit, exit status)."""
    package_parent = str(Path(noodle_upgrade.__file__).resolve().parents[1])
    python_path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **SINGLE_THREADED, "PYTHONPATH": python_path}
    command = [sys.executable, "-m", CHILD_MODULE, str(root / "payload.pickle")]
    with open(root / "output.txt", "wb") as output:
        child = subprocess.Popen(
            [*command, str(root / "report.jsonl")],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, with its children
        )
        killed = False
        try:
            child.wait(timeout=time_limit_s)
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return killed, child.returncode


def _records(path: Path) -> list[dict[str, Any]]:
    """The report's complete JSON lines (a line cut short by a kill is left out)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        with suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(path: Path) -> str:
    text = path.read_bytes()[-OUTPUT_SHOWN:].decode("utf-8", "replace").strip()
    return " ".join(text.split())


class _Judgement:
    """Turns what the child left behind into a ``Verdict``."""

    def __init__(
        self, candidate: Candidate, records: list[dict[str, Any]], measurements: dict[str, Any]
    ) -> None:
        self.candidate = candidate
        self.measurements = measurements
        progress = [record["progress"] for record in records if "progress" in record]
        self.last_step: dict[str, Any] = progress[-1] if progress else {}
        started = sum(1 for step in progress if step.get("side") == "candidate")
        # the input a killed child was on counts as compared only once the candidate returned
        self.compared = started - (self.last_step.get("side") == "candidate")

    def verdict(
        self,
        passed: bool,
        reason: str,
        *,
        inputs: int,
        mismatches: Sequence[Mismatch] = (),
        speedup: float | None = None,
    ) -> Verdict:
        return Verdict(
            candidate_id=self.candidate.id,
            passed=passed,
            speedup=speedup,
            inputs=inputs,
            mismatches=tuple(mismatches),
            reason=reason,
            measurements=self.measurements,
        )

    def where(self) -> str:
        step = self.last_step
        if step.get("step") == "compare":
            return f"while the {step['side']} ran on {step['input']}"
        if step.get("step") == "load":
            return "while the candidate's source was executed"
        if step.get("step") == "benchmark":
            return "while benchmarking"
        return "before the sandbox was ready"

    def killed(self, limit: str, *, timed_out: bool) -> Verdict:
        """The child was stopped by a limit; a mismatch names the input it was on."""
        step = self.last_step
        mismatches = []
        if step.get("step") == "compare":
            if timed_out:
                got, reason = f"no result within the {limit}", "timeout"
            else:
                got, reason = f"MemoryError: {limit}", "exception"
            mismatches.append(Mismatch(step["input"], "a result", got, reason))
        return self.verdict(
            False,
            f"killed: {limit} ({self.where()})",
            inputs=self.compared,
            mismatches=mismatches,
        )

    def from_result(self, result: dict[str, Any], memory_limit_mb: int) -> Verdict:
        outcome = result.get("outcome")
        if outcome == "memory":
            return self.killed(f"memory limit {memory_limit_mb} MB", timed_out=False)
        if outcome == "rejected":
            return self.verdict(False, f"rejected: {result['reason']}", inputs=0)
        if outcome == "baseline":
            return self.verdict(
                False,
                f"the baseline {self.candidate.function} cannot be loaded: {result['reason']}",
                inputs=0,
            )
        if outcome == "inputs":
            return self.verdict(
                False, f"the inputs cannot be loaded in the sandbox: {result['reason']}", inputs=0
            )
        return self._compared(result)

    def _compared(self, result: dict[str, Any]) -> Verdict:
        mismatches = [Mismatch(**fields) for fields in result["mismatches"]]
        inputs = int(result["inputs"])
        benchmark = result.get("benchmark")
        self.measurements.update(recorded=result["recorded"], generated=inputs - result["recorded"])
        speedup = None
        if benchmark:
            self.measurements.update(benchmark)
            speedup = benchmark["baseline_ns"] / max(benchmark["candidate_ns"], 1e-3)
        if mismatches:
            reasons = ", ".join(sorted({mismatch.reason for mismatch in mismatches}))
            plural = "es" if len(mismatches) > 1 else ""
            reason = f"{len(mismatches)} mismatch{plural} in {inputs} inputs ({reasons})"
            return self.verdict(
                False, reason, inputs=inputs, mismatches=mismatches[:MISMATCHES_KEPT]
            )
        if inputs == 0:
            return self.verdict(
                False,
                "no inputs to compare on: nothing was recorded and the signature "
                f"{self.candidate.signature!r} has no generated cases",
                inputs=0,
            )
        return self.verdict(True, "", inputs=inputs, speedup=speedup)

    def crashed(self, returncode: int, output: str) -> Verdict:
        if returncode == -signal.SIGXCPU:
            return self.killed("CPU time limit", timed_out=True)
        if returncode < 0:
            how = f"was killed by {_signal_name(-returncode)}"
        else:
            how = f"exited with status {returncode}"
        detail = f": {output}" if output else ""
        return self.verdict(
            False,
            f"crashed: the sandbox {how} without a result ({self.where()}){detail}",
            inputs=self.compared,
        )
