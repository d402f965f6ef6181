"""Control endpoints under ``/_orch/``, for the CLI or runner that started the sidecar.

Every call needs the header ``X-Orch-Control-Token`` equal to
``ORCH_CONTROL_TOKEN`` (compared in constant time), else 403. Without a
configured token every call gets 403.

- ``POST /_orch/lease``: renew the lease, 204.
- ``GET /_orch/status``: the state and counters as JSON, 200.
- ``POST /_orch/stop``: start a graceful stop, 202.

Other paths under ``/_orch/`` get 404 and are never passed to the app.
"""

from __future__ import annotations

import hmac
import logging
import posixpath
import urllib.parse
from collections.abc import Callable
from typing import Any

from .exchange import Exchange, send_json
from .lifecycle import REASON_STOP, Lifecycle

logger = logging.getLogger(__name__)

CONTROL_PREFIX = b"/_orch"


class ControlEndpoints:
    def __init__(
        self, token: str, lifecycle: Lifecycle, status: Callable[[], dict[str, Any]]
    ) -> None:
        self._token = token.encode("utf-8")
        self._lifecycle = lifecycle
        self._status = status
        self._routes = {
            b"/_orch/lease": (b"POST", self._renew_lease),
            b"/_orch/status": (b"GET", self._report_status),
            b"/_orch/stop": (b"POST", self._stop),
        }

    async def __call__(self, exchange: Exchange) -> None:
        route = self._routes.get(normalize_path(exchange.path))
        if route is None:
            path = exchange.path[:200].decode("latin-1")
            await send_json(exchange, 404, {"error": f"unknown control endpoint {path}"})
            return
        if not self._token or not hmac.compare_digest(exchange.control_token or b"", self._token):
            logger.warning(
                "rejected %s %s from %s: missing or invalid control token",
                exchange.method.decode("latin-1"),
                exchange.path.decode("latin-1"),
                exchange.client_host.decode("latin-1"),
            )
            await send_json(exchange, 403, {"error": "missing or invalid X-Orch-Control-Token"})
            return
        method, endpoint = route
        if exchange.method != method:
            await send_json(
                exchange,
                405,
                {"error": f"method not allowed; use {method.decode()}"},
                [(b"allow", method)],
            )
            return
        await endpoint(exchange)

    async def _renew_lease(self, exchange: Exchange) -> None:
        self._lifecycle.renew_lease()
        exchange.start_response(204, [])
        exchange.end_response()
        await exchange.flush()

    async def _report_status(self, exchange: Exchange) -> None:
        await send_json(exchange, 200, self._status())

    async def _stop(self, exchange: Exchange) -> None:
        self._lifecycle.request_stop(REASON_STOP)
        await send_json(exchange, 202, {"state": self._lifecycle.state})


def is_control_path(path: bytes) -> bool:
    """Return whether ``path`` leads under ``/_orch/`` once decoded and normalized.

    The app's framework decodes ``%5F`` and resolves ``..``, so the check
    must too, or a client could reach the app's control endpoints.
    """
    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + b"/"):
        return True
    if b"%" not in path and b"/." not in path and b"//" not in path:
        return False
    normalized = normalize_path(path)
    return normalized == CONTROL_PREFIX or normalized.startswith(CONTROL_PREFIX + b"/")


def normalize_path(path: bytes) -> bytes:
    """Percent-decode ``path`` and resolve ``.``, ``..`` and repeated slashes."""
    decoded = urllib.parse.unquote_to_bytes(path)
    normalized = posixpath.normpath(b"/" + decoded.lstrip(b"/"))
    return b"/" + normalized.lstrip(b"/")
