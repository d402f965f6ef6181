"""``orch login``: where the runner and its registry are, and the key to use."""

from __future__ import annotations

import click

from ..runner.client import RunnerClient, RunnerSettings, save_settings


@click.command("login")
@click.option("--url", required=True, help="Runner URL, e.g. http://127.0.0.1:8400.")
@click.option("--key", required=True, help="A runner key 'k_…:…', or 'Bearer <admin token>'.")
@click.option("--registry", default="127.0.0.1:5000", show_default=True,
              help="Registry that the runner's engine pulls from (host:port).")
def login_command(url: str, key: str, registry: str) -> None:
    """Check that the runner accepts this key, then save the settings."""
    settings = RunnerSettings(url.rstrip("/"), key, registry)
    RunnerClient(settings).list_keys(team=None)
    path = save_settings(settings)
    click.echo(f"logged in to {settings.url}; settings saved in {path}")
