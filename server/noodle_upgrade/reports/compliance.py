"""The compliance report (seed 003 §9.4): update history, failed updates, rollbacks and
their causes, approvals, per-component figures, and whether the audit chain holds.

Pure: ``build_report`` takes what ``Store.records_between`` read and ``to_json`` /
``to_markdown`` turn the report into text. Nothing here touches a file or the store, so
the report says exactly what the records say, and tests can check it record by record.

Times are shown as ISO 8601 in local time with its UTC offset: unambiguous for a reader
elsewhere, and the same clock ``--since``/``--until`` are read in when they have none.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from noodle_upgrade.models import UpgradeStatus
from noodle_upgrade.store.records import (
    AuditRecord,
    AuditVerification,
    HistoryEntry,
    PeriodRecords,
)

FORMATS = ("markdown", "json")
PROPOSAL_EVENTS = "proposal."  # proposal.created, .approved, .rejected, .applied, …
# Upgrades that did not happen, listed under "failed updates". A rolled-back upgrade is
# listed under rollbacks instead: it did happen, and was undone.
FAILED_UPDATES = (UpgradeStatus.FAILED, UpgradeStatus.REFUSED, UpgradeStatus.INTERRUPTED)
# What counts against an upgrade in the failure rate: every finished one but a success.
UNSUCCESSFUL = (*FAILED_UPDATES, UpgradeStatus.ROLLED_BACK)
# Rollback operations the runtime starts by itself, by their actor; any other actor is a
# person (``cli``, ``api``, or whoever an application names).
RUNTIME_ROLLBACKS = {"blue_green": "blue-green switch-back", "trigger": "trigger"}
_EXAMPLES = "2024-05-01, 2024-05-01T14:30 or 2024-05-01T14:30:00+02:00"


def parse_bound(text: str, *, end: bool) -> float:
    """``--since`` (``end=False``) or ``--until`` (``end=True``) as a Unix time.

    An ISO 8601 date or datetime, in local time unless it carries an offset. A date alone
    as the end bound means the end of that day, so ``--until 2024-05-31`` includes May 31.
    Raises ValueError with a message that says what is allowed.
    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        midnight = datetime.combine(day + timedelta(days=1 if end else 0), datetime.min.time())
        return midnight.timestamp()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or datetime (for example {_EXAMPLES})"
        ) from None


def iso(timestamp: float) -> str:
    """A Unix time as the report shows it: local time with its offset, to the second."""
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso(timestamp)


def rollback_cause(entry: HistoryEntry) -> str:
    """Why an operation rolled a component back.

    A rolled-back upgrade undid itself: its cause is its error code (``analysis-failed``,
    ``health-check-failed``, …). A rollback operation's cause is who started it: the
    runtime (``RUNTIME_ROLLBACKS``) or a person, ``manual (cli)``.
    """
    if entry.kind == "upgrade":
        return entry.error_code or "unknown"
    return RUNTIME_ROLLBACKS.get(entry.actor, f"manual ({entry.actor})")


def _rolled_back(entry: HistoryEntry) -> bool:
    """Whether ``entry`` took a component back: an upgrade that undid itself, or a
    rollback operation that succeeded (a refused or failed one changed nothing)."""
    if entry.kind == "upgrade":
        return entry.status is UpgradeStatus.ROLLED_BACK
    return entry.status is UpgradeStatus.SUCCEEDED


@dataclass(frozen=True)
class RollbackCause:
    cause: str
    automatic: bool  # started by the runtime, not by a person
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "automatic": self.automatic, "count": self.count}


@dataclass(frozen=True)
class ComponentSummary:
    component: str
    upgrades: int  # started, whatever became of them
    succeeded: int
    unsuccessful: int  # failed, refused, interrupted or rolled back
    rollbacks: int  # times it was taken back (see ``_rolled_back``)

    @property
    def failure_rate(self) -> float | None:
        """Unsuccessful upgrades among the finished ones; None when none finished."""
        finished = self.succeeded + self.unsuccessful
        return self.unsuccessful / finished if finished else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.failure_rate
        return {
            "component": self.component,
            "upgrades": self.upgrades,
            "succeeded": self.succeeded,
            "unsuccessful": self.unsuccessful,
            "failure_rate": None if rate is None else round(rate, 4),
            "rollbacks": self.rollbacks,
        }


@dataclass(frozen=True)
class ComplianceReport:
    """The records of one period, and the views a compliance reader asks for."""

    project: str
    environment: str
    generated_at: float
    since: float | None  # the bounds asked for; None: unbounded
    until: float | None
    operations: tuple[HistoryEntry, ...]  # started in the period, oldest first
    proposals: tuple[AuditRecord, ...]  # proposal.* audit records of the period
    audit_records: int  # audit records written in the period
    first_record: float | None  # the earliest and latest time any record of it carries
    last_record: float | None
    verification: AuditVerification  # of the whole chain

    @property
    def empty(self) -> bool:
        return not self.operations and not self.proposals

    @property
    def upgrades(self) -> list[HistoryEntry]:
        return [entry for entry in self.operations if entry.kind == "upgrade"]

    @property
    def rollback_operations(self) -> list[HistoryEntry]:
        return [entry for entry in self.operations if entry.kind == "rollback"]

    @property
    def failed_updates(self) -> list[HistoryEntry]:
        return [entry for entry in self.upgrades if entry.status in FAILED_UPDATES]

    @property
    def automatic_rollbacks(self) -> list[HistoryEntry]:
        """Upgrades that their own checks undid (canary analysis, health check, …)."""
        return [entry for entry in self.upgrades if entry.status is UpgradeStatus.ROLLED_BACK]

    def totals(self) -> dict[str, dict[str, int]]:
        """Operations per kind and status; every status is present, zeros included."""
        counts = Counter((entry.kind, entry.status) for entry in self.operations)
        return {
            kind: {status.value: counts[kind, status] for status in UpgradeStatus}
            for kind in ("upgrade", "rollback")
        }

    def rollback_causes(self) -> list[RollbackCause]:
        """Rollbacks that took effect, counted per cause, the most frequent first."""
        counts = Counter(
            (rollback_cause(e), not _is_manual(e)) for e in self.operations if _rolled_back(e)
        )
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [RollbackCause(cause, automatic, n) for (cause, automatic), n in ranked]

    def components(self) -> list[ComponentSummary]:
        names = sorted({entry.component for entry in self.operations})
        return [_summary(name, self.operations) for name in names]

    def decisions(self) -> dict[str, int]:
        """Proposal records per event (``approved``, ``rejected``, …)."""
        return dict(Counter(_decision(record) for record in self.proposals))

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "compliance",
            "project": self.project,
            "environment": self.environment,
            "generated_at": iso(self.generated_at),
            "period": {
                "since": _iso_or_none(self.since),
                "until": _iso_or_none(self.until),
                "first_record": _iso_or_none(self.first_record),
                "last_record": _iso_or_none(self.last_record),
            },
            "audit": {**self.verification.to_dict(), "records_in_period": self.audit_records},
            "totals": self.totals(),
            "update_history": [_operation(entry) for entry in self.upgrades],
            "failed_updates": [_operation(entry) for entry in self.failed_updates],
            "rollbacks": {
                "causes": [cause.to_dict() for cause in self.rollback_causes()],
                "automatic": [_rollback(entry) for entry in self.automatic_rollbacks],
                "operations": [_rollback(entry) for entry in self.rollback_operations],
            },
            "approvals": {
                "counts": self.decisions(),
                "records": [_proposal(record) for record in self.proposals],
            },
            "components": [summary.to_dict() for summary in self.components()],
        }


def build_report(
    records: PeriodRecords,
    *,
    project: str,
    environment: str,
    since: float | None,
    until: float | None,
    generated_at: float,
) -> ComplianceReport:
    proposals = tuple(r for r in records.audit if r.event_type.startswith(PROPOSAL_EVENTS))
    times = [record.timestamp for record in records.audit]
    for entry in records.operations:
        times.append(entry.started_at)
        if entry.finished_at is not None:
            times.append(entry.finished_at)
    return ComplianceReport(
        project=project,
        environment=environment,
        generated_at=generated_at,
        since=since,
        until=until,
        operations=tuple(records.operations),
        proposals=proposals,
        audit_records=len(records.audit),
        first_record=min(times, default=None),
        last_record=max(times, default=None),
        verification=records.verification,
    )


def to_json(report: ComplianceReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


# -- pieces of the report -------------------------------------------------------------


def _is_manual(entry: HistoryEntry) -> bool:
    return entry.kind == "rollback" and entry.actor not in RUNTIME_ROLLBACKS


def _summary(name: str, operations: Iterable[HistoryEntry]) -> ComponentSummary:
    mine = [entry for entry in operations if entry.component == name]
    upgrades = [entry for entry in mine if entry.kind == "upgrade"]
    return ComponentSummary(
        component=name,
        upgrades=len(upgrades),
        succeeded=sum(entry.status is UpgradeStatus.SUCCEEDED for entry in upgrades),
        unsuccessful=sum(entry.status in UNSUCCESSFUL for entry in upgrades),
        rollbacks=sum(_rolled_back(entry) for entry in mine),
    )


def _operation(entry: HistoryEntry) -> dict[str, Any]:
    duration = entry.duration
    return {
        "id": entry.id,
        "started_at": iso(entry.started_at),
        "finished_at": _iso_or_none(entry.finished_at),
        "duration_s": None if duration is None else round(duration, 6),
        "component": entry.component,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "path": list(entry.path),
        "strategy": entry.strategy,
        "actor": entry.actor,
        "status": entry.status.value,
        "error_code": entry.error_code,
        "error_message": entry.error_message,
    }


def _rollback(entry: HistoryEntry) -> dict[str, Any]:
    return {**_operation(entry), "cause": rollback_cause(entry), "reason": entry.reason}


def _decision(record: AuditRecord) -> str:
    return record.event_type.removeprefix(PROPOSAL_EVENTS)


def _proposal(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "time": iso(record.timestamp),
        "event": record.event_type,
        "decision": _decision(record),
        "actor": record.actor,
        "component": record.component,
        "version_from": record.version_from,
        "version_to": record.version_to,
        "success": record.success,
        "error_message": record.error_message,
        "details": dict(record.details),
    }


# -- Markdown ---------------------------------------------------------------------------

_NONE = "_None._"


def to_markdown(report: ComplianceReport) -> str:
    sections = [
        _md_header(report),
        _md_summary(report),
        _md_update_history(report),
        _md_failed_updates(report),
        _md_rollbacks(report),
        _md_approvals(report),
        _md_components(report),
        _md_audit(report),
    ]
    return "\n\n".join(sections) + "\n"


def _cell(value: object) -> str:
    """A table cell: pipes escaped and line breaks flattened, so a message cannot break
    the table it sits in."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _table_or_none(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    return _table(headers, rows) if rows else _NONE


def _change(entry: HistoryEntry) -> str:
    return f"{entry.from_version or '-'} → {entry.to_version or '?'}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _verdict(verification: AuditVerification) -> str:
    if verification.ok:
        return f"✔ intact ({verification.records} records)"
    return (
        f"**✘ BROKEN: {verification.reason}.** "
        "Records may have been edited or removed; this report cannot be trusted."
    )


def _md_period(report: ComplianceReport) -> str:
    asked = f"{_iso_or_none(report.since) or 'the start'} → {_iso_or_none(report.until) or 'now'}"
    if report.first_record is None or report.last_record is None:
        found = "no records"
    else:
        found = f"records from {iso(report.first_record)} to {iso(report.last_record)}"
    return f"{asked} ({found})" if _bounded(report) else found


def _bounded(report: ComplianceReport) -> bool:
    return report.since is not None or report.until is not None


def _md_header(report: ComplianceReport) -> str:
    lines = [
        f"# Compliance report: {PurePath(report.project).name}",
        "",
        f"- **Project:** `{report.project}`",
        f"- **Environment:** {report.environment}",
        f"- **Period:** {_md_period(report)}",
        f"- **Generated:** {iso(report.generated_at)}",
        f"- **Audit chain:** {_verdict(report.verification)}",
    ]
    if report.empty:
        where = "in this period" if _bounded(report) else "yet"
        lines += ["", f"Nothing is recorded {where}: no upgrades, rollbacks or approvals."]
    return "\n".join(lines)


def _md_summary(report: ComplianceReport) -> str:
    totals = report.totals()
    rows = [
        (status.value, totals["upgrade"][status.value], totals["rollback"][status.value])
        for status in UpgradeStatus
    ]
    rows.append(("**total**", len(report.upgrades), len(report.rollback_operations)))
    return "## Summary\n\n" + _table(("status", "upgrades", "rollback operations"), rows)


def _md_update_history(report: ComplianceReport) -> str:
    headers = ("started", "component", "change", "strategy", "actor", "status", "duration")
    rows = [
        (
            iso(e.started_at),
            e.component,
            _change(e),
            e.strategy,
            e.actor,
            e.status.value,
            _duration(e.duration),
        )
        for e in report.upgrades
    ]
    return "## Update history\n\n" + _table_or_none(headers, rows)


def _md_failed_updates(report: ComplianceReport) -> str:
    headers = ("started", "component", "change", "actor", "status", "error code", "error")
    rows = [
        (
            iso(e.started_at),
            e.component,
            _change(e),
            e.actor,
            e.status.value,
            e.error_code,
            e.error_message,
        )
        for e in report.failed_updates
    ]
    note = "Upgrades that failed, were refused or were interrupted; nothing changed for them."
    return f"## Failed updates\n\n{note}\n\n" + _table_or_none(headers, rows)


def _md_rollbacks(report: ComplianceReport) -> str:
    causes = [(c.cause, "yes" if c.automatic else "no", c.count) for c in report.rollback_causes()]
    automatic = [
        (iso(e.started_at), e.component, _change(e), e.strategy, e.error_code, e.error_message)
        for e in report.automatic_rollbacks
    ]
    operations = [
        (
            iso(e.started_at),
            e.component,
            _change(e),
            e.actor,
            rollback_cause(e),
            e.reason,
            e.status.value,
            e.error_message,
        )
        for e in report.rollback_operations
    ]
    return "\n\n".join(
        [
            "## Rollbacks and their causes",
            "### Causes",
            _table_or_none(("cause", "automatic", "rollbacks"), causes),
            "### Automatic rollbacks (upgrades undone by their own checks)",
            _table_or_none(
                ("started", "component", "change", "strategy", "cause", "error"), automatic
            ),
            "### Rollback operations",
            _table_or_none(
                ("started", "component", "change", "actor", "cause", "why", "status", "error"),
                operations,
            ),
        ]
    )


def _md_approvals(report: ComplianceReport) -> str:
    headers = ("time", "decision", "proposal", "component", "change", "actor", "reason")
    rows = [
        (
            iso(r.timestamp),
            _decision(r),
            r.details.get("proposal"),
            r.component,
            f"{r.version_from or '-'} → {r.version_to or '?'}",
            r.actor,
            r.details.get("reason") or r.error_message,
        )
        for r in report.proposals
    ]
    return "## Approvals and rejections\n\n" + _table_or_none(headers, rows)


def _md_components(report: ComplianceReport) -> str:
    headers = ("component", "upgrades", "succeeded", "unsuccessful", "failure rate", "rollbacks")
    rows = [
        (
            s.component,
            s.upgrades,
            s.succeeded,
            s.unsuccessful,
            "-" if s.failure_rate is None else f"{s.failure_rate:.0%}",
            s.rollbacks,
        )
        for s in report.components()
    ]
    return "## Per component\n\n" + _table_or_none(headers, rows)


def _md_audit(report: ComplianceReport) -> str:
    verification = report.verification
    lines = [
        "## Audit chain verification",
        "",
        _verdict(verification),
        "",
        f"The whole chain was checked ({verification.records} records); "
        f"{report.audit_records} of them fall in this report's period.",
    ]
    return "\n".join(lines)
