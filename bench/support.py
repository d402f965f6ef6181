"""Helpers shared by the benchmarks: statistics, tables, processes, ports and Docker.

The benchmarks run on the machine's own Docker engine and on 127.0.0.1 only.
Every image and container they create has a random run id in its name, tag
or labels, so that cleanup removes exactly what the benchmark made. The one
exception is a sidecar image that ``orch run`` builds, which run_local.py
tracks itself.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPOSITORY / ".venv" / "bin" / "python"
ORCH = REPOSITORY / ".venv" / "bin" / "orch"
# The 20.10 client still carries the built-in BuildKit client
# (DOCKER_BUILDKIT=1 docker build); newer clients need buildx for that.
DOCKER = os.environ.get("BENCH_DOCKER", "/usr/bin/docker")
DEFAULT_BASE_IMAGE = "orchestrator-local/python:3.11"
DEFAULT_UV_IMAGE = "orchestrator-local/uv:latest"
RESULTS_DIR = REPOSITORY / "bench" / "results"


def use_project_venv() -> None:
    """Re-run the current script with the project's virtual environment when another Python started it."""
    if Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve() and VENV_PYTHON.exists():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])


# So that ``bench/NAME.py`` works without activating the environment: the
# scripts import the orchestrator package, which only the environment has.
use_project_venv()


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of repeated measurements."""

    median: float
    minimum: float
    maximum: float
    count: int

    def format(self, unit: str = "s", digits: int = 2) -> str:
        return (
            f"{self.median:.{digits}f} {unit} "
            f"({self.minimum:.{digits}f}–{self.maximum:.{digits}f})"
        )


def summarize(values: Sequence[float]) -> Summary:
    return Summary(statistics.median(values), min(values), max(values), len(values))


def ratio(ours: Summary, theirs: Summary) -> float:
    """Return the ratio of the medians, ours over theirs."""
    return ours.median / theirs.median


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def docker(*args: str, check: bool = True, env: dict[str, str] | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI and return its completed process (output captured)."""
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, check=check,
        env={**os.environ, **(env or {})}, timeout=timeout,
    )


def timed_run(args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 900) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command to completion; return its wall time in seconds and the process.

    Raises ``RuntimeError`` with the command's output when it fails, so a
    failed side is never reported as a fast one.
    """
    started = time.perf_counter()
    completed = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"command failed with exit code {completed.returncode}: {' '.join(args)}\n"
            f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
        )
    return elapsed, completed


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_status(port: int, path: str, body: bytes, timeout: float = 2.0) -> int | None:
    """POST a JSON body to 127.0.0.1:``port`` and return the status, or None when unreachable."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def get_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def machine_description() -> dict[str, str]:
    """Describe the machine: CPUs, kernel, Docker engine and storage driver."""
    info = docker("info", "--format", "{{.Driver}} {{.ServerVersion}}", check=False).stdout.split()
    client = docker("version", "--format", "{{.Client.Version}}", check=False).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "docker_engine": info[1] if len(info) > 1 else "unknown",
        "docker_client": f"{client} ({DOCKER})",
        "storage_driver": info[0] if info else "unknown",
        "load_average_1m": f"{os.getloadavg()[0]:.2f}",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine(machine: dict[str, str]) -> None:
    print(", ".join(f"{key}={value}" for key, value in machine.items()))


def save_results(name: str, results: dict) -> Path:
    """Write the raw results as JSON under bench/results/ (ignored by git)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=_to_json))
    return path


def _to_json(value: object) -> object:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def remove_images(references: Iterable[str], *, force: bool = True) -> None:
    """Remove the given image tags or IDs; an image already gone is skipped."""
    for reference in references:
        result = docker("image", "rm", *(["-f"] if force else []), reference, check=False)
        if result.returncode != 0 and "No such image" not in result.stderr:
            print(f"warning: could not remove image {reference}: {result.stderr.strip()}")


def images_with_label(label: str) -> list[str]:
    """Return ``repository:tag`` of every tagged image carrying ``label`` (``key=value``)."""
    output = docker("image", "ls", "--filter", f"label={label}", "--format", "{{.Repository}}:{{.Tag}}").stdout
    return [line for line in output.splitlines() if line and "<none>" not in line]


def image_label(reference: str, key: str) -> str:
    output = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{key}"}}}}', reference).stdout
    return output.strip()


def image_tag_events(since: float, until: float) -> list[dict[str, str]]:
    """Return the engine's image events between two Unix times, as action and image name."""
    output = docker(
        "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
        "--filter", "type=image", "--format", "{{json .}}",
    ).stdout
    events = []
    for line in output.splitlines():
        event = json.loads(line)
        attributes = event.get("Actor", {}).get("Attributes", {})
        events.append({"action": event.get("Action", ""), "name": attributes.get("name", event.get("id", ""))})
    return events
