"""The runner's JSON API under ``/v1/``, ``/healthz``, ``/openapi.json`` and ``/docs``.

Every ``/v1/`` endpoint needs ``Authorization: Bearer <admin token>``, which
may act for any team, or ``Authorization: Key <id>:<secret>`` of an unrevoked
runner key, which may act only for its own team. Errors are JSON
``{"error": "..."}``: 400 invalid request, 401 missing or invalid
credentials, 403 another team, 404 unknown run, key or endpoint, 405 wrong
method, 409 a conflict with the run's state, 413 a body over 1 MiB.

This module also contains the response helpers that the gateway shares.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from .. import keys
from ..keys import KeyFormatError
from . import openapi
from .config import RunnerConfig
from .models import Run
from .service import Conflict, InvalidRequest, NotFound, RunnerService
from .store import StoredKey

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
_COPY_BYTES = 1 << 16
_CREDENTIALS_HINT = (
    "send 'Authorization: Bearer <admin token>' or 'Authorization: Key <id>:<secret>'"
)
_CHALLENGES = (("WWW-Authenticate", "Bearer, Key"),)


class ApiError(Exception):
    """An error response: its status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


@dataclasses.dataclass(frozen=True)
class Caller:
    """The sender of a request: the admin (``team`` None) or a key of ``team``."""

    team: str | None = None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.team is None

    def check_team(self, team: str) -> None:
        """Raise 403 unless the caller may act for ``team``."""
        if self.team is not None and team != self.team:
            raise ApiError(
                403, f"key {self.key_id} belongs to team {self.team} and cannot act for team {team}"
            )

    def team_or_own(self, team: str | None) -> str | None:
        """Return the requested team after checking it, else the caller's own team."""
        if team is None:
            return self.team
        self.check_team(team)
        return team


@dataclasses.dataclass
class ApiRequest:
    caller: Caller
    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """Return the body as a JSON object; an empty body is an empty object."""
        if not self.body.strip():
            return {}
        try:
            document = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, f"invalid JSON body: {error}") from None
        if not isinstance(document, dict):
            kind = type(document).__name__
            raise ApiError(400, f"invalid JSON body: expected an object, got {kind}")
        return document

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")


@dataclasses.dataclass
class Reply:
    """A response of an endpoint: JSON, bytes, a stream of bytes, or no body."""

    status: int
    document: Any = None
    body: bytes | None = None
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    template: str
    endpoint: str
    pattern: re.Pattern[str]


def _route(method: str, template: str, endpoint: str) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, template, endpoint, re.compile(f"^{pattern}$"))


ROUTES = (
    _route("POST", "/v1/runs", "create_run"),
    _route("GET", "/v1/runs", "list_runs"),
    _route("GET", "/v1/runs/{run_id}", "get_run"),
    _route("DELETE", "/v1/runs/{run_id}", "delete_run"),
    _route("POST", "/v1/runs/{run_id}/heartbeat", "heartbeat"),
    _route("GET", "/v1/runs/{run_id}/logs", "logs"),
    _route("POST", "/v1/keys", "create_key"),
    _route("GET", "/v1/keys", "list_keys"),
    _route("DELETE", "/v1/keys/{key_id}", "revoke_key"),
    _route("GET", "/v1/machine-types", "machine_types"),
)
# Served without credentials.
PUBLIC_PATHS = ("/healthz", "/openapi.json", "/docs")


def is_api_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path == "/v1" or path.startswith("/v1/")


class Api:
    """Handles API requests through a ``RunnerService``."""

    def __init__(self, service: RunnerService, config: RunnerConfig) -> None:
        self._service = service
        self._config = config
        self._openapi = json.dumps(openapi.document(config.public_url)).encode("utf-8")

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Handle one request; every error becomes a JSON error response."""
        url = urllib.parse.urlsplit(handler.path)
        try:
            reply = self._answer(handler, url.path, url.query)
        except ApiError as error:
            reply = Reply(error.status, {"error": error.message}, headers=error.headers)
        except InvalidRequest as error:
            reply = Reply(400, {"error": error.message})
        except NotFound as error:
            reply = Reply(404, {"error": error.message})
        except Conflict as error:
            reply = Reply(409, {"error": error.message})
        except Exception as error:
            logger.exception("%s %s failed", handler.command, url.path)
            reply = Reply(500, {"error": f"internal error: {error}"})
        send_reply(handler, reply)

    def _answer(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> Reply:
        if path in PUBLIC_PATHS:
            discard_body(handler)
            return self._public(handler.command, path)

        # The body is read before anything can fail, so that the connection
        # stays usable for the next request after an error response.
        body = read_body(handler, MAX_BODY_BYTES)
        route, params = _match(handler.command, path)
        caller = self._authenticate(handler.headers.get("Authorization"))
        request = ApiRequest(
            caller=caller,
            params=params,
            query=dict(urllib.parse.parse_qsl(query)),
            body=body,
        )
        endpoint: Callable[[ApiRequest], Reply] = getattr(self, route.endpoint)
        return endpoint(request)

    def _public(self, method: str, path: str) -> Reply:
        if method != "GET":
            raise ApiError(405, f"method {method} not allowed; use GET", [("Allow", "GET")])
        if path == "/healthz":
            return Reply(200, {"status": "ok", "runs": self._service.count_live_runs()})
        if path == "/openapi.json":
            return Reply(200, body=self._openapi)
        page = openapi.docs_page("/openapi.json").encode("utf-8")
        return Reply(200, body=page, content_type="text/html; charset=utf-8")

    def _authenticate(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.strip():
            raise ApiError(401, f"missing credentials; {_CREDENTIALS_HINT}", _CHALLENGES)

        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip().encode("utf-8")
            if hmac.compare_digest(token, self._config.admin_token.encode("utf-8")):
                return Caller()
            raise ApiError(401, "invalid admin token", _CHALLENGES)
        if scheme.lower() != keys.AUTHORIZATION_SCHEME.lower():
            raise ApiError(
                401,
                f"unsupported authorization scheme {scheme[:20]!r}; {_CREDENTIALS_HINT}",
                _CHALLENGES,
            )

        try:
            key_id, secret = keys.parse_authorization(authorization)
        except KeyFormatError as error:
            raise ApiError(401, error.message, _CHALLENGES) from None
        record = self._service.authenticate_key(key_id, secret)
        if record is None:
            raise ApiError(401, "invalid or revoked API key", _CHALLENGES)
        return Caller(team=record.team, key_id=record.id)

    # Runs

    def create_run(self, request: ApiRequest) -> Reply:
        body = request.json()
        team = request.caller.team_or_own(body.get("team"))
        if team is None:
            raise ApiError(400, "missing field 'team'; the admin token must name the run's team")
        run = self._service.create_run({**body, "team": team})
        return Reply(201, self._run_json(run), headers=(("Location", f"/v1/runs/{run.id}"),))

    def list_runs(self, request: ApiRequest) -> Reply:
        team = request.caller.team_or_own(request.query.get("team"))
        runs = self._service.list_runs(team=team, live_only=request.flag("live"))
        return Reply(200, {"runs": [self._run_json(run) for run in runs]})

    def get_run(self, request: ApiRequest) -> Reply:
        return Reply(200, self._run_json(self._own_run(request)))

    def delete_run(self, request: ApiRequest) -> Reply:
        run = self._own_run(request)
        logger.info("run %s: delete requested by %s", run.id, _who(request.caller))
        return Reply(202, self._run_json(self._service.delete_run(run.id)))

    def heartbeat(self, request: ApiRequest) -> Reply:
        self._service.heartbeat(self._own_run(request).id)
        return Reply(204)

    def logs(self, request: ApiRequest) -> Reply:
        run = self._own_run(request)
        follow = request.flag("follow")
        chunks = self._service.logs(run.id, follow)
        if follow:
            return Reply(200, stream=chunks, content_type="text/plain; charset=utf-8")
        try:
            output = b"".join(chunks)
        except Exception as error:
            logger.exception("run %s: reading its logs failed", run.id)
            raise ApiError(500, f"cannot read the logs of run {run.id}: {error}") from error
        return Reply(200, body=output, content_type="text/plain; charset=utf-8")

    def _own_run(self, request: ApiRequest) -> Run:
        run = self._service.get_run(request.params["run_id"])
        request.caller.check_team(run.team)
        return run

    def _run_json(self, run: Run) -> dict[str, Any]:
        return {**run.public(), "url": f"{self._config.public_url}/{run.team}/{run.app_name}"}

    # Keys

    def create_key(self, request: ApiRequest) -> Reply:
        body = request.json()
        unknown = sorted(set(body) - {"team", "name"})
        if unknown:
            raise ApiError(400, f"unknown field {unknown[0]!r}; expected some of: name, team")
        team = request.caller.team_or_own(body.get("team"))
        if team is None:
            raise ApiError(400, "missing field 'team'; the admin token must name the key's team")
        created = self._service.create_key(team, body.get("name"))
        record = created.record
        document = {"id": record.id, "key": created.key, "team": record.team, "name": record.name}
        return Reply(201, document)

    def list_keys(self, request: ApiRequest) -> Reply:
        team = request.caller.team_or_own(request.query.get("team"))
        return Reply(200, {"keys": [_key_json(stored) for stored in self._service.list_keys(team)]})

    def revoke_key(self, request: ApiRequest) -> Reply:
        stored = self._service.get_key(request.params["key_id"])
        request.caller.check_team(stored.record.team)
        self._service.revoke_key(stored.record.id)
        return Reply(204)

    # Machine types

    def machine_types(self, request: ApiRequest) -> Reply:
        machine_types = [
            {**dataclasses.asdict(machine), "offered": offered}
            for machine, offered in self._service.machine_types()
        ]
        return Reply(200, {"machine_types": machine_types})


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        if route.method == method:
            params = match.groupdict()
            return route, {name: urllib.parse.unquote(value) for name, value in params.items()}
        allowed.append(route.method)
    if allowed:
        raise ApiError(
            405,
            f"method {method} not allowed on {path}; use {' or '.join(allowed)}",
            [("Allow", ", ".join(allowed))],
        )
    raise ApiError(404, f"no endpoint {method} {path}; see /docs for the API")


def _key_json(stored: StoredKey) -> dict[str, Any]:
    record = stored.record
    return {
        "id": record.id,
        "team": record.team,
        "name": record.name,
        "created_at": record.created_at,
        "revoked_at": stored.revoked_at,
    }


def _who(caller: Caller) -> str:
    return "the admin" if caller.is_admin else f"key {caller.key_id}"


# Response helpers, shared with the gateway


def send_reply(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    if reply.stream is not None:
        send_stream(handler, reply.status, reply.stream, reply.content_type, reply.headers)
        return
    body = reply.body
    if reply.document is not None:
        body = json.dumps(reply.document).encode("utf-8")
    send_bytes(handler, reply.status, body, reply.content_type, reply.headers)


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    document: Any,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    send_bytes(handler, status, json.dumps(document).encode("utf-8"), "application/json", headers)


def send_bytes(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes | None,
    content_type: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    if body is not None:
        handler.send_header("Content-Type", content_type)
    if status != 204 and status != 304:
        handler.send_header("Content-Length", str(len(body or b"")))
    handler.end_headers()
    if body and handler.command != "HEAD":
        handler.wfile.write(body)


def send_stream(
    handler: BaseHTTPRequestHandler,
    status: int,
    chunks: Iterator[bytes],
    content_type: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send ``chunks`` as they come, chunked to HTTP/1.1 clients, else up to a connection close."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Type", content_type)
    writer = BodyWriter(handler, length=None)
    writer.write_head()
    try:
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()
    except (BrokenPipeError, ConnectionResetError) as error:
        logger.debug("client left a streamed response: %s", error)
        handler.close_connection = True
    except Exception:
        # The status was sent already, so the only signal left is a cut connection.
        logger.exception("streaming a response failed; closing the connection")
        handler.close_connection = True
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class BodyWriter:
    """Writes a response body with the framing the client understands.

    With a known length the body is written as is. Without one, an HTTP/1.1
    client gets chunked encoding and an HTTP/1.0 client gets a body that ends
    when the connection closes. Each write goes to the socket at once.
    """

    def __init__(self, handler: BaseHTTPRequestHandler, length: int | None) -> None:
        self._handler = handler
        self._length = length
        self._chunked = length is None and handler.request_version == "HTTP/1.1"

    def write_head(self) -> None:
        if self._length is not None:
            self._handler.send_header("Content-Length", str(self._length))
        elif self._chunked:
            self._handler.send_header("Transfer-Encoding", "chunked")
        else:
            self._handler.send_header("Connection", "close")
            self._handler.close_connection = True
        self._handler.end_headers()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._chunked:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._handler.wfile.write(data)

    def finish(self) -> None:
        if self._chunked:
            self._handler.wfile.write(b"0\r\n\r\n")


# Request body helpers, shared with the gateway


def request_chunks(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    """Yield the request body as it arrives, decoding chunked encoding.

    Raises ApiError 400 for a malformed ``Content-Length`` or chunk.
    """
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        yield from _chunked_body(handler)
        return

    remaining = content_length(handler)
    while remaining > 0:
        data = handler.rfile.read(min(remaining, _COPY_BYTES))
        if not data:
            handler.close_connection = True
            raise ApiError(400, "the request body ended before Content-Length bytes")
        remaining -= len(data)
        yield data


def content_length(handler: BaseHTTPRequestHandler) -> int:
    raw = handler.headers.get("Content-Length")
    if raw is None:
        return 0
    if not raw.strip().isdigit():
        handler.close_connection = True
        raise ApiError(400, f"invalid Content-Length {raw[:20]!r}: expected a number of bytes")
    return int(raw)


def has_body(handler: BaseHTTPRequestHandler) -> bool:
    chunked = handler.headers.get("Transfer-Encoding", "").lower() == "chunked"
    return chunked or handler.headers.get("Content-Length", "0").strip() not in ("", "0")


def read_body(handler: BaseHTTPRequestHandler, limit: int) -> bytes:
    """Read the whole request body; raise ApiError 413 above ``limit`` bytes."""
    if content_length(handler) > limit:
        handler.close_connection = True
        raise ApiError(413, f"request body too large; the limit is {limit} bytes")
    received = bytearray()
    for data in request_chunks(handler):
        received += data
        if len(received) > limit:
            handler.close_connection = True
            raise ApiError(413, f"request body too large; the limit is {limit} bytes")
    return bytes(received)


def discard_body(handler: BaseHTTPRequestHandler) -> None:
    """Skip a request body that no endpoint reads by closing the connection after the response."""
    if has_body(handler):
        handler.close_connection = True


def _chunked_body(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    while True:
        line = handler.rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            handler.close_connection = True
            raise ApiError(400, "malformed chunked request body") from None
        if size == 0:
            break
        remaining = size
        while remaining > 0:
            data = handler.rfile.read(min(remaining, _COPY_BYTES))
            if not data:
                handler.close_connection = True
                raise ApiError(400, "the chunked request body ended early")
            remaining -= len(data)
            yield data
        handler.rfile.readline(8)
    # Trailer fields, up to the empty line that ends the body.
    while handler.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
        pass
