"""``orch images ls`` and ``orch images prune``: the images this tool made."""

from __future__ import annotations

import datetime

import click
import docker.errors

from ..build.image import LABEL
from ..engine import Engine


@click.group("images")
def images_group() -> None:
    """List or remove the images orchestrator built."""


def _rows(engine: Engine) -> list[dict]:
    rows = []
    for image in engine.images(f"{LABEL}.kind"):
        labels = image.get("Labels") or {}
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            rows.append({
                "tag": tag,
                "id": image["Id"],
                "kind": labels.get(f"{LABEL}.kind", "?"),
                "app": labels.get(f"{LABEL}.app", ""),
                "env_key": labels.get(f"{LABEL}.env-key", ""),
                "created": image["Created"],
                "size": image["Size"],
            })
    return sorted(rows, key=lambda row: row["created"], reverse=True)


@images_group.command("ls")
def list_images() -> None:
    """List images built by orchestrator, newest first."""
    rows = _rows(Engine.connect())
    click.echo(f"{'KIND':<12} {'TAG':<70} {'SIZE':>9}  CREATED")
    for row in rows:
        created = datetime.datetime.fromtimestamp(row["created"]).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{row['kind']:<12} {row['tag']:<70} {row['size'] / 2**20:>7.0f}MB  {created}")


@images_group.command("prune")
@click.option("--all", "remove_all", is_flag=True, help="Remove every image orchestrator built, not only superseded ones.")
@click.option("--app", "app_name", help="Only app images of this app name (environment images are kept).")
@click.option("--dry-run", is_flag=True, help="List what would be removed, and remove nothing.")
def prune_images(remove_all: bool, app_name: str | None, dry_run: bool) -> None:
    """Remove superseded app images and the environment images no app image uses.

    An app image is superseded when a newer one exists for the same app name.
    Untagged environment images, left behind when --no-cache rebuilt their
    tag, are always removed. Images in use by a container are kept.
    """
    engine = Engine.connect()
    rows = _rows(engine)
    if app_name:
        rows = [row for row in rows if row["kind"] == "app" and row["app"] == app_name]
    doomed = rows if remove_all else _superseded(rows)
    removed = 0
    for row in doomed:
        target = row["tag"] if row["tag"] != "<none>:<none>" else row["id"]
        if dry_run:
            click.echo(f"would remove {target}")
            continue
        try:
            engine.remove_image(target)
        except docker.errors.APIError as error:
            click.echo(f"kept {row['tag']}: {error.explanation or error}", err=True)
            continue
        removed += 1
        click.echo(f"removed {target}")
    if not dry_run:
        click.echo(f"removed {removed} image tag(s)")


def _superseded(rows: list[dict]) -> list[dict]:
    newest_by_app: dict[str, dict] = {}
    for row in rows:
        if row["kind"] == "app" and row["app"] not in newest_by_app:
            newest_by_app[row["app"]] = row
    kept_apps = {id(row) for row in newest_by_app.values()}
    used_env_keys = {row["env_key"] for row in newest_by_app.values()}
    doomed = [row for row in rows if row["kind"] == "app" and id(row) not in kept_apps]
    doomed += [row for row in rows if row["kind"] == "environment"
               and (row["env_key"] not in used_env_keys or row["tag"] == "<none>:<none>")]
    return doomed
