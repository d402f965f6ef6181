"""``orch keys``: API keys of the local key store."""

from __future__ import annotations

import datetime

import click

from .. import keystore


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys for --auth private and shared."""


@keys_group.command("create")
@click.option("--team", required=True, help="Team the key belongs to.")
@click.option("--name", help="A note to recognize the key by.")
def create_key(team: str, name: str | None) -> None:
    """Create a key and print it once; only its hash is stored."""
    created = keystore.add(team, name)
    click.echo(created.key)
    click.echo(f"Key {created.record.id} of team {team} created; it is shown only now.", err=True)


@keys_group.command("ls")
def list_keys() -> None:
    """List stored keys (ids and teams, never secrets)."""
    click.echo(f"{'ID':<16} {'TEAM':<20} {'CREATED':<17} NAME")
    for record in keystore.load():
        created = datetime.datetime.fromtimestamp(record.created_at or 0).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{record.id:<16} {record.team:<20} {created:<17} {record.name or ''}")


@keys_group.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke the key KEY_ID."""
    if not keystore.revoke(key_id):
        raise click.ClickException(f"no key {key_id!r} in {keystore.store_path()}; see 'orch keys ls'")
    click.echo(f"revoked {key_id}")
