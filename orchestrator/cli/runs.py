"""``orch runs``: list and stop runs on the runner."""

from __future__ import annotations

import datetime

import click

from ..runner.client import RunnerClient, load_settings


@click.group("runs")
def runs_group() -> None:
    """List or stop runs on the runner (see 'orch login')."""


@runs_group.command("ls")
@click.option("--team", help="Only runs of this team.")
@click.option("--all", "include_finished", is_flag=True, help="Include completed and failed runs.")
def list_runs(team: str | None, include_finished: bool) -> None:
    """List runs, newest last."""
    runs = RunnerClient(load_settings()).list_runs(team)
    click.echo(f"{'ID':<10} {'TEAM/APP':<32} {'STATE':<10} {'MACHINE':<9} {'SERVED':>6}  CREATED")
    for run in runs:
        if not include_finished and run["state"] in ("completed", "failed"):
            continue
        created = datetime.datetime.fromtimestamp(run.get("created_at") or 0).strftime("%Y-%m-%d %H:%M")
        name = f"{run['team']}/{run['app_name']}"
        click.echo(f"{run['id'][:8]:<10} {name:<32} {run['state']:<10} {run['machine_type']:<9} "
                   f"{run.get('served', 0):>6}  {created}")


@runs_group.command("stop")
@click.argument("run_id")
def stop_run(run_id: str) -> None:
    """Stop the run RUN_ID (a prefix shown by 'orch runs ls' is enough); it drains first."""
    client = RunnerClient(load_settings())
    matches = [run for run in client.list_runs(None) if run["id"].startswith(run_id)]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise click.ClickException(f"{found} with an id starting with {run_id!r}; see 'orch runs ls --all'")
    client.delete_run(matches[0]["id"])
    click.echo(f"stopping run {matches[0]['id']} ({matches[0]['team']}/{matches[0]['app_name']})")
