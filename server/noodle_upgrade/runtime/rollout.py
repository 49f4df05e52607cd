"""Exposing a candidate to live traffic before the point of no return.

Gradual and canary route a growing share of calls to the candidate, step by step;
shadow hands it copies of calls and compares the results. Every step is analysed
(engine.step_analysis); a failed step, a failed health check or a step that stays
inconclusive past the upgrade's deadline ends the exposure at once: the handle goes
back to the stable bindings and the candidate never served a caller again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from noodle_upgrade.engine.step_analysis import (
    Accumulated,
    FunctionLatency,
    Outcome,
    Samples,
    SideSample,
    StepTally,
    Thresholds,
    Verdict,
    analyse_step,
)
from noodle_upgrade.errors import HotSwapError, NoodleError
from noodle_upgrade.runtime.loader import LoadedVersion, run_health_check
from noodle_upgrade.runtime.routing import Shadow, Split, shadow_call, split_call
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.strategies import StrategyConfig

TICK_SECONDS = 0.05  # how often a step looks for an early failure

Publish = Callable[..., Any]


class RolloutFailed(NoodleError):
    """A step failed (or never became conclusive): the candidate is withdrawn."""

    code = "analysis-failed"

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message, code="analysis-failed")
        self.verdict = verdict


@dataclass
class Collected:
    functions: Samples
    shadowed: SideSample | None = None  # the shadow's side, which it measures itself
    mismatches: int = 0
    compared: int = 0
    stuck: bool = False
    dropped: int = 0  # copies the shadow could not take (it fell behind)


def thresholds(config: StrategyConfig) -> Thresholds:
    return Thresholds(
        min_calls=int(config["min_calls"]),
        error_rate=config["error_rate_threshold"],
        latency_factor=config["latency_factor"],
    )


@dataclass
class Exposure:
    slot: ComponentSlot
    candidate: LoadedVersion
    config: StrategyConfig
    publish: Publish
    deadline: float  # time.monotonic() past which an inconclusive step fails
    health_timeout: float
    steps: list[dict[str, Any]] = field(default_factory=list)

    def weighted(self, shares: list[float]) -> None:
        """Route a growing share of calls to the candidate; return when every step passed."""
        split = Split(retry_on_stable=self.candidate.descriptor.idempotent)
        self.slot.route(self.candidate, partial(split_call, split))
        try:
            for number, share in enumerate(shares, 1):
                split.set_share(share)
                self.publish("rollout.step", step=number, share=share, of=len(shares))
                self._hold(number, share, _splitter(split))
        except BaseException:
            self.slot.unroute()
            raise

    def rolling(
        self,
        old: LoadedVersion,
        move: Callable[[int], None],
        undo: Callable[[int], None],
        drain_timeout: float,
    ) -> None:
        """Replace a pool's members ``batch_size`` at a time, analysing after each batch.

        ``move(i)`` carries member *i*'s state into its replacement, ``undo(i)`` back;
        both run while the pool's gate holds calls, so no write is lost either way.
        """
        size, batch = len(old.instances), int(self.config["batch_size"])
        split = Split(retry_on_stable=False)
        self.slot.measure(split)
        replaced, steps = 0, -(-size // batch)
        try:
            while replaced < size:
                upto = min(size, replaced + batch)
                with self.slot.quiesced(drain_timeout):
                    for index in range(replaced, upto):
                        _guarded(move, index, "moving the state of pool member")
                    fresh = self.candidate.instances[:upto]
                    self.slot.set_members(fresh + old.instances[upto:], frozenset(map(id, fresh)))
                replaced, number = upto, -(-upto // batch)
                share = 100 * replaced / size
                self.publish("rollout.step", step=number, share=share, of=steps, replaced=replaced)
                self._hold(number, share, _splitter(split))
        except BaseException:
            self._put_back(old, replaced, undo, drain_timeout)
            raise

    def _put_back(
        self, old: LoadedVersion, replaced: int, undo: Callable[[int], None], drain_timeout: float
    ) -> None:
        """Give the pool its old members back, whatever else fails on the way."""
        held = self.slot.gate.close(drain_timeout)
        if not held:  # the old members come back anyway: a mixed pool would be worse
            self.publish("rollout.undo_warning", reason="calls still in flight on new members")
        try:
            for index in range(replaced):
                try:
                    _guarded(undo, index, "moving back the state of pool member")
                except NoodleError as exc:  # that member keeps the state it had when replaced
                    self.publish("rollout.undo_warning", member=index, reason=exc.message)
            self.slot.set_members(old.instances, frozenset())
        finally:
            if held:
                self.slot.gate.open()
        self.slot.unroute()

    def shadow(self) -> None:
        """Compare copies of real calls on the candidate; return when enough agree."""
        aa_calls = int(self.config["aa_calls"])
        if aa_calls:
            stable = self.slot.active
            self._shadow_phase(stable, 0, "A/A (stable against itself)", aa_calls)
        self._shadow_phase(self.candidate, 1, "shadow", int(self.config["min_calls"]))

    def _shadow_phase(self, target: LoadedVersion, number: int, what: str, calls: int) -> None:
        shadow = Shadow(self.config.compare, self.config["shadow_timeout"])
        split = Split(retry_on_stable=False)
        self.slot.route(target, partial(shadow_call, shadow, split))
        self.publish("rollout.step", step=number, share=0.0, phase=what)
        try:
            self._hold(number, 0.0, _shadower(shadow, split), min_calls=calls)
        except RolloutFailed as exc:
            example = f"; first: {shadow.examples[0]}" if shadow.examples else ""
            if number == 0:  # the comparison itself is noisy: say so, not "mismatch"
                exc.code = "shadow-noise"
                exc.args = (
                    f"the stable version disagrees with itself ({exc.verdict.reason}{example}); "
                    "its results are not deterministic: give a compare hook",
                )
            else:
                exc.args = (f"{exc.message}{example}",)
            raise
        finally:
            self.slot.unroute()
            shadow.stop()

    def _hold(
        self,
        number: int,
        share: float,
        collect: Callable[[], Collected],
        *,
        min_calls: int | None = None,
    ) -> None:
        """Run one step until it passes; raise RolloutFailed if it fails.

        Latency is judged only where stable calls ran side by side with the candidate's:
        not for a shadow (its copies run on another thread) nor at 100%, which is judged
        on errors and health.
        """
        limits = thresholds(self.config)
        if min_calls is not None:
            limits = Thresholds(min_calls, limits.error_rate, limits.latency_factor)
        check_latency = 0 < share < 100
        ends = time.monotonic() + self.config["step_seconds"]
        tally, shadowed = StepTally(), Accumulated()
        while True:
            time.sleep(min(TICK_SECONDS, max(self.config["step_seconds"], 0.001)))
            got = collect()
            ended = time.monotonic() >= ends
            tally.add(got.functions)
            step_baselines = tally.baselines(limits.min_calls)
            candidate = tally.total(1) if got.shadowed is None else shadowed.add(got.shadowed)
            verdict = analyse_step(
                tally.total(0),
                candidate,
                baseline=None,
                thresholds=limits,
                mismatches=got.mismatches,
                compared=got.compared,
                health_error=self._health_error(ended, got.stuck),
                # latency waits for the step's end: its first calls are the noisiest
                check_latency=check_latency and ended,
                functions=[
                    FunctionLatency(name, tally.side(name, 1), step_baselines.get(name))
                    for name in tally.names()
                ],
            )
            if got.dropped:
                verdict.measurements["dropped"] = got.dropped
            if verdict.failed:
                self._fail(number, share, verdict)
            if ended and verdict.outcome is Outcome.PASS:
                self._record(number, share, verdict)
                return
            if ended and time.monotonic() >= self.deadline:
                self._fail(number, share, verdict)

    def _health_error(self, step_ended: bool, stuck: bool) -> str | None:
        if stuck:
            return f"a shadowed call ran past shadow_timeout={self.config['shadow_timeout']:g} s"
        if not step_ended:
            return None
        try:
            run_health_check(self.candidate, self.health_timeout)
        except HotSwapError as exc:
            return exc.message
        return None

    def _record(self, number: int, share: float, verdict: Verdict) -> None:
        entry = {"step": number, "share": share, "outcome": str(verdict.outcome)}
        entry.update(reason=verdict.reason, metric=verdict.metric, **verdict.measurements)
        self.steps.append(entry)
        self.publish("rollout.analysis", **entry)

    def _fail(self, number: int, share: float, verdict: Verdict) -> None:
        self._record(number, share, verdict)
        where = f"step {number} ({share:g}%)" if share else f"step {number}"
        if verdict.outcome is Outcome.INCONCLUSIVE:
            message = f"{where} stayed inconclusive until the upgrade's deadline: {verdict.reason}"
        else:
            message = f"{where} failed on {verdict.metric}: {verdict.reason}"
        raise RolloutFailed(message, verdict)


def _guarded(action: Callable[[int], None], index: int, what: str) -> None:
    try:
        action(index)
    except Exception as exc:
        raise NoodleError(
            f"{what} {index} failed: {type(exc).__name__}: {exc}", code="migration-failed"
        ) from exc


def _splitter(split: Split) -> Callable[[], Collected]:
    return lambda: Collected(split.take())


def _shadower(shadow: Shadow, split: Split) -> Callable[[], Collected]:
    seen = {"latencies": 0, "errors": 0}

    def collect() -> Collected:
        sample = shadow.sample()  # cumulative: hand over only what is new since last time
        fresh = SideSample(sample.latencies_ns[seen["latencies"] :], sample.errors - seen["errors"])
        seen.update(latencies=len(sample.latencies_ns), errors=sample.errors)
        return Collected(
            split.take(),
            fresh,
            shadow.mismatches,
            shadow.compared,
            shadow.overdue(),
            len(shadow.dropped),
        )

    return collect
