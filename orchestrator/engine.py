"""The one thin layer over the Docker Engine API.

Everything else in the package talks to Docker through ``Engine``: here the
SDK's exceptions become ``EngineError`` messages that name the fix, and
transient failures are retried.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from . import engine_socket
from .engine_socket import SocketClient, socket_client, unreachable_message
from .errors import EngineError

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)

T = TypeVar("T")


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


class Engine:
    """A connection to one Docker engine; the Docker SDK client is made on first use."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client
        # Set when the engine is on a Unix socket, so that lookups and
        # container calls can skip importing the SDK.
        self.socket: SocketClient | None = None if client is not None else socket_client()

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
        if engine.socket is not None:
            engine.socket.ping()
        else:
            mapped_errors(engine.client.ping)()
        return engine

    # Images

    def image(self, reference: str) -> dict[str, Any] | None:
        """Return ``docker image inspect`` data, or None when the image is absent."""
        if self.socket is not None:
            status, body = self.socket.get(f"/images/{urllib.parse.quote(reference, safe='/:@')}/json")
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

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        if self.socket is None:
            mapped_errors(self.api.tag)(image_id, repository, tag=tag)
            return
        query = urllib.parse.urlencode({"repo": repository, "tag": tag})
        path = f"/images/{urllib.parse.quote(image_id, safe='/:@')}/tag?{query}"
        self.socket.call("POST", path, ok=(201,), action=f"tag {image_id} as {reference}")

    @mapped_errors
    def build_stream(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Run a classic-builder build and yield its decoded progress messages."""
        yield from self.api.build(decode=True, rm=True, forcerm=True, **kwargs)

    def info(self) -> dict[str, Any]:
        """Return ``docker info`` data: CPUs, memory, runtimes."""
        if self.socket is not None:
            _, body = self.socket.get("/info")
            return body
        return mapped_errors(self.client.info)()

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
    """Container calls of ``Engine``, kept apart from image calls for readability.

    Containers are described by Engine API bodies (``Image``, ``Env``,
    ``HostConfig``, ...), so the same description goes to the engine's
    socket directly or through the SDK.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._socket = engine.socket

    @property
    def api(self) -> Any:
        """The SDK's low-level client, for calls this class does not cover."""
        return self._engine.api

    def create(self, name: str, config: dict[str, Any]) -> str:
        """Create a container from an Engine API body and return its ID; "" lets the engine name it."""
        if self._socket is None:
            return self._create_through_sdk(name, config)
        query = f"?name={urllib.parse.quote(name)}" if name else ""
        _, body = self._socket.call("POST", f"/containers/create{query}", ok=(201,),
                                    action=f"create container {name}", body=config)
        return body["Id"]

    @mapped_errors
    def _create_through_sdk(self, name: str, config: dict[str, Any]) -> str:
        try:
            return self.api.create_container_from_config(config, name=name or None)["Id"]
        except _errors().APIError as error:
            raise EngineError(f"cannot create container {name}: {error.explanation or error}") from error

    def start(self, container_id: str) -> None:
        if self._socket is None:
            self._start_through_sdk(container_id)
            return
        status, body = self._socket.request("POST", self._socket.versioned(f"/containers/{container_id}/start"))
        if status not in (204, 304):
            self._raise_start_error(container_id, engine_socket.error_message(body))

    @mapped_errors
    def _start_through_sdk(self, container_id: str) -> None:
        try:
            self.api.start(container_id)
        except _errors().APIError as error:
            self._raise_start_error(container_id, str(error.explanation or error))

    @staticmethod
    def _raise_start_error(container_id: str, explanation: str) -> None:
        if "could not select device driver" in explanation:
            raise GpuUnavailable(explanation)
        raise EngineError(f"cannot start container {container_id[:12]}: {explanation}")

    def wait(self, container_id: str, condition: str = "not-running") -> int:
        """Block until the container meets ``condition``; return its exit code (-1 if gone)."""
        if self._socket is None:
            return self._wait_through_sdk(container_id, condition)
        url = self._socket.versioned(f"/containers/{container_id}/wait?condition={condition}")
        response = self._socket.open("POST", url, timeout=None)
        try:
            body = response.read()
        finally:
            engine_socket.close(response)
        if response.status == 404:
            return -1
        if response.status != 200:
            raise EngineError(f"cannot wait for container {container_id[:12]}: {body[:200]!r}")
        return int(json.loads(body)["StatusCode"])

    @mapped_errors
    def _wait_through_sdk(self, container_id: str, condition: str) -> int:
        try:
            return int(self.api.wait(container_id, timeout=None, condition=condition)["StatusCode"])
        except _errors().NotFound:
            return -1

    def logs(self, container_id: str) -> Iterator[bytes]:
        """Follow the container's output as chunks; ends when the container stops."""
        if self._socket is None:
            yield from self._logs_through_sdk(container_id)
            return
        url = self._socket.versioned(f"/containers/{container_id}/logs?follow=1&stdout=1&stderr=1")
        response = self._socket.open("GET", url, timeout=None)
        if response.status != 200:
            engine_socket.close(response)
            return
        yield from engine_socket.log_frames(response)

    @mapped_errors
    def _logs_through_sdk(self, container_id: str) -> Iterator[bytes]:
        try:
            yield from self.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True)
        except _errors().NotFound:
            return

    def stop(self, container_id: str, timeout: int) -> None:
        if self._socket is None:
            self._stop_through_sdk(container_id, timeout)
            return
        self._socket.call("POST", f"/containers/{container_id}/stop?t={timeout}", ok=(204, 304, 404),
                          action=f"stop container {container_id[:12]}", timeout=timeout + 30)

    @mapped_errors
    def _stop_through_sdk(self, container_id: str, timeout: int) -> None:
        try:
            self.api.stop(container_id, timeout=timeout)
        except _errors().NotFound:
            pass

    def remove(self, container_id: str) -> None:
        """Remove a container by force; one that is gone or being removed is fine."""
        if self._socket is None:
            self._remove_through_sdk(container_id)
            return
        status, body = self._socket.request("DELETE", self._socket.versioned(f"/containers/{container_id}?force=1"))
        message = engine_socket.error_message(body)
        if status in (204, 404) or "already in progress" in message:
            return
        raise EngineError(f"cannot remove container {container_id[:12]}: {message}")

    @mapped_errors
    def _remove_through_sdk(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except _errors().NotFound:
            pass
        except _errors().APIError as error:
            if "already in progress" not in str(error):
                raise

    def list(self, label: str) -> list[dict[str, Any]]:
        """Return the containers with ``label``, running or not."""
        if self._socket is None:
            return mapped_errors(self.api.containers)(all=True, filters={"label": label})
        filters = urllib.parse.quote(json.dumps({"label": [label]}))
        _, body = self._socket.call("GET", f"/containers/json?all=1&filters={filters}", ok=(200,),
                                    action=f"list containers with label {label}")
        return body

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """Return ``docker container inspect`` data, or None when the container is gone."""
        if self._socket is None:
            return self._inspect_through_sdk(container_id)
        status, body = self._socket.call("GET", f"/containers/{container_id}/json", ok=(200, 404),
                                         action=f"inspect container {container_id[:12]}")
        return body if status == 200 else None

    @mapped_errors
    def _inspect_through_sdk(self, container_id: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_container(container_id)
        except _errors().NotFound:
            return None

    def published_port(self, container_id: str, container_port: str) -> int:
        details = self.inspect(container_id) or {}
        ports = (details.get("NetworkSettings") or {}).get("Ports") or {}
        bindings = ports.get(container_port) or []
        if not bindings:
            raise EngineError(f"container {container_id[:12]} publishes no port for {container_port}")
        return int(bindings[0]["HostPort"])
