"""The admission layer: the request limit, and no new requests once stopping.

With a limit of N, exactly N requests reach the app. A request reserves a
place here, and gives it back when an inner layer turns it away (a full
queue), so that rejected requests never count. When the N admitted requests
have completed, the layer requests a graceful stop.
"""

from __future__ import annotations

import logging

from .exchange import Exchange, Handler, reject
from .lifecycle import REASON_LIMIT, Lifecycle

logger = logging.getLogger(__name__)

# Served by the app but not counted against the limit, so that a developer can
# open the API docs without using up a limited run.
UNCOUNTED_PATHS = frozenset({b"/docs", b"/openapi.json"})


class AdmissionLayer:
    """Enforces ``limit`` (0 = none) and rejects requests while the sidecar stops."""

    def __init__(self, inner: Handler, limit: int, lifecycle: Lifecycle) -> None:
        self._inner = inner
        self.limit = limit
        self._lifecycle = lifecycle
        self._reserved = 0
        self._completed = 0

    @property
    def remaining(self) -> int | None:
        """Places left under the limit, or None without a limit."""
        return self.limit - self._reserved if self.limit else None

    async def __call__(self, exchange: Exchange) -> None:
        counted = self.limit > 0 and exchange.path not in UNCOUNTED_PATHS
        if counted and self._reserved >= self.limit:
            await reject(exchange, 503, {"error": "request limit reached", "limit": self.limit})
            return
        if not self._lifecycle.serving:
            await reject(exchange, 503, {"error": "shutting down"})
            return

        if counted:
            self._reserved += 1
        self._lifecycle.begin_request()
        try:
            await self._inner(exchange)
        finally:
            self._lifecycle.end_request()
            if counted:
                self._settle(exchange)

    def _settle(self, exchange: Exchange) -> None:
        if not exchange.admitted:
            self._reserved -= 1
            return
        self._completed += 1
        if self._completed == self.limit:
            logger.info("request limit reached: %d requests served", self.limit)
            self._lifecycle.request_stop(REASON_LIMIT)
