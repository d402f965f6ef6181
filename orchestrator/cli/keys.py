"""``orch keys``: API keys of the local key store, or of the runner with ``--runner``."""

from __future__ import annotations

import datetime

import click

from .. import keystore
from ..runner.client import RunnerClient, load_settings

runner_option = click.option(
    "--runner", "on_runner", is_flag=True,
    help="Manage the runner's keys (see 'orch login') instead of the local key store.",
)


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys for --auth private and shared."""


@keys_group.command("create")
@click.option("--team", required=True, help="Team the key belongs to.")
@click.option("--name", help="A note to recognize the key by.")
@runner_option
def create_key(team: str, name: str | None, on_runner: bool) -> None:
    """Create a key and print it once; only its hash is stored."""
    if on_runner:
        created = RunnerClient(load_settings()).create_key(team, name)
        key, key_id = created["key"], created["id"]
    else:
        record = keystore.add(team, name)
        key, key_id = record.key, record.record.id
    click.echo(key)
    click.echo(f"Key {key_id} of team {team} created; it is shown only now.", err=True)


@keys_group.command("ls")
@click.option("--team", help="Only keys of this team (runner keys).")
@runner_option
def list_keys(team: str | None, on_runner: bool) -> None:
    """List keys (ids and teams, never secrets)."""
    if on_runner:
        rows = [(item["id"], item["team"], item.get("created_at"), item.get("name"))
                for item in RunnerClient(load_settings()).list_keys(team)]
    else:
        rows = [(record.id, record.team, record.created_at, record.name)
                for record in keystore.load() if team is None or record.team == team]
    click.echo(f"{'ID':<16} {'TEAM':<20} {'CREATED':<17} NAME")
    for key_id, key_team, created_at, name in rows:
        created = datetime.datetime.fromtimestamp(created_at or 0).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{key_id:<16} {key_team:<20} {created:<17} {name or ''}")


@keys_group.command("revoke")
@click.argument("key_id")
@runner_option
def revoke_key(key_id: str, on_runner: bool) -> None:
    """Revoke the key KEY_ID."""
    if on_runner:
        RunnerClient(load_settings()).revoke_key(key_id)
    elif not keystore.revoke(key_id):
        raise click.ClickException(f"no key {key_id!r} in {keystore.store_path()}; see 'orch keys ls'")
    click.echo(f"revoked {key_id}")
