"""``GET /health``: the sidecar's own health and the app's readiness.

The sidecar sends ``GET /health`` to the app and returns 200 only when the
app responded 200 and the sidecar is serving. The body is
``{"sidecar": "ok"|"draining"|"stopped", "app": <the app's JSON or "unreachable">}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from .exchange import Exchange, send_json
from .lifecycle import Lifecycle
from .upstream import UpstreamError, UpstreamPool, fetch

logger = logging.getLogger(__name__)

# The app's health endpoint should respond at once; a slower one counts as down.
APP_HEALTH_TIMEOUT_SECONDS = 5.0


class HealthEndpoint:
    def __init__(self, pool: UpstreamPool, lifecycle: Lifecycle, host_header: bytes) -> None:
        self._pool = pool
        self._lifecycle = lifecycle
        self._headers = [(b"host", host_header)]

    async def __call__(self, exchange: Exchange) -> None:
        app_status, app = await self._check_app(exchange.request_id)
        sidecar = "ok" if self._lifecycle.serving else self._lifecycle.state
        status = 200 if app_status == 200 and self._lifecycle.serving else 503
        await send_json(exchange, status, {"sidecar": sidecar, "app": app})

    async def _check_app(self, request_id: bytes) -> tuple[int, Any]:
        headers = [*self._headers, (b"x-request-id", request_id)]
        try:
            async with asyncio.timeout(APP_HEALTH_TIMEOUT_SECONDS):
                status, body = await fetch(self._pool, b"GET", b"/health", headers)
        except (UpstreamError, TimeoutError) as error:
            logger.debug("app health check failed: %s", error or "timed out")
            return 0, "unreachable"
        try:
            return status, json.loads(body)
        except ValueError:
            # A body that is not JSON is passed on as text, so the caller still
            # gets the app's message.
            return status, body.decode("utf-8", "replace")
