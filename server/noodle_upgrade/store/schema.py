"""The store's schema as versioned migrations, tracked in ``PRAGMA user_version``.

Add a migration by appending a step to ``MIGRATIONS``; never edit a released one,
since databases in the field already ran it. Steps are lists of single statements
rather than scripts because ``executescript`` commits on its own, and a migration
must apply whole or not at all.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from noodle_upgrade.errors import StoreError
from noodle_upgrade.models import ProposalState, UpgradeStatus
from noodle_upgrade.store.audit import GENESIS_HASH

_STATUSES = ", ".join(f"'{status.value}'" for status in UpgradeStatus)
_PROPOSAL_STATES = ", ".join(f"'{state.value}'" for state in ProposalState)

_V1: tuple[str, ...] = (
    """CREATE TABLE components (
        name TEXT PRIMARY KEY,
        active_version TEXT NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE rollback_points (
        id TEXT PRIMARY KEY,
        component TEXT NOT NULL,
        version TEXT NOT NULL,
        to_version TEXT NOT NULL,
        upgrade_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        state BLOB,
        released_at REAL,
        consumed_at REAL
    )""",
    "CREATE INDEX rollback_points_by_component ON rollback_points (component, created_at)",
    f"""CREATE TABLE operations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('upgrade', 'rollback')),
        component TEXT NOT NULL,
        from_version TEXT NOT NULL,
        to_version TEXT NOT NULL,
        strategy TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({_STATUSES})),
        error_code TEXT,
        error_message TEXT,
        actor TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        path TEXT NOT NULL DEFAULT '[]',
        rollback_point_id TEXT REFERENCES rollback_points (id)
    )""",
    "CREATE INDEX operations_by_component ON operations (component, started_at)",
    "CREATE INDEX operations_by_status ON operations (status)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        component TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL UNIQUE,
        timestamp REAL NOT NULL,
        event_type TEXT NOT NULL,
        actor TEXT NOT NULL,
        component TEXT,
        version_from TEXT,
        version_to TEXT,
        success INTEGER NOT NULL,
        error_message TEXT,
        details TEXT NOT NULL DEFAULT '{}',
        previous_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    # Append-only by construction: a careless tool or query cannot rewrite history.
    # Someone who drops these triggers on purpose is caught by the hash chain instead.
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    # The newest (seq, hash), written with every record: the chain cannot show that
    # its tail was cut off, this row can.
    """CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    )""",
    f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",
)

# Who runs an operation ("host:pid"), so that recovery spares live ones.
_V2: tuple[str, ...] = ("ALTER TABLE operations ADD COLUMN owner TEXT",)

# What the runtime proposed itself (watcher, git tags, triggers) and what became of it.
_V3: tuple[str, ...] = (
    f"""CREATE TABLE proposals (
        id TEXT PRIMARY KEY,
        component TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('upgrade', 'rollback')),
        from_version TEXT NOT NULL,
        to_version TEXT NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_PROPOSAL_STATES})),
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        decided_by TEXT,
        operation_id TEXT,
        detail TEXT NOT NULL DEFAULT '{{}}'
    )""",
    "CREATE INDEX proposals_by_state ON proposals (state, component)",
)

# Why an operation was started, when something else than a person asked: the cause a
# blue-green window or a trigger measured, the proposal an approval carried out.
_V4: tuple[str, ...] = ("ALTER TABLE operations ADD COLUMN reason TEXT",)

# Adaptive Library Evolution: what was seen (signatures, call sites, sampled inputs),
# what was tried (candidates and their verdicts), what serves (routes).
_V5: tuple[str, ...] = (
    """CREATE TABLE ale_signatures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function TEXT NOT NULL,
        signature TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,
        sampled INTEGER NOT NULL DEFAULT 0,
        total_ns INTEGER NOT NULL DEFAULT 0,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        UNIQUE (function, signature)
    )""",
    """CREATE TABLE ale_sites (
        signature_id INTEGER NOT NULL REFERENCES ale_signatures (id),
        site TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (signature_id, site)
    )""",
    """CREATE TABLE ale_inputs (
        signature_id INTEGER NOT NULL REFERENCES ale_signatures (id),
        slot INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (signature_id, slot)
    )""",
    """CREATE TABLE ale_candidates (
        id TEXT PRIMARY KEY,
        signature_id INTEGER NOT NULL REFERENCES ale_signatures (id),
        family TEXT NOT NULL,
        source TEXT NOT NULL,
        tolerance TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('validated', 'rejected', 'canary', 'promoted', 'demoted')),
        speedup REAL,
        mismatches INTEGER NOT NULL DEFAULT 0,
        verdict TEXT NOT NULL DEFAULT '{}',
        reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX ale_candidates_by_signature ON ale_candidates (signature_id, status)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_not_newer(version: int, db_path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{db_path} has schema version {version}, newer than this noodle-upgrade "
            f"understands ({SCHEMA_VERSION}); upgrade noodle-upgrade"
        )


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Bring the database to ``SCHEMA_VERSION`` in one transaction.

    ``conn`` must be in autocommit mode. sqlite3 errors propagate; the caller names
    the file in the error it raises.
    """
    version = schema_version(conn)
    check_not_newer(version, db_path)
    if version == SCHEMA_VERSION:
        return  # the common case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the lock: another process may have migrated meanwhile.
        current = schema_version(conn)
        check_not_newer(current, db_path)
        for step in MIGRATIONS[current:]:
            for statement in step:
                conn.execute(statement)
        # PRAGMA takes no parameters; SCHEMA_VERSION is our own integer.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
