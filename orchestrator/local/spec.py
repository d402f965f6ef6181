"""What a local run requests from the engine: two containers and their settings.

The sidecar container owns the network namespace and publishes the only port,
on 127.0.0.1. The app container joins that namespace and listens on loopback,
so it is reachable only through the sidecar.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from typing import Any

from ..machines import MachineType

LABEL = "org.orchestrator"
SIDECAR_PORT = 8080
APP_PORT = 8000
AUTH_MODES = ("public", "private", "shared")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything needed to start one run."""

    run_id: str
    image: str
    sidecar_image: str
    app_name: str
    declaration_name: str
    machine: MachineType
    team: str
    env_name: str
    auth: str
    control_token: str
    keys_dir: str
    limit_max_requests: int = 0
    max_concurrency: int = 1
    max_queue: int = 100
    request_timeout: float = 60.0
    lease_seconds: float = 15.0
    drain_seconds: float = 30.0
    host_port: int | None = None
    app_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    extra_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    def container_name(self, role: str) -> str:
        return f"orch-{self.app_name}-{self.short_id}-{role}"

    def labels(self, role: str) -> dict[str, str]:
        return dict(self.extra_labels) | {
            f"{LABEL}.run": self.run_id,
            f"{LABEL}.role": role,
            f"{LABEL}.app": self.app_name,
            f"{LABEL}.team": self.team,
            f"{LABEL}.env": self.env_name,
            f"{LABEL}.machine-type": self.machine.name,
            f"{LABEL}.owner-host": socket.gethostname(),
            f"{LABEL}.owner-pid": str(os.getpid()),
        }


def sidecar_container(spec: RunSpec, *, network: str | None = None,
                      auto_remove: bool = True) -> dict[str, Any]:
    """Engine API body that creates the sidecar container.

    Without ``network``, as in a local run, the sidecar publishes its port on
    127.0.0.1. With one, it joins that network and publishes nothing, because
    the runner reaches it by container name.
    """
    environment = {
        "ORCH_SIDECAR_PORT": str(SIDECAR_PORT),
        "ORCH_UPSTREAM": f"http://127.0.0.1:{APP_PORT}",
        "ORCH_LIMIT_MAX_REQUESTS": str(spec.limit_max_requests),
        "ORCH_MAX_CONCURRENCY": str(spec.max_concurrency),
        "ORCH_MAX_QUEUE": str(spec.max_queue),
        "ORCH_REQUEST_TIMEOUT": str(spec.request_timeout),
        "ORCH_AUTH_MODE": spec.auth,
        "ORCH_TEAM": spec.team,
        "ORCH_KEYS_FILE": "/run/orchestrator/keys.json",
        "ORCH_CONTROL_TOKEN": spec.control_token,
        "ORCH_LEASE_SECONDS": str(spec.lease_seconds),
        "ORCH_DRAIN_SECONDS": str(spec.drain_seconds),
    }
    port = f"{SIDECAR_PORT}/tcp"
    host_config: dict[str, Any] = {
        "AutoRemove": auto_remove,
        "Binds": [f"{spec.keys_dir}:/run/orchestrator:ro"],
        "Memory": 128 * 2**20,
        "Init": True,
    }
    config: dict[str, Any] = {
        "Image": spec.sidecar_image,
        "Env": _env_list(environment),
        "Labels": spec.labels("sidecar"),
        "ExposedPorts": {port: {}},
        "HostConfig": host_config,
    }
    if network:
        host_config["NetworkMode"] = network
        config["NetworkingConfig"] = {
            "EndpointsConfig": {network: {"Aliases": [spec.container_name("sidecar")]}}
        }
    else:
        host_port = str(spec.host_port) if spec.host_port else ""
        host_config["PortBindings"] = {port: [{"HostIp": "127.0.0.1", "HostPort": host_port}]}
    return config


def app_container(spec: RunSpec, sidecar_id: str, *, mode: str = "serve",
                  auto_remove: bool = True) -> dict[str, Any]:
    """Engine API body that creates the app container, sized by its machine type."""
    environment = dict(spec.app_env)
    environment.update({
        "ORCH_MODE": mode,
        "ORCH_APP_HOST": "127.0.0.1",
        "ORCH_APP_PORT": str(APP_PORT),
        "ORCH_CONTROL_TOKEN": spec.control_token,
        "ORCH_DRAIN_SECONDS": str(spec.drain_seconds),
        "ORCH_APP_ID": spec.app_name,
        "ORCH_TEAM": spec.team,
        "ORCH_ENV": spec.env_name,
    })
    host_config: dict[str, Any] = {"AutoRemove": auto_remove, **resources(spec.machine)}
    if sidecar_id:
        host_config["NetworkMode"] = f"container:{sidecar_id}"
    return {
        "Image": spec.image,
        "Env": _env_list(environment),
        "Labels": spec.labels("app"),
        "StopSignal": "SIGTERM",
        "HostConfig": host_config,
    }


def resources(machine: MachineType) -> dict[str, Any]:
    """Host config limits for a machine type; GPU types ask for that many GPUs."""
    limits: dict[str, Any] = {
        "NanoCpus": int(machine.cpus * 1e9),
        "Memory": machine.memory_bytes,
    }
    if machine.is_gpu:
        limits["DeviceRequests"] = [
            {"Driver": "", "Count": machine.gpus, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
        ]
    return limits


def _env_list(environment: Mapping[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in environment.items()]
