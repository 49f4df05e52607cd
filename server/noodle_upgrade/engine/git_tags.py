"""Releases tagged in a git repository (seed 003 §2.3 "new version tag detected"): the pure part.

A project may name a git repository whose tags mark component releases (``[sources.git]``
in ``noodle.toml``). A tag pattern such as ``{component}-v{version}`` says which tags are
releases and of which component; this module matches tag names against it and picks the
releases the component store does not hold yet. Running git and writing the store is
``runtime.git_source``'s job; once a release is a version folder in the store, the ordinary
detection path (the store watcher, the registry's rescan) takes over.

Pure functions and data, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.version import InvalidVersion, Version

from noodle_upgrade.errors import ConfigError

DEFAULT_TAGS = "{component}-v{version}"
DEFAULT_PATH = "{component}"
DEFAULT_INTERVAL_S = 60.0

_COMPONENT, _VERSION = "{component}", "{version}"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ALLOWED = f"{_COMPONENT} and {_VERSION}"


@dataclass(frozen=True)
class GitSource:
    """``[sources.git]``: where tagged releases come from and how often to look."""

    repo: str  # as written: relative to the project root, or absolute
    tags: str = DEFAULT_TAGS
    path: str = DEFAULT_PATH  # folder inside the repository; may use {component}
    interval_s: float = DEFAULT_INTERVAL_S

    def folder_in_repo(self, component: str) -> str:
        """The folder ``git archive`` exports for ``component``, relative to the repository."""
        return self.path.replace(_COMPONENT, component)


@dataclass(frozen=True)
class TaggedRelease:
    """One tag that names a release of a listed component."""

    component: str
    version: Version
    tag: str


def _placeholders(text: str, what: str, allowed: tuple[str, ...]) -> list[str]:
    """The placeholders in ``text``; an unknown one or a stray brace is an error."""
    found = [f"{{{name}}}" for name in _PLACEHOLDER.findall(text)]
    for placeholder in found:
        if placeholder not in allowed:
            raise ConfigError(
                f"{what} {text!r}: unknown placeholder {placeholder} "
                f"(allowed: {', '.join(allowed)})"
            )
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise ConfigError(f"{what} {text!r}: unbalanced brace (placeholders: {', '.join(allowed)})")
    return found


class TagPattern:
    """A checked tag pattern: literal text around one ``{component}`` and one ``{version}``."""

    def __init__(self, text: str) -> None:
        found = _placeholders(text, "tag pattern", (_COMPONENT, _VERSION))
        if sorted(found) != sorted([_COMPONENT, _VERSION]):
            raise ConfigError(
                f"tag pattern {text!r} must hold {_ALLOWED} once each, "
                f"e.g. {DEFAULT_TAGS!r} (a tag such as 'parser-v1.2.0')"
            )
        self.text = text

    def regex(self, component: str) -> re.Pattern[str]:
        """Tags of ``component``: its name is literal, so names that share a prefix
        (``parser``, ``parser-ext``) cannot be mistaken for each other's versions."""
        literal_parts = re.split(r"(\{component\}|\{version\})", self.text)
        pieces = {_COMPONENT: re.escape(component), _VERSION: "(?P<version>.+)"}
        return re.compile("".join(pieces.get(part, re.escape(part)) for part in literal_parts))


def check_path_pattern(text: str) -> str:
    """A folder inside the repository: relative, without ``..``; ``.`` is its top."""
    _placeholders(text, "path", (_COMPONENT,))
    posix = PurePosixPath(text)
    if not text.strip() or posix.is_absolute() or ".." in posix.parts or "\\" in text:
        raise ConfigError(
            f"path {text!r} must be a folder inside the repository, relative to its top, "
            f"written with '/' and without '..', e.g. {DEFAULT_PATH!r} or 'components/"
            f"{{component}}' ('.' for the top itself)"
        )
    return text


def tagged_releases(
    pattern: TagPattern, tags: Iterable[str], components: Iterable[str]
) -> Iterator[TaggedRelease]:
    """Every tag that names a PEP 440 version of a listed component, in the order given.

    A tag whose version part is not a PEP 440 version (``parser-vnext``) is not a
    release. When two listed names could both match (``a-{version}`` against ``a`` and
    ``a-b``), the longer name wins: it is the more specific reading.
    """
    regexes = [(name, pattern.regex(name)) for name in sorted(set(components), key=len)[::-1]]
    for tag in tags:
        for name, regex in regexes:
            match = regex.fullmatch(tag)
            if match is None:
                continue
            try:
                version = Version(match["version"])
            except InvalidVersion:
                continue
            yield TaggedRelease(name, version, tag)
            break


def new_releases(
    releases: Iterable[TaggedRelease], existing: Mapping[str, Collection[Version]]
) -> list[TaggedRelease]:
    """The releases whose version the store does not hold, oldest first per component.

    Two tags of one version (``parser-v1.0`` and ``parser-v1.0.0``) are one release:
    the first tag seen stands for it.
    """
    chosen: dict[tuple[str, Version], TaggedRelease] = {}
    for release in releases:
        key = (release.component, release.version)
        if release.version not in existing.get(release.component, ()) and key not in chosen:
            chosen[key] = release
    return [chosen[key] for key in sorted(chosen)]
