"""Fixtures that start the stub app and sidecars, and stop them after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .support import Sidecar, Upstream, sidecar_env


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_sidecar(upstream: Upstream) -> Iterator[Any]:
    """Return a function that starts a sidecar in front of ``upstream`` with ORCH_* overrides."""
    started: list[Sidecar] = []

    def start(**settings: str) -> Sidecar:
        sidecar = Sidecar(sidecar_env(upstream.url, **settings))
        started.append(sidecar)
        sidecar.wait_listening()
        return sidecar

    yield start
    for sidecar in started:
        sidecar.stop()
