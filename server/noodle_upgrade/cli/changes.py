"""``noodle diff`` and ``noodle impact``: change analysis from the files alone.

Neither needs a live runtime or a state store: both read the component store (and, for
``impact``, the project's own Python files) with ``ast``; no component code is imported.
The store's lock, when there is one, only adds the dependents to ``impact``.
"""

from __future__ import annotations

import argparse
from typing import Any

from packaging.version import Version

from noodle_upgrade.analysis.api import Api
from noodle_upgrade.analysis.diff import bump_finding, diff_api, suggested_bump
from noodle_upgrade.analysis.extract import ParsedFiles, extract_api
from noodle_upgrade.analysis.impact import check_uses
from noodle_upgrade.analysis.uses import scan_workspace
from noodle_upgrade.cli import render
from noodle_upgrade.engine.manifest import load_project
from noodle_upgrade.engine.planner import dependents_of
from noodle_upgrade.engine.registry import Registry
from noodle_upgrade.engine.versions import bump_kind, parse_version
from noodle_upgrade.models import ComponentDescriptor, ProjectConfig
from noodle_upgrade.store import Store

EXIT_OK, EXIT_FINDING = 0, 1


def _version(registry: Registry, name: str, text: str) -> ComponentDescriptor:
    return registry.get(name, parse_version(text, f"{name} version"))


def _api_of(descriptor: ComponentDescriptor, parsed: ParsedFiles | None = None) -> Api:
    return extract_api(
        descriptor.folder,
        descriptor.entry,
        component=descriptor.name,
        version=str(descriptor.version),
        parsed=parsed,
    )


def diff(args: argparse.Namespace) -> int:
    """Exit 1 when the declared bump understates the change (a CI gate), else 0."""
    config = load_project(args.project)
    registry = Registry(config.store_dir)
    old = _version(registry, args.component, args.old)
    new = _version(registry, args.component, args.new)
    parsed = ParsedFiles()  # the files both versions share are parsed once
    change = diff_api(_api_of(old, parsed), _api_of(new, parsed))
    declared = bump_kind(old.version, new.version)
    finding = bump_finding(change, declared, old_version=old.version)
    data = {
        "component": args.component,
        "from_version": str(old.version),
        "to_version": str(new.version),
        **change.to_dict(),
        "suggested_bump": str(suggested_bump(change)),
        "declared_bump": str(declared),
        "finding": finding,
    }
    render.print_json(data) if args.json else render.api_diff(data)
    return EXIT_FINDING if finding else EXIT_OK


def impact(args: argparse.Namespace) -> int:
    """Exit 1 when a call site in the workspace breaks under the version, else 0."""
    config = load_project(args.project)
    registry = Registry(config.store_dir)
    target = _version(registry, args.component, args.version)
    api = _api_of(target)
    scan = scan_workspace(
        config.root, [args.component], exclude=[config.store_dir, config.state_dir]
    )
    findings = sorted(check_uses(scan.uses, api), key=lambda f: (f.file, f.line, f.column))
    data = {
        "component": args.component,
        "version": str(target.version),
        "uses": len(scan.uses),
        "call_sites": [
            {
                "path": finding.file,
                "line": finding.line,
                "column": finding.column,
                "end_line": finding.end_line,
                "end_column": finding.end_column,
                "code": finding.code,
                "message": finding.message,
            }
            for finding in findings
        ],
        "dependents": _dependents(config, registry, args.component, target.version),
        "problems": [problem.message for problem in scan.problems],  # each names its file
    }
    render.print_json(data) if args.json else render.impact(data)
    return EXIT_FINDING if findings else EXIT_OK


def _dependents(
    config: ProjectConfig, registry: Registry, name: str, version: Version
) -> list[dict[str, Any]]:
    """The active components that depend on ``name`` (the blast radius), and whether
    their declared dependency accepts ``version``. Without a state store, nothing is
    active yet: no dependents."""
    if not config.db_path.exists():
        return []
    with Store.open(config.db_path) as store:
        locked = store.active_versions()
    active = {
        component: descriptor
        for component, text in locked.items()
        if (descriptor := registry.find(component, Version(text))) is not None
    }
    dependents = []
    for dependent in dependents_of(name, active):
        wanted = active[dependent].dependencies[name]
        dependents.append(
            {
                "name": dependent,
                "version": str(active[dependent].version),
                "requires": str(wanted),
                "accepts": wanted.contains(version, prereleases=True),
            }
        )
    return dependents
