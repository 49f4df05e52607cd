"""``noodle``: the command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from noodle_upgrade.cli import ale, changes, commands
from noodle_upgrade.errors import ConfigError, NoodleError
from noodle_upgrade.models import STRATEGY_NAMES
from noodle_upgrade.reports.compliance import FORMATS, parse_bound

EXIT_USAGE = 2
PROJECT_HELP = "project folder holding noodle.toml (default: the current folder)"
EXIT_INTERNAL = 70


def _bound(*, end: bool) -> Callable[[str], float]:
    """An argparse type for ``--since``/``--until``: a bad date is a usage error."""

    def parse(text: str) -> float:
        try:
            return parse_bound(text, end=end)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"noodle: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="noodle", description="Live, safe upgrades of versioned components.")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help=PROJECT_HELP)
    # Accepted after the command too (`noodle status --project app`); the later one wins.
    project = _Parser(add_help=False)
    project.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=PROJECT_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_text, description=help_text, parents=[project])
        child.set_defaults(handler=handler)
        return child

    def with_json(child: argparse.ArgumentParser) -> argparse.ArgumentParser:
        child.add_argument("--json", action="store_true", help="print JSON")
        return child

    command("init", commands.init, "create noodle.toml, the component store and the state store")
    with_json(command("status", commands.status, "active versions and rollback points"))
    plan = with_json(command("plan", commands.plan, "show an upgrade path without applying it"))
    plan.add_argument("component")
    plan.add_argument("version", nargs="?")
    upgrade = with_json(command("upgrade", commands.upgrade, "upgrade a component"))
    upgrade.add_argument("component")
    upgrade.add_argument("version", nargs="?", help="target version (default: newest allowed)")
    upgrade.add_argument("--strategy", choices=STRATEGY_NAMES)
    rollback = with_json(command("rollback", commands.rollback, "go back to a rollback point"))
    rollback.add_argument("component")
    rollback.add_argument("--to", metavar="POINT", help="rollback point id (default: the last)")
    rollback.add_argument("--reason", help="why, kept in the history and the audit log")
    approve = with_json(command("approve", commands.approve, "run a pending proposal now"))
    approve.add_argument("id", help="proposal id, as `noodle status` lists it")
    reject = with_json(command("reject", commands.reject, "close a pending proposal"))
    reject.add_argument("id", help="proposal id, as `noodle status` lists it")
    reject.add_argument("--reason", help="why, kept with the proposal and in the audit log")
    with_json(command("check", commands.check, "ask the live runtime to look for updates now"))
    history = with_json(command("history", commands.history, "upgrades and rollbacks"))
    history.add_argument("--component")
    history.add_argument("--limit", type=int)
    audit = with_json(command("audit", commands.audit, "verify, export or report on the audit log"))
    audit.add_argument("action", choices=["verify", "export", "report"])
    audit.add_argument("--output", "-o", help="export, report: write to this file, not stdout")
    audit.add_argument("--format", choices=FORMATS, help="report: markdown (default) or json")
    when = "an ISO date or datetime, local time unless it has an offset"
    audit.add_argument("--since", type=_bound(end=False), metavar="WHEN", help=f"report: {when}")
    audit.add_argument(
        "--until",
        type=_bound(end=True),
        metavar="WHEN",
        help=f"report: {when}; a date is inclusive",
    )
    diff = with_json(command("diff", changes.diff, "what changed in the API between versions"))
    diff.add_argument("component")
    diff.add_argument("old", metavar="V1", help="the version upgraded from")
    diff.add_argument("new", metavar="V2", help="the version upgraded to")
    impact = with_json(
        command("impact", changes.impact, "the call sites in this project a version breaks")
    )
    impact.add_argument("component")
    impact.add_argument("version")
    hash_ = command("hash", commands.hash_folder, "print the sha256 of a version folder")
    hash_.add_argument("folder")
    with_json(command("events", commands.events, "follow a live runtime's events"))
    with_json(command("demo", commands.demo, "run the built-in demo"))
    ale_help = "Adaptive Library Evolution: faster numpy calls, validated and approved"
    ale_sub = command("ale", None, ale_help).add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )

    def ale_command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        child = ale_sub.add_parser(name, help=help_text, description=help_text, parents=[project])
        child.set_defaults(handler=handler)
        return with_json(child)

    ale_command("report", ale.report, "recorded signatures and their candidates")
    ale_command("evolve", ale.evolve, "generate and validate candidates for what was recorded")
    ale_approve = ale_command("approve", ale.approve, "let a validated candidate serve as canary")
    ale_approve.add_argument("id", help="candidate id, as `noodle ale report` lists it")
    ale_reject = ale_command("reject", ale.reject, "never let a candidate serve")
    ale_reject.add_argument("id", help="candidate id, as `noodle ale report` lists it")
    ale_reject.add_argument("--reason", help="why, kept with the candidate and in the audit log")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except NoodleError as exc:
        sys.stderr.write(f"noodle: error: {exc}\n")
        return EXIT_USAGE if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        sys.stderr.write("noodle: interrupted\n")
        return 130
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        sys.stderr.write(f"noodle: internal error: {type(exc).__name__}: {exc}\n")
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
