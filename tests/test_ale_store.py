"""The ALE tables through ``AleStore``: usage that adds up, candidates whose serving is audited."""

from __future__ import annotations

import pickle

import pytest

from helpers.store import raw
from noodle_upgrade.ale.model import Candidate, Mismatch, Status, Verdict
from noodle_upgrade.errors import NoodleError, StoreError
from noodle_upgrade.store import Store
from noodle_upgrade.store.ale import ALL_CALLS, AleStore, Usage, load_input

KEY = "list[float](3), list[float](3)"


def candidate(candidate_id: str = "c1", key: str = KEY) -> Candidate:
    return Candidate(
        id=candidate_id,
        function="numpy.dot",
        signature=key,
        family="py_dot",
        source="def candidate(a, b):\n    return 0.0\n",
        tolerance=(1e-12, 0.0),
    )


def verdict(passed: bool = True) -> Verdict:
    mismatches = () if passed else (Mismatch("([0.0], [-0.0])", "0.0", "-0.0", "value"),)
    return Verdict(
        candidate_id="c1",
        passed=passed,
        speedup=2.5 if passed else None,
        inputs=40,
        mismatches=mismatches,
        reason="" if passed else "1 mismatch",
        measurements={"baseline_ns": 1300, "candidate_ns": 520},
    )


def usage(calls: int, site: str, *, at: float, inputs: dict[int, bytes] | None = None) -> Usage:
    return Usage(
        function="numpy.dot",
        signature=KEY,
        calls=calls,
        sampled=1,
        total_ns=1000,
        first_seen=at,
        last_seen=at,
        sites={site: calls},
        inputs=inputs or {},
    )


def test_usage_adds_up_across_flushes_and_keeps_totals_apart(store: Store) -> None:
    ale_store = AleStore(store)
    first = pickle.dumps(([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    second = pickle.dumps(([7.0, 8.0, 9.0], [4.0, 5.0, 6.0]))
    ale_store.record_usage([usage(64, "app.py:3", at=20.0, inputs={0: first})], {"numpy.dot": 70})
    ale_store.record_usage(
        [usage(10, "app.py:3", at=10.0), usage(5, "lib.py:9", at=30.0, inputs={0: second})],
        {"numpy.dot": 30},
    )
    (record,) = ale_store.signatures()
    assert (record.calls, record.sampled, record.total_ns) == (79, 3, 3000)
    assert (record.first_seen, record.last_seen) == (10.0, 30.0)
    assert record.sites == {"app.py:3": 74, "lib.py:9": 5}
    assert record.mean_ns == 1000
    assert ale_store.function_calls() == {"numpy.dot": 100}
    assert [load_input(blob) for blob in ale_store.input_blobs("numpy.dot", KEY)] == [
        ([7.0, 8.0, 9.0], [4.0, 5.0, 6.0])
    ]
    assert ALL_CALLS not in {r.signature for r in ale_store.signatures("numpy.dot")}
    assert ale_store.sampled_counts(["numpy.dot"])[("numpy.dot", KEY)] == 3


def test_a_candidate_reads_back_with_its_verdict(store: Store) -> None:
    ale_store = AleStore(store)
    stored = ale_store.insert_candidate(candidate(), status=Status.REJECTED, verdict=verdict(False))
    assert stored == ale_store.candidate("c1")
    assert stored.candidate == candidate()
    assert (stored.status, stored.speedup, stored.mismatches) == (Status.REJECTED, None, 1)
    assert stored.verdict == verdict(False) and stored.reason == "1 mismatch"
    assert [s.signature for s in ale_store.signatures()] == [KEY]  # its signature exists


def test_storing_a_candidate_twice_is_refused(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.VALIDATED, verdict=verdict())
    with pytest.raises(NoodleError) as refused:
        ale_store.insert_candidate(candidate(), status=Status.REJECTED)
    assert refused.value.code == "duplicate-candidate"
    assert ale_store.candidate("c1").status is Status.VALIDATED


@pytest.mark.parametrize("status", [Status.CANARY, Status.PROMOTED, Status.OBSERVED, "fast"])
def test_a_candidate_cannot_be_stored_serving(store: Store, status: Status) -> None:
    ale_store = AleStore(store)
    with pytest.raises(NoodleError) as refused:
        ale_store.insert_candidate(candidate(), status=status)
    assert refused.value.code == "invalid-status"
    assert ale_store.candidates() == []


def test_serving_is_audited_in_the_same_transaction(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.VALIDATED, verdict=verdict())
    before = len(store.audit_records())
    promoted = ale_store.set_status("c1", Status.PROMOTED, actor="alice", reason="approved")
    assert promoted.status is Status.PROMOTED and promoted.reason == "approved"
    assert [r.id for r in ale_store.live_routes(["numpy.dot"])] == ["c1"]
    assert ale_store.live_routes(["numpy.matmul"]) == []
    record = store.audit_records()[-1]
    assert len(store.audit_records()) == before + 1
    assert (record.event_type, record.actor) == ("ale.promoted", "alice")
    assert record.details == {
        "candidate": "c1",
        "function": "numpy.dot",
        "signature": KEY,
        "from": "validated",
        "reason": "approved",
    }
    assert store.verify_audit().ok
    ale_store.set_status("c1", Status.PROMOTED, actor="alice")  # already there: no record
    assert len(store.audit_records()) == before + 1


def test_a_rejected_candidate_never_serves(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.REJECTED, verdict=verdict(False))
    with pytest.raises(NoodleError) as refused:
        ale_store.set_status("c1", Status.CANARY, actor="alice")
    assert refused.value.code == "ale-candidate-rejected"
    assert "1 mismatch" in refused.value.message
    assert ale_store.live_routes() == []


def test_a_move_from_an_unexpected_status_is_refused(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.VALIDATED, verdict=verdict())
    ale_store.set_status("c1", Status.DEMOTED, actor="promotion", reason="3 mismatches")
    audited = len(store.audit_records())
    with pytest.raises(NoodleError) as refused:
        ale_store.set_status("c1", Status.PROMOTED, actor="promotion", expect=[Status.CANARY])
    assert refused.value.code == "ale-candidate-moved"
    assert ale_store.candidate("c1").status is Status.DEMOTED
    assert len(store.audit_records()) == audited


def test_a_new_verdict_replaces_the_old_unless_the_candidate_serves(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.REJECTED, verdict=verdict(False))
    again = ale_store.update_verdict("c1", verdict(), status=Status.VALIDATED)
    assert (again.status, again.speedup, again.mismatches, again.reason) == (
        Status.VALIDATED,
        2.5,
        0,
        None,
    )
    ale_store.set_status("c1", Status.CANARY, actor="alice")
    with pytest.raises(NoodleError) as refused:
        ale_store.update_verdict("c1", verdict(False), status=Status.REJECTED)
    assert refused.value.code == "ale-candidate-serving"
    assert ale_store.candidate("c1").status is Status.CANARY


def test_an_unknown_candidate_is_named(store: Store) -> None:
    with pytest.raises(NoodleError) as refused:
        AleStore(store).set_status("nope", Status.PROMOTED, actor="alice")
    assert refused.value.code == "unknown-candidate" and "nope" in refused.value.message


def test_a_corrupt_row_is_reported_with_the_file(store: Store) -> None:
    ale_store = AleStore(store)
    ale_store.insert_candidate(candidate(), status=Status.VALIDATED, verdict=verdict())
    conn = raw(store.path)
    conn.execute("UPDATE ale_candidates SET tolerance = 'fast' WHERE id = 'c1'")
    conn.close()
    with pytest.raises(StoreError, match="ale_candidates") as refused:
        ale_store.candidates()
    assert str(store.path) in refused.value.message
