"""Import one version of a component under a module name of its own.

Each version folder becomes a synthetic package ``_noodle_components.<name>__<version>``
whose ``__path__`` is the folder, so two versions of one component live side by side
(Erlang's old and current code) and packages with relative imports work unchanged.
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, TypeVar

from packaging.version import Version

from noodle_upgrade.errors import HotSwapError
from noodle_upgrade.models import ComponentDescriptor

ROOT_PACKAGE = "_noodle_components"
_T = TypeVar("_T")


@dataclass(eq=False)
class LoadedVersion:
    """A version that is imported and ready to serve: its module and its target object."""

    descriptor: ComponentDescriptor
    package: str
    module: ModuleType
    instances: list[Any]  # what its factory built: one, or ``pool`` of them; else []

    @property
    def version(self) -> Version:
        return self.descriptor.version

    @property
    def target(self) -> Any:
        """What calls reach: the module, or the (first) instance its factory returned."""
        return self.instances[0] if self.instances else self.module

    @property
    def pooled(self) -> bool:
        return len(self.instances) > 1

    def hook(self, reference: str | None) -> Callable[..., Any] | None:
        """Resolve a ``module:function`` reference inside this version's package."""
        if reference is None:
            return None
        module_name, _, function_name = reference.partition(":")
        where = f"{self.descriptor.manifest_path}: hook {reference!r}"
        try:
            module = importlib.import_module(f"{self.package}.{module_name}")
            function = getattr(module, function_name)
        except Exception as exc:
            raise HotSwapError(f"{where} cannot be resolved: {_describe(exc)}") from exc
        if not callable(function):
            raise HotSwapError(f"{where} is not callable")
        return function  # type: ignore[no-any-return]

    def snapshot(self) -> Any:
        """The state to carry over: one instance's, or a list of a pool's, in order."""
        states = [snapshot_of(target) for target in self.instances or [self.module]]
        return states if self.pooled else states[0]

    def restore(self, state: Any) -> None:
        if self.pooled:
            for target, one in zip(self.instances, state, strict=True):
                restore_into(target, one)
        else:
            restore_into(self.target, state)


def convert(hook: Callable[..., Any], state: Any, version: str, *, pooled: bool) -> Any:
    """Apply a ``migrate``/``downgrade`` hook to the state, or to each state of a pool."""
    if pooled:
        return [hook(one, version) for one in state]
    return hook(state, version)


def snapshot_of(target: Any) -> Any:
    snapshot = getattr(target, "snapshot", None)
    return snapshot() if callable(snapshot) else None


def restore_into(target: Any, state: Any) -> None:
    restore = getattr(target, "restore", None)
    if callable(restore):
        restore(state)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ensure_root_package() -> None:
    if ROOT_PACKAGE not in sys.modules:
        root = ModuleType(ROOT_PACKAGE, "Versions loaded by NoodleCore Upgrade")
        root.__path__ = []
        root.__spec__ = ModuleSpec(ROOT_PACKAGE, None, is_package=True)
        sys.modules[ROOT_PACKAGE] = root


def package_name(descriptor: ComponentDescriptor) -> str:
    version = re.sub(r"[^0-9A-Za-z]", "_", str(descriptor.version))
    base = f"{ROOT_PACKAGE}.{re.sub(r'[^0-9A-Za-z_]', '_', descriptor.name)}__{version}"
    name, suffix = base, 1
    while name in sys.modules:  # a version loaded again after an unload that left a thread
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _make_package(name: str, descriptor: ComponentDescriptor) -> None:
    spec = ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(descriptor.folder)]
    package = ModuleType(name, f"{descriptor.key} from {descriptor.folder}")
    package.__path__ = [str(descriptor.folder)]
    package.__spec__ = spec
    package.__package__ = name
    sys.modules[name] = package


def call_with_deadline(function: Callable[[], _T], timeout: float, what: str) -> _T:
    """Run ``function`` in a helper thread and give up on it after ``timeout`` seconds.

    Python cannot kill a thread, so a hung import or health check is abandoned (it runs
    on as a daemon thread) while the upgrade fails cleanly instead of hanging with it.
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name=f"noodle: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise HotSwapError(f"{what} did not finish within {timeout:g} s", code="timeout")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def load_version(
    descriptor: ComponentDescriptor, timeout: float, *, instantiate: bool = True
) -> LoadedVersion:
    """Import a version in isolation and, for a factory entry, build its instance.

    ``instantiate=False`` serves the intermediate steps of a multi-step upgrade, which
    lend their ``migrate`` hooks but never serve a call.
    """
    _ensure_root_package()
    importlib.invalidate_caches()
    package = package_name(descriptor)
    _make_package(package, descriptor)
    try:
        module = call_with_deadline(
            lambda: importlib.import_module(f"{package}.{descriptor.entry_module}"),
            timeout,
            f"importing {descriptor.key}",
        )
        instances: list[Any] = []
        if descriptor.factory is not None and instantiate:
            factory = getattr(module, descriptor.factory, None)
            if not callable(factory):
                raise HotSwapError(
                    f"{descriptor.manifest_path}: entry {descriptor.entry!r}: "
                    f"module {descriptor.entry_module!r} has no callable {descriptor.factory!r}",
                    code="import-error",
                )
            build = partial(_build_pool, factory, descriptor.pool)
            instances = call_with_deadline(build, timeout, f"creating {descriptor.key}")
    except HotSwapError:
        unload_package(package)
        raise
    except BaseException as exc:
        unload_package(package)
        raise HotSwapError(
            f"{descriptor.manifest_path}: {descriptor.key} failed to load: {_describe(exc)}",
            code="import-error",
        ) from exc
    return LoadedVersion(descriptor, package, module, instances)


def _build_pool(factory: Callable[[], Any], size: int) -> list[Any]:
    return [factory() for _ in range(size)]


def run_health_check(loaded: LoadedVersion, timeout: float) -> None:
    """Fail unless the version's health check returns a true value without raising."""
    what = f"health check {loaded.descriptor.health_check!r} of {loaded.descriptor.key}"
    try:
        check = loaded.hook(loaded.descriptor.health_check)
        if check is None:
            return
        healthy = call_with_deadline(check, timeout, what)
    except HotSwapError as exc:
        exc.code = "health-check-failed"
        raise
    except Exception as exc:
        raise HotSwapError(f"{what} raised {_describe(exc)}", code="health-check-failed") from exc
    if not healthy:
        raise HotSwapError(f"{what} returned {healthy!r}", code="health-check-failed")


def unload_package(package: str) -> None:
    """Forget a version's modules so that it can be garbage-collected."""
    prefix = f"{package}."
    for name in [n for n in sys.modules if n == package or n.startswith(prefix)]:
        del sys.modules[name]
