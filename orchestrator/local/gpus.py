"""The check that the engine can give a container GPUs, made before a GPU image is built."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..engine import ContainerEngine, Engine, GpuUnavailable
from ..errors import RunError
from ..machines import MachineType
from .spec import LABEL, resources

logger = logging.getLogger(__name__)


def gpu_message(machine: MachineType, explanation: str) -> str:
    return (
        f"machine type {machine.name} needs {machine.gpus} GPU(s), but this Docker engine "
        f"cannot provide GPUs ({explanation}). Install the NVIDIA Container Toolkit and "
        f"restart Docker, or run on a CPU machine type, e.g. --machine-type M."
    )


def check_gpus(engine: Engine, info: Mapping[str, Any], machine: MachineType, probe_image: str) -> None:
    """Raise RunError when the engine cannot start a container with ``machine``'s GPUs.

    An engine whose ``info`` lists the NVIDIA runtime is trusted. Any other engine
    starts a short container from ``probe_image`` that requests the GPUs, so
    that an engine without GPU support fails here, before a CUDA base image of
    several GB is pulled and built on.
    """
    if not machine.is_gpu or "nvidia" in (info.get("Runtimes") or {}):
        return
    containers = ContainerEngine(engine)
    config = {
        "Image": probe_image,
        "Cmd": ["python", "-c", "pass"],
        "Labels": {f"{LABEL}.role": "gpu-probe"},
        "HostConfig": {"AutoRemove": True, "DeviceRequests": resources(machine)["DeviceRequests"]},
    }
    container_id = containers.create("", config)
    try:
        containers.start(container_id)
    except GpuUnavailable as error:
        raise RunError(gpu_message(machine, error.message)) from error
    finally:
        containers.remove(container_id)
    logger.info("the engine started a container with %d GPU(s)", machine.gpus)
