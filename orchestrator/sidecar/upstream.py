"""HTTP/1.1 client connections to the app, kept alive in a small pool.

Every failure talking to the app (connect, read, write, invalid HTTP) is
raised as ``UpstreamError``, so callers can tell it apart from a client that
went away.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from . import http1
from .channel import Channel, ChannelClosed

logger = logging.getLogger(__name__)


class UpstreamError(Exception):
    """The app could not be reached or sent an invalid response."""


class UpstreamUnreachable(UpstreamError):
    """A connection to the app could not be opened."""


class UpstreamConnection:
    """One keep-alive connection to the app and the parser of its responses."""

    __slots__ = ("channel", "responses", "reused", "reusable", "_keep_alive")

    def __init__(self) -> None:
        self.responses = http1.ResponseReader()
        self.channel = Channel(
            self.responses.feed, self.responses.events, feed_eof=self.responses.feed_eof
        )
        # True when an earlier request used this connection, so the app may
        # have closed it by now.
        self.reused = False
        # Set once a response has ended and the app offered to keep the
        # connection open.
        self.reusable = False
        self._keep_alive = False

    @property
    def closed(self) -> bool:
        return self.channel.closing

    def start_request(self, method: bytes) -> None:
        """Prepare for a new request with ``method``, before writing any of it."""
        self.reusable = False
        self.responses.expect(method)

    async def write(self, data: bytes) -> None:
        self.channel.write(data)
        try:
            await self.channel.drain()
        except ChannelClosed as error:
            raise UpstreamError("connection to the app lost while sending") from error

    async def next_event(self) -> object:
        """Return the next response event (a head, body bytes or END), reading as needed."""
        while True:
            event = self.next_buffered_event()
            if event is not None:
                return event
            await self.receive()

    async def receive(self) -> None:
        """Wait until more of the response was parsed."""
        if not self.channel.at_eof:
            try:
                await self.channel.wait_for_events()
            except http1.ProtocolError as error:
                raise UpstreamError(f"invalid HTTP response from the app: {error}") from error
        if not self.responses.events and self.channel.at_eof:
            raise UpstreamError("the app closed the connection before responding")

    def close(self) -> None:
        self.channel.close()

    def next_buffered_event(self) -> object | None:
        """Return the next event already received, or None."""
        events = self.responses.events
        if not events:
            return None
        event = events.popleft()
        if type(event) is http1.ResponseHead:
            self._keep_alive = event.keep_alive
        elif event is http1.END:
            self.reusable = self._keep_alive
        return event


class UpstreamPool:
    """Connections to one app address; up to ``max_idle`` idle ones are kept for reuse."""

    def __init__(self, host: str, port: int, max_idle: int) -> None:
        self.host = host
        self.port = port
        self._max_idle = max_idle
        self._idle: collections.deque[UpstreamConnection] = collections.deque()

    async def acquire(self) -> UpstreamConnection:
        """Return an idle connection, or a new one when none is left open."""
        while self._idle:
            # Most recently used first: it is the least likely to have hit the
            # app's keep-alive timeout.
            connection = self._idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
            connection.close()
        return await self.connect()

    async def connect(self) -> UpstreamConnection:
        connection = UpstreamConnection()
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: connection.channel, self.host, self.port)
        except OSError as error:
            raise UpstreamUnreachable(
                f"cannot connect to the app at {self.host}:{self.port}: {error}"
            ) from error
        return connection

    def release(self, connection: UpstreamConnection) -> None:
        """Keep a connection whose exchange completed for reuse, or close it."""
        if (
            connection.reusable
            and not connection.responses.events
            and len(self._idle) < self._max_idle
            and not connection.closed
        ):
            self._idle.append(connection)
            return
        connection.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


async def fetch(
    pool: UpstreamPool,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    max_body: int = 65536,
) -> tuple[int, bytes]:
    """Send a request without a body to the app and return its status and body.

    Only for the sidecar's own calls (health, shutdown). A body longer than
    ``max_body`` bytes raises UpstreamError. A failure on a reused connection
    is retried once on a new one, because the app may have closed the idle
    connection before it read the request.
    """
    connection = await pool.acquire()
    try:
        return await _fetch_on(pool, connection, method, target, headers, max_body)
    except UpstreamError as error:
        if not connection.reused:
            raise
        logger.debug("%s %s failed on a reused connection (%s); retrying", method, target, error)
    connection = await pool.connect()
    return await _fetch_on(pool, connection, method, target, headers, max_body)


async def _fetch_on(
    pool: UpstreamPool,
    connection: UpstreamConnection,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    max_body: int,
) -> tuple[int, bytes]:
    try:
        connection.start_request(method)
        await connection.write(http1.request_head(method, target, headers))

        status = 0
        body = bytearray()
        while True:
            event = await connection.next_event()
            if type(event) is http1.ResponseHead:
                status = event.status
            elif event is http1.END:
                break
            else:
                body += event  # type: ignore[operator]
                if len(body) > max_body:
                    raise UpstreamError(
                        f"response of the app to {target.decode()} exceeds {max_body} bytes"
                    )
    except BaseException:
        connection.close()
        raise
    pool.release(connection)
    return status, bytes(body)
