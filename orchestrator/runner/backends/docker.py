"""The Docker backend: runs on the engine the runner runs beside.

Each run is a sidecar container on the runner's network, reachable by its
container name, and an app container in the sidecar's network namespace.
Containers are not auto-removed: the runner reads the sidecar's summary from
its logs after it stops, then removes both.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import docker.errors

from ...engine import ContainerEngine, Engine, GpuUnavailable
from ...errors import EngineError
from ...local.session import SUMMARY_PREFIX, parse_summary
from ...local.spec import LABEL, SIDECAR_PORT, RunSpec, app_container, sidecar_container
from ...machines import MachineType
from ..models import Run
from .base import NoCapacity, Observation, Placement

logger = logging.getLogger(__name__)

# How long the engine's CPUs, memory and runtimes are taken as known.
INFO_MAX_AGE_SECONDS = 30.0

MANAGED_BY = f"{LABEL}.managed-by"


class DockerBackend:
    """Places runs on one Docker engine."""

    name = "docker"

    def __init__(self, engine: Engine, *, network: str, keys_volume: str, sidecar_image: str,
                 runner_name: str = "runner") -> None:
        self.engine = engine
        self.containers = ContainerEngine(engine)
        self.network = network
        self.keys_volume = keys_volume
        self.sidecar_image = sidecar_image
        self.runner_name = runner_name
        self._info: dict[str, Any] = {}
        self._info_at = float("-inf")
        self.node = self._engine_info().get("Name") or socket.gethostname()

    @classmethod
    def from_env(cls) -> DockerBackend:
        return cls(
            Engine.connect(),
            network=os.environ.get("ORCH_RUNNER_NETWORK", "orchestrator-runs"),
            keys_volume=os.environ.get("ORCH_RUNNER_KEYS_VOLUME", "orchestrator-keys"),
            sidecar_image=os.environ.get("ORCH_SIDECAR_IMAGE", "orchestrator/sidecar:latest"),
            runner_name=os.environ.get("ORCH_RUNNER_NAME", "runner"),
        )

    def offers(self, machine: MachineType) -> bool:
        info = self._engine_info()
        if machine.cpus > (info.get("NCPU") or 0):
            return False
        if machine.memory_bytes > (info.get("MemTotal") or 0):
            return False
        if machine.is_gpu and "nvidia" not in (info.get("Runtimes") or {}):
            return False
        return True

    def start(self, run: Run, machine: MachineType) -> Placement:
        if not self.offers(machine):
            raise NoCapacity(f"no node offers machine type {machine.name}; waiting for capacity")
        self._pull(run.image)
        spec = self._spec(run, machine)
        sidecar_id = self.containers.create(
            spec.container_name("sidecar"),
            sidecar_container(spec, network=self.network, auto_remove=False),
        )
        # Created before the sidecar starts, so that the app starts right after it.
        app_id = self.containers.create(
            spec.container_name("app"), app_container(spec, sidecar_id, auto_remove=False)
        )
        self.containers.start(sidecar_id)
        try:
            self.containers.start(app_id)
        except GpuUnavailable as error:
            self.remove(run)
            raise NoCapacity(
                f"no node offers machine type {machine.name} (GPUs unavailable: {error.message}); "
                f"waiting for capacity"
            ) from error
        logger.info("started run %s on %s (sidecar %s)", run.id, self.node, sidecar_id[:12])
        return Placement(upstream=f"http://{spec.container_name('sidecar')}:{SIDECAR_PORT}", node=self.node)

    def observe(self, run: Run) -> Observation:
        sidecar = self._inspect(run, "sidecar")
        app = self._inspect(run, "app")
        sidecar_running = bool(sidecar and sidecar["State"]["Running"])
        app_running = bool(app and app["State"]["Running"])
        summary = None if sidecar_running or not sidecar else self._summary(sidecar["Id"])
        tail = "" if app_running or not app else self._tail(app["Id"])
        return Observation(sidecar_running, app_running, summary, tail)

    def logs(self, run: Run, follow: bool) -> Iterator[bytes]:
        app = self._inspect(run, "app")
        if app is None:
            return iter(())
        return self.containers.api.logs(app["Id"], stream=True, follow=follow, stdout=True, stderr=True)

    def remove(self, run: Run) -> None:
        for item in self.containers.list(f"{LABEL}.run={run.id}"):
            self.containers.remove(item["Id"])
        logger.info("removed the containers of run %s", run.id)

    def run_ids(self) -> set[str]:
        items = self.containers.list(f"{MANAGED_BY}={self.runner_name}")
        return {item["Labels"][f"{LABEL}.run"] for item in items}

    # Helpers

    def _spec(self, run: Run, machine: MachineType) -> RunSpec:
        return RunSpec(
            run_id=run.id,
            image=run.image,
            sidecar_image=self.sidecar_image,
            app_name=run.app_name,
            declaration_name=run.app_name,
            machine=machine,
            team=run.team,
            env_name=run.env,
            auth=run.auth,
            control_token=run.control_token,
            keys_dir=self.keys_volume,
            limit_max_requests=run.limit_max_requests,
            max_concurrency=run.max_concurrency,
            max_queue=run.max_queue,
            request_timeout=run.request_timeout,
            # The runner holds the lease with the CLI, so the sidecar has none.
            lease_seconds=0,
            app_env=dict(run.app_env),
            extra_labels={MANAGED_BY: self.runner_name},
        )

    def _engine_info(self) -> dict[str, Any]:
        # GET /info took 12 to 16 ms on Engine 20.10 and is needed twice per
        # placement. CPUs, memory and runtimes change rarely, so it is reused.
        if time.monotonic() - self._info_at > INFO_MAX_AGE_SECONDS:
            self._info = self.engine.info()
            self._info_at = time.monotonic()
        return self._info

    def _pull(self, image: str) -> None:
        if self.engine.image(image) is not None:
            return
        self.engine.pull(image)

    def _inspect(self, run: Run, role: str) -> dict | None:
        for item in self.containers.list(f"{LABEL}.run={run.id}"):
            if item["Labels"].get(f"{LABEL}.role") == role:
                return self.containers.inspect(item["Id"])
        return None

    def _summary(self, container_id: str) -> dict | None:
        try:
            output = self.containers.api.logs(container_id, tail=50).decode(errors="replace")
        except (docker.errors.APIError, EngineError):
            return None
        for line in reversed(output.splitlines()):
            if SUMMARY_PREFIX in line:
                return parse_summary(line)
        return None

    def _tail(self, container_id: str) -> str:
        try:
            return self.containers.api.logs(container_id, tail=30).decode(errors="replace")
        except (docker.errors.APIError, EngineError):
            return ""
