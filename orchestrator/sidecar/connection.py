"""One client connection: its HTTP/1.1 requests, their responses and keep-alive.

Requests on a connection are served one after another (pipelined requests
wait their turn). Response bytes are queued and written in one call per
``flush()``, so a small response costs one write.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Callable, Iterable

from . import http1
from .channel import Channel, ChannelClosed
from .exchange import ClientDisconnected, Exchange, Handler, Headers, send_json
from .lifecycle import Lifecycle

logger = logging.getLogger(__name__)

# How long an idle keep-alive connection, or a client sending a request head,
# may stay silent. Longer than the 60 s idle timeouts common in load
# balancers, so those close first and never reuse a connection we just closed.
KEEP_ALIVE_SECONDS = 75.0
# How often silent connections are looked for, so a silent connection is
# closed between KEEP_ALIVE_SECONDS and that plus this. One sweep for all
# connections costs less than a timer armed and cancelled for every request.
SWEEP_SECONDS = 5.0
# How much of an unread request body (after a 401 or 503) is read and
# discarded to keep the connection open. A larger body closes the connection.
MAX_DISCARDED_BODY = 1 << 20
# How long closing a connection waits for the client to take the rest of the
# response.
CLOSE_SECONDS = 5.0
_REASON_PHRASES = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Framing of a response body for the client.
_NO_BODY = 0  # HEAD, 204, 304: the head is the whole response
_LENGTH = 1  # Content-Length
_CHUNKED = 2  # Transfer-Encoding: chunked
_UNTIL_CLOSE = 3  # an HTTP/1.0 client: the body ends when the connection closes


class ClientConnection:
    """Serves the requests of one client connection through ``handler``."""

    def __init__(
        self, handler: Handler, lifecycle: Lifecycle, on_connected: Callable[[ClientConnection], None]
    ) -> None:
        self._handler = handler
        self._lifecycle = lifecycle
        self._requests = http1.RequestReader()
        self.channel = Channel(
            self._requests.feed, self._requests.events, on_connected=lambda: on_connected(self)
        )
        self._output: list[bytes] = []
        self._aborted = False
        # Loop time since when the connection waits for a request head, or
        # None; close_silent_connections() reads it.
        self.waiting_since: float | None = None
        self._loop = asyncio.get_running_loop()
        self._client_host = b""

        # State of the current request and its response.
        self._request: http1.RequestHead | None = None
        self._body_done = False
        self._waiting_for_continue = False
        self._framing = _NO_BODY
        self._response_started = False
        self._response_done = False
        self._close_after_response = False

    async def serve(self) -> None:
        """Serve requests until the client closes, an error occurs or the sidecar stops."""
        peer = self.channel.transport.get_extra_info("peername")
        self._client_host = str(peer[0]).encode("ascii") if peer else b""
        try:
            while await self._serve_one():
                pass
        except ClientDisconnected as error:
            logger.debug("client %s disconnected: %s", self._client_host, error.__cause__ or error)
        except http1.ProtocolError as error:
            await self._send_bad_request(error)
        finally:
            await self._close()

    async def _close(self) -> None:
        # Wait until the transport has written out its buffer: the process may
        # exit soon after a stop, and the last response must not be lost.
        self.channel.close()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.channel.wait_closed()
        except TimeoutError as error:
            logger.debug("closing connection of %s: %r", self._client_host, error)

    async def _serve_one(self) -> bool:
        request = await self._receive_request()
        if request is None:
            return False
        self._begin_cycle(request)

        exchange = Exchange(self, request, self._client_host)
        try:
            # TODO: the client socket is not read while the handler runs. A
            # client that disconnects while queued or waiting for the app is
            # noticed only at the first write, so its request still reaches the app.
            await self._handler(exchange)
        except (ClientDisconnected, http1.ProtocolError):
            raise
        except Exception:
            logger.exception("internal error while serving request %s", exchange.log_id)
            if exchange.response_started:
                return False
            await send_json(exchange, 500, {"error": "internal error in the sidecar"})

        if self._aborted:
            return False
        return await self._end_cycle()

    def _begin_cycle(self, request: http1.RequestHead) -> None:
        self._request = request
        self._body_done = False
        self._waiting_for_continue = request.http_version == "1.1" and any(
            name == b"expect" and value.lower() == b"100-continue"
            for name, value in request.headers
        )
        self._response_started = False
        self._response_done = False
        # HTTP/1.0 keep-alive is not offered: such a client gets one response.
        self._close_after_response = not request.keep_alive or request.http_version != "1.1"

    async def _receive_request(self) -> http1.RequestHead | None:
        events = self._requests.events
        channel = self.channel
        while not events:
            if self._requests.upgraded:
                return None
            if channel.at_eof:
                if self._requests.in_message:
                    raise ClientDisconnected("connection closed in the middle of a request head")
                return None
            if not self._requests.in_message and self._lifecycle.stopped:
                return None
            self.waiting_since = self._loop.time()
            try:
                await channel.wait_for_events()
            finally:
                self.waiting_since = None
        return events.popleft()  # type: ignore[return-value]

    @property
    def idle(self) -> bool:
        """True while waiting for the first byte of the next request.

        A stopping sidecar closes idle connections at once, because that cuts
        nothing.
        """
        return self.waiting_since is not None and not self._requests.in_message

    def close_if_silent(self, since: float) -> None:
        """Close the connection if it has waited for a request head since before ``since``."""
        if self.waiting_since is not None and self.waiting_since < since:
            logger.debug("closing silent connection of %s", self._client_host)
            self.channel.close()

    async def _end_cycle(self) -> bool:
        """Prepare for the next request; return False when the connection must close."""
        if not self._response_done or self._close_after_response:
            return False
        if not self._body_done and not await self._discard_body():
            return False
        return not self._requests.upgraded

    async def _discard_body(self) -> bool:
        """Read and drop the rest of a request body that the response did not need.

        Returns False when the connection must close instead: the body is
        larger than MAX_DISCARDED_BODY, or it does not arrive within
        KEEP_ALIVE_SECONDS.
        """
        # A client waiting for "100 Continue" has not sent its body and may
        # never send it, so only closing the connection is safe.
        if self._waiting_for_continue:
            return False
        discarded = 0
        async with asyncio.timeout(KEEP_ALIVE_SECONDS):
            while discarded <= MAX_DISCARDED_BODY:
                chunk = await self.receive_body()
                if not chunk:
                    return True
                discarded += len(chunk)
        return False

    async def receive_body(self) -> bytes:
        """Return the next chunk of the current request body, or b"" at its end."""
        if self._body_done:
            return b""
        events = self._requests.events
        while not events:
            if self.channel.at_eof:
                raise ClientDisconnected("connection closed during the request body")
            if self._waiting_for_continue:
                self._waiting_for_continue = False
                self.channel.write(_CONTINUE)
            try:
                await self.channel.wait_for_events()
            except http1.ProtocolError as error:
                raise ClientDisconnected("invalid request body framing") from error
        event = events.popleft()
        if event is http1.END:
            self._body_done = True
            return b""
        self._waiting_for_continue = False
        return event  # type: ignore[return-value]

    def start_response(
        self, exchange: Exchange, status: int, headers: Headers, reason: bytes | None
    ) -> None:
        if reason is None:
            reason = _REASON_PHRASES.get(status, b"")
        headers.append((b"x-request-id", exchange.request_id))
        # A client still waiting for "100 Continue" will not send its body
        # now, so the connection cannot be reused after this response.
        if self._waiting_for_continue:
            self._close_after_response = True
        self._framing = self._choose_framing(exchange.method, status, headers)
        if self._framing == _CHUNKED:
            headers.append((b"transfer-encoding", b"chunked"))
        elif self._framing == _UNTIL_CLOSE:
            self._close_after_response = True
        if not self._lifecycle.serving:
            # Tell keep-alive clients not to reuse this connection, so that a
            # client following HTTP does not send a request on a connection
            # that the end of the stop closes.
            self._close_after_response = True
        if self._close_after_response:
            headers.append((b"connection", b"close"))
        self._response_started = True
        self._output.append(http1.response_head(status, reason, headers))

    def _choose_framing(self, method: bytes, status: int, headers: Headers) -> int:
        if method == b"HEAD" or status in (204, 304):
            return _NO_BODY
        if any(name == b"content-length" for name, _ in headers):
            return _LENGTH
        if self._request is not None and self._request.http_version == "1.1":
            return _CHUNKED
        return _UNTIL_CLOSE

    def send_body(self, data: bytes) -> None:
        if not data or self._framing == _NO_BODY:
            return
        self._output.append(http1.chunk(data) if self._framing == _CHUNKED else data)

    def end_response(self) -> None:
        if self._framing == _CHUNKED:
            self._output.append(http1.LAST_CHUNK)
        self._response_done = True

    async def flush(self) -> None:
        if self._output:
            data = b"".join(self._output) if len(self._output) > 1 else self._output[0]
            self._output.clear()
            self.channel.write(data)
        try:
            await self.channel.drain()
        except ChannelClosed as error:
            raise ClientDisconnected("connection lost while sending the response") from error

    def abort(self) -> None:
        self._aborted = True
        self._output.clear()
        self.channel.close()

    async def _send_bad_request(self, error: http1.ProtocolError) -> None:
        logger.info("invalid request from %s: %s", self._client_host, error)
        if self._response_started:
            return
        body = b'{"error":"invalid HTTP request"}'
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        try:
            self.channel.write(
                http1.response_head(error.status, _REASON_PHRASES.get(error.status, b""), headers)
                + body
            )
            await self.channel.drain()
        except ChannelClosed as write_error:
            logger.debug(
                "could not send %d to %s: %r", error.status, self._client_host, write_error
            )


async def close_silent_connections(connections: Iterable[ClientConnection]) -> None:
    """Close connections silent for KEEP_ALIVE_SECONDS, every SWEEP_SECONDS, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        since = loop.time() - KEEP_ALIVE_SECONDS
        for connection in list(connections):
            connection.close_if_silent(since)
