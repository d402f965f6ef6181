"""Fixtures: the process backend with the test apps, and runners served in threads."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.runner.config import RunnerConfig

from .process_backend import AppSource, ProcessBackend, free_port
from .support import (
    ADMIN_TOKEN,
    ECHO_APP,
    ECHO_IMAGE,
    FAILING_APP,
    FAILING_IMAGE,
    SLOW_APP,
    SLOW_IMAGE,
    RunnerThread,
)


@pytest.fixture
def config(tmp_path: Path) -> RunnerConfig:
    port = free_port()
    state_dir = tmp_path / "state"
    return RunnerConfig(
        admin_token=ADMIN_TOKEN,
        host="127.0.0.1",
        port=port,
        state_dir=state_dir,
        keys_dir=state_dir / "keys",
        public_url=f"http://127.0.0.1:{port}",
        monitor_seconds=0.1,
    )


@pytest.fixture
def backend(tmp_path: Path, config: RunnerConfig) -> Iterator[ProcessBackend]:
    apps_dir = tmp_path / "apps"
    apps_dir.mkdir()
    apps = {}
    for image, name, source in (
        (ECHO_IMAGE, "Echo", ECHO_APP),
        (FAILING_IMAGE, "Failing", FAILING_APP),
        (SLOW_IMAGE, "Slow", SLOW_APP),
    ):
        app_file = apps_dir / f"{name.lower()}.py"
        app_file.write_text(textwrap.dedent(source))
        apps[image] = AppSource(app_file, name)
    process_backend = ProcessBackend(apps, config.keys_file, tmp_path / "logs")
    yield process_backend
    process_backend.close()


@pytest.fixture
def start_runner(config: RunnerConfig, backend: ProcessBackend) -> Iterator[Callable[[], RunnerThread]]:
    """Return a function that starts a runner on ``config`` and ``backend``; all stop at the end."""
    started: list[RunnerThread] = []

    def start() -> RunnerThread:
        runner = RunnerThread(config, backend)
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        runner.stop()


@pytest.fixture
def runner(start_runner: Callable[[], RunnerThread]) -> RunnerThread:
    return start_runner()
