"""The story the demo tells: one step per thing an operator does, run while load runs.

A step is a title and an action on the :class:`Demo`; it returns a :class:`StepOutcome`
that says whether things went as the story expects (a faulty release *must* be
refused or rolled back), a headline and detail lines. The helpers on :class:`Demo` do
the bookkeeping (publishing releases, timing and recording every operation, pacing the
load); what the engine does meanwhile arrives through :class:`~.monitor.Monitor`.

Every strategy is walked (see :func:`scenario`):

- immediate: lexer 1.1.0;
- canary: optimizer 1.1.0 promoted step by step; the faulty 1.2.1 rolled back by the
  canary analysis, its failed calls retried on the stable version (idempotent);
- shadow: bytecode_generator 1.1.0 promoted after a comparison by meaning; the faulty
  1.2.0, whose code computes wrong values, refused on its mismatches: no caller ever
  received its code;
- gradual: vm_engine 1.1.0;
- rolling: the pooled jit_compiler, one instance at a time;
- blue_green: memory_manager 2.0.0 with its state migrated, then the leaky 2.0.1,
  switched back by the warm window's watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from noodle_upgrade.demo.components import publish, release, releases
from noodle_upgrade.demo.loadgen import LoadGenerator
from noodle_upgrade.demo.monitor import Monitor
from noodle_upgrade.demo.report import Ledger
from noodle_upgrade.demo.toolchain import (
    PIPELINE,
    Bytecode,
    Toolchain,
    Tree,
    run_reference,
    same_meaning,
)
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import UpgradeResult, UpgradeStatus
from noodle_upgrade.runtime.runtime import Runtime

Mark = Literal["success", "refused", "info"]

# Rollout pacing. The engine's defaults suit production (steps of seconds to minutes);
# the demo's steps are short so that the whole story runs in well under a minute. Each
# step still needs min_calls calls on the new version before it may pass, and the
# latency bound is loosened from 1.5× because per-step medians of a few dozen calls on a
# shared, GIL-bound machine are noisy.
PACE: dict[str, Any] = {"step_seconds": 0.4, "min_calls": 30, "latency_factor": 2.0}
CANARY: dict[str, Any] = {
    **PACE,
    "initial_percentage": 10,
    "increment_percentage": 20,
    "max_percentage": 50,
}
SHADOW: dict[str, Any] = {**PACE, "compare": same_meaning}
# Gradual and rolling end with a step at 100%, where no call is left on the stable
# version: that step's latency is judged against the previous step's stable median,
# measured earlier, and on a busy machine absolute latency drifts more than 2× within
# a second. Their bound is looser so that drift does not pass for a slow release.
GRADUAL: dict[str, Any] = {**PACE, "latency_factor": 3.0}
ROLLING: dict[str, Any] = {**GRADUAL, "batch_size": 1}
BLUE_GREEN: dict[str, Any] = {"switchback_delay": 1.5, "min_calls": 30}


@dataclass(frozen=True)
class StepOutcome:
    ok: bool  # the step ended as the story expects
    mark: Mark  # how to show it: ✔ success, ✘ refused or failed, • information
    headline: str
    details: list[str] = field(default_factory=list)


@dataclass
class Demo:
    """What every step works with: the runtime, the project, the load and the events."""

    rt: Runtime
    root: Path
    toolchain: Toolchain
    load: LoadGenerator
    monitor: Monitor
    ledger: Ledger = field(default_factory=Ledger)
    soak_s: float = 0.5  # how long the load runs on the new versions after each step
    step_frames: int = 0  # memory frames the steps opened themselves (the final check counts them)
    trail: dict[str, list[str]] = field(default_factory=dict)  # versions each one served

    def __post_init__(self) -> None:
        for name in PIPELINE:
            self.trail.setdefault(name, [self.rt.version(name)])

    def versions(self) -> dict[str, str]:
        return {name: self.rt.version(name) for name in PIPELINE}

    def publish(self, *keys: str) -> None:
        """Release new versions: write them into the store of the running project."""
        for one in releases(keys):
            publish(self.root, one)

    def upgrade(
        self, name: str, version: str | None = None, strategy: str = "immediate", **parameters: Any
    ) -> UpgradeResult:
        started = time.perf_counter()
        result = self.rt.upgrade(name, version, strategy=strategy, actor="demo", **parameters)
        self.ledger.record("upgrade", result, started, time.perf_counter())
        self.moved(name)
        return result

    def rollback(self, name: str) -> UpgradeResult:
        started = time.perf_counter()
        result = self.rt.rollback(name, actor="demo")
        self.ledger.record("rollback", result, started, time.perf_counter())
        self.moved(name)
        return result

    def moved(self, name: str) -> None:
        """Note the version now serving ``name`` in its trail, if it changed."""
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


def analysed_steps(result: UpgradeResult) -> list[dict[str, Any]]:
    steps = result.metrics.get("steps")
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def steps_line(result: UpgradeResult, unit: str = "calls") -> str:
    """Each analysed step: the new version's share, the verdict and its calls."""
    parts = []
    for step in analysed_steps(result):
        share = step.get("share") or 0
        where = f"{share:g}%" if share else ("A/A" if step.get("step") == 0 else "shadow")
        calls = step.get("compared") if not share else step.get("candidate_calls")
        parts.append(f"{where} {step.get('outcome')} ({calls} {unit})")
    return "analysis: " + (", ".join(parts) if parts else "no step analysed")


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


def expect_rollback(
    result: UpgradeResult, metric: str, details: Sequence[str] = (), *, holds: bool = True
) -> StepOutcome:
    """The outcome of a rollout that the analysis must roll back, failing on ``metric``."""
    steps = analysed_steps(result)
    failed_on = steps[-1].get("metric") if steps else None
    ok = result.status is UpgradeStatus.ROLLED_BACK and failed_on == metric and holds
    if result.success:
        return StepOutcome(False, "success", "unexpected: it went live: " + done_line(result))
    return StepOutcome(ok, "refused", failure_line(result), list(details))


def stack_depth(code: Bytecode) -> int:
    """How deep the VM's stack gets running ``code``."""
    depth = deepest = 0
    for opcode, _ in code:
        depth += 1 if opcode in ("push", "input") else -1
        deepest = max(deepest, depth)
    return deepest


def release_namespace(key: str) -> dict[str, Any]:
    """A release's code run in a scratch namespace: to show what a refused release would
    have done, without it ever entering the runtime."""
    namespace: dict[str, Any] = {"__name__": f"demo_scratch_{key.replace('@', '_')}"}
    exec(compile(release(*key.split("@", 1)).code, f"<{key}>", "exec"), namespace)
    return namespace


# --- the steps -------------------------------------------------------------------------


def warm_up(demo: Demo) -> StepOutcome:
    demo.soak(1.0)
    totals = demo.load.totals()
    cache = demo.toolchain.cache_stats()
    return StepOutcome(
        True,
        "info",
        f"{totals.calls:,} calls in {totals.elapsed_s:.1f} s on the initial versions "
        f"({totals.rate:,.0f}/s, {demo.load.threads} threads)",
        [
            f"compile cache: {cache.hits:,} hits, {cache.misses:,} misses; it drops its "
            "entries whenever what serves a compile stage changes"
        ],
    )


def upgrade_lexer(demo: Demo) -> StepOutcome:
    sample = "x\t*\n(3 + 4)"
    try:
        demo.toolchain.lexer.tokenize(sample)
        before = "accepted it too"
    except SyntaxError as exc:
        before = f"rejected it: {exc}"
    invalidations = demo.toolchain.cache_stats().invalidations
    demo.publish("lexer@1.1.0")
    result = demo.upgrade("lexer", "1.1.0")
    extra = []
    if result.success:
        value = demo.run_sample(sample, x=2)
        extra.append(f"1.1.0 runs {sample!r} with x=2 → {value} (1.0.0 {before})")
        dropped = demo.toolchain.cache_stats().invalidations - invalidations
        extra.append(f"the compile cache dropped its entries on the swap ({dropped}×)")
    demo.soak()
    return expect_success(result, extra)


def canary_optimizer(demo: Demo) -> StepOutcome:
    sample = "x * (3 + 4) - 7 * 1"
    before = len(demo.toolchain.compile(sample))  # cached, as 1.0.0 compiled it
    demo.publish("optimizer@1.1.0")
    result = demo.upgrade("optimizer", "1.1.0", "canary", **CANARY)
    after = len(demo.toolchain.compile(sample))
    demo.soak()
    details = [
        steps_line(result),
        f"{sample!r} compiles to {after} instruction(s), was {before}: constant folding "
        "(the compile cache recompiled it by itself)",
    ]
    return expect_success(result, details, holds=after < before)


def faulty_optimizer(demo: Demo) -> StepOutcome:
    demo.publish("optimizer@1.2.0")
    result = demo.upgrade("optimizer", "1.2.0", "canary", **CANARY)
    serving = demo.rt.version("optimizer")
    demo.soak(demo.soak_s / 2)
    never = (
        "no call ever reached 1.2.0" if result.status is UpgradeStatus.FAILED else "switched back"
    )
    details = [f"optimizer {serving} keeps serving; {never}"]
    return expect_refusal(result, "health-check-failed", details, holds=serving == "1.1.0")


def canary_faulty_optimizer(demo: Demo) -> StepOutcome:
    errors = demo.load.totals().errors
    demo.publish("optimizer@1.2.1")
    result = demo.upgrade("optimizer", "1.2.1", "canary", **CANARY)
    serving = demo.rt.version("optimizer")
    demo.soak(demo.soak_s / 2)
    steps = analysed_steps(result)
    last = steps[-1] if steps else {}
    seen = demo.load.totals().errors - errors
    details = [
        steps_line(result),
        f"{last.get('candidate_errors', 0)} of {last.get('candidate_calls', 0)} calls on 1.2.1 "
        "raised; optimizer is idempotent, so each was retried on 1.1.0: callers saw "
        f"{seen} error(s)",
        f"optimizer {serving} keeps serving",
    ]
    holds = serving == "1.1.0" and seen == 0
    return expect_rollback(result, "error_rate", details, holds=holds)


def shadow_generator(demo: Demo) -> StepOutcome:
    sample = "x + x * (x * (x + 1))"
    before = stack_depth(demo.toolchain.compile(sample))
    demo.publish("bytecode_generator@1.1.0")
    result = demo.upgrade("bytecode_generator", "1.1.0", "shadow", **SHADOW, aa_calls=30)
    after = stack_depth(demo.toolchain.compile(sample))
    demo.soak()
    details = [
        steps_line(result, "compared"),
        "1.1.0 orders code differently, so results were compared by meaning (the compare "
        "hook runs both codes), not with ==",
        f"{sample!r} now runs on a stack {after} deep, was {before}",
    ]
    return expect_success(result, details, holds=after < before)


def shadow_faulty_generator(demo: Demo) -> StepOutcome:
    wrong = demo.load.totals().wrong_answers
    demo.publish("bytecode_generator@1.2.0")
    result = demo.upgrade("bytecode_generator", "1.2.0", "shadow", **SHADOW)
    serving = demo.rt.version("bytecode_generator")
    demo.soak(demo.soak_s / 2)
    steps = analysed_steps(result)
    last = steps[-1] if steps else {}
    tree: Tree = ("-", ("int", 7), ("*", ("int", 2), ("var", "x")))
    faulty = release_namespace("bytecode_generator@1.2.0")["generate"](tree)
    good = release_namespace("bytecode_generator@1.1.0")["generate"](tree)
    inputs = {"x": 3}
    seen = demo.load.totals().wrong_answers - wrong
    details = [
        f"{last.get('mismatches', 0)} of {last.get('compared', 0)} shadowed results differed; "
        f"none was served: callers got 1.1.0's code, {seen} wrong answer(s)",
        f"e.g. '7 - 2 * x' with x=3: 1.2.0's code computes {run_reference(faulty, inputs)}, "
        f"1.1.0's {run_reference(good, inputs)}",
        f"bytecode_generator {serving} keeps serving",
    ]
    holds = serving == "1.1.0" and seen == 0
    return expect_rollback(result, "mismatches", details, holds=holds)


def gradual_vm(demo: Demo) -> StepOutcome:
    demo.publish("vm_engine@1.1.0")
    result = demo.upgrade("vm_engine", "1.1.0", "gradual", **GRADUAL)
    demo.soak()
    details = [steps_line(result), "programs of 9+ instructions now go to the JIT"]
    return expect_success(result, details)


def rolling_jit(demo: Demo) -> StepOutcome:
    demo.publish("jit_compiler@1.1.0")
    result = demo.upgrade("jit_compiler", "1.1.0", "rolling", **ROLLING)
    demo.soak()
    stats = demo.toolchain.jit_compiler.stats()
    details = [
        steps_line(result),
        "the pool's instances were replaced one at a time, each one's counters migrated "
        f"into its successor: one of them has compiled {stats.get('compiled', 0):,} programs "
        f"in all, {stats.get('specialized', 0):,} operations specialized since its upgrade",
    ]
    return expect_success(result, details, holds=stats.get("version") == "1.1.0")


WINDOW_END = ("blue_green.window_closed", "rollback.succeeded", "rollback.failed")


def blue_green_memory(demo: Demo) -> StepOutcome:
    memory = demo.toolchain.memory_manager
    before_shape = sorted(memory.snapshot())
    before = demo.toolchain.memory_stats()
    demo.publish("memory_manager@1.1.0", "memory_manager@2.0.0")
    mark = demo.monitor.mark()
    with demo.paused_program(4242) as read_back:
        result = demo.upgrade("memory_manager", "2.0.0", "blue_green", **BLUE_GREEN)
        after = demo.toolchain.memory_stats()
        resumed = read_back()
    after_shape = sorted(memory.snapshot())
    if not result.success:
        return expect_success(result)
    delay = float(BLUE_GREEN["switchback_delay"])
    ended = demo.monitor.wait_for("memory_manager", WINDOW_END, since=mark, timeout=delay + 10)
    demo.moved("memory_manager")
    details = [
        f"state shape {{{', '.join(before_shape)}}} → {{{', '.join(after_shape)}}}",
        f"carried over: {before['allocations']:,} allocations and {before['frames_opened']:,} "
        f"frames counted by {before['version']} continue in {after['version']} "
        f"({after['allocations']:,} / {after['frames_opened']:,} just after the switch); "
        "1.1.0's migrate added peak_cells on the way",
        f"a program paused across the swap read its value back from 2.0.0: {resumed}",
        f"1.0.0 stayed loaded and warm for {delay:g} s for an instant switch-back; "
        + (
            "the window closed with 2.0.0 healthy"
            if ended is not None and ended.kind == "blue_green.window_closed"
            else f"the window ended with {ended.kind if ended else 'nothing'}"
        ),
    ]
    kept = (
        after["allocations"] >= before["allocations"]
        and after["version"] == "2.0.0"
        and resumed == 4242
        and ended is not None
        and ended.kind == "blue_green.window_closed"
        and demo.rt.version("memory_manager") == "2.0.0"
    )
    return expect_success(result, details, holds=kept)


def blue_green_leak(demo: Demo) -> StepOutcome:
    demo.publish("memory_manager@2.0.1")
    mark = demo.monitor.mark()
    result = demo.upgrade("memory_manager", "2.0.1", "blue_green", **BLUE_GREEN)
    if not result.success:
        return expect_success(result)
    switched_at = time.time()
    delay = float(BLUE_GREEN["switchback_delay"])
    watch = ("blue_green.switch_back", "blue_green.window_closed")
    caught = demo.monitor.wait_for("memory_manager", watch, since=mark, timeout=delay + 10)
    back = demo.monitor.wait_for("memory_manager", WINDOW_END, since=mark, timeout=10)
    demo.moved("memory_manager")
    serving = demo.rt.version("memory_manager")
    stats = demo.toolchain.memory_stats()
    demo.soak(demo.soak_s / 2)
    if caught is None or caught.kind != "blue_green.switch_back":
        what = caught.kind if caught else "nothing"
        return StepOutcome(False, "success", f"unexpected: the warm window ended with {what}")
    served = caught.time - switched_at
    switch = _ms(dict((back.data if back else {}).get("metrics") or {}).get("switch_ms"))
    details = [
        done_line(result),
        f"2.0.1 served for {served:.1f} s, then the warm window's health check caught it: "
        f"{caught.data.get('reason')}",
        f"switched back to the still-loaded 2.0.0 in {switch}; 2.0.1's downgrade hook handed "
        f"the live state back: {stats['allocations']:,} allocations counted, none lost",
    ]
    ok = (
        back is not None
        and back.kind == "rollback.succeeded"
        and serving == "2.0.0"
        and stats["version"] == "2.0.0"
    )
    headline = "switched back automatically by the blue-green watch"
    return StepOutcome(ok, "refused", headline, details)


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
        f"{entry.kind:<8} {entry.component:<18} {entry.from_version} → {entry.to_version:<6} "
        f"{entry.strategy:<10} {entry.status}"
        + (f" [{entry.error_code}]" if entry.error_code else "")
        + (f" by {entry.actor}" if entry.actor not in ("demo", "") else "")
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
    """The steps, in order."""
    return [
        Step("Warm up: steady load on the initial versions", warm_up),
        Step("Upgrade lexer to 1.1.0 (immediate)", upgrade_lexer),
        Step("Upgrade optimizer to 1.1.0: constant folding (canary)", canary_optimizer),
        Step("Try optimizer 1.2.0, which fails its own self-test (canary)", faulty_optimizer),
        Step(
            "Try optimizer 1.2.1: passes its self-test, raises on deep programs (canary)",
            canary_faulty_optimizer,
        ),
        Step("Upgrade bytecode_generator to 1.1.0: Sethi–Ullman order (shadow)", shadow_generator),
        Step(
            "Try bytecode_generator 1.2.0, whose code is wrong for some programs (shadow)",
            shadow_faulty_generator,
        ),
        Step("Upgrade vm_engine to 1.1.0 (gradual)", gradual_vm),
        Step("Upgrade the pool of 4 jit_compiler instances to 1.1.0 (rolling)", rolling_jit),
        Step(
            "Upgrade memory_manager to 2.0.0, migrating its state (blue-green)", blue_green_memory
        ),
        Step("Try memory_manager 2.0.1, which leaks once serving (blue-green)", blue_green_leak),
        Step("Try parser 2.0.0, a breaking API change", breaking_parser),
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
