"""The durable store on real SQLite files: schema, journaling, recovery, points, events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.store import raw
from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import RollbackPoint, UpgradeStatus
from noodle_upgrade.store import HistoryEntry, Store
from noodle_upgrade.store.schema import SCHEMA_VERSION

TABLES = {"components", "operations", "rollback_points", "events", "audit", "audit_head"}


def begin(store: Store, op_id: str, *, kind: str = "upgrade", to: str = "1.1.0") -> HistoryEntry:
    return store.begin_operation(
        op_id=op_id,
        kind=kind,
        component="parser",
        from_version="1.0.0",
        to_version=to,
        strategy="canary",
        actor="test",
        path=["1.0.0", to],
    )


def point(point_id: str, upgrade_id: str, *, version: str, to: str, at: float) -> RollbackPoint:
    return RollbackPoint(
        id=point_id,
        component_name="parser",
        version=version,
        upgrade_id=upgrade_id,
        created_at=at,
        to_version=to,
    )


# -- schema --------------------------------------------------------------------------


def test_open_creates_folder_schema_and_wal(db_path: Path) -> None:
    Store.open(db_path).close()

    conn = raw(db_path)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopen_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.activate("parser", "1.0.0", actor="test")
    with Store.open(db_path) as store:
        assert store.active_versions() == {"parser": "1.0.0"}
        assert len(store.audit_records()) == 1
        assert store.verify_audit().ok
    conn = raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_refused_with_its_version(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = raw(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 4}")
    conn.close()

    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert str(caught.value) == (
        f"{db_path} has schema version {SCHEMA_VERSION + 4}, newer than this noodle-upgrade "
        f"understands ({SCHEMA_VERSION}); upgrade noodle-upgrade"
    )


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is a text file, not SQLite\n" * 200)

    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "not a database" in message
    assert "\n" not in message


def test_a_failed_migration_leaves_nothing_behind(db_path: Path) -> None:
    # A foreign table with one of our names makes migration 1 fail part-way through.
    db_path.parent.mkdir(parents=True)
    conn = raw(db_path)
    conn.execute("CREATE TABLE events (something TEXT)")
    conn.close()

    with pytest.raises(StoreError, match="events already exists"):
        Store.open(db_path)
    conn = raw(db_path)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"events"}  # components, created before the failure, was rolled back
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()


def test_a_closed_store_says_so(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.active_versions()


# -- locks ---------------------------------------------------------------------------


def test_activate_sets_the_lock_and_audits_only_changes(store: Store) -> None:
    assert store.activate("parser", "1.0.0", actor="cli")
    assert not store.activate("parser", "1.0.0", actor="cli")
    assert store.activate("parser", "1.2.0", actor="cli")
    store.activate("lexer", "0.3.0", actor="cli")

    assert store.active_versions() == {"lexer": "0.3.0", "parser": "1.2.0"}
    records = store.audit_records()
    assert [(r.event_type, r.version_from, r.version_to) for r in records] == [
        ("component.activated", None, "1.0.0"),
        ("component.activated", "1.0.0", "1.2.0"),
        ("component.activated", None, "0.3.0"),
    ]


# -- operations ------------------------------------------------------------------------


def test_intent_then_outcome_is_journaled(store: Store) -> None:
    store.activate("parser", "1.0.0", actor="test")
    started = begin(store, "up-1")
    assert started.status is UpgradeStatus.IN_PROGRESS
    assert store.operation("up-1") == started
    assert store.audit_records()[-1].event_type == "upgrade.started"
    assert store.active_versions() == {"parser": "1.0.0"}  # the lock waits for the outcome

    left = point("rp-1", "up-1", version="1.0.0", to="1.1.0", at=started.started_at)
    done = store.complete_operation(
        op_id="up-1",
        status=UpgradeStatus.SUCCEEDED,
        actor="runtime",
        new_active="1.1.0",
        rollback_point=left,
        point_state=b"\x00state\xff",
        metrics={"calls": 120, "p99_ms": 1.5},
    )

    assert done.status is UpgradeStatus.SUCCEEDED
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert done.rollback_point_id == "rp-1"
    assert store.operation("up-1") == done
    assert store.active_versions() == {"parser": "1.1.0"}
    assert store.rollback_points("parser") == [left]
    assert store.rollback_point_state("rp-1") == b"\x00state\xff"
    outcome = store.audit_records()[-1]
    assert outcome.event_type == "upgrade.succeeded"
    assert outcome.success and outcome.actor == "runtime"
    assert (outcome.version_from, outcome.version_to) == ("1.0.0", "1.1.0")
    assert outcome.details["metrics"] == {"calls": 120, "p99_ms": 1.5}
    assert outcome.details["rollback_point"] == "rp-1"
    assert done.to_dict()["status"] == "succeeded"
    assert done.to_dict()["path"] == ["1.0.0", "1.1.0"]


def test_a_failure_records_its_error_and_keeps_the_lock(store: Store) -> None:
    store.activate("parser", "1.0.0", actor="test")
    begin(store, "up-1")
    done = store.complete_operation(
        op_id="up-1",
        status=UpgradeStatus.ROLLED_BACK,
        actor="runtime",
        error_code="health-check-failed",
        error_message="parser 1.1.0: health check failed 3 times",
    )

    assert done.status is UpgradeStatus.ROLLED_BACK
    assert done.error_code == "health-check-failed"
    assert store.active_versions() == {"parser": "1.0.0"}
    assert store.rollback_points() == []
    outcome = store.audit_records()[-1]
    assert outcome.event_type == "upgrade.rolled_back"
    assert not outcome.success
    assert outcome.error_message == "parser 1.1.0: health check failed 3 times"


def test_an_unknown_or_finished_operation_cannot_be_completed(store: Store) -> None:
    with pytest.raises(StoreError, match="operation up-x is not in"):
        store.complete_operation(op_id="up-x", status=UpgradeStatus.SUCCEEDED, actor="t")
    assert store.audit_records() == []

    begin(store, "up-1")
    store.complete_operation(op_id="up-1", status=UpgradeStatus.FAILED, actor="t")
    with pytest.raises(StoreError, match=r"already finished \(failed\)"):
        store.complete_operation(op_id="up-1", status=UpgradeStatus.SUCCEEDED, actor="t")
    with pytest.raises(StoreError, match="not a final one"):
        store.complete_operation(op_id="up-1", status=UpgradeStatus.IN_PROGRESS, actor="t")


def test_an_outcome_commits_whole_or_not_at_all(store: Store) -> None:
    store.activate("parser", "1.0.0", actor="test")
    begin(store, "up-1")
    audit_before = len(store.audit_records())

    # The last step (consuming a point the store lacks) fails after the others ran.
    with pytest.raises(StoreError, match="rollback point rp-missing is not in"):
        store.complete_operation(
            op_id="up-1",
            status=UpgradeStatus.SUCCEEDED,
            actor="runtime",
            new_active="1.1.0",
            rollback_point=point("rp-1", "up-1", version="1.0.0", to="1.1.0", at=1.0),
            point_state=b"state",
            consumed_point_id="rp-missing",
        )

    entry = store.operation("up-1")
    assert entry is not None and entry.status is UpgradeStatus.IN_PROGRESS
    assert store.active_versions() == {"parser": "1.0.0"}
    assert store.rollback_point("rp-1") is None
    assert len(store.audit_records()) == audit_before
    assert store.verify_audit().ok


def test_duplicate_operation_ids_are_refused(store: Store) -> None:
    begin(store, "up-1")
    with pytest.raises(StoreError, match="already recorded"):
        begin(store, "up-1")
    with pytest.raises(StoreError, match="not one of upgrade, rollback"):
        begin(store, "up-2", kind="downgrade")
    assert [r.event_type for r in store.audit_records()] == ["upgrade.started"]


def test_a_refusal_is_a_history_row_and_an_audit_record(store: Store) -> None:
    refused = store.record_refusal(
        op_id="up-9",
        kind="upgrade",
        component="parser",
        from_version="1.0.0",
        to_version="0.9.0",
        strategy="immediate",
        actor="cli",
        error_code="downgrade-refused",
        error_message="parser 0.9.0 is older than 1.0.0; use noodle rollback",
    )

    assert refused.status is UpgradeStatus.REFUSED
    assert refused.finished_at == refused.started_at
    assert store.history() == [refused]
    record = store.audit_records()[-1]
    assert record.event_type == "upgrade.refused"
    assert not record.success
    assert record.details["error_code"] == "downgrade-refused"
    assert record.error_message == refused.error_message


def test_history_is_newest_first_filtered_and_limited(store: Store) -> None:
    for n in range(4):
        begin(store, f"up-{n}")
    store.record_refusal(
        op_id="lx-1",
        kind="upgrade",
        component="lexer",
        from_version="1",
        to_version="2",
        strategy="immediate",
        actor="cli",
        error_code="x",
        error_message="refused",
    )

    assert [e.id for e in store.history()] == ["lx-1", "up-3", "up-2", "up-1", "up-0"]
    assert [e.id for e in store.history("parser", limit=2)] == ["up-3", "up-2"]
    assert store.history("nothing") == []
    assert store.operation("up-404") is None


# -- recovery --------------------------------------------------------------------------


def test_an_operation_left_in_progress_is_recovered_as_interrupted(db_path: Path) -> None:
    store = Store.open(db_path)
    store.activate("parser", "1.0.0", actor="test")
    begin(store, "up-1")
    store.close()  # the process "stops" before the outcome

    with Store.open(db_path) as reopened:
        recovered = reopened.recover_interrupted()
        assert [e.id for e in recovered] == ["up-1"]
        entry = reopened.operation("up-1")
        assert entry == recovered[0]
        assert entry.status is UpgradeStatus.INTERRUPTED
        assert entry.finished_at is not None
        assert entry.error_message == (
            "the process stopped while this upgrade ran; parser stays at 1.0.0"
        )
        assert reopened.active_versions() == {"parser": "1.0.0"}
        record = reopened.audit_records()[-1]
        assert (record.event_type, record.actor, record.success) == (
            "upgrade.interrupted",
            "recovery",
            False,
        )
        assert reopened.recover_interrupted() == []
        assert reopened.verify_audit().ok


def test_a_killed_process_recovers_to_its_locked_version(db_path: Path) -> None:
    # A real crash: the child exits hard in the middle, with no close and no cleanup.
    Store.open(db_path).close()
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from noodle_upgrade.store import Store
        store = Store.open(Path({str(db_path)!r}))
        store.activate("parser", "1.0.0", actor="app")
        store.begin_operation(op_id="up-1", kind="upgrade", component="parser",
            from_version="1.0.0", to_version="2.0.0", strategy="immediate",
            actor="app", path=["1.0.0", "1.1.0", "2.0.0"])
        os._exit(9)
        """
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert child.returncode == 9, child.stderr.decode()

    with Store.open(db_path) as store:
        (entry,) = store.recover_interrupted()
        assert entry.status is UpgradeStatus.INTERRUPTED
        assert entry.path == ["1.0.0", "1.1.0", "2.0.0"]
        assert store.active_versions() == {"parser": "1.0.0"}
        assert store.verify_audit().ok


def test_an_operation_of_another_live_process_is_recovered_only_once_it_dies(
    db_path: Path,
) -> None:
    Store.open(db_path).close()
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from noodle_upgrade.store import Store
        store = Store.open(Path({str(db_path)!r}))
        store.begin_operation(op_id="up-9", kind="upgrade", component="parser",
            from_version="1.0.0", to_version="1.1.0", strategy="immediate",
            actor="app", path=["1.1.0"])
        print("begun", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "begun"
        with Store.open(db_path) as store:
            assert store.recover_interrupted() == []
            assert store.operation("up-9").status is UpgradeStatus.IN_PROGRESS
    finally:
        child.kill()
        child.wait(timeout=30)
    with Store.open(db_path) as store:
        assert [e.id for e in store.recover_interrupted()] == ["up-9"]


# -- rollback points ---------------------------------------------------------------------


def test_rollback_points_live_consumed_and_released(store: Store) -> None:
    store.activate("parser", "1.0.0", actor="test")
    begin(store, "up-1")
    p1 = point("rp-1", "up-1", version="1.0.0", to="1.1.0", at=100.0)
    store.complete_operation(
        op_id="up-1",
        status=UpgradeStatus.SUCCEEDED,
        actor="rt",
        new_active="1.1.0",
        rollback_point=p1,
        point_state=b"s1",
    )
    begin(store, "up-2", to="1.2.0")
    p2 = point("rp-2", "up-2", version="1.1.0", to="1.2.0", at=200.0)
    store.complete_operation(
        op_id="up-2",
        status=UpgradeStatus.SUCCEEDED,
        actor="rt",
        new_active="1.2.0",
        rollback_point=p2,
    )
    assert store.rollback_points() == [p2, p1]
    assert store.rollback_points("lexer") == []
    assert store.rollback_point_state("rp-2") is None  # saved without state

    begin(store, "rb-1", kind="rollback", to="1.1.0")
    rolled = store.complete_operation(
        op_id="rb-1",
        status=UpgradeStatus.SUCCEEDED,
        actor="cli",
        new_active="1.1.0",
        consumed_point_id="rp-2",
    )
    assert rolled.rollback_point_id == "rp-2"
    assert store.active_versions() == {"parser": "1.1.0"}
    assert store.rollback_points("parser") == [p1]
    assert store.rollback_point("rp-2") == p2  # consumed, still readable
    assert store.audit_records()[-1].event_type == "rollback.succeeded"

    assert store.release_rollback_points(["rp-1", "rp-1", "rp-404"], actor="retention") == ["rp-1"]
    assert store.rollback_points() == []
    assert store.rollback_point_state("rp-1") is None  # released points drop their state
    record = store.audit_records()[-1]
    assert (record.event_type, record.component) == ("rollback_point.released", "parser")
    assert record.details == {"points": ["rp-1"]}

    audit_count = len(store.audit_records())
    assert store.release_rollback_points(["rp-1"], actor="retention") == []
    assert len(store.audit_records()) == audit_count  # nothing changed, nothing audited


def test_a_rollback_releases_the_points_after_the_one_it_used_in_its_commit(
    store: Store,
) -> None:
    store.activate("parser", "1.0.0", actor="test")
    for number, (start, end) in enumerate((("1.0.0", "1.1.0"), ("1.1.0", "1.2.0")), start=1):
        begin(store, f"up-{number}", to=end)
        store.complete_operation(
            op_id=f"up-{number}",
            status=UpgradeStatus.SUCCEEDED,
            actor="rt",
            new_active=end,
            rollback_point=point(
                f"rp-{number}", f"up-{number}", version=start, to=end, at=100.0 * number
            ),
        )
    begin(store, "rb-1", kind="rollback", to="1.0.0")

    store.complete_operation(
        op_id="rb-1",
        status=UpgradeStatus.SUCCEEDED,
        actor="cli",
        new_active="1.0.0",
        consumed_point_id="rp-1",
    )

    # rp-2 (1.1.0 -> 1.2.0) would lead forward now: gone in the same commit, so a crash
    # after the rollback can never leave it to be picked as "the last point".
    assert store.rollback_points("parser") == []
    outcome = store.audit_records()[-1]
    assert outcome.event_type == "rollback.succeeded"
    assert outcome.details["released_points"] == ["rp-2"]


def test_point_state_needs_a_point(store: Store) -> None:
    begin(store, "up-1")
    with pytest.raises(StoreError, match="point_state needs a rollback_point"):
        store.complete_operation(
            op_id="up-1", status=UpgradeStatus.SUCCEEDED, actor="rt", point_state=b"x"
        )


# -- events ------------------------------------------------------------------------------


def test_events_come_back_in_order_and_page_by_id(store: Store) -> None:
    ids = [store.append_event("canary.step", "parser", {"percent": n * 5}) for n in range(1, 6)]
    store.append_event("watcher.changed", None, {"path": Path("/x/component.toml")})

    assert ids == sorted(ids) and len(set(ids)) == 5
    events = store.events()
    assert [e.data.get("percent") for e in events] == [5, 10, 15, 20, 25, None]
    assert events[-1].component is None
    assert events[-1].data == {"path": "/x/component.toml"}  # stored as JSON: a string
    assert [e.id for e in store.events(after_id=ids[2])] == [ids[3], ids[4], events[-1].id]
    assert [e.id for e in store.events(limit=2)] == ids[:2]
    assert store.audit_records() == []  # events narrate; they are not audited


def test_events_from_two_stores_share_one_sequence(db_path: Path) -> None:
    with Store.open(db_path) as first, Store.open(db_path) as second:
        first.append_event("a", "x", {})
        second.append_event("b", "x", {})
        first.append_event("c", "x", {})
        assert [e.kind for e in second.events()] == ["a", "b", "c"]


def test_recovery_spares_an_operation_that_a_live_process_still_runs(db_path: Path) -> None:
    # A CLI or a second worker opening the store must not declare the runtime's
    # running upgrade interrupted: its outcome is still to come.
    with Store.open(db_path) as runtime, Store.open(db_path) as cli:
        runtime.activate("parser", "1.0.0", actor="rt")
        begin(runtime, "up-1")
        assert cli.recover_interrupted() == []
        done = runtime.complete_operation(
            op_id="up-1", status=UpgradeStatus.SUCCEEDED, actor="rt", new_active="1.1.0"
        )
        assert done.status is UpgradeStatus.SUCCEEDED and done.error_message is None
        assert cli.active_versions() == {"parser": "1.1.0"}
        events = [r.event_type for r in cli.audit_records()]
        assert events[-2:] == ["upgrade.started", "upgrade.succeeded"]


def test_details_that_json_cannot_hold_are_stored_as_text(store: Store) -> None:
    begin(store, "up-1")
    store.complete_operation(
        op_id="up-1",
        status=UpgradeStatus.FAILED,
        actor="rt",
        metrics={"where": Path("/srv/app"), "ratio": 1.5},
    )
    metrics = store.audit_records()[-1].details["metrics"]
    assert metrics == {"where": "/srv/app", "ratio": 1.5}
    assert store.verify_audit().ok
