"""The concurrency layer: at most N requests at the app, the rest in a FIFO queue.

When the queue is full, a request gets 503 with ``Retry-After: 1``.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from .exchange import Exchange, Handler, reject

logger = logging.getLogger(__name__)

_RETRY_AFTER = ((b"retry-after", b"1"),)


class ConcurrencyLayer:
    """Lets ``max_concurrency`` requests through at once and queues up to ``max_queue`` more."""

    def __init__(self, inner: Handler, max_concurrency: int, max_queue: int) -> None:
        self._inner = inner
        self._max_concurrency = max_concurrency
        self._max_queue = max_queue
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # A full queue is logged once, and again only after the queue emptied,
        # not for every rejection.
        self._full_logged = False

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    async def __call__(self, exchange: Exchange) -> None:
        if self.in_flight < self._max_concurrency and not self._waiters:
            self.in_flight += 1
        elif len(self._waiters) >= self._max_queue:
            if not self._full_logged:
                self._full_logged = True
                logger.warning(
                    "queue full (%d in flight, %d waiting): rejecting requests with 503",
                    self.in_flight,
                    len(self._waiters),
                )
            await reject(exchange, 503, {"error": "queue full"}, _RETRY_AFTER)
            return
        else:
            await self._wait_for_slot()

        exchange.admitted = True
        try:
            await self._inner(exchange)
        finally:
            self._release()

    async def _wait_for_slot(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just before the cancellation.
                self._release()
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        # Hand the slot straight to the oldest waiter, so in_flight stays the
        # same and a newcomer cannot overtake the queue.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._full_logged = False
        self.in_flight -= 1
