"""One asyncio event loop in a dedicated thread, shared by all async user code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar


T = TypeVar("T")

_END = object()


class EventLoopThread:
    """Runs awaitables from other threads on one event loop.

    Async endpoints, ``setup()`` and ``teardown()`` all run on this loop, so
    objects they share (clients, locks) stay bound to one loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="event-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and block the calling thread until it finishes.

        Must not be called from the loop's own thread, which would deadlock.
        """
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), self._loop)
        return future.result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Return a blocking iterator over an async iterator, advanced on the loop."""
        return _AsyncIteratorBridge(self, iterator)

    def stop(self, timeout: float = 5.0) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()


class _AsyncIteratorBridge:
    def __init__(self, loop: EventLoopThread, iterator: AsyncIterator[Any]) -> None:
        self._loop = loop
        self._iterator = iterator

    def __iter__(self) -> _AsyncIteratorBridge:
        return self

    def __next__(self) -> Any:
        item = self._loop.run(_next_or_end(self._iterator))
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            self._loop.run(aclose())


async def _await(awaitable: Awaitable[T]) -> T:
    # run_coroutine_threadsafe takes coroutines only, not other awaitables.
    return await awaitable


async def _next_or_end(iterator: AsyncIterator[Any]) -> Any:
    # StopAsyncIteration is returned as a marker instead of crossing threads
    # through a future as an exception.
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END
