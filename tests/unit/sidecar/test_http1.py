"""The sidecar's HTTP/1.1 readers and writers, fed bytes directly."""

from __future__ import annotations

import pytest

from orchestrator.sidecar import http1
from orchestrator.sidecar.http1 import END, RequestHead, ResponseHead


def request_events(*parts: bytes) -> tuple[http1.RequestReader, list[object]]:
    reader = http1.RequestReader()
    for part in parts:
        reader.feed(part)
    return reader, list(reader.events)


def response_events(method: bytes, *parts: bytes, eof: bool = False) -> list[object]:
    reader = http1.ResponseReader()
    reader.expect(method)
    for part in parts:
        reader.feed(part)
    if eof:
        reader.feed_eof()
    return list(reader.events)


def test_request_head_fields() -> None:
    _, events = request_events(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: r1\r\n\r\n")

    assert events == [
        RequestHead(
            method=b"POST",
            target=b"/a?b=1",
            headers=[(b"host", b"x"), (b"x-request-id", b"r1")],
            http_version="1.1",
            keep_alive=True,
        ),
        END,
    ]


def test_request_split_across_reads() -> None:
    _, events = request_events(b"POST /lo", b"ng HTTP/1.1\r\nContent-Le", b"ngth: 4\r\n\r\nab", b"cd")

    assert events[0].target == b"/long"
    assert events[1:] == [b"ab", b"cd", END]


def test_pipelined_requests_keep_their_order() -> None:
    _, events = request_events(
        b"POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /two HTTP/1.1\r\n\r\n"
    )

    kinds = [event if event is END else type(event) for event in events]
    assert kinds == [RequestHead, bytes, END, RequestHead, END]
    assert (events[0].target, events[3].target) == (b"/one", b"/two")


def test_chunked_request_body_decoded() -> None:
    _, events = request_events(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )

    assert events[1:] == [b"abc", b"de", END]


@pytest.mark.parametrize(
    ("request_bytes", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
    ],
)
def test_request_keep_alive(request_bytes: bytes, keep_alive: bool) -> None:
    _, events = request_events(request_bytes)

    assert events[0].keep_alive is keep_alive


def test_upgrade_request_ends_the_stream() -> None:
    reader, events = request_events(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nnot http"
    )

    assert reader.upgraded
    assert events[1:] == [END]


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"NOT A REQUEST\r\n\r\n", 400, "Invalid method encountered"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "Transfer-Encoding can't be present with Content-Length",
        ),
        (
            b"GET / HTTP/1.1\r\nX-Big: " + b"a" * http1.MAX_HEAD_BYTES + b"\r\n\r\n",
            431,
            f"message head larger than {http1.MAX_HEAD_BYTES} bytes",
        ),
        (
            b"GET /" + b"a" * http1.MAX_HEAD_BYTES + b" HTTP/1.1\r\n\r\n",
            431,
            f"message head larger than {http1.MAX_HEAD_BYTES} bytes",
        ),
    ],
)
def test_invalid_request(request_bytes: bytes, status: int, message: str) -> None:
    with pytest.raises(http1.ProtocolError) as raised:
        request_events(request_bytes)

    assert raised.value.status == status
    assert str(raised.value) == message


def test_response_with_length() -> None:
    events = response_events(b"POST", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")

    assert events == [
        ResponseHead(
            status=201,
            reason=b"Created",
            headers=[(b"content-length", b"2")],
            keep_alive=True,
            ends_at_close=False,
        ),
        b"ok",
        END,
    ]


def test_informational_response_skipped() -> None:
    events = response_events(
        b"POST", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )

    assert events[0].status == 200
    assert events[1:] == [END]


def test_head_response_ends_after_its_head() -> None:
    events = response_events(b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")

    assert events[1:] == [END]
    assert events[0].keep_alive is False


def test_no_content_response_has_no_body() -> None:
    events = response_events(b"DELETE", b"HTTP/1.1 204 No Content\r\n\r\n")

    assert events[0].ends_at_close is False
    assert events[0].keep_alive is True
    assert events[1:] == [END]


def test_response_without_length_ends_at_close() -> None:
    events = response_events(b"GET", b"HTTP/1.1 200 OK\r\n\r\npart one, ", b"part two", eof=True)

    assert events[0].ends_at_close is True
    assert events[0].keep_alive is False
    assert events[1:] == [b"part one, ", b"part two", END]


def test_close_in_the_middle_of_a_response() -> None:
    with pytest.raises(http1.ProtocolError, match="in the middle of its response"):
        response_events(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", eof=True)


def test_close_between_responses_is_quiet() -> None:
    events = response_events(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", eof=True)

    assert events[1:] == [END]


def test_written_heads_and_chunks() -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-request-id", b"r1")]

    assert http1.response_head(404, b"Not Found", headers) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nx-request-id: r1\r\n\r\n"
    )
    assert http1.request_head(b"GET", b"/health", headers[:1]) == (
        b"GET /health HTTP/1.1\r\ncontent-type: text/plain\r\n\r\n"
    )
    assert http1.chunk(b"a" * 26) == b"1a\r\n" + b"a" * 26 + b"\r\n"
