"""The runtime's settings, read once from environment variables at start."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..errors import UsageError

MODES = ("serve", "call")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(UsageError):
    """A missing or invalid environment variable of the runtime."""


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Settings of one runtime process; see ``read_config`` for their variables."""

    app_file: str
    app_name: str
    mode: str = "serve"
    host: str = "127.0.0.1"
    port: int = 8000
    control_token: str = dataclasses.field(default="", repr=False)
    drain_seconds: float = 30.0
    failed_exit_seconds: float = 2.0
    log_level: str = "INFO"


def read_config(environ: Mapping[str, str]) -> RuntimeConfig:
    """Build the settings from ``environ``; raise ConfigError naming a bad variable."""
    return RuntimeConfig(
        app_file=_required(environ, "ORCH_APP_FILE", "the path of the app's Python file"),
        app_name=_required(
            environ, "ORCH_APP_NAME", "the name of the App subclass or @function to run"
        ),
        mode=_choice(environ, "ORCH_MODE", MODES, default="serve"),
        host=environ.get("ORCH_APP_HOST", "") or "127.0.0.1",
        port=_port(environ, "ORCH_APP_PORT", default=8000),
        control_token=environ.get("ORCH_CONTROL_TOKEN", ""),
        drain_seconds=_seconds(environ, "ORCH_DRAIN_SECONDS", default=30.0),
        failed_exit_seconds=_seconds(environ, "ORCH_FAILED_EXIT_SECONDS", default=2.0),
        log_level=_choice(environ, "ORCH_LOG_LEVEL", LOG_LEVELS, default="INFO", upper=True),
    )


def _required(environ: Mapping[str, str], name: str, meaning: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; set it to {meaning}")
    return value


def _choice(
    environ: Mapping[str, str],
    name: str,
    choices: tuple[str, ...],
    *,
    default: str,
    upper: bool = False,
) -> str:
    value = environ.get(name, "").strip() or default
    if upper:
        value = value.upper()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is invalid; use one of: {', '.join(choices)}")
    return value


def _port(environ: Mapping[str, str], name: str, *, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{name}={text!r} is invalid; set it to a port number from 1 to 65535")
    return int(text)


def _seconds(environ: Mapping[str, str], name: str, *, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{name}={text!r} is invalid; set it to a number of seconds >= 0")
    return value
