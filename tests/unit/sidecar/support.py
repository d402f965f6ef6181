"""Test support: a stub app (upstream) in a thread and the sidecar in a subprocess.

The stub app serves:

- ``GET /health``: ``health_status`` (200) with ``{"status": "ready"}``, or
  ``{"status": "starting"}`` for another status.
- ``POST /_orch/shutdown``: records the control token header, 200.
- ``GET /slow?seconds=S``: sleeps S seconds, then 200 ``{"slept": S}``.
- ``GET /then-close``: 200 without ``Connection: close``, then closes the socket.
- ``GET /stream``: sends chunk ``first``, waits for ``stream_gate``, sends
  ``second``; ``stream_finished`` is set after the last chunk.
- anything else: echoes method, path, headers and body as JSON.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[3]
CONTROL_TOKEN = "test-control-token"
START_TIMEOUT_SECONDS = 10.0
EXIT_TIMEOUT_SECONDS = 15.0


@dataclasses.dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    # Port of the connection the request came on, to tell connections apart.
    client_port: int


class Upstream:
    """A stub app on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.shutdown_tokens: list[str | None] = []
        self.health_status = 200
        self.stream_gate = threading.Event()
        self.stream_finished = threading.Event()
        self.closed_connections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stream_gate.set()
        self._server.shutdown()
        self._server.server_close()

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.requests]

    def client_ports(self) -> list[int]:
        with self._lock:
            return [request.client_port for request in self.requests]

    def count_closed_connection(self) -> None:
        with self._lock:
            self.closed_connections += 1


def _handler_class(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Buffered writes send a response head and body in one segment;
        # unbuffered ones add a delayed-ACK wait of about 40 ms to each response.
        wbufsize = 65536

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                upstream.count_closed_connection()

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def _serve(self) -> None:
            body = self._read_body()
            path = urllib.parse.urlsplit(self.path).path
            upstream.record(
                SeenRequest(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    body,
                    self.client_address[1],
                )
            )

            if path == "/health":
                ready = upstream.health_status == 200
                self._send_json(
                    upstream.health_status, {"status": "ready" if ready else "starting"}
                )
            elif path == "/_orch/shutdown":
                upstream.shutdown_tokens.append(self.headers.get("X-Orch-Control-Token"))
                self._send_json(200, {"stopping": True})
            elif path == "/slow":
                seconds = float(
                    urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["seconds"][0]
                )
                time.sleep(seconds)
                self._send_json(200, {"slept": seconds})
            elif path == "/stream":
                self._stream()
            elif path == "/then-close":
                # Keep-alive response, then the socket is closed anyway, like
                # an app whose keep-alive timeout expired.
                self._send_json(200, {"closing": True})
                self.close_connection = True
            else:
                self._send_json(
                    200,
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {name.lower(): value for name, value in self.headers.items()},
                        "body": body.decode("utf-8", "replace"),
                    },
                    extra_headers={"X-App": "echo"},
                )

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(length) if length else b""

        def _send_json(
            self, status: int, payload: Any, extra_headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._write_chunk(b"first")
            upstream.stream_gate.wait(timeout=10)
            self._write_chunk(b"second")
            self._write_chunk(b"")
            upstream.stream_finished.set()

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    return Handler


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Sidecar:
    """``python -m orchestrator.sidecar`` in a subprocess, with its log lines collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.sidecar"],
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._collect_lines, daemon=True)
        self._reader.start()

    def _collect_lines(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = re.search(r"listening on [^ ]+:(\d+)$", line.strip())
            if match:
                self.port = int(match.group(1))
                self._listening.set()

    def wait_listening(self) -> None:
        if not self._listening.wait(START_TIMEOUT_SECONDS):
            self.stop()
            raise AssertionError("sidecar did not start listening:\n" + self.log())

    def log(self) -> str:
        return "\n".join(self.lines)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_SECONDS) -> int:
        returncode = self.process.wait(timeout)
        self._reader.join(timeout=5)
        return returncode

    def summary(self) -> dict[str, Any]:
        last = self.lines[-1]
        assert " summary " in last, f"last log line is not the summary: {last!r}"
        return json.loads(last.split(" summary ", 1)[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(EXIT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self._reader.join(timeout=5)
            self.process.stderr.close()


def sidecar_env(upstream_url: str, **settings: str) -> dict[str, str]:
    """Return a process environment for the sidecar; ``settings`` are ORCH_* overrides."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORCH_")}
    env.update(
        {
            "ORCH_SIDECAR_HOST": "127.0.0.1",
            "ORCH_SIDECAR_PORT": "0",
            "ORCH_UPSTREAM": upstream_url,
            "ORCH_CONTROL_TOKEN": CONTROL_TOKEN,
            "ORCH_DRAIN_SECONDS": "10",
        }
    )
    env.update(settings)
    return env


def wait_until(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
