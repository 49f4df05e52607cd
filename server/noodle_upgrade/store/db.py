"""``Store``: the durable truth in ``.noodle/state.db`` (SQLite, WAL).

The runtime writes it from the application process; CLI processes read it and, when
no runtime runs, write it too. So every write is one ``BEGIN IMMEDIATE`` transaction:
the write lock is taken up front, which keeps the audit chain linear across threads
and processes (the chain's head is read inside the same transaction that extends
it). Every write that changes state appends exactly one audit record in that
transaction, so the audit log is complete.

An upgrade writes its intent (``begin_operation``) before acting and its outcome
(``complete_operation``: status, lock, rollback point, audit) after. A crash between
the two leaves an ``in_progress`` row and an untouched lock; ``recover_interrupted``
marks it interrupted on the next start.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import ProposalState, RollbackPoint, UpgradeStatus, new_id
from noodle_upgrade.store import journal, owner, proposals, rows, schema
from noodle_upgrade.store.audit import canonical_json, jsonable, verify_chain
from noodle_upgrade.store.records import (
    AuditRecord,
    AuditVerification,
    HistoryEntry,
    OutcomeCount,
    PeriodRecords,
    ProposalRecord,
    StoredEvent,
)

BUSY_TIMEOUT_S = 10.0

# The outcomes the decision engine learns from; in_progress and interrupted say nothing
# about the version (it is still running, or its process died).
OUTCOME_STATUSES = (
    UpgradeStatus.SUCCEEDED,
    UpgradeStatus.FAILED,
    UpgradeStatus.ROLLED_BACK,
    UpgradeStatus.REFUSED,
)
_OUTCOME_COUNTS = (
    "SELECT component, strategy, status, COUNT(*) AS upgrades FROM operations "
    f"WHERE kind = 'upgrade' AND status IN ({', '.join('?' for _ in OUTCOME_STATUSES)}) "
    "GROUP BY component, strategy, status ORDER BY component, strategy, status"
)


def _advice(exc: sqlite3.Error) -> str:
    """What the user can do about an sqlite3 error, in a few words."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return (
            "it already holds a record with that id, or lacks one it refers to; nothing was written"
        )
    if "locked" in text or "busy" in text:
        return "another process holds the store's write lock; retry when it finishes"
    if "readonly" in text or "read-only" in text:
        return "make the file and its folder writable"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "it is damaged or not a noodle-upgrade store; move it away or restore a backup"
    if "unable to open" in text:
        return "check that its folder exists and is writable"
    return "check that it is a noodle-upgrade store and that its folder is writable"


def _sqlite_error(action: str, db_path: Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(f"cannot {action} in {db_path}: {exc}; {_advice(exc)}")


def _connect(db_path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, so _transaction() alone decides
    # where one begins and ends. One connection is shared by threads under a lock.
    conn = sqlite3.connect(
        db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power cut
        # can lose the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        schema.migrate(conn, db_path)
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """The state database. Open it with ``Store.open``; safe to share between threads."""

    def __init__(self, db_path: Path, conn: sqlite3.Connection) -> None:
        self._path = db_path
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._running: set[str] = set()  # begun here, outcome not yet written

    @classmethod
    def open(cls, db_path: Path) -> Store:
        """Open (creating it and its folder when needed) and migrate ``db_path``."""
        db_path = Path(db_path)
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of {db_path}: {exc.strerror}; "
                "check the path and its permissions"
            ) from None
        try:
            return cls(db_path, _connect(db_path))
        except sqlite3.Error as exc:
            raise _sqlite_error("open the store", db_path, exc) from exc

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            for op_id in self._running:  # no outcome can come through a closed store
                owner.finished(op_id)
            self._running.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str, action: str) -> Iterator[sqlite3.Connection]:
        """One transaction under the thread lock; commits on success, else rolls back.

        sqlite3 errors become a StoreError that says ``action`` and names the file.
        """
        with self._lock:
            conn = self._live()
            try:
                conn.execute(begin)
                try:
                    yield conn
                except BaseException:
                    _rollback_quietly(conn)
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback_quietly(conn)
                raise _sqlite_error(action, self._path, exc) from exc

    def _write(self, action: str) -> AbstractContextManager[sqlite3.Connection]:
        # IMMEDIATE takes the write lock before the first read, so what a write reads
        # (the audit head, an operation's status) cannot change before it commits.
        return self._transaction("BEGIN IMMEDIATE", action)

    def _read(self, action: str) -> AbstractContextManager[sqlite3.Connection]:
        # A read transaction: one consistent snapshot across the statements inside.
        return self._transaction("BEGIN", action)

    def _decode_history_entry(self, row: sqlite3.Row) -> HistoryEntry:
        return rows.decode("operations", rows.history_entry, row, self._path)

    def _decode_rollback_point(self, row: sqlite3.Row) -> RollbackPoint:
        return rows.decode("rollback_points", rows.rollback_point, row, self._path)

    def _decode_stored_event(self, row: sqlite3.Row) -> StoredEvent:
        return rows.decode("events", rows.stored_event, row, self._path)

    def _decode_audit_record(self, row: sqlite3.Row) -> AuditRecord:
        return rows.decode("audit", rows.audit_record, row, self._path)

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self._path} is closed; open it again with Store.open")
        return self._conn

    # -- component locks ------------------------------------------------------------

    def active_versions(self) -> dict[str, str]:
        """The lock: component name -> active version."""
        with self._read("read the active versions") as conn:
            found = conn.execute("SELECT name, active_version FROM components ORDER BY name")
            return {str(row["name"]): str(row["active_version"]) for row in found}

    def activate(self, component: str, version: str, *, actor: str) -> bool:
        """Set the lock outside an upgrade (first activation, a manual change).

        Returns False, writing nothing, when ``version`` is already the active one.
        """
        with self._write(f"activate {component} {version}") as conn:
            previous = journal.locked_version(conn, component)
            if previous == version:
                return False
            journal.set_lock(conn, component, version)
            journal.append_audit(
                conn,
                "component.activated",
                actor=actor,
                component=component,
                version_from=previous,
                version_to=version,
            )
            return True

    # -- operations (history) ---------------------------------------------------------

    def begin_operation(
        self,
        *,
        op_id: str,
        kind: str,
        component: str,
        from_version: str,
        to_version: str,
        strategy: str,
        actor: str,
        path: Sequence[str],
        reason: str | None = None,
    ) -> HistoryEntry:
        """Journal an operation's intent (status in_progress) before it acts; ``reason``
        says why it was started when something else than a person asked."""
        entry = journal.new_entry(
            op_id=op_id,
            kind=kind,
            component=component,
            from_version=from_version,
            to_version=to_version,
            strategy=strategy,
            actor=actor,
            path=path,
            reason=reason,
        )
        with self._write(f"record the start of {kind} {op_id}") as conn:
            journal.insert_operation(conn, entry, self._path)
            conn.execute(
                "UPDATE operations SET owner = ? WHERE id = ?", (owner.this_process(), op_id)
            )
            journal.append_audit(
                conn,
                f"{kind}.started",
                actor=actor,
                component=component,
                version_from=from_version,
                version_to=to_version,
                details={
                    "operation": op_id,
                    "strategy": strategy,
                    "path": list(path),
                    **_present(reason=reason),
                },
            )
        owner.started(op_id)
        self._running.add(op_id)
        return entry

    def complete_operation(
        self,
        *,
        op_id: str,
        status: UpgradeStatus,
        actor: str,
        error_code: str | None = None,
        error_message: str | None = None,
        new_active: str | None = None,
        rollback_point: RollbackPoint | None = None,
        point_state: bytes | None = None,
        consumed_point_id: str | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> HistoryEntry:
        """Journal an operation's outcome, all in one transaction.

        The outcome row, the lock (``new_active``), the rollback point the upgrade
        leaves (with its ``point_state``), the point a rollback used up
        (``consumed_point_id``) with the points taken after it (released: they would
        lead forward now) and the audit record commit together or not at all.
        """
        if status not in set(UpgradeStatus) - {UpgradeStatus.IN_PROGRESS}:
            finals = ", ".join(s.value for s in UpgradeStatus if s is not UpgradeStatus.IN_PROGRESS)
            raise StoreError(f"operation {op_id}: status {status!r} is not a final one ({finals})")
        status = UpgradeStatus(status)
        if point_state is not None and rollback_point is None:
            raise StoreError(f"operation {op_id}: point_state needs a rollback_point to go with")
        with self._write(f"record the outcome of operation {op_id}") as conn:
            entry = journal.running_operation(conn, op_id, self._path)
            if rollback_point is not None:
                journal.insert_point(conn, rollback_point, point_state)
            released: list[str] = []
            if consumed_point_id is not None:
                journal.consume_point(conn, consumed_point_id, self._path)
                released = journal.release_points_after(conn, consumed_point_id)
            if new_active is not None:
                journal.set_lock(conn, entry.component, new_active)
            point_id = rollback_point.id if rollback_point is not None else consumed_point_id
            finished = replace(
                entry,
                status=status,
                error_code=error_code,
                error_message=error_message,
                finished_at=time.time(),
                rollback_point_id=point_id,
            )
            journal.finish_operation(conn, finished)
            details: dict[str, Any] = {"operation": op_id, "strategy": entry.strategy}
            details.update(_present(error_code=error_code, new_active=new_active))
            details.update(_present(rollback_point=point_id, metrics=metrics))
            details.update(_present(released_points=released or None))
            journal.audit_operation(conn, finished, actor, details)
        owner.finished(op_id)
        self._running.discard(op_id)
        return finished

    def record_refusal(
        self,
        *,
        op_id: str,
        kind: str,
        component: str,
        from_version: str,
        to_version: str,
        strategy: str,
        actor: str,
        error_code: str,
        error_message: str,
        reason: str | None = None,
    ) -> HistoryEntry:
        """Journal an operation refused before it began: history row and audit record."""
        entry = journal.new_entry(
            op_id=op_id,
            kind=kind,
            component=component,
            from_version=from_version,
            to_version=to_version,
            strategy=strategy,
            actor=actor,
            path=[],
            reason=reason,
        )
        entry = replace(
            entry,
            status=UpgradeStatus.REFUSED,
            error_code=error_code,
            error_message=error_message,
            finished_at=entry.started_at,
        )
        with self._write(f"record the refusal of {kind} {op_id}") as conn:
            journal.insert_operation(conn, entry, self._path)
            details = {"operation": op_id, "strategy": strategy, "error_code": error_code}
            journal.audit_operation(conn, entry, actor, details)
        return entry

    def recover_interrupted(self, *, actor: str = "recovery") -> list[HistoryEntry]:
        """Mark every operation whose process is gone as interrupted; returns them.

        Operations that a live process still runs are left alone (see ``owner``). The
        lock was never moved for an interrupted operation (only its outcome moves
        it), so the component stays where it was.
        """
        recovered: list[HistoryEntry] = []
        with self._write("recover interrupted operations") as conn:
            found = conn.execute(
                "SELECT * FROM operations WHERE status = ? ORDER BY started_at, rowid",
                (UpgradeStatus.IN_PROGRESS.value,),
            ).fetchall()
            for row in found:
                if owner.still_running(row["owner"], row["id"]):
                    continue
                entry = self._decode_history_entry(row)
                stays_at = journal.locked_version(conn, entry.component) or entry.from_version
                interrupted = replace(
                    entry,
                    status=UpgradeStatus.INTERRUPTED,
                    error_code="interrupted",
                    error_message=(
                        f"the process stopped while this {entry.kind} ran; "
                        f"{entry.component} stays at {stays_at}"
                    ),
                    finished_at=time.time(),
                )
                journal.finish_operation(conn, interrupted)
                details = {"operation": entry.id, "strategy": entry.strategy}
                journal.audit_operation(conn, interrupted, actor, details)
                recovered.append(interrupted)
        return recovered

    def history(self, component: str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        """Operations, newest first."""
        sql = "SELECT * FROM operations"
        params: list[str | int] = []
        if component is not None:
            sql += " WHERE component = ?"
            params.append(component)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        params.append(-1 if limit is None else limit)  # -1: no limit
        with self._read("read the upgrade history") as conn:
            found = conn.execute(sql, params).fetchall()
        return [self._decode_history_entry(row) for row in found]

    def outcome_stats(self) -> list[OutcomeCount]:
        """Finished upgrades counted per (component, strategy, status), sorted.

        The statistics the decision engine learns from: feed the rows to
        ``engine.decision.OutcomeStats.from_counts``. They are counted from the journal,
        which every upgrade writes its outcome to (``complete_operation``,
        ``record_refusal``), so every outcome updates them; nothing else has to be kept
        in step. Rollback operations are not counted, nor unfinished or interrupted
        upgrades (``OUTCOME_STATUSES`` lists what is).
        """
        statuses = [status.value for status in OUTCOME_STATUSES]
        with self._read("read the upgrade outcome statistics") as conn:
            found = conn.execute(_OUTCOME_COUNTS, statuses).fetchall()
        return [rows.decode("operations", rows.outcome_count, row, self._path) for row in found]

    def operation(self, op_id: str) -> HistoryEntry | None:
        with self._read(f"read operation {op_id}") as conn:
            row = conn.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        return None if row is None else self._decode_history_entry(row)

    # -- rollback points --------------------------------------------------------------

    def rollback_points(self, component: str | None = None) -> list[RollbackPoint]:
        """Live points (neither released nor consumed), newest first."""
        sql = "SELECT * FROM rollback_points WHERE released_at IS NULL AND consumed_at IS NULL"
        params: list[str] = []
        if component is not None:
            sql += " AND component = ?"
            params.append(component)
        sql += " ORDER BY created_at DESC, rowid DESC"
        with self._read("read the rollback points") as conn:
            found = conn.execute(sql, params).fetchall()
        return [self._decode_rollback_point(row) for row in found]

    def rollback_point(self, point_id: str) -> RollbackPoint | None:
        """Any point, live, released or consumed."""
        with self._read(f"read rollback point {point_id}") as conn:
            row = conn.execute("SELECT * FROM rollback_points WHERE id = ?", (point_id,)).fetchone()
        return None if row is None else self._decode_rollback_point(row)

    def rollback_point_state(self, point_id: str) -> bytes | None:
        """The component state saved with a point; None when it has none (or was released)."""
        with self._read(f"read the state of rollback point {point_id}") as conn:
            row = conn.execute(
                "SELECT state FROM rollback_points WHERE id = ?", (point_id,)
            ).fetchone()
        state = None if row is None else row["state"]
        return bytes(state) if isinstance(state, bytes | bytearray | memoryview) else None

    def release_rollback_points(self, ids: Sequence[str], *, actor: str) -> list[str]:
        """Retention: release points (and drop their saved state); returns those released.

        Unknown or already released ids are skipped, so retention can be re-run.
        """
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        released: list[str] = []
        components: set[str] = set()
        with self._write("release rollback points") as conn:
            for point_id in wanted:
                component = journal.release_point(conn, point_id)
                if component is None:
                    continue
                released.append(point_id)
                components.add(component)
            if released:
                journal.append_audit(
                    conn,
                    "rollback_point.released",
                    actor=actor,
                    component=components.pop() if len(components) == 1 else None,
                    details={"points": released},
                )
        return released

    # -- events -------------------------------------------------------------------------

    def append_event(self, kind: str, component: str | None, data: Mapping[str, Any]) -> int:
        """Log an event (progress, a watcher notice); returns its id. Not audited:
        events narrate, they change no state."""
        with self._write(f"append a {kind} event") as conn:
            cursor = conn.execute(
                "INSERT INTO events (time, kind, component, data) VALUES (?, ?, ?, ?)",
                (time.time(), kind, component, canonical_json(jsonable(data))),
            )
            event_id = cursor.lastrowid
        assert event_id is not None  # an INSERT into a rowid table always sets it
        return event_id

    def events(self, after_id: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events with an id above ``after_id``, oldest first: poll with the last id seen."""
        with self._read("read the events") as conn:
            found = conn.execute(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [self._decode_stored_event(row) for row in found]

    # -- audit --------------------------------------------------------------------------

    def append_audit(
        self,
        event_type: str,
        *,
        actor: str,
        component: str | None = None,
        version_from: str | None = None,
        version_to: str | None = None,
        success: bool = True,
        error_message: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Audit an action that is not an operation (a config change, a refusal elsewhere)."""
        with self._write(f"append a {event_type} audit record") as conn:
            return journal.append_audit(
                conn,
                event_type,
                actor=actor,
                component=component,
                version_from=version_from,
                version_to=version_to,
                success=success,
                error_message=error_message,
                details=details,
            )

    def audit_records(self) -> list[AuditRecord]:
        """The whole audit log in seq order."""
        with self._read("read the audit log") as conn:
            found = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [self._decode_audit_record(row) for row in found]

    def verify_audit(self) -> AuditVerification:
        """Recompute the chain; report the first edited, removed or inserted record."""
        with self._read("verify the audit log") as conn:
            return _verify(conn)

    def export_audit(self) -> list[dict[str, Any]]:
        """Every record as stored, hashes included. Never judges: a tampered log exports
        as it is, for whoever investigates it."""
        with self._read("export the audit log") as conn:
            found = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [rows.audit_content(row) for row in found]

    def records_between(
        self, since: float | None = None, until: float | None = None
    ) -> PeriodRecords:
        """The operations started and the audit records written in [since, until) (no
        bound when None), with the whole chain's verification, from one snapshot: what a
        report reads next to a running application agrees with itself."""
        operations_where, operations_params = _between("started_at", since, until)
        audit_where, audit_params = _between("timestamp", since, until)
        with self._read("read the records of a period") as conn:
            operations = conn.execute(
                f"SELECT * FROM operations{operations_where} ORDER BY started_at, rowid",
                operations_params,
            ).fetchall()
            audit = conn.execute(
                f"SELECT * FROM audit{audit_where} ORDER BY seq", audit_params
            ).fetchall()
            verification = _verify(conn)
        return PeriodRecords(
            operations=[self._decode_history_entry(row) for row in operations],
            audit=[self._decode_audit_record(row) for row in audit],
            verification=verification,
        )

    # -- proposals (what the runtime proposed itself) -----------------------------------

    def add_proposal(
        self,
        *,
        component: str,
        kind: str,
        from_version: str,
        to_version: str,
        source: str,
        state: ProposalState,
        reason: str,
        detail: Mapping[str, Any] | None = None,
    ) -> ProposalRecord:
        """Record a proposal; the component's open ones are superseded by it (one open
        proposal per component: the newest says what the runtime wants now)."""
        proposal_id = new_id("p")
        with self._write(f"record a proposal for {component} {to_version}") as conn:
            for old in proposals.open_ids(conn, component):
                replaced = f"superseded by {proposal_id} ({kind} to {to_version})"
                proposals.move(
                    conn,
                    old,
                    ProposalState.SUPERSEDED,
                    reason=replaced,
                    actor=None,
                    operation_id=None,
                )
            proposals.insert(
                conn,
                proposal_id=proposal_id,
                component=component,
                kind=kind,
                from_version=from_version,
                to_version=to_version,
                source=source,
                state=state,
                reason=reason,
                detail=dict(detail or {}),
            )
        return self.proposal(proposal_id)

    def proposal(self, proposal_id: str) -> ProposalRecord:
        with self._read(f"read proposal {proposal_id}") as conn:
            return proposals.existing(conn, proposal_id, self._path)

    def proposals(
        self, *, open_only: bool = False, component: str | None = None, limit: int | None = None
    ) -> list[ProposalRecord]:
        """Proposals, newest first: every one, or only the open (pending, deferred) ones."""
        clauses: list[str] = []
        params: list[str] = []
        if open_only:
            clauses.append(f"state IN ({', '.join('?' for _ in proposals.OPEN_STATES)})")
            params.extend(str(state) for state in proposals.OPEN_STATES)
        if component is not None:
            clauses.append("component = ?")
            params.append(component)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM proposals{where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._read("read the proposals") as conn:
            found = conn.execute(sql, [*params, -1 if limit is None else limit]).fetchall()
        return [rows.decode("proposals", rows.proposal_record, row, self._path) for row in found]

    def move_proposal(
        self,
        proposal_id: str,
        to: ProposalState,
        *,
        actor: str,
        reason: str | None = None,
        operation_id: str | None = None,
    ) -> ProposalRecord:
        """Change a proposal's state if that transition is allowed (else NoodleError,
        nothing written). An approval or a rejection is audited with its actor."""
        with self._write(f"move proposal {proposal_id} to {to}") as conn:
            state = proposals.existing(conn, proposal_id, self._path).state
            proposals.check_transition(proposal_id, state, to)
            decided = to in (ProposalState.APPROVED, ProposalState.REJECTED)
            proposals.move(
                conn,
                proposal_id,
                to,
                reason=reason,
                actor=actor if decided else None,
                operation_id=operation_id,
            )
            if decided:
                row = conn.execute(
                    "SELECT * FROM proposals WHERE id = ?", (proposal_id,)
                ).fetchone()
                record = rows.decode("proposals", rows.proposal_record, row, self._path)
                journal.append_audit(
                    conn,
                    f"proposal.{to}",
                    actor=actor,
                    component=record.component,
                    version_from=record.from_version,
                    version_to=record.to_version,
                    details=_present(
                        proposal=proposal_id, kind=record.kind, source=record.source, reason=reason
                    ),
                )
        return self.proposal(proposal_id)

    def blocked_versions(self, component: str) -> set[str]:
        """Versions of ``component`` never proposed again automatically: rejected, rolled
        back, switched back or failed."""
        with self._read(f"read the blocked versions of {component}") as conn:
            return proposals.blocked_versions(conn, component)

    def last_upgrade_at(self, component: str) -> float | None:
        """When the last successful upgrade of ``component`` finished."""
        with self._read(f"read the last upgrade of {component}") as conn:
            row = conn.execute(
                "SELECT MAX(finished_at) AS at FROM operations "
                "WHERE component = ? AND kind = 'upgrade' AND status = 'succeeded'",
                (component,),
            ).fetchone()
        return None if row["at"] is None else float(row["at"])


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    # The original error matters more than a failure to roll back after it.
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _verify(conn: sqlite3.Connection) -> AuditVerification:
    head = journal.read_head(conn)
    found = conn.execute("SELECT * FROM audit ORDER BY seq")
    return verify_chain((rows.audit_content(row) for row in found), head)


def _between(column: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    """A WHERE clause keeping ``column`` (one of ours, never user text) in [since, until)."""
    clauses, params = [], []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(until)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _present(**values: Any) -> dict[str, Any]:
    """The given values that are not None: audit details list only what applies."""
    return {key: value for key, value in values.items() if value is not None}
