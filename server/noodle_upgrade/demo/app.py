"""``noodle demo``: build the toy-language project, run it under load, tell the story."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from noodle_upgrade.demo.components import CONSTRAINTS, INITIAL, publish, releases
from noodle_upgrade.demo.loadgen import LoadGenerator
from noodle_upgrade.demo.monitor import Monitor
from noodle_upgrade.demo.report import Summary, summarize
from noodle_upgrade.demo.steps import Demo, run_step, scenario
from noodle_upgrade.demo.toolchain import Toolchain
from noodle_upgrade.demo.view import make_view
from noodle_upgrade.runtime.runtime import Runtime
from noodle_upgrade.scaffold import write_project

# The demo shows the engine's defaults whatever the caller's NOODLE_* variables or
# config file say; the strategies' parameters are the steps' own (steps.PACE and co.).
# upgrade_timeout bounds a rollout whose steps would stay inconclusive (too few calls).
SETTINGS: dict[str, object] = {
    "runtime_upgrade_enabled": True,
    "hot_swap_enabled": True,
    "rollback_enabled": True,
    "validation_level": "strict",
    "default_strategy": "immediate",
    "gradual_rollout_percentage": 10.0,
    "strategy_configs": {},
    "swap_timeout": 30.0,
    "upgrade_timeout": 30.0,
    "max_rollback_points": 10,
}


def build_project(root: Path) -> Path:
    """``noodle.toml`` and the initial releases; later releases come during the story."""
    write_project(root, CONSTRAINTS)
    for release in releases(INITIAL):
        publish(root, release)
    return root


def _state_ok(demo: Demo) -> bool:
    """The memory manager counted one frame per program run, and none is left open.

    Its counters went through two migrations, a blue-green switch-back and a downgrade
    while the load ran, so this shows that no state was lost or duplicated across them.
    """
    totals = demo.load.totals()
    stats = demo.toolchain.memory_stats()
    runs = totals.calls - totals.errors + demo.step_frames
    return bool(
        stats["frames_opened"] == runs and stats["open_frames"] == 0 and stats["live_cells"] == 0
    )


def run_demo(as_json: bool = False, *, soak_s: float = 0.5) -> int:
    """Run the demo; 0 when no call failed or answered wrong, every step went as
    expected (at least one release was rolled back automatically) and the audit chain
    holds.

    ``as_json``: the human output goes to stderr and the last line of stdout is a JSON
    object with the summary (see :class:`noodle_upgrade.demo.report.Summary`).
    """
    view = make_view(sys.stderr if as_json else sys.stdout, live=not as_json)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noodle-demo-") as folder:
        root = build_project(Path(folder))
        with Runtime.open(root, settings=SETTINGS, actor="demo") as rt:
            toolchain = Toolchain(rt)
            load = LoadGenerator(toolchain.run)
            monitor = Monitor(rt)
            demo = Demo(rt, root, toolchain, load, monitor, soak_s=soak_s)
            steps = scenario()
            outcomes = []
            try:
                load.start()
                view.begin(demo)
                monitor.listen(view.event)
                for index, step in enumerate(steps, 1):
                    view.step_started(index, len(steps), step)
                    outcome = run_step(demo, step)
                    outcomes.append(outcome)
                    view.step_finished(outcome)
            finally:
                load.stop()
                monitor.close()
                view.close()
            audit = rt.store.verify_audit()
            summary: Summary = summarize(
                demo.ledger,
                load.totals(),
                load.timings(),
                audit_ok=audit.ok,
                audit_records=audit.records,
                state_ok=_state_ok(demo),
                steps_ok=all(outcome.ok for outcome in outcomes),
                automatic_rollbacks=demo.ledger.rolled_back + monitor.switch_backs,
                switch_backs=monitor.switch_backs,
                cache=toolchain.cache_stats(),
                duration_s=time.perf_counter() - started,
            )
            view.end(demo, summary, load.failures())
    if as_json:
        sys.stdout.write(json.dumps(summary.to_json(), sort_keys=True) + "\n")
        sys.stdout.flush()
    return 0 if summary.ok else 1
