"""Call an endpoint: JSON body in, user code, JSON or a chunked stream out."""

from __future__ import annotations

import collections.abc
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

from .encoding import encode_json
from .endpoints import Endpoint
from .event_loop import EventLoopThread
from .http_messages import (
    BYTES_TYPE,
    JSON_TYPE,
    TEXT_TYPE,
    RequestError,
    Response,
    argument_error,
)
from .models import is_model_class, validate_model

_BYTES_LIKE = (bytes, bytearray, memoryview)
_END = object()


def invoke(
    endpoint: Endpoint, target: Callable[..., Any], body: bytes, loop: EventLoopThread
) -> Response:
    """Call ``target`` with the arguments in ``body`` and return its result as a response.

    Raises RequestError (400, 422) for a bad body; exceptions of user code propagate.
    """
    arguments = build_arguments(endpoint, parse_body(body))
    result = target(**arguments)
    if inspect.isawaitable(result):
        result = loop.run(result)
    return make_response(result, loop, endpoint.name)


def parse_body(body: bytes) -> Any:
    """Return the decoded JSON body; an empty body means no arguments."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as error:
        raise RequestError(400, {"error": f"invalid JSON body: {error}"}) from error


def build_arguments(endpoint: Endpoint, payload: Any) -> dict[str, Any]:
    """Return the keyword arguments for ``endpoint``; raise a 422 RequestError naming bad ones."""
    if endpoint.input_model is not None:
        name = endpoint.parameters[0].name
        return {name: validate_model(endpoint.input_model, payload)}

    if not isinstance(payload, dict):
        message = "request body must be a JSON object of arguments"
        raise RequestError(422, {"detail": [argument_error([], message, "object_type")]})
    problems = _missing_arguments(endpoint, payload) + _unexpected_arguments(endpoint, payload)
    if problems:
        raise RequestError(422, {"detail": problems})
    return {name: _validate_argument(endpoint, name, value) for name, value in payload.items()}


def make_response(result: Any, loop: EventLoopThread, name: str) -> Response:
    """Return JSON for a value, or a chunked stream for a sync or async iterator.

    ``name`` is the endpoint's function, named in the error for a value that is
    not JSON-serializable.
    """
    if isinstance(result, collections.abc.AsyncIterator):
        return stream_response(loop.iterate(result))
    if isinstance(result, collections.abc.Iterator):
        return stream_response(result)
    try:
        body = encode_json(result)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"the return value of {name}() is not JSON-serializable ({error}); return JSON "
            "types or a pydantic model, or yield str or bytes to stream"
        ) from error
    return Response(200, body, JSON_TYPE)


def stream_response(iterator: Iterator[Any]) -> Response:
    """Return a streaming response whose type follows the first chunk: bytes or text.

    The first chunk is read here, so an error before it still becomes a 500.
    """
    first = next(iterator, _END)
    content_type = BYTES_TYPE if isinstance(first, _BYTES_LIKE) else TEXT_TYPE
    response = Response(200, content_type=content_type, chunks=_encode_chunks(first, iterator))
    close = getattr(iterator, "close", None)
    if close is not None:
        response.on_close.append(close)
    return response


def _encode_chunks(first: Any, rest: Iterator[Any]) -> Iterator[bytes]:
    if first is _END:
        return
    for chunk in _prepend(first, rest):
        data = _chunk_bytes(chunk)
        # An empty chunk would end a chunked body early, so it is skipped.
        if data:
            yield data


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _chunk_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, _BYTES_LIKE):
        return bytes(chunk)
    raise TypeError(f"a streamed chunk must be str or bytes, got {type(chunk).__name__}")


def _missing_arguments(endpoint: Endpoint, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        argument_error([parameter.name], "missing required argument", "missing")
        for parameter in endpoint.parameters
        if parameter.default is parameter.empty and parameter.name not in payload
    ]


def _unexpected_arguments(endpoint: Endpoint, payload: dict[str, Any]) -> list[dict[str, Any]]:
    if endpoint.accepts_any_keyword:
        return []
    known = [parameter.name for parameter in endpoint.parameters]
    expected = ", ".join(known) if known else "none"
    return [
        argument_error([name], f"unexpected argument; expected: {expected}", "unexpected_argument")
        for name in payload
        if name not in known
    ]


def _validate_argument(endpoint: Endpoint, name: str, value: Any) -> Any:
    hint = endpoint.hints.get(name)
    if is_model_class(hint):
        return validate_model(hint, value, loc=(name,))
    return value
