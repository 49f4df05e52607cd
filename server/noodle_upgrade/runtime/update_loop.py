"""The self-updating loop of one runtime: its sources of updates and its proposal desk.

Sources: the watcher (store folder, ``noodle.toml``), the git tag source, the manual
check; triggers reach the desk through the same ``desk``. The loop starts what the
settings and ``noodle.toml`` ask for and stops all of it with the runtime.
"""

from __future__ import annotations

from dataclasses import replace

from noodle_upgrade.engine.git_tags import GitSource
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.runtime.context import Context
from noodle_upgrade.runtime.git_source import GitTagSource
from noodle_upgrade.runtime.proposals import DeskHooks, ProposalDesk
from noodle_upgrade.runtime.watcher import ProjectWatcher
from noodle_upgrade.store import ProposalRecord


class UpdateLoop:
    def __init__(self, ctx: Context, hooks: DeskHooks) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.desk = ProposalDesk(
            ctx, hooks, recheck_in_background=settings.watch_enabled or settings.triggers_enabled
        )
        self._environment = ctx.project.environment  # an open(environment=…) outlives edits
        self._stopped = False
        self._watcher: ProjectWatcher | None = None
        self._git: GitTagSource | None = None

    def start(self) -> None:
        project = self.ctx.project
        if self.ctx.settings.watch_enabled:
            self._watcher = ProjectWatcher(
                project.store_dir,
                project.manifest_path,
                on_store_change=self._store_changed,
                on_manifest_change=self.reload_manifest,
            )
        if project.git_source is not None:
            self._git = self._start_git(project.git_source)

    def stop(self) -> None:
        self._stopped = True
        if self._watcher is not None:
            self._watcher.stop()
        if self._git is not None:
            self._git.stop()
        self.desk.stop()

    def wait_until_watching(self, timeout: float | None) -> bool:
        return self._watcher is not None and self._watcher.wait_ready(timeout)

    def check(self, actor: str) -> list[ProposalRecord]:
        """The manual trigger: new git tags first, deferred proposals, then the store."""
        if self._git is not None:
            self._git.poll()
        self.desk.recheck()  # a window may have opened
        return self._detect("manual", f"check by {actor}")

    def reload_manifest(self) -> None:
        """``noodle.toml`` changed: take its constraints and policies, then look again.
        A file that does not load changes nothing (the event says why)."""
        old = self.ctx.project
        try:
            config = load_project(old.root)
        except NoodleError as exc:
            self.ctx.events.publish("manifest.invalid", error=exc.message)
            return
        notes = list(config.warnings)
        if (config.store_dir, config.state_dir) != (old.store_dir, old.state_dir):
            notes.append("store and state folders change at the next start")
        if set(config.components) != set(old.components):
            notes.append("components added to or removed from [components] apply at the next start")
        self.ctx.project = replace(
            config,
            environment=self._environment,
            store_dir=old.store_dir,
            state_dir=old.state_dir,
        )
        self.ctx.events.publish("manifest.reloaded", warnings=notes)
        self.desk.recheck()
        self._detect("manifest", "noodle.toml changed")

    def _store_changed(self) -> None:
        self._detect("watcher", "the component store changed")

    def _detect(self, source: str, reason: str) -> list[ProposalRecord]:
        if self._stopped:
            return []
        return self.desk.detect(source, reason)

    def _start_git(self, source: GitSource) -> GitTagSource:
        ctx = self.ctx

        def imported(name: str, version: str, tag: str) -> None:
            ctx.events.publish("update.imported", name, version=version, tag=tag)
            if name in ctx.slots and not self._stopped:
                ctx.registry.rescan()
                self.desk.propose_upgrade(name, "git", f"tag {tag}")

        def problem(message: str) -> None:
            ctx.events.publish("update.problem", error=message)

        git = GitTagSource(
            source,
            ctx.project.root,
            ctx.project.store_dir,
            lambda: ctx.project.components,
            on_import=imported,
            on_problem=problem,
        )
        git.start()
        return git
