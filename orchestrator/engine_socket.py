"""The Docker Engine API over its Unix socket, with the standard library only.

Importing the Docker SDK takes 0.12 to 0.17 s on a 2-CPU machine, which is
a large part of an image lookup or a warm ``orch run --local``. When the
engine listens on a Unix socket, those calls come here; other engine
addresses (``tcp://``, ``ssh://``) go through the SDK.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from .errors import EngineError

# The newest Engine API version whose container calls this module was written
# against. The engine's own version is used when it is older. Engines
# also have a minimum (1.44 since Docker Engine 29), so no fixed old version
# can serve every engine.
MAX_API_VERSION = (1, 45)
# Each frame of a log stream from a container without a TTY starts with a
# header: the stream (1 stdout, 2 stderr), three zero bytes, the size.
_FRAME_HEADER = struct.Struct(">BxxxL")


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable_message(error: Exception) -> str:
    return (
        f"cannot reach the Docker engine at {engine_address()} ({type(error).__name__}). "
        f"Start it (for example 'sudo systemctl start docker', or 'sudo dockerd &') "
        f"or point DOCKER_HOST at a running engine."
    )


def socket_client() -> SocketClient | None:
    """Return a client for the engine's Unix socket, or None for other addresses."""
    address = engine_address()
    if address.startswith("unix://"):
        return SocketClient(address[len("unix://"):])
    return None


class _UnixSocketConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class SocketClient:
    """Plain HTTP requests to the engine at ``path``, one connection each."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._version_prefix: str | None = None

    def get(self, url: str) -> tuple[int, Any]:
        return self.request("GET", url)

    def ping(self) -> None:
        """Check that the engine responds, and record the API version to use with it."""
        response = self.open("GET", "/_ping")
        try:
            response.read()
        finally:
            close(response)
        self._version_prefix = _version_prefix(response.getheader("Api-Version"))

    def versioned(self, path: str) -> str:
        """Return ``path`` under the API version agreed with the engine."""
        if self._version_prefix is None:
            self.ping()
        return f"{self._version_prefix}{path}"

    def call(self, method: str, path: str, *, ok: tuple[int, ...], action: str, body: Any = None,
             timeout: float = 30.0) -> tuple[int, Any]:
        """Send a request to ``path`` under the agreed API version and return its status and body.

        A status outside ``ok`` raises EngineError("cannot <action>: <the engine's message>").
        """
        status, data = self.request(method, self.versioned(path), body, timeout)
        if status not in ok:
            raise EngineError(f"cannot {action}: {error_message(data)}")
        return status, data

    def request(self, method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        """Send a request and return its status and decoded JSON body (or raw bytes)."""
        response = self.open(method, url, body, timeout)
        try:
            data = response.read()
        except OSError as error:
            raise EngineError(unreachable_message(error)) from error
        finally:
            close(response)
        if response.status >= 500 and not data.startswith(b"{"):
            raise EngineError(f"the Docker engine failed on {method} {url}: {data[:200]!r}")
        return response.status, json.loads(data) if data.startswith((b"{", b"[")) else data

    def open(self, method: str, url: str, body: Any = None,
             timeout: float | None = 30.0) -> http.client.HTTPResponse:
        """Send a request and return the response unread, for a stream or a long wait.

        The caller closes it with ``close()``.
        """
        connection = _UnixSocketConnection(self.path, timeout)
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
        except OSError as error:
            connection.close()
            raise EngineError(unreachable_message(error)) from error
        response.connection = connection  # type: ignore[attr-defined]
        return response


def close(response: http.client.HTTPResponse) -> None:
    """Close a response of ``SocketClient.open`` and its connection."""
    response.close()
    response.connection.close()  # type: ignore[attr-defined]


def _version_prefix(engine_version: str | None) -> str:
    """Return the URL prefix for the lower of the engine's API version and ours."""
    try:
        version = tuple(int(part) for part in (engine_version or "").split("."))
    except ValueError:
        version = ()
    if len(version) != 2:
        # Without a version, the engine serves its own current one.
        return ""
    major, minor = min(version, MAX_API_VERSION)
    return f"/v{major}.{minor}"


def error_message(body: Any) -> str:
    """Return the engine's message from an error response body."""
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return repr(body)[:200]


def log_frames(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """Yield the payloads of a multiplexed log stream, stdout and stderr alike."""
    try:
        while True:
            header = response.read(_FRAME_HEADER.size)
            if len(header) < _FRAME_HEADER.size:
                return
            _, size = _FRAME_HEADER.unpack(header)
            payload = response.read(size)
            if payload:
                yield payload
    finally:
        close(response)
