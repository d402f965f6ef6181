"""Call a plain function once in its image and return its exit code."""

from __future__ import annotations

import logging
import sys

from ..engine import ContainerEngine, Engine, GpuUnavailable
from ..errors import RunError
from .gpus import gpu_message
from .session import ContainerWatch
from .spec import RunSpec, app_container

logger = logging.getLogger(__name__)


def call_once(engine: Engine, spec: RunSpec) -> int:
    """Run the function's container to completion, streaming its output."""
    containers = ContainerEngine(engine)
    config = app_container(spec, sidecar_id="", mode="call")
    container_id = containers.create(spec.container_name("app"), config)
    watch = ContainerWatch(containers, container_id, lambda line: print(line, flush=True))
    try:
        watch.start_waiting()
        containers.start(container_id)
    except GpuUnavailable as error:
        containers.remove(container_id)
        raise RunError(gpu_message(spec.machine, error.message)) from error
    watch.start_logs()
    try:
        watch.exited.wait()
    except KeyboardInterrupt:
        print("stopping…", file=sys.stderr)
        containers.stop(container_id, timeout=10)
        watch.exited.wait(15)
        containers.remove(container_id)
        return 130
    watch.logs_done.wait(5)
    return watch.exit_code if watch.exit_code is not None else 1
