"""A NoodleCore project on disk, built with ``noodle_upgrade.scaffold``."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from noodle_upgrade import Runtime
from noodle_upgrade.runtime.loader import ROOT_PACKAGE
from noodle_upgrade.scaffold import ManifestValue, write_component, write_project

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class Project:
    """A project folder: ``noodle.toml``, its component store and its state store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def constraints(self, components: Mapping[str, str]) -> Project:
        """(Re)write ``noodle.toml`` with these ``[components]`` constraints."""
        write_project(self.root, components)
        return self

    def production(self, components: Mapping[str, str], policy: str) -> Project:
        """(Re)write ``noodle.toml`` for ``environment = "production"``, with ``policy``
        as the body of its ``[policy.production]`` table."""
        extra = f"\n[policy.production]\n{policy}\n"
        write_project(self.root, components, environment="production", extra=extra)
        return self

    def add(
        self,
        name: str,
        version: str,
        code: str | Mapping[str, str],
        *,
        entry: str | None = None,
        sign: bool = False,
        **manifest: ManifestValue,
    ) -> Path:
        """Write ``components/<name>/<version>/`` and return the folder."""
        return write_component(self.root, name, version, code, entry=entry, sign=sign, **manifest)

    def add_package(self, source: Path, name: str, version: str) -> Path:
        """Copy a ready-made version folder (``component.toml`` included) into the store."""
        target = self.root / "components" / name / version
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    def manifest(self, name: str, version: str) -> Path:
        return self.root / "components" / name / version / "component.toml"

    @property
    def db_path(self) -> Path:
        return self.root / ".noodle" / "state.db"

    def open(self, **settings: Any) -> Runtime:
        return Runtime.open(self.root, settings=settings or None)

    def sql(self, statement: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the state store with raw sqlite3, outside the engine."""
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                return conn.execute(statement, parameters).fetchall()
        finally:
            conn.close()

    def tamper(self, statement: str, *parameters: Any) -> None:
        """Edit the audit log as a determined intruder would: drop its append-only
        triggers first, then run ``statement``."""
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                triggers = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
                ).fetchall()
                for (name,) in triggers:
                    conn.execute(f'DROP TRIGGER "{name}"')
                conn.execute(statement, parameters)
        finally:
            conn.close()


def noodle_modules() -> set[str]:
    """Names of every module the loader has put in ``sys.modules``."""
    return {name for name in sys.modules if name.startswith(f"{ROOT_PACKAGE}.")}


def pair_source(version: str) -> dict[str, str]:
    """A component whose ``compute()`` combines two functions of the same version.

    ``a`` lives in the entry module and ``b`` in a sibling module reached by a relative
    import, so a call that mixed two versions (or resolved an import in the wrong
    version) would return two different strings.
    """
    return {
        "pair.py": (
            "from .pair_b import b\n\n\n"
            f"def a():\n    return {version!r}\n\n\n"
            "def compute():\n    return (a(), b())\n"
        ),
        "pair_b.py": f"def b():\n    return {version!r}\n",
    }


def greeter_source(version: str, extra: str = "") -> str:
    """A plain module component whose ``hello()`` says its version."""
    return f"def hello():\n    return {version!r}\n" + extra


def counter_source(
    version: str,
    *,
    key: str = "n",
    migrate: str | None = None,
    downgrade: str | None = None,
    extra: str = "",
) -> str:
    """A stateful (``counter:create``) component: a thread-safe counter kept under ``key``.

    ``inc()`` returns ``(version, new value)``; ``snapshot``/``restore`` move
    ``{key: value, "chain": [...]}``. ``migrate``/``downgrade`` are function bodies of
    ``(state, version)`` hooks named ``migrate``/``downgrade``; ``time`` is imported.
    """
    hooks = ""
    if migrate is not None:
        hooks += f"\n\ndef migrate(state, from_version):\n    {migrate}\n"
    if downgrade is not None:
        hooks += f"\n\ndef downgrade(state, to_version):\n    {downgrade}\n"
    return f"""\
import threading
import time

VERSION = {version!r}


class Counter:
    def __init__(self):
        self._lock = threading.Lock()
        self.value_ = 0
        self.chain_ = []

    def inc(self):
        with self._lock:
            self.value_ += 1
            return (VERSION, self.value_)

    def value(self):
        return self.value_

    def chain(self):
        return list(self.chain_)

    def version(self):
        return VERSION

    def snapshot(self):
        with self._lock:
            return {{{key!r}: self.value_, "chain": list(self.chain_)}}

    def restore(self, state):
        with self._lock:
            self.value_ = state[{key!r}]
            self.chain_ = list(state["chain"])


def create():
    return Counter()
{hooks}{extra}"""
