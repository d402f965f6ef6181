"""Entry point of ``orch``: the command group and the one place errors are printed."""

from __future__ import annotations

import logging
import os
import sys

import click

from ..errors import OrchestratorError
from .build import build_command, lock_command
from .images import images_group
from .keys import keys_group
from .login import login_command
from .run import run_command
from .runner import runner_group


class Orch(click.Group):
    """Prints an ``OrchestratorError`` as one line and exits with its code.

    A traceback is shown only with ``--debug`` (or ``ORCH_DEBUG=1``).
    """

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


cli.add_command(build_command)
cli.add_command(lock_command)
cli.add_command(images_group)
cli.add_command(keys_group)
cli.add_command(run_command)
cli.add_command(login_command)
cli.add_command(runner_group)


def main() -> None:
    cli(prog_name="orch")
