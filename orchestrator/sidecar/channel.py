"""A TCP connection as an asyncio protocol that feeds a parser as bytes arrive.

Both sides of the sidecar use it: client connections feed a request parser,
connections to the app a response parser. The parser's events are read by
one coroutine, which waits here when it needs more. Compared with asyncio's
streams, there is no intermediate byte buffer and no extra copy.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable


class ChannelClosed(ConnectionError):
    """Error raised when the connection is lost before a write completes."""


class Channel(asyncio.Protocol):
    """Protocol that passes received bytes to ``feed``; one reader waits for the events.

    Reading is paused while parsed events wait unread, so a client that sends
    faster than the sidecar serves fills its own socket buffers, not the
    sidecar's memory.
    """

    def __init__(
        self,
        feed: Callable[[bytes], None],
        events: collections.deque[object],
        feed_eof: Callable[[], None] | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self._feed = feed
        self._on_connected = on_connected
        self._feed_eof = feed_eof
        self._events = events
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        # True once the peer closed its side or the connection was lost.
        self.at_eof = False
        # A parse error, raised to the reader after the events before it.
        self._error: Exception | None = None
        self._data_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed = self._loop.create_future()

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._on_connected is not None:
            self._on_connected()

    def data_received(self, data: bytes) -> None:
        try:
            self._feed(data)
        except Exception as error:
            self._error = error
        if self._data_waiter is not None:
            self._wake(self._data_waiter)
        elif (self._events or self._error) and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._end_of_stream()
        # Keep the transport open, so a response can still be written to a
        # client that closed only its sending side.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_of_stream()
        if self._drain_waiter is not None:
            self._wake(self._drain_waiter)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None:
            self._wake(self._drain_waiter)

    # Methods for the single reader and writer of the connection

    async def wait_for_events(self) -> None:
        """Return once more events were parsed or the stream ended; raise a parse error."""
        if self._error is not None:
            raise self._error
        if self.at_eof:
            return
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        self._data_waiter = self._loop.create_future()
        try:
            await self._data_waiter
        finally:
            self._data_waiter = None
        if self._error is not None and not self._events:
            raise self._error

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._closed.done():
            raise ChannelClosed("connection lost")
        if not self._writing_paused:
            return
        self._drain_waiter = self._loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None
        if self._closed.done():
            raise ChannelClosed("connection lost")

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing() or self.at_eof

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        await self._closed

    def _end_of_stream(self) -> None:
        if self.at_eof:
            return
        self.at_eof = True
        if self._feed_eof is not None:
            try:
                self._feed_eof()
            except Exception as error:
                self._error = error
        if self._data_waiter is not None:
            self._wake(self._data_waiter)

    @staticmethod
    def _wake(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)
