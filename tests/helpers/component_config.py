"""Components that declare ``[component.config]``, and code that reads its config file."""

from __future__ import annotations

import textwrap
from pathlib import Path

from helpers.project import Project
from noodle_upgrade.scaffold import ManifestValue


def declare_config(
    project: Project,
    name: str,
    version: str,
    code: str,
    config: str,
    **manifest: ManifestValue,
) -> Path:
    """Write a version like ``Project.add`` and append ``config`` (TOML: the
    ``[component.config]`` table and its migrations) to its ``component.toml``."""
    folder = project.add(name, version, code, **manifest)
    with (folder / "component.toml").open("a", encoding="utf-8") as manifest_file:
        manifest_file.write("\n" + textwrap.dedent(config).lstrip())
    return folder


def reader_source(version: str, config: Path, extra: str = "") -> str:
    """A module component whose ``settings()`` reads ``config`` (TOML or JSON) at each
    call, as code that takes its configuration from a file does."""
    return (
        "import json\nimport pathlib\nimport tomllib\n\n"
        f"VERSION = {version!r}\nCONFIG = pathlib.Path({str(config)!r})\n\n\n"
        "def version():\n    return VERSION\n\n\n"
        "def settings():\n"
        "    text = CONFIG.read_text()\n"
        "    return tomllib.loads(text) if CONFIG.suffix == '.toml' else json.loads(text)\n" + extra
    )
