"""Outcome statistics counted from the journal on a real SQLite store: what the decision
engine learns from, updated by every outcome the store records."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from helpers.store import raw
from noodle_upgrade.engine.decision import DecisionInput, Outcomes, OutcomeStats, decide
from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import BumpKind, UpgradeStatus
from noodle_upgrade.store import OutcomeCount, Store


def upgrade(
    store: Store,
    op_id: str,
    status: UpgradeStatus | None,
    *,
    component: str = "parser",
    strategy: str = "canary",
    kind: str = "upgrade",
) -> None:
    """An operation that starts and, unless ``status`` is None, finishes with ``status``."""
    store.begin_operation(
        op_id=op_id,
        kind=kind,
        component=component,
        from_version="1.0.0",
        to_version="1.1.0",
        strategy=strategy,
        actor="test",
        path=["1.0.0", "1.1.0"],
    )
    if status is not None:
        store.complete_operation(op_id=op_id, status=status, actor="test")


def refuse(store: Store, op_id: str, *, component: str = "parser") -> None:
    store.record_refusal(
        op_id=op_id,
        kind="upgrade",
        component=component,
        from_version="1.0.0",
        to_version="9.0.0",
        strategy="immediate",
        actor="test",
        error_code="unsatisfiable-constraint",
        error_message="parser 9.0.0 is outside the constraint",
    )


def test_an_empty_store_has_no_outcomes(store: Store) -> None:
    assert store.outcome_stats() == []
    assert OutcomeStats.from_counts(store.outcome_stats()) == OutcomeStats()


def test_finished_upgrades_are_counted_per_component_strategy_and_status(store: Store) -> None:
    upgrade(store, "up-1", UpgradeStatus.SUCCEEDED)
    upgrade(store, "up-2", UpgradeStatus.SUCCEEDED)
    upgrade(store, "up-3", UpgradeStatus.ROLLED_BACK)
    upgrade(store, "up-4", UpgradeStatus.FAILED, strategy="immediate")
    upgrade(store, "up-5", UpgradeStatus.SUCCEEDED, component="lexer", strategy="immediate")
    refuse(store, "up-6")
    # Not outcomes of an upgrade: a rollback, one still running, one interrupted.
    upgrade(store, "rb-1", UpgradeStatus.SUCCEEDED, kind="rollback")
    upgrade(store, "up-7", None)
    upgrade(store, "up-8", None)
    conn = raw(store.path)
    conn.execute("UPDATE operations SET status = 'interrupted' WHERE id = 'up-8'")
    conn.close()

    assert store.outcome_stats() == [
        OutcomeCount("lexer", "immediate", UpgradeStatus.SUCCEEDED, 1),
        OutcomeCount("parser", "canary", UpgradeStatus.ROLLED_BACK, 1),
        OutcomeCount("parser", "canary", UpgradeStatus.SUCCEEDED, 2),
        OutcomeCount("parser", "immediate", UpgradeStatus.FAILED, 1),
        OutcomeCount("parser", "immediate", UpgradeStatus.REFUSED, 1),
    ]
    stats = OutcomeStats.from_counts(store.outcome_stats())
    assert stats.for_component("parser") == Outcomes(
        succeeded=2, failed=1, rolled_back=1, refused=1
    )
    assert stats.for_strategy("immediate") == Outcomes(succeeded=1, failed=1, refused=1)


def test_every_recorded_outcome_changes_the_next_decision(db_path: Path) -> None:
    def confidence(store: Store) -> float:
        decision = decide(
            DecisionInput(
                component="parser",
                from_version=Version("1.0.0"),
                to_version=Version("1.0.1"),
                bump=BumpKind.PATCH,
                critical=False,
                strategy="canary",
                stats=OutcomeStats.from_counts(store.outcome_stats()),
            ),
            threshold=0.8,
        )
        return decision.confidence

    with Store.open(db_path) as store:
        fresh = confidence(store)
        upgrade(store, "up-1", UpgradeStatus.ROLLED_BACK)
        after_a_failure = confidence(store)
    # Statistics are the journal: another process opening the store later sees them.
    with Store.open(db_path) as store:
        assert confidence(store) == after_a_failure
        upgrade(store, "up-2", UpgradeStatus.SUCCEEDED)
        upgrade(store, "up-3", UpgradeStatus.SUCCEEDED)
        recovered = confidence(store)

    assert after_a_failure < fresh
    assert recovered > after_a_failure


def test_a_corrupt_operation_row_is_reported_with_the_file(store: Store) -> None:
    upgrade(store, "up-1", UpgradeStatus.SUCCEEDED)
    conn = raw(store.path)
    conn.execute("UPDATE operations SET component = X'00ff' WHERE id = 'up-1'")
    conn.close()

    with pytest.raises(StoreError) as caught:
        store.outcome_stats()
    message = str(caught.value)
    assert str(store.path) in message
    assert "component is b'\\x00\\xff', not text" in message
