"""``noodle ale report|evolve|approve|reject``: Adaptive Library Evolution (DESIGN §5)
from the command line, on the project's state store.

They read and write the store directly, live runtime or not: SQLite in WAL mode lets
them sit beside a running application, and an application picks up a route that
``approve`` made serving when its ALE session refreshes its routes (or at its next
``ale.enable``). ``evolve`` runs candidates in the sandbox's child processes only.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from noodle_upgrade.ale.evolve import evolve as evolve_candidates
from noodle_upgrade.ale.model import Status
from noodle_upgrade.ale.report import Row, report_rows
from noodle_upgrade.cli import render
from noodle_upgrade.cli.commands import EXIT_OK, _operator
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.errors import StoreError
from noodle_upgrade.store.ale import AleStore, CandidateRecord
from noodle_upgrade.store.db import Store

progress_console = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _ale_store(args: argparse.Namespace) -> Iterator[AleStore]:
    db_path = load_project(args.project).db_path
    if not db_path.exists():
        raise StoreError(
            f"{db_path}: no state store yet; it is created when the application enables "
            "ALE (`ale.enable(project)`) or opens its Runtime (or by `noodle init`)"
        )
    store = Store.open(db_path)
    try:
        yield AleStore(store)
    finally:
        store.close()


def _rows(ale: AleStore) -> list[Row]:
    return report_rows(ale.signatures(), ale.candidates())


def report(args: argparse.Namespace) -> int:
    with _ale_store(args) as ale:
        rows = _rows(ale)
    render.print_json(rows) if args.json else _print_rows(rows)
    return EXIT_OK


def evolve(args: argparse.Namespace) -> int:
    with _ale_store(args) as ale:
        judged = evolve_candidates(ale, progress=_progress)
        ids = {record.id for record in judged}
        rows = [row for row in _rows(ale) if row["id"] in ids]
    if args.json:
        render.print_json(rows)
    elif rows:
        _print_rows(rows)
    else:
        render.console.print("no new candidates: every recorded signature was judged already")
    return EXIT_OK


def approve(args: argparse.Namespace) -> int:
    with _ale_store(args) as ale:
        record = ale.set_status(
            args.id, Status.CANARY, actor=_operator(), expect=(Status.VALIDATED,)
        )
    _print_moved(record, args.json)
    return EXIT_OK


def reject(args: argparse.Namespace) -> int:
    with _ale_store(args) as ale:
        record = ale.set_status(args.id, Status.REJECTED, actor=_operator(), reason=args.reason)
    _print_moved(record, args.json)
    return EXIT_OK


def _progress(line: str) -> None:
    progress_console.print(line, markup=False)


def _print_moved(record: CandidateRecord, as_json: bool) -> None:
    if as_json:
        render.print_json(_moved(record))
        return
    where = f"{record.function}({record.signature})"
    line = f"{record.id} {record.candidate.family} for {where}: {record.status}"
    if record.reason:
        line += f" ({record.reason})"
    render.console.print(line, markup=False)


def _moved(record: CandidateRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "function": record.function,
        "signature": record.signature,
        "candidate": record.candidate.family,
        "status": str(record.status),
        "reason": record.reason,
    }


def _print_rows(rows: list[Row]) -> None:
    if not rows:
        render.console.print("nothing recorded yet: enable ALE in the application first")
        return
    table = Table()
    table.add_column("id", no_wrap=True)  # what approve and reject take: shown whole
    table.add_column("call", overflow="fold")
    for name in ("calls", "candidate", "speedup", "mismatches", "status"):
        table.add_column(name, no_wrap=True)
    for row in rows:
        speedup = f"{row['speedup']:.2f}x" if row["speedup"] is not None else "-"
        mismatches = "-" if row["mismatches"] is None else str(row["mismatches"])
        call = escape(f"{row['function']}({row['signature']})")  # "list[float]" is no markup
        table.add_row(
            row["id"],
            call,
            str(row["calls"]),
            row["candidate"] or "-",
            speedup,
            mismatches,
            row["status"],
        )
    render.console.print(table)
