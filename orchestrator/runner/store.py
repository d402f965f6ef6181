"""The runner's state in SQLite: runs and API keys, kept across restarts.

One connection is shared by all threads and guarded by a lock. SQLite
serializes writers anyway, and the runner writes a few rows a second at
most, so one connection is simpler than one per thread and costs nothing.
WAL mode lets a reader of the file (a backup, ``sqlite3`` by hand) run
without blocking the runner.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import OrchestratorError
from ..keys import KeyRecord
from .models import Run, RunState

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_FINAL_STATES = tuple(state.value for state in RunState if state.is_final)

# Columns of the runs table, in the order of the Run fields. Lists and
# mappings are stored as JSON text.
_RUN_COLUMNS = (
    ("id", "TEXT PRIMARY KEY"),
    ("app_name", "TEXT NOT NULL"),
    ("team", "TEXT NOT NULL"),
    ("env", "TEXT NOT NULL"),
    ("image", "TEXT NOT NULL"),
    ("machine_type", "TEXT NOT NULL"),
    ("auth", "TEXT NOT NULL"),
    ("limit_max_requests", "INTEGER NOT NULL"),
    ("max_concurrency", "INTEGER NOT NULL"),
    ("max_queue", "INTEGER NOT NULL"),
    ("request_timeout", "REAL NOT NULL"),
    ("startup_timeout", "REAL NOT NULL"),
    ("endpoints", "TEXT NOT NULL"),
    ("app_env", "TEXT NOT NULL"),
    ("lease_seconds", "REAL NOT NULL"),
    ("state", "TEXT NOT NULL"),
    ("message", "TEXT NOT NULL"),
    ("created_at", "REAL NOT NULL"),
    ("lease_expires_at", "REAL NOT NULL"),
    ("control_token", "TEXT NOT NULL"),
    ("upstream", "TEXT NOT NULL"),
    ("node", "TEXT NOT NULL"),
    ("served", "INTEGER NOT NULL"),
    ("rejected", "INTEGER NOT NULL"),
    ("stop_reason", "TEXT NOT NULL"),
    ("machine_types", "TEXT NOT NULL"),
    ("started_at", "REAL NOT NULL"),
)
_RUN_COLUMN_NAMES = tuple(name for name, _ in _RUN_COLUMNS)
_JSON_COLUMNS = frozenset({"endpoints", "app_env", "machine_types"})

assert _RUN_COLUMN_NAMES == tuple(field.name for field in dataclasses.fields(Run)), (
    "the runs table must have one column per Run field, in the same order"
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs ({", ".join(f"{name} {kind}" for name, kind in _RUN_COLUMNS)});
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_run_per_app ON runs (team, app_name)
    WHERE state NOT IN ({", ".join(repr(state) for state in _FINAL_STATES)});
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    team TEXT NOT NULL,
    created_at INTEGER,
    name TEXT,
    revoked_at REAL
);
"""


class StoreError(OrchestratorError):
    """The state database cannot be opened, or a write broke one of its constraints."""


class DuplicateLiveRun(StoreError):
    """A run of the same team and app that is not final exists already."""


@dataclasses.dataclass(frozen=True)
class StoredKey:
    """A runner key with its revocation time (None while the key is valid)."""

    record: KeyRecord
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Store:
    """Runs and keys in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The file contains the control tokens of the runs, so only the owner
            # may read it. SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(path, 0o600)
            self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the runner's database {path}: {error}") from error
        try:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as error:
            self._connection.close()
            raise StoreError(f"cannot open the runner's database {path}: {error}") from error
        except StoreError:
            self._connection.close()
            raise
        logger.info("opened the state database %s (schema version %d)", path, SCHEMA_VERSION)

    def close(self) -> None:
        with self._lock:
            self._connection.close()
        logger.info("closed the state database %s", self.path)

    def _migrate(self) -> None:
        with self._lock:
            self._connection.executescript(_SCHEMA)
            row = self._connection.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._connection.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {row[0]}, newer than this runner's "
                    f"{SCHEMA_VERSION}; run a newer runner or move the file away"
                )
            # TODO: migrate older schema versions here once a second version exists.

    # Runs

    def insert_run(self, run: Run) -> None:
        """Add a new run; raise DuplicateLiveRun when its team and app have a live run."""
        placeholders = ", ".join("?" for _ in _RUN_COLUMN_NAMES)
        statement = f"INSERT INTO runs ({', '.join(_RUN_COLUMN_NAMES)}) VALUES ({placeholders})"
        try:
            with self._lock:
                self._connection.execute(statement, _run_row(run))
        except sqlite3.IntegrityError as error:
            raise DuplicateLiveRun(
                f"app {run.team}/{run.app_name} already has a run that is not final"
            ) from error

    def update_run(self, run: Run) -> None:
        """Write every field of a stored run."""
        assignments = ", ".join(f"{name} = ?" for name in _RUN_COLUMN_NAMES[1:])
        row = _run_row(run)
        with self._lock:
            cursor = self._connection.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?", (*row[1:], row[0])
            )
        if cursor.rowcount != 1:
            raise StoreError(f"cannot update run {run.id}: it is not stored")

    def get_run(self, run_id: str) -> Run | None:
        rows = self._select_runs("WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def list_runs(self, team: str | None = None, live_only: bool = False) -> list[Run]:
        """Return runs, oldest first; ``live_only`` leaves out completed and failed ones."""
        conditions: list[str] = []
        parameters: list[Any] = []
        if team is not None:
            conditions.append("team = ?")
            parameters.append(team)
        if live_only:
            conditions.append(f"state NOT IN ({', '.join('?' for _ in _FINAL_STATES)})")
            parameters.extend(_FINAL_STATES)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return self._select_runs(where, tuple(parameters))

    def find_live_run(self, team: str, app_name: str) -> Run | None:
        """Return the run of ``team``/``app_name`` that is not final, if any."""
        final = ", ".join("?" for _ in _FINAL_STATES)
        rows = self._select_runs(
            f"WHERE team = ? AND app_name = ? AND state NOT IN ({final})",
            (team, app_name, *_FINAL_STATES),
        )
        return rows[0] if rows else None

    def count_live_runs(self) -> int:
        final = ", ".join("?" for _ in _FINAL_STATES)
        with self._lock:
            row = self._connection.execute(
                f"SELECT COUNT(*) FROM runs WHERE state NOT IN ({final})", _FINAL_STATES
            ).fetchone()
        return int(row[0])

    def _select_runs(self, where: str, parameters: tuple[Any, ...]) -> list[Run]:
        columns = ", ".join(_RUN_COLUMN_NAMES)
        statement = f"SELECT {columns} FROM runs {where} ORDER BY created_at, id"
        with self._lock:
            rows = self._connection.execute(statement, parameters).fetchall()
        return [_run_from_row(row) for row in rows]

    # Keys

    def insert_key(self, record: KeyRecord) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT INTO keys (id, hash, team, created_at, name) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.hash, record.team, record.created_at, record.name),
            )

    def get_key(self, key_id: str) -> StoredKey | None:
        keys = self._select_keys("WHERE id = ?", (key_id,))
        return keys[0] if keys else None

    def list_keys(self, team: str | None = None, include_revoked: bool = True) -> list[StoredKey]:
        """Return keys, oldest first."""
        conditions: list[str] = []
        parameters: list[Any] = []
        if team is not None:
            conditions.append("team = ?")
            parameters.append(team)
        if not include_revoked:
            conditions.append("revoked_at IS NULL")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return self._select_keys(where, tuple(parameters))

    def revoke_key(self, key_id: str, revoked_at: float) -> bool:
        """Mark a key revoked; return False when it is unknown or already revoked."""
        with self._lock:
            cursor = self._connection.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (revoked_at, key_id),
            )
        return cursor.rowcount == 1

    def _select_keys(self, where: str, parameters: tuple[Any, ...]) -> list[StoredKey]:
        statement = (
            f"SELECT id, hash, team, created_at, name, revoked_at FROM keys {where} "
            "ORDER BY created_at, id"
        )
        with self._lock:
            rows = self._connection.execute(statement, parameters).fetchall()
        return [
            StoredKey(
                KeyRecord(id=row[0], hash=row[1], team=row[2], created_at=row[3], name=row[4]),
                revoked_at=row[5],
            )
            for row in rows
        ]


def _run_row(run: Run) -> tuple[Any, ...]:
    values: list[Any] = []
    for name in _RUN_COLUMN_NAMES:
        value = getattr(run, name)
        if name in _JSON_COLUMNS:
            value = json.dumps(value)
        elif isinstance(value, RunState):
            value = value.value
        values.append(value)
    return tuple(values)


def _run_from_row(row: tuple[Any, ...]) -> Run:
    fields = dict(zip(_RUN_COLUMN_NAMES, row))
    for name in _JSON_COLUMNS:
        fields[name] = json.loads(fields[name])
    fields["state"] = RunState(fields["state"])
    return Run(**fields)
