"""Write projects and component versions to disk: for the demo, tests and benchmarks.

Small on purpose: a component version is a ``component.toml`` plus its code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from noodle_upgrade.engine.integrity import folder_digest

ManifestValue = str | bool | int | list[str] | dict[str, str]


def _toml_value(value: ManifestValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_project(
    root: Path,
    components: Mapping[str, str],
    *,
    environment: str = "development",
    extra: str = "",
) -> Path:
    """Write ``noodle.toml`` with ``[components]`` constraints; returns the root."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["[noodle]", f'environment = "{environment}"', "", "[components]"]
    lines += [f'{name} = "{spec}"' for name, spec in components.items()]
    (root / "noodle.toml").write_text("\n".join(lines) + "\n" + extra)
    (root / "components").mkdir(exist_ok=True)
    return root


def write_component(
    root: Path,
    name: str,
    version: str,
    code: str | Mapping[str, str],
    *,
    entry: str | None = None,
    sign: bool = False,
    **manifest: ManifestValue,
) -> Path:
    """Write ``components/<name>/<version>/``: its code and its ``component.toml``.

    ``code`` is the source of ``<name>.py``, or a mapping of relative paths to sources
    for packages and several modules. ``sign`` writes the folder's ``sha256``.
    """
    folder = root / "components" / name / version
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"{name}.py": code} if isinstance(code, str) else dict(code)
    for relative, source in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    fields: dict[str, ManifestValue] = {"name": name, "version": version, "entry": entry or name}
    dependencies = manifest.pop("dependencies", None)
    fields.update(manifest)
    if sign:
        fields["sha256"] = folder_digest(folder)
    lines = ["[component]", *(f"{key} = {_toml_value(value)}" for key, value in fields.items())]
    if isinstance(dependencies, dict):
        lines += ["", "[component.dependencies]"]
        lines += [f"{dep} = {_toml_value(spec)}" for dep, spec in dependencies.items()]
    (folder / "component.toml").write_text("\n".join(lines) + "\n")
    return folder
