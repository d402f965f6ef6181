"""A client of the runner's HTTP API, used by ``orch run`` and ``orch login``."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    """Calls the runner's ``/v1`` API with the configured key.

    It uses urllib rather than requests, which would add about 0.08 s of
    imports to every remote ``orch run``.
    """

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings

    def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              timeout: float | None = 30.0) -> http.client.HTTPResponse:
        url = f"{self.settings.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": self.settings.authorization}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            with error:
                text = _error_text(error.read())
            raise RunnerError(
                f"the runner returned {error.code} to {method} {path}: {text}", error.code
            ) from None
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise RunnerError(
                f"cannot reach the runner at {self.settings.url} ({reason}); start it "
                f"with 'docker-compose up -d' or check 'orch login'"
            ) from error

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._call(method, path, **kwargs) as response:
            return json.loads(response.read() or b"null")

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/runs", body=body)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/runs/{run_id}")

    def list_runs(self, team: str | None) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/runs", params={"team": team} if team else None)["runs"]

    def heartbeat(self, run_id: str) -> None:
        self._call("POST", f"/v1/runs/{run_id}/heartbeat", timeout=10).close()

    def delete_run(self, run_id: str) -> None:
        self._call("DELETE", f"/v1/runs/{run_id}").close()

    def follow_logs(self, run_id: str) -> Iterator[bytes]:
        with self._call("GET", f"/v1/runs/{run_id}/logs", params={"follow": "1"}, timeout=None) as response:
            while chunk := response.read1(65536):
                yield chunk

    def create_key(self, team: str, name: str | None) -> dict[str, Any]:
        return self._json("POST", "/v1/keys", body={"team": team, "name": name})

    def list_keys(self, team: str | None) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/keys", params={"team": team} if team else None)["keys"]

    def revoke_key(self, key_id: str) -> None:
        self._call("DELETE", f"/v1/keys/{key_id}").close()


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text[:300]
    return str(document.get("error", text)) if isinstance(document, dict) else text[:300]
