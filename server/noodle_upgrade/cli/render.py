"""How command results look in a terminal (rich) and to scripts (``--json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from noodle_upgrade.engine.planner import UpgradePlan

console = Console(highlight=False, soft_wrap=True)


def warnings(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stderr.write(f"noodle: warning: {line}\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()  # `noodle events --json | jq` must see each event as it happens


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
    pending(data["pending"])


def pending(items: Sequence[dict[str, Any]]) -> None:
    """Open proposals, as ``ProposalRecord.to_dict`` shapes them."""
    if not items:
        return
    table = Table("proposal", "change", "source", "state", "why it waits", title="pending")
    for item in items:
        change = f"{item['component']} {item['from_version']} → {item['version']}"
        if item["kind"] == "rollback":
            change += " (rollback)"
        table.add_row(item["id"], change, item["source"], item["state"], item["reason"])
    console.print(table)
    console.print("approve with `noodle approve ID`, reject with `noodle reject ID`")


def proposal(item: dict[str, Any]) -> None:
    change = f"{item['component']} {item['from_version']} → {item['version']}"
    console.print(f"{item['id']}: {change} is {item['state']} — {item['reason']}")


def plan(value: UpgradePlan, dependents: Sequence[str]) -> None:
    steps = " → ".join([str(value.from_version), *(str(s.version) for s in value.steps)])
    console.print(f"[bold]{value.component}[/]: {steps}  ({value.bump} bump)")
    if dependents:
        console.print(f"dependents re-checked: {', '.join(dependents)}")
    for warning in value.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def plan_dict(value: UpgradePlan, dependents: Sequence[str]) -> dict[str, Any]:
    return {**value.to_dict(), "dependents": list(dependents)}


def result(value: dict[str, Any]) -> None:
    """An upgrade or rollback, as ``UpgradeResult.to_dict`` shapes it."""
    what = f"{value['component']} {value['from_version']} → {value['to_version'] or '?'}"
    if value["success"]:
        ms = value["metrics"].get("total_ms", value["execution_time"] * 1e3)
        console.print(f"[green]✔[/] {what} ({value['strategy']}, {ms:.1f} ms)")
        if value["rollback_point"] and value["strategy"] != "rollback":
            console.print(f"  rollback point: {value['rollback_point']}")
    else:
        console.print(f"[red]✘[/] {what}: {value['status']} — {value['error_message']}")
    for warning in value["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")


def history(entries: Sequence[dict[str, Any]]) -> None:
    """Operations, as ``HistoryEntry.to_dict`` shapes them."""
    table = Table("id", "when", "change", "strategy", "status")
    for column in table.columns:
        column.no_wrap = True
    for entry in entries:
        versions = f"{entry['from_version'] or '-'} → {entry['to_version'] or '?'}"
        status = f"[red]{entry['status']}[/]" if entry["error_message"] else entry["status"]
        when = _when(entry["started_at"])
        row = (entry["id"], when, f"{entry['component']} {versions}", entry["strategy"] or "-")
        table.add_row(*row, status)
    console.print(table)
    for entry in entries:
        if entry["error_message"]:
            console.print(f"[bold]{entry['id']}[/]: {entry['error_message']}")


def verification(value: dict[str, Any]) -> None:
    """``AuditVerification.to_dict``."""
    if value["ok"]:
        console.print(f"[green]✔[/] audit chain intact: {value['records']} records")
    else:
        where, why = value["first_bad_seq"], value["reason"]
        console.print(f"[red]✘[/] audit chain broken at record {where}: {why}")


def event(value: dict[str, Any]) -> None:
    """One engine event, as ``noodle events`` receives it."""
    data = ", ".join(f"{key}={item}" for key, item in value["data"].items() if key != "metrics")
    component = value["component"] or "-"
    console.print(f"{_when(value['time'])} [bold]{value['kind']}[/] {component} {data}")


def api_diff(data: dict[str, Any]) -> None:
    """``noodle diff``: breaking changes, additions, and the bump they call for."""
    change = f"{data['component']} {data['from_version']} → {data['to_version']}"
    console.print(
        f"[bold]{change}[/]: {len(data['breaking'])} breaking, "
        f"{len(data['additions'])} added; declared {data['declared_bump']}, "
        f"suggested {data['suggested_bump']}"
    )
    for title, rows in (("breaking", data["breaking"]), ("added", data["additions"])):
        if rows:
            table = Table("kind", title=title)
            table.add_column("path", overflow="fold")
            table.add_column("detail")
            for row in rows:  # details quote code: list[str] is not markup
                table.add_row(row["kind"], escape(row["path"]), escape(row["detail"]))
            console.print(table)
    if data["finding"]:
        console.print(f"[red]✘[/] {escape(data['finding'])}")


def impact(data: dict[str, Any]) -> None:
    """``noodle impact``: the call sites a version breaks, and the dependents."""
    target = f"{data['component']} {data['version']}"
    sites = data["call_sites"]
    console.print(f"[bold]{target}[/]: {data['uses']} use(s) in the workspace, {len(sites)} broken")
    for site in sites:
        where = f"{site['path']}:{site['line']}:{site['column'] + 1}"
        console.print(f"{where}: {site['message']}", markup=False)
    for dependent in data["dependents"]:
        verdict = "accepts it" if dependent["accepts"] else "[red]does not accept it[/]"
        console.print(
            f"dependent {dependent['name']} {dependent['version']} requires "
            f"{data['component']} {dependent['requires']}: {verdict}"
        )
    warnings(data["problems"])
