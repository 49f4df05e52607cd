"""Going back to a rollback point: a reference switch plus a state restore.

The rollback point's version is normally still loaded (retention keeps it), so this is
as fast as the switch itself. After a restart it is loaded again from the store; its
state is then the current state converted by the newer version's ``downgrade`` hook
(what this process holds now), or, without such a hook, the state saved with the point.

When the point's upgrade migrated the component's config file, the file it replaced is
put back too, and the current one is kept under the rollback's own id.
"""

from __future__ import annotations

import time

from packaging.version import Version

from noodle_upgrade.config import origin
from noodle_upgrade.engine.integrity import verify_integrity
from noodle_upgrade.engine.planner import check_rollback
from noodle_upgrade.errors import NoodleError, RollbackError
from noodle_upgrade.models import RollbackPoint, UpgradeResult, UpgradeStatus, new_id
from noodle_upgrade.runtime.config_files import (
    RESTORE_FAILED,
    ConfigReplacement,
    backup_folder,
    reported_as,
    stage_restore,
)
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.gil import responsive_gil
from noodle_upgrade.runtime.loader import LoadedVersion, load_version, unload_package
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.transaction import return_state, stamp_total


def find_point(
    ctx: Context, name: str, point_id: str | None, *, explicit: bool = True
) -> RollbackPoint:
    """The live rollback point to go back to. ``explicit=False`` is the runtime's own
    switch back after a failed check, which ``rollback_enabled`` does not stop."""
    if explicit and not ctx.settings.rollback_enabled:
        raise RollbackError(
            f"rollback is disabled by configuration ({origin(ctx.settings, 'rollback_enabled')})"
        )
    live = ctx.store.rollback_points(name)
    if point_id is None:
        if not live:
            raise RollbackError(
                f"component {name!r} has no rollback point left: it was not upgraded since it "
                "was activated or last rolled back (`noodle history` shows what happened)"
            )
        return live[0]
    point = next((p for p in live if p.id == point_id), None)
    if point is None:
        known = ctx.store.rollback_point(point_id)
        why = (
            "does not exist"
            if known is None
            else (
                f"belongs to {known.component_name}"
                if known.component_name != name
                else "was used or released"
            )
        )
        have = ", ".join(p.id for p in live) or "none"
        raise RollbackError(f"rollback point {point_id!r} {why}; live points of {name}: {have}")
    return point


def _target(ctx: Context, slot: ComponentSlot, version: Version) -> tuple[LoadedVersion, bool]:
    loaded = slot.loaded.get(version)
    if loaded is not None:
        return loaded, False
    descriptor = ctx.registry.get(slot.name, version)
    verify_integrity(descriptor)
    return load_version(descriptor, ctx.settings.swap_timeout), True


class RollbackOperation:
    def __init__(
        self,
        ctx: Context,
        slot: ComponentSlot,
        point: RollbackPoint,
        actor: str,
        reason: str | None = None,
    ):
        self.ctx, self.slot, self.point, self.actor = ctx, slot, point, actor
        self.started = time.perf_counter()
        self.op_id = new_id("rb")
        self.current = slot.active
        self.config: ConfigReplacement | None = None  # the config file going back
        self.warnings: list[str] = []
        self.journal = {
            "op_id": self.op_id,
            "kind": "rollback",
            "component": slot.name,
            "from_version": str(self.current.version),
            "to_version": point.version,
            "strategy": "rollback",
            "actor": actor,
        }
        self.reason = reason

    def result(self, status: UpgradeStatus, error: NoodleError | None = None) -> UpgradeResult:
        elapsed = time.perf_counter() - self.started
        return UpgradeResult(
            request_id=self.op_id,
            success=status is UpgradeStatus.SUCCEEDED,
            component_name=self.slot.name,
            from_version=str(self.current.version),
            to_version=self.point.version,
            status=status,
            execution_time=elapsed,
            strategy="rollback",
            path=[self.point.version],
            rollback_point=self.point,
            metrics={"total_ms": elapsed * 1e3, **self._config_metrics()},
            error_message=error.message if error else None,
            error_code=error.code if error else None,
            warnings=list(self.warnings),
            completed_at=time.time(),
        )

    def _config_metrics(self) -> dict[str, object]:
        if self.config is None:
            return {}
        upgrade_backups = backup_folder(self.ctx.project, self.point.upgrade_id)
        restored_from = upgrade_backups / self.config.relative
        described = {**self.config.describe(), "restored_from": str(restored_from)}
        return {"config": described}

    def refuse(self, error: NoodleError) -> UpgradeResult:
        self.ctx.store.record_refusal(
            **self.journal, error_code=error.code, error_message=error.message, reason=self.reason
        )
        self.ctx.events.publish(
            "rollback.refused", self.slot.name, id=self.op_id, error=error.message
        )
        return self.result(UpgradeStatus.REFUSED, error)

    def run(self) -> UpgradeResult:
        with responsive_gil(self.ctx.settings.operation_switch_interval):
            return self._run()

    def _run(self) -> UpgradeResult:
        ctx, slot, point = self.ctx, self.slot, self.point
        version = Version(point.version)
        try:
            check_rollback(
                slot.name,
                version,
                active=ctx.active_descriptors(),
                available=ctx.registry.available(),
            )
        except NoodleError as exc:
            return self.refuse(exc)
        ctx.store.begin_operation(**self.journal, path=[point.version], reason=self.reason)
        self._stage("journaled")
        fresh_target: LoadedVersion | None = None
        try:
            target, fresh = _target(ctx, slot, version)
            fresh_target = target if fresh else None
            self._stage("loaded")
            with reported_as(RESTORE_FAILED):
                self.config = stage_restore(ctx.project, point.upgrade_id, self.op_id)
            with slot.quiesced(ctx.settings.swap_timeout):
                if self.config is not None:
                    with reported_as(RESTORE_FAILED):
                        self.config.commit()
                saved = ctx.store.rollback_point_state(point.id) if fresh else None
                return_state(self.current, target, saved)
                switch_ms = slot.switch(target) * 1e3
            self._stage("switched")
        except NoodleError as exc:
            if fresh_target is not None:  # loaded from the store for this rollback only
                unload_package(fresh_target.package)
            self._revert_config()
            return self._finish(UpgradeStatus.FAILED, exc)
        return self._finish(UpgradeStatus.SUCCEEDED, switch_ms=switch_ms)

    def _revert_config(self) -> None:
        if self.config is None:
            return
        problem = self.config.revert()
        if problem is None:
            self.config = None  # the file is as it was: nothing to report
        else:
            self.warnings.append(problem)

    def _stage(self, name: str) -> None:
        """Progress for live watchers: ``journaled``, ``loaded``, ``switched``; the
        outcome event follows the commit."""
        self.ctx.events.announce("rollback.stage", self.slot.name, id=self.op_id, stage=name)

    def _finish(
        self, status: UpgradeStatus, error: NoodleError | None = None, switch_ms: float = 0.0
    ) -> UpgradeResult:
        done = self.result(status, error)
        succeeded = status is UpgradeStatus.SUCCEEDED
        if succeeded:
            done.metrics["switch_ms"] = switch_ms
        self.ctx.store.complete_operation(
            op_id=self.op_id,
            status=status,
            actor=self.actor,
            error_code=done.error_code,
            error_message=done.error_message,
            new_active=self.point.version if succeeded else None,
            consumed_point_id=self.point.id if succeeded else None,
            metrics=done.metrics,
        )
        stamp_total(done, self.started)
        self.ctx.events.publish(f"rollback.{status}", self.slot.name, **done.to_dict())
        return done
