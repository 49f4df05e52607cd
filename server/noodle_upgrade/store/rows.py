"""Database rows to records. Rows are checked, not trusted: the file can be edited by hand.

A value of the wrong type raises ``CorruptRowError``; the store turns it into a
``StoreError`` that names the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import ProposalState, RollbackPoint, UpgradeStatus
from noodle_upgrade.store.records import (
    AuditRecord,
    HistoryEntry,
    OutcomeCount,
    ProposalRecord,
    StoredEvent,
)

T = TypeVar("T")


class CorruptRowError(ValueError):
    """A column holds a value the schema does not allow."""


def decode(table: str, convert: Callable[[sqlite3.Row], T], row: sqlite3.Row, db_path: Path) -> T:
    """``convert(row)``, with a corrupt row reported as a StoreError naming the file."""
    try:
        return convert(row)
    except CorruptRowError as exc:
        raise StoreError(
            f"{table} row {_row_label(row)} in {db_path} is corrupt ({exc}); "
            "restore the file from a backup"
        ) from None


def _text(row: sqlite3.Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise CorruptRowError(f"{column} is {value!r}, not text")
    return value


def _opt_text(row: sqlite3.Row, column: str) -> str | None:
    return None if row[column] is None else _text(row, column)


def _number(row: sqlite3.Row, column: str) -> float:
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorruptRowError(f"{column} is {value!r}, not a number")
    return float(value)


def _opt_number(row: sqlite3.Row, column: str) -> float | None:
    return None if row[column] is None else _number(row, column)


def _json(row: sqlite3.Row, column: str) -> Any:
    try:
        return json.loads(_text(row, column))
    except json.JSONDecodeError:
        raise CorruptRowError(f"{column} is not valid JSON") from None


def _json_object(row: sqlite3.Row, column: str) -> dict[str, Any]:
    value = _json(row, column)
    if not isinstance(value, dict):
        raise CorruptRowError(f"{column} is not a JSON object")
    return value


def _string_list(row: sqlite3.Row, column: str) -> list[str]:
    value = _json(row, column)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CorruptRowError(f"{column} is not a JSON list of strings")
    return value


def _row_label(row: sqlite3.Row) -> str:
    """How an error names a row: by its key column."""
    keys = row.keys()
    for key in ("seq", "id", "name"):
        if key in keys:
            return f"{key} {row[key]!r}"
    return "a row"


def history_entry(row: sqlite3.Row) -> HistoryEntry:
    status = _status(row)
    return HistoryEntry(
        id=_text(row, "id"),
        kind=_text(row, "kind"),
        component=_text(row, "component"),
        from_version=_text(row, "from_version"),
        to_version=_text(row, "to_version"),
        strategy=_text(row, "strategy"),
        status=status,
        error_code=_opt_text(row, "error_code"),
        error_message=_opt_text(row, "error_message"),
        actor=_text(row, "actor"),
        started_at=_number(row, "started_at"),
        finished_at=_opt_number(row, "finished_at"),
        path=_string_list(row, "path"),
        rollback_point_id=_opt_text(row, "rollback_point_id"),
        reason=_opt_text(row, "reason"),
    )


def outcome_count(row: sqlite3.Row) -> OutcomeCount:
    upgrades = row["upgrades"]
    if not isinstance(upgrades, int):
        raise CorruptRowError(f"upgrades is {upgrades!r}, not an integer")
    return OutcomeCount(
        component=_text(row, "component"),
        strategy=_text(row, "strategy"),
        status=_status(row),
        upgrades=upgrades,
    )


def _status(row: sqlite3.Row) -> UpgradeStatus:
    try:
        return UpgradeStatus(row["status"])
    except ValueError:
        raise CorruptRowError(f"status is {row['status']!r}, not an upgrade status") from None


def rollback_point(row: sqlite3.Row) -> RollbackPoint:
    return RollbackPoint(
        id=_text(row, "id"),
        component_name=_text(row, "component"),
        version=_text(row, "version"),
        upgrade_id=_text(row, "upgrade_id"),
        created_at=_number(row, "created_at"),
        to_version=_text(row, "to_version"),
    )


def stored_event(row: sqlite3.Row) -> StoredEvent:
    event_id = row["id"]
    if not isinstance(event_id, int):
        raise CorruptRowError(f"id is {event_id!r}, not an integer")
    return StoredEvent(
        id=event_id,
        time=_number(row, "time"),
        kind=_text(row, "kind"),
        component=_opt_text(row, "component"),
        data=_json_object(row, "data"),
    )


def audit_content(row: sqlite3.Row) -> dict[str, Any]:
    """An audit row as the hash saw it, without judging it: verification does that.

    Only the storage encodings are undone (0/1 to a bool, JSON text to a value); a
    value of any other shape is passed on as it is and fails its hash.
    """
    content = dict(zip(row.keys(), row, strict=True))  # iterating a Row yields values
    success = content["success"]
    if type(success) is int and success in (0, 1):
        content["success"] = bool(success)
    # Unparseable details stay as stored text, so that record's hash cannot match.
    with suppress(TypeError, json.JSONDecodeError):
        content["details"] = json.loads(content["details"])
    return content


def audit_record(row: sqlite3.Row) -> AuditRecord:
    success = row["success"]
    if type(success) is not int or success not in (0, 1):
        raise CorruptRowError(f"success is {success!r}, not 0 or 1")
    seq = row["seq"]
    if not isinstance(seq, int):
        raise CorruptRowError(f"seq is {seq!r}, not an integer")
    return AuditRecord(
        seq=seq,
        record_id=_text(row, "record_id"),
        timestamp=_number(row, "timestamp"),
        event_type=_text(row, "event_type"),
        actor=_text(row, "actor"),
        component=_opt_text(row, "component"),
        version_from=_opt_text(row, "version_from"),
        version_to=_opt_text(row, "version_to"),
        success=bool(success),
        error_message=_opt_text(row, "error_message"),
        details=_json_object(row, "details"),
        previous_hash=_text(row, "previous_hash"),
        hash=_text(row, "hash"),
    )


def proposal_record(row: sqlite3.Row) -> ProposalRecord:
    try:
        state = ProposalState(row["state"])
    except ValueError:
        raise CorruptRowError(f"state is {row['state']!r}, not a proposal state") from None
    return ProposalRecord(
        id=_text(row, "id"),
        component=_text(row, "component"),
        kind=_text(row, "kind"),
        from_version=_text(row, "from_version"),
        to_version=_text(row, "to_version"),
        source=_text(row, "source"),
        state=state,
        reason=_text(row, "reason"),
        created_at=_number(row, "created_at"),
        updated_at=_number(row, "updated_at"),
        decided_by=_opt_text(row, "decided_by"),
        operation_id=_opt_text(row, "operation_id"),
        detail=_json_object(row, "detail"),
    )
