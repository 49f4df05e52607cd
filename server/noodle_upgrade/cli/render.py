"""How command results look in a terminal (rich) and to scripts (``--json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from noodle_upgrade.engine.planner import UpgradePlan
from noodle_upgrade.models import UpgradeResult
from noodle_upgrade.store import AuditVerification, HistoryEntry

console = Console(highlight=False, soft_wrap=True)


def warnings(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stderr.write(f"noodle: warning: {line}\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%m-%d %H:%M:%S", time.localtime(timestamp))


def status(data: dict[str, Any]) -> None:
    live = "live runtime" if data["live"] else "store (no live runtime)"
    console.print(f"[bold]{data['project']}[/] — {data['environment']} — {live}")
    table = Table("component", "version", "state", "rollback points")
    for name, info in data["components"].items():
        table.add_row(
            name, info["version"] or "-", info["state"], str(len(info["rollback_points"]))
        )
    console.print(table)


def plan(value: UpgradePlan, dependents: Sequence[str]) -> None:
    steps = " → ".join([str(value.from_version), *(str(s.version) for s in value.steps)])
    console.print(f"[bold]{value.component}[/]: {steps}  ({value.bump} bump)")
    if dependents:
        console.print(f"dependents re-checked: {', '.join(dependents)}")
    for warning in value.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def plan_dict(value: UpgradePlan, dependents: Sequence[str]) -> dict[str, Any]:
    return {
        "component": value.component,
        "from_version": str(value.from_version),
        "to_version": str(value.to_version),
        "path": [str(step.version) for step in value.steps],
        "bump": str(value.bump),
        "dependents": list(dependents),
        "warnings": list(value.warnings),
    }


def result(value: UpgradeResult) -> None:
    what = f"{value.component_name} {value.from_version} → {value.to_version or '?'}"
    if value.success:
        ms = value.metrics.get("total_ms", value.execution_time * 1e3)
        console.print(f"[green]✔[/] {what} ({value.strategy}, {ms:.1f} ms)")
        if value.rollback_point is not None and value.strategy != "rollback":
            console.print(f"  rollback point: {value.rollback_point.id}")
    else:
        console.print(f"[red]✘[/] {what}: {value.status} — {value.error_message}")
    for warning in value.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def history(entries: Sequence[HistoryEntry]) -> None:
    table = Table("id", "when", "change", "strategy", "status")
    for column in table.columns:
        column.no_wrap = True
    for entry in entries:
        change = f"{entry.component} {entry.from_version or '-'} → {entry.to_version or '?'}"
        status = f"[red]{entry.status}[/]" if entry.error_message else str(entry.status)
        table.add_row(entry.id, _when(entry.started_at), change, entry.strategy or "-", status)
    console.print(table)
    for entry in entries:
        if entry.error_message:
            console.print(f"[bold]{entry.id}[/]: {entry.error_message}")


def verification(value: AuditVerification) -> None:
    if value.ok:
        console.print(f"[green]✔[/] audit chain intact: {value.records} records")
    else:
        console.print(
            f"[red]✘[/] audit chain broken at record {value.first_bad_seq}: {value.reason}"
        )
