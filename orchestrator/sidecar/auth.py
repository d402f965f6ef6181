"""The auth layer: checks the API key of a request against the key file.

Modes: ``public`` needs no key; ``private`` needs a key of the app's team;
``shared`` accepts a key of any team. A request without a valid key gets 401
and never reaches the app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ..keys import (
    KeyFileError,
    KeyFormatError,
    KeyRecord,
    index_records,
    load_key_file,
    parse_authorization,
    verify_key,
)
from .exchange import Exchange, Handler, reject

logger = logging.getLogger(__name__)

_CHALLENGE = ((b"www-authenticate", b"Key"),)


class KeyStore:
    """The keys of a key file, reloaded when the file changes.

    The file is checked on every lookup (one ``stat`` call), so a revoked or
    new key applies to the next request. A reload that fails keeps the keys
    loaded before and logs the error once for each version of the file.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._signature = self._stat()
        self._records = index_records(load_key_file(path))
        self._failed_signature: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> Mapping[str, KeyRecord]:
        signature = self._stat()
        if signature != self._signature and signature != self._failed_signature:
            self._reload(signature)
        return self._records

    def _reload(self, signature: tuple[int, int, int] | None) -> None:
        try:
            records = index_records(load_key_file(self._path))
        except KeyFileError as error:
            self._failed_signature = signature
            logger.error(
                "cannot reload keys, keeping the %d keys loaded before: %s",
                len(self._records),
                error,
            )
            return
        self._signature = signature
        self._failed_signature = None
        self._records = records
        logger.info("reloaded %d keys from %s", len(records), self._path)

    def _stat(self) -> tuple[int, int, int] | None:
        # Modification time alone can miss a rewrite within the file system's
        # time resolution; size and inode (changed by a rename) catch most.
        try:
            status = os.stat(self._path)
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino


class AuthLayer:
    """Rejects requests without a valid API key, unless the mode is ``public``."""

    def __init__(self, inner: Handler, mode: str, team: str | None, keys: KeyStore | None) -> None:
        self._inner = inner
        self._mode = mode
        self._team = team
        self._keys = keys

    async def __call__(self, exchange: Exchange) -> None:
        if self._mode == "public":
            await self._inner(exchange)
            return

        assert self._keys is not None
        if exchange.authorization is None:
            logger.debug("request %s rejected: no API key", exchange.log_id)
            await reject(
                exchange,
                401,
                {"error": "missing API key; send the header 'Authorization: Key <id>:<secret>'"},
                _CHALLENGE,
            )
            return
        try:
            key_id, secret = parse_authorization(exchange.authorization.decode("latin-1"))
        except KeyFormatError as error:
            logger.debug("request %s rejected: %s", exchange.log_id, error)
            await reject(exchange, 401, {"error": error.message}, _CHALLENGE)
            return

        record = verify_key(key_id, secret, self._keys.records())
        if record is None:
            logger.debug("request %s rejected: invalid key %s", exchange.log_id, key_id)
            await reject(exchange, 401, {"error": "invalid API key"}, _CHALLENGE)
            return
        if self._mode == "private" and record.team != self._team:
            logger.info(
                "request %s rejected: key %s is of team %s, and this app is private to team %s",
                exchange.log_id,
                key_id,
                record.team,
                self._team,
            )
            await reject(exchange, 401, {"error": "API key not valid for this app"}, _CHALLENGE)
            return

        exchange.key_id = record.id
        await self._inner(exchange)
