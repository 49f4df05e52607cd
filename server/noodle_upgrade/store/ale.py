"""The ALE tables of the state store (schema ``_V5``): what was seen, what was tried, what
serves. ``AleStore(store)`` is the whole API; every method is one transaction of ``store``.

Recording (``ale.recorder``, from its flush thread; never per call):

- ``record_usage(usages, totals)``: one batch of aggregates in one write transaction, as
  three ``executemany`` UPSERTs: counts add up across flushes and processes.
  ``Usage.calls`` is an estimate (each sampled call stands for the calls since the one
  sampled before it), ``sampled`` and ``total_ns`` are exact over the timed samples, so
  ``total_ns / sampled`` is the mean duration of the baseline. ``totals`` are the exact
  call counts per function, kept in a row whose signature is ``ALL_CALLS``;
- ``sampled_counts(functions)``: where each signature's input reservoir stands, so a new
  process continues Algorithm R instead of starting it over.

Reading (report, editor, evolve):

- ``signatures(function=None)``: ``SignatureRecord`` with call sites (``"path:line"``);
  the ``ALL_CALLS`` rows are left out, and an ``OVERFLOW`` row holds the calls the recorder
  could not tell apart (past its cap on distinct signatures);
- ``function_calls()``: exact calls per function;
- ``input_blobs(function, signature)``: the reservoir, pickled argument tuples.
  ``load_input`` unpickles one: only do it where running code from the store is accepted
  (the sandbox subprocess), since a pickle is code.

Candidates (evolve, promotion, CLI):

- ``insert_candidate`` / ``update_verdict``: a candidate and the sandbox's ``Verdict``,
  with a status that does not serve (``validated``, ``rejected``, ``demoted``);
- ``set_status``: every status change, audited (``ale.<status>``) in the same transaction,
  so nothing starts or stops serving without an audit record. A ``rejected`` candidate
  never serves; ``expect`` makes the change conditional on the current status (two
  deciders racing cannot both win);
- ``candidate(id)``, ``candidates(...)``, ``live_routes(functions)``: the routes are the
  candidates whose status is ``canary`` or ``promoted``.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from noodle_upgrade.ale.model import Candidate, Mismatch, Status, Verdict
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.store import journal, rows
from noodle_upgrade.store.audit import canonical_json, jsonable
from noodle_upgrade.store.db import Store
from noodle_upgrade.store.rows import CorruptRowError

ALL_CALLS = "*"  # the signature of the row counting every call of a function
OVERFLOW = "(other)"  # signatures, or sites, past the recorder's cap
SERVING = (Status.CANARY, Status.PROMOTED)
NOT_SERVING = (Status.VALIDATED, Status.REJECTED, Status.DEMOTED)

_UPSERT_SIGNATURE = (
    "INSERT INTO ale_signatures (function, signature, calls, sampled, total_ns, first_seen, "
    "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (function, signature) DO UPDATE SET "
    "calls = calls + excluded.calls, sampled = sampled + excluded.sampled, "
    "total_ns = total_ns + excluded.total_ns, first_seen = MIN(first_seen, excluded.first_seen), "
    "last_seen = MAX(last_seen, excluded.last_seen)"
)
# INSERT … SELECT: the signature's id is looked up by the statement, not by a round trip.
_UPSERT_SITE = (
    "INSERT INTO ale_sites (signature_id, site, calls) SELECT id, ?, ? FROM ale_signatures "
    "WHERE function = ? AND signature = ? "
    "ON CONFLICT (signature_id, site) DO UPDATE SET calls = calls + excluded.calls"
)
_UPSERT_INPUT = (
    "INSERT INTO ale_inputs (signature_id, slot, data) SELECT id, ?, ? FROM ale_signatures "
    "WHERE function = ? AND signature = ? "
    "ON CONFLICT (signature_id, slot) DO UPDATE SET data = excluded.data"
)
_CANDIDATES = (
    "SELECT c.*, s.function AS function, s.signature AS signature FROM ale_candidates AS c "
    "JOIN ale_signatures AS s ON s.id = c.signature_id"
)
_INSERT_CANDIDATE = (
    "INSERT INTO ale_candidates (id, signature_id, family, source, tolerance, status, speedup, "
    "mismatches, verdict, reason, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Usage:
    """What the recorder aggregated for one (function, signature) since its last flush."""

    function: str
    signature: str
    calls: int
    sampled: int
    total_ns: int
    first_seen: float
    last_seen: float
    sites: Mapping[str, int] = field(default_factory=dict)  # "path:line" -> calls
    inputs: Mapping[int, bytes] = field(default_factory=dict)  # reservoir slot -> pickle


@dataclass(frozen=True)
class SignatureRecord:
    """One signature of one function as recorded, every process together."""

    id: int
    function: str
    signature: str
    calls: int
    sampled: int
    total_ns: int
    first_seen: float
    last_seen: float
    sites: dict[str, int]  # "path:line" -> calls, most calls first

    @property
    def mean_ns(self) -> float | None:
        """The baseline's mean duration over the timed samples."""
        return self.total_ns / self.sampled if self.sampled else None


@dataclass(frozen=True)
class CandidateRecord:
    """A stored candidate: its code, its verdict, and whether it serves."""

    candidate: Candidate
    signature_id: int
    status: Status
    speedup: float | None
    mismatches: int
    verdict: Verdict | None
    reason: str | None
    created_at: float
    updated_at: float

    @property
    def id(self) -> str:
        return self.candidate.id

    @property
    def function(self) -> str:
        return self.candidate.function

    @property
    def signature(self) -> str:
        return self.candidate.signature


class AleStore:
    """The ALE tables of one ``Store`` (shared: the runtime's, or one opened for ALE)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- recording -------------------------------------------------------------------

    def record_usage(self, usages: Sequence[Usage], totals: Mapping[str, int]) -> None:
        """Add one batch of aggregates (and exact per-function call counts) to the tables."""
        signature_rows = [
            (u.function, u.signature, u.calls, u.sampled, u.total_ns, u.first_seen, u.last_seen)
            for u in usages
        ]
        now = time.time()
        signature_rows += [
            (function, ALL_CALLS, calls, 0, 0, now, now)
            for function, calls in totals.items()
            if calls
        ]
        if not signature_rows:
            return
        site_rows = [
            (site, calls, u.function, u.signature)
            for u in usages
            for site, calls in u.sites.items()
        ]
        input_rows = [
            (slot, data, u.function, u.signature) for u in usages for slot, data in u.inputs.items()
        ]
        with self.store._write("record ALE usage") as conn:
            conn.executemany(_UPSERT_SIGNATURE, signature_rows)
            conn.executemany(_UPSERT_SITE, site_rows)
            conn.executemany(_UPSERT_INPUT, input_rows)

    def sampled_counts(self, functions: Collection[str]) -> dict[tuple[str, str], int]:
        """(function, signature) -> timed samples so far, for ``functions``."""
        if not functions:
            return {}
        marks = ", ".join("?" for _ in functions)
        sql = f"SELECT function, signature, sampled FROM ale_signatures WHERE function IN ({marks})"
        with self.store._read("read the ALE sample counts") as conn:
            found = conn.execute(sql, list(functions)).fetchall()
        return {(str(r["function"]), str(r["signature"])): int(r["sampled"]) for r in found}

    # -- reading ---------------------------------------------------------------------

    def signatures(self, function: str | None = None) -> list[SignatureRecord]:
        """Recorded signatures with their call sites, most called first per function."""
        where, params = "WHERE signature != ?", [ALL_CALLS]
        if function is not None:
            where += " AND function = ?"
            params.append(function)
        with self.store._read("read the ALE signatures") as conn:
            found = conn.execute(
                f"SELECT * FROM ale_signatures {where} ORDER BY function, calls DESC, id", params
            ).fetchall()
            sites = conn.execute(
                "SELECT signature_id, site, calls FROM ale_sites ORDER BY calls DESC, site"
            ).fetchall()
        by_signature: dict[int, dict[str, int]] = {}
        for site in sites:
            by_signature.setdefault(int(site["signature_id"]), {})[str(site["site"])] = int(
                site["calls"]
            )
        path = self.store.path
        return [
            rows.decode("ale_signatures", partial(_signature_record, sites=by_signature), row, path)
            for row in found
        ]

    def function_calls(self) -> dict[str, int]:
        """Every call each function received while ALE watched it (exact counts)."""
        with self.store._read("read the ALE call counts") as conn:
            found = conn.execute(
                "SELECT function, calls FROM ale_signatures WHERE signature = ? ORDER BY function",
                (ALL_CALLS,),
            ).fetchall()
        return {str(row["function"]): int(row["calls"]) for row in found}

    def input_blobs(self, function: str, signature: str) -> list[bytes]:
        """The reservoir of one signature: pickled argument tuples, by slot."""
        with self.store._read(f"read the recorded inputs of {function}({signature})") as conn:
            found = conn.execute(
                "SELECT i.data FROM ale_inputs AS i JOIN ale_signatures AS s "
                "ON s.id = i.signature_id WHERE s.function = ? AND s.signature = ? "
                "ORDER BY i.slot",
                (function, signature),
            ).fetchall()
        return [bytes(row["data"]) for row in found]

    # -- candidates ------------------------------------------------------------------

    def insert_candidate(
        self,
        candidate: Candidate,
        *,
        status: Status,
        verdict: Verdict | None = None,
        reason: str | None = None,
    ) -> CandidateRecord:
        """Store a new candidate (its signature row is created if it was never recorded)."""
        _check_not_serving(candidate.id, status)
        now = time.time()
        with self.store._write(f"record ALE candidate {candidate.id}") as conn:
            if conn.execute(
                "SELECT 1 FROM ale_candidates WHERE id = ?", (candidate.id,)
            ).fetchone():
                raise NoodleError(
                    f"ALE candidate {candidate.id} is already stored in {self.store.path}; "
                    "record a new verdict for it with update_verdict",
                    code="duplicate-candidate",
                )
            signature_id = _signature_id(conn, candidate.function, candidate.signature, now)
            conn.execute(
                _INSERT_CANDIDATE,
                (
                    candidate.id,
                    signature_id,
                    candidate.family,
                    candidate.source,
                    json.dumps(list(candidate.tolerance)),
                    str(status),
                    *_verdict_columns(verdict),
                    reason if reason is not None else _verdict_reason(verdict),
                    now,
                    now,
                ),
            )
            return self._candidate(conn, candidate.id)

    def update_verdict(
        self, candidate_id: str, verdict: Verdict, *, status: Status, reason: str | None = None
    ) -> CandidateRecord:
        """Replace a candidate's verdict (a new sandbox run); refuses one that serves."""
        _check_not_serving(candidate_id, status)
        with self.store._write(f"record a verdict for ALE candidate {candidate_id}") as conn:
            current = self._candidate(conn, candidate_id)
            if current.status in SERVING:
                raise NoodleError(
                    f"ALE candidate {candidate_id} is {current.status}: demote it before "
                    "recording a new verdict for it",
                    code="ale-candidate-serving",
                )
            conn.execute(
                "UPDATE ale_candidates SET status = ?, speedup = ?, mismatches = ?, verdict = ?, "
                "reason = ?, updated_at = ? WHERE id = ?",
                (
                    str(status),
                    *_verdict_columns(verdict),
                    reason if reason is not None else _verdict_reason(verdict),
                    time.time(),
                    candidate_id,
                ),
            )
            return self._candidate(conn, candidate_id)

    def set_status(
        self,
        candidate_id: str,
        status: Status,
        *,
        actor: str,
        reason: str | None = None,
        expect: Collection[Status] | None = None,
    ) -> CandidateRecord:
        """Move a candidate to ``status``, audited; a no-op when it already is there.

        ``expect``: the statuses it may be in now (else ``NoodleError``, nothing written).
        """
        status = _stored_status(candidate_id, status)
        with self.store._write(f"move ALE candidate {candidate_id} to {status}") as conn:
            current = self._candidate(conn, candidate_id)
            if expect is not None and current.status not in expect:
                allowed = ", ".join(str(s) for s in expect)
                raise NoodleError(
                    f"ALE candidate {candidate_id} is {current.status}, not {allowed}: "
                    f"it was not moved to {status}",
                    code="ale-candidate-moved",
                )
            if current.status is status:
                return current
            if status in SERVING and current.status is Status.REJECTED:
                raise NoodleError(
                    f"ALE candidate {candidate_id} was rejected ({current.reason or 'no reason'}): "
                    "it cannot serve; run `noodle ale evolve` to validate a new one",
                    code="ale-candidate-rejected",
                )
            conn.execute(
                "UPDATE ale_candidates SET status = ?, reason = COALESCE(?, reason), "
                "updated_at = ? WHERE id = ?",
                (str(status), reason, time.time(), candidate_id),
            )
            journal.append_audit(
                conn,
                f"ale.{status}",
                actor=actor,
                details={
                    "candidate": candidate_id,
                    "function": current.function,
                    "signature": current.signature,
                    "from": str(current.status),
                    **({"reason": reason} if reason is not None else {}),
                },
            )
            return self._candidate(conn, candidate_id)

    def candidate(self, candidate_id: str) -> CandidateRecord:
        """One candidate; ``NoodleError`` (``unknown-candidate``) when there is none."""
        with self.store._read(f"read ALE candidate {candidate_id}") as conn:
            return self._candidate(conn, candidate_id)

    def candidates(
        self,
        *,
        function: str | None = None,
        signature: str | None = None,
        statuses: Collection[Status] | None = None,
    ) -> list[CandidateRecord]:
        """Candidates, by function and signature, best speedup first."""
        clauses: list[str] = []
        params: list[str] = []
        if function is not None:
            clauses.append("s.function = ?")
            params.append(function)
        if signature is not None:
            clauses.append("s.signature = ?")
            params.append(signature)
        if statuses is not None:
            clauses.append(f"c.status IN ({', '.join('?' for _ in statuses)})")
            params.extend(str(status) for status in statuses)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = " ORDER BY s.function, s.signature, c.speedup DESC, c.id"
        with self.store._read("read the ALE candidates") as conn:
            found = conn.execute(_CANDIDATES + where + order, params).fetchall()
        return [self._decode_candidate(row) for row in found]

    def live_routes(self, functions: Iterable[str] | None = None) -> list[CandidateRecord]:
        """The candidates that serve (``canary``, ``promoted``), of ``functions`` or all."""
        routes = self.candidates(statuses=SERVING)
        if functions is None:
            return routes
        wanted = set(functions)
        return [route for route in routes if route.function in wanted]

    # -- helpers ---------------------------------------------------------------------

    def _candidate(self, conn: sqlite3.Connection, candidate_id: str) -> CandidateRecord:
        row = conn.execute(_CANDIDATES + " WHERE c.id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise NoodleError(
                f"no ALE candidate {candidate_id!r} in {self.store.path}; "
                "`noodle ale report` lists them",
                code="unknown-candidate",
            )
        return self._decode_candidate(row)

    def _decode_candidate(self, row: sqlite3.Row) -> CandidateRecord:
        return rows.decode("ale_candidates", _candidate_record, row, self.store.path)


def load_input(blob: bytes) -> tuple[Any, ...]:
    """One recorded argument tuple. A pickle runs code: call this in the sandbox only."""
    value = pickle.loads(blob)
    if not isinstance(value, tuple):
        raise CorruptRowError(f"a recorded input is {type(value).__name__}, not a tuple")
    return value


def _signature_id(conn: sqlite3.Connection, function: str, signature: str, now: float) -> int:
    conn.execute(
        "INSERT INTO ale_signatures (function, signature, first_seen, last_seen) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (function, signature) DO NOTHING",
        (function, signature, now, now),
    )
    row = conn.execute(
        "SELECT id FROM ale_signatures WHERE function = ? AND signature = ?",
        (function, signature),
    ).fetchone()
    return int(row["id"])


def _check_not_serving(candidate_id: str, status: Status) -> None:
    if _stored_status(candidate_id, status) not in NOT_SERVING:
        allowed = ", ".join(str(s) for s in NOT_SERVING)
        raise NoodleError(
            f"ALE candidate {candidate_id}: a verdict is recorded with status {allowed}, "
            f"not {status}; serving starts with set_status, which audits it",
            code="invalid-status",
        )


def _stored_status(candidate_id: str, status: Status | str) -> Status:
    try:
        stored = Status(status)
    except ValueError:
        stored = Status.OBSERVED  # refused just below, with the allowed values
    if stored is Status.OBSERVED:
        allowed = ", ".join(str(s) for s in Status if s is not Status.OBSERVED)
        raise NoodleError(
            f"ALE candidate {candidate_id}: status {status!r} cannot be stored "
            f"(allowed: {allowed}; 'observed' is a signature without candidates)",
            code="invalid-status",
        )
    return stored


def _verdict_columns(verdict: Verdict | None) -> tuple[float | None, int, str]:
    """speedup, mismatches, verdict JSON."""
    if verdict is None:
        return None, 0, "{}"
    return verdict.speedup, len(verdict.mismatches), canonical_json(jsonable(asdict(verdict)))


def _verdict_reason(verdict: Verdict | None) -> str | None:
    return (verdict.reason or None) if verdict is not None else None


def _signature_record(row: sqlite3.Row, *, sites: Mapping[int, dict[str, int]]) -> SignatureRecord:
    signature_id = _int(row, "id")
    return SignatureRecord(
        id=signature_id,
        function=rows._text(row, "function"),
        signature=rows._text(row, "signature"),
        calls=_int(row, "calls"),
        sampled=_int(row, "sampled"),
        total_ns=_int(row, "total_ns"),
        first_seen=rows._number(row, "first_seen"),
        last_seen=rows._number(row, "last_seen"),
        sites=dict(sites.get(signature_id, {})),
    )


def _candidate_record(row: sqlite3.Row) -> CandidateRecord:
    try:
        status = Status(row["status"])
    except ValueError:
        raise CorruptRowError(f"status is {row['status']!r}, not an ALE status") from None
    tolerance = rows._json(row, "tolerance")
    if not (
        isinstance(tolerance, list)
        and len(tolerance) == 2
        and all(isinstance(v, int | float) for v in tolerance)
    ):
        raise CorruptRowError("tolerance is not a JSON list [rtol, atol]")
    candidate = Candidate(
        id=rows._text(row, "id"),
        function=rows._text(row, "function"),
        signature=rows._text(row, "signature"),
        family=rows._text(row, "family"),
        source=rows._text(row, "source"),
        tolerance=(float(tolerance[0]), float(tolerance[1])),
    )
    return CandidateRecord(
        candidate=candidate,
        signature_id=_int(row, "signature_id"),
        status=status,
        speedup=rows._opt_number(row, "speedup"),
        mismatches=_int(row, "mismatches"),
        verdict=_verdict(rows._json_object(row, "verdict")),
        reason=rows._opt_text(row, "reason"),
        created_at=rows._number(row, "created_at"),
        updated_at=rows._number(row, "updated_at"),
    )


def _verdict(data: dict[str, Any]) -> Verdict | None:
    if not data:
        return None
    try:
        mismatches = tuple(Mismatch(**item) for item in data.pop("mismatches", []))
        return Verdict(**data, mismatches=mismatches)
    except TypeError as exc:
        raise CorruptRowError(f"verdict does not describe a Verdict ({exc})") from None


def _int(row: sqlite3.Row, column: str) -> int:
    value = row[column]
    if type(value) is not int:
        raise CorruptRowError(f"{column} is {value!r}, not an integer")
    return value
