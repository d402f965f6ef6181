"""Sidecar configuration: defaults, and invalid values rejected at start with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.sidecar.config import ConfigError, SidecarConfig, load_config

from .support import REPOSITORY, sidecar_env

UPSTREAM = "http://127.0.0.1:8000"


def test_config_defaults() -> None:
    config = load_config({"ORCH_UPSTREAM": UPSTREAM})

    assert config == SidecarConfig(
        upstream_url=UPSTREAM, upstream_host="127.0.0.1", upstream_port=8000
    )
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.limit_max_requests == 0
    assert config.max_concurrency == 1
    assert config.max_queue == 100
    assert config.request_timeout == 60.0
    assert config.auth_mode == "public"
    assert config.lease_seconds == 0.0
    assert config.drain_seconds == 30.0


def test_config_describe_hides_token() -> None:
    config = load_config({"ORCH_UPSTREAM": UPSTREAM, "ORCH_CONTROL_TOKEN": "s3cret-token"})

    assert "s3cret-token" not in config.describe()
    assert "s3cret-token" not in repr(config)
    assert "control_token=set" in config.describe()


# (environment overrides, expected message); a keys file path "{missing}" or
# "{invalid}" is replaced by a file that does not exist or is not JSON.
INVALID_CASES = [
    (
        {"ORCH_UPSTREAM": ""},
        "missing ORCH_UPSTREAM: set it to the app's URL, e.g. http://127.0.0.1:8000",
    ),
    (
        {"ORCH_UPSTREAM": "https://app:8000"},
        "invalid ORCH_UPSTREAM='https://app:8000': "
        "expected http://HOST:PORT, e.g. http://127.0.0.1:8000 "
        "(only plain HTTP is supported)",
    ),
    (
        {"ORCH_LIMIT_MAX_REQUESTS": "-1"},
        "invalid ORCH_LIMIT_MAX_REQUESTS='-1': expected an integer >= 0 (0 means no limit)",
    ),
    (
        {"ORCH_MAX_CONCURRENCY": "0"},
        "invalid ORCH_MAX_CONCURRENCY='0': expected an integer >= 1",
    ),
    (
        {"ORCH_MAX_QUEUE": "many"},
        "invalid ORCH_MAX_QUEUE='many': expected an integer >= 0 (0 means no queue)",
    ),
    (
        {"ORCH_REQUEST_TIMEOUT": "0"},
        "invalid ORCH_REQUEST_TIMEOUT='0': expected a number of seconds > 0",
    ),
    (
        {"ORCH_DRAIN_SECONDS": "nan"},
        "invalid ORCH_DRAIN_SECONDS='nan': expected a number of seconds >= 0",
    ),
    (
        {"ORCH_SIDECAR_PORT": "70000"},
        "invalid ORCH_SIDECAR_PORT='70000': expected an integer from 0 to 65535",
    ),
    (
        {"ORCH_AUTH_MODE": "privat"},
        "invalid ORCH_AUTH_MODE='privat': "
        "expected one of public, private, shared (did you mean 'private'?)",
    ),
    (
        {"ORCH_AUTH_MODE": "private", "ORCH_KEYS_FILE": "{missing}"},
        "missing ORCH_TEAM: ORCH_AUTH_MODE=private requires the app's team",
    ),
    (
        {"ORCH_AUTH_MODE": "shared"},
        "missing ORCH_KEYS_FILE: ORCH_AUTH_MODE=shared requires a key file",
    ),
    (
        {"ORCH_AUTH_MODE": "shared", "ORCH_KEYS_FILE": "{missing}"},
        "invalid ORCH_KEYS_FILE='{missing}': key file not found: {missing}; check the path",
    ),
    (
        {"ORCH_AUTH_MODE": "shared", "ORCH_KEYS_FILE": "{invalid}"},
        "invalid ORCH_KEYS_FILE='{invalid}': key file {invalid} is not valid JSON: "
        "Expecting value: line 1 column 1 (char 0)",
    ),
    (
        {"ORCH_LEASE_SECONDS": "5", "ORCH_CONTROL_TOKEN": ""},
        "missing ORCH_CONTROL_TOKEN: ORCH_LEASE_SECONDS=5 requires a control token, "
        "because the lease is renewed with POST /_orch/lease",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), INVALID_CASES)
def test_config_invalid_exits_2(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    paths = {"missing": str(tmp_path / "missing.json"), "invalid": str(tmp_path / "invalid.json")}
    (tmp_path / "invalid.json").write_text("not json")
    env = sidecar_env(
        UPSTREAM, **{name: value.format(**paths) for name, value in overrides.items()}
    )

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.sidecar"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    log_lines = result.stderr.splitlines()
    assert result.returncode == 2
    assert len(log_lines) == 1
    assert log_lines[0].endswith(" ERROR orchestrator.sidecar: " + message.format(**paths))


def test_config_error_is_usage_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"ORCH_UPSTREAM": UPSTREAM, "ORCH_MAX_QUEUE": "-5"})

    assert raised.value.exit_code == 2
    assert (
        raised.value.message
        == "invalid ORCH_MAX_QUEUE='-5': expected an integer >= 0 (0 means no queue)"
    )
