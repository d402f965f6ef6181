"""The SQLite store: runs and keys survive reopening, one live run per app."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from orchestrator.keys import create_key
from orchestrator.runner.models import Run, RunState
from orchestrator.runner.store import SCHEMA_VERSION, DuplicateLiveRun, Store, StoreError


def make_run(run_id: str, app_name: str = "echo", state: RunState = RunState.STARTING) -> Run:
    return Run(
        id=run_id,
        app_name=app_name,
        team="acme",
        env="main",
        image="registry.test/echo@sha256:" + "a" * 64,
        machine_type="S",
        machine_types=["GPU-H100", "S"],
        endpoints=["/predict"],
        app_env={"MODEL": "small"},
        state=state,
        created_at=float(len(run_id)),
        control_token="token",
    )


def test_store_round_trips_run(tmp_path: Path) -> None:
    path = tmp_path / "runner.db"
    store = Store(path)
    run = make_run("r1")
    store.insert_run(run)
    run.state = RunState.READY
    run.served = 3
    store.update_run(run)
    store.close()

    reopened = Store(path)
    try:
        assert reopened.get_run("r1") == run
        assert reopened.get_run("missing") is None
    finally:
        reopened.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_one_live_run_per_app(tmp_path: Path) -> None:
    store = Store(tmp_path / "runner.db")
    try:
        store.insert_run(make_run("r1", state=RunState.COMPLETED))
        store.insert_run(make_run("r2", state=RunState.PENDING))

        with pytest.raises(DuplicateLiveRun) as raised:
            store.insert_run(make_run("r3"))

        assert raised.value.message == "app acme/echo already has a run that is not final"
        assert store.find_live_run("acme", "echo").id == "r2"
        assert [run.id for run in store.list_runs(live_only=True)] == ["r2"]
        assert store.count_live_runs() == 1
    finally:
        store.close()


def test_store_keys_and_revocation(tmp_path: Path) -> None:
    store = Store(tmp_path / "runner.db")
    try:
        first = create_key("acme", "ci").record
        second = create_key("globex").record
        store.insert_key(first)
        store.insert_key(second)

        assert store.revoke_key(first.id, 100.0) is True
        assert store.revoke_key(first.id, 200.0) is False

        assert store.get_key(first.id).revoked_at == 100.0
        assert [stored.record for stored in store.list_keys(include_revoked=False)] == [second]
        assert [stored.record.id for stored in store.list_keys(team="acme")] == [first.id]
    finally:
        store.close()


def test_store_rejects_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "runner.db"
    Store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    connection.close()

    with pytest.raises(StoreError) as raised:
        Store(path)

    assert raised.value.message == (
        f"{path} has schema version {SCHEMA_VERSION + 1}, newer than this runner's "
        f"{SCHEMA_VERSION}; run a newer runner or move the file away"
    )
