"""API keys: creation, parsing, verification, the key file and its reload."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator.keys import (
    KeyFileError,
    KeyFormatError,
    KeyRecord,
    create_key,
    hash_secret,
    index_records,
    load_key_file,
    parse_authorization,
    parse_key,
    save_key_file,
    verify_key,
)
from orchestrator.sidecar.auth import KeyStore


def test_create_key_format() -> None:
    created = create_key("alpha", name="ci", now=1700000000.5)

    key_id, secret = created.key.split(":")
    assert key_id.startswith("k_")
    assert len(key_id) == 14
    assert int(key_id[2:], 16) >= 0
    assert len(secret) == 43
    assert created.record == KeyRecord(
        id=key_id, hash=hash_secret(secret), team="alpha", created_at=1700000000, name="ci"
    )
    assert secret not in repr(created)
    assert secret not in json.dumps(created.record.to_json())


def test_create_key_unique() -> None:
    keys = {create_key("alpha").key for _ in range(50)}

    assert len(keys) == 50


@pytest.mark.parametrize("team", ["", "  ", " alpha", None])
def test_create_key_rejects_bad_team(team) -> None:
    with pytest.raises(KeyFormatError) as raised:
        create_key(team)

    assert (
        raised.value.message
        == f"invalid team {team!r}: expected a non-empty name without surrounding spaces"
    )


def test_hash_secret_is_sha256_hex() -> None:
    assert hash_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_parse_authorization_valid() -> None:
    created = create_key("alpha")

    assert parse_authorization(f"Key {created.key}") == tuple(created.key.split(":"))
    assert parse_authorization(f"key  {created.key} ") == tuple(created.key.split(":"))


MISSING_SEPARATOR = (
    "invalid API key: missing ':' between id and secret; "
    "expected '<id>:<secret>' with an id like 'k_0123456789ab'"
)
BAD_ID = (
    "invalid API key: malformed key id; expected '<id>:<secret>' with an id like 'k_0123456789ab'"
)
BAD_SECRET = (
    "invalid API key: the secret must be URL-safe base64 (A-Z, a-z, 0-9, '-', '_'); "
    "expected '<id>:<secret>' with an id like 'k_0123456789ab'"
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty Authorization header; expected 'Key <id>:<secret>'"),
        ("   ", "empty Authorization header; expected 'Key <id>:<secret>'"),
        ("Bearer token", "unsupported authorization scheme 'Bearer'; expected 'Key <id>:<secret>'"),
        (
            "Basic dXNlcjpwYXNz",
            "unsupported authorization scheme 'Basic'; expected 'Key <id>:<secret>'",
        ),
        ("Key", "missing key after 'Key'; expected 'Key <id>:<secret>'"),
        ("Key    ", "missing key after 'Key'; expected 'Key <id>:<secret>'"),
        ("Key k_0123456789ab", MISSING_SEPARATOR),
        ("Key k_0123456789ab:", BAD_SECRET),
        ("Key k_0123:secret", BAD_ID),
        ("Key K_0123456789AB:secret", BAD_ID),
        ("Key :secret", BAD_ID),
        ("Key k_0123456789ab:sec ret", BAD_SECRET),
        ("Key k_0123456789ab:sec/ret+=", BAD_SECRET),
    ],
)
def test_parse_authorization_rejects(value: str, message: str) -> None:
    with pytest.raises(KeyFormatError) as raised:
        parse_authorization(value)

    assert raised.value.message == message


def test_parse_key_error_hides_secret() -> None:
    with pytest.raises(KeyFormatError) as raised:
        parse_key("bad-id:very-secret-value")

    assert "very-secret-value" not in raised.value.message


def test_verify_key_matches() -> None:
    alpha = create_key("alpha")
    beta = create_key("beta")
    records = index_records([alpha.record, beta.record])

    assert verify_key(*parse_key(alpha.key), records) == alpha.record
    assert verify_key(*parse_key(beta.key), records) == beta.record


def test_verify_key_wrong_secret() -> None:
    alpha = create_key("alpha")
    records = index_records([alpha.record])

    assert verify_key(alpha.record.id, "A" * 43, records) is None


def test_verify_key_unknown_id() -> None:
    alpha = create_key("alpha")
    other = create_key("alpha")
    records = index_records([alpha.record])

    assert verify_key(*parse_key(other.key), records) is None


def test_key_file_round_trip(tmp_path: Path) -> None:
    records = [create_key("alpha", name="ci").record, create_key("beta").record]
    path = tmp_path / "nested" / "keys.json"

    save_key_file(path, records)

    assert load_key_file(path) == records
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())[1] == records[1].to_json()
    assert "name" not in json.loads(path.read_text())[1]
    assert [entry.name for entry in tmp_path.joinpath("nested").iterdir()] == ["keys.json"]


def test_key_file_minimal_records(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"id": "k_0123456789ab", "hash": "a" * 64, "team": "alpha"}]))

    assert load_key_file(path) == [KeyRecord(id="k_0123456789ab", hash="a" * 64, team="alpha")]


GOOD_ENTRY = {"id": "k_0123456789ab", "hash": "a" * 64, "team": "alpha"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{",
            "is not valid JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ("{}", "must contain a JSON list of keys, got dict"),
        ("[1]", ": entry 0: expected an object, got int"),
        (
            json.dumps([{"id": "k_0123456789ab", "team": "alpha"}]),
            ": entry 0: missing or non-string field 'hash'",
        ),
        (
            json.dumps([GOOD_ENTRY | {"id": "key-1"}]),
            ": entry 0: invalid key id 'key-1'; expected 'k_' and 12 lowercase hex digits",
        ),
        (
            json.dumps([GOOD_ENTRY | {"hash": "xyz"}]),
            ": entry 0: invalid hash of key k_0123456789ab; "
            "expected 64 lowercase hex digits (SHA-256)",
        ),
        (
            json.dumps([GOOD_ENTRY | {"team": ""}]),
            ": entry 0: team '': expected a non-empty name without surrounding spaces",
        ),
        (
            json.dumps([GOOD_ENTRY | {"created_at": "yesterday"}]),
            ": entry 0: invalid created_at 'yesterday'; expected Unix seconds",
        ),
        (
            json.dumps([GOOD_ENTRY, GOOD_ENTRY]),
            "duplicate key id 'k_0123456789ab'; each key id must appear once",
        ),
    ],
)
def test_key_file_rejects_invalid(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)

    with pytest.raises(KeyFileError) as raised:
        load_key_file(path)

    assert message in raised.value.message


def test_key_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(KeyFileError) as raised:
        load_key_file(path)

    assert raised.value.message == f"key file not found: {path}; check the path"


def test_key_store_applies_revocation(tmp_path: Path) -> None:
    active = create_key("alpha")
    revoked = create_key("alpha")
    path = tmp_path / "keys.json"
    save_key_file(path, [active.record, revoked.record])
    store = KeyStore(str(path))

    before = verify_key(*parse_key(revoked.key), store.records())
    save_key_file(path, [active.record])
    after = verify_key(*parse_key(revoked.key), store.records())

    assert before == revoked.record
    assert after is None
    assert verify_key(*parse_key(active.key), store.records()) == active.record


def test_key_store_keeps_keys_when_file_breaks(tmp_path: Path) -> None:
    key = create_key("alpha")
    path = tmp_path / "keys.json"
    save_key_file(path, [key.record])
    store = KeyStore(str(path))

    path.unlink()
    after_delete = store.records()
    path.write_text("[")
    after_corruption = store.records()

    assert list(after_delete) == [key.record.id]
    assert list(after_corruption) == [key.record.id]
