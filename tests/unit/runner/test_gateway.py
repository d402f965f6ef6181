"""The gateway's forwarding: paths, headers, streamed bodies both ways, and its own errors.

The run here is placed on a stub sidecar (an HTTP server in a thread that
echoes what it receives), so that the tests can see exactly what the gateway
sends. The tests in test_runs.py cover the gateway in front of the real sidecar.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orchestrator.machines import MachineType
from orchestrator.runner.backends.base import Observation, Placement
from orchestrator.runner.config import RunnerConfig
from orchestrator.runner.models import Run

from .support import RunnerThread, request


class StubSidecar:
    """Echoes requests as JSON; ``/stream`` sends two chunks with a gate between them."""

    def __init__(self) -> None:
        self.stream_gate = threading.Event()
        self.stopped = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _stub_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.stream_gate.set()
        self._server.shutdown()
        self._server.server_close()


def _stub_handler(stub: StubSidecar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"sidecar": "ok"})
            elif self.path == "/_orch/status":
                self._send(200, {"state": "serving", "served": 0, "rejected": 0})
            elif self.path == "/stream":
                self._stream()
            else:
                self._echo()

        def do_POST(self) -> None:
            if self.path == "/_orch/stop":
                stub.stopped.set()
                self._send(202, {"state": "draining"})
            else:
                self._echo()

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "42")
            self.end_headers()

        def _echo(self) -> None:
            body = self._read_body()
            self._send(
                200,
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "body_length": len(body),
                    "body_tail": body[-16:].decode("latin-1"),
                },
            )

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _send(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Keep-Alive", "timeout=5")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nfirst\r\n")
            self.wfile.flush()
            stub.stream_gate.wait(timeout=10)
            self.wfile.write(b"6\r\nsecond\r\n0\r\n\r\n")

    return Handler


class StubBackend:
    """Places every run on the stub sidecar."""

    name = "stub"

    def __init__(self, stub: StubSidecar) -> None:
        self.stub = stub
        self.placed: set[str] = set()

    def offers(self, machine: MachineType) -> bool:
        return True

    def start(self, run: Run, machine: MachineType) -> Placement:
        self.placed.add(run.id)
        return Placement(upstream=self.stub.url, node="stub")

    def observe(self, run: Run) -> Observation:
        if self.stub.stopped.is_set():
            summary = {"served": 0, "rejected": 0, "reason": "stop requested"}
            return Observation(sidecar_running=False, app_running=False, summary=summary)
        return Observation(sidecar_running=True, app_running=True)

    def logs(self, run: Run, follow: bool) -> Iterator[bytes]:
        return iter([b"stub output\n"])

    def remove(self, run: Run) -> None:
        self.placed.discard(run.id)

    def run_ids(self) -> set[str]:
        return set(self.placed)


@pytest.fixture
def stub() -> Iterator[StubSidecar]:
    sidecar = StubSidecar()
    yield sidecar
    sidecar.close()


@pytest.fixture
def gateway(config: RunnerConfig, stub: StubSidecar) -> Iterator[RunnerThread]:
    runner = RunnerThread(config, StubBackend(stub)).start()
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")
    yield runner
    runner.stop()


def echoed(gateway: RunnerThread, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = request(gateway.port, method, path, **kwargs)
    assert response.status == 200, response.body
    return response.json()


@pytest.mark.parametrize(
    ("path", "upstream_path"),
    [
        ("/acme/echo", "/"),
        ("/acme/echo/", "/"),
        ("/acme/echo/predict", "/predict"),
        ("/acme/echo/a/b%2Fc?x=1&y=%20z", "/a/b%2Fc?x=1&y=%20z"),
        ("/acme/echo?debug", "/?debug"),
    ],
)
def test_gateway_forwards_path_and_query(gateway: RunnerThread, path: str, upstream_path: str) -> None:
    assert echoed(gateway, "GET", path)["path"] == upstream_path


def test_gateway_forwards_headers(gateway: RunnerThread, stub: StubSidecar) -> None:
    headers = {
        "Authorization": "Key k_0123456789ab:secret",
        "X-Custom": "kept",
        "X-Dropped": "listed in Connection",
        "Connection": "X-Dropped",
        "TE": "trailers",
        "X-Orch-Control-Token": "guess",
        "X-Forwarded-For": "203.0.113.7",
    }

    seen = echoed(gateway, "GET", "/acme/echo/headers", headers=headers)["headers"]

    assert seen["authorization"] == "Key k_0123456789ab:secret"
    assert seen["x-custom"] == "kept"
    assert seen["host"] == stub.url.removeprefix("http://")
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-prefix"] == "/acme/echo"
    for dropped in ("x-dropped", "te", "x-orch-control-token"):
        assert dropped not in seen


def test_gateway_drops_hop_by_hop_response_headers(gateway: RunnerThread) -> None:
    response = request(gateway.port, "GET", "/acme/echo/anything")

    assert response.status == 200
    assert "keep-alive" not in response.headers
    assert response.headers["content-type"] == "application/json"


def test_gateway_streams_large_body(gateway: RunnerThread) -> None:
    body = b"x" * (3 * 2**20) + b"the end"

    seen = echoed(gateway, "POST", "/acme/echo/upload", body=body)

    assert seen["body_length"] == len(body)
    assert seen["body_tail"].endswith("the end")
    assert seen["headers"]["content-length"] == str(len(body))


def test_gateway_forwards_chunked_body(gateway: RunnerThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request("POST", "/acme/echo/upload", body=iter([b"abc", b"defgh"]), encode_chunked=True)
        response = connection.getresponse()
        seen = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 200
    assert seen["body_length"] == 8
    assert seen["body_tail"] == "abcdefgh"
    assert seen["headers"]["transfer-encoding"] == "chunked"


def test_gateway_streams_response_unbuffered(gateway: RunnerThread, stub: StubSidecar) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request("GET", "/acme/echo/stream")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"

        first = response.read1(64)
        stub.stream_gate.set()
        rest = response.read()
    finally:
        connection.close()

    assert first == b"first"
    assert rest == b"second"


def test_gateway_keeps_connection_alive(gateway: RunnerThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        statuses = []
        for index in range(3):
            connection.request("POST", f"/acme/echo/call/{index}", body=b"{}")
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.request("GET", "/v1/runs", headers={"Authorization": "Bearer test-admin-token"})
        api = connection.getresponse()
        api.read()
    finally:
        connection.close()

    assert statuses == [200, 200, 200]
    assert api.status == 200


def test_gateway_head_has_no_body(gateway: RunnerThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request("HEAD", "/acme/echo/file")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert response.getheader("Content-Length") == "42"
    assert body == b""


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/", "not found: /; apps are served at /<team>/<app>/"),
        ("/acme", "not found: /acme; apps are served at /<team>/<app>/"),
        ("/acme/other/predict", "no running app acme/other"),
        ("/Acme/echo/predict", "no running app Acme/echo"),
        ("/acme/echo/_orch/stop", "not found: /acme/echo/_orch/stop"),
        ("/acme/echo/%5Forch/stop", "not found: /acme/echo/%5Forch/stop"),
    ],
)
def test_gateway_not_found(gateway: RunnerThread, stub: StubSidecar, path: str, error: str) -> None:
    response = request(gateway.port, "POST", path)

    assert response.status == 404
    assert response.json() == {"error": error}
    assert not stub.stopped.is_set()


def test_gateway_sidecar_unreachable(gateway: RunnerThread, stub: StubSidecar) -> None:
    stub.close()

    response = request(gateway.port, "GET", "/acme/echo/predict")

    assert response.status == 502
    assert response.json() == {"error": "app acme/echo is unreachable"}

