"""Statements that run inside one of ``Store``'s write transactions.

Nothing here begins or commits: the caller's ``BEGIN IMMEDIATE`` makes a whole state
change, and its audit record, atomic. Functions that can refuse take ``db_path`` only
to name the file in their error.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import RollbackPoint, UpgradeStatus, new_id
from noodle_upgrade.store import rows
from noodle_upgrade.store.audit import (
    GENESIS_HASH,
    HASHED_FIELDS,
    AuditHead,
    canonical_json,
    jsonable,
    record_hash,
)
from noodle_upgrade.store.records import AuditRecord, HistoryEntry

OPERATION_KINDS = ("upgrade", "rollback")

_AUDIT_COLUMNS = (*HASHED_FIELDS, "hash")
_INSERT_AUDIT = (
    f"INSERT INTO audit ({', '.join(_AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _AUDIT_COLUMNS)})"
)
_SET_HEAD = (
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
)
_SET_LOCK = (
    "INSERT INTO components (name, active_version, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET active_version = excluded.active_version, "
    "updated_at = excluded.updated_at"
)
_INSERT_OPERATION = (
    "INSERT INTO operations (id, kind, component, from_version, to_version, strategy, status, "
    "error_code, error_message, actor, started_at, finished_at, path, rollback_point_id, "
    "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FINISH_OPERATION = (
    "UPDATE operations SET status = ?, error_code = ?, error_message = ?, finished_at = ?, "
    "rollback_point_id = ? WHERE id = ?"
)
_INSERT_POINT = (
    "INSERT INTO rollback_points (id, component, version, to_version, upgrade_id, created_at, "
    "state) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


# -- audit chain ----------------------------------------------------------------------


def append_audit(
    conn: sqlite3.Connection,
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
    """Append one record to the chain and move the head to it."""
    link = _next_link(conn)
    draft = AuditRecord(
        seq=link.seq + 1,
        record_id=new_id("audit"),
        timestamp=time.time(),
        event_type=event_type,
        actor=actor,
        component=component,
        version_from=version_from,
        version_to=version_to,
        success=success,
        error_message=error_message,
        details=jsonable(details or {}),
        previous_hash=link.hash,
        hash="",
    )
    record = replace(draft, hash=record_hash(draft.content()))
    stored = record.to_dict()
    stored["success"] = int(record.success)
    stored["details"] = canonical_json(record.details)
    conn.execute(_INSERT_AUDIT, [stored[column] for column in _AUDIT_COLUMNS])
    conn.execute(_SET_HEAD, (record.seq, record.hash))
    return record


def audit_operation(
    conn: sqlite3.Connection, entry: HistoryEntry, actor: str, details: Mapping[str, Any]
) -> AuditRecord:
    """The audit record of an operation's step: ``{kind}.{status}``."""
    if entry.reason is not None:
        details = {**details, "reason": entry.reason}
    return append_audit(
        conn,
        f"{entry.kind}.{entry.status.value}",
        actor=actor,
        component=entry.component,
        version_from=entry.from_version,
        version_to=entry.to_version,
        success=entry.status is UpgradeStatus.SUCCEEDED,
        error_message=entry.error_message,
        details=details,
    )


def read_head(conn: sqlite3.Connection) -> AuditHead | None:
    """The stored head; None when its row is gone or was rewritten with junk."""
    row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    if row is None or not isinstance(row["seq"], int) or not isinstance(row["hash"], str):
        return None
    return AuditHead(seq=row["seq"], hash=row["hash"])


def _next_link(conn: sqlite3.Connection) -> AuditHead:
    """Where the next record attaches: the head, never the table's possibly cut tail.

    Continuing from the head keeps a removed tail visible as a gap. The seq also
    steps past any row inserted beyond the head by hand, so such a row cannot block
    every later write; verification reports it instead.
    """
    head = read_head(conn)
    tail = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    tail_seq = int(tail["seq"]) if tail is not None else 0
    if head is None:  # the head row was removed by hand: continue from the table
        return AuditHead(seq=tail_seq, hash=str(tail["hash"]) if tail else GENESIS_HASH)
    return AuditHead(seq=max(head.seq, tail_seq), hash=head.hash)


# -- locks ----------------------------------------------------------------------------


def locked_version(conn: sqlite3.Connection, component: str) -> str | None:
    row = conn.execute(
        "SELECT active_version FROM components WHERE name = ?", (component,)
    ).fetchone()
    return None if row is None else str(row["active_version"])


def set_lock(conn: sqlite3.Connection, component: str, version: str) -> None:
    conn.execute(_SET_LOCK, (component, version, time.time()))


# -- operations -----------------------------------------------------------------------


def new_entry(
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
    """A fresh in_progress entry, started now."""
    if kind not in OPERATION_KINDS:
        raise StoreError(f"operation {op_id}: kind {kind!r} is not one of upgrade, rollback")
    return HistoryEntry(
        id=op_id,
        kind=kind,
        component=component,
        from_version=from_version,
        to_version=to_version,
        strategy=strategy,
        status=UpgradeStatus.IN_PROGRESS,
        error_code=None,
        error_message=None,
        actor=actor,
        started_at=time.time(),
        finished_at=None,
        path=list(path),
        rollback_point_id=None,
        reason=reason,
    )


def insert_operation(conn: sqlite3.Connection, entry: HistoryEntry, db_path: Path) -> None:
    if conn.execute("SELECT 1 FROM operations WHERE id = ?", (entry.id,)).fetchone():
        raise StoreError(
            f"operation {entry.id} is already recorded in {db_path}; give each operation a new id"
        )
    conn.execute(
        _INSERT_OPERATION,
        (
            entry.id,
            entry.kind,
            entry.component,
            entry.from_version,
            entry.to_version,
            entry.strategy,
            entry.status.value,
            entry.error_code,
            entry.error_message,
            entry.actor,
            entry.started_at,
            entry.finished_at,
            canonical_json(entry.path),
            entry.rollback_point_id,
            entry.reason,
        ),
    )


def running_operation(conn: sqlite3.Connection, op_id: str, db_path: Path) -> HistoryEntry:
    """The unfinished operation ``op_id``; refuses an unknown or finished one.

    An interrupted one still takes its outcome: recovery marked it on the assumption
    that its process was gone, and a real outcome arriving proves otherwise. Refusing
    it would leave the lock behind what that process actually switched to.
    """
    row = conn.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
    if row is None:
        raise StoreError(
            f"operation {op_id} is not in {db_path}; record its start with begin_operation first"
        )
    entry = rows.decode("operations", rows.history_entry, row, db_path)
    if entry.status not in (UpgradeStatus.IN_PROGRESS, UpgradeStatus.INTERRUPTED):
        raise StoreError(
            f"operation {op_id} already finished ({entry.status.value}) in {db_path}; "
            "an outcome is recorded once"
        )
    return entry


def finish_operation(conn: sqlite3.Connection, entry: HistoryEntry) -> None:
    """Write ``entry``'s outcome fields over its row."""
    conn.execute(
        _FINISH_OPERATION,
        (
            entry.status.value,
            entry.error_code,
            entry.error_message,
            entry.finished_at,
            entry.rollback_point_id,
            entry.id,
        ),
    )


# -- rollback points ------------------------------------------------------------------


def insert_point(conn: sqlite3.Connection, point: RollbackPoint, state: bytes | None) -> None:
    conn.execute(
        _INSERT_POINT,
        (
            point.id,
            point.component_name,
            point.version,
            point.to_version,
            point.upgrade_id,
            point.created_at,
            state,
        ),
    )


def consume_point(conn: sqlite3.Connection, point_id: str, db_path: Path) -> None:
    # COALESCE keeps the first consumption time should a point be used twice.
    cursor = conn.execute(
        "UPDATE rollback_points SET consumed_at = COALESCE(consumed_at, ?) WHERE id = ?",
        (time.time(), point_id),
    )
    if cursor.rowcount == 0:
        raise StoreError(
            f"rollback point {point_id} is not in {db_path}; pass the id of a point the store holds"
        )


def release_points_after(conn: sqlite3.Connection, point_id: str) -> list[str]:
    """Release the component's live points taken after ``point_id``: once a rollback
    used it, they would lead forward, not back."""
    newer = conn.execute(
        "SELECT later.id FROM rollback_points AS later JOIN rollback_points AS used "
        "ON later.component = used.component AND later.created_at > used.created_at "
        "WHERE used.id = ? AND later.released_at IS NULL AND later.consumed_at IS NULL "
        "ORDER BY later.created_at",
        (point_id,),
    ).fetchall()
    ids = [str(row["id"]) for row in newer]
    for newer_id in ids:
        release_point(conn, newer_id)
    return ids


def release_point(conn: sqlite3.Connection, point_id: str) -> str | None:
    """Release one point and drop its saved state; returns its component, or None when
    it is unknown or already released."""
    row = conn.execute(
        "SELECT component FROM rollback_points WHERE id = ? AND released_at IS NULL",
        (point_id,),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE rollback_points SET released_at = ?, state = NULL WHERE id = ?",
        (time.time(), point_id),
    )
    return str(row["component"])
