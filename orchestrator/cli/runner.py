"""``orch runner serve``: the runner service, as started by compose.yaml."""

from __future__ import annotations

import click


@click.group("runner")
def runner_group() -> None:
    """Run the self-hosted runner service."""


@runner_group.command("serve")
def serve_command() -> None:
    """Serve the runner API and gateway on the local Docker engine (settings from ORCH_RUNNER_* variables)."""
    from ..runner.backends.docker import DockerBackend
    from ..runner.config import RunnerConfig
    from ..runner.server import serve

    serve(RunnerConfig.from_env(), DockerBackend.from_env())
