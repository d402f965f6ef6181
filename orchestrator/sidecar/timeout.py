"""The timeout layer: a request that takes longer than the limit gets 504.

The limit covers the whole exchange with the app, response body included, but
not the time spent in the queue. Cancelling the inner layers closes the
connection to the app, which cancels the request there. When the response had
already started, the client connection is closed instead, so the client sees
a truncated response.
"""

from __future__ import annotations

import asyncio
import logging

from .exchange import Exchange, Handler, send_json

logger = logging.getLogger(__name__)


class TimeoutLayer:
    """Cancels the inner layers after ``seconds``."""

    def __init__(self, inner: Handler, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self._message = f"request timed out after {seconds:g} s"

    async def __call__(self, exchange: Exchange) -> None:
        deadline = asyncio.timeout(self._seconds)
        try:
            async with deadline:
                await self._inner(exchange)
        except TimeoutError:
            if not deadline.expired():
                raise
            await self._report_timeout(exchange)

    async def _report_timeout(self, exchange: Exchange) -> None:
        request_id = exchange.log_id
        if exchange.response_started:
            logger.warning(
                "request %s timed out after %g s while streaming; closing the connection",
                request_id,
                self._seconds,
            )
            exchange.abort()
            return
        logger.warning("request %s timed out after %g s", request_id, self._seconds)
        await send_json(exchange, 504, {"error": self._message})
