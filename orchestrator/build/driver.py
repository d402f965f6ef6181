"""Build drivers: BuildKit through the docker CLI, or the classic builder through the SDK.

The Docker SDK speaks only the classic builder's API. BuildKit, which adds
cache mounts for package downloads, needs the docker CLI: ``docker buildx``,
or ``DOCKER_BUILDKIT=1 docker build`` on clients older than 23.0 that still
carry the built-in BuildKit client.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..config import cache_dir
from ..engine import Engine
from ..errors import BuildError, OptionError
from .progress import Progress

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 25


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """One image build: a laid-out context, its tag and options."""

    context: Path
    tag: str
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    no_cache: bool = False
    target: str | None = None


class BuildLog:
    """The full build output, kept in a file whose path failure messages name."""

    def __init__(self, tag: str) -> None:
        folder = cache_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        safe_tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", tag)
        self.path = folder / f"build-{safe_tag}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self._file = self.path.open("w")
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)
        self._file.write(line + "\n")
        self._file.flush()

    def tail(self, count: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.lines[-count:])

    def close(self) -> None:
        self._file.close()


class ClassicDriver:
    """The engine's classic builder, driven through the Docker SDK."""

    name = "classic"
    buildkit = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def build(self, request: BuildRequest, progress: Progress, log: BuildLog) -> str:
        image_id = None
        current_step = ""
        stream = self.engine.build_stream(
            path=str(request.context), tag=request.tag, buildargs=dict(request.build_args),
            labels=dict(request.labels), nocache=request.no_cache, target=request.target,
        )
        for message in stream:
            if "stream" in message:
                for line in message["stream"].splitlines():
                    log.write(line)
                    if line.startswith("Step "):
                        current_step = line
                        progress.step(line)
                    elif line.strip():
                        progress.log(line)
            if "aux" in message and "ID" in message["aux"]:
                image_id = message["aux"]["ID"]
            if "error" in message:
                log.write(message["error"])
                raise _failure(request, current_step, log)
        if image_id is None:
            raise _failure(request, current_step, log)
        return image_id


class BuildKitDriver:
    """BuildKit through the docker CLI, with cache mounts for downloads."""

    name = "buildkit"
    buildkit = True

    def __init__(self, command: list[str], env: Mapping[str, str]) -> None:
        self.command = command
        self.env = env

    def build(self, request: BuildRequest, progress: Progress, log: BuildLog) -> str:
        id_file = Path(tempfile.mkdtemp(prefix="orch-iid-")) / "image-id"
        args = [*self.command, "--progress=plain", "--iidfile", str(id_file), "-t", request.tag]
        for name, value in request.build_args.items():
            args += ["--build-arg", f"{name}={value}"]
        for name, value in request.labels.items():
            args += ["--label", f"{name}={value}"]
        if request.no_cache:
            args.append("--no-cache")
        if request.target:
            args += ["--target", request.target]
        args.append(str(request.context))

        failed_step = self._stream(args, progress, log)
        if failed_step is not None or not id_file.is_file():
            raise _failure(request, failed_step or "", log)
        return id_file.read_text().strip()

    def _stream(self, args: list[str], progress: Progress, log: BuildLog) -> str | None:
        """Run the build; return the failing step's title, or None on success."""
        steps: dict[str, str] = {}
        failed: str | None = None
        process = subprocess.Popen(
            args, env={**os.environ, **self.env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            log.write(line)
            header = re.match(r"^#(\d+) (\[.+)$", line)
            if header and header.group(1) not in steps:
                steps[header.group(1)] = header.group(2)
                progress.step(header.group(2))
            elif re.match(r"^#(\d+) ERROR", line):
                failed = steps.get(line.split()[0][1:], line)
            else:
                progress.log(re.sub(r"^#\d+ [\d.]+ ", "", line))
        if process.wait() != 0 and failed is None:
            failed = "docker build"
        return failed


def run_build(driver: ClassicDriver | BuildKitDriver, request: BuildRequest, title: str,
              progress: Progress) -> str:
    """Build ``request`` with progress shown and the full log kept; return the image ID."""
    log = BuildLog(request.tag)
    progress.start(f"Building {title} ({driver.name})")
    try:
        image_id = driver.build(request, progress, log)
    except BuildError:
        progress.finish(False)
        raise
    log.close()
    progress.finish(True)
    logger.info("built %s (%s); log in %s", request.tag, image_id[:19], log.path)
    return image_id


def _failure(request: BuildRequest, step: str, log: BuildLog) -> BuildError:
    log.close()
    step_text = f" at step '{step.strip()}'" if step else ""
    message = (
        f"building {request.tag} failed{step_text}. Last lines of the build log:\n"
        f"{log.tail()}\nFull log: {log.path}"
    )
    return BuildError(message, step=step, log_path=str(log.path))


def docker_clients() -> Iterable[str]:
    """Every ``docker`` executable on PATH, in PATH order."""
    seen = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "docker"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            real = candidate.resolve()
            if real not in seen:
                seen.add(real)
                yield str(candidate)


def _buildkit_command(client: str) -> list[str] | None:
    def succeeds(*args: str) -> subprocess.CompletedProcess | None:
        try:
            result = subprocess.run([client, *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result if result.returncode == 0 else None

    if succeeds("buildx", "version"):
        return [client, "buildx", "build", "--load"]
    version = succeeds("version", "--format", "{{.Client.Version}}")
    if version and version.stdout.strip().split(".")[0].isdigit():
        if int(version.stdout.strip().split(".")[0]) < 23:
            return [client, "build"]
    return None


def _cached_buildkit_command() -> list[str] | None:
    """Find a BuildKit-capable docker CLI, remembering the answer per set of CLIs.

    Asking each CLI for its version takes about 0.2 s, so the result is kept
    in ``$ORCH_HOME/builder.json`` until a docker CLI on PATH changes.
    """
    clients = list(docker_clients())
    fingerprint = []
    for client in clients:
        status = os.stat(client)
        fingerprint.append([client, status.st_mtime_ns, status.st_size])
    cache = cache_dir() / "builder.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("fingerprint") == fingerprint:
            return cached.get("command")
    except (OSError, ValueError):
        pass
    command = next((found for found in map(_buildkit_command, clients) if found), None)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"fingerprint": fingerprint, "command": command}))
    except OSError as error:
        logger.debug("cannot cache the build driver choice in %s: %s", cache, error)
    return command


def choose_driver(engine: Engine) -> ClassicDriver | BuildKitDriver:
    """Pick BuildKit when a docker CLI can drive it, else the classic builder.

    ``ORCH_BUILDER=classic`` or ``buildkit`` forces a choice.
    """
    wanted = os.environ.get("ORCH_BUILDER", "auto")
    if wanted not in ("auto", "classic", "buildkit"):
        raise OptionError(f"invalid ORCH_BUILDER {wanted!r}; use auto, classic or buildkit")
    if wanted == "classic":
        return ClassicDriver(engine)
    command = _cached_buildkit_command()
    if command:
        logger.debug("building with BuildKit through %s", " ".join(command))
        return BuildKitDriver(command, {"DOCKER_BUILDKIT": "1"})
    if wanted == "buildkit":
        raise OptionError(
            "ORCH_BUILDER=buildkit but no docker CLI on PATH can run BuildKit builds; "
            "install docker-buildx or unset ORCH_BUILDER"
        )
    logger.info("no BuildKit-capable docker CLI found; using the classic builder")
    return ClassicDriver(engine)


