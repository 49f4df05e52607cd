"""One function per ``noodle`` command. Each returns the process exit code."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from noodle_upgrade.cli import render
from noodle_upgrade.cli.offline import open_offline
from noodle_upgrade.control.client import ControlClient
from noodle_upgrade.durable import write_atomically
from noodle_upgrade.engine.integrity import folder_digest
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.engine.planner import dependents_of
from noodle_upgrade.errors import ConfigError, NoodleError
from noodle_upgrade.reports import compliance
from noodle_upgrade.runtime.runtime import Runtime
from noodle_upgrade.runtime.strategies import NEEDS_TRAFFIC
from noodle_upgrade.store import Store

EXIT_OK, EXIT_FAILED = 0, 1

NOODLE_TOML = """\
[noodle]
store = "components"        # component store: components/<name>/<version>/component.toml
state = ".noodle"           # state dir: state.db (history, rollback points, audit log)
environment = "development" # selects [policy.<environment>]

[components]                # what the runtime runs: PEP 440 specifiers
# parser = ">=1.0,<2"

[policy.production]
# strategy = "canary"
# auto_approve = ["patch"]
"""


def init(args: argparse.Namespace) -> int:
    root: Path = args.project
    manifest = root / "noodle.toml"
    if manifest.exists():
        raise ConfigError(f"{manifest}: already exists; `noodle init` never overwrites a project")
    root.mkdir(parents=True, exist_ok=True)
    manifest.write_text(NOODLE_TOML)
    (root / "components").mkdir(exist_ok=True)
    with open_offline(root, create_store=True) as project:
        project.store.append_audit("project.initialized", actor="cli")
    render.console.print(f"created {manifest}, {root / 'components'}/ and {project.config.db_path}")
    return EXIT_OK


def _live(args: argparse.Namespace) -> ControlClient | None:
    """The runtime serving this project, when one runs; commands then steer it."""
    return ControlClient.connect(load_project(args.project).state_dir)


def status(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            data = client.call("status")
    else:
        with open_offline(args.project) as project:
            render.warnings(project.problems())
            data = project.status()
    render.print_json(data) if args.json else render.status(data)
    return EXIT_OK


def plan(args: argparse.Namespace) -> int:
    with open_offline(args.project) as project:
        render.warnings(project.problems())
        value = project.plan(args.component, args.version)
        dependents = dependents_of(args.component, project.active_descriptors())
    if args.json:
        render.print_json(render.plan_dict(value, dependents))
    else:
        render.plan(value, dependents)
    return EXIT_OK


def _report(result: dict[str, Any], as_json: bool) -> int:
    render.print_json(result) if as_json else render.result(result)
    return EXIT_OK if result["success"] else EXIT_FAILED


def _offline_runtime(args: argparse.Namespace) -> Runtime:
    """A runtime in this process for one command: no endpoint, no watcher, no proposals
    of its own (the application's runtime, when it starts, does that)."""
    rt = Runtime.open(args.project, actor="cli", control=False, settings={"watch_enabled": False})
    render.warnings(rt.warnings)
    return rt


def _refuse_traffic_strategy(strategy: str) -> None:
    if strategy in NEEDS_TRAFFIC:
        raise NoodleError(
            f"strategy {strategy!r} judges the new version by live calls, and no runtime "
            "serves this project's calls here: run it inside the application "
            "(rt.upgrade, or `noodle` while the application runs), or use immediate or "
            "blue_green from the command line"
        )


def upgrade(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            request = {"component": args.component, "version": args.version, "actor": "cli"}
            return _report(client.call("upgrade", strategy=args.strategy, **request), args.json)
    with _offline_runtime(args) as rt:
        _refuse_traffic_strategy(args.strategy or rt.settings.default_strategy)
        result = rt.upgrade(args.component, args.version, strategy=args.strategy, actor="cli")
    return _report(result.to_dict(), args.json)


def rollback(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            request = {"component": args.component, "to": args.to, "reason": args.reason}
            return _report(client.call("rollback", actor="cli", **request), args.json)
    with _offline_runtime(args) as rt:
        result = rt.rollback(args.component, to=args.to, actor="cli", reason=args.reason)
        return _report(result.to_dict(), args.json)


def approve(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            return _report(client.call("approve", id=args.id, actor=_operator()), args.json)
    with _offline_runtime(args) as rt:
        item = rt.store.proposal(args.id)
        if item.kind == "upgrade":
            _refuse_traffic_strategy(rt.project.policy.strategy or rt.settings.default_strategy)
        return _report(rt.approve(args.id, actor=_operator()).to_dict(), args.json)


def reject(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            item = client.call("reject", id=args.id, reason=args.reason, actor=_operator())
    else:
        with _offline_runtime(args) as rt:
            item = rt.reject(args.id, reason=args.reason, actor=_operator())
    render.print_json(item) if args.json else render.proposal(item)
    return EXIT_OK


def check(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is None:
        raise NoodleError(
            f"no live runtime serves {args.project}: `noodle check` asks a running "
            "application to look for updates (`noodle plan COMPONENT` shows what an "
            "upgrade would do)",
            code="not-live",
        )
    with client:
        found = client.call("check", actor=_operator())
    if args.json:
        render.print_json(found)
    elif found:
        render.pending(found)
    else:
        render.console.print("nothing new: every component is at the newest version it may take")
    return EXIT_OK


def _operator() -> str:
    """Who approves or rejects: the login name, so the audit log says who decided."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in this environment (a bare container)
        return "cli"


def history(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is not None:
        with client:
            entries = client.call("history", component=args.component, limit=args.limit)
    else:
        with open_offline(args.project) as project:
            found = project.store.history(args.component, args.limit)
            entries = [entry.to_dict() for entry in found]
    render.print_json(entries) if args.json else render.history(entries)
    return EXIT_OK


def audit(args: argparse.Namespace) -> int:
    if args.action == "report":
        return audit_report(args)
    _refuse_report_options(args)
    # The store is the truth for the audit log; reading it needs no live runtime.
    with open_offline(args.project) as project:
        if args.action == "verify":
            return _verify(project.store, args.json)
        records = project.store.export_audit()
    text = json.dumps(records, indent=2, sort_keys=True)
    if args.output:
        write_atomically(Path(args.output), f"{text}\n".encode(), tag=str(os.getpid()))
        render.console.print(f"wrote {len(records)} audit records to {args.output}")
    else:
        print(text)
    return EXIT_OK


def _verify(store: Store, as_json: bool) -> int:
    verification = store.verify_audit().to_dict()
    render.print_json(verification) if as_json else render.verification(verification)
    return EXIT_OK if verification["ok"] else EXIT_FAILED


def audit_report(args: argparse.Namespace) -> int:
    """The compliance report, read from the store: WAL lets it sit beside a running
    application, and one snapshot keeps the report consistent with itself. Exits with 1
    when the audit chain is broken, after the report (which says so) is out."""
    output_format = _report_format(args)
    since, until = args.since, args.until
    if since is not None and until is not None and since >= until:
        raise ConfigError(
            f"--since {compliance.iso(since)} is not before --until {compliance.iso(until)}: "
            "the period would be empty"
        )
    with open_offline(args.project) as project:
        records = project.store.records_between(since, until)
        config = project.config
    report = compliance.build_report(
        records,
        project=str(config.root),
        environment=config.environment,
        since=since,
        until=until,
        generated_at=time.time(),
    )
    text = compliance.to_json(report) if output_format == "json" else compliance.to_markdown(report)
    if args.output:
        write_atomically(Path(args.output), text.encode(), tag=str(os.getpid()))
        render.console.print(f"wrote the compliance report to {args.output}", markup=False)
    else:
        sys.stdout.write(text)
    verification = report.verification
    if verification.ok:
        return EXIT_OK
    render.warnings([f"the audit chain is broken ({verification.reason}); the report says so"])
    return EXIT_FAILED


def _report_format(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "json"):
        raise ConfigError(f"--json and --format {args.format} ask for two formats; give one")
    return "json" if args.json else args.format or "markdown"


def _refuse_report_options(args: argparse.Namespace) -> None:
    given = [
        f"--{name}" for name in ("format", "since", "until") if getattr(args, name) is not None
    ]
    if given:
        raise ConfigError(
            f"`noodle audit {args.action}` does not take {', '.join(given)}: "
            "only `noodle audit report` does"
        )


def events(args: argparse.Namespace) -> int:
    client = _live(args)
    if client is None:
        raise NoodleError(
            f"no live runtime serves {args.project}: `noodle events` follows a running "
            "application (the stored history is `noodle history`)",
            code="not-live",
        )
    with client:
        for event in client.events():
            render.print_json(event) if args.json else render.event(event)
    return EXIT_OK


def hash_folder(args: argparse.Namespace) -> int:
    print(folder_digest(Path(args.folder)))
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from noodle_upgrade.demo import run_demo

    return run_demo(as_json=args.json)
