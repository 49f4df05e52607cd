"""The durable store, ``.noodle/state.db``: locks, history, rollback points, events, audit."""

from noodle_upgrade.models import RollbackPoint
from noodle_upgrade.store.db import Store
from noodle_upgrade.store.records import (
    AuditRecord,
    AuditVerification,
    HistoryEntry,
    OutcomeCount,
    PeriodRecords,
    ProposalRecord,
    StoredEvent,
)

__all__ = [
    "AuditRecord",
    "AuditVerification",
    "HistoryEntry",
    "OutcomeCount",
    "PeriodRecords",
    "ProposalRecord",
    "RollbackPoint",
    "Store",
    "StoredEvent",
]
