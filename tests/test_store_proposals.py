"""Proposals in the state store, on real SQLite files: what the runtime proposed itself,
how operators decide it, what is audited, and which versions are never proposed again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.store import raw
from noodle_upgrade.errors import NoodleError, StoreError
from noodle_upgrade.models import ProposalState, UpgradeStatus
from noodle_upgrade.store import HistoryEntry, ProposalRecord, Store
from noodle_upgrade.store.schema import SCHEMA_VERSION

PENDING = ProposalState.PENDING
DEFERRED = ProposalState.DEFERRED
APPROVED = ProposalState.APPROVED
APPLIED = ProposalState.APPLIED
FAILED = ProposalState.FAILED
REJECTED = ProposalState.REJECTED
SUPERSEDED = ProposalState.SUPERSEDED


def propose(
    store: Store,
    to: str,
    *,
    component: str = "parser",
    state: ProposalState = PENDING,
    kind: str = "upgrade",
    detail: dict[str, Any] | None = None,
) -> ProposalRecord:
    return store.add_proposal(
        component=component,
        kind=kind,
        from_version="1.0.0",
        to_version=to,
        source="watcher",
        state=state,
        reason=f"{component} {to} appeared in the store",
        detail=detail,
    )


def operation(
    store: Store,
    op_id: str,
    status: UpgradeStatus,
    *,
    kind: str = "upgrade",
    from_version: str = "1.0.0",
    to_version: str,
    component: str = "parser",
) -> HistoryEntry:
    """A finished operation: refused before it began, or begun and completed."""
    if status is UpgradeStatus.REFUSED:
        return store.record_refusal(
            op_id=op_id,
            kind=kind,
            component=component,
            from_version=from_version,
            to_version=to_version,
            strategy="immediate",
            actor="test",
            error_code="unsatisfiable-constraint",
            error_message=f"{component} {to_version} is outside the constraint",
        )
    store.begin_operation(
        op_id=op_id,
        kind=kind,
        component=component,
        from_version=from_version,
        to_version=to_version,
        strategy="immediate",
        actor="test",
        path=[from_version, to_version],
    )
    return store.complete_operation(op_id=op_id, status=status, actor="test")


def moved_through(store: Store, states: list[ProposalState]) -> ProposalRecord:
    """A pending proposal moved through ``states``, in order."""
    record = propose(store, "1.1.0")
    for state in states:
        record = store.move_proposal(record.id, state, actor="test")
    return record


def read_all(store: Store, proposal_id: str) -> object:
    return store.proposals()


def read_one(store: Store, proposal_id: str) -> object:
    return store.proposal(proposal_id)


def approve(store: Store, proposal_id: str) -> object:
    return store.move_proposal(proposal_id, APPROVED, actor="alice")


# -- recording and reading -------------------------------------------------------------


def test_a_proposal_is_stored_and_read_back_by_another_store(db_path: Path) -> None:
    with Store.open(db_path) as store:
        added = propose(store, "1.1.0", state=DEFERRED, detail={"bump": "minor", "confidence": 0.9})

    with Store.open(db_path) as reopened:
        assert reopened.proposal(added.id) == added
        assert reopened.proposals() == [added]
    assert added.id.startswith("p-")
    assert added.created_at == added.updated_at
    assert added.to_dict() == {
        "id": added.id,
        "component": "parser",
        "version": "1.1.0",  # the target, as `noodle status --json` shows it
        "reason": "parser 1.1.0 appeared in the store",
        "kind": "upgrade",
        "from_version": "1.0.0",
        "source": "watcher",
        "state": "deferred",
        "created_at": added.created_at,
        "updated_at": added.updated_at,
        "decided_by": None,
        "operation": None,
        "detail": {"bump": "minor", "confidence": 0.9},
    }


def test_a_new_proposal_supersedes_only_its_own_components_open_ones(store: Store) -> None:
    rejected = propose(store, "1.1.0")
    store.move_proposal(rejected.id, REJECTED, actor="alice", reason="not this one")
    older = propose(store, "1.2.0")
    deferred = propose(store, "1.3.0", state=DEFERRED)
    lexer = propose(store, "0.4.0", component="lexer")
    audited = len(store.audit_records())

    newest = propose(store, "1.4.0")

    assert store.proposal(older.id).state is SUPERSEDED
    replaced = store.proposal(deferred.id)
    assert replaced.state is SUPERSEDED
    assert replaced.reason == f"superseded by {newest.id} (upgrade to 1.4.0)"
    assert replaced.decided_by is None
    assert store.proposal(lexer.id) == lexer  # another component's stays open
    closed = store.proposal(rejected.id)  # a closed one stays as it was decided
    assert (closed.state, closed.reason) == (REJECTED, "not this one")
    assert [p.id for p in store.proposals(open_only=True)] == [newest.id, lexer.id]
    assert len(store.audit_records()) == audited  # superseding is not a decision


def test_proposals_are_listed_newest_first_filtered_and_limited(store: Store) -> None:
    first = propose(store, "1.1.0")
    lexer = propose(store, "0.4.0", component="lexer")
    second = propose(store, "1.2.0")  # supersedes the first

    def ids(**query: Any) -> list[str]:
        return [p.id for p in store.proposals(**query)]

    assert ids() == [second.id, lexer.id, first.id]
    assert ids(open_only=True) == [second.id, lexer.id]
    assert ids(component="parser") == [second.id, first.id]
    assert ids(component="parser", open_only=True) == [second.id]
    assert ids(limit=2) == [second.id, lexer.id]
    assert ids(component="optimizer") == []


# -- transitions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        [DEFERRED, PENDING, APPROVED, APPLIED],
        [DEFERRED, DEFERRED, APPROVED, FAILED],
        [PENDING, APPROVED, DEFERRED, APPROVED],  # approved, then the window closed
        [REJECTED],
        [DEFERRED, REJECTED],
        [SUPERSEDED],
        [DEFERRED, SUPERSEDED],
    ],
    ids=lambda path: "-".join(str(state) for state in path),
)
def test_allowed_transitions_move_the_proposal(store: Store, path: list[ProposalState]) -> None:
    record = moved_through(store, path)

    assert record.state is path[-1]
    assert store.proposal(record.id) == record


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ([REJECTED], APPROVED),
        ([REJECTED], REJECTED),
        ([SUPERSEDED], APPROVED),
        ([APPROVED, APPLIED], REJECTED),
        ([APPROVED, FAILED], APPROVED),
        ([APPROVED], APPROVED),  # two operators approving the same one
        ([APPROVED], REJECTED),
        ([], APPLIED),  # applied without being approved
        ([DEFERRED], FAILED),
    ],
    ids=lambda value: "-".join(str(state) for state in value) if isinstance(value, list) else value,
)
def test_refused_transitions_change_nothing(
    store: Store, path: list[ProposalState], to: ProposalState
) -> None:
    record = moved_through(store, path)
    audit = store.audit_records()

    with pytest.raises(NoodleError) as caught:
        store.move_proposal(record.id, to, actor="bob", reason="changed my mind")

    assert caught.value.code == "proposal-closed"
    assert f"proposal {record.id} is {record.state}: it cannot be" in caught.value.message
    assert store.proposal(record.id) == record
    assert store.audit_records() == audit


def test_approving_a_rejected_proposal_says_why_it_cannot(store: Store) -> None:
    record = moved_through(store, [REJECTED])

    with pytest.raises(NoodleError) as caught:
        store.move_proposal(record.id, APPROVED, actor="bob")

    assert caught.value.message == (
        f"proposal {record.id} is rejected: it cannot be approved "
        "(only pending or deferred proposals can be approved or rejected)"
    )


def test_of_two_operators_deciding_at_once_only_the_first_wins(db_path: Path) -> None:
    with Store.open(db_path) as alice, Store.open(db_path) as bob:
        record = propose(alice, "1.1.0")
        alice.move_proposal(record.id, APPROVED, actor="alice")

        with pytest.raises(NoodleError) as caught:
            bob.move_proposal(record.id, REJECTED, actor="bob")

        assert caught.value.code == "proposal-closed"
        decided = bob.proposal(record.id)
        assert (decided.state, decided.decided_by) == (APPROVED, "alice")
        assert [r.actor for r in bob.audit_records()] == ["alice"]


@pytest.mark.parametrize("attempt", [read_one, approve])
def test_an_unknown_proposal_is_named_and_nothing_is_written(
    store: Store, attempt: Callable[[Store, str], object]
) -> None:
    propose(store, "1.1.0")
    before = store.proposals()

    with pytest.raises(NoodleError) as caught:
        attempt(store, "p-404")

    assert caught.value.code == "unknown-proposal"
    assert "'p-404'" in caught.value.message
    assert store.proposals() == before
    assert store.audit_records() == []


# -- audit -----------------------------------------------------------------------------


def test_approvals_and_rejections_are_audited_with_their_actor(store: Store) -> None:
    approved = propose(store, "1.1.0")
    store.move_proposal(approved.id, APPROVED, actor="alice", reason="looks good")
    rejected = propose(store, "0.4.0", component="lexer", kind="rollback")
    store.move_proposal(rejected.id, REJECTED, actor="bob")

    records = store.audit_records()
    assert [
        (r.event_type, r.actor, r.component, r.version_from, r.version_to, r.details)
        for r in records
    ] == [
        (
            "proposal.approved",
            "alice",
            "parser",
            "1.0.0",
            "1.1.0",
            {
                "proposal": approved.id,
                "kind": "upgrade",
                "source": "watcher",
                "reason": "looks good",
            },
        ),
        (
            "proposal.rejected",
            "bob",
            "lexer",
            "1.0.0",
            "0.4.0",
            {"proposal": rejected.id, "kind": "rollback", "source": "watcher"},
        ),
    ]
    assert store.verify_audit().ok
    assert store.proposal(approved.id).decided_by == "alice"
    assert store.proposal(approved.id).reason == "looks good"
    assert store.proposal(rejected.id).decided_by == "bob"


def test_other_moves_are_not_audited_and_keep_who_decided(store: Store) -> None:
    record = propose(store, "1.1.0")
    store.move_proposal(record.id, DEFERRED, actor="policy", reason="outside the window")
    store.move_proposal(record.id, PENDING, actor="policy")
    store.move_proposal(record.id, APPROVED, actor="alice")

    applied = store.move_proposal(record.id, APPLIED, actor="runtime", operation_id="up-1")

    assert [r.event_type for r in store.audit_records()] == ["proposal.approved"]
    assert store.verify_audit().ok
    assert (applied.decided_by, applied.operation_id) == ("alice", "up-1")
    assert applied.reason == "outside the window"  # no new reason keeps the last one


# -- what is never proposed again ------------------------------------------------------


def test_blocked_versions_are_rejected_failed_and_switched_back_ones(store: Store) -> None:
    store.move_proposal(propose(store, "1.5.0").id, REJECTED, actor="alice")
    propose(store, "1.6.0")  # supersedes nothing open; pending is not blocked
    propose(store, "1.7.0")  # supersedes 1.6.0; superseded is not blocked
    operation(store, "up-1", UpgradeStatus.FAILED, to_version="1.1.0")
    operation(store, "up-2", UpgradeStatus.ROLLED_BACK, to_version="1.2.0")
    operation(store, "up-3", UpgradeStatus.SUCCEEDED, to_version="1.3.0")
    operation(
        store,
        "rb-1",
        UpgradeStatus.SUCCEEDED,
        kind="rollback",
        from_version="1.3.0",
        to_version="1.0.0",
    )
    operation(store, "up-4", UpgradeStatus.SUCCEEDED, to_version="1.4.0")
    operation(store, "up-5", UpgradeStatus.REFUSED, to_version="2.0.0")
    # Another component's history blocks nothing here.
    store.move_proposal(propose(store, "1.8.0", component="lexer").id, REJECTED, actor="bob")
    operation(store, "lx-1", UpgradeStatus.FAILED, component="lexer", to_version="1.9.0")

    assert store.blocked_versions("parser") == {"1.5.0", "1.1.0", "1.2.0", "1.3.0"}
    assert store.blocked_versions("lexer") == {"1.8.0", "1.9.0"}
    assert store.blocked_versions("optimizer") == set()


def test_last_upgrade_at_is_when_the_newest_successful_upgrade_finished(store: Store) -> None:
    assert store.last_upgrade_at("parser") is None
    operation(store, "up-1", UpgradeStatus.SUCCEEDED, to_version="1.1.0")
    newest = operation(store, "up-2", UpgradeStatus.SUCCEEDED, to_version="1.2.0")
    # Later, but not successful upgrades of parser:
    operation(store, "up-3", UpgradeStatus.FAILED, to_version="1.3.0")
    operation(store, "up-4", UpgradeStatus.REFUSED, to_version="2.0.0")
    operation(
        store,
        "rb-1",
        UpgradeStatus.SUCCEEDED,
        kind="rollback",
        from_version="1.2.0",
        to_version="1.1.0",
    )
    operation(store, "lx-1", UpgradeStatus.SUCCEEDED, component="lexer", to_version="0.4.0")

    assert newest.finished_at is not None
    assert store.last_upgrade_at("parser") == newest.finished_at
    assert store.last_upgrade_at("optimizer") is None


# -- schema and damaged files ----------------------------------------------------------


def test_a_store_at_schema_2_migrates_and_keeps_its_data(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.activate("parser", "1.0.0", actor="test")
        upgraded = operation(store, "up-1", UpgradeStatus.SUCCEEDED, to_version="1.1.0")
        audit = store.audit_records()
    # What a release at schema version 2 left behind: no proposals, no operation reasons,
    # no ALE tables (schema v3, v4, v5).
    conn = raw(db_path)
    conn.execute("DROP TABLE proposals")
    conn.execute("ALTER TABLE operations DROP COLUMN reason")
    for table in ("ale_candidates", "ale_inputs", "ale_sites", "ale_signatures"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version = 2")
    conn.close()

    with Store.open(db_path) as store:
        assert store.active_versions() == {"parser": "1.0.0"}
        assert store.history() == [upgraded]
        assert store.audit_records() == audit
        assert store.verify_audit().ok
        assert store.proposals() == []
        added = propose(store, "1.2.0")
        assert store.proposals() == [added]
    conn = raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


@pytest.mark.parametrize("attempt", [read_all, read_one, approve])
def test_a_corrupt_proposal_row_is_reported_with_the_file(
    store: Store, attempt: Callable[[Store, str], object]
) -> None:
    record = propose(store, "1.1.0")
    conn = raw(store.path)
    conn.execute("PRAGMA ignore_check_constraints = ON")  # as a careless tool would
    conn.execute("UPDATE proposals SET state = 'maybe' WHERE id = ?", (record.id,))
    conn.close()

    with pytest.raises(StoreError) as caught:
        attempt(store, record.id)

    message = str(caught.value)
    assert str(store.path) in message
    assert "state is 'maybe', not a proposal state" in message
    assert store.audit_records() == []
