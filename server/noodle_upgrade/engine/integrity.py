"""The digest of a version folder (DESIGN §3, ``sha256``) and the check against it.

For every file except ``component.toml`` and anything under ``__pycache__/``, sorted by
POSIX relative path: feed the path, a NUL byte, the file's bytes, a NUL byte.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from noodle_upgrade.errors import ValidationError
from noodle_upgrade.models import ComponentDescriptor

_EXCLUDED_FILES = {"component.toml"}
_EXCLUDED_DIRS = {"__pycache__"}
_CHUNK = 1 << 16


def _hashed_files(folder: Path) -> list[tuple[str, Path]]:
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if not path.is_file() or _EXCLUDED_DIRS.intersection(relative.parts[:-1]):
            continue
        posix = relative.as_posix()
        if posix in _EXCLUDED_FILES:
            continue
        files.append((posix, path))
    return sorted(files)


def folder_digest(folder: Path) -> str:
    """The sha256 hex digest of a version folder."""
    if not folder.is_dir():
        raise ValidationError(f"{folder}: not a folder; expected a component version folder")
    digest = hashlib.sha256()
    for posix, path in _hashed_files(folder):
        digest.update(posix.encode())
        digest.update(b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def verify_integrity(descriptor: ComponentDescriptor) -> None:
    """Refuse a version whose files do not match its declared ``sha256``."""
    if descriptor.sha256 is None:
        return
    actual = folder_digest(descriptor.folder)
    if actual != descriptor.sha256:
        raise ValidationError(
            f"{descriptor.manifest_path}: {descriptor.key} files do not match its sha256 "
            f"(declared {descriptor.sha256[:12]}…, actual {actual[:12]}…); "
            "the folder was changed after it was hashed — run `noodle hash` to re-hash it",
            code="integrity-mismatch",
        )
