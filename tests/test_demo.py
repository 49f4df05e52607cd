"""``noodle demo``: the whole story under load, and the load generator's own checker."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from noodle_upgrade.demo.loadgen import ProgramMix, evaluate, random_program, render, value_of
from noodle_upgrade.demo.toolchain import run_reference, same_meaning


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    """One ``noodle demo --json`` run, shared by the assertions below. It must finish by
    itself: the timeout fails the test rather than waiting for ever."""
    command = [sys.executable, "-m", "noodle_upgrade.cli.main", "demo", "--json"]
    cwd: Path = tmp_path_factory.mktemp("demo-cwd")  # the demo needs no project
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no stdout; stderr:\n{done.stderr}"
    return done.returncode, json.loads(lines[-1]), done.stderr


def test_demo_runs_clean_under_load(demo_run: tuple[int, dict[str, Any], str]) -> None:
    code, summary, stderr = demo_run
    assert summary["calls"] > 0, stderr
    assert summary["errors"] == 0, stderr
    assert summary["wrong_answers"] == 0, stderr
    assert summary["audit_ok"] is True, stderr
    assert summary["ok"] is True, stderr
    assert code == 0, stderr
    assert summary["duration_s"] < 60, stderr  # DESIGN: under a minute, by itself


def test_demo_walks_every_strategy(demo_run: tuple[int, dict[str, Any], str]) -> None:
    _, summary, stderr = demo_run
    used = set(summary["strategies"])
    assert used >= {"immediate", "canary", "shadow", "gradual", "blue_green"}, stderr
    assert "rolling" in used, stderr  # the pool of jit_compiler instances
    # The faulty releases: optimizer 1.2.1 by the canary analysis, bytecode_generator
    # 1.2.0 by the shadow comparison, memory_manager 2.0.1 by the blue-green watch.
    # The canary's faulty optimizer, the shadow's faulty generator, the leaky memory
    # manager's blue-green switch-back: each is a step the story expects to undo itself.
    assert summary["automatic_rollbacks"] == 3, stderr
    assert summary["rollbacks"] >= summary["automatic_rollbacks"], stderr
    assert "analysis-failed" in stderr
    assert "mismatches" in stderr
    assert "switched back" in stderr


def test_demo_compile_cache_recompiles_after_swaps(
    demo_run: tuple[int, dict[str, Any], str],
) -> None:
    _, summary, stderr = demo_run
    assert summary["cache_hits"] > 0, stderr
    assert summary["cache_invalidations"] >= 3, stderr  # lexer, optimizer, generator swaps
    assert "recompiled it by itself" in stderr


def test_demo_walks_the_whole_story(demo_run: tuple[int, dict[str, Any], str]) -> None:
    _, summary, stderr = demo_run
    assert summary["upgrades"] >= 3, stderr
    assert summary["rollbacks"] >= 1, stderr
    assert summary["refused"] >= 2, stderr  # the faulty releases and the breaking parser
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


def test_program_mix_repeats_hot_sources_with_right_answers() -> None:
    mix = ProgramMix(3, hot_programs=8, hot_share=0.5)
    rng = random.Random(11)
    programs = [mix.next(rng) for _ in range(400)]
    hot = {source for _, source in mix.hot}
    assert 100 < sum(p.source in hot for p in programs) < 300
    for program in programs:
        assert evaluate(program.source, program.inputs) == program.expected, program


def test_bytecode_compared_by_meaning() -> None:
    """The shadow's compare hook: reordered code is the same program, wrong code is not."""
    seven_minus_2x = [("push", 7), ("push", 2), ("input", "x"), ("mul", None), ("sub", None)]
    reordered = [("push", 2), ("input", "x"), ("mul", None), ("push", 7), ("sub", None)]
    commuted = [("input", "x"), ("push", 2), ("mul", None), ("push", 7), ("sub", None)]
    assert run_reference(seven_minus_2x, {"x": 3}) == 1
    assert same_meaning(seven_minus_2x, list(seven_minus_2x))
    assert not same_meaning(seven_minus_2x, reordered)  # 2 * x - 7
    twice = [("push", 2), ("input", "x"), ("mul", None)]
    assert same_meaning(twice, commuted[:3])
    assert not same_meaning(seven_minus_2x, "not code")
    assert not same_meaning(seven_minus_2x, [("push", 1), ("add", None)])


def test_rendering_keeps_the_parentheses_that_matter() -> None:
    tree = ("-", 10, ("-", 4, 3))
    assert render(tree) == "10 - (4 - 3)"
    assert value_of(tree) == 9
    assert render(("*", ("+", 1, "x"), 3)) == "(1 + x) * 3"
    assert value_of(("*", ("+", 1, "x"), 3), {"x": 2}) == 9
    assert render(("+", 1, ("*", 2, 3))) == "1 + 2 * 3"
