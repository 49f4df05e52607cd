"""Shadow rollouts: the candidate gets copies of live calls, its results are compared
with the stable version's, and it is never served.

Callers check every answer they get; a shadow must never hand them a wrong one, and
promotes only a candidate that agreed on every compared call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from helpers.behaviour import calc_source, check_withdrawn, locked_calc
from helpers.load import running
from helpers.project import Project, noodle_modules
from noodle_upgrade import Runtime
from noodle_upgrade.models import UpgradeStatus

THREADS = 8
SHADOW: dict[str, Any] = {"step_seconds": 0.25, "min_calls": 20}


def checked_add(rt: Runtime) -> Callable[[], Hashable]:
    """Calls ``add(a, 2)`` for a = 0..9 in turn and raises on any wrong answer, so a
    wrong result served to a caller shows up as a load error."""
    handle = rt.load("calc")
    numbers = itertools.count()
    lock = threading.Lock()

    def call() -> Hashable:
        with lock:
            a = next(numbers) % 10
        answer = handle.add(a, 2)
        if answer != a + 2:
            raise AssertionError(f"add({a}, 2) answered {answer!r}")
        return answer

    return call


def test_shadow_refuses_a_release_with_wrong_results_and_never_serves_one(
    project: Project,
) -> None:
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0", wrong_for=7), shadow_safe=True)
    with project.open() as rt:
        before = noodle_modules()
        with running(checked_add(rt), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="shadow", **SHADOW)
            load.progress(50)
        seen = load.stop()

        assert seen.error_count == 0, seen.errors  # no caller got add(7, 2) == 10
        assert seen.values() == set(range(2, 12))
        assert result.error_code == "analysis-failed"
        message = result.error_message or ""
        assert "failed on mismatches" in message, message
        assert "compared results differ from the stable version's" in message
        failed = result.metrics["steps"][-1]
        assert (failed["outcome"], failed["metric"]) == ("fail", "mismatches")
        assert 0 < failed["mismatches"] <= failed["compared"]
        check_withdrawn(project, rt, result, before)


def test_shadow_promotes_a_release_that_agrees_on_every_call(project: Project) -> None:
    """With an A/A phase first: the stable version agrees with itself, so the comparison
    means something, then the candidate agrees with it."""
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0"), shadow_safe=True)
    with project.open() as rt:
        handle = rt.load("calc")
        with running(checked_add(rt), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="shadow", aa_calls=20, **SHADOW)
            load.progress(50)
        seen = load.stop()

        assert result.success, result.error_message
        assert seen.error_count == 0, seen.errors
        steps = result.metrics["steps"]
        assert [(step["step"], step["outcome"]) for step in steps] == [(0, "pass"), (1, "pass")]
        assert all(step["mismatches"] == 0 for step in steps)
        assert all(step["compared"] >= 20 for step in steps)
        assert rt.version("calc") == "1.1.0" and handle.version() == "1.1.0"
        assert rt.store.active_versions() == {"calc": "1.1.0"}
        assert rt.history("calc")[0].status is UpgradeStatus.SUCCEEDED


def test_shadow_is_refused_for_a_component_not_marked_shadow_safe(project: Project) -> None:
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0"))  # shadow_safe defaults to false
    with project.open() as rt:
        before = noodle_modules()

        result = rt.upgrade("calc", "1.1.0", strategy="shadow", **SHADOW)

        assert result.error_code == "strategy-not-applicable"
        assert "shadow_safe" in (result.error_message or "")
        assert "steps" not in result.metrics  # nothing was loaded, nothing exposed
        check_withdrawn(project, rt, result, before, status=UpgradeStatus.REFUSED)


def test_a_compare_hook_decides_what_counts_as_the_same_result(project: Project) -> None:
    """Floating-point noise fails the default ``==``; a tolerant hook lets it promote."""
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0", off_by=1e-12), shadow_safe=True)
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        with running(lambda: handle.add(2, 3), threads=THREADS) as load:
            load.progress(50)
            strict = rt.upgrade("calc", "1.1.0", strategy="shadow", **SHADOW)
            load.progress(50)
            check_withdrawn(project, rt, strict, before)
            assert "failed on mismatches" in (strict.error_message or "")

            tolerant = rt.upgrade(
                "calc",
                "1.1.0",
                strategy="shadow",
                compare=lambda expected, actual: abs(expected - actual) < 1e-9,
                **SHADOW,
            )
            load.progress(50)
        seen = load.stop()

        assert tolerant.success, tolerant.error_message
        assert tolerant.metrics["steps"][-1]["mismatches"] == 0
        assert rt.version("calc") == "1.1.0"
        assert seen.error_count == 0, seen.errors
        # Served from 1.0.0 (exact) until the promotion, from 1.1.0 (off by 1e-12) after.
        assert seen.values() == {5, 5 + 1e-12}


def test_an_aa_phase_exposes_a_nondeterministic_component(project: Project) -> None:
    """A component whose results differ from call to call would fail every shadow for
    reasons that are not the candidate's: comparing the stable version with itself
    first says so (shadow-noise) instead of blaming the release."""
    locked_calc(project, calc_source("1.0.0", clock=True))
    project.add("calc", "1.1.0", calc_source("1.1.0", clock=True), shadow_safe=True)
    with project.open() as rt:
        handle = rt.load("calc")
        before = noodle_modules()
        with running(lambda: handle.add(2, 3), threads=THREADS) as load:
            load.progress(50)
            result = rt.upgrade("calc", "1.1.0", strategy="shadow", aa_calls=20, **SHADOW)
            load.progress(50)
        seen = load.stop()

        assert result.error_code == "shadow-noise"
        message = result.error_message or ""
        assert "disagrees with itself" in message and "compare hook" in message, message
        (step,) = result.metrics["steps"]  # the A/A phase (step 0) failed; no shadow ran
        assert (step["step"], step["outcome"], step["metric"]) == (0, "fail", "mismatches")
        assert seen.error_count == 0, seen.errors
        check_withdrawn(project, rt, result, before, deterministic=False)


def test_a_candidate_that_hangs_fails_once_past_shadow_timeout(
    project: Project, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    locked_calc(project, calc_source("1.0.0"))
    project.add("calc", "1.1.0", calc_source("1.1.0", hang_until_exists=release), shadow_safe=True)
    with project.open() as rt:
        before = noodle_modules()
        try:
            with running(checked_add(rt), threads=THREADS) as load:
                load.progress(50)
                result = rt.upgrade(
                    "calc", "1.1.0", strategy="shadow", shadow_timeout=0.3, **SHADOW
                )
                load.progress(50)
            seen = load.stop()
        finally:
            release.touch()  # let the abandoned shadow worker finish its queue and exit

        assert result.error_code == "analysis-failed"
        message = result.error_message or ""
        assert "shadow_timeout=0.3" in message, message
        failed = result.metrics["steps"][-1]
        assert (failed["outcome"], failed["metric"]) == ("fail", "health")
        # It waited for the deadline before giving up on the candidate (a lower bound).
        assert result.metrics["exposure_ms"] >= 300
        # The callers were served by the stable version all along, unharmed.
        assert seen.error_count == 0, seen.errors
        check_withdrawn(project, rt, result, before)
