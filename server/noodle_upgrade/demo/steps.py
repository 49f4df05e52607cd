"""The story the demo tells: one step per thing an operator does, run while load runs.

A step is a title and an action on the :class:`Demo`; it returns a :class:`StepOutcome`
that says whether things went as the story expects (a faulty release *must* be
refused), a headline and detail lines. New strategies add steps here (see
:func:`scenario`); the helpers on :class:`Demo` do the bookkeeping (publishing
releases, timing and recording every operation, pacing the load).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from noodle_upgrade.demo.components import publish, releases
from noodle_upgrade.demo.loadgen import LoadGenerator
from noodle_upgrade.demo.report import Ledger
from noodle_upgrade.demo.toolchain import PIPELINE, Toolchain
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import UpgradeResult, UpgradeStatus
from noodle_upgrade.runtime.runtime import Runtime

Mark = Literal["success", "refused", "info"]


@dataclass(frozen=True)
class StepOutcome:
    ok: bool  # the step ended as the story expects
    mark: Mark  # how to show it: ✔ success, ✘ refused or failed, • information
    headline: str
    details: list[str] = field(default_factory=list)


@dataclass
class Demo:
    """What every step works with: the runtime, the project and the running load."""

    rt: Runtime
    root: Path
    toolchain: Toolchain
    load: LoadGenerator
    ledger: Ledger = field(default_factory=Ledger)
    soak_s: float = 0.8  # how long the load runs on the new versions after each step
    step_frames: int = 0  # memory frames the steps opened themselves (the final check counts them)
    trail: dict[str, list[str]] = field(default_factory=dict)  # versions each one served

    def __post_init__(self) -> None:
        for name in PIPELINE:
            self.trail.setdefault(name, [self.rt.version(name)])

    def versions(self) -> dict[str, str]:
        return {name: self.rt.version(name) for name in PIPELINE}

    def publish(self, *keys: str) -> None:
        """Release new versions: write them into the store of the running project."""
        for release in releases(keys):
            publish(self.root, release)

    def upgrade(
        self, name: str, version: str | None = None, strategy: str = "immediate"
    ) -> UpgradeResult:
        started = time.perf_counter()
        result = self.rt.upgrade(name, version, strategy=strategy, actor="demo")
        self.ledger.record("upgrade", result, started, time.perf_counter())
        self._moved(name)
        return result

    def rollback(self, name: str) -> UpgradeResult:
        started = time.perf_counter()
        result = self.rt.rollback(name, actor="demo")
        self.ledger.record("rollback", result, started, time.perf_counter())
        self._moved(name)
        return result

    def _moved(self, name: str) -> None:
        current = self.rt.version(name)
        if self.trail[name][-1] != current:
            self.trail[name].append(current)

    def run_sample(self, source: str, x: int = 0) -> int:
        value = self.toolchain.run(source, {"x": x})
        self.step_frames += 1
        return value

    @contextmanager
    def paused_program(self, value: int) -> Iterator[Callable[[], int]]:
        """A program stopped mid-run: a frame held open with ``value`` in it.

        Yields a function that reads the value back through the memory manager, whatever
        version serves by then; the frame is closed on exit. Holding it across a swap
        shows that refs handed out by one version stay valid in the next.
        """
        memory = self.toolchain.memory_manager
        frame = memory.open_frame()
        self.step_frames += 1
        try:
            ref = memory.allocate(frame, value)
            yield lambda: memory.load(ref)
        finally:
            memory.close_frame(frame)

    def soak(self, seconds: float | None = None) -> None:
        time.sleep(self.soak_s if seconds is None else seconds)


@dataclass(frozen=True)
class Step:
    title: str
    action: Callable[[Demo], StepOutcome]


# --- describing results ----------------------------------------------------------------


def _ms(value: object) -> str:
    return f"{float(value):.3f} ms" if isinstance(value, int | float) else "-"


def done_line(result: UpgradeResult) -> str:
    metrics = result.metrics
    path = " → ".join([result.from_version, *result.path]) if result.path else result.to_version
    switch, total = _ms(metrics.get("switch_ms")), _ms(metrics.get("total_ms"))
    name, strategy = result.component_name, result.strategy
    return f"{name} {path} ({strategy}): switch {switch}, whole operation {total}"


def failure_line(result: UpgradeResult) -> str:
    status = {
        UpgradeStatus.REFUSED: "refused",
        UpgradeStatus.FAILED: "failed before the switch",
        UpgradeStatus.ROLLED_BACK: "rolled back automatically",
    }.get(result.status, str(result.status))
    return f"{status} [{result.error_code}]: {result.error_message}"


def expect_success(
    result: UpgradeResult, details: Sequence[str] = (), *, holds: bool = True
) -> StepOutcome:
    """The outcome of an operation that should succeed (and leave ``holds`` true)."""
    if not result.success:
        return StepOutcome(False, "refused", "unexpected: " + failure_line(result), list(details))
    return StepOutcome(holds, "success", done_line(result), list(details))


def expect_refusal(
    result: UpgradeResult, code: str, details: Sequence[str] = (), *, holds: bool = True
) -> StepOutcome:
    """The outcome of an upgrade that must not go live, for the reason ``code``."""
    if result.success:
        return StepOutcome(False, "success", "unexpected: it went live: " + done_line(result))
    ok = result.error_code == code and holds
    return StepOutcome(ok, "refused", failure_line(result), list(details))


# --- the steps -------------------------------------------------------------------------


def warm_up(demo: Demo) -> StepOutcome:
    demo.soak(1.0)
    totals = demo.load.totals()
    return StepOutcome(
        True,
        "info",
        f"{totals.calls:,} calls in {totals.elapsed_s:.1f} s on the initial versions "
        f"({totals.rate:,.0f}/s, {demo.load.threads} threads)",
    )


def upgrade_lexer(demo: Demo) -> StepOutcome:
    sample = "x\t*\n(3 + 4)"
    try:
        demo.toolchain.lexer.tokenize(sample)
        before = "accepted it too"
    except SyntaxError as exc:
        before = f"rejected it: {exc}"
    demo.publish("lexer@1.1.0")
    result = demo.upgrade("lexer", "1.1.0")
    extra = []
    if result.success:
        value = demo.run_sample(sample, x=2)
        extra.append(f"1.1.0 runs {sample!r} with x=2 → {value} (1.0.0 {before})")
    demo.soak()
    return expect_success(result, extra)


def upgrade_optimizer(demo: Demo) -> StepOutcome:
    sample = "x * (3 + 4) - 7 * 1"
    before = len(demo.toolchain.compile(sample))
    demo.publish("optimizer@1.1.0")
    result = demo.upgrade("optimizer", "1.1.0")
    after = len(demo.toolchain.compile(sample))
    demo.soak()
    details = [f"{sample!r} compiles to {after} instruction(s), was {before}: constant folding"]
    return expect_success(result, details, holds=after < before)


def faulty_optimizer(demo: Demo) -> StepOutcome:
    demo.publish("optimizer@1.2.0")
    result = demo.upgrade("optimizer", "1.2.0")
    serving = demo.rt.version("optimizer")
    demo.soak()
    never = (
        "no call ever reached 1.2.0" if result.status is UpgradeStatus.FAILED else "switched back"
    )
    details = [f"optimizer {serving} keeps serving; {never}"]
    return expect_refusal(result, "health-check-failed", details, holds=serving == "1.1.0")


def migrate_memory(demo: Demo) -> StepOutcome:
    memory = demo.toolchain.memory_manager
    before_shape = sorted(memory.snapshot())
    before = demo.toolchain.memory_stats()
    demo.publish("memory_manager@1.1.0", "memory_manager@2.0.0")
    with demo.paused_program(4242) as read_back:
        result = demo.upgrade("memory_manager", "2.0.0")
        after = demo.toolchain.memory_stats()
        resumed = read_back()
    after_shape = sorted(memory.snapshot())
    demo.soak()
    if not result.success:
        return expect_success(result)
    details = [
        f"state shape {{{', '.join(before_shape)}}} → {{{', '.join(after_shape)}}}",
        f"carried over: {before['allocations']:,} allocations and {before['frames_opened']:,} "
        f"frames counted by {before['version']} continue in {after['version']} "
        f"({after['allocations']:,} / {after['frames_opened']:,} just after the switch); "
        "1.1.0's migrate added peak_cells on the way",
        f"a program paused across the swap read its value back from 2.0.0: {resumed}",
    ]
    kept = (
        after["allocations"] >= before["allocations"]
        and after["version"] == "2.0.0"
        and resumed == 4242
    )
    return expect_success(result, details, holds=kept)


def breaking_parser(demo: Demo) -> StepOutcome:
    demo.publish("parser@2.0.0")
    result = demo.upgrade("parser", "2.0.0")
    serving = demo.rt.version("parser")
    demo.soak(demo.soak_s / 2)
    message = result.error_message or ""
    named = "optimizer" in message and "bytecode_generator" in message
    details = [f"parser {serving} keeps serving"]
    return expect_refusal(
        result, "dependency-conflict", details, holds=named and serving == "1.0.0"
    )


def upgrade_vm(demo: Demo) -> StepOutcome:
    demo.publish("vm_engine@1.1.0")
    result = demo.upgrade("vm_engine", "1.1.0")
    demo.soak()
    return expect_success(result, ["programs of 9+ instructions now go to the JIT"])


def rollback_lexer(demo: Demo) -> StepOutcome:
    result = demo.rollback("lexer")
    demo.soak()
    return expect_success(result, holds=demo.rt.version("lexer") == "1.0.0")


def rollback_memory(demo: Demo) -> StepOutcome:
    before = demo.toolchain.memory_stats()
    with demo.paused_program(2424) as read_back:
        result = demo.rollback("memory_manager")
        after = demo.toolchain.memory_stats()
        resumed = read_back()
    demo.soak()
    details = [
        f"2.0.0's downgrade hook turned the arenas back into a cell table: "
        f"{before['allocations']:,} allocations → {after['allocations']:,} in {after['version']}, "
        "nothing counted since the upgrade lost",
        f"a program paused across the rollback read its value back from 1.0.0: {resumed}",
    ]
    kept = (
        after["allocations"] >= before["allocations"]
        and after["version"] == "1.0.0"
        and resumed == 2424
    )
    return expect_success(result, details, holds=kept)


def show_history(demo: Demo) -> StepOutcome:
    entries = list(reversed(demo.rt.history()))
    lines = [
        f"{entry.kind:<8} {entry.component:<15} {entry.from_version} → {entry.to_version:<6} "
        f"{entry.strategy:<9} {entry.status}"
        + (f" [{entry.error_code}]" if entry.error_code else "")
        for entry in entries
    ]
    return StepOutcome(True, "info", f"{len(entries)} operations recorded in the store", lines)


def verify_audit(demo: Demo) -> StepOutcome:
    check = demo.rt.store.verify_audit()
    if check.ok:
        return StepOutcome(True, "success", f"audit hash chain intact: {check.records} records")
    return StepOutcome(
        False, "refused", f"audit chain broken at record {check.first_bad_seq}: {check.reason}"
    )


def scenario() -> list[Step]:
    """The steps, in order. Later strategies (canary, blue-green, …) add theirs here."""
    return [
        Step("Warm up: steady load on the initial versions", warm_up),
        Step("Upgrade lexer to 1.1.0 (immediate)", upgrade_lexer),
        Step("Upgrade optimizer to 1.1.0: constant folding (immediate)", upgrade_optimizer),
        Step("Try optimizer 1.2.0, a faulty release", faulty_optimizer),
        Step("Upgrade memory_manager to 2.0.0, migrating its state (immediate)", migrate_memory),
        Step("Try parser 2.0.0, a breaking API change", breaking_parser),
        Step("Upgrade vm_engine to 1.1.0 (immediate)", upgrade_vm),
        Step("Roll back lexer", rollback_lexer),
        Step("Roll back memory_manager through its downgrade hook", rollback_memory),
        Step("History (noodle history)", show_history),
        Step("Audit log (noodle audit verify)", verify_audit),
    ]


def run_step(demo: Demo, step: Step) -> StepOutcome:
    """Run one step; an exception becomes a failed outcome, so the story goes on."""
    try:
        return step.action(demo)
    except NoodleError as exc:
        return StepOutcome(False, "refused", f"unexpected {type(exc).__name__} [{exc.code}]: {exc}")
    except Exception as exc:
        return StepOutcome(False, "refused", f"the step crashed: {type(exc).__name__}: {exc}")
