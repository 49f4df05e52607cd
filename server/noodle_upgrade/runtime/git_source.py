"""Releases tagged in a git repository become version folders in the component store.

Seed 003 §2.3 detects updates from git tags. Here a tag such as ``parser-v1.2.0``
(``[sources.git]`` in ``noodle.toml``) is exported with ``git archive`` and written to
``<store>/parser/1.2.0/``; from there the ordinary detection path (the store watcher, the
registry's rescan) takes over, so a tagged release is treated exactly like a folder
copied in by hand.

The store must never show a half-written version: the archive is unpacked into a
dot-folder of the store (``<store>/.incoming/…``, which the store scan ignores), checked,
and renamed into place in one step, on the same file system. Nothing from git is trusted:
a member that would land outside the folder is refused, and the exported
``component.toml`` must declare the component and version the tag names.

Every failure (git missing, not a repository, a bad tag) goes to ``on_problem`` as one
line; nothing escapes the polling thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from packaging.version import InvalidVersion, Version

from noodle_upgrade.engine.git_tags import (
    GitSource,
    TaggedRelease,
    TagPattern,
    new_releases,
    tagged_releases,
)
from noodle_upgrade.engine.manifest import MANIFEST_FILE, load_component_manifest
from noodle_upgrade.errors import NoodleError, ValidationError

log = logging.getLogger("noodle_upgrade.git_source")

INCOMING = ".incoming"  # a dot-folder: the store scan never sees what is being unpacked
GIT_TIMEOUT_S = 300.0  # a git that hangs (a stale lock, a dead network mount) is given up


def extract_archive(data: bytes, target: Path) -> None:
    """Unpack a tar archive into the new folder ``target``; refuse it whole when any member
    would land outside (absolute path, ``..``, a link leading out) or is a special file."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = archive.getmembers()
            for member in members:
                reason = _unsafe(member)
                if reason is not None:
                    raise ValidationError(
                        f"archive member {member.name!r} is {reason}; nothing was extracted"
                    )
            target.mkdir(parents=True)
            # The "data" filter re-checks all of this, and drops owners and odd permissions.
            archive.extractall(target, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ValidationError(f"unreadable or unsafe archive: {exc}") from None


def _unsafe(member: tarfile.TarInfo) -> str | None:
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a path through '..'"
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        # A symbolic link is relative to its own folder, a hard link to the archive's top.
        base = path.parent if member.issym() else PurePosixPath()
        resolved = posixpath.normpath(base / link)
        if link.is_absolute() or resolved == ".." or resolved.startswith("../"):
            return f"a link to {member.linkname!r}, outside the folder"
    elif not (member.isfile() or member.isdir()):
        return "a special file (device or FIFO)"
    return None


def _declared(manifest: Path) -> tuple[str, str] | None:
    """``name`` and ``version`` as the manifest writes them, when it is readable enough."""
    try:
        table = tomllib.loads(manifest.read_text(encoding="utf-8")).get("component")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(table, dict):
        return None
    name, version = table.get("name"), table.get("version")
    if isinstance(name, str) and isinstance(version, str):
        return name, version
    return None


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False


class GitTagSource:
    """Polls a git repository's tags and imports each new release into the store.

    ``components`` says which components the project lists (read at every poll, so a
    reloaded ``noodle.toml`` counts); ``on_import(component, version, tag)`` is called
    for each version folder added, ``on_problem(message)`` for each failure.
    """

    def __init__(
        self,
        source: GitSource,
        project_root: Path,
        store_dir: Path,
        components: Callable[[], Iterable[str]],
        on_import: Callable[[str, str, str], None],
        on_problem: Callable[[str], None],
    ) -> None:
        self.source = source
        self.repo = Path(os.path.abspath(project_root / source.repo))
        self.store_dir = Path(os.path.abspath(store_dir))
        self.pattern = TagPattern(source.tags)
        self._components = components
        self._on_import = on_import
        self._on_problem = on_problem
        self._poll_lock = threading.Lock()  # the thread and a manual check never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problems: set[str] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Poll now, then every ``interval_s`` seconds, in a daemon thread."""
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="noodle: git tags", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread: at once between polls, after the running git command within one."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    def poll(self) -> list[tuple[str, str]]:
        """Import every new tagged release now; ``(component, version)`` of each imported.

        Every problem is reported through ``on_problem``, even one the last poll reported;
        an exception raised by a callback reaches the caller (the thread logs it instead).
        """
        imported, problems = self._poll(cancelled=lambda: False)
        self._report(imported, problems)
        return [(release.component, str(release.version)) for release in imported]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                imported, problems = self._poll(cancelled=self._stop.is_set)
                # Polled every minute, a lasting problem would be repeated every minute.
                fresh = [problem for problem in problems if problem not in self._last_problems]
                self._last_problems = set(problems)
                self._report(imported, fresh)
            except Exception:  # a callback of the runtime's: keep polling
                log.exception("git tag source %s: a poll failed", self.repo)
            if self._stop.wait(self.source.interval_s):
                return

    def _report(self, imported: list[TaggedRelease], problems: list[str]) -> None:
        for release in imported:
            self._on_import(release.component, str(release.version), release.tag)
        for problem in problems:
            self._on_problem(problem)

    def _poll(self, cancelled: Callable[[], bool]) -> tuple[list[TaggedRelease], list[str]]:
        with self._poll_lock:
            components = list(self._components())
            try:
                tags = self._git("tag", "--list").decode("utf-8", "replace").splitlines()
            except NoodleError as exc:
                return [], [exc.message]
            releases = tagged_releases(self.pattern, tags, components)
            imported: list[TaggedRelease] = []
            problems: list[str] = []
            for release in new_releases(releases, self._versions_in_store(components)):
                if cancelled():
                    break
                try:
                    if self._import(release):
                        imported.append(release)
                except NoodleError as exc:
                    problems.append(exc.message)
            return imported, problems

    def _versions_in_store(self, components: Iterable[str]) -> dict[str, set[Version]]:
        """Versions that have a folder, readable or not: an existing folder is never touched."""
        found: dict[str, set[Version]] = {}
        for name in components:
            versions = found.setdefault(name, set())
            with contextlib.suppress(OSError):
                for child in (self.store_dir / name).iterdir():
                    with contextlib.suppress(InvalidVersion):
                        versions.add(Version(child.name))
        return found

    def _git(self, *arguments: str) -> bytes:
        command = ["git", "-C", str(self.repo), *arguments]
        shown = f"git {' '.join(arguments)}"
        # The ceiling stops git from using a repository *above* a folder that is not one.
        env = {
            **os.environ,
            "GIT_CEILING_DIRECTORIES": str(self.repo.parent),
            "GIT_TERMINAL_PROMPT": "0",
        }
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise NoodleError(
                f"[sources.git] {self.repo}: the `git` command is not installed or not on "
                "PATH; install git, or remove [sources.git] from noodle.toml"
            ) from None
        except subprocess.TimeoutExpired:
            raise NoodleError(
                f"[sources.git] {self.repo}: `{shown}` took more than {GIT_TIMEOUT_S:g} s; gave up"
            ) from None
        except OSError as exc:
            raise NoodleError(f"[sources.git] {self.repo}: cannot run git: {exc}") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            raise NoodleError(
                f"[sources.git] {self.repo}: `{shown}` failed: "
                f"{stderr or f'exit status {done.returncode}'}"
            )
        return done.stdout

    def _import(self, release: TaggedRelease) -> bool:
        """Write the release's folder into the store; False when it appeared meanwhile."""
        folder = self.source.folder_in_repo(release.component)
        archive = self._git("archive", "--format=tar", f"refs/tags/{release.tag}", "--", folder)
        incoming = self.store_dir / INCOMING
        target = self.store_dir / release.component / str(release.version)
        try:
            incoming.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f"{release.component}-", dir=incoming))
        except OSError as exc:
            raise NoodleError(f"[sources.git] {incoming}: cannot create: {exc.strerror}") from None
        try:
            staged = self._stage(release, archive, work, folder)
            if target.exists():
                return False
            target.parent.mkdir(exist_ok=True)
            os.rename(staged, target)  # one step: the folder appears complete
            return True
        except OSError as exc:
            raise NoodleError(
                f"[sources.git] {self.repo}: tag {release.tag!r}: cannot write {target}: "
                f"{exc.strerror}"
            ) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                incoming.rmdir()  # only when empty: another import may be under way

    def _stage(self, release: TaggedRelease, archive: bytes, work: Path, folder: str) -> Path:
        """Unpack and check the release in ``work``; its folder, laid out as in the store."""
        where = f"[sources.git] {self.repo}: tag {release.tag!r}"
        shown = PurePosixPath(folder) / MANIFEST_FILE
        try:
            extract_archive(archive, work / "tree")
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}; not imported") from None
        exported = work / "tree" / folder
        if not (exported / MANIFEST_FILE).is_file():
            raise ValidationError(f"{where}: no {shown} at that tag; not imported")
        declared = _declared(exported / MANIFEST_FILE)
        if declared is not None and (
            declared[0] != release.component or not _same_version(declared[1], release.version)
        ):
            raise ValidationError(
                f"{where}: {shown} declares {declared[0]} {declared[1]} but the tag names "
                f"{release.component} {release.version}; not imported"
            )
        staged = work / release.component / str(release.version)
        staged.parent.mkdir()
        os.rename(exported, staged)
        try:
            load_component_manifest(staged)
        except NoodleError as exc:
            # Name the file as git does (`tag:path`): the staged copy is about to vanish.
            message = exc.message.replace(
                str(staged / MANIFEST_FILE), f"{release.tag}:{shown}"
            ).replace(str(staged), f"{release.tag}:{PurePosixPath(folder)}")
            raise ValidationError(f"{where}: {message}; not imported") from None
        return staged
