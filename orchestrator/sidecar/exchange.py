"""One request and its response, as every layer of the sidecar handles them.

A layer is a ``Handler``: an async callable that takes an ``Exchange`` and
returns once the response is complete. A layer either responds itself (an
error) or awaits the handler inside it, so plain ``try``/``finally`` around
that call covers the whole exchange, body streaming included.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .http1 import RequestHead

Handler = Callable[["Exchange"], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class ClientDisconnected(Exception):
    """The client closed its connection or broke the HTTP framing of its request."""


class Exchange:
    """A request from a client and the state of the response sent to it.

    The request fields are bytes as parsed (header names are lowercase).
    The layers set ``admitted``, ``rejected`` and ``key_id`` so that the
    layers outside them can tell what happened.
    """

    __slots__ = (
        "method",
        "target",
        "path",
        "headers",
        "request_id",
        "authorization",
        "control_token",
        "has_body",
        "body_chunked",
        "client_host",
        "status",
        "admitted",
        "rejected",
        "key_id",
        "_connection",
    )

    def __init__(
        self, connection: ClientConnection, request: RequestHead, client_host: bytes
    ) -> None:
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.path: bytes = request_path(request.target)
        self.headers = request.headers
        self.client_host = client_host
        self.request_id = b""
        self.authorization: bytes | None = None
        self.control_token: bytes | None = None
        self.has_body = False
        # True when the body comes in chunks (Transfer-Encoding), not with a
        # Content-Length; the request to the app is framed the same way.
        self.body_chunked = False
        for name, value in request.headers:
            if name == b"x-request-id":
                self.request_id = value
            elif name == b"authorization":
                self.authorization = value
            elif name == b"x-orch-control-token":
                self.control_token = value
            elif name == b"content-length":
                self.has_body = value != b"0"
            elif name == b"transfer-encoding":
                self.has_body = True
                self.body_chunked = True
        if not self.request_id:
            self.request_id = os.urandom(16).hex().encode("ascii")

        # Response status once the head was queued; 0 before.
        self.status = 0
        # True once the request got a concurrency slot, so it reached the app.
        self.admitted = False
        # True when a layer rejected the request in place of the app (401, 503).
        self.rejected = False
        # Id of the API key that authenticated the request, if any.
        self.key_id: str | None = None
        self._connection = connection

    @property
    def response_started(self) -> bool:
        return self.status != 0

    @property
    def log_id(self) -> str:
        """The request id as text, for log messages."""
        return self.request_id.decode("ascii", "replace")

    async def receive_body(self) -> bytes:
        """Return the next chunk of the request body, or b"" at its end."""
        return await self._connection.receive_body()

    def start_response(self, status: int, headers: Headers, reason: bytes | None = None) -> None:
        """Queue the response head; ``flush()`` sends it.

        Without ``reason``, the standard reason phrase of ``status`` is used.
        """
        self._connection.start_response(self, status, headers, reason)
        self.status = status

    def send_body(self, data: bytes) -> None:
        self._connection.send_body(data)

    def end_response(self) -> None:
        self._connection.end_response()

    async def flush(self) -> None:
        """Write what was queued and wait until the socket buffer has room again."""
        await self._connection.flush()

    def abort(self) -> None:
        """Close the client connection without completing the response.

        Used when a response cannot be completed after its head was sent. The
        client then sees a truncated body, never a complete wrong one.
        """
        self._connection.abort()


async def send_json(
    exchange: Exchange,
    status: int,
    payload: dict[str, Any],
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete JSON response produced by the sidecar itself."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    response_headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *headers,
    ]
    exchange.start_response(status, response_headers)
    exchange.send_body(body)
    exchange.end_response()
    await exchange.flush()


async def reject(
    exchange: Exchange,
    status: int,
    payload: dict[str, Any],
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send the error response of a request rejected before the app (auth, limit, queue, stop)."""
    exchange.rejected = True
    await send_json(exchange, status, payload, headers)


def request_path(target: bytes) -> bytes:
    """Return the path of a request target, without its query string.

    An absolute-form target (``http://host/path``) gives its path part.
    """
    path = target.partition(b"?")[0]
    if path.startswith((b"http://", b"https://")):
        slash = path.find(b"/", path.find(b"//") + 2)
        path = path[slash:] if slash != -1 else b"/"
    return path
