"""A runner backend that starts a run's sidecar and app as local processes.

It implements the ``Backend`` protocol with the real sidecar
(``python -m orchestrator.sidecar``) and the real runtime
(``python -m orchestrator.runtime``) instead of containers, so that the
runner's tests exercise everything but Docker. Each image reference maps to
an app file and the name of its declaration, as an image would carry them.
Both processes listen on 127.0.0.1 only, and their output goes to files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from orchestrator.machines import MachineType
from orchestrator.runner.backends.base import NoCapacity, Observation, Placement
from orchestrator.runner.models import Run

REPOSITORY = Path(__file__).resolve().parents[3]
LISTEN_TIMEOUT_SECONDS = 15.0
EXIT_TIMEOUT_SECONDS = 15.0
LOG_POLL_SECONDS = 0.05
TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class AppSource:
    """What an app image would run: a file and the declaration in it."""

    app_file: Path
    name: str


@dataclasses.dataclass
class RunProcesses:
    sidecar: subprocess.Popen[bytes]
    app: subprocess.Popen[bytes]
    sidecar_log: Path
    app_log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProcessBackend:
    """Runs as pairs of local processes; ``offered`` names the machine types it has capacity for."""

    name = "process"

    def __init__(
        self,
        apps: Mapping[str, AppSource],
        keys_file: Path,
        log_dir: Path,
        offered: set[str] | None = None,
    ) -> None:
        self.apps = dict(apps)
        self.keys_file = keys_file
        self.log_dir = log_dir
        self.offered = {"XS", "S", "M", "L", "XL"} if offered is None else offered
        self.started: list[str] = []
        self.removed: list[str] = []
        self._runs: dict[str, RunProcesses] = {}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def offers(self, machine: MachineType) -> bool:
        return machine.name in self.offered

    def start(self, run: Run, machine: MachineType) -> Placement:
        if machine.name not in self.offered:
            raise NoCapacity(f"no node offers machine type {machine.name}; waiting for capacity")
        source = self.apps.get(run.image)
        if source is None:
            raise RuntimeError(f"image {run.image} not found in the test registry")

        app_port = free_port()
        app_log = self.log_dir / f"{run.id}-app.log"
        sidecar_log = self.log_dir / f"{run.id}-sidecar.log"
        app = _spawn("orchestrator.runtime", _app_env(run, source, app_port), app_log)
        sidecar = _spawn("orchestrator.sidecar", self._sidecar_env(run, app_port), sidecar_log)
        with self._lock:
            self._runs[run.id] = RunProcesses(sidecar, app, sidecar_log, app_log)
            self.started.append(run.id)

        port = _wait_listening(sidecar, sidecar_log)
        return Placement(upstream=f"http://127.0.0.1:{port}", node="localhost")

    def observe(self, run: Run) -> Observation:
        processes = self._runs.get(run.id)
        if processes is None:
            return Observation(sidecar_running=False, app_running=False)
        return Observation(
            sidecar_running=processes.sidecar.poll() is None,
            app_running=processes.app.poll() is None,
            summary=_summary(processes.sidecar_log),
            app_log_tail=_tail(processes.app_log),
        )

    def logs(self, run: Run, follow: bool) -> Iterator[bytes]:
        processes = self._runs.get(run.id)
        if processes is None:
            raise RuntimeError(f"run {run.id} has no processes")
        return _read_log(processes, follow)

    def remove(self, run: Run) -> None:
        with self._lock:
            processes = self._runs.pop(run.id, None)
            self.removed.append(run.id)
        if processes is not None:
            _terminate(processes.sidecar)
            _terminate(processes.app)

    def run_ids(self) -> set[str]:
        with self._lock:
            return {
                run_id
                for run_id, processes in self._runs.items()
                if processes.sidecar.poll() is None or processes.app.poll() is None
            }

    def processes(self, run_id: str) -> RunProcesses | None:
        return self._runs.get(run_id)

    def kill(self, run_id: str) -> None:
        """Kill a run's processes at once, as if its containers vanished."""
        processes = self._runs[run_id]
        for process in (processes.sidecar, processes.app):
            if process.poll() is None:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop every process this backend started."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for processes in runs:
            _terminate(processes.sidecar)
            _terminate(processes.app)

    def _sidecar_env(self, run: Run, app_port: int) -> dict[str, str]:
        env = _base_env()
        env.update(
            {
                "ORCH_SIDECAR_HOST": "127.0.0.1",
                "ORCH_SIDECAR_PORT": "0",
                "ORCH_UPSTREAM": f"http://127.0.0.1:{app_port}",
                "ORCH_LIMIT_MAX_REQUESTS": str(run.limit_max_requests),
                "ORCH_MAX_CONCURRENCY": str(run.max_concurrency),
                "ORCH_MAX_QUEUE": str(run.max_queue),
                "ORCH_REQUEST_TIMEOUT": str(run.request_timeout),
                "ORCH_AUTH_MODE": run.auth,
                "ORCH_TEAM": run.team,
                "ORCH_KEYS_FILE": str(self.keys_file),
                "ORCH_CONTROL_TOKEN": run.control_token,
                "ORCH_DRAIN_SECONDS": "5",
            }
        )
        return env


def _base_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORCH_")}
    env["PYTHONPATH"] = str(REPOSITORY)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _app_env(run: Run, source: AppSource, port: int) -> dict[str, str]:
    env = _base_env()
    env.update(run.app_env)
    env.update(
        {
            "ORCH_APP_FILE": str(source.app_file),
            "ORCH_APP_NAME": source.name,
            "ORCH_APP_HOST": "127.0.0.1",
            "ORCH_APP_PORT": str(port),
            "ORCH_CONTROL_TOKEN": run.control_token,
            "ORCH_DRAIN_SECONDS": "5",
            "ORCH_FAILED_EXIT_SECONDS": "0.2",
        }
    )
    return env


def _spawn(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPOSITORY,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_listening(sidecar: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if " listening on " in line:
                return int(line.rsplit(":", 1)[1])
        if sidecar.poll() is not None:
            break
        time.sleep(LOG_POLL_SECONDS)
    raise RuntimeError(f"the sidecar did not start listening:\n{log_path.read_text(errors='replace')}")


def _summary(log_path: Path) -> dict | None:
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        _, separator, document = line.partition(" summary ")
        if separator:
            return json.loads(document)
    return None


def _tail(log_path: Path) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-TAIL_LINES:])


def _read_log(processes: RunProcesses, follow: bool) -> Iterator[bytes]:
    with open(processes.app_log, "rb") as log:
        while True:
            data = log.read(65536)
            if data:
                yield data
                continue
            if not follow or processes.app.poll() is not None:
                # One more read catches output written just before the exit.
                rest = log.read()
                if rest:
                    yield rest
                return
            time.sleep(LOG_POLL_SECONDS)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
