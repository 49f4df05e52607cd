"""The rows of ``noodle ale report`` (DESIGN §5): one per candidate, and one per recorded
signature that has none yet (status ``observed``). Pure: it reads what the store returned.

A candidate's row repeats its signature's usage (``calls``, ``call_sites``) so each row
answers on its own "where is this called from, and is it faster there". An observed row
has no candidate to approve: its ``id`` names the signature (``sig-<n>``) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from noodle_upgrade.ale.model import Status
from noodle_upgrade.store.ale import CandidateRecord, SignatureRecord

Row = dict[str, Any]


def report_rows(
    signatures: Sequence[SignatureRecord], candidates: Sequence[CandidateRecord]
) -> list[Row]:
    """Signatures in the store's order (most called first per function), each followed
    by its candidates in theirs (best speedup first)."""
    by_signature: dict[int, list[CandidateRecord]] = {}
    for record in candidates:
        by_signature.setdefault(record.signature_id, []).append(record)
    rows: list[Row] = []
    for signature in signatures:
        found = by_signature.get(signature.id)
        if found:
            rows.extend(_candidate_row(signature, record) for record in found)
        else:
            rows.append(_observed_row(signature))
    return rows


def _usage(signature: SignatureRecord) -> Row:
    return {
        "function": signature.function,
        "signature": signature.signature,
        "calls": signature.calls,
        "call_sites": list(signature.sites),
        "mean_ns": signature.mean_ns,
    }


def _observed_row(signature: SignatureRecord) -> Row:
    return {
        "id": f"sig-{signature.id}",
        **_usage(signature),
        "candidate": None,
        "speedup": None,
        "mismatches": None,
        "status": str(Status.OBSERVED),
        "reason": None,
    }


def _candidate_row(signature: SignatureRecord, record: CandidateRecord) -> Row:
    return {
        "id": record.id,
        **_usage(signature),
        "candidate": record.candidate.family,
        "speedup": record.speedup,
        "mismatches": record.mismatches,
        "status": str(record.status),
        "reason": record.reason,
    }
