"""An upgrade as a transaction, after OTP's release_handler.

validate → journal intent → load in isolation → health check → **switch** (the point
of no return) → post-check → commit. Anything that fails before the switch leaves the
process exactly as it was; anything that fails after it switches back. The store gets
the intent before any work and the outcome after, so a crash anywhere is recoverable.

A component's own config file (``[component.config]``) follows the code: it is migrated,
validated and staged beside the old file once the new version is loaded, and put in
place with the switch; switching back puts the old file back.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from packaging.version import Version

from noodle_upgrade.analysis.diff import bump_finding, suggested_bump
from noodle_upgrade.config import origin
from noodle_upgrade.engine.config_migration import (
    MIGRATION_FAILED,
    ConfigPlan,
    Transform,
    Validate,
    migrate_config,
    plan_config,
)
from noodle_upgrade.engine.integrity import verify_integrity
from noodle_upgrade.engine.planner import UpgradePlan, plan_upgrade
from noodle_upgrade.errors import (
    ConfigError,
    HotSwapError,
    NoodleError,
    RollbackError,
    StoreError,
    ValidationError,
)
from noodle_upgrade.models import (
    BumpKind,
    RollbackPoint,
    UpgradeRequest,
    UpgradeResult,
    UpgradeStatus,
    ValidationLevel,
    new_id,
)
from noodle_upgrade.runtime.config_files import (
    ConfigReplacement,
    read_config,
    render_config,
    reported_as,
    stage_replacement,
)
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.gil import responsive_gil
from noodle_upgrade.runtime.loader import (
    LoadedVersion,
    call_with_deadline,
    convert,
    load_version,
    restore_into,
    run_health_check,
    snapshot_of,
    unload_package,
)
from noodle_upgrade.runtime.rollout import Exposure
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.strategies import WEIGHTED, StrategyConfig, check_applicable


def pickled_state(state: Any) -> bytes | None:
    """The state kept with a rollback point for after a restart; best effort."""
    if state is None:
        return None
    try:
        return pickle.dumps(state)
    except Exception:
        return None


def return_state(current: LoadedVersion, target: LoadedVersion, saved: bytes | None) -> None:
    """Give ``target`` the state to continue with when going back from ``current``.

    The newer version's ``downgrade`` hook converts what was written since, so nothing
    is lost; without one, the target keeps (or gets back) the rollback point's state.
    """
    if not current.descriptor.stateful and not target.descriptor.stateful:
        return
    downgrade = current.hook(current.descriptor.downgrade)
    try:
        if downgrade is not None:
            state = current.snapshot()
            target.restore(convert(downgrade, state, str(target.version), pooled=current.pooled))
        elif saved is not None:
            target.restore(pickle.loads(saved))
    except Exception as exc:
        raise RollbackError(
            f"moving the state of {current.descriptor.key} back to {target.version} failed: "
            f"{type(exc).__name__}: {exc}; {current.version} stays active",
            code="restore-failed",
        ) from exc


def stamp_total(result: UpgradeResult, started: float) -> None:
    elapsed = time.perf_counter() - started
    result.execution_time = elapsed
    result.metrics["total_ms"] = elapsed * 1e3


def migrate_chain(
    state: Any, old: LoadedVersion, steps: list[LoadedVersion], *, pooled: bool
) -> Any:
    """Carry ``state`` from ``old`` through every step's ``migrate`` hook, in order."""
    previous = str(old.version)
    for step in steps:
        migrate = step.hook(step.descriptor.migrate)
        if migrate is not None:
            state = convert(migrate, state, previous, pooled=pooled)
        previous = str(step.version)
    return state


def migrate_state(old: LoadedVersion, steps: list[LoadedVersion]) -> bytes | None:
    """Move the old instance's state into the new one through every step's hook."""
    state = old.snapshot()
    saved = pickled_state(state)
    steps[-1].restore(migrate_chain(state, old, steps, pooled=old.pooled))
    return saved


class UpgradeTransaction:
    def __init__(
        self,
        ctx: Context,
        slot: ComponentSlot,
        request: UpgradeRequest,
        strategy: StrategyConfig,
        target: Version | None,
    ) -> None:
        self.ctx = ctx
        self.slot = slot
        self.request = request
        self.strategy = strategy
        self.target = target
        self.timeout = ctx.settings.swap_timeout
        self.deadline = time.perf_counter() + ctx.settings.upgrade_timeout
        self.warnings: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.promoted: tuple[LoadedVersion, LoadedVersion] | None = None
        self.state_moved = False  # a rolling upgrade moved it member by member
        self.config: ConfigReplacement | None = None  # the config file's next content
        self.started = time.perf_counter()

    # -- before the point of no return -------------------------------------------------

    def validate(self) -> UpgradePlan:
        settings = self.ctx.settings
        for setting, what in (
            ("runtime_upgrade_enabled", "runtime upgrades"),
            ("hot_swap_enabled", "hot-swapping"),
        ):
            if not getattr(settings, setting):
                raise ValidationError(
                    f"{what} are disabled by configuration ({origin(settings, setting)})",
                    code="disabled",
                )
        name = self.slot.name
        if self.target is None:  # the newest: versions installed since the last scan count
            self.ctx.registry.rescan()
        else:
            self.ctx.registry.ensure(name, self.target)
            broken = self.ctx.registry.broken(name, self.target)
            if broken is not None:
                raise broken
        plan = plan_upgrade(
            name,
            self.target,
            current=self.slot.active.version,
            available=self.ctx.registry.available(),
            active=self.ctx.active_descriptors(),
            constraints=self.ctx.project.components,
        )
        self.request.target_version = str(plan.to_version)
        self.warnings.extend(plan.warnings)
        for step in plan.steps:
            verify_integrity(step)
        self._apply_level(plan)
        self._check_api(plan)
        check_applicable(self.strategy.name, plan.target)
        active = self.slot.active.descriptor
        if plan.target.pool_size != active.pool_size:
            raise ValidationError(
                f"{plan.target.manifest_path}: {plan.target.key} runs {plan.target.pool_size} "
                f"instance(s), the active {active.key} {active.pool_size}; an upgrade replaces "
                "instances one for one",
                code="pool-size-changed",
            )
        return plan

    def _apply_level(self, plan: UpgradePlan) -> None:
        strict = self.ctx.settings.validation_level is ValidationLevel.STRICT
        findings = [warning for step in plan.steps for warning in step.warnings]
        migrates = any(step.migrate for step in plan.steps)
        if plan.target.stateful and plan.bump is BumpKind.MAJOR and not migrates:
            findings.append(
                f"{plan.target.manifest_path}: a major upgrade of stateful "
                f"{plan.component} declares no migrate hook on its path"
            )
        if findings and strict:
            raise ValidationError(
                "strict validation refuses: " + "; ".join(findings), code="manifest-error"
            )
        self.warnings.extend(findings)

    def _check_api(self, plan: UpgradePlan) -> None:
        """Change analysis: the API the callers see, before and after. A declared bump
        smaller than the change (breaks in a minor, additions in a patch) is refused at
        the strict level and a warning at the normal one."""
        level = self.ctx.settings.validation_level
        if level is ValidationLevel.PERMISSIVE:
            return
        try:
            change = self.ctx.apis.diff(self.slot.active.descriptor, plan.target)
        except NoodleError as exc:
            self.warnings.append(f"change analysis skipped: {exc.message}")
            return
        self.metrics["api"] = {
            "breaking": len(change.breaking),
            "additions": len(change.additions),
            "suggested_bump": str(suggested_bump(change)),
        }
        finding = bump_finding(change, plan.bump, old_version=plan.from_version)
        if finding is None:
            return
        if level is ValidationLevel.STRICT:
            raise ValidationError(f"strict validation refuses: {finding}", code="understated-bump")
        self.warnings.append(finding)

    def _time_left(self) -> float:
        """Each step's own limit, cut short by what remains of the whole upgrade's."""
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise HotSwapError(
                f"upgrade of {self.slot.name} ran past its upgrade_timeout "
                f"({self.ctx.settings.upgrade_timeout:g} s) before the switch; nothing changed",
                code="timeout",
            )
        return min(self.timeout, left)

    def load(self, plan: UpgradePlan) -> list[LoadedVersion]:
        loaded: list[LoadedVersion] = []
        started = time.perf_counter()
        try:
            for step in plan.steps:
                final = step is plan.target
                loaded.append(load_version(step, self._time_left(), instantiate=final))
            self.metrics["load_ms"] = (time.perf_counter() - started) * 1e3
            started = time.perf_counter()
            run_health_check(loaded[-1], self._time_left())
            self.metrics["health_ms"] = (time.perf_counter() - started) * 1e3
        except BaseException:
            self.discard(loaded)
            raise
        return loaded

    def discard(self, loaded: list[LoadedVersion]) -> None:
        kept = set(map(id, self.slot.loaded.values()))
        for version in loaded:
            if id(version) not in kept:
                unload_package(version.package)

    def prepare_config(self, plan: UpgradePlan, loaded: list[LoadedVersion]) -> None:
        """Migrate the component's config file and check the result, then stage it beside
        the file with a backup of the old one; the switch puts it in place. Everything
        that can fail fails here, before any exposure. Hooks come from ``loaded``."""
        with reported_as(MIGRATION_FAILED):
            config_plan = plan_config(plan.from_version, plan.steps)
            if config_plan is None:
                return
            path = self.ctx.project.root / config_plan.file
            if not path.exists():
                self.warnings.append(
                    f"{path}: not found, so there is no config to migrate "
                    f"({plan.target.key} declares it in [component.config])"
                )
                return
            current = read_config(path)
            transforms, validate = self._config_hooks(config_plan, loaded)
            migrated = migrate_config(config_plan, current, transforms, validate)
            content = render_config(path, migrated)  # a value the format cannot hold fails
            changed = migrated != current  # unchanged: the file keeps its comments
            self.metrics["config"] = {"file": config_plan.file, "backup": None, "changed": changed}
            if changed:
                self.config = stage_replacement(
                    self.ctx.project, self.request.request_id, config_plan.file, content
                )
                self.metrics["config"].update(self.config.describe())

    def _config_hooks(
        self, config_plan: ConfigPlan, loaded: list[LoadedVersion]
    ) -> tuple[dict[Version, Transform], Validate | None]:
        """Each step's ``transform`` from its own loaded version, the target's ``validate``."""
        by_version = {version.version: version for version in loaded}
        try:
            transforms = {
                step.version: hook
                for step in config_plan.steps
                if (hook := self._bounded(by_version[step.version], step.migration.transform))
            }
            return transforms, self._bounded(loaded[-1], config_plan.validate)
        except NoodleError as exc:  # a hook the loaded code does not have
            raise ConfigError(
                f"config migration of {config_plan.component} {config_plan.target} "
                f"({config_plan.file}): {exc.message}"
            ) from exc

    def _bounded(self, version: LoadedVersion, reference: str | None) -> Callable[..., Any] | None:
        """``version``'s hook, cut off when the upgrade's time runs out."""
        hook = version.hook(reference)
        if hook is None:
            return None

        def bounded(*args: Any) -> Any:
            what = f"hook {reference!r} of {version.descriptor.key}"
            return call_with_deadline(partial(hook, *args), self._time_left(), what)

        return bounded

    def _commit_config(self) -> None:
        if self.config is not None:
            with reported_as(MIGRATION_FAILED):
                self.config.commit()

    def _revert_config(self) -> None:
        """The old version gets the file it read (or the staged one is dropped)."""
        if self.config is None:
            return
        committed = self.config.committed
        problem = self.config.revert()
        if problem is not None:
            self.warnings.append(problem)
        elif committed:
            self.metrics["config"]["restored"] = True

    def expose(self, loaded: list[LoadedVersion]) -> None:
        """Weighted, shadow and rolling strategies show the candidate live traffic first."""
        name, candidate = self.strategy.name, loaded[-1]
        if name not in (*WEIGHTED, "shadow", "rolling"):
            return
        remaining = self.deadline - time.perf_counter()
        exposure = Exposure(
            self.slot,
            candidate,
            self.strategy,
            self.publish,
            deadline=time.monotonic() + remaining,
            health_timeout=self.timeout,
        )
        started = time.perf_counter()
        try:
            if name == "shadow":
                exposure.shadow()
            elif name == "rolling":
                old = self.slot.active
                exposure.rolling(
                    old, self._mover(old, loaded), self._undoer(old, candidate), self.timeout
                )
                self.state_moved = True
            else:
                exposure.weighted(self.strategy.steps())
        finally:
            self.metrics["steps"] = exposure.steps
            self.metrics["exposure_ms"] = (time.perf_counter() - started) * 1e3

    def _mover(self, old: LoadedVersion, loaded: list[LoadedVersion]) -> Callable[[int], None]:
        def move(index: int) -> None:
            state = snapshot_of(old.instances[index])
            state = migrate_chain(state, old, loaded, pooled=False)
            restore_into(loaded[-1].instances[index], state)

        return move

    def _undoer(self, old: LoadedVersion, new: LoadedVersion) -> Callable[[int], None]:
        downgrade = new.hook(new.descriptor.downgrade)

        def undo(index: int) -> None:
            # Without a downgrade hook the old member keeps the state it had when it
            # was replaced: it served no call since.
            if downgrade is not None:
                state = downgrade(snapshot_of(new.instances[index]), str(old.version))
                restore_into(old.instances[index], state)

        return undo

    def publish(self, kind: str, **data: Any) -> None:
        self.ctx.events.publish(kind, self.slot.name, id=self.request.request_id, **data)

    def stage(self, name: str) -> None:
        """Progress for live watchers: ``journaled`` (``upgrade.started``), ``loaded``,
        ``exposed``, ``switched`` (the point of no return is behind), ``checked``; the
        outcome event follows the commit."""
        self.ctx.events.announce(
            "upgrade.stage", self.slot.name, id=self.request.request_id, stage=name
        )

    # -- the point of no return ----------------------------------------------------------

    def switch(self, old: LoadedVersion, loaded: list[LoadedVersion]) -> bytes | None:
        if self.state_moved:  # rolling: the members and their state moved one by one
            self._commit_config()
            self.metrics["switch_ms"] = self.slot.switch(loaded[-1]) * 1e3
            self.discard(loaded[:-1])
            return pickled_state(old.snapshot())  # the old members serve nothing since
        held = time.perf_counter()
        try:
            with self.slot.quiesced(self.timeout):
                self._commit_config()  # while no call of a stateful component runs
                saved = None
                if loaded[-1].descriptor.stateful:
                    try:
                        saved = migrate_state(old, loaded)
                    except Exception as exc:
                        raise NoodleError(
                            f"state migration of {self.slot.name} {old.version} -> "
                            f"{loaded[-1].version} failed: {type(exc).__name__}: {exc}; "
                            "nothing was changed",
                            code="migration-failed",
                        ) from exc
                self.metrics["switch_ms"] = self.slot.switch(loaded[-1]) * 1e3
        except BaseException:
            self.discard(loaded)  # a failed migration or drain: unload what was loaded
            raise
        if loaded[-1].descriptor.stateful:  # how long callers waited at the gate
            self.metrics["held_ms"] = (time.perf_counter() - held) * 1e3
        self.discard(loaded[:-1])
        return saved

    def switch_back(self, old: LoadedVersion, new: LoadedVersion, saved: bytes | None) -> None:
        with self.slot.quiesced(self.timeout):
            self._revert_config()
            try:
                return_state(new, old, saved)
            except RollbackError as exc:
                # The new version served for the post-check only; the old instance still
                # holds the state it had at the switch, so going back loses at most that.
                self.warnings.append(exc.message)
            self.slot.switch(old)
        self.slot.loaded.pop(new.version, None)
        unload_package(new.package)

    # -- the whole procedure -----------------------------------------------------------

    def run(self) -> UpgradeResult:
        with responsive_gil(self.ctx.settings.operation_switch_interval):
            try:
                plan = self.validate()
            except NoodleError as exc:
                return self.refuse(exc)
            self._begin(plan)
            try:
                loaded = self.load(plan)
            except NoodleError as exc:
                return self._finish(UpgradeStatus.FAILED, plan, error=exc)
            self.stage("loaded")
            try:
                self.prepare_config(plan, loaded)
            except NoodleError as exc:
                self.discard(loaded)
                return self._finish(UpgradeStatus.FAILED, plan, error=exc)
        try:
            self.expose(loaded)
            self.stage("exposed")
        except NoodleError as exc:  # it served live calls, so this is a rollback
            with responsive_gil(self.ctx.settings.operation_switch_interval):
                self.discard(loaded)
                self._revert_config()
                return self._finish(UpgradeStatus.ROLLED_BACK, plan, error=exc)
        with responsive_gil(self.ctx.settings.operation_switch_interval):
            return self._promote(plan, loaded)

    def _promote(self, plan: UpgradePlan, loaded: list[LoadedVersion]) -> UpgradeResult:
        """The point of no return and what follows it: switch, post-check, commit."""
        old = self.slot.active
        try:
            saved = self.switch(old, loaded)
        except NoodleError as exc:
            self._revert_config()
            return self._finish(UpgradeStatus.FAILED, plan, error=exc)
        new = loaded[-1]
        self.stage("switched")
        try:
            if self.ctx.settings.validation_level is not ValidationLevel.PERMISSIVE:
                run_health_check(new, self.timeout)
        except NoodleError as exc:
            self.switch_back(old, new, saved)
            return self._finish(UpgradeStatus.ROLLED_BACK, plan, error=exc)
        self.stage("checked")
        point = RollbackPoint(
            id=new_id("rp"),
            component_name=self.slot.name,
            version=str(old.version),
            upgrade_id=self.request.request_id,
            created_at=time.time(),
            to_version=str(new.version),
        )
        try:
            result = self._finish(UpgradeStatus.SUCCEEDED, plan, point=point, saved=saved)
            self.promoted = (old, new)
            return result
        except StoreError as exc:
            self.switch_back(old, new, saved)
            return self._finish(UpgradeStatus.FAILED, plan, error=exc)

    # -- journal -------------------------------------------------------------------------

    def _begin(self, plan: UpgradePlan) -> None:
        self.ctx.store.begin_operation(
            op_id=self.request.request_id,
            kind="upgrade",
            component=self.slot.name,
            from_version=str(plan.from_version),
            to_version=str(plan.to_version),
            strategy=self.strategy.name,
            actor=self.request.requested_by,
            path=[str(step.version) for step in plan.steps],
        )
        self.ctx.events.publish(
            "upgrade.started",
            self.slot.name,
            id=self.request.request_id,
            from_version=str(plan.from_version),
            to_version=str(plan.to_version),
            strategy=self.strategy.name,
        )

    def _result(
        self,
        status: UpgradeStatus,
        to_version: str,
        path: list[str],
        error: NoodleError | None = None,
        point: RollbackPoint | None = None,
    ) -> UpgradeResult:
        elapsed = time.perf_counter() - self.started
        self.metrics["total_ms"] = elapsed * 1e3
        return UpgradeResult(
            request_id=self.request.request_id,
            success=status is UpgradeStatus.SUCCEEDED,
            component_name=self.slot.name,
            from_version=self.request.current_version,
            to_version=to_version,
            status=status,
            execution_time=elapsed,
            strategy=self.strategy.name,
            path=path,
            rollback_point=point,
            metrics=dict(self.metrics),
            error_message=error.message if error else None,
            error_code=error.code if error else None,
            warnings=list(self.warnings),
            completed_at=time.time(),
        )

    def refuse(self, error: NoodleError) -> UpgradeResult:
        target = self.request.target_version
        self.ctx.store.record_refusal(
            op_id=self.request.request_id,
            kind="upgrade",
            component=self.slot.name,
            from_version=self.request.current_version,
            to_version=target,
            strategy=self.strategy.name,
            actor=self.request.requested_by,
            error_code=error.code,
            error_message=error.message,
        )
        self.ctx.events.publish(
            "upgrade.refused",
            self.slot.name,
            id=self.request.request_id,
            to_version=target,
            code=error.code,
            error=error.message,
        )
        return self._result(UpgradeStatus.REFUSED, target, [], error)

    def _finish(
        self,
        status: UpgradeStatus,
        plan: UpgradePlan,
        *,
        error: NoodleError | None = None,
        point: RollbackPoint | None = None,
        saved: bytes | None = None,
    ) -> UpgradeResult:
        result = self._result(
            status, str(plan.to_version), [str(s.version) for s in plan.steps], error, point
        )
        self.ctx.store.complete_operation(
            op_id=self.request.request_id,
            status=status,
            actor=self.request.requested_by,
            error_code=result.error_code,
            error_message=result.error_message,
            new_active=result.to_version if result.success else None,
            rollback_point=point,
            point_state=saved,
            metrics=result.metrics,
        )
        stamp_total(result, self.started)  # the caller waited for the commit too
        self.ctx.events.publish(f"upgrade.{status}", self.slot.name, **result.to_dict())
        return result
