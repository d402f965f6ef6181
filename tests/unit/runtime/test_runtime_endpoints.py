"""Endpoints of an App: input validation, JSON results, streams, async code and errors."""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
import requests

APP = """
import asyncio
import threading
import time
from pathlib import Path

from pydantic import BaseModel

import orchestrator

released = threading.Event()


class PredictRequest(BaseModel):
    image: str
    size: int = 1


class Prediction(BaseModel):
    label: str


class Vision(orchestrator.App):
    @orchestrator.endpoint("/predict")
    def predict(self, request: PredictRequest) -> Prediction:
        return Prediction(label=f"{request.image}:{request.size}")

    @orchestrator.endpoint("/add")
    def add(self, a: int, b: int = 10) -> int:
        return a + b

    @orchestrator.endpoint("/echo")
    async def echo(self, text: str) -> dict:
        await asyncio.sleep(0.01)
        return {"text": text, "thread": threading.current_thread().name}

    @orchestrator.endpoint("/words")
    def words(self):
        yield "first\\n"
        if not released.wait(10):
            yield "timed out\\n"
            return
        yield "second\\n"

    @orchestrator.endpoint("/release")
    def release(self) -> None:
        released.set()

    @orchestrator.endpoint("/bytes")
    async def raw_bytes(self):
        for part in (b"ab", b"", b"cd"):
            await asyncio.sleep(0.01)
            yield part

    @orchestrator.endpoint("/boom")
    def boom(self):
        raise ValueError("kaboom")

    @orchestrator.endpoint("/broken-stream")
    def broken_stream(self):
        yield "partial\\n"
        raise RuntimeError("stream broke")

    @orchestrator.endpoint("/object")
    def unserializable(self):
        return object()
"""


@pytest.fixture
def vision(start_runtime):
    return start_runtime(APP, "Vision")


def test_pydantic_input_valid(vision):
    response = vision.post("/predict", json={"image": "cat", "size": 3})

    assert response.status_code == 200
    assert response.json() == {"label": "cat:3"}
    assert response.headers["Content-Type"] == "application/json"


def test_pydantic_input_names_field(vision):
    response = vision.post("/predict", json={"size": "big"})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["image"], "msg": "Field required", "type": "missing"},
            {
                "loc": ["size"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            },
        ]
    }


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"a": 1, "b": 2}, 200, 3),
        ({"a": 1}, 200, 11),
        (
            {"b": 2},
            422,
            {"detail": [{"loc": ["a"], "msg": "missing required argument", "type": "missing"}]},
        ),
        (
            {"a": 1, "c": 2},
            422,
            {
                "detail": [
                    {
                        "loc": ["c"],
                        "msg": "unexpected argument; expected: a, b",
                        "type": "unexpected_argument",
                    }
                ]
            },
        ),
        (
            [1, 2],
            422,
            {
                "detail": [
                    {
                        "loc": [],
                        "msg": "request body must be a JSON object of arguments",
                        "type": "object_type",
                    }
                ]
            },
        ),
    ],
    ids=["both", "default", "missing", "unexpected", "not-object"],
)
def test_keyword_arguments(vision, body, status, expected):
    response = vision.post("/add", json=body)

    assert response.status_code == status
    assert response.json() == expected


def test_invalid_json_is_400(vision):
    response = vision.post("/add", data=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid JSON body: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    }


def test_chunked_request_body(vision):
    chunks = iter([b'{"a": ', b"5}"])

    response = vision.post("/add", data=chunks)

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 200
    assert response.json() == 15


def test_async_endpoint_runs_on_event_loop(vision):
    response = vision.post("/echo", json={"text": "hi"})

    assert response.status_code == 200
    assert response.json() == {"text": "hi", "thread": "event-loop"}


def test_stream_sends_chunks_before_end(vision):
    # The generator blocks after its first chunk until /release is called, so
    # the test only gets "second" if "first" reached it while the generator ran.
    with vision.post("/words", stream=True) as response:
        chunks = response.iter_content(chunk_size=None)
        first = next(chunks)
        assert vision.post("/release").status_code == 200
        rest = b"".join(chunks)

    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert first == b"first\n"
    assert rest == b"second\n"


def test_async_stream_of_bytes(vision):
    response = vision.post("/bytes")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == b"abcd"


def test_user_error_is_500_with_request_id(vision):
    response = vision.post("/boom", headers={"X-Request-ID": "req-42"})

    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "request_id": "req-42"}
    assert response.headers["X-Request-ID"] == "req-42"
    logs = vision.logs()
    assert "request req-42: POST /boom raised ValueError\nTraceback (most recent call" in logs
    assert 'raise ValueError("kaboom")' in logs
    assert "ValueError: kaboom" in logs
    assert "orchestrator/runtime" not in logs


def test_unserializable_result_is_500(vision):
    response = vision.post("/object", headers={"X-Request-ID": "req-7"})

    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "request_id": "req-7"}
    assert (
        "TypeError: the return value of unserializable() is not JSON-serializable "
        "(Object of type object is not JSON serializable); return JSON types or a pydantic "
        "model, or yield str or bytes to stream"
    ) in vision.logs()


def test_stream_error_cuts_the_body(vision):
    with vision.post("/broken-stream", stream=True, headers={"X-Request-ID": "req-9"}) as response:
        chunks = response.iter_content(chunk_size=None)
        first = next(chunks)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(chunks)

    assert first == b"partial\n"
    message = "request req-9: stream of /broken-stream raised RuntimeError after it started"
    vision.wait_for_log(message)
    assert "RuntimeError: stream broke" in vision.logs()


def test_request_id_generated(vision):
    response = vision.post("/add", json={"a": 1})

    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    vision.wait_for_log(f"request_id={request_id}")
    access_line = r"INFO orchestrator\.runtime\.server POST /add 200 [\d.]+ms request_id="
    assert re.search(access_line + request_id + "$", vision.logs(), re.MULTILINE)


def test_invalid_request_id_replaced(vision):
    response = vision.post("/add", json={"a": 1}, headers={"X-Request-ID": "bad id with spaces"})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/missing", 404, "not found: /missing"),
        ("POST", "/missing", 404, "not found: /missing"),
        ("GET", "/add", 405, "method GET is not allowed for /add; use POST"),
        ("POST", "/health", 405, "method POST is not allowed for /health; use GET"),
        ("PUT", "/predict", 405, "method PUT is not allowed for /predict; use POST"),
    ],
)
def test_unknown_route(vision, method, path, status, error):
    response = requests.request(method, vision.url + path, timeout=10)

    assert response.status_code == status
    assert response.json() == {"error": error}


def test_keep_alive_across_json_and_stream(vision):
    connection = http.client.HTTPConnection("127.0.0.1", vision.port, timeout=10)
    try:
        replies = []
        sockets = []
        for path, body in [("/add", b'{"a": 1}'), ("/bytes", b""), ("/add", b'{"a": 2}')]:
            connection.request("POST", path, body=body)
            response = connection.getresponse()
            replies.append((response.status, response.read()))
            # http.client drops its socket after a response that ends the connection.
            sockets.append(connection.sock)
    finally:
        connection.close()

    assert replies == [(200, b"11"), (200, b"abcd"), (200, b"12")]
    assert sockets[0] is not None
    assert sockets[1] is sockets[0]
    assert sockets[2] is sockets[0]


def test_oversized_header_is_json_431(vision):
    # The header line is one byte over http.server's limit of 65536 and the
    # request ends there, so the server reads all of it before it closes.
    padding = b"X-Padding: " + b"a" * (65_537 - len(b"X-Padding: "))
    request = b"GET /health HTTP/1.1\r\n" + padding
    with socket.create_connection(("127.0.0.1", vision.port), timeout=10) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(4096):
            reply += chunk

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert json.loads(body) == {"error": "Line too long"}
