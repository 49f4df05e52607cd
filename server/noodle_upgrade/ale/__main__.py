"""``python -m noodle_upgrade.ale run [options] script.py [args…]``: ALE without code changes.

Like ``python -m sklearnex script.py``: ALE is enabled, the script runs as ``__main__``
with ``sys.argv`` set to its own (``script.py args…``) and its folder first on
``sys.path``, as ``python script.py`` would; ALE is disabled at the end (what was
recorded is flushed) and the script's exit code is returned. Options come before the
script: everything after it belongs to the script, so ``--project`` given after the
script name is the script's own option, not ours.

Options: ``--project PATH`` (a project folder, default the current one, or a state
database), ``--targets numpy.dot,numpy.matmul``, ``--sample-rate``, ``--no-inputs``.
An error of ours is one line on stderr (exit 2); the script's own errors are reported as
Python reports them.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence
from typing import NoReturn

from noodle_upgrade.ale.session import DEFAULT_SAMPLE_RATE, DEFAULT_TARGETS, disable, enable
from noodle_upgrade.errors import NoodleError

PROG = "python -m noodle_upgrade.ale"
USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Adaptive Library Evolution")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "run",
        help="run a Python script with ALE enabled",
        description="Run a Python script with ALE recording (and routing) its calls.",
    )
    run.add_argument("--project", default=".", help="project folder or state database")
    run.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help="comma-separated dotted functions (default: %(default)s)",
    )
    run.add_argument(
        "--sample-rate", type=float, default=DEFAULT_SAMPLE_RATE, help="share of calls sampled"
    )
    run.add_argument("--no-inputs", action="store_true", help="record no real arguments")
    run.add_argument("script", help="the Python script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not os.path.isfile(args.script):
        return _fail(f"{args.script}: no such script")
    targets = [target.strip() for target in args.targets.split(",") if target.strip()]
    try:
        enable(
            args.project,
            targets,
            sample_rate=args.sample_rate,
            keep_inputs=not args.no_inputs,
        )
    except NoodleError as exc:
        return _fail(exc.message)
    try:
        code = _run(args.script, args.args)
    finally:
        try:
            disable()
        except NoodleError as exc:
            code = _fail(f"what was recorded could not be written: {exc.message}")
    return code


def _run(script: str, script_args: list[str]) -> int:
    """Run ``script`` as ``__main__``; its exit code, as ``python script.py`` would give."""
    sys.argv = [script, *script_args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
