"""The sidecar's configuration, read from ``ORCH_*`` environment variables.

Every value is checked here, before the sidecar listens, so that a bad value
stops it at start with one message instead of failing a request later.
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from collections.abc import Mapping

from ..errors import UsageError, closest_match

AUTH_MODES = ("public", "private", "shared")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(UsageError):
    """An invalid or missing ``ORCH_*`` variable; the sidecar exits with code 2."""


@dataclasses.dataclass(frozen=True)
class SidecarConfig:
    """The validated settings of one sidecar."""

    upstream_url: str
    upstream_host: str
    upstream_port: int
    host: str = "0.0.0.0"
    port: int = 8080
    limit_max_requests: int = 0
    max_concurrency: int = 1
    max_queue: int = 100
    request_timeout: float = 60.0
    auth_mode: str = "public"
    team: str | None = None
    keys_file: str | None = None
    control_token: str = dataclasses.field(default="", repr=False)
    lease_seconds: float = 0.0
    drain_seconds: float = 30.0
    log_level: str = "INFO"

    def describe(self) -> str:
        """Return the effective settings as one log line; leaves out the control token."""
        limit = self.limit_max_requests or "none"
        team = self.team or "-"
        keys_file = self.keys_file or "-"
        return (
            f"upstream={self.upstream_url} auth_mode={self.auth_mode} team={team} "
            f"keys_file={keys_file} limit_max_requests={limit} "
            f"max_concurrency={self.max_concurrency} max_queue={self.max_queue} "
            f"request_timeout={self.request_timeout:g}s lease={self.lease_seconds:g}s "
            f"drain={self.drain_seconds:g}s "
            f"control_token={'set' if self.control_token else 'unset'}"
        )


def load_config(environ: Mapping[str, str]) -> SidecarConfig:
    """Build the configuration from ``environ``; raise ConfigError naming the bad variable."""
    upstream_url, upstream_host, upstream_port = _upstream(environ)
    auth_mode = _choice(environ, "ORCH_AUTH_MODE", AUTH_MODES, default="public")
    team = environ.get("ORCH_TEAM", "").strip() or None
    keys_file = environ.get("ORCH_KEYS_FILE", "").strip() or None
    control_token = environ.get("ORCH_CONTROL_TOKEN", "")
    lease_seconds = _seconds(
        environ, "ORCH_LEASE_SECONDS", default=0.0, allow_zero=True, zero_means="no lease"
    )

    if auth_mode == "private" and team is None:
        raise ConfigError("missing ORCH_TEAM: ORCH_AUTH_MODE=private requires the app's team")
    if auth_mode != "public" and keys_file is None:
        raise ConfigError(f"missing ORCH_KEYS_FILE: ORCH_AUTH_MODE={auth_mode} requires a key file")
    if lease_seconds > 0 and not control_token:
        raise ConfigError(
            f"missing ORCH_CONTROL_TOKEN: ORCH_LEASE_SECONDS={lease_seconds:g} requires a "
            "control token, because the lease is renewed with POST /_orch/lease"
        )

    return SidecarConfig(
        upstream_url=upstream_url,
        upstream_host=upstream_host,
        upstream_port=upstream_port,
        host=environ.get("ORCH_SIDECAR_HOST", "").strip() or "0.0.0.0",
        port=_integer(environ, "ORCH_SIDECAR_PORT", default=8080, minimum=0, maximum=65535),
        limit_max_requests=_integer(
            environ, "ORCH_LIMIT_MAX_REQUESTS", default=0, minimum=0, zero_means="no limit"
        ),
        max_concurrency=_integer(environ, "ORCH_MAX_CONCURRENCY", default=1, minimum=1),
        max_queue=_integer(
            environ, "ORCH_MAX_QUEUE", default=100, minimum=0, zero_means="no queue"
        ),
        request_timeout=_seconds(environ, "ORCH_REQUEST_TIMEOUT", default=60.0, allow_zero=False),
        auth_mode=auth_mode,
        team=team,
        keys_file=keys_file,
        control_token=control_token,
        lease_seconds=lease_seconds,
        drain_seconds=_seconds(environ, "ORCH_DRAIN_SECONDS", default=30.0, allow_zero=True),
        log_level=_choice(environ, "ORCH_LOG_LEVEL", LOG_LEVELS, default="INFO", upper=True),
    )


def _upstream(environ: Mapping[str, str]) -> tuple[str, str, int]:
    raw = environ.get("ORCH_UPSTREAM", "").strip()
    if not raw:
        raise ConfigError(
            "missing ORCH_UPSTREAM: set it to the app's URL, e.g. http://127.0.0.1:8000"
        )

    expected = "expected http://HOST:PORT, e.g. http://127.0.0.1:8000"
    try:
        url = urllib.parse.urlsplit(raw)
        port = url.port or 80
    except ValueError:
        raise ConfigError(f"invalid ORCH_UPSTREAM={raw!r}: {expected}") from None
    if url.scheme != "http" or not url.hostname:
        raise ConfigError(
            f"invalid ORCH_UPSTREAM={raw!r}: {expected} (only plain HTTP is supported)"
        )
    if url.path not in ("", "/") or url.query or url.fragment or url.username:
        raise ConfigError(
            f"invalid ORCH_UPSTREAM={raw!r}: {expected}, without a path, query or user"
        )
    return f"http://{url.netloc}", url.hostname, port


def _integer(
    environ: Mapping[str, str],
    name: str,
    *,
    default: int,
    minimum: int,
    maximum: int | None = None,
    zero_means: str | None = None,
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default

    valid = (
        f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    )
    if zero_means:
        valid += f" (0 means {zero_means})"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"invalid {name}={raw!r}: expected {valid}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"invalid {name}={raw!r}: expected {valid}")
    return value


def _seconds(
    environ: Mapping[str, str],
    name: str,
    *,
    default: float,
    allow_zero: bool,
    zero_means: str | None = None,
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default

    valid = "a number of seconds >= 0" if allow_zero else "a number of seconds > 0"
    if zero_means:
        valid += f" (0 means {zero_means})"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"invalid {name}={raw!r}: expected {valid}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"invalid {name}={raw!r}: expected {valid}")
    return value


def _choice(
    environ: Mapping[str, str],
    name: str,
    choices: tuple[str, ...],
    *,
    default: str,
    upper: bool = False,
) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default

    value = raw.upper() if upper else raw
    if value in choices:
        return value
    suggestion = closest_match(value, choices)
    hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
    raise ConfigError(f"invalid {name}={raw!r}: expected one of {', '.join(choices)}{hint}")
