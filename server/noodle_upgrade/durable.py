"""Files replaced in one rename: a reader, or a crash, finds the old file or the whole
new one, never a part. Used for a component's config file and for the CLI's reports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from noodle_upgrade.errors import NoodleError

ADVICE = "check that its folder exists and is writable"


def temporary_for(target: Path, tag: str) -> Path:
    """The hidden file beside ``target`` that its next content is written to; ``tag``
    names who writes it (an operation id), so that recovery can find it."""
    return target.with_name(f".{target.name}.{tag}.tmp")


def is_temporary(path: Path, tag: str) -> bool:
    """Whether ``path`` is a file ``temporary_for`` named for ``tag``."""
    return path.name.startswith(".") and path.name.endswith(f".{tag}.tmp")


def mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:  # no file: there is no mode to keep
        return None


def write_beside(
    target: Path,
    content: bytes,
    tag: str,
    mode: int | None = None,
    *,
    create_folders: bool = False,
) -> Path:
    """Write ``content`` to a temporary file in ``target``'s folder, flushed to disk, with
    ``target``'s mode (``mode`` for a new file; None: the umask's default)."""
    temporary = temporary_for(target, tag)
    kept = mode_of(target)
    mode = mode if kept is None else kept
    try:
        if create_folders:
            target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            temporary.chmod(mode)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise NoodleError(
            f"{target}: cannot write: {exc.strerror or exc}; {ADVICE}", code="write-failed"
        ) from None
    return temporary


def move_into_place(temporary: Path, target: Path) -> None:
    try:
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise NoodleError(
            f"{target}: cannot replace: {exc.strerror or exc}; {ADVICE}", code="write-failed"
        ) from None
    # The rename itself is durable only once the folder is flushed too.
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_atomically(
    target: Path,
    content: bytes,
    tag: str,
    mode: int | None = None,
    *,
    create_folders: bool = False,
) -> None:
    """Replace ``target`` with ``content`` in one rename, keeping its mode (else ``mode``)."""
    temporary = write_beside(target, content, tag, mode, create_folders=create_folders)
    move_into_place(temporary, target)
