"""What the store hands back: plain frozen records, no I/O.

Rollback points are ``models.RollbackPoint``; everything else the store returns is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from noodle_upgrade.models import ProposalState, UpgradeStatus


@dataclass(frozen=True)
class HistoryEntry:
    """One upgrade or rollback: its intent, and its outcome once it finished."""

    id: str
    kind: str  # "upgrade" | "rollback"
    component: str
    from_version: str
    to_version: str
    strategy: str
    status: UpgradeStatus
    error_code: str | None
    error_message: str | None
    actor: str  # who started it
    started_at: float
    finished_at: float | None
    path: list[str]
    rollback_point_id: str | None  # the point an upgrade left, or the one a rollback used
    reason: str | None = None  # why it was started (an automatic cause, a proposal)

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        # Key names follow UpgradeResult.to_dict so clients read both the same way.
        return {
            "id": self.id,
            "kind": self.kind,
            "component": self.component,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "strategy": self.strategy,
            "status": str(self.status),
            "error_code": self.error_code,
            "error_message": self.error_message,
            "actor": self.actor,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "path": list(self.path),
            "rollback_point": self.rollback_point_id,
            "reason": self.reason,
        }


class OutcomeCount(NamedTuple):
    """``upgrades`` of ``component`` with ``strategy`` ended with ``status``.

    A plain tuple, so ``engine.decision.OutcomeStats.from_counts`` takes these rows as they
    come (the store does not depend on the engine).
    """

    component: str
    strategy: str
    status: UpgradeStatus
    upgrades: int  # how many


@dataclass(frozen=True)
class AuditRecord:
    """One link of the audit hash chain (seed 003 §9.2, with ``seq`` for ordering)."""

    seq: int
    record_id: str
    timestamp: float
    event_type: str  # "upgrade.started", "rollback.succeeded", "component.activated", …
    actor: str
    component: str | None
    version_from: str | None
    version_to: str | None
    success: bool
    error_message: str | None
    details: dict[str, Any]
    previous_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """Every field the hash covers: all of them except ``hash`` itself."""
        return {
            "seq": self.seq,
            "record_id": self.record_id,
            "timestamp": self.timestamp,
            "event_type": self.event_type,
            "actor": self.actor,
            "component": self.component,
            "version_from": self.version_from,
            "version_to": self.version_to,
            "success": self.success,
            "error_message": self.error_message,
            "details": dict(self.details),
            "previous_hash": self.previous_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "hash": self.hash}


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the chain: ``ok``, or the first bad record and why."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StoredEvent:
    """One entry of the event log (progress, watcher notices): shown, not audited."""

    id: int
    time: float
    kind: str
    component: str | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "kind": self.kind,
            "component": self.component,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class ProposalRecord:
    """An upgrade or rollback the runtime proposed itself, and what became of it."""

    id: str
    component: str
    kind: str  # "upgrade" | "rollback"
    from_version: str
    to_version: str
    source: str  # "watcher", "manifest", "git", "manual", "trigger"
    state: ProposalState
    reason: str  # why it waits (pending, deferred) or what decided it
    created_at: float
    updated_at: float
    decided_by: str | None
    operation_id: str | None  # the upgrade or rollback that carried it out
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # "version" is the target, as in `noodle status --json` (DESIGN §4).
        return {
            "id": self.id,
            "component": self.component,
            "version": self.to_version,
            "reason": self.reason,
            "kind": self.kind,
            "from_version": self.from_version,
            "source": self.source,
            "state": str(self.state),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "decided_by": self.decided_by,
            "operation": self.operation_id,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class PeriodRecords:
    """What happened in a period, read in one snapshot (``Store.records_between``)."""

    operations: list[HistoryEntry]  # started in the period, oldest first
    audit: list[AuditRecord]  # written in the period, in seq order
    verification: AuditVerification  # of the whole chain, not just the period
