"""The audit hash chain: canonical hashing and verification. Pure functions, no I/O.

Each record's hash covers every field but the hash itself, ``seq`` and
``previous_hash`` included, so an edit, a removal, a re-ordering or an insertion
breaks either a record's own hash or the link to the one before it. The store also
keeps the newest (seq, hash) in ``audit_head``; comparing it with the table's tail
is what reveals records removed from the end, which the chain alone cannot see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from noodle_upgrade.store.records import AuditVerification

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
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
)


@dataclass(frozen=True)
class AuditHead:
    """The newest record the store wrote, kept apart from the ``audit`` table."""

    seq: int
    hash: str


def canonical_json(value: Any) -> str:
    """One byte-exact spelling per value, so the same content always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from JSON: what is hashed must equal what is stored.

    Objects JSON cannot hold (paths, versions) become strings rather than failing the
    write, because losing an outcome record is worse than a stringified detail.
    """
    text = json.dumps(dict(value), default=str)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def record_hash(content: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the hashed fields of one record."""
    body = {name: content.get(name) for name in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def verify_chain(records: Iterable[Mapping[str, Any]], head: AuditHead | None) -> AuditVerification:
    """Walk ``records`` in seq order; report the first bad one and why.

    ``records`` are mappings of every field including ``hash`` (``AuditRecord.to_dict()``
    or a raw row). All records are counted, even after the first bad one.
    """
    count = 0
    first_bad: tuple[int | None, str] | None = None
    last = AuditHead(seq=0, hash=GENESIS_HASH)
    for record in records:
        count += 1
        if first_bad is None:
            first_bad = _check_link(record, last)
            last = AuditHead(seq=int(record["seq"]), hash=str(record["hash"]))
    if first_bad is None:
        first_bad = _check_head(last, head)
    if first_bad is None:
        return AuditVerification(ok=True, records=count)
    return AuditVerification(
        ok=False, records=count, first_bad_seq=first_bad[0], reason=first_bad[1]
    )


def _check_link(record: Mapping[str, Any], previous: AuditHead) -> tuple[int, str] | None:
    """Why ``record`` cannot follow ``previous`` in the chain, or None when it can."""
    seq = int(record["seq"])
    expected = previous.seq + 1
    if seq > expected:
        missing = (
            f"record {expected} is" if seq == expected + 1 else f"records {expected}-{seq - 1} are"
        )
        return expected, f"{missing} missing"
    if seq < expected:  # only a seq <= 0 gets here: rows come sorted and seq is unique
        return seq, f"record {seq} has an impossible sequence number"
    # The content hash first: when both fail, the record itself was edited.
    if record_hash(record) != record.get("hash"):
        return seq, f"record {seq}: hash does not match its contents"
    if record.get("previous_hash") != previous.hash:
        before = f"record {previous.seq}" if previous.seq else "the start of the chain"
        return seq, f"record {seq}: previous_hash does not match {before}"
    return None


def _check_head(last: AuditHead, head: AuditHead | None) -> tuple[int | None, str] | None:
    """Compare the table's newest record with the head the store wrote beside it."""
    if head is None:
        return None, "the audit head is missing: the audit_head table was edited"
    if head.seq > last.seq:
        removed = head.seq - last.seq
        noun = "record was" if removed == 1 else f"{removed} records were"
        return last.seq + 1, f"the last {noun} removed (the audit head is at record {head.seq})"
    if head.seq < last.seq:
        return head.seq + 1, (
            f"record {head.seq + 1} was added behind noodle-upgrade's back "
            f"(the audit head is at record {head.seq})"
        )
    if head.hash != last.hash:
        return last.seq, f"record {last.seq}: hash does not match the audit head"
    return None
