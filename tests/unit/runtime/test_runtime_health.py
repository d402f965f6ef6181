"""GET /health while setup runs, after it returned, and after it raised."""

from __future__ import annotations

APP = """
import os
import time
from pathlib import Path

import orchestrator


class Slow(orchestrator.App):
    def setup(self):
        # Blocks until the test creates the file, at most 15 s.
        release = Path(os.environ["RELEASE_FILE"])
        deadline = time.monotonic() + 15
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.ready = True

    @orchestrator.endpoint("/ping")
    def ping(self):
        return "pong"


class Broken(orchestrator.App):
    def setup(self):
        raise RuntimeError("model file missing")

    @orchestrator.endpoint("/ping")
    def ping(self):
        return "pong"
"""


def test_health_starting_then_ready(start_runtime, tmp_path):
    release = tmp_path / "release"
    app = start_runtime(APP, "Slow", ready=False, RELEASE_FILE=str(release))

    starting = app.wait_for_health("starting")
    early_call = app.post("/ping")
    release.touch()
    ready = app.wait_for_health("ready")

    assert starting.status_code == 503
    assert starting.json() == {"status": "starting"}
    assert early_call.status_code == 503
    assert early_call.json() == {"error": "app is starting; retry when GET /health returns ready"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert app.post("/ping").json() == "pong"
    assert "running setup" in app.logs()
    assert "setup finished in " in app.logs()


def test_health_failed_setup_exits_nonzero(start_runtime):
    app = start_runtime(APP, "Broken", ready=False, ORCH_FAILED_EXIT_SECONDS="3")

    failed = app.wait_for_health("failed")
    call = app.post("/ping")
    exit_code = app.wait_for_exit()

    assert failed.status_code == 503
    assert failed.json() == {"status": "failed", "error": "RuntimeError: model file missing"}
    assert call.status_code == 503
    assert call.json() == {"error": "app failed to start: RuntimeError: model file missing"}
    assert exit_code == 1
    logs = app.logs()
    assert "ERROR orchestrator.runtime.serve setup failed with RuntimeError\nTraceback" in logs
    assert 'raise RuntimeError("model file missing")' in logs
    assert "exiting in 3.0 s because setup failed" in logs
    assert "skipping teardown because setup did not finish" in logs
    assert "stopped with exit code 1" in logs


ASYNC_HOOKS = """
import asyncio
import os
import threading
from pathlib import Path

import orchestrator


class AsyncHooks(orchestrator.App):
    async def setup(self):
        await asyncio.sleep(0.01)
        self.setup_thread = threading.current_thread().name

    async def teardown(self):
        Path(os.environ["TEARDOWN_FILE"]).write_text(threading.current_thread().name)

    @orchestrator.endpoint("/threads")
    async def threads(self):
        return {"setup": self.setup_thread, "endpoint": threading.current_thread().name}
"""


def test_async_hooks_run_on_event_loop(start_runtime, tmp_path):
    teardown_file = tmp_path / "teardown"
    app = start_runtime(ASYNC_HOOKS, "AsyncHooks", TEARDOWN_FILE=str(teardown_file))

    threads = app.post("/threads").json()
    app.stop()

    assert threads == {"setup": "event-loop", "endpoint": "event-loop"}
    assert app.process.returncode == 0
    assert teardown_file.read_text() == "event-loop"
