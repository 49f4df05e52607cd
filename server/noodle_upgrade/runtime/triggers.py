"""Triggers: the runtime watching its own components and proposing a remedy.

Every ``trigger_interval`` seconds, each stateless component is observed for
``trigger_window`` seconds: its handle is routed through a measuring wrapper (the
steady path is untouched the rest of the time), and the window's error rate and median
latency go to ``engine.triggers``. A symptom yields a proposal (roll back the last
upgrade, or upgrade to the newest compatible version), which the decision engine
scores. The proposal goes to the proposal desk (``runtime.proposals``) like any other
the runtime makes itself: ``[policy.<environment>]`` applies it, defers it or holds
it for an operator, and a version once rolled back or rejected is never proposed
again (no flapping).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from packaging.version import Version

from noodle_upgrade.engine.decision import Decision, DecisionInput, OutcomeStats, decide
from noodle_upgrade.engine.planner import UpgradePlan
from noodle_upgrade.engine.step_analysis import merged
from noodle_upgrade.engine.triggers import Observation, Proposal, TriggerConfig, evaluate
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.routing import Split, split_call
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.store import ProposalRecord

log = logging.getLogger("noodle_upgrade.triggers")

PROPOSALS_KEPT = 100
LEARNING_RATE = 0.2  # how far one healthy window moves a baseline


def _learn(baselines: dict[str, float], key: str, value: float) -> None:
    """A healthy window moves its baseline a step towards what it measured."""
    previous = baselines.get(key)
    baselines[key] = value if previous is None else previous + LEARNING_RATE * (value - previous)


def assess(ctx: Context, plan: UpgradePlan, strategy: str) -> Decision:
    """The decision engine's view of a planned upgrade, from the journal's statistics."""
    target = plan.target
    change = ctx.apis.diff_or_none(ctx.slot(plan.component).active.descriptor, target)
    decision_input = DecisionInput(
        component=plan.component,
        from_version=plan.from_version,
        to_version=plan.to_version,
        bump=plan.bump,
        critical=target.critical,
        strategy=strategy,
        warnings=(*plan.warnings, *target.warnings),
        breaking_changes=0 if change is None else len(change.breaking),
        stats=OutcomeStats.from_counts(ctx.store.outcome_stats()),
        stateful=target.stateful,
    )
    return decide(decision_input, ctx.settings.decision_threshold)


@dataclass
class TriggerHooks:
    """What the monitor needs of the Runtime: planning and the two remedies."""

    newest: Callable[[str], UpgradePlan | None]
    propose_upgrade: Callable[..., ProposalRecord | None]  # (name, reason=…)
    propose_rollback: Callable[..., ProposalRecord | None]
    claim: Callable[[str, Any], bool]  # register a window; False when the slot is busy
    release: Callable[[str, Any], None]


class ObservationWindow:
    """One measured window on one component; cancelled by any operation on it."""

    def __init__(self, slot: ComponentSlot) -> None:
        self.slot = slot
        self.split = Split(retry_on_stable=False)
        self.cancelled = threading.Event()

    def run(self, seconds: float) -> tuple[Observation, str] | None:
        """The window's observation, and the function its latency is the median of: the
        most called one (functions of one component differ too much to mix)."""
        active = self.slot.active
        self.slot.route(active, partial(split_call, self.split))
        try:
            if self.cancelled.wait(seconds):
                return None
        finally:
            if not self.cancelled.is_set():
                self.slot.unroute()
        functions = {name: stable for name, (stable, _) in self.split.take().items()}
        if not functions:
            return None
        total = merged(list(functions.values()))
        busiest = max(functions, key=lambda name: functions[name].calls)
        p50 = functions[busiest].median_ns
        milliseconds = 0.0 if p50 is None else p50 / 1e6
        return Observation(self.slot.name, total.calls, total.errors, milliseconds), busiest

    def cancel(self) -> None:
        """Called before an operation on the component: give it the steady handle now."""
        self.cancelled.set()
        self.slot.unroute()


class TriggerMonitor:
    def __init__(self, ctx: Context, hooks: TriggerHooks) -> None:
        self.ctx, self.hooks = ctx, hooks
        self.config = TriggerConfig()
        self.baselines: dict[str, float] = {}  # "name@version.function" -> median ms
        self.error_rates: dict[str, float] = {}  # name -> its usual error rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="noodle: triggers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        settings = self.ctx.settings
        while not self._stop.wait(settings.trigger_interval):
            for name, slot in list(self.ctx.slots.items()):
                if self._stop.is_set():
                    return
                if slot.stateful:
                    continue  # calls of a stateful component pass its gate, not a router
                try:
                    self._observe(name, slot, settings.trigger_window)
                except NoodleError:
                    log.exception("trigger on %s failed", name)

    def _observe(self, name: str, slot: ComponentSlot, seconds: float) -> None:
        window = ObservationWindow(slot)
        if not self.hooks.claim(name, window):
            return
        try:
            seen = window.run(seconds)
        finally:
            self.hooks.release(name, window)
        if seen is None or seen[0].calls < self.config.min_calls:
            return
        observed, function = seen
        key = f"{name}@{slot.active.version}.{function}"
        observation = Observation(
            name,
            observed.calls,
            observed.errors,
            observed.p50_ms,
            self.baselines.get(key),
            self.error_rates.get(name, 0.0),
        )
        proposal = evaluate(
            observation,
            self.config,
            newer_available=self._newer(name),
            has_rollback_point=bool(self.ctx.store.rollback_points(name)),
        )
        if proposal is None:
            _learn(self.baselines, key, observed.p50_ms)
            _learn(self.error_rates, name, observed.error_rate)
            return
        self._propose(proposal)

    def _newer(self, name: str) -> Version | None:
        plan = self.hooks.newest(name)
        return None if plan is None else plan.to_version

    def _propose(self, proposal: Proposal) -> None:
        propose = (
            self.hooks.propose_rollback
            if proposal.kind == "rollback"
            else self.hooks.propose_upgrade
        )
        record = propose(proposal.component, reason=proposal.reason)
        self.ctx.events.publish(
            "trigger.proposed",
            proposal.component,
            kind=proposal.kind,
            reason=proposal.reason,
            proposal=None if record is None else record.id,
        )
