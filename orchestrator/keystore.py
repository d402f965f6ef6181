"""The local key store: hashes of API keys, by team, for local runs."""

from __future__ import annotations

import os
from pathlib import Path

from . import keys


def store_path() -> Path:
    """``$ORCH_CONFIG_DIR/keys.json``, else under the XDG config folder."""
    explicit = os.environ.get("ORCH_CONFIG_DIR")
    if explicit:
        return Path(explicit) / "keys.json"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "orchestrator" / "keys.json"


def load() -> list[keys.KeyRecord]:
    path = store_path()
    return keys.load_key_file(path) if path.is_file() else []


def add(team: str, name: str | None) -> keys.CreatedKey:
    created = keys.create_key(team, name)
    keys.save_key_file(store_path(), [*load(), created.record])
    return created


def revoke(key_id: str) -> bool:
    records = load()
    remaining = [record for record in records if record.id != key_id]
    if len(remaining) == len(records):
        return False
    keys.save_key_file(store_path(), remaining)
    return True


def records_for_run(team: str) -> list[keys.KeyRecord]:
    """Return the stored keys plus the key in ``ORCH_KEY``, counted as a key of ``team``."""
    records = load()
    presented = os.environ.get("ORCH_KEY")
    if presented:
        key_id, secret = keys.parse_key(presented)
        records = [record for record in records if record.id != key_id]
        records.append(keys.KeyRecord(id=key_id, hash=keys.hash_secret(secret), team=team))
    return records
