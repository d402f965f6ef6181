"""The runner's settings, read from ``ORCH_RUNNER_*`` environment variables.

Every value is checked before the runner opens its state or listens, so that
a bad value stops it at start with one message and exit code 2.
"""

from __future__ import annotations

import dataclasses
import math
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError
from ..machines import DEFAULT_CATALOGUE


class ConfigError(UsageError):
    """An invalid or missing ``ORCH_RUNNER_*`` variable; the runner exits with code 2."""


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """The validated settings of one runner."""

    admin_token: str = dataclasses.field(repr=False)
    host: str = "0.0.0.0"
    port: int = 8400
    state_dir: Path = Path("/var/lib/orchestrator")
    keys_dir: Path = Path("/var/lib/orchestrator/keys")
    machine_catalogue: Path = DEFAULT_CATALOGUE
    public_url: str = "http://127.0.0.1:8400"
    monitor_seconds: float = 1.0

    @property
    def database_path(self) -> Path:
        return self.state_dir / "runner.db"

    @property
    def keys_file(self) -> Path:
        """The key file that the runner writes for sidecars: the live keys of all teams."""
        return self.keys_dir / "keys.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunnerConfig:
        """Build the settings from ``environ`` (default ``os.environ``); raise ConfigError."""
        environ = os.environ if environ is None else environ
        admin_token = environ.get("ORCH_RUNNER_ADMIN_TOKEN", "").strip()
        if not admin_token:
            raise ConfigError(
                "missing ORCH_RUNNER_ADMIN_TOKEN: set it to a long random secret, "
                "e.g. the output of 'openssl rand -hex 24'"
            )

        state_dir = Path(
            environ.get("ORCH_RUNNER_STATE_DIR", "").strip() or "/var/lib/orchestrator"
        )
        keys_dir = environ.get("ORCH_RUNNER_KEYS_DIR", "").strip()
        catalogue = environ.get("ORCH_MACHINE_CATALOGUE", "").strip()

        return cls(
            admin_token=admin_token,
            host=environ.get("ORCH_RUNNER_HOST", "").strip() or "0.0.0.0",
            port=_port(environ, "ORCH_RUNNER_PORT", default=8400),
            state_dir=state_dir,
            keys_dir=Path(keys_dir) if keys_dir else state_dir / "keys",
            machine_catalogue=Path(catalogue) if catalogue else DEFAULT_CATALOGUE,
            public_url=_public_url(environ, "ORCH_RUNNER_PUBLIC_URL", "http://127.0.0.1:8400"),
            monitor_seconds=_seconds(environ, "ORCH_RUNNER_MONITOR_SECONDS", default=1.0),
        )


def _port(environ: Mapping[str, str], name: str, *, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigError(f"invalid {name}={raw!r}: expected a port number from 0 to 65535")
    return int(raw)


def _seconds(environ: Mapping[str, str], name: str, *, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"invalid {name}={raw!r}: expected a number of seconds > 0")
    return value


def _public_url(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    url = urllib.parse.urlsplit(raw)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise ConfigError(
            f"invalid {name}={raw!r}: expected an http or https URL without a query, "
            "e.g. https://runner.example.com"
        )
    return raw.rstrip("/")
