"""Statements on the ``proposals`` table, run inside one of ``Store``'s transactions.

A proposal moves through states (``models.ProposalState``): open ones (pending,
deferred) wait; an approval makes it ``approved`` while its operation runs, then
``applied`` or ``failed``; a rejection, or a newer proposal for the same component,
closes it. Only the transitions in ``_ALLOWED`` are possible, so two operators racing
to approve and reject the same item cannot both win.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import ProposalState
from noodle_upgrade.store import rows
from noodle_upgrade.store.records import ProposalRecord

OPEN_STATES = (ProposalState.PENDING, ProposalState.DEFERRED)

_ALLOWED: dict[ProposalState, frozenset[ProposalState]] = {
    ProposalState.PENDING: frozenset(
        {
            ProposalState.PENDING,  # a new reason
            ProposalState.DEFERRED,
            ProposalState.APPROVED,
            ProposalState.REJECTED,
            ProposalState.SUPERSEDED,
        }
    ),
    ProposalState.DEFERRED: frozenset(
        {
            ProposalState.DEFERRED,
            ProposalState.PENDING,
            ProposalState.APPROVED,
            ProposalState.REJECTED,
            ProposalState.SUPERSEDED,
        }
    ),
    ProposalState.APPROVED: frozenset(
        {ProposalState.APPLIED, ProposalState.FAILED, ProposalState.DEFERRED}
    ),
}

# Versions never proposed again automatically: rejected ones, and those that were rolled
# back, switched back or failed (no flapping). Only an explicit request brings them back.
_BLOCKED = """
    SELECT to_version AS version FROM proposals
        WHERE component = :component AND state = 'rejected'
    UNION SELECT to_version FROM operations
        WHERE component = :component AND kind = 'upgrade' AND status IN ('failed', 'rolled_back')
    UNION SELECT from_version FROM operations
        WHERE component = :component AND kind = 'rollback' AND status = 'succeeded'
"""


def insert(
    conn: sqlite3.Connection,
    *,
    proposal_id: str,
    component: str,
    kind: str,
    from_version: str,
    to_version: str,
    source: str,
    state: ProposalState,
    reason: str,
    detail: dict[str, Any],
) -> None:
    now = time.time()
    conn.execute(
        "INSERT INTO proposals (id, component, kind, from_version, to_version, source, state, "
        "reason, created_at, updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            proposal_id,
            component,
            kind,
            from_version,
            to_version,
            source,
            str(state),
            reason,
            now,
            now,
            json.dumps(detail, sort_keys=True, default=str),
        ),
    )


def existing(conn: sqlite3.Connection, proposal_id: str, db_path: Path) -> ProposalRecord:
    """The proposal ``proposal_id``; refuses an unknown one, reports a corrupt row."""
    row = conn.execute("SELECT * FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
    if row is None:
        raise NoodleError(
            f"no proposal {proposal_id!r} in this project; `noodle status` lists the pending ones",
            code="unknown-proposal",
        )
    return rows.decode("proposals", rows.proposal_record, row, db_path)


def check_transition(proposal_id: str, state: ProposalState, to: ProposalState) -> None:
    if to not in _ALLOWED.get(state, frozenset()):
        verb = {ProposalState.APPROVED: "approved", ProposalState.REJECTED: "rejected"}
        doing = verb.get(to, f"moved to {to}")
        raise NoodleError(
            f"proposal {proposal_id} is {state}: it cannot be {doing} "
            "(only pending or deferred proposals can be approved or rejected)",
            code="proposal-closed",
        )


def move(
    conn: sqlite3.Connection,
    proposal_id: str,
    to: ProposalState,
    *,
    reason: str | None,
    actor: str | None,
    operation_id: str | None,
) -> None:
    conn.execute(
        "UPDATE proposals SET state = ?, reason = COALESCE(?, reason), updated_at = ?, "
        "decided_by = COALESCE(?, decided_by), operation_id = COALESCE(?, operation_id) "
        "WHERE id = ?",
        (str(to), reason, time.time(), actor, operation_id, proposal_id),
    )


def open_ids(conn: sqlite3.Connection, component: str) -> list[str]:
    placeholders = ", ".join("?" for _ in OPEN_STATES)
    found = conn.execute(
        f"SELECT id FROM proposals WHERE component = ? AND state IN ({placeholders})",
        (component, *[str(state) for state in OPEN_STATES]),
    )
    return [str(row["id"]) for row in found]


def blocked_versions(conn: sqlite3.Connection, component: str) -> set[str]:
    return {str(row["version"]) for row in conn.execute(_BLOCKED, {"component": component})}
