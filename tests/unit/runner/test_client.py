"""The runner client against a small HTTP server on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.runner.client import RunnerClient, RunnerError, RunnerSettings


class FakeRunner(BaseHTTPRequestHandler):
    """Handler that serves a few /v1 paths and records each request."""

    received: list[tuple[str, str, str, bytes]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.received.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        return body

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self._record()
        self._send(201, json.dumps({"id": "run1", "echo": json.loads(body)}).encode())

    def do_GET(self) -> None:
        self._record()
        if self.path == "/v1/runs/missing":
            self._send(404, b'{"error": "no run missing"}')
        elif self.path == "/v1/runs/broken":
            self._send(500, b"plain failure text", "text/plain")
        elif self.path.startswith("/v1/runs/run1/logs"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in (b"first line\n", b"second line\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, json.dumps({"runs": [{"id": "run1"}], "path": self.path}).encode())


@pytest.fixture
def runner_url() -> Iterator[str]:
    FakeRunner.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRunner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client_for(url: str) -> RunnerClient:
    return RunnerClient(RunnerSettings(url=url, key="kid:secret", registry="127.0.0.1:5000"))


def test_create_run_sends_json_and_key(runner_url: str) -> None:
    created = client_for(runner_url).create_run({"app_name": "resize"})

    assert created == {"id": "run1", "echo": {"app_name": "resize"}}
    assert FakeRunner.received == [("POST", "/v1/runs", "Key kid:secret", b'{"app_name": "resize"}')]


def test_list_runs_passes_team(runner_url: str) -> None:
    runs = client_for(runner_url).list_runs("vision")

    assert runs == [{"id": "run1"}]
    assert FakeRunner.received[0][1] == "/v1/runs?team=vision"


def test_follow_logs_streams_chunks(runner_url: str) -> None:
    chunks = list(client_for(runner_url).follow_logs("run1"))

    assert b"".join(chunks) == b"first line\nsecond line\n"


@pytest.mark.parametrize(
    ("run_id", "status", "message"),
    [
        ("missing", 404, "the runner returned 404 to GET /v1/runs/missing: no run missing"),
        ("broken", 500, "the runner returned 500 to GET /v1/runs/broken: plain failure text"),
    ],
)
def test_error_status_names_path(runner_url: str, run_id: str, status: int, message: str) -> None:
    with pytest.raises(RunnerError) as raised:
        client_for(runner_url).get_run(run_id)

    assert raised.value.status == status
    assert raised.value.message == message


def test_dead_runner_names_url_and_fix() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    with pytest.raises(RunnerError) as raised:
        client_for(url).get_run("run1")

    assert raised.value.message == (
        f"cannot reach the runner at {url} ([Errno 111] Connection refused); start it with "
        f"'docker-compose up -d' or check 'orch login'"
    )
    assert raised.value.status is None
