"""The key file of a local run, copied from the local key store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrator import keys, keystore
from orchestrator.local.run_keys import RunKeys


@pytest.fixture(autouse=True)
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ORCH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ORCH_KEY", raising=False)


def key_ids(run_keys: RunKeys) -> set[str]:
    return {item["id"] for item in json.loads((run_keys.folder / "keys.json").read_text())}


def test_copy_readable_by_the_sidecar(tmp_path: Path) -> None:
    created = keystore.add("vision", None)

    run_keys = RunKeys("vision")

    mode = stat.S_IMODE((run_keys.folder / "keys.json").stat().st_mode)
    assert mode == 0o644
    assert stat.S_IMODE(run_keys.folder.stat().st_mode) == 0o755
    assert key_ids(run_keys) == {created.record.id}
    assert run_keys.folder.parent == tmp_path / "home" / "runs"


def test_refresh_without_change_keeps_file() -> None:
    keystore.add("vision", None)
    run_keys = RunKeys("vision")
    inode = (run_keys.folder / "keys.json").stat().st_ino

    assert run_keys.refresh() is False
    assert (run_keys.folder / "keys.json").stat().st_ino == inode


def test_refresh_adds_and_revokes() -> None:
    first = keystore.add("vision", None)
    run_keys = RunKeys("vision")

    second = keystore.add("vision", None)
    assert run_keys.refresh() is True
    assert key_ids(run_keys) == {first.record.id, second.record.id}

    keystore.revoke(first.record.id)
    assert run_keys.refresh() is True
    assert key_ids(run_keys) == {second.record.id}


def test_store_created_after_start() -> None:
    run_keys = RunKeys("vision")
    assert key_ids(run_keys) == set()

    created = keystore.add("vision", None)

    assert run_keys.refresh() is True
    assert key_ids(run_keys) == {created.record.id}


def test_env_key_counts_for_the_team(monkeypatch: pytest.MonkeyPatch) -> None:
    created = keys.create_key("elsewhere", None)
    monkeypatch.setenv("ORCH_KEY", created.key)

    run_keys = RunKeys("vision")

    [record] = json.loads((run_keys.folder / "keys.json").read_text())
    assert record["id"] == created.record.id
    assert record["team"] == "vision"


def test_remove_deletes_folder() -> None:
    run_keys = RunKeys("vision")

    run_keys.remove()

    assert not run_keys.folder.exists()
