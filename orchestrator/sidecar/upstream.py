"""HTTP/1.1 client connections to the app, kept alive in a small pool.

Every failure talking to the app (connect, read, write, invalid HTTP) is
raised as ``UpstreamError``, so callers can tell it apart from a client that
went away.
"""

from __future__ import annotations

import asyncio
import collections
import logging

import h11

logger = logging.getLogger(__name__)

READ_SIZE = 65536


class UpstreamError(Exception):
    """The app could not be reached or sent an invalid response."""


class UpstreamUnreachable(UpstreamError):
    """A connection to the app could not be opened."""


class UpstreamConnection:
    """One keep-alive connection to the app with its h11 client state."""

    __slots__ = ("reader", "writer", "protocol", "reused")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        # True when an earlier request used this connection, so the app may
        # have closed it by now.
        self.reused = False

    @property
    def closed(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        try:
            await self.writer.drain()
        except OSError as error:
            raise UpstreamError(f"connection to the app lost while sending: {error}") from error

    async def next_event(self) -> h11.Event | type[h11.NEED_DATA]:
        """Return the next response event, reading from the app as needed."""
        while True:
            event = self.next_buffered_event()
            if event is not h11.NEED_DATA:
                return event
            await self.receive()

    async def receive(self) -> None:
        """Read what the app sent next into the h11 buffer (b"" at end of stream)."""
        try:
            data = await self.reader.read(READ_SIZE)
        except OSError as error:
            raise UpstreamError(f"connection to the app lost while receiving: {error}") from error
        self.protocol.receive_data(data)

    def close(self) -> None:
        self.writer.close()

    def next_buffered_event(self) -> h11.Event | type[h11.NEED_DATA]:
        """Return the next event already received, or NEED_DATA."""
        try:
            event = self.protocol.next_event()
        except h11.RemoteProtocolError as error:
            raise UpstreamError(f"invalid HTTP response from the app: {error}") from error
        if type(event) is h11.ConnectionClosed:
            raise UpstreamError("the app closed the connection before responding")
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
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as error:
            raise UpstreamUnreachable(
                f"cannot connect to the app at {self.host}:{self.port}: {error}"
            ) from error
        return UpstreamConnection(reader, writer)

    def release(self, connection: UpstreamConnection) -> None:
        """Keep a connection whose exchange completed for reuse, or close it."""
        protocol = connection.protocol
        reusable = (
            protocol.our_state is h11.DONE
            and protocol.their_state is h11.DONE
            and len(self._idle) < self._max_idle
            and not connection.closed
        )
        if not reusable:
            connection.close()
            return
        protocol.start_next_cycle()
        self._idle.append(connection)

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
        protocol = connection.protocol
        request = h11.Request(method=method, target=target, headers=headers)
        await connection.write(protocol.send(request) + protocol.send(h11.EndOfMessage()))

        status = 0
        body = bytearray()
        while True:
            event = await connection.next_event()
            event_type = type(event)
            if event_type is h11.Response:
                status = event.status_code
            elif event_type is h11.Data:
                body += event.data
                if len(body) > max_body:
                    raise UpstreamError(
                        f"response of the app to {target.decode()} exceeds {max_body} bytes"
                    )
            elif event_type is h11.EndOfMessage:
                break
    except BaseException:
        connection.close()
        raise
    pool.release(connection)
    return status, bytes(body)
