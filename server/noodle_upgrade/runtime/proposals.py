"""The proposal desk: what the runtime proposes itself, gated by policy, kept in the store.

Sources (the store watcher, ``noodle.toml`` edits, git tags, the manual check, triggers)
propose; the desk picks the target (the newest version the constraints accept that was
never rolled back, switched back, failed or rejected: no flapping), asks the decision
engine and ``engine.policy``, and files a proposal that is applied at once, deferred
until a window, interval or resource allows it, or held for an operator. Proposals live
in the store, so ``noodle status`` and ``noodle approve ID`` see them with or without a
live runtime. An approval is the operator's explicit request: it runs at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.version import Version

from noodle_upgrade.engine.planner import UpgradePlan
from noodle_upgrade.engine.policy import ROLLBACK, Change, Conditions, Verdict, judge
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import ProposalState, UpgradeResult
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.resources import CpuSampler, measure
from noodle_upgrade.runtime.triggers import assess
from noodle_upgrade.store import ProposalRecord

log = logging.getLogger("noodle_upgrade.proposals")

POLICY = "policy"  # the actor of an approval that policy gave


@dataclass
class DeskHooks:
    """What the desk needs of the Runtime."""

    plan: Callable[[str, str], UpgradePlan]  # raises the refusal
    upgrade: Callable[[str, str, str | None, str], UpgradeResult]  # name, version, strategy, actor
    rollback: Callable[[str, str, str], UpgradeResult]  # name, actor, reason
    busy: Callable[[str], bool]


class ProposalDesk:
    def __init__(self, ctx: Context, hooks: DeskHooks, *, recheck_in_background: bool) -> None:
        """``recheck_in_background``: judge deferred proposals every
        ``policy_check_interval`` in a thread. A runtime that proposes nothing by itself
        (a CLI's) must not: it would apply them in a process that is about to exit."""
        self.ctx, self.hooks = ctx, hooks
        self._lock = threading.RLock()  # one proposal at a time: dedup and supersede hold
        self._cpu = CpuSampler()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if recheck_in_background:
            self._thread = threading.Thread(target=self._loop, name="noodle: policy", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.ctx.settings.policy_check_interval):
            try:
                self.recheck()
            except NoodleError:
                log.exception("checking deferred proposals failed")

    # -- proposing ----------------------------------------------------------------------

    def detect(self, source: str, reason: str) -> list[ProposalRecord]:
        """Look for newer versions of every active component; file what is found."""
        self.ctx.registry.rescan()
        found = []
        for name in sorted(self.ctx.slots):
            record = self.propose_upgrade(name, source, reason)
            if record is not None:
                found.append(record)
        return found

    def propose_upgrade(self, name: str, source: str, reason: str) -> ProposalRecord | None:
        with self._lock:
            plan = self._newest_plan(name)
            if plan is None:
                return None
            target = str(plan.to_version)
            for record in self.ctx.store.proposals(open_only=True, component=name):
                if record.kind == "upgrade" and record.to_version == target:
                    return record  # proposed already
            decision = assess(
                self.ctx, plan, self._strategy() or self.ctx.settings.default_strategy
            )
            change = self.ctx.apis.diff_or_none(self.ctx.slot(name).active.descriptor, plan.target)
            detail = {
                "change": str(plan.bump),
                "critical": plan.target.critical,
                "path": plan.path,
                "warnings": [*plan.warnings, *plan.target.warnings],
                "decision": decision.to_dict(),
                "breaking": [] if change is None else change.to_dict()["breaking"],
            }
            return self._file(name, "upgrade", target, source, reason, detail)

    def propose_rollback(self, name: str, source: str, reason: str) -> ProposalRecord | None:
        with self._lock:
            points = self.ctx.store.rollback_points(name)
            if not points:
                return None
            target = points[0].version
            for record in self.ctx.store.proposals(open_only=True, component=name):
                if record.kind == "rollback" and record.to_version == target:
                    return record
            detail = {
                "change": ROLLBACK,
                "critical": self.ctx.slot(name).active.descriptor.critical,
                "rollback_point": points[0].id,
            }
            return self._file(name, "rollback", target, source, reason, detail)

    def _file(
        self, name: str, kind: str, target: str, source: str, why: str, detail: dict[str, Any]
    ) -> ProposalRecord:
        verdict = self._judge(name, detail)
        record = self.ctx.store.add_proposal(
            component=name,
            kind=kind,
            from_version=str(self.ctx.slot(name).active.version),
            to_version=target,
            source=source,
            state=ProposalState.DEFERRED if verdict.action == "defer" else ProposalState.PENDING,
            reason=verdict.reason,
            detail={**detail, "detected": why},
        )
        self.ctx.events.publish("proposal.created", name, **record.to_dict())
        return self._follow(record, verdict)

    def _newest_plan(self, name: str) -> UpgradePlan | None:
        """The newest version ``name`` may go to that is not blocked, planned."""
        slot = self.ctx.slot(name)
        constraint = self.ctx.project.components.get(name)
        blocked = self.ctx.store.blocked_versions(name)
        candidates = [
            descriptor.version
            for descriptor in self.ctx.registry.versions(name)
            if descriptor.version > slot.active.version
            and str(descriptor.version) not in blocked
            and (constraint is None or constraint.contains(descriptor.version, prereleases=True))
        ]
        for version in sorted(candidates, reverse=True):
            try:
                return self.hooks.plan(name, str(version))
            except NoodleError as exc:
                self.ctx.events.publish(
                    "proposal.unplannable", name, version=str(version), error=exc.message
                )
        return None

    # -- judging ------------------------------------------------------------------------

    def _judge(self, name: str, detail: dict[str, Any]) -> Verdict:
        verdict = self._policy_verdict(name, detail)
        breaking = detail.get("breaking") or []
        if verdict.action == "apply" or not breaking:
            return verdict
        # What an operator weighs before approving: what the new version breaks.
        first = breaking[0]
        more = f" and {len(breaking) - 1} more" if len(breaking) > 1 else ""
        what = f"{first['kind']} {first['path']}: {first['detail']}{more}"
        return Verdict(verdict.action, f"{verdict.reason}; it breaks the API: {what}")

    def _policy_verdict(self, name: str, detail: dict[str, Any]) -> Verdict:
        settings = self.ctx.settings
        change = Change(name, str(detail["change"]), bool(detail["critical"]))
        verdict = judge(
            self.ctx.project.policy,
            change,
            self._conditions(name),
            approve_all=settings.auto_upgrade_approval,
        )
        decision = detail.get("decision")
        if verdict.action != "pending" and decision is not None and not decision["approve"]:
            return Verdict("pending", f"the decision engine says {decision['verdict']}")
        if verdict.action == "apply" and self.hooks.busy(name):
            return Verdict("defer", f"{name} is busy with another operation")
        return verdict

    def _conditions(self, name: str) -> Conditions:
        last = self.ctx.store.last_upgrade_at(name)
        policy = self.ctx.project.policy
        return Conditions(
            now=datetime.now(),
            since_last_upgrade_s=None if last is None else time.time() - last,
            **measure(policy, self.ctx.project.state_dir, self._cpu),
        )

    def _follow(self, record: ProposalRecord, verdict: Verdict) -> ProposalRecord:
        """Move ``record`` to what ``verdict`` says; start it when policy approves."""
        if verdict.action == "apply":
            record = self._move(record, ProposalState.APPROVED, POLICY, verdict.reason)
            threading.Thread(
                target=self._apply,
                args=(record, POLICY),
                name=f"noodle: {record.id}",
                daemon=True,
            ).start()
            return record
        state = ProposalState.DEFERRED if verdict.action == "defer" else ProposalState.PENDING
        if state is record.state and verdict.reason == record.reason:
            return record
        return self._move(record, state, POLICY, verdict.reason)

    def recheck(self) -> None:
        """Judge every open proposal again: a window opened, resources freed, policy
        changed, or the component moved on by itself (then the proposal is superseded)."""
        with self._lock:
            for record in self.ctx.store.proposals(open_only=True):
                if record.component not in self.ctx.slots:
                    continue
                stale = self._stale(record)
                if stale is not None:
                    self._move(record, ProposalState.SUPERSEDED, POLICY, stale)
                else:
                    self._follow(record, self._judge(record.component, record.detail))

    def _stale(self, record: ProposalRecord) -> str | None:
        active = self.ctx.slot(record.component).active.version
        if str(active) == record.from_version:
            return None
        if record.kind == "upgrade" and active >= Version(record.to_version):
            return f"{record.component} is at {active} already"
        return f"{record.component} moved from {record.from_version} to {active} meanwhile"

    # -- deciding -----------------------------------------------------------------------

    def approve(self, proposal_id: str, actor: str) -> UpgradeResult:
        """Run a proposal now, as the operator's explicit request (policy is not asked)."""
        record = self.ctx.store.proposal(proposal_id)
        self.ctx.slot(record.component)  # raises for a component this runtime does not run
        if record.state.open:
            stale = self._stale(record)
            if stale is not None:
                self._move(record, ProposalState.SUPERSEDED, actor, stale)
                raise NoodleError(
                    f"proposal {proposal_id} is out of date: {stale}; "
                    f"plan a new upgrade with `noodle plan {record.component}`",
                    code="proposal-stale",
                )
        record = self._move(record, ProposalState.APPROVED, actor, f"approved by {actor}")
        return self._apply(record, actor)

    def reject(self, proposal_id: str, actor: str, reason: str | None = None) -> ProposalRecord:
        """Close a proposal; its version is never proposed again automatically."""
        record = self.ctx.store.proposal(proposal_id)
        return self._move(record, ProposalState.REJECTED, actor, reason or f"rejected by {actor}")

    def _apply(self, record: ProposalRecord, actor: str) -> UpgradeResult:
        name = record.component
        try:
            if record.kind == ROLLBACK:
                why = f"proposal {record.id}: {record.detail.get('detected', record.reason)}"
                result = self.hooks.rollback(name, actor, why)
            else:
                result = self.hooks.upgrade(name, record.to_version, self._strategy(), actor)
        except NoodleError as exc:
            self._move(record, ProposalState.FAILED, actor, exc.message)
            raise
        if result.error_code == "busy" and actor == POLICY:  # try again at the next check
            self._move(record, ProposalState.DEFERRED, actor, result.error_message or "busy")
        elif result.success:
            self._move(
                record,
                ProposalState.APPLIED,
                actor,
                f"applied by {result.request_id}",
                operation_id=result.request_id,
            )
        else:
            self._move(
                record,
                ProposalState.FAILED,
                actor,
                result.error_message or str(result.status),
                operation_id=result.request_id,
            )
        return result

    def _strategy(self) -> str | None:
        return self.ctx.project.policy.strategy

    def _move(
        self,
        record: ProposalRecord,
        to: ProposalState,
        actor: str,
        reason: str,
        *,
        operation_id: str | None = None,
    ) -> ProposalRecord:
        moved = self.ctx.store.move_proposal(
            record.id, to, actor=actor, reason=reason, operation_id=operation_id
        )
        self.ctx.events.publish(f"proposal.{to}", record.component, **moved.to_dict())
        return moved
