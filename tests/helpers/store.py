"""The state store as other tools see it: a plain sqlite3 connection to the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def raw(db_path: Path) -> sqlite3.Connection:
    """A plain connection, as another tool (or an attacker) would open the file."""
    return sqlite3.connect(db_path, isolation_level=None)
