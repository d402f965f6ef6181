"""One client connection: HTTP/1.1 parsing with h11 and keep-alive.

Requests on a connection are served one after another (pipelined requests
wait their turn). Response bytes are queued and written in one call per
``flush()``, so a small response costs one write.
"""

from __future__ import annotations

import asyncio
import http
import logging

import h11

from .exchange import ClientDisconnected, Exchange, Handler, Headers, send_json
from .lifecycle import Lifecycle

logger = logging.getLogger(__name__)

READ_SIZE = 65536
# How long an idle keep-alive connection, or a client sending a request head,
# may stay silent. Longer than the 60 s idle timeouts common in load
# balancers, so those close first and never reuse a connection we just closed.
KEEP_ALIVE_SECONDS = 75.0
# How much of an unread request body (after a 401 or 503) is read and
# discarded to keep the connection open. A larger body closes the connection.
MAX_DISCARDED_BODY = 1 << 20
# How long closing a connection waits for the client to take the rest of the
# response.
CLOSE_SECONDS = 5.0
_REASON_PHRASES = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}


class ClientConnection:
    """Serves the requests of one client connection through ``handler``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: Handler,
        lifecycle: Lifecycle,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._lifecycle = lifecycle
        self._h11 = h11.Connection(h11.SERVER)
        self._output: list[bytes] = []
        self._aborted = False
        # True while waiting for the first byte of the next request, so that
        # a stopping sidecar can close the connection without cutting anything.
        self.idle = False
        peer = writer.get_extra_info("peername")
        self._client_host = str(peer[0]).encode("ascii") if peer else b""

    async def serve(self) -> None:
        """Serve requests until the client closes, an error occurs or the sidecar stops."""
        try:
            while await self._serve_one():
                pass
        except ClientDisconnected as error:
            logger.debug("client %s disconnected: %s", self._client_host, error.__cause__ or error)
        except h11.RemoteProtocolError as error:
            await self._send_bad_request(error)
        except TimeoutError:
            logger.debug("closing silent connection of %s", self._client_host)
        finally:
            self.idle = False
            await self._close()

    async def _close(self) -> None:
        # Wait until the transport has written out its buffer: the process may
        # exit soon after a stop, and the last response must not be lost.
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._writer.wait_closed()
        except (OSError, TimeoutError) as error:
            logger.debug("closing connection of %s: %r", self._client_host, error)

    async def _serve_one(self) -> bool:
        request = await self._receive_request()
        if request is None:
            return False

        exchange = Exchange(self, request, self._client_host)
        try:
            # TODO: the client socket is not read while the handler runs. A
            # client that disconnects while queued or waiting for the app is
            # noticed only at the first write, so its request still reaches the app.
            await self._handler(exchange)
        except (ClientDisconnected, h11.RemoteProtocolError):
            raise
        except Exception:
            logger.exception("internal error while serving request %s", exchange.log_id)
            if exchange.response_started:
                return False
            await send_json(exchange, 500, {"error": "internal error in the sidecar"})

        if self._aborted:
            return False
        return await self._start_next_cycle(exchange)

    async def _receive_request(self) -> h11.Request | None:
        async with asyncio.timeout(KEEP_ALIVE_SECONDS):
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    if not self._h11.trailing_data[0]:
                        if self._lifecycle.stopped:
                            return None
                        self.idle = True
                    data = await self._read()
                    self.idle = False
                    self._h11.receive_data(data)
                    continue
                if type(event) is h11.Request:
                    return event
                # ConnectionClosed: the client closed between requests.
                return None

    async def _start_next_cycle(self, exchange: Exchange) -> bool:
        """Prepare for the next request; return False when the connection must close."""
        connection = self._h11
        if connection.our_state is not h11.DONE:
            return False
        if connection.their_state is h11.SEND_BODY:
            if not exchange.has_body:
                # The EndOfMessage of a request without a body is already parsed.
                await self.receive_body()
            elif not await self._discard_body():
                return False
        if connection.their_state is not h11.DONE:
            return False
        connection.start_next_cycle()
        return True

    async def _discard_body(self) -> bool:
        """Read and drop the rest of a request body that the response did not need.

        Returns False when the connection must close instead: the body is
        larger than MAX_DISCARDED_BODY, or it does not arrive within
        KEEP_ALIVE_SECONDS.
        """
        # A client waiting for "100 Continue" has not sent its body and may
        # never send it, so only closing the connection is safe.
        if self._h11.they_are_waiting_for_100_continue:
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
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                raise ClientDisconnected("invalid request body framing") from error
            if event is h11.NEED_DATA:
                if self._h11.they_are_waiting_for_100_continue:
                    self._writer.write(
                        self._h11.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                self._h11.receive_data(await self._read())
                continue
            event_type = type(event)
            if event_type is h11.Data:
                return bytes(event.data)
            if event_type is h11.EndOfMessage:
                return b""
            raise ClientDisconnected(
                f"connection closed during the request body ({event_type.__name__})"
            )

    def start_response(
        self, exchange: Exchange, status: int, headers: Headers, reason: bytes | None
    ) -> None:
        if reason is None:
            reason = _REASON_PHRASES.get(status, b"")
        headers.append((b"x-request-id", exchange.request_id))
        if not self._lifecycle.serving:
            # Tell keep-alive clients not to reuse this connection, so that a
            # client following HTTP does not send a request on a connection
            # that the end of the stop closes.
            headers.append((b"connection", b"close"))
        self._output.append(
            self._h11.send(h11.Response(status_code=status, headers=headers, reason=reason))
        )

    def send_body(self, data: bytes) -> None:
        if data:
            self._output.append(self._h11.send(h11.Data(data=data)))

    def end_response(self) -> None:
        self._output.append(self._h11.send(h11.EndOfMessage()))

    async def flush(self) -> None:
        if self._output:
            data = b"".join(self._output) if len(self._output) > 1 else self._output[0]
            self._output.clear()
            self._writer.write(data)
        try:
            await self._writer.drain()
        except ConnectionError as error:
            raise ClientDisconnected("connection lost while sending the response") from error

    def abort(self) -> None:
        self._aborted = True
        self._output.clear()
        self._writer.close()

    async def _read(self) -> bytes:
        try:
            return await self._reader.read(READ_SIZE)
        except ConnectionError as error:
            raise ClientDisconnected("connection lost while reading the request") from error

    async def _send_bad_request(self, error: h11.RemoteProtocolError) -> None:
        logger.info("invalid request from %s: %s", self._client_host, error)
        # IDLE when the request line itself was invalid; h11 allows an error
        # response from there.
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = b'{"error":"invalid HTTP request"}'
        response = h11.Response(
            status_code=error.error_status_hint,
            reason=_REASON_PHRASES.get(error.error_status_hint, b""),
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        )
        try:
            self._writer.write(
                self._h11.send(response)
                + self._h11.send(h11.Data(data=body))
                + self._h11.send(h11.EndOfMessage())
            )
            await self._writer.drain()
        except (h11.LocalProtocolError, ConnectionError) as error:
            logger.debug("could not send 400 to %s: %r", self._client_host, error)
