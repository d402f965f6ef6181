"""Graceful stop: control call, signals, draining and teardown."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests

TOKEN = "s3cret-token"

APP = """
import os
import time
from pathlib import Path

import orchestrator

STATE = Path(os.environ["STATE_DIR"])


class Worker(orchestrator.App):
    def setup(self):
        self.calls = 0

    def teardown(self):
        with open(STATE / "teardown", "a") as log:
            log.write("teardown ran\\n")

    @orchestrator.endpoint("/slow")
    def slow(self):
        (STATE / "slow-started").touch()
        deadline = time.monotonic() + 15
        while not (STATE / "slow-release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return "done"
"""


@pytest.fixture
def start_worker(start_runtime, tmp_path):
    def start(**settings: str):
        return start_runtime(APP, "Worker", STATE_DIR=str(tmp_path), **settings)

    return start


def wait_for_file(path) -> None:
    deadline = time.monotonic() + 15
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists()


@pytest.mark.parametrize("header", ["X-Orch-Control-Token", "x-orch-control-token"])
def test_shutdown_runs_teardown(start_worker, tmp_path, header):
    app = start_worker(ORCH_CONTROL_TOKEN=TOKEN)

    response = app.post("/_orch/shutdown", headers={header: TOKEN})
    exit_code = app.wait_for_exit()

    assert response.status_code == 202
    assert response.json() == {"status": "stopping"}
    assert exit_code == 0
    assert (tmp_path / "teardown").read_text() == "teardown ran\n"
    logs = app.logs()
    assert "stopping (shutdown requested by control call): no longer accepting connections" in logs
    assert "draining 0 in-flight requests (at most 30 s)" in logs
    assert "running teardown" in logs
    assert "stopped with exit code 0" in logs


@pytest.mark.parametrize(
    "headers",
    [{"X-Orch-Control-Token": "wrong"}, {}],
    ids=["wrong-token", "no-token"],
)
def test_shutdown_rejects_bad_token(start_worker, tmp_path, headers):
    app = start_worker(ORCH_CONTROL_TOKEN=TOKEN)

    response = app.post("/_orch/shutdown", headers=headers)

    assert response.status_code == 403
    assert response.json() == {"error": "missing or wrong X-Orch-Control-Token header"}
    assert app.get("/health").json() == {"status": "ready"}
    assert app.is_running()
    assert not (tmp_path / "teardown").exists()
    assert TOKEN not in app.logs()


def test_shutdown_disabled_without_token(start_worker):
    app = start_worker()

    response = app.post("/_orch/shutdown", headers={"X-Orch-Control-Token": ""})

    assert response.status_code == 403
    assert response.json() == {
        "error": "control calls are disabled because ORCH_CONTROL_TOKEN is not set"
    }
    assert app.is_running()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully(start_worker, tmp_path, stop_signal):
    app = start_worker()

    app.process.send_signal(stop_signal)
    exit_code = app.wait_for_exit()

    assert exit_code == 0
    assert (tmp_path / "teardown").read_text() == "teardown ran\n"
    logs = app.logs()
    assert f"stopping (received {stop_signal.name})" in logs
    assert "running teardown" in logs
    assert "stopped with exit code 0" in logs


def test_shutdown_drains_in_flight_request(start_worker, tmp_path):
    app = start_worker(ORCH_CONTROL_TOKEN=TOKEN)
    results = {}
    caller = threading.Thread(target=lambda: results.update(slow=app.post("/slow")))
    caller.start()
    wait_for_file(tmp_path / "slow-started")

    shutdown = app.post("/_orch/shutdown", headers={"X-Orch-Control-Token": TOKEN})
    app.wait_for_log("draining 1 in-flight requests")
    teardown_before_release = (tmp_path / "teardown").exists()
    (tmp_path / "slow-release").touch()
    caller.join(15)
    exit_code = app.wait_for_exit()

    assert shutdown.status_code == 202
    assert not teardown_before_release
    assert results["slow"].status_code == 200
    assert results["slow"].json() == "done"
    assert results["slow"].headers["Connection"] == "close"
    assert exit_code == 0
    assert (tmp_path / "teardown").read_text() == "teardown ran\n"


def test_shutdown_rejects_new_connections(start_worker, tmp_path):
    app = start_worker(ORCH_CONTROL_TOKEN=TOKEN)
    caller = threading.Thread(target=lambda: app.post("/slow"))
    caller.start()
    wait_for_file(tmp_path / "slow-started")

    app.post("/_orch/shutdown", headers={"X-Orch-Control-Token": TOKEN})
    app.wait_for_log("draining 1 in-flight requests")
    with pytest.raises(requests.ConnectionError):
        app.get("/health")
    (tmp_path / "slow-release").touch()
    caller.join(15)

    assert app.wait_for_exit() == 0


def test_drain_limit_reached(start_worker, tmp_path):
    app = start_worker(ORCH_CONTROL_TOKEN=TOKEN, ORCH_DRAIN_SECONDS="0.5")
    caller = threading.Thread(target=lambda: _post_ignoring_errors(app, "/slow"))
    caller.start()
    wait_for_file(tmp_path / "slow-started")

    app.post("/_orch/shutdown", headers={"X-Orch-Control-Token": TOKEN})
    exit_code = app.wait_for_exit()
    (tmp_path / "slow-release").touch()
    caller.join(15)

    assert exit_code == 0
    assert "drain limit of 0.5 s reached with 1 requests still in flight" in app.logs()
    assert (tmp_path / "teardown").read_text() == "teardown ran\n"


def _post_ignoring_errors(app, path: str) -> None:
    try:
        app.post(path)
    except requests.ConnectionError:
        pass
