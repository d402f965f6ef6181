"""The innermost layer: forwards a request to the app and relays its response.

Bodies stream in both directions. The response is relayed as its chunks
arrive, and everything already received is written to the client before the
next read from the app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from . import http1
from .exchange import Exchange, Headers, send_json
from .upstream import UpstreamConnection, UpstreamError, UpstreamPool, UpstreamUnreachable

logger = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110, section 7.6.1) apply to one connection only.
# NOTE: dropping Upgrade means WebSocket and other protocol upgrades are not
# proxied; the app gets a plain HTTP request.
# A request keeps its Content-Length or Transfer-Encoding, and its body is
# framed the same way to the app. A response's framing to the client is
# chosen by the client connection, so the app's Transfer-Encoding is dropped.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
# The sidecar handles "Expect: 100-continue" itself and sets its own request id
# and forwarding header, so the client's versions are not passed on.
_REQUEST_DROPPED = _HOP_BY_HOP | {b"expect", b"x-request-id"}
_RESPONSE_DROPPED = _HOP_BY_HOP | {b"transfer-encoding", b"x-request-id"}
# Framing headers stay even when a Connection header lists them: dropping them
# would frame the body differently from what the client sends.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})
# Methods safe to send twice (RFC 9110, section 9.2.2).
_IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class Proxy:
    """Forwards exchanges to the app through a pool of keep-alive connections."""

    def __init__(self, pool: UpstreamPool, upstream_host_header: bytes) -> None:
        self._pool = pool
        self._upstream_host_header = upstream_host_header

    async def __call__(self, exchange: Exchange) -> None:
        head = http1.request_head(
            exchange.method, exchange.target, self._request_headers(exchange)
        )
        connection: UpstreamConnection | None = None
        try:
            connection = await self._pool.acquire()
            try:
                response = await self._send_request(exchange, connection, head)
            except UpstreamError as error:
                if not self._can_retry(exchange, connection):
                    raise
                # The app may have closed this idle connection just before we
                # wrote to it (its keep-alive timeout), so try a new connection.
                logger.debug(
                    "request %s failed on a reused connection (%s); retrying",
                    exchange.log_id,
                    error,
                )
                connection.close()
                connection = None
                connection = await self._pool.connect()
                response = await self._send_request(exchange, connection, head)
            await self._relay_response(exchange, connection, response)
        except UpstreamError as error:
            if connection is not None:
                connection.close()
            await self._report_failure(exchange, error)
            return
        except BaseException:
            # Cancelled (timeout) or the client went away: the app's response
            # was not read to its end, so the connection cannot be reused.
            if connection is not None:
                connection.close()
            raise
        self._pool.release(connection)

    def _request_headers(self, exchange: Exchange) -> Headers:
        headers = _forward_headers(exchange.headers, _REQUEST_DROPPED)
        forwarded_for = exchange.client_host
        has_host = False
        forwarded: Headers = []
        for name, value in headers:
            if name.startswith(b"x-orch-"):
                # Only the sidecar may talk to the app's control endpoints and
                # set the key id, so clients cannot forge either.
                continue
            if name == b"authorization" and exchange.key_id is not None:
                # The app gets the key id, never the secret of the caller's key.
                continue
            if name == b"x-forwarded-for":
                forwarded_for = value + b", " + exchange.client_host
                continue
            if name == b"host":
                has_host = True
            forwarded.append((name, value))

        if not has_host:
            forwarded.append((b"host", self._upstream_host_header))
        forwarded.append((b"x-request-id", exchange.request_id))
        forwarded.append((b"x-forwarded-for", forwarded_for))
        if exchange.key_id is not None:
            forwarded.append((b"x-orch-key-id", exchange.key_id.encode("ascii")))
        return forwarded

    @staticmethod
    def _can_retry(exchange: Exchange, connection: UpstreamConnection) -> bool:
        # Called only when no response head arrived. A streamed request body
        # was consumed by the first try, and the first try of a
        # non-idempotent request may have had an effect, so neither is retried.
        return (
            connection.reused and not exchange.has_body and exchange.method in _IDEMPOTENT_METHODS
        )

    @staticmethod
    async def _send_request(
        exchange: Exchange, connection: UpstreamConnection, head: bytes
    ) -> http1.ResponseHead:
        connection.start_request(exchange.method)
        pending = head
        if exchange.has_body:
            chunked = exchange.body_chunked
            while chunk := await exchange.receive_body():
                await connection.write(pending + (http1.chunk(chunk) if chunked else chunk))
                pending = b""
            if chunked:
                pending += http1.LAST_CHUNK
        if pending:
            await connection.write(pending)

        while True:
            event = await connection.next_event()
            if type(event) is http1.ResponseHead:
                return event

    @staticmethod
    async def _relay_response(
        exchange: Exchange, connection: UpstreamConnection, response: http1.ResponseHead
    ) -> None:
        headers = _forward_headers(response.headers, _RESPONSE_DROPPED)
        exchange.start_response(response.status, headers, response.reason)
        while True:
            event = connection.next_buffered_event()
            if event is None:
                await exchange.flush()
                await connection.receive()
                continue
            if event is http1.END:
                exchange.end_response()
                await exchange.flush()
                return
            exchange.send_body(event)  # type: ignore[arg-type]

    @staticmethod
    async def _report_failure(exchange: Exchange, error: UpstreamError) -> None:
        request_id = exchange.log_id
        if exchange.response_started:
            logger.warning("request %s: response from the app broke off: %s", request_id, error)
            exchange.abort()
            return
        logger.warning("request %s: %s", request_id, error)
        message = (
            "app unreachable"
            if isinstance(error, UpstreamUnreachable)
            else "invalid response from the app"
        )
        await send_json(exchange, 502, {"error": message})


def _forward_headers(headers: Iterable[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> Headers:
    """Return the headers without ``dropped`` ones and those a Connection header lists."""
    forwarded: Headers = []
    listed: set[bytes] | None = None
    for name, value in headers:
        if name in dropped:
            if name == b"connection":
                tokens = {token.strip().lower() for token in value.split(b",")}
                listed = (listed or set()) | (tokens - _FRAMING)
            continue
        forwarded.append((name, value))
    if listed:
        forwarded = [(name, value) for name, value in forwarded if name not in listed]
    return forwarded
