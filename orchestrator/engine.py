"""The one thin layer over the Docker SDK.

Everything else in the package talks to Docker through ``Engine``: here the
SDK's exceptions become ``EngineError`` messages that say what to do, and
transient failures are retried.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from .errors import EngineError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable_message(error: Exception) -> str:
    return (
        f"cannot reach the Docker engine at {_engine_address()} ({type(error).__name__}). "
        f"Start it (for example 'sudo systemctl start docker', or 'sudo dockerd &') "
        f"or point DOCKER_HOST at a running engine."
    )


def transient_retry(func: Callable[..., T]) -> Callable[..., T]:
    """Retry a registry or engine call that failed on the network, with backoff."""
    return retry(
        retry=retry_if_exception_type(_TRANSIENT),
        stop=stop_after_attempt(int(os.environ.get("ORCH_RETRY_ATTEMPTS", "4"))),
        wait=wait_exponential(multiplier=0.5, max=8),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )(func)


def mapped_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn the SDK's connection errors into ``EngineError``."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except _TRANSIENT as error:
            raise EngineError(unreachable_message(error)) from error
        except docker.errors.DockerException as error:
            if isinstance(error, docker.errors.APIError):
                raise
            raise EngineError(unreachable_message(error)) from error

    return call


class Engine:
    """A connection to one Docker engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api = client.api

    @classmethod
    @mapped_errors
    def connect(cls) -> Engine:
        client = docker.from_env(timeout=int(os.environ.get("ORCH_DOCKER_TIMEOUT", "120")))
        client.ping()
        return cls(client)

    # Images

    @mapped_errors
    def image(self, reference: str) -> dict[str, Any] | None:
        """Return ``docker image inspect`` data, or None when the image is absent."""
        try:
            return self.api.inspect_image(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
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
        except docker.errors.APIError as error:
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
        except docker.errors.APIError as error:
            explanation = str(error.explanation or error)
            if "could not select device driver" in explanation:
                raise GpuUnavailable(explanation) from error
            raise EngineError(f"cannot start container {container_id[:12]}: {explanation}") from error

    @mapped_errors
    def wait(self, container_id: str, condition: str = "not-running") -> int:
        """Block until the container meets ``condition``; return its exit code."""
        try:
            return int(self.api.wait(container_id, timeout=None, condition=condition)["StatusCode"])
        except docker.errors.NotFound:
            return -1

    @mapped_errors
    def logs(self, container_id: str) -> Iterator[bytes]:
        """Follow the container's output as chunks; ends when the container stops."""
        try:
            yield from self.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True)
        except docker.errors.NotFound:
            return

    @mapped_errors
    def stop(self, container_id: str, timeout: int) -> None:
        try:
            self.api.stop(container_id, timeout=timeout)
        except docker.errors.NotFound:
            pass

    @mapped_errors
    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
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
