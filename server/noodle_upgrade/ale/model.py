"""What ALE's parts hand each other: plain frozen records, no I/O.

The parts and who owns what:

- ``ale.signature`` (pure): a call's arguments → ``Signature`` (computed on sampled calls
  only; the unrouted path of the dispatcher never builds one);
- ``ale.dispatcher``: the wrapper installed over a target (``numpy.dot``); counts calls,
  samples some into the recorder, routes calls whose signature has a live route;
- ``ale.recorder``: sampled calls aggregated in memory, flushed in batches to the store
  (``ale_signatures``, ``ale_sites``), a bounded reservoir of real inputs per signature
  (``ale_inputs``);
- ``ale.candidates``: the template library — ``CandidateFamily`` objects that say which
  signatures they accept and write a ``Candidate`` (Python source defining ``candidate``);
  ``CandidateProvider`` is the interface other generators implement;
- ``ale.sandbox``: validates one candidate against the baseline in a subprocess with time
  and memory limits, on recorded and generated edge-case inputs → ``Verdict``;
- ``ale.promotion``: routes move ``canary`` → ``promoted``, or ``demoted`` with the
  reason, on live calls compared in shadow;
- ``ale.store``: the ALE tables of ``.noodle/state.db`` (schema in ``store/schema.py``).

Statuses of a candidate, as ``noodle ale report`` shows them: ``observed`` (a signature
seen, nothing validated yet), ``validated``, ``rejected``, ``canary``, ``promoted``,
``demoted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OBSERVED = "observed"
    VALIDATED = "validated"
    REJECTED = "rejected"
    CANARY = "canary"
    PROMOTED = "promoted"
    DEMOTED = "demoted"


@dataclass(frozen=True)
class Signature:
    """What a call's arguments look like, as a stable key.

    ``key`` is the text the store and the report use, e.g.
    ``"list[float](3), list[float](3)"`` or ``"ndarray[float64](2,2)C, ndarray[float64](2,2)C"``;
    ``parts`` holds one description per positional argument (a keyword argument makes
    the call unroutable: ``routable`` is False).
    """

    function: str  # the dotted target: "numpy.dot"
    key: str
    parts: tuple[str, ...] = ()
    routable: bool = True


@dataclass(frozen=True)
class Candidate:
    """One faster implementation for one signature of one function.

    ``source`` is Python source text that defines a function named ``candidate`` taking
    the target's positional arguments; it is executed in the sandbox and, once promoted,
    in the application. ``tolerance`` is the ``(rtol, atol)`` its float results may
    differ by; integer and bool results must be exactly equal.
    """

    id: str
    function: str
    signature: str  # Signature.key
    family: str  # "py_dot", "ndarray_dot", "unrolled", …
    source: str
    tolerance: tuple[float, float] = (1e-12, 0.0)
    description: str = ""


@dataclass(frozen=True)
class Mismatch:
    input: str  # a short repr of the arguments
    expected: str
    got: str
    reason: str  # "value", "type", "dtype", "shape", "exception", "timeout"


@dataclass(frozen=True)
class Verdict:
    """The sandbox's judgement of one candidate."""

    candidate_id: str
    passed: bool
    speedup: float | None  # baseline time / candidate time (min of interleaved repeats)
    inputs: int  # how many inputs were compared
    mismatches: tuple[Mismatch, ...] = ()
    reason: str = ""  # why it failed: "3 mismatches", "killed: memory limit", …
    measurements: dict[str, Any] = field(default_factory=dict)
