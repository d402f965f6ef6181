"""Requests and responses as the routes see them, apart from the HTTP server."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional

from ..errors import OrchestratorError

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BYTES_TYPE = "application/octet-stream"
HTML_TYPE = "text/html; charset=utf-8"


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request with its body read.

    ``path`` excludes the query string, and ``headers`` has lowercase names
    because HTTP header names are case-insensitive.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    request_id: str


@dataclasses.dataclass
class Response:
    """A response with a complete ``body``, or streamed from ``chunks`` when set.

    The server calls ``close()`` once the response was sent or the client went
    away. The ``on_close`` callbacks release what the response held (an
    in-flight slot, a generator) or act after it was sent (a shutdown).
    """

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    chunks: Optional[Iterator[bytes]] = None
    on_close: list[Callable[[], None]] = dataclasses.field(default_factory=list)

    def close(self) -> None:
        for callback in self.on_close:
            try:
                callback()
            except Exception:
                logger.exception("closing the response failed in %r", callback)


class RequestError(OrchestratorError):
    """A request rejected before user code runs, with its status and JSON body."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(json.dumps(payload))
        self.status = status
        self.payload = payload


def json_response(
    status: int, payload: Any, *, headers: Optional[dict[str, str]] = None
) -> Response:
    body = json.dumps(payload).encode("utf-8")
    return Response(status, body, JSON_TYPE, dict(headers or {}))


def error_response(status: int, message: str, **fields: Any) -> Response:
    return json_response(status, {"error": message, **fields})


def argument_error(loc: list[Any], message: str, error_type: str) -> dict[str, Any]:
    """Return one entry of a 422 ``detail`` list, shaped like pydantic's errors."""
    return {"loc": loc, "msg": message, "type": error_type}
