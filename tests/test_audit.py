"""The audit hash chain: its format, linearity under concurrency, and tamper detection."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from noodle_upgrade.models import UpgradeStatus
from noodle_upgrade.store import AuditRecord, Store
from noodle_upgrade.store.audit import GENESIS_HASH, AuditHead, record_hash, verify_chain


def fill(store: Store, count: int) -> list[AuditRecord]:
    return [
        store.append_audit("config.changed", actor="test", details={"n": n, "note": "é"})
        for n in range(count)
    ]


def tamper(db_path: Path, *statements: str, params: tuple[Any, ...] = ()) -> None:
    """Edit the file behind the store's back, triggers dropped as an attacker would."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for statement in statements:
        conn.execute(statement, params if "?" in statement else ())
    conn.close()


def expect_bad(store: Store, seq: int | None, reason: str) -> None:
    result = store.verify_audit()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, seq, reason)


# -- the format ------------------------------------------------------------------------


def test_hash_is_sha256_of_canonical_json_of_every_other_field(store: Store) -> None:
    first, second = fill(store, 2)

    for record in (first, second):
        body = {k: v for k, v in record.to_dict().items() if k != "hash"}
        assert set(body) == {
            "seq",
            "record_id",
            "timestamp",
            "event_type",
            "actor",
            "component",
            "version_from",
            "version_to",
            "success",
            "error_message",
            "details",
            "previous_hash",
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        assert record.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert (first.seq, second.seq) == (1, 2)
    assert first.previous_hash == GENESIS_HASH == "0" * 64
    assert second.previous_hash == first.hash
    assert store.audit_records() == [first, second]  # read back exactly as written


def test_any_field_changes_the_hash(store: Store) -> None:
    (record,) = fill(store, 1)
    content = record.content()
    for name, value in content.items():
        changed = {**content, name: f"{value}!" if not isinstance(value, dict) else {"x": 1}}
        assert record_hash(changed) != record.hash, name


def test_verify_chain_is_pure_and_reports_the_first_bad_record() -> None:
    records: list[dict[str, Any]] = []
    previous = GENESIS_HASH
    for seq in range(1, 4):
        content = {"seq": seq, "record_id": f"r{seq}", "details": {}, "previous_hash": previous}
        previous = record_hash(content)
        records.append({**content, "hash": previous})

    assert verify_chain(records, AuditHead(3, previous)).ok
    assert verify_chain([], AuditHead(0, GENESIS_HASH)).ok
    broken = [records[0], {**records[1], "record_id": "forged"}, records[2]]
    result = verify_chain(broken, AuditHead(3, previous))
    assert (result.ok, result.records, result.first_bad_seq) == (False, 3, 2)


def test_every_state_change_appends_exactly_one_record(store: Store) -> None:
    def count() -> int:
        return len(store.audit_records())

    steps: list[Callable[[], object]] = [
        lambda: store.activate("parser", "1.0.0", actor="t"),
        lambda: store.begin_operation(
            op_id="up-1",
            kind="upgrade",
            component="parser",
            from_version="1.0.0",
            to_version="1.1.0",
            strategy="immediate",
            actor="t",
            path=["1.0.0", "1.1.0"],
        ),
        lambda: store.complete_operation(
            op_id="up-1", status=UpgradeStatus.SUCCEEDED, actor="t", new_active="1.1.0"
        ),
        lambda: store.record_refusal(
            op_id="up-2",
            kind="upgrade",
            component="parser",
            from_version="1.1.0",
            to_version="1.0.0",
            strategy="immediate",
            actor="t",
            error_code="downgrade-refused",
            error_message="no",
        ),
        lambda: store.append_audit("config.changed", actor="t"),
    ]
    for step in steps:
        before = count()
        step()
        assert count() == before + 1


def test_export_is_every_record_as_a_json_ready_dict(store: Store) -> None:
    fill(store, 3)
    exported = store.export_audit()
    assert exported == [record.to_dict() for record in store.audit_records()]
    assert json.loads(json.dumps(exported)) == exported


# -- linearity under concurrency -----------------------------------------------------------


def assert_linear(store: Store, expected: int) -> None:
    result = store.verify_audit()
    assert result.ok, result.reason
    assert result.records == expected
    records = store.audit_records()
    assert [r.seq for r in records] == list(range(1, expected + 1))


def run_threads(target: Any, count: int) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # surfaced below: a thread's failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_eight_threads_sharing_one_store_keep_the_chain_linear(store: Store) -> None:
    def work(index: int) -> None:
        for n in range(40):
            store.append_audit("t.write", actor=f"thread-{index}", details={"n": n})
            if n % 10 == 0:
                store.activate(f"c{index}", f"1.{n}", actor=f"thread-{index}")

    run_threads(work, 8)
    assert_linear(store, 8 * (40 + 4))


def test_eight_threads_with_their_own_connections_keep_the_chain_linear(db_path: Path) -> None:
    Store.open(db_path).close()

    def work(index: int) -> None:
        with Store.open(db_path) as own:
            for n in range(40):
                own.append_audit("t.write", actor=f"thread-{index}", details={"n": n})

    run_threads(work, 8)
    with Store.open(db_path) as store:
        assert_linear(store, 8 * 40)


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from noodle_upgrade.store import Store
    db, name, count, ready, go = sys.argv[1:]
    store = Store.open(Path(db))
    Path(ready).touch()
    while not Path(go).exists():  # start together, so the writes really interleave
        time.sleep(0.005)
    for n in range(int(count)):
        store.append_audit("p.write", actor=name, details={"n": n})
        time.sleep(0.0005)  # a little work between writes lets the other process in
        if n % 25 == 0:
            store.append_event("p.tick", None, {"n": n})
    store.close()
    """
)


def test_two_processes_writing_at_once_keep_the_chain_linear(db_path: Path, tmp_path: Path) -> None:
    Store.open(db_path).close()
    go = tmp_path / "go"
    count = 150
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(db_path),
                f"proc-{i}",
                str(count),
                str(tmp_path / f"ready-{i}"),
                str(go),
            ],
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "the writer processes did not start"
        assert all(child.poll() is None for child in children), "a writer process died"
        time.sleep(0.01)
    go.touch()
    for child in children:
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr.decode()

    with Store.open(db_path) as store:
        assert_linear(store, 2 * count)
        actors = [r.actor for r in store.audit_records()]
        assert actors.count("proc-0") == actors.count("proc-1") == count
        switches = sum(1 for this, after in itertools.pairwise(actors) if this != after)
        assert switches > 10, "the two writers did not interleave; the test proved nothing"
        assert len(store.events()) == 2 * (count // 25)


# -- tampering ------------------------------------------------------------------------------


def test_the_audit_table_refuses_plain_edits(store: Store, db_path: Path) -> None:
    fill(store, 2)
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.close()
    assert store.verify_audit().ok


def test_an_edited_field_is_caught(store: Store, db_path: Path) -> None:
    fill(store, 12)
    tamper(db_path, "UPDATE audit SET actor = 'mallory' WHERE seq = 7")
    expect_bad(store, 7, "record 7: hash does not match its contents")


def test_an_edited_detail_or_flag_is_caught(store: Store, db_path: Path) -> None:
    fill(store, 6)
    tamper(db_path, "UPDATE audit SET success = 0 WHERE seq = 3")
    expect_bad(store, 3, "record 3: hash does not match its contents")


def test_unparseable_details_are_reported_not_crashed_on(store: Store, db_path: Path) -> None:
    fill(store, 6)
    tamper(db_path, "UPDATE audit SET details = '{broken' WHERE seq = 4")
    expect_bad(store, 4, "record 4: hash does not match its contents")
    assert store.export_audit()[3]["details"] == "{broken"  # exported as found


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(store: Store, db_path: Path) -> None:
    records = fill(store, 12)
    forged = {**records[6].content(), "actor": "mallory"}
    tamper(
        db_path,
        "UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = 7",
        params=(record_hash(forged),),
    )
    expect_bad(store, 8, "record 8: previous_hash does not match record 7")


def test_a_removed_middle_record_is_caught(store: Store, db_path: Path) -> None:
    fill(store, 12)
    tamper(db_path, "DELETE FROM audit WHERE seq = 5")
    expect_bad(store, 5, "record 5 is missing")
    assert store.verify_audit().records == 11


def test_several_removed_records_are_named_as_a_range(store: Store, db_path: Path) -> None:
    fill(store, 12)
    tamper(db_path, "DELETE FROM audit WHERE seq BETWEEN 4 AND 6")
    expect_bad(store, 4, "records 4-6 are missing")


def test_a_removed_tail_is_caught_by_the_head(store: Store, db_path: Path) -> None:
    fill(store, 20)
    tamper(db_path, "DELETE FROM audit WHERE seq > 17")
    expect_bad(store, 18, "the last 3 records were removed (the audit head is at record 20)")


def test_a_removed_tail_stays_visible_after_more_writes(store: Store, db_path: Path) -> None:
    fill(store, 10)
    tamper(db_path, "DELETE FROM audit WHERE seq = 10")
    expect_bad(store, 10, "the last record was removed (the audit head is at record 10)")
    new = store.append_audit("after", actor="test")
    assert new.seq == 11  # continues from the head, not from the cut table
    expect_bad(store, 10, "record 10 is missing")


def test_an_emptied_table_is_caught(store: Store, db_path: Path) -> None:
    fill(store, 4)
    tamper(db_path, "DELETE FROM audit")
    expect_bad(store, 1, "the last 4 records were removed (the audit head is at record 4)")


def test_swapped_records_are_caught(store: Store, db_path: Path) -> None:
    fill(store, 12)
    tamper(
        db_path,
        "UPDATE audit SET seq = -1 WHERE seq = 5",
        "UPDATE audit SET seq = 5 WHERE seq = 6",
        "UPDATE audit SET seq = 6 WHERE seq = -1",
    )
    expect_bad(store, 5, "record 5: hash does not match its contents")


def test_a_record_appended_by_hand_is_caught(store: Store, db_path: Path) -> None:
    records = fill(store, 5)
    # A well-formed forgery: right seq, right link, right hash. Only the head knows.
    forged = {
        **records[-1].content(),
        "seq": 6,
        "record_id": "forged",
        "previous_hash": records[-1].hash,
    }
    forged_hash = record_hash(forged)
    tamper(
        db_path,
        "INSERT INTO audit (seq, record_id, timestamp, event_type, actor, component, version_from, "
        "version_to, success, error_message, details, previous_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params=(
            6,
            "forged",
            forged["timestamp"],
            forged["event_type"],
            forged["actor"],
            None,
            None,
            None,
            1,
            None,
            json.dumps(forged["details"]),
            records[-1].hash,
            forged_hash,
        ),
    )
    expect_bad(
        store, 6, "record 6 was added behind noodle-upgrade's back (the audit head is at record 5)"
    )
    # The forgery does not block later writes; the chain steps past it and stays broken.
    assert store.append_audit("after", actor="test").seq == 7
    assert not store.verify_audit().ok


def test_a_record_inserted_in_the_middle_is_caught(store: Store, db_path: Path) -> None:
    fill(store, 8)
    # Make room by shifting records 5.. up one, then slip a copy of record 4 in at 5.
    tamper(
        db_path,
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 5",
        "UPDATE audit SET seq = seq - 99 WHERE seq >= 100",
        "INSERT INTO audit SELECT 5, 'slipped', timestamp, event_type, actor, component, "
        "version_from, version_to, success, error_message, details, previous_hash, hash "
        "FROM audit WHERE seq = 4",
    )
    expect_bad(store, 5, "record 5: hash does not match its contents")


def test_a_removed_head_is_reported(store: Store, db_path: Path) -> None:
    fill(store, 3)
    tamper(db_path, "DELETE FROM audit_head")
    expect_bad(store, None, "the audit head is missing: the audit_head table was edited")
