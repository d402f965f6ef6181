"""HTTP/1.1 on the wire: parsing with httptools, and the bytes of heads and bodies.

httptools wraps llhttp, the C parser of Node.js, and reports each part of a
message through a callback. The readers here queue those parts as events (a
head, body chunks as ``bytes``, ``END``). A connection takes them one at a
time, so pipelined messages wait their turn.
"""

from __future__ import annotations

import collections
import dataclasses

import httptools

# The largest request or response head accepted. llhttp has no limit of its
# own, and a client could otherwise make the sidecar buffer headers forever.
MAX_HEAD_BYTES = 64 * 1024
# Marks the end of a message's body in a reader's events.
END = object()
LAST_CHUNK = b"0\r\n\r\n"

Headers = list[tuple[bytes, bytes]]


class ProtocolError(Exception):
    """Invalid HTTP/1.1 bytes; ``status`` is the status code of the error response."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(slots=True)
class RequestHead:
    method: bytes
    target: bytes
    # Names in lowercase, values as received.
    headers: Headers
    http_version: str
    # False when the client asked to close after this request (HTTP/1.0 or
    # "Connection: close").
    keep_alive: bool


@dataclasses.dataclass(slots=True)
class ResponseHead:
    status: int
    reason: bytes
    headers: Headers
    keep_alive: bool
    # True when the body has neither a length nor chunks, so it ends only
    # when the app closes the connection.
    ends_at_close: bool


class _Reader:
    """Base of both readers: headers, body chunks and the head size limit."""

    def __init__(self) -> None:
        self.events: collections.deque[object] = collections.deque()
        # True from the first byte of a message to its end.
        self.in_message = False
        self._headers: Headers = []
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        self.in_message = True
        self._headers = []
        self._head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # The size check is inlined: this runs for every header of every message.
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            self._count_head_bytes(0)
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.events.append(END)

    def _count_head_bytes(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ProtocolError(f"message head larger than {MAX_HEAD_BYTES} bytes", status=431)


class RequestReader(_Reader):
    """Parses the requests a client sends on one connection."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpRequestParser(self)
        self._target: list[bytes] = []
        # True once a request asked for a protocol upgrade: what follows it
        # is not HTTP, so the connection closes after that request.
        self.upgraded = False

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raise ProtocolError when it is not valid HTTP/1.1."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
        except httptools.HttpParserError as error:
            raise _protocol_error(error) from error

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._target = []

    def on_url(self, url: bytes) -> None:
        self._count_head_bytes(len(url))
        self._target.append(url)

    def on_headers_complete(self) -> None:
        parser = self._parser
        self.events.append(
            RequestHead(
                method=parser.get_method(),
                target=b"".join(self._target),
                headers=self._headers,
                http_version=parser.get_http_version(),
                keep_alive=parser.should_keep_alive(),
            )
        )


class ResponseReader(_Reader):
    """Parses the responses of the app on one connection, skipping 1xx ones."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpResponseParser(self)
        self._reason: list[bytes] = []
        self._skipping_informational = False
        self._ends_at_close = False
        self._head_request = False

    def expect(self, method: bytes) -> None:
        """Tell the reader the method of the request whose response comes next."""
        # A response to HEAD has a Content-Length but no body, which llhttp
        # cannot know; the reader ends it after its head.
        self._head_request = method == b"HEAD"

    def feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            raise _protocol_error(error) from error

    def feed_eof(self) -> None:
        """Note that the app closed the connection; raise ProtocolError mid-message."""
        if not self.in_message:
            return
        if self._ends_at_close:
            self.on_message_complete()
            return
        raise ProtocolError("the app closed the connection in the middle of its response")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reason = []
        self._ends_at_close = False

    def on_status(self, reason: bytes) -> None:
        self._count_head_bytes(len(reason))
        self._reason.append(reason)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._skipping_informational = status < 200
        if self._skipping_informational:
            return
        self._ends_at_close = not self._head_request and _ends_at_close(status, self._headers)
        self.events.append(
            ResponseHead(
                status=status,
                reason=b"".join(self._reason),
                headers=self._headers,
                # After a HEAD, llhttp still waits for the body that the
                # Content-Length announced, so the connection is not reused.
                keep_alive=(
                    self._parser.should_keep_alive()
                    and not self._ends_at_close
                    and not self._head_request
                ),
                ends_at_close=self._ends_at_close,
            )
        )
        if self._head_request:
            self.in_message = False
            self.events.append(END)

    def on_body(self, body: bytes) -> None:
        if not self._head_request:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._skipping_informational:
            self._skipping_informational = False
            self.in_message = False
            return
        if self._head_request:
            return
        super().on_message_complete()


def _ends_at_close(status: int, headers: Headers) -> bool:
    if status in (204, 304):
        return False
    return not any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _protocol_error(error: httptools.HttpParserError) -> ProtocolError:
    # An exception raised in a callback reaches here as the context of
    # httptools' own error.
    cause = error.__context__
    if isinstance(cause, ProtocolError):
        return cause
    return ProtocolError(str(error) or type(error).__name__)


def response_head(status: int, reason: bytes, headers: Headers) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    """Frame ``data`` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)
