"""The gateway: serves every run's app at ``/<team>/<app>/`` on the runner's port.

A request to ``/<team>/<app>/<rest>`` goes to ``<sidecar>/<rest>`` of the
app's live run, with its query string, method, headers (without hop-by-hop
ones) and body. The sidecar checks API keys, so ``Authorization`` passes
through. Bodies are streamed both ways and never buffered whole: a response
is sent on as the sidecar produces it, chunked when the sidecar's response is
chunked or has no length.

The gateway's own status codes each carry a JSON body ``{"error": ...}``.
404 is for a path that names no live run or leads under ``/_orch/``. 503 (with
``Retry-After: 1``) is sent while the run is pending or starting, and 502 when the
sidecar cannot be reached. A stopping run is still proxied, so that its
sidecar returns its own 503.
"""

from __future__ import annotations

import http.client
import logging
import urllib.parse
from http.server import BaseHTTPRequestHandler

from ..sidecar.control import is_control_path
from .api import ApiError, BodyWriter, discard_body, request_chunks, send_json
from .models import Run, RunState
from .service import NAME_PATTERN, RunnerService

logger = logging.getLogger(__name__)

# NOTE: this is the longest silence allowed between two reads from the
# sidecar, not a limit on the whole response. The sidecar enforces the
# run's request_timeout, but time in its queue is unbounded, so this is set
# well above the default request_timeout of 60 s.
UPSTREAM_IDLE_TIMEOUT_SECONDS = 600.0
_COPY_BYTES = 1 << 16

# RFC 9110, section 7.6.1, plus the non-standard Proxy-Connection.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Headers that the gateway sets itself or handles itself (Expect:
# 100-continue), and the control token of the sidecar, which no client may send.
_REPLACED_REQUEST_HEADERS = frozenset(
    {"host", "content-length", "expect", "x-forwarded-prefix", "x-orch-control-token"}
)


def parse_app_path(target: str) -> tuple[str, str, str] | None:
    """Split ``/<team>/<app>/<rest>?<query>`` into team, app and ``/<rest>?<query>``."""
    path, separator, query = target.partition("?")
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[0] or not parts[1] or not parts[2]:
        return None
    rest = "/" + (parts[3] if len(parts) > 3 else "")
    return parts[1], parts[2], rest + (f"?{query}" if separator else "")


class Gateway:
    """Forwards app requests to the sidecar of the app's live run."""

    def __init__(self, service: RunnerService) -> None:
        self._service = service

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        target = parse_app_path(handler.path)
        if target is None:
            discard_body(handler)
            path = urllib.parse.urlsplit(handler.path).path
            send_json(
                handler, 404, {"error": f"not found: {path}; apps are served at /<team>/<app>/"}
            )
            return

        team, app, upstream_target = target
        run = None
        if NAME_PATTERN.fullmatch(team) and NAME_PATTERN.fullmatch(app):
            run = self._service.find_live_run(team, app)
        rejection = _rejection(run, team, app, upstream_target)
        if rejection is not None:
            discard_body(handler)
            status, message = rejection
            headers = [("Retry-After", "1")] if status == 503 else []
            send_json(handler, status, {"error": message}, headers)
            return

        assert run is not None
        self._forward(handler, run, f"/{team}/{app}", upstream_target)

    def _forward(self, handler: BaseHTTPRequestHandler, run: Run, prefix: str, target: str) -> None:
        url = urllib.parse.urlsplit(run.upstream)
        connection = http.client.HTTPConnection(
            url.hostname or "", url.port or 80, timeout=UPSTREAM_IDLE_TIMEOUT_SECONDS
        )
        try:
            try:
                _send_request(handler, connection, url.netloc, prefix, target)
                response = connection.getresponse()
            except ApiError as error:
                send_json(handler, error.status, {"error": error.message})
                return
            except (OSError, http.client.HTTPException) as error:
                logger.warning(
                    "run %s: forwarding %s %s to %s failed: %s",
                    run.id, handler.command, prefix, run.upstream, error,
                )
                # The request body may be partly unread, so the connection cannot be reused.
                handler.close_connection = True
                send_json(handler, 502, {"error": f"app {prefix[1:]} is unreachable"})
                return
            _send_response(handler, response, run)
        finally:
            connection.close()


def _rejection(run: Run | None, team: str, app: str, target: str) -> tuple[int, str] | None:
    if run is None:
        return 404, f"no running app {team}/{app}"
    if is_control_path(target.partition("?")[0].encode("latin-1", "replace")):
        # The runner reaches control calls at the sidecar directly, never through here.
        return 404, f"not found: /{team}/{app}{target.partition('?')[0]}"
    if run.state is RunState.PENDING:
        return 503, f"app {team}/{app} is pending: {run.message}"
    if run.state is RunState.STARTING or not run.upstream:
        return 503, f"app {team}/{app} is starting"
    return None


def _send_request(
    handler: BaseHTTPRequestHandler,
    connection: http.client.HTTPConnection,
    host: str,
    prefix: str,
    target: str,
) -> None:
    """Send the request line, the filtered headers and the streamed body to the sidecar."""
    connection.putrequest(handler.command, target, skip_host=True, skip_accept_encoding=True)
    dropped = HOP_BY_HOP_HEADERS | _REPLACED_REQUEST_HEADERS | _connection_tokens(handler.headers)
    forwarded_for = handler.headers.get("X-Forwarded-For")
    for name, value in handler.headers.items():
        if name.lower() not in dropped and name.lower() != "x-forwarded-for":
            connection.putheader(name, value)

    client = handler.client_address[0]
    connection.putheader("Host", host)
    chain = f"{forwarded_for}, {client}" if forwarded_for else client
    connection.putheader("X-Forwarded-For", chain)
    if "X-Forwarded-Host" not in handler.headers and "Host" in handler.headers:
        connection.putheader("X-Forwarded-Host", handler.headers["Host"])
    if "X-Forwarded-Proto" not in handler.headers:
        connection.putheader("X-Forwarded-Proto", "http")
    connection.putheader("X-Forwarded-Prefix", prefix)

    chunked = handler.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    elif "Content-Length" in handler.headers:
        connection.putheader("Content-Length", handler.headers["Content-Length"].strip())
    # One connection per request keeps the sidecar from holding idle ones.
    # TODO: pool connections to each sidecar if connection setup shows up in profiles.
    connection.putheader("Connection", "close")
    connection.endheaders()

    for data in request_chunks(handler):
        connection.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
    if chunked:
        connection.send(b"0\r\n\r\n")


def _send_response(
    handler: BaseHTTPRequestHandler, response: http.client.HTTPResponse, run: Run
) -> None:
    """Send the sidecar's status and headers, then its body as it arrives."""
    handler.send_response_only(response.status, response.reason)
    dropped = HOP_BY_HOP_HEADERS | {"content-length"} | _connection_tokens(response.headers)
    for name, value in response.getheaders():
        if name.lower() not in dropped:
            handler.send_header(name, value)

    no_body = handler.command == "HEAD" or response.status in (204, 304) or response.status < 200
    length_header = response.getheader("Content-Length")
    if no_body:
        if length_header is not None and response.status != 204:
            handler.send_header("Content-Length", length_header)
        handler.end_headers()
        return

    # http.client sets length to None for a chunked or close-delimited body.
    length = None if response.chunked else response.length
    writer = BodyWriter(handler, length)
    writer.write_head()
    try:
        while data := response.read1(_COPY_BYTES):
            writer.write(data)
        writer.finish()
    except (BrokenPipeError, ConnectionResetError) as error:
        logger.debug("run %s: client left during the response: %s", run.id, error)
        handler.close_connection = True
    except (OSError, http.client.HTTPException) as error:
        # The status is sent, so the client learns of the failure from a cut connection.
        logger.warning("run %s: the sidecar's response broke off: %s", run.id, error)
        handler.close_connection = True


def _connection_tokens(headers: http.client.HTTPMessage) -> frozenset[str]:
    """Header names listed in ``Connection``, which are hop-by-hop too."""
    tokens = set()
    for value in headers.get_all("Connection") or []:
        tokens.update(token.strip().lower() for token in value.split(",") if token.strip())
    return frozenset(tokens)
