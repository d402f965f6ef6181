"""The auth modes of a local run, with keys from the local key store."""

from __future__ import annotations

import signal
import time

import pytest
import requests
from click.testing import CliRunner

from orchestrator.cli.main import cli

from .orch_process import OrchProcess

APP = """
import orchestrator

class Guarded(orchestrator.App):
    @orchestrator.endpoint("/hello")
    def hello(self) -> dict:
        return {"hello": "world"}
"""

# mode -> expected status for: no key, wrong secret, key of the app's team, key of another team
MATRIX = {
    "public": (200, 200, 200, 200),
    "private": (401, 401, 200, 401),
    "shared": (401, 401, 200, 200),
}


@pytest.fixture
def key_store(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_CONFIG_DIR", str(tmp_path / "config"))
    runner = CliRunner()
    own = runner.invoke(cli, ["keys", "create", "--team", "vision"]).stdout.strip()
    other = runner.invoke(cli, ["keys", "create", "--team", "audio"]).stdout.strip()
    return own, other


@pytest.mark.parametrize("mode", list(MATRIX))
def test_auth_matrix(mode, project, key_store):
    own, other = key_store
    key_id = own.split(":")[0]
    wrong = f"{key_id}:{'x' * 43}"
    path = project.write("guarded.py", APP)
    run = OrchProcess("run", f"{path}::Guarded", "--local", "--auth", mode, "--team", "vision")
    try:
        url = run.wait_ready()
        statuses = []
        for key in (None, wrong, own, other):
            headers = {"Authorization": f"Key {key}"} if key else {}
            response = requests.post(url + "/hello", json={}, headers=headers, timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 401:
                assert "error" in response.json()
        health = requests.get(url + "/health", timeout=10)
        run.send(signal.SIGINT)
        assert run.wait(60) == 0, run.output
    finally:
        run.kill()

    assert tuple(statuses) == MATRIX[mode]
    assert health.status_code == 200
    assert f"Auth:    {mode}" in "\n".join(run.stderr)


def test_keys_create_shows_secret_once(key_store, tmp_path):
    own, _ = key_store
    listing = CliRunner().invoke(cli, ["keys", "ls"]).stdout
    stored = (tmp_path / "config" / "keys.json").read_text()

    assert own.split(":")[0] in listing
    assert own.split(":")[1] not in listing
    assert own.split(":")[1] not in stored


def test_key_created_during_run_applies(project, key_store, tmp_path):
    path = project.write("guarded.py", APP)
    run = OrchProcess("run", f"{path}::Guarded", "--local", "--auth", "private", "--team", "radio")
    try:
        url = run.wait_ready()
        before = requests.post(url + "/hello", json={}, timeout=10).status_code
        created = CliRunner().invoke(cli, ["keys", "create", "--team", "radio"]).stdout.strip()
        statuses = []
        for _ in range(50):
            response = requests.post(url + "/hello", json={}, timeout=10,
                                     headers={"Authorization": f"Key {created}"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            time.sleep(0.2)
        run.send(signal.SIGINT)
        assert run.wait(60) == 0, run.output
    finally:
        run.kill()

    assert before == 401
    assert statuses[-1] == 200
    assert set(statuses[:-1]) <= {401}
    assert list((tmp_path / "orch-home" / "runs").iterdir()) == []
