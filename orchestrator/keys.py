"""API keys: their format, hashing, verification and the key file.

A key is ``<id>:<secret>``. The id (``k_`` and 12 hex digits) is public: it
names the key in listings and logs. The secret is 32 random bytes in URL-safe
base64 and is shown once, when the key is created. Only the SHA-256 hex digest
of the secret is stored. A fast hash is enough because the secret has 256 bits
of entropy, so it cannot be guessed from the digest, and a slow password hash
would only add latency to every request.

Clients send a key as ``Authorization: Key <id>:<secret>``. Error messages
never repeat a secret. The host-side CLI and the sidecar both use this module,
so it needs only the standard library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import OrchestratorError

KEY_ID_PREFIX = "k_"
AUTHORIZATION_SCHEME = "Key"
SECRET_BYTES = 32

_KEY_ID_PATTERN = re.compile(r"k_[0-9a-f]{12}")
_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
_KEY_FORMAT = "'<id>:<secret>' with an id like 'k_0123456789ab'"

# Compared against when a presented key id is unknown, so that an unknown id
# and a wrong secret take the same time to reject.
_UNKNOWN_KEY_HASH = "0" * 64


class KeyFormatError(OrchestratorError):
    """A key or an ``Authorization`` header value that is not well formed."""


class KeyFileError(OrchestratorError):
    """A key file that cannot be read, parsed or written."""


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """The stored form of a key: its id, the hash of its secret and its team."""

    id: str
    hash: str = dataclasses.field(repr=False)
    team: str
    created_at: int | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as a key file entry, leaving out unset optional fields."""
        entry: dict[str, Any] = {"id": self.id, "hash": self.hash, "team": self.team}
        if self.created_at is not None:
            entry["created_at"] = self.created_at
        if self.name is not None:
            entry["name"] = self.name
        return entry


@dataclasses.dataclass(frozen=True)
class CreatedKey:
    """A new key: the full key to hand to its owner once, and the record to store."""

    key: str = dataclasses.field(repr=False)
    record: KeyRecord


def create_key(team: str, name: str | None = None, *, now: float | None = None) -> CreatedKey:
    """Create a key for ``team``; only ``record`` of the result may be stored."""
    _check_team(team, where="team")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise KeyFormatError(f"invalid key name {name!r}: expected a non-empty string or None")

    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    created_at = int(time.time() if now is None else now)
    record = KeyRecord(
        id=key_id, hash=hash_secret(secret), team=team, created_at=created_at, name=name
    )
    return CreatedKey(key=f"{key_id}:{secret}", record=record)


def hash_secret(secret: str) -> str:
    """Return the SHA-256 hex digest that is stored for ``secret``."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_key(key: str) -> tuple[str, str]:
    """Split ``<id>:<secret>`` into its id and secret, checking both formats."""
    key_id, separator, secret = key.strip().partition(":")
    if not separator:
        raise KeyFormatError(
            f"invalid API key: missing ':' between id and secret; expected {_KEY_FORMAT}"
        )
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyFormatError(f"invalid API key: malformed key id; expected {_KEY_FORMAT}")
    if not _SECRET_PATTERN.fullmatch(secret):
        raise KeyFormatError(
            f"invalid API key: the secret must be URL-safe base64 (A-Z, a-z, 0-9, '-', '_'); "
            f"expected {_KEY_FORMAT}"
        )
    return key_id, secret


def parse_authorization(value: str) -> tuple[str, str]:
    """Return the key id and secret of an ``Authorization: Key <id>:<secret>`` value.

    The scheme is matched case-insensitively, as HTTP authentication schemes are.
    """
    scheme, _, credentials = value.strip().partition(" ")
    if not scheme:
        raise KeyFormatError("empty Authorization header; expected 'Key <id>:<secret>'")
    if scheme.lower() != AUTHORIZATION_SCHEME.lower():
        raise KeyFormatError(
            f"unsupported authorization scheme {scheme[:20]!r}; expected 'Key <id>:<secret>'"
        )
    if not credentials.strip():
        raise KeyFormatError("missing key after 'Key'; expected 'Key <id>:<secret>'")
    return parse_key(credentials)


def verify_key(key_id: str, secret: str, records: Mapping[str, KeyRecord]) -> KeyRecord | None:
    """Return the record of the key when the secret matches it, else None.

    The digest comparison runs in constant time, and it also runs for an
    unknown id, so response times do not reveal which ids exist.
    """
    record = records.get(key_id)
    expected = record.hash if record is not None else _UNKNOWN_KEY_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if record is None or not matches:
        return None
    return record


def index_records(records: Iterable[KeyRecord]) -> dict[str, KeyRecord]:
    """Return the records by id; raise KeyFileError when an id appears twice."""
    indexed: dict[str, KeyRecord] = {}
    for record in records:
        if record.id in indexed:
            raise KeyFileError(f"duplicate key id {record.id!r}; each key id must appear once")
        indexed[record.id] = record
    return indexed


def load_key_file(path: str | os.PathLike[str]) -> list[KeyRecord]:
    """Read and validate a key file: a JSON list of key records."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"key file not found: {os.fspath(path)}; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"cannot read key file {os.fspath(path)}: {error}") from error

    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyFileError(f"key file {os.fspath(path)} is not valid JSON: {error}") from error
    if not isinstance(entries, list):
        raise KeyFileError(
            f"key file {os.fspath(path)} must contain a JSON list of keys, "
            f"got {type(entries).__name__}"
        )

    records = [
        _record_from_entry(entry, f"key file {os.fspath(path)}: entry {index}")
        for index, entry in enumerate(entries)
    ]
    index_records(records)
    return records


def save_key_file(path: str | os.PathLike[str], records: Iterable[KeyRecord]) -> None:
    """Write the records as a key file, readable by its owner only.

    The file is written next to the target and renamed over it, so a reader
    such as the sidecar never reads a half-written file.
    """
    records = list(records)
    index_records(records)
    target = Path(path)
    text = json.dumps([record.to_json() for record in records], indent=2) + "\n"

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise KeyFileError(f"cannot write key file {target}: {error}") from error


def _record_from_entry(entry: Any, where: str) -> KeyRecord:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: expected an object, got {type(entry).__name__}")
    for field in ("id", "hash", "team"):
        if not isinstance(entry.get(field), str):
            raise KeyFileError(f"{where}: missing or non-string field {field!r}")

    if not _KEY_ID_PATTERN.fullmatch(entry["id"]):
        raise KeyFileError(
            f"{where}: invalid key id {entry['id']!r}; expected 'k_' and 12 lowercase hex digits"
        )
    if not _HASH_PATTERN.fullmatch(entry["hash"]):
        raise KeyFileError(
            f"{where}: invalid hash of key {entry['id']}; "
            "expected 64 lowercase hex digits (SHA-256)"
        )
    _check_team(entry["team"], where=f"{where}: team", error=KeyFileError)

    created_at = entry.get("created_at")
    if created_at is not None and (
        isinstance(created_at, bool) or not isinstance(created_at, (int, float))
    ):
        raise KeyFileError(f"{where}: invalid created_at {created_at!r}; expected Unix seconds")
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise KeyFileError(f"{where}: invalid name {name!r}; expected a string")

    return KeyRecord(
        id=entry["id"],
        hash=entry["hash"],
        team=entry["team"],
        created_at=None if created_at is None else int(created_at),
        name=name,
    )


def _check_team(team: Any, *, where: str, error: type[OrchestratorError] = KeyFormatError) -> None:
    if not isinstance(team, str) or not team.strip() or team != team.strip():
        raise error(
            f"invalid {where} {team!r}: expected a non-empty name without surrounding spaces"
        )
