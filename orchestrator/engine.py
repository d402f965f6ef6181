"""The one thin layer over the Docker Engine API.

Everything else in the package talks to Docker through ``Engine``: here the
SDK's exceptions become ``EngineError`` messages that name the fix, and
transient failures are retried.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import EngineError

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable_message(error: Exception) -> str:
    return (
        f"cannot reach the Docker engine at {_engine_address()} ({type(error).__name__}). "
        f"Start it (for example 'sudo systemctl start docker', or 'sudo dockerd &') "
        f"or point DOCKER_HOST at a running engine."
    )


def _errors() -> Any:
    """Return the SDK's exception module, importing it on first use."""
    import docker.errors

    return docker.errors


def _transient_errors() -> tuple[type[Exception], ...]:
    import requests.exceptions

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def transient_retry(func: Callable[..., T]) -> Callable[..., T]:
    """Retry a registry or engine call that failed on the network, with backoff."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        from tenacity import before_sleep_log, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = retry(
            retry=retry_if_exception_type(_transient_errors()),
            stop=stop_after_attempt(int(os.environ.get("ORCH_RETRY_ATTEMPTS", "4"))),
            wait=wait_exponential(multiplier=0.5, max=8),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )
        return retrying(func)(*args, **kwargs)

    return call


def mapped_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn the SDK's connection errors into ``EngineError``."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        import docker.errors

        try:
            return func(*args, **kwargs)
        except _transient_errors() as error:
            raise EngineError(unreachable_message(error)) from error
        except docker.errors.DockerException as error:
            if isinstance(error, docker.errors.APIError):
                raise
            raise EngineError(unreachable_message(error)) from error

    return call


class _UnixSocketConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _SocketClient:
    """Plain HTTP over the engine's Unix socket, for the calls of a cache hit.

    Importing the Docker SDK takes about 0.15 s, longer than the whole lookup
    of an up-to-date image, so lookups go through here when the engine is on
    a Unix socket, and the SDK is loaded only for real work.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def get(self, url: str) -> tuple[int, Any]:
        connection = _UnixSocketConnection(self.path, timeout=30)
        try:
            connection.request("GET", url)
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            raise EngineError(unreachable_message(error)) from error
        finally:
            connection.close()
        if response.status >= 500:
            raise EngineError(f"the Docker engine failed on GET {url}: {body[:200]!r}")
        return response.status, json.loads(body) if body.startswith((b"{", b"[")) else body


def _socket_client() -> _SocketClient | None:
    address = _engine_address()
    if address.startswith("unix://"):
        return _SocketClient(address[len("unix://"):])
    return None


class Engine:
    """A connection to one Docker engine; the Docker SDK client is made on first use."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client
        self._socket = None if client is not None else _socket_client()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    @property
    def api(self) -> Any:
        return self.client.api

    @staticmethod
    @mapped_errors
    def _make_client() -> docker.DockerClient:
        import docker

        return docker.from_env(timeout=int(os.environ.get("ORCH_DOCKER_TIMEOUT", "120")))

    @classmethod
    def connect(cls) -> Engine:
        """Connect and check that the engine responds to a ping."""
        engine = cls()
        if engine._socket is not None:
            engine._socket.get("/_ping")
        else:
            mapped_errors(engine.client.ping)()
        return engine

    # Images

    def image(self, reference: str) -> dict[str, Any] | None:
        """Return ``docker image inspect`` data, or None when the image is absent."""
        if self._socket is not None:
            status, body = self._socket.get(f"/images/{urllib.parse.quote(reference, safe='/:@')}/json")
            return body if status == 200 else None
        return self._image_through_sdk(reference)

    @mapped_errors
    def _image_through_sdk(self, reference: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_image(reference)
        except _errors().NotFound:
            return None

    @mapped_errors
    def images(self, label: str) -> list[dict[str, Any]]:
        return self.api.images(filters={"label": label})

    @mapped_errors
    def remove_image(self, reference: str, *, force: bool = False) -> None:
        self.api.remove_image(reference, force=force, noprune=False)

    @mapped_errors
    @transient_retry
    def pull(self, reference: str) -> dict[str, Any]:
        repository, tag = split_reference(reference)
        logger.info("pulling %s", reference)
        try:
            self.api.pull(repository, tag=tag)
        except _errors().APIError as error:
            raise EngineError(f"cannot pull image {reference}: {error.explanation or error}") from error
        return self.api.inspect_image(reference)

    @mapped_errors
    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        self.api.tag(image_id, repository, tag=tag)

    @mapped_errors
    def build_stream(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Run a classic-builder build and yield its decoded progress messages."""
        yield from self.api.build(decode=True, rm=True, forcerm=True, **kwargs)

    @mapped_errors
    def version(self) -> dict[str, Any]:
        return self.api.version()


def split_reference(reference: str) -> tuple[str, str | None]:
    """Split ``registry:5000/name:tag`` or ``name@sha256:…`` into repository and tag."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, digest
    last_part = reference.rsplit("/", 1)[-1]
    if ":" in last_part:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag
    return reference, "latest"


class GpuUnavailable(EngineError):
    """The engine cannot give a container GPUs (no NVIDIA runtime)."""


class ContainerEngine:
    """Container calls of ``Engine``, kept apart from image calls for readability."""

    def __init__(self, engine: Engine) -> None:
        self.api = engine.api
        self.client = engine.client

    @mapped_errors
    def create(self, **kwargs: Any) -> str:
        """Create a container and return its ID (``create_container`` arguments)."""
        return self.api.create_container(**kwargs)["Id"]

    @mapped_errors
    def start(self, container_id: str) -> None:
        try:
            self.api.start(container_id)
        except _errors().APIError as error:
            explanation = str(error.explanation or error)
            if "could not select device driver" in explanation:
                raise GpuUnavailable(explanation) from error
            raise EngineError(f"cannot start container {container_id[:12]}: {explanation}") from error

    @mapped_errors
    def wait(self, container_id: str, condition: str = "not-running") -> int:
        """Block until the container meets ``condition``; return its exit code."""
        try:
            return int(self.api.wait(container_id, timeout=None, condition=condition)["StatusCode"])
        except _errors().NotFound:
            return -1

    @mapped_errors
    def logs(self, container_id: str) -> Iterator[bytes]:
        """Follow the container's output as chunks; ends when the container stops."""
        try:
            yield from self.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True)
        except _errors().NotFound:
            return

    @mapped_errors
    def stop(self, container_id: str, timeout: int) -> None:
        try:
            self.api.stop(container_id, timeout=timeout)
        except _errors().NotFound:
            pass

    @mapped_errors
    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except _errors().NotFound:
            pass
        except _errors().APIError as error:
            if "already in progress" not in str(error):
                raise

    @mapped_errors
    def list(self, label: str) -> list[dict[str, Any]]:
        return self.api.containers(all=True, filters={"label": label})

    @mapped_errors
    def published_port(self, container_id: str, container_port: str) -> int:
        ports = self.api.inspect_container(container_id)["NetworkSettings"]["Ports"] or {}
        bindings = ports.get(container_port) or []
        if not bindings:
            raise EngineError(f"container {container_id[:12]} publishes no port for {container_port}")
        return int(bindings[0]["HostPort"])
