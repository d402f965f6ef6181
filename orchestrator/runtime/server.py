"""The HTTP/1.1 server: parse requests, send responses and chunked streams, log access."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import urlsplit

from .http_messages import (
    JSON_TYPE,
    Request,
    RequestError,
    Response,
    error_response,
    json_response,
)
from .lifecycle import Lifecycle, State
from .routes import Router
from .tracebacks import format_user_traceback

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Request IDs are echoed in headers and logs, so only short, plain tokens are kept.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Sidecars poll health often; those records go to DEBUG to keep the log readable.
_QUIET_PATHS = ("/health",)
_MAX_CHUNK_LINE = 1024


class RuntimeHTTPServer(ThreadingHTTPServer):
    """A thread per connection; connection threads never delay the process exit."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], router: Router, lifecycle: Lifecycle) -> None:
        self.router = router
        self.lifecycle = lifecycle
        super().__init__(address, RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("connection from %s failed", client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads one request at a time from a keep-alive connection and sends the router's response."""

    server: RuntimeHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "orchestrator-runtime"
    # Streamed chunks must leave at once instead of waiting to fill a packet.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Disable the default access log; ``_log_access`` replaces it."""

    def send_error(
        self, code: int, message: Optional[str] = None, explain: Optional[str] = None
    ) -> None:
        """Send an error found while parsing the request line or headers as JSON."""
        phrase = self.responses.get(code, ("error",))[0]
        error = message or phrase
        self.log_error("code %d, message %s", code, error)
        body = json.dumps({"error": error}).encode("utf-8")
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning("%s: " + format, self.address_string(), *args)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.address_string(), *args)

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = _request_id(self.headers.get(REQUEST_ID_HEADER, ""))
        path = urlsplit(self.path).path
        response = self._route(path, request_id)
        self._send(response, request_id)
        self._log_access(path, response.status, started, request_id)

    def _route(self, path: str, request_id: str) -> Response:
        try:
            body = self._read_body()
        except RequestError as error:
            # The rest of the body cannot be found in the stream, so the connection ends.
            self.close_connection = True
            return json_response(error.status, error.payload)

        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, path, headers, body, request_id)
        try:
            return self.server.router.handle(request)
        except Exception:
            logger.exception(
                "request %s: %s %s failed in the runtime", request_id, self.command, path
            )
            return error_response(500, "internal error", request_id=request_id)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        # TODO: no limit on the body size; a large body is read into memory whole.
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise RequestError(400, {"error": f"invalid Content-Length header {length!r}"})
        return self.rfile.read(int(length))

    def _read_chunked_body(self) -> bytes:
        parts = []
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                error = f"invalid chunk size line {line[:40]!r}"
                raise RequestError(400, {"error": error}) from None
            if size == 0:
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_CHUNK_LINE)
        # Trailer fields, if any, end with an empty line.
        while self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _send(self, response: Response, request_id: str) -> None:
        try:
            self._send_head(response, request_id)
            if response.chunks is None:
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            else:
                self._send_chunks(response, request_id)
        except ConnectionError:
            logger.info("request %s: client disconnected before the response was sent", request_id)
            self.close_connection = True
        finally:
            response.close()

    def _send_head(self, response: Response, request_id: str) -> None:
        stopping = self.server.lifecycle.status()[0] is State.STOPPING
        chunked = response.chunks is not None and self.request_version != "HTTP/1.0"
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header(REQUEST_ID_HEADER, request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.chunks is None:
            self.send_header("Content-Length", str(len(response.body)))
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if stopping or (response.chunks is not None and not chunked):
            # Without chunked encoding (HTTP/1.0), closing the connection ends the stream.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _send_chunks(self, response: Response, request_id: str) -> None:
        chunked = self.request_version != "HTTP/1.0"
        chunks = iter(response.chunks or ())
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except Exception as error:
                self._abort_stream(error, request_id)
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _abort_stream(self, error: Exception, request_id: str) -> None:
        # The status line was sent already. Closing the connection without the
        # last chunk signals to the client that the body is incomplete.
        logger.error(
            "request %s: stream of %s raised %s after it started\n%s",
            request_id,
            self.path,
            type(error).__name__,
            format_user_traceback(error).rstrip(),
        )
        self.close_connection = True

    def _log_access(self, path: str, status: int, started: float, request_id: str) -> None:
        level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
        duration_ms = (time.monotonic() - started) * 1000
        logger.log(
            level,
            "%s %s %d %.1fms request_id=%s",
            self.command,
            path,
            status,
            duration_ms,
            request_id,
        )


def _request_id(header_value: str) -> str:
    """Return the request's X-Request-ID if it is a plain token, else a new random ID."""
    if _REQUEST_ID_PATTERN.fullmatch(header_value):
        return header_value
    return uuid.uuid4().hex
