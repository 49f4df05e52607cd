"""``noodle demo``: the whole story under load, and the load generator's own checker."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from noodle_upgrade.demo.loadgen import evaluate, random_program, render, value_of


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    """One ``noodle demo --json`` run, shared by the assertions below."""
    command = [sys.executable, "-m", "noodle_upgrade.cli.main", "demo", "--json"]
    cwd: Path = tmp_path_factory.mktemp("demo-cwd")  # the demo needs no project
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=cwd)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no stdout; stderr:\n{done.stderr}"
    return done.returncode, json.loads(lines[-1]), done.stderr


def test_demo_runs_clean_under_load(demo_run: tuple[int, dict[str, Any], str]) -> None:
    code, summary, stderr = demo_run
    assert summary["calls"] > 0, stderr
    assert summary["errors"] == 0, stderr
    assert summary["wrong_answers"] == 0, stderr
    assert summary["audit_ok"] is True, stderr
    assert code == 0, stderr


def test_demo_walks_the_whole_story(demo_run: tuple[int, dict[str, Any], str]) -> None:
    _, summary, stderr = demo_run
    assert summary["upgrades"] >= 3, stderr
    assert summary["rollbacks"] >= 1, stderr
    assert summary["refused"] >= 2, stderr  # the faulty optimizer and the breaking parser
    assert "immediate" in summary["strategies"]
    assert summary["steps_ok"] is True, stderr
    assert summary["state_ok"] is True, stderr  # memory_manager's state survived its swaps
    for key in ("swap_p99_ms", "upgrade_p50_ms", "call_p99_ms"):
        assert isinstance(summary[key], int | float) and summary[key] >= 0
    assert "health-check-failed" in stderr
    assert "dependency-conflict" in stderr and "bytecode_generator" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("(3 + 4) * 2 - 7", 7),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left-associative
        ("10 - (4 - 3)", 9),
        ("2 * 3 * 4 - 1", 23),
        ("((((5))))", 5),
        ("0 - 99 * 99", -9801),
        (" 7\t*\n(2 + 0) ", 14),
        ("42", 42),
        ("x", -3),
        ("x * (3 + 4) - 7 * 1", -28),
        ("(x - 1) * (x + 1)", 8),
        ("0 - x", 3),
    ],
)
def test_evaluator_computes_programs(source: str, expected: int) -> None:
    assert evaluate(source, {"x": -3}) == expected


@pytest.mark.parametrize(
    "source", ["", "1 +", "(1 + 2", "1 + 2)", "1 2", "* 3", "1 / 2", "-1", "x x", "2x"]
)
def test_evaluator_rejects_malformed_programs(source: str) -> None:
    with pytest.raises(ValueError):
        evaluate(source, {"x": 1})


def test_evaluator_needs_every_input() -> None:
    with pytest.raises(KeyError):
        evaluate("y + 1", {"x": 1})


def test_generated_programs_mean_what_their_trees_compute() -> None:
    """The generator's expected value (from the tree) and the text evaluator agree."""
    rng = random.Random(7)
    for _ in range(2000):
        program = random_program(rng)
        assert evaluate(program.source, program.inputs) == program.expected, program


def test_rendering_keeps_the_parentheses_that_matter() -> None:
    tree = ("-", 10, ("-", 4, 3))
    assert render(tree) == "10 - (4 - 3)"
    assert value_of(tree) == 9
    assert render(("*", ("+", 1, "x"), 3)) == "(1 + x) * 3"
    assert value_of(("*", ("+", 1, "x"), 3), {"x": 2}) == 9
    assert render(("+", 1, ("*", 2, 3))) == "1 + 2 * 3"
