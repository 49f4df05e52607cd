"""``Runtime``: the engine inside the application process (DESIGN §3, Python API)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from packaging.version import Version

from noodle_upgrade.config import Settings, load_settings
from noodle_upgrade.control.server import ControlServer
from noodle_upgrade.engine.decision import Decision
from noodle_upgrade.engine.integrity import verify_integrity
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.engine.planner import (
    UpgradePlan,
    activation_order,
    plan_upgrade,
    resolve_activation,
)
from noodle_upgrade.engine.registry import Registry
from noodle_upgrade.engine.versions import parse_version
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.models import ProjectConfig, RollbackPoint, UpgradeRequest, UpgradeResult
from noodle_upgrade.runtime.blue_green import WarmWindow
from noodle_upgrade.runtime.cache import VersionedCache
from noodle_upgrade.runtime.config_files import restore_after_crash
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.events import Event, EventBus
from noodle_upgrade.runtime.gil import responsive_gil
from noodle_upgrade.runtime.handle import Handle
from noodle_upgrade.runtime.loader import load_version, run_health_check, unload_package
from noodle_upgrade.runtime.proposals import DeskHooks
from noodle_upgrade.runtime.rollback import RollbackOperation, find_point
from noodle_upgrade.runtime.routing import routing_key_scope
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.strategies import resolve_strategy
from noodle_upgrade.runtime.transaction import UpgradeTransaction
from noodle_upgrade.runtime.triggers import TriggerHooks, TriggerMonitor, assess
from noodle_upgrade.runtime.update_loop import UpdateLoop
from noodle_upgrade.store import HistoryEntry, Store


class Window(Protocol):
    def cancel(self) -> None: ...


class Runtime:
    """Loads a project's components, hands out handles and swaps versions live.

    Open it with :meth:`Runtime.open`; use it as a context manager so the store closes.
    """

    def __init__(self, ctx: Context, warnings: list[str]) -> None:
        self._ctx = ctx
        self.warnings = warnings
        self._busy: dict[str, str] = {}
        self._busy_lock = threading.Lock()
        # Operations on different components run one at a time: each validates against
        # the others' active versions, and two at once could each pass and break together.
        self._operations = threading.Lock()
        self._closed = False
        # Watches that an operation on the component ends: blue-green warm windows and
        # trigger observations.
        self._windows: dict[str, Window] = {}
        self._monitor: TriggerMonitor | None = None
        self._submitted: dict[str, Future[UpgradeResult]] = {}
        self._control: ControlServer | None = None
        self._updates = UpdateLoop(
            ctx,
            DeskHooks(
                plan=self.plan,
                upgrade=lambda name, version, strategy, actor: self.upgrade(
                    name, version, strategy=strategy, actor=actor
                ),
                rollback=lambda name, actor, reason: self.rollback(
                    name, actor=actor, reason=reason
                ),
                busy=lambda name: name in self._busy,
            ),
        )

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        project: str | Path = ".",
        *,
        environment: str | None = None,
        settings: Mapping[str, object] | None = None,
        actor: str = "runtime",
        control: bool | None = None,
    ) -> Runtime:
        """Read ``noodle.toml``, open the store, recover, and activate every component.

        ``control`` serves the control endpoint (default: the ``control_enabled``
        setting, on unless ``NOODLE_CONTROL=0``), so that ``noodle`` commands, editors
        and the dashboard reach this runtime.
        """
        config = load_project(Path(project))
        if environment is not None:
            config = replace(config, environment=environment)
        resolved = load_settings(config.root, overrides=settings)
        logging.getLogger("noodle_upgrade").setLevel(resolved.log_level)
        store = Store.open(config.db_path)
        try:
            ctx = Context(config, resolved, store, Registry(config.store_dir), EventBus(store))
            warnings = [*config.warnings, *resolved.warnings, *ctx.registry.problems]
            interrupted = store.recover_interrupted(actor="recovery")
            for entry in interrupted:
                ctx.events.publish("upgrade.interrupted", entry.component, id=entry.id)
            # Before activation: a factory may read its config file when it starts.
            warnings.extend(restore_after_crash(config, [entry.id for entry in interrupted]))
            warnings.extend(_activate(ctx, actor))
        except BaseException:
            store.close()
            raise
        runtime = cls(ctx, warnings)
        try:
            if resolved.control_enabled if control is None else control:
                runtime._control = ControlServer(runtime, config.state_dir)
            if resolved.triggers_enabled:
                runtime._start_triggers()
            runtime._updates.start()
        except BaseException:
            runtime.close()
            raise
        return runtime

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._control is not None:
            self._control.close()
        self._updates.stop()
        if self._monitor is not None:
            self._monitor.stop()
        for window in list(self._windows.values()):
            window.cancel()
        self._ctx.store.close()
        for slot in self._ctx.slots.values():  # forget the modules of every version it loaded
            for loaded in slot.loaded.values():
                unload_package(loaded.package)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the public API -------------------------------------------------------------------

    @property
    def project(self) -> ProjectConfig:
        return self._ctx.project

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @property
    def store(self) -> Store:
        return self._ctx.store

    def load(self, name: str) -> Handle:
        """The handle of an active component; calls through it reach the active version."""
        return self._ctx.slot(name).handle

    def version(self, name: str) -> str:
        return str(self._ctx.slot(name).active.version)

    def cache(
        self, depends_on: Iterable[str], *, maxsize: int | None = 1024, name: str | None = None
    ) -> VersionedCache[Any, Any]:
        """A cache whose entries are dropped when what serves any of ``depends_on``
        changes: an upgrade, a rollback, or a rollout starting or ending. Nothing an old
        version computed is served after a swap (``rt.cache(depends_on=["parser"])``)."""
        names = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        slots = [self._ctx.slot(component) for component in names]

        def versions() -> tuple[tuple[Version, int], ...]:  # attribute reads, no lock
            return tuple([(slot.active.version, slot.generation) for slot in slots])

        return VersionedCache(versions, maxsize=maxsize, name=name or ",".join(names))

    def plan(self, name: str, version: str | None = None) -> UpgradePlan:
        """What an upgrade would do, without doing it (raises the refusal)."""
        slot = self._ctx.slot(name)
        target = parse_version(version) if version is not None else None
        if target is None:  # the newest: versions installed since the last scan count
            self._ctx.registry.rescan()
        else:
            self._ctx.registry.ensure(name, target)
        return plan_upgrade(
            name,
            target,
            current=slot.active.version,
            available=self._ctx.registry.available(),
            active=self._ctx.active_descriptors(),
            constraints=self._ctx.project.components,
        )

    def upgrade(
        self,
        name: str,
        version: str | None = None,
        *,
        strategy: str | None = None,
        actor: str = "api",
        **parameters: Any,
    ) -> UpgradeResult:
        """Upgrade ``name`` to ``version`` (default: the newest it may go to).

        Refusals and failures come back as a result with ``success=False``; misuse
        (unknown component, unknown strategy or parameter, malformed version) raises.
        """
        _, run = self._prepare(name, version, strategy, actor, parameters)
        return run()

    def submit(
        self,
        name: str,
        version: str | None = None,
        *,
        strategy: str | None = None,
        actor: str = "api",
        **parameters: Any,
    ) -> str:
        """Start an upgrade in the background and return its id at once (for rollouts
        that take minutes). Misuse raises here, before anything starts; the outcome is
        in :meth:`wait`, the events and the history."""
        request_id, run = self._prepare(name, version, strategy, actor, parameters)
        future: Future[UpgradeResult] = Future()

        def work() -> None:
            try:
                future.set_result(run())
            except BaseException as exc:
                future.set_exception(exc)

        self._submitted[request_id] = future
        threading.Thread(target=work, name=f"noodle: {request_id}", daemon=True).start()
        return request_id

    def wait(self, request_id: str, timeout: float | None = None) -> UpgradeResult:
        """The result of a submitted upgrade, once it is done."""
        future = self._submitted.get(request_id)
        if future is None:
            raise NoodleError(
                f"no upgrade {request_id!r} was submitted to this runtime", code="unknown-request"
            )
        try:
            return future.result(timeout)
        except TimeoutError:
            raise NoodleError(
                f"upgrade {request_id} is still running after {timeout:g} s", code="timeout"
            ) from None

    def _prepare(
        self,
        name: str,
        version: str | None,
        strategy: str | None,
        actor: str,
        parameters: Mapping[str, Any],
    ) -> tuple[str, Callable[[], UpgradeResult]]:
        """Check the request (misuse raises here); return its id and the operation to run."""
        slot = self._ctx.slot(name)
        chosen = resolve_strategy(strategy, parameters, self._ctx.settings)
        target = parse_version(version, "rt.upgrade version") if version is not None else None
        request = UpgradeRequest(
            component_name=name,
            target_version=str(target) if target else "",
            current_version=str(slot.active.version),
            strategy=chosen.name,
            parameters=dict(chosen.parameters),
            requested_by=actor,
        )
        transaction = UpgradeTransaction(self._ctx, slot, request, chosen, target)

        def run() -> UpgradeResult:
            result = self._operate(name, request.request_id, transaction.run, transaction.refuse)
            if chosen.name == "blue_green" and transaction.promoted and result.rollback_point:
                self._open_window(transaction, result.rollback_point)
            return result

        return request.request_id, run

    def routing_key(self, key: object) -> AbstractContextManager[None]:
        """Route every call made inside the block by ``key`` during rollouts, so one
        request (one key) sees one version throughout: ``with rt.routing_key(req_id):``."""
        return routing_key_scope(key)

    def rollback(
        self, name: str, to: str | None = None, *, actor: str = "api", reason: str | None = None
    ) -> UpgradeResult:
        """Go back to the last rollback point of ``name`` (or the point ``to``); ``reason``
        (why) is kept in the history and the audit log."""
        return self._rollback(name, to, actor, explicit=True, reason=reason)

    def _rollback(
        self, name: str, to: str | None, actor: str, *, explicit: bool, reason: str | None = None
    ) -> UpgradeResult:
        slot = self._ctx.slot(name)
        point = find_point(self._ctx, name, to, explicit=explicit)
        operation = RollbackOperation(self._ctx, slot, point, actor, reason)
        return self._operate(name, operation.op_id, operation.run, operation.refuse)

    def status(self) -> dict[str, Any]:
        components = {}
        for name, slot in sorted(self._ctx.slots.items()):
            components[name] = {
                "version": str(slot.active.version),
                "state": "upgrading" if name in self._busy else "active",
                "stateful": slot.stateful,
                "loaded": sorted(str(v) for v in slot.loaded),
                "rollback_points": [p.id for p in self._ctx.store.rollback_points(name)],
            }
        return {
            "live": True,
            "project": str(self._ctx.project.root),
            "environment": self._ctx.project.environment,
            "components": components,
            "pending": self.pending(),
        }

    # -- what the runtime proposes itself ---------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        """Open proposals (pending an operator, or deferred by policy), newest first."""
        return [record.to_dict() for record in self._ctx.store.proposals(open_only=True)]

    @property
    def proposals(self) -> list[dict[str, Any]]:
        """Every proposal the runtime filed (watcher, triggers, checks), newest first."""
        return [record.to_dict() for record in self._ctx.store.proposals(limit=100)]

    def approve(self, proposal_id: str, *, actor: str = "api") -> UpgradeResult:
        """Run a pending or deferred proposal now: the operator's approval is an explicit
        request, so policy is not asked again. Returns when the operation is done."""
        return self._updates.desk.approve(proposal_id, actor)

    def reject(
        self, proposal_id: str, *, reason: str | None = None, actor: str = "api"
    ) -> dict[str, Any]:
        """Close a proposal; its version is never proposed again automatically."""
        return self._updates.desk.reject(proposal_id, actor, reason).to_dict()

    def check_for_updates(self, *, actor: str = "api") -> list[dict[str, Any]]:
        """Look for newer versions now (the manual trigger): new git tags first, when a
        ``[sources.git]`` is set, then the store. Returns the open proposals found."""
        return [record.to_dict() for record in self._updates.check(actor)]

    def wait_until_watching(self, timeout: float | None = None) -> bool:
        """Block until the watcher has its watches in place; False when it is off or the
        timeout passed. Changes made after this returns True are noticed."""
        return self._updates.wait_until_watching(timeout)

    def history(self, component: str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        return self._ctx.store.history(component, limit)

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]:
        """Receive every engine event from now on; returns a function that unsubscribes."""
        return self._ctx.events.subscribe(subscriber)

    # -- internals -----------------------------------------------------------------------

    def _operate(
        self,
        name: str,
        op_id: str,
        run: Callable[[], UpgradeResult],
        refuse: Callable[[NoodleError], UpgradeResult],
    ) -> UpgradeResult:
        """Run one operation on ``name``: refused at once if another one holds it."""
        with self._busy_lock:
            holder = self._busy.setdefault(name, op_id)
            window = self._windows.pop(name, None) if holder == op_id else None
        if window is not None:  # a new operation ends a watch on the component
            window.cancel()
        if holder != op_id:
            return refuse(
                NoodleError(
                    f"component {name!r} is busy with operation {holder}; wait for it to finish",
                    code="busy",
                )
            )
        try:
            with self._operations:
                result = run()
                with responsive_gil(self._ctx.settings.operation_switch_interval):
                    self._retain(name)
                return result
        finally:
            with self._busy_lock:
                del self._busy[name]

    def assess(
        self, name: str, version: str | None = None, *, strategy: str | None = None
    ) -> Decision:
        """The decision engine's confidence in an upgrade, with its reasons (nothing runs)."""
        chosen = resolve_strategy(strategy, {}, self._ctx.settings).name
        return assess(self._ctx, self.plan(name, version), chosen)

    def _start_triggers(self) -> None:
        hooks = TriggerHooks(
            newest=self._newest_plan,
            propose_upgrade=partial(self._updates.desk.propose_upgrade, source="trigger"),
            propose_rollback=partial(self._updates.desk.propose_rollback, source="trigger"),
            claim=self._claim_window,
            release=self._release_window,
        )
        self._monitor = TriggerMonitor(self._ctx, hooks)

    def _newest_plan(self, name: str) -> UpgradePlan | None:
        try:
            return self.plan(name)
        except NoodleError:
            return None

    def _claim_window(self, name: str, window: Window) -> bool:
        with self._busy_lock:
            if name in self._busy or name in self._windows:
                return False
            self._windows[name] = window
            return True

    def _release_window(self, name: str, window: Window) -> None:
        with self._busy_lock:
            if self._windows.get(name) is window:
                del self._windows[name]

    def _open_window(self, transaction: UpgradeTransaction, point: RollbackPoint) -> None:
        assert transaction.promoted is not None
        old, new = transaction.promoted
        name = transaction.slot.name

        def switch_back(reason: str) -> None:
            self._rollback(name, point.id, "blue_green", explicit=False, reason=reason)

        window = WarmWindow(
            transaction.slot,
            old,
            new,
            transaction.strategy,
            transaction.publish,
            switch_back,
            self._ctx.settings.swap_timeout,
            partial(self._release_window, name),
        )
        if not self._claim_window(name, window):  # an operation came first: it decides
            window.cancel()

    def _retain(self, name: str) -> None:
        """Keep ``max_rollback_points`` points; unload versions no point needs."""
        store, slot = self._ctx.store, self._ctx.slots[name]
        points = store.rollback_points(name)
        limit = self._ctx.settings.max_rollback_points
        if len(points) > limit:
            store.release_rollback_points([p.id for p in points[limit:]], actor="retention")
            points = points[:limit]
        slot.release({Version(p.version) for p in points})


def _activate(ctx: Context, actor: str) -> list[str]:
    """Activate every component of ``[components]``: the lock, or the best version."""
    known = ctx.store.active_versions()
    locked = {name: Version(v) for name, v in known.items() if name in ctx.project.components}
    chosen, warnings = resolve_activation(ctx.project.components, ctx.registry.available(), locked)
    warnings += [warning for descriptor in chosen.values() for warning in descriptor.warnings]
    try:
        for name in activation_order(chosen):
            descriptor = chosen[name]
            verify_integrity(descriptor)
            loaded = load_version(descriptor, ctx.settings.swap_timeout)
            ctx.slots[name] = ComponentSlot(loaded)
            run_health_check(loaded, ctx.settings.swap_timeout)
            if locked.get(name) != descriptor.version:
                ctx.store.activate(name, str(descriptor.version), actor=actor)
            ctx.events.publish("component.activated", name, version=str(descriptor.version))
    except BaseException:
        for slot in ctx.slots.values():
            unload_package(slot.active.package)
        raise
    return warnings
