"""Entry point of ``orch``: the command group and the one place errors are printed."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from ..errors import OrchestratorError

# Command name -> (module, attribute). Modules are imported only when their
# command runs, because the Docker SDK alone takes about 0.15 s to import.
COMMANDS = {
    "build": ("orchestrator.cli.build", "build_command"),
    "images": ("orchestrator.cli.images", "images_group"),
    "keys": ("orchestrator.cli.keys", "keys_group"),
    "lock": ("orchestrator.cli.build", "lock_command"),
    "login": ("orchestrator.cli.login", "login_command"),
    "run": ("orchestrator.cli.run", "run_command"),
    "runner": ("orchestrator.cli.runner", "runner_group"),
    "runs": ("orchestrator.cli.runs", "runs_group"),
}


class Orch(click.Group):
    """Loads commands on demand; prints an ``OrchestratorError`` as one line.

    A traceback is shown only with ``--debug`` (or ``ORCH_DEBUG=1``).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OrchestratorError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {error.message}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=Orch, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="ORCH_DEBUG", help="Show debug logs and full tracebacks.")
@click.version_option(package_name="orchestrator")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Build reproducible images for Python apps and serve them locally or on a runner."""
    ctx.obj = {"debug": debug}
    level = logging.DEBUG if debug else getattr(logging, os.environ.get("ORCH_LOG_LEVEL", "WARNING").upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")



def main() -> None:
    cli(prog_name="orch")
