"""Start ``python -m orchestrator.runtime`` on user files written into tmp_path."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)

POLL_SECONDS = 0.05
WAIT_SECONDS = 15.0
HTTP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def runtime_env(app_file: Path, name: str, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["ORCH_APP_FILE"] = str(app_file)
    env["ORCH_APP_NAME"] = name
    env.update(settings)
    return env


def write_app(directory: Path, source: str, filename: str = "app.py") -> Path:
    path = directory / filename
    path.write_text(textwrap.dedent(source))
    return path


class RuntimeProcess:
    """A runtime serving on a free port, with its stderr captured in a file."""

    def __init__(
        self, app_file: Path, name: str, log_path: Path, settings: dict[str, str]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = runtime_env(app_file, name, ORCH_APP_PORT=str(self.port), **settings)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(PYTHON), "-m", "orchestrator.runtime"],
                env=env,
                cwd=str(app_file.parent),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def logs(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=HTTP_TIMEOUT, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=HTTP_TIMEOUT, **kwargs)

    def wait_for_health(self, status: str) -> requests.Response:
        """Poll GET /health until it reports ``status``; fail after WAIT_SECONDS."""
        deadline = time.monotonic() + WAIT_SECONDS
        last: Optional[str] = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"runtime exited with {self.process.returncode}:\n{self.logs()}")
            try:
                response = self.get("/health")
            except requests.ConnectionError:
                last = "connection refused"
            else:
                if response.json()["status"] == status:
                    return response
                last = response.text
            time.sleep(POLL_SECONDS)
        pytest.fail(f"health never reported {status!r}; last: {last}\n{self.logs()}")

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            time.sleep(POLL_SECONDS)
        pytest.fail(f"log never contained {text!r}:\n{self.logs()}")

    def wait_for_exit(self) -> int:
        try:
            return self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"runtime did not exit within {WAIT_SECONDS} s:\n{self.logs()}")

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


StartRuntime = Callable[..., RuntimeProcess]


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[StartRuntime]:
    """Return a function that writes an app file and starts the runtime serving it.

    With ``ready=True`` (the default) it waits until GET /health reports ready.
    Every process started is stopped when the test ends.
    """
    started: list[RuntimeProcess] = []

    def start(source: str, name: str, *, ready: bool = True, **settings: str) -> RuntimeProcess:
        app_file = write_app(tmp_path, source)
        log_path = tmp_path / f"runtime-{len(started)}.log"
        process = RuntimeProcess(app_file, name, log_path, settings)
        started.append(process)
        if ready:
            process.wait_for_health("ready")
        return process

    yield start
    for process in started:
        process.stop()


def run_runtime(app_file: Path, name: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the runtime to completion, e.g. in call mode or on a loading error."""
    return subprocess.run(
        [str(PYTHON), "-m", "orchestrator.runtime"],
        env=runtime_env(app_file, name, **settings),
        cwd=str(app_file.parent),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
    )


RunApp = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_app(tmp_path: Path) -> RunApp:
    """Return a function that writes ``app.py`` and runs the runtime on it to the end.

    With ``source=None`` no file is written.
    """

    def run(source: Optional[str], name: str, **settings: str) -> subprocess.CompletedProcess[str]:
        app_file = tmp_path / "app.py"
        if source is not None:
            write_app(tmp_path, source)
        return run_runtime(app_file, name, **settings)

    return run
