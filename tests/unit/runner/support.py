"""Test support: the runner served in a thread, an HTTP client, and the test apps."""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.runner.backends.base import Backend
from orchestrator.runner.config import RunnerConfig
from orchestrator.runner.server import serve

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
START_TIMEOUT_SECONDS = 15.0
WAIT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 15.0

ECHO_IMAGE = "registry.test/echo@sha256:" + "a" * 64
FAILING_IMAGE = "registry.test/failing@sha256:" + "b" * 64
SLOW_IMAGE = "registry.test/slow@sha256:" + "c" * 64

ECHO_APP = """
import threading

import orchestrator

released = threading.Event()


class Echo(orchestrator.App):
    def setup(self):
        print("echo: setup finished", flush=True)

    @orchestrator.endpoint("/echo")
    def echo(self, text: str) -> dict:
        print(f"echo: called with {text}", flush=True)
        return {"text": text}

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
"""

FAILING_APP = """
import orchestrator


class Failing(orchestrator.App):
    def setup(self):
        raise RuntimeError("model weights missing")
"""

# Setup waits until the file named by GATE_FILE exists, for at most 20 s.
SLOW_APP = """
import os
import time
from pathlib import Path

import orchestrator


class Slow(orchestrator.App):
    def setup(self):
        gate = Path(os.environ["GATE_FILE"])
        deadline = time.monotonic() + 20
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    @orchestrator.endpoint("/ping")
    def ping(self) -> str:
        return "pong"
"""


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Send one request to 127.0.0.1:``port``; a dict or list ``body`` is sent as JSON."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Response(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


class RunnerThread:
    """``serve(config, backend)`` in a thread, stopped through its stop event."""

    def __init__(self, config: RunnerConfig, backend: Backend) -> None:
        self.config = config
        self.port = config.port
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(backend,), daemon=True)

    def _serve(self, backend: Backend) -> None:
        try:
            serve(self.config, backend, self._stop)
        except BaseException as error:
            self.error = error

    def start(self) -> RunnerThread:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self._thread.is_alive():
            try:
                if request(self.port, "GET", "/healthz").status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the runner did not start: {self.error!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), "the runner did not stop"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return request(self.port, method, path, body, ADMIN if headers is None else headers)

    def create_run(self, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        """Create a run of the echo app (fields override) and return its JSON; assert 201."""
        body = {
            "team": "acme",
            "app_name": "echo",
            "image": ECHO_IMAGE,
            "machine_type": "S",
            **fields,
        }
        response = self.call("POST", "/v1/runs", body, headers)
        assert response.status == 201, response.body
        return response.json()

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/v1/runs/{run_id}")
        assert response.status == 200, response.body
        return response.json()

    def wait_for_state(self, run_id: str, state: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Poll the run until it reaches ``state``; fail when it ends in another state."""

        def reached(run: dict[str, Any]) -> bool:
            if run["state"] != state and run["state"] in ("completed", "failed"):
                raise AssertionError(f"run {run_id} ended {run['state']}, not {state}: {run!r}")
            return run["state"] == state

        return wait_for(lambda: self.run(run_id), reached, f"run {run_id} never reached {state}", timeout)


def wait_for(
    poll: Callable[[], Any],
    done: Callable[[Any], bool],
    failure: str,
    timeout: float = WAIT_SECONDS,
) -> Any:
    """Call ``poll`` until ``done`` accepts its value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    value = poll()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure}; last: {value!r}")
        time.sleep(0.05)
        value = poll()
    return value
