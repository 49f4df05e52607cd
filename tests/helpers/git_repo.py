"""A real git repository of component releases, for the git tag source's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers.project import greeter_source
from noodle_upgrade.scaffold import ManifestValue, write_component

# Commits must work on a clean machine whatever the user's git configuration says.
HERMETIC = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
IDENTITY = ("-c", "user.name=Noodle Tests", "-c", "user.email=tests@noodle.invalid")


class Repo:
    """A git repository holding one folder per component, ``<repo>/<name>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = root.parent / f"{root.name}-scratch"
        root.mkdir(parents=True)
        self.git("init", "-q")

    def git(self, *arguments: str) -> str:
        command = ["git", *IDENTITY, "-C", str(self.root), *arguments]
        done = subprocess.run(command, capture_output=True, text=True, env=HERMETIC, check=True)
        return done.stdout

    def release(
        self,
        name: str,
        version: str,
        *,
        declares: tuple[str, str] | None = None,
        folder: str | None = None,
        tag: str | None = None,
        **manifest: ManifestValue,
    ) -> str:
        """Commit ``<folder or name>/`` as a greeter of ``version`` and tag it; the tag.

        ``declares`` writes another name and version into its ``component.toml``.
        """
        declared_name, declared_version = declares or (name, version)
        written = write_component(
            self.scratch / f"{name}-{version}",
            declared_name,
            declared_version,
            greeter_source(version),
            **manifest,
        )
        inside = self.root / (folder or name)
        shutil.rmtree(inside, ignore_errors=True)
        shutil.copytree(written, inside)
        tag = tag or f"{name}-v{version}"
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"{name} {version}")
        self.git("tag", "-a", "-m", f"release {tag}", tag)
        return tag
