"""A client of the runner's HTTP API, used by ``orch run`` and ``orch login``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from ..errors import OrchestratorError
from ..keystore import store_path

logger = logging.getLogger(__name__)


class RunnerError(OrchestratorError):
    """The runner rejected a request or cannot be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class RunnerSettings:
    """Runner URL, registry address and the key to use."""

    url: str
    key: str
    registry: str

    @property
    def authorization(self) -> str:
        return self.key if " " in self.key else f"Key {self.key}"


def settings_path() -> Path:
    return store_path().with_name("runner.json")


def save_settings(settings: RunnerSettings) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(settings), indent=2) + "\n")
    path.chmod(0o600)
    return path


def load_settings() -> RunnerSettings:
    """Read ``orch login``'s file; ``ORCH_RUNNER_URL``, ``ORCH_RUNNER_KEY`` and ``ORCH_REGISTRY`` override it."""
    stored: dict[str, str] = {}
    path = settings_path()
    if path.is_file():
        stored = json.loads(path.read_text())
    url = os.environ.get("ORCH_RUNNER_URL") or stored.get("url")
    key = os.environ.get("ORCH_RUNNER_KEY") or stored.get("key")
    registry = os.environ.get("ORCH_REGISTRY") or stored.get("registry") or "127.0.0.1:5000"
    if not url or not key:
        raise OrchestratorError(
            "no runner configured: run 'orch login --url URL --key KEY' or set ORCH_RUNNER_URL "
            "and ORCH_RUNNER_KEY (or add --local to run on this machine)"
        )
    return RunnerSettings(url.rstrip("/"), key, registry)


class RunnerClient:
    """Calls the runner's ``/v1`` API with the configured key."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["Authorization"] = settings.authorization

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.settings.url}{path}"
        try:
            response = self.session.request(method, url, timeout=kwargs.pop("timeout", 30), **kwargs)
        except requests.RequestException as error:
            raise RunnerError(
                f"cannot reach the runner at {self.settings.url} ({type(error).__name__}); start it "
                f"with 'docker-compose up -d' or check 'orch login'"
            ) from error
        if response.status_code >= 400:
            raise RunnerError(f"the runner returned {response.status_code} to {method} {path}: "
                              f"{_error_text(response)}", response.status_code)
        return response

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/runs", json=body).json()

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/runs/{run_id}").json()

    def list_runs(self, team: str | None) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/runs", params={"team": team} if team else None).json()["runs"]

    def heartbeat(self, run_id: str) -> None:
        self._call("POST", f"/v1/runs/{run_id}/heartbeat", timeout=10)

    def delete_run(self, run_id: str) -> None:
        self._call("DELETE", f"/v1/runs/{run_id}")

    def follow_logs(self, run_id: str) -> Iterator[bytes]:
        response = self._call("GET", f"/v1/runs/{run_id}/logs", params={"follow": "1"}, stream=True, timeout=None)
        yield from response.iter_content(chunk_size=None)

    def create_key(self, team: str, name: str | None) -> dict[str, Any]:
        return self._call("POST", "/v1/keys", json={"team": team, "name": name}).json()

    def list_keys(self, team: str | None) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/keys", params={"team": team} if team else None).json()["keys"]

    def revoke_key(self, key_id: str) -> None:
        self._call("DELETE", f"/v1/keys/{key_id}")


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:300]
