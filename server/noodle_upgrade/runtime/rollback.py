"""Going back to a rollback point: a reference switch plus a state restore.

The rollback point's version is normally still loaded (retention keeps it), so this is
as fast as the switch itself; after a restart it is loaded again from the store and
gets the state saved with the point.
"""

from __future__ import annotations

import time

from packaging.version import Version

from noodle_upgrade.config import origin
from noodle_upgrade.engine.integrity import verify_integrity
from noodle_upgrade.engine.planner import check_rollback
from noodle_upgrade.errors import NoodleError, RollbackError
from noodle_upgrade.models import RollbackPoint, UpgradeResult, UpgradeStatus, new_id
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.loader import LoadedVersion, load_version, unload_package
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.transaction import return_state


def find_point(ctx: Context, name: str, point_id: str | None) -> RollbackPoint:
    if not ctx.settings.rollback_enabled:
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


def rollback(ctx: Context, slot: ComponentSlot, point: RollbackPoint, actor: str) -> UpgradeResult:
    started = time.perf_counter()
    op_id = new_id("rb")
    current = slot.active
    version = Version(point.version)
    common = {
        "op_id": op_id,
        "kind": "rollback",
        "component": slot.name,
        "from_version": str(current.version),
        "to_version": point.version,
        "strategy": "rollback",
        "actor": actor,
    }

    def result(status: UpgradeStatus, error: NoodleError | None = None) -> UpgradeResult:
        elapsed = time.perf_counter() - started
        return UpgradeResult(
            request_id=op_id,
            success=status is UpgradeStatus.SUCCEEDED,
            component_name=slot.name,
            from_version=str(current.version),
            to_version=point.version,
            status=status,
            execution_time=elapsed,
            strategy="rollback",
            path=[point.version],
            rollback_point=point,
            metrics={"total_ms": elapsed * 1e3},
            error_message=error.message if error else None,
            error_code=error.code if error else None,
            completed_at=time.time(),
        )

    try:
        check_rollback(
            slot.name,
            version,
            active=ctx.active_descriptors(),
            available=ctx.registry.available(),
        )
    except NoodleError as exc:
        ctx.store.record_refusal(**common, error_code=exc.code, error_message=exc.message)
        ctx.events.publish("rollback.refused", slot.name, id=op_id, error=exc.message)
        return result(UpgradeStatus.REFUSED, exc)

    ctx.store.begin_operation(**common, path=[point.version])
    fresh_target: LoadedVersion | None = None
    try:
        target, fresh = _target(ctx, slot, version)
        fresh_target = target if fresh else None
        with slot.quiesced(ctx.settings.swap_timeout):
            saved = ctx.store.rollback_point_state(point.id) if fresh else None
            return_state(current, target, saved)
            switch_ms = slot.switch(target) * 1e3
    except NoodleError as exc:
        if fresh_target is not None:  # loaded from the store for this rollback only
            unload_package(fresh_target.package)
        ctx.store.complete_operation(
            op_id=op_id,
            status=UpgradeStatus.FAILED,
            actor=actor,
            error_code=exc.code,
            error_message=exc.message,
        )
        ctx.events.publish("rollback.failed", slot.name, id=op_id, error=exc.message)
        return result(UpgradeStatus.FAILED, exc)
    done = result(UpgradeStatus.SUCCEEDED)
    done.metrics["switch_ms"] = switch_ms
    ctx.store.complete_operation(
        op_id=op_id,
        status=UpgradeStatus.SUCCEEDED,
        actor=actor,
        new_active=point.version,
        consumed_point_id=point.id,
        metrics=done.metrics,
    )
    newer = [p.id for p in ctx.store.rollback_points(slot.name) if p.created_at > point.created_at]
    if newer:  # points taken after this one would now lead forward, not back
        ctx.store.release_rollback_points(newer, actor=actor)
    ctx.events.publish("rollback.succeeded", slot.name, **done.to_dict())
    return done
