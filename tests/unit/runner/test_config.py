"""The runner's settings from ORCH_RUNNER_* variables, and how a bad one stops it."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.machines import DEFAULT_CATALOGUE
from orchestrator.runner.config import ConfigError, RunnerConfig
from orchestrator.runner.server import main, serve

from .process_backend import ProcessBackend


def test_config_defaults() -> None:
    config = RunnerConfig.from_env({"ORCH_RUNNER_ADMIN_TOKEN": "secret"})

    assert config.admin_token == "secret"
    assert config.host == "0.0.0.0"
    assert config.port == 8400
    assert config.state_dir == Path("/var/lib/orchestrator")
    assert config.database_path == Path("/var/lib/orchestrator/runner.db")
    assert config.keys_dir == Path("/var/lib/orchestrator/keys")
    assert config.keys_file == Path("/var/lib/orchestrator/keys/keys.json")
    assert config.machine_catalogue == DEFAULT_CATALOGUE
    assert config.public_url == "http://127.0.0.1:8400"
    assert config.monitor_seconds == 1.0
    assert "secret" not in repr(config)


def test_config_from_variables() -> None:
    config = RunnerConfig.from_env(
        {
            "ORCH_RUNNER_ADMIN_TOKEN": "secret",
            "ORCH_RUNNER_HOST": "127.0.0.1",
            "ORCH_RUNNER_PORT": "9000",
            "ORCH_RUNNER_STATE_DIR": "/srv/runner",
            "ORCH_MACHINE_CATALOGUE": "/etc/machines.yaml",
            "ORCH_RUNNER_PUBLIC_URL": "https://runner.example.com/",
            "ORCH_RUNNER_MONITOR_SECONDS": "0.5",
        }
    )

    assert config.host == "127.0.0.1"
    assert config.port == 9000
    assert config.keys_dir == Path("/srv/runner/keys")
    assert config.machine_catalogue == Path("/etc/machines.yaml")
    assert config.public_url == "https://runner.example.com"
    assert config.monitor_seconds == 0.5


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        (
            {"ORCH_RUNNER_ADMIN_TOKEN": "  "},
            "missing ORCH_RUNNER_ADMIN_TOKEN: set it to a long random secret, "
            "e.g. the output of 'openssl rand -hex 24'",
        ),
        (
            {"ORCH_RUNNER_ADMIN_TOKEN": "secret", "ORCH_RUNNER_PORT": "http"},
            "invalid ORCH_RUNNER_PORT='http': expected a port number from 0 to 65535",
        ),
        (
            {"ORCH_RUNNER_ADMIN_TOKEN": "secret", "ORCH_RUNNER_PORT": "70000"},
            "invalid ORCH_RUNNER_PORT='70000': expected a port number from 0 to 65535",
        ),
        (
            {"ORCH_RUNNER_ADMIN_TOKEN": "secret", "ORCH_RUNNER_MONITOR_SECONDS": "0"},
            "invalid ORCH_RUNNER_MONITOR_SECONDS='0': expected a number of seconds > 0",
        ),
        (
            {"ORCH_RUNNER_ADMIN_TOKEN": "secret", "ORCH_RUNNER_PUBLIC_URL": "runner.example.com"},
            "invalid ORCH_RUNNER_PUBLIC_URL='runner.example.com': expected an http or https URL "
            "without a query, e.g. https://runner.example.com",
        ),
    ],
)
def test_config_rejects_bad_value(variables: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RunnerConfig.from_env(variables)

    assert raised.value.message == error
    assert raised.value.exit_code == 2


def test_main_exits_2_without_admin_token(caplog: pytest.LogCaptureFixture) -> None:
    def make_backend(config: RunnerConfig) -> ProcessBackend:
        raise AssertionError("no backend is made without a valid configuration")

    with caplog.at_level(logging.ERROR):
        code = main(make_backend, {})

    assert code == 2
    assert caplog.messages == [
        "missing ORCH_RUNNER_ADMIN_TOKEN: set it to a long random secret, "
        "e.g. the output of 'openssl rand -hex 24'"
    ]


def test_serve_rejects_busy_port(config: RunnerConfig, backend: ProcessBackend) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", config.port))
        busy.listen()

        with pytest.raises(OrchestratorError) as raised:
            serve(config, backend)

    assert raised.value.message.startswith(f"cannot listen on 127.0.0.1:{config.port}: ")
    assert raised.value.message.endswith("; set ORCH_RUNNER_PORT to a free port")
