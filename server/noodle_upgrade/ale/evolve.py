"""``noodle ale evolve``: DESIGN §5 steps 3–4 on what was recorded.

For every recorded signature, the provider's candidates that are not stored yet are
judged by the sandbox on the signature's recorded inputs and stored with their verdict:
``validated`` when it passed, ``rejected`` with the sandbox's reason otherwise. Nothing
here serves a candidate: that starts with ``noodle ale approve`` (``canary``).

The recorded inputs go to the sandbox as the store keeps them, pickled: only the
limited child process unpickles them (a pickle is code). A blob that does not unpickle
(a class the application defined, a damaged row) is left out there: the sandbox still
compares on the signature's edge cases.
"""

from __future__ import annotations

from collections.abc import Callable

from noodle_upgrade.ale import sandbox
from noodle_upgrade.ale.candidates import CandidateProvider, TemplateProvider
from noodle_upgrade.ale.model import Candidate, Signature, Status
from noodle_upgrade.store.ale import OVERFLOW, AleStore, CandidateRecord

# Enough to run the edge cases and a short interleaved benchmark of a small kernel.
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_MB = 512
BENCHMARK_S = 1.0

Progress = Callable[[str], None]


def evolve(
    store: AleStore,
    provider: CandidateProvider | None = None,
    *,
    progress: Progress | None = None,
    time_limit_s: float = TIME_LIMIT_S,
    memory_limit_mb: int = MEMORY_LIMIT_MB,
    benchmark_s: float = BENCHMARK_S,
) -> list[CandidateRecord]:
    """Judge and store every new candidate for the recorded signatures; the stored
    records, in the order they were judged."""
    chosen = provider if provider is not None else TemplateProvider()
    say = progress if progress is not None else _silent
    stored = {record.id for record in store.candidates()}
    judged: list[CandidateRecord] = []
    for record in store.signatures():
        if record.signature == OVERFLOW:
            continue
        signature = Signature(function=record.function, key=record.signature)
        fresh = [c for c in chosen.candidates(record.function, signature) if c.id not in stored]
        if not fresh:
            continue
        recorded = store.input_blobs(record.function, record.signature)
        for candidate in fresh:
            say(f"validating {candidate.family} for {candidate.function}({candidate.signature})")
            verdict = sandbox.validate(
                candidate,
                (),
                pickled_inputs=recorded,
                time_limit_s=time_limit_s,
                memory_limit_mb=memory_limit_mb,
                benchmark_s=benchmark_s,
            )
            status = Status.VALIDATED if verdict.passed else Status.REJECTED
            judged.append(store.insert_candidate(candidate, status=status, verdict=verdict))
            stored.add(candidate.id)
            say(_outcome(candidate, status, verdict.speedup, verdict.reason))
    return judged


def _outcome(candidate: Candidate, status: Status, speedup: float | None, reason: str) -> str:
    if status is Status.VALIDATED:
        shown = f"{speedup:.2f}x" if speedup is not None else "unmeasured"
        return f"{candidate.id} {candidate.family}: validated, {shown}"
    return f"{candidate.id} {candidate.family}: rejected ({reason})"


def _silent(_line: str) -> None:
    """No progress wanted."""
