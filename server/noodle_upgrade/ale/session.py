"""``ale.enable`` / ``ale.disable``: wrap the targets, record, serve the live routes.

``enable(project, targets=("numpy.dot", "numpy.matmul"))`` replaces each dotted target
by a dispatcher's wrapper, set as the attribute of its module (``numpy.dot``). What is
caught is what looks the attribute up after that: ``np.dot(...)``, not a ``dot`` taken
with ``from numpy import dot`` before, nor ``a.dot(b)`` or ``a @ b``. ``disable()``
puts back the very objects it replaced (``numpy.dot is original`` again) and flushes
what was recorded; it also runs at interpreter exit.

``project`` says where the state store is:

- a project folder (``noodle.toml``): its ``.noodle/state.db``, opened with a connection
  of ALE's own. This works next to a ``Runtime`` of the same project in the same process
  (or another one): the store is SQLite in WAL mode;
- a path to a state database (``….db``, or any existing file): that file;
- a ``Store``, or a ``Runtime`` (its store): shared, never closed by ALE. Disable ALE
  before closing that runtime, or what is still buffered cannot be written.

One session per process. A second ``enable`` on the same store extends it (more
targets) and takes the new settings; on another store it is refused.

Routes: at enable, and whenever ``refresh_routes()`` is called (``ale.promotion`` calls
it after changing a status), the candidates whose status is ``promoted`` or ``canary``
are compiled and handed to the dispatchers, so a new process serves the routes the last
one left. A ``canary`` route serves only through a hook (``hooks``): it decides the share.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from noodle_upgrade.ale.dispatcher import (
    WARM_SECONDS,
    Dispatcher,
    DispatchStats,
    HookFactory,
    Route,
    compile_candidate,
)
from noodle_upgrade.ale.model import Status
from noodle_upgrade.ale.recorder import FLUSH_SECONDS, Limits, Recorder
from noodle_upgrade.ale.signature import route_guard
from noodle_upgrade.engine.manifest import PROJECT_FILE, load_project
from noodle_upgrade.errors import NoodleError, ValidationError
from noodle_upgrade.store.ale import AleStore, CandidateRecord
from noodle_upgrade.store.db import Store

if TYPE_CHECKING:
    from noodle_upgrade.runtime.runtime import Runtime

log = logging.getLogger("noodle_upgrade.ale")

DEFAULT_TARGETS = ("numpy.dot", "numpy.matmul")
# A sample (signature, timing, call site, recording) costs as much as 6-10 calls of
# numpy.dot on small arrays: one in 1024 keeps it under 1% of the unrouted path, and the
# warm-up samples every early call anyway.
DEFAULT_SAMPLE_RATE = 1 / 1024
TARGET_FORM = "a dotted path 'module.attribute' to a function, e.g. 'numpy.dot'"

Project = str | os.PathLike[str] | Store


@dataclass(frozen=True)
class _Target:
    name: str  # "numpy.dot"
    owner: Any  # the module (or class) holding the attribute
    attribute: str
    original: Any


@dataclass(frozen=True)
class _Patch:
    target: _Target
    dispatcher: Dispatcher


class Session:
    """What ``enable`` set up: the wrapped targets, the recorder, the routes."""

    def __init__(
        self,
        store: Store,
        *,
        owns_store: bool,
        interval: int,
        keep_inputs: bool,
        hooks: HookFactory | None,
        warm_seconds: float,
        flush_seconds: float,
        limits: Limits,
    ) -> None:
        self.store = AleStore(store)
        self._owns_store = owns_store
        self._interval = interval
        self._hooks = hooks
        self._warm_seconds = warm_seconds
        self._patches: dict[str, _Patch] = {}
        self._routes: dict[str, Route] = {}  # candidate id -> its route, kept across refreshes
        self._refreshing = threading.Lock()
        self._closed = False
        self.recorder = Recorder(
            self.store,
            self._calls,
            keep_inputs=keep_inputs,
            flush_seconds=flush_seconds,
            limits=limits,
        )

    @property
    def path(self) -> Path:
        """The state database this session records into."""
        return self.store.store.path

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self._patches)

    def dispatcher(self, target: str) -> Dispatcher:
        return self._patches[target].dispatcher

    def stats(self) -> dict[str, DispatchStats]:
        return {name: patch.dispatcher.stats() for name, patch in self._patches.items()}

    def flush(self) -> int:
        """Write what was recorded now; returns how many signatures it wrote."""
        return self.recorder.flush()

    def refresh_routes(self) -> int:
        """Load the live routes from the store; returns how many serve now."""
        with self._refreshing:
            records = self.store.live_routes(self._patches)
            # A promoted route before a canary of the same signature, then the fastest.
            records.sort(key=lambda r: (r.status is not Status.PROMOTED, -(r.speedup or 0.0)))
            routes = [route for record in records if (route := self._route(record)) is not None]
            self._routes = {route.record.id: route for route in routes}
            for name, patch in self._patches.items():
                patch.dispatcher.set_routes(r for r in routes if r.record.function == name)
            return sum(patch.dispatcher.stats().routes for patch in self._patches.values())

    def close(self) -> None:
        """``ale.disable()`` for this session (nothing when it is not the enabled one)."""
        disable(self)

    def _shut_down(self) -> None:
        """Restore every original, flush, and close the store if ALE opened it."""
        if self._closed:
            return
        self._closed = True
        for patch in reversed(list(self._patches.values())):
            _restore(patch)
        try:
            self.recorder.close()
        finally:
            if self._owns_store:
                self.store.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        disable(self)

    # -- inside --------------------------------------------------------------------------

    def _calls(self) -> dict[str, int]:
        return {name: patch.dispatcher.calls for name, patch in self._patches.items()}

    def _configure(
        self, *, interval: int, keep_inputs: bool, hooks: HookFactory | None, warm_seconds: float
    ) -> None:
        self._interval = interval
        self._warm_seconds = warm_seconds
        self.recorder.keep_inputs = keep_inputs
        if hooks is not None and hooks is not self._hooks:
            self._hooks = hooks
            self._routes = {}  # rebuilt with the new hooks
        for patch in self._patches.values():
            patch.dispatcher.set_interval(interval)

    def _wrap(self, targets: Sequence[_Target]) -> None:
        """Patch every target, or none: a failure restores those already patched."""
        new = [target for target in targets if target.name not in self._patches]
        self.recorder.seed_reservoirs(self.store.sampled_counts([t.name for t in new]))
        done: list[_Patch] = []
        for target in new:
            dispatcher = Dispatcher(
                target.name,
                target.original,
                self.recorder,
                interval=self._interval,
                warm_seconds=self._warm_seconds,
            )
            patch = _Patch(target, dispatcher)
            try:
                setattr(target.owner, target.attribute, dispatcher.wrapper)
            except (AttributeError, TypeError) as exc:
                for earlier in reversed(done):
                    _restore(earlier)
                raise ValidationError(
                    f"cannot intercept {target.name}: its attribute cannot be set ({exc}); "
                    f"allowed: {TARGET_FORM} on a module whose attributes can be replaced"
                ) from None
            done.append(patch)
        self._patches.update((patch.target.name, patch) for patch in done)

    def _route(self, record: CandidateRecord) -> Route | None:
        known = self._routes.get(record.id)
        if (
            known is not None
            and known.record.status is record.status
            and known.record.candidate.source == record.candidate.source
        ):
            return known
        guard = route_guard(record.signature)
        if guard is None:
            log.warning(
                "ALE: candidate %s is %s but %s(%s) cannot be routed; it does not serve",
                record.id,
                record.status,
                record.function,
                record.signature,
            )
            return None
        try:
            candidate = compile_candidate(record.candidate)
        except NoodleError as exc:
            log.warning("ALE: %s; it does not serve", exc)
            return None
        original = self._patches[record.function].target.original
        try:
            hook = self._hooks(record, original) if self._hooks is not None else None
        except Exception:
            log.exception("ALE: no hook for candidate %s; it does not serve", record.id)
            return None
        if hook is None and record.status is Status.CANARY:
            return None  # a canary serves the share its hook admits; without one, none
        return Route(record=record, guard=guard, candidate=candidate, hook=hook)


_lock = threading.RLock()
_session: Session | None = None
_exit_hook_installed = False


def enable(
    project: Project | Runtime,
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    sample_rate: float = DEFAULT_SAMPLE_RATE,
    keep_inputs: bool = True,
    hooks: HookFactory | None = None,
    warm_seconds: float = WARM_SECONDS,
    flush_seconds: float = FLUSH_SECONDS,
    limits: Limits | None = None,
) -> Session:
    """Intercept ``targets`` and record their calls into ``project``'s store.

    ``sample_rate``: the share of calls timed and recorded after the warm-up (every call
    during the first ``warm_seconds``, at most 256). ``keep_inputs=False`` keeps no real
    arguments (privacy): nothing to validate candidates on but generated inputs.
    ``hooks`` makes the promotion hook of each route. Misuse raises ``ValidationError``
    and changes nothing.
    """
    global _session
    names = _target_names(targets)
    interval = _interval(sample_rate)
    with _lock:
        resolved = _resolve_all(names)
        if _session is None:
            store, owns_store = _open_store(project)
            session = Session(
                store,
                owns_store=owns_store,
                interval=interval,
                keep_inputs=keep_inputs,
                hooks=hooks,
                warm_seconds=warm_seconds,
                flush_seconds=flush_seconds,
                limits=limits or Limits(),
            )
            try:
                session._wrap(resolved)
                session.refresh_routes()
            except BaseException:
                session._shut_down()
                raise
            _session = session
            _install_exit_hook()
            session.recorder.start()
            return session
        session = _session
        _check_same_store(session, project)
        session._configure(
            interval=interval, keep_inputs=keep_inputs, hooks=hooks, warm_seconds=warm_seconds
        )
        session._wrap(resolved)
        session.refresh_routes()
        return session


def disable(session: Session | None = None) -> None:
    """Restore the originals and flush; nothing happens when ALE is not enabled (or when
    ``session`` is given and is not the enabled one)."""
    global _session
    with _lock:
        closing = _session
        if closing is None or (session is not None and session is not closing):
            return
        _session = None
    closing._shut_down()


def current() -> Session | None:
    """The enabled session, if any."""
    return _session


def refresh_routes() -> int:
    """Reload the live routes of the enabled session (0 when ALE is not enabled)."""
    session = _session
    return session.refresh_routes() if session is not None else 0


# -- helpers ------------------------------------------------------------------------------


def _target_names(targets: Iterable[str]) -> list[str]:
    if isinstance(targets, str):  # "numpy.dot" alone, not its letters
        targets = [targets]
    names = list(dict.fromkeys(targets))
    if not names:
        raise ValidationError(f"ale.enable needs at least one target: {TARGET_FORM}")
    return names


def _interval(sample_rate: float) -> int:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | float)
        or not 0 < sample_rate <= 1
    ):
        raise ValidationError(
            f"sample_rate {sample_rate!r} is not allowed: give the share of calls to "
            "sample, a number in (0, 1], e.g. 1/64"
        )
    return max(1, round(1 / sample_rate))


def _resolve_all(names: Sequence[str]) -> list[_Target]:
    """Every target found and callable, or one ValidationError naming each that is not."""
    resolved: list[_Target] = []
    problems: list[str] = []
    for name in names:
        try:
            resolved.append(_resolve(name))
        except LookupError as exc:
            problems.append(f"{name!r} ({exc})")
    if problems:
        raise ValidationError(
            f"cannot intercept {'; '.join(problems)}; allowed: {TARGET_FORM}; nothing was patched"
        )
    return resolved


def _resolve(name: str) -> _Target:
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise LookupError("not of the form module.attribute")
    module, index = None, len(parts) - 1
    while index > 0 and module is None:
        try:
            module = importlib.import_module(".".join(parts[:index]))
        except ImportError:
            index -= 1
    if module is None:
        raise LookupError(f"no module {parts[0]!r} can be imported")
    owner: Any = module
    for depth, part in enumerate(parts[index:-1], start=index):
        if not hasattr(owner, part):
            raise LookupError(f"{'.'.join(parts[:depth])} has no attribute {part!r}")
        owner = getattr(owner, part)
    attribute = parts[-1]
    if not hasattr(owner, attribute):
        raise LookupError(f"{'.'.join(parts[:-1])} has no attribute {attribute!r}")
    original = getattr(owner, attribute)
    wrapped_by = getattr(original, "__noodle_ale__", None)
    if isinstance(wrapped_by, Dispatcher):  # intercepted already: by this session, below
        original = wrapped_by.original
    if not callable(original):
        raise LookupError(f"it is a {type(original).__name__}, not callable")
    return _Target(name=name, owner=owner, attribute=attribute, original=original)


def _restore(patch: _Patch) -> None:
    target = patch.target
    if getattr(target.owner, target.attribute, None) is patch.dispatcher.wrapper:
        setattr(target.owner, target.attribute, target.original)
    else:
        log.warning(
            "ALE: %s was replaced by something else since it was intercepted; left as it is",
            target.name,
        )


def _open_store(project: Project | Runtime) -> tuple[Store, bool]:
    """The store and whether ALE opened it (and so closes it)."""
    if isinstance(project, Store):
        return project, False
    shared = getattr(project, "store", None)
    if isinstance(shared, Store):  # a Runtime
        return shared, False
    if not isinstance(project, str | os.PathLike):
        raise ValidationError(
            f"ale.enable: project {project!r} is not a project folder, a state database "
            "path, a Store or a Runtime"
        )
    return Store.open(_db_path(Path(project))), True


def _db_path(path: Path) -> Path:
    if path.name == PROJECT_FILE:
        return load_project(path.parent).db_path
    if path.is_dir():
        return load_project(path).db_path
    if path.suffix == ".db" or path.is_file():
        return path
    return load_project(path).db_path  # says that no noodle.toml is there


def _check_same_store(session: Session, project: Project | Runtime) -> None:
    if isinstance(project, Store):
        path = project.path
    elif isinstance(getattr(project, "store", None), Store):
        path = project.store.path  # type: ignore[union-attr]
    else:
        path = _db_path(Path(project))  # type: ignore[arg-type]
    if Path(os.path.abspath(path)) != Path(os.path.abspath(session.path)):
        raise ValidationError(
            f"ALE is already enabled on {session.path}; call ale.disable() before enabling "
            f"it on {path}"
        )


def _install_exit_hook() -> None:
    global _exit_hook_installed
    if not _exit_hook_installed:
        _exit_hook_installed = True
        atexit.register(_disable_at_exit)


def _disable_at_exit() -> None:
    try:
        disable()
    except NoodleError as exc:
        log.warning("ALE: what was recorded last could not be written at exit: %s", exc)
