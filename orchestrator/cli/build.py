"""``orch build`` and ``orch lock``."""

from __future__ import annotations

import click

from .. import lock, refs
from ..build.image import BuildOptions, ImageBuilder
from ..config import registry_setting
from ..engine import Engine
from ..errors import UsageError
from ..registry import push as push_image
from ..machines import load_catalogue, resolve


def reference_argument(func):
    return click.argument("reference", metavar="REF")(func)


def machine_types_for(declaration: refs.Declaration, override: str | None):
    names = (override,) if override else declaration.options.machine_type
    return resolve(names, load_catalogue())


@click.command("build")
@reference_argument
@click.option("--no-cache", is_flag=True, help="Rebuild every layer without the layer cache and pull the base image again.")
@click.option("--machine-type", help="Build for this machine type instead of the declared one (GPU types use the CUDA template).")
@click.option("--upgrade", is_flag=True, help="Resolve the requirements again to the newest allowed versions.")
@click.option("--locked", is_flag=True, help="Fail if the lock file is missing or out of date instead of resolving.")
@click.option("--push", is_flag=True,
              help="Push the environment and app images to the registry (ORCH_REGISTRY or [tool.orchestrator] registry), "
                   "so that other machines find them there instead of building.")
def build_command(reference: str, no_cache: bool, machine_type: str | None, upgrade: bool, locked: bool,
                  push: bool) -> None:
    """Build (or find) the image of REF, e.g. app.py::MyApp."""
    declaration = refs.resolve(reference)
    machine = machine_types_for(declaration, machine_type)[0]
    registry = registry_setting(declaration.project).value
    if push and not registry:
        raise UsageError("--push needs a registry: set ORCH_REGISTRY or registry in [tool.orchestrator]")
    engine = Engine.connect()
    options = BuildOptions(gpu=machine.is_gpu, no_cache=no_cache, upgrade_lock=upgrade, frozen_lock=locked)
    result = ImageBuilder(engine, registry=registry).ensure(declaration, options)
    if result.app_built:
        state = "built"
    elif result.pulled:
        state = "pulled from the registry"
    else:
        state = "cached"
    click.echo(f"{result.reference} {result.image_id} ({state})")
    if push:
        for tag in (result.env_reference, result.reference):
            if engine.image(tag) is None:
                # An app image pulled from the registry comes without its environment tag.
                continue
            pushed = push_image(engine, tag, registry)
            click.echo(f"pushed {pushed.pinned} ({pushed.uploaded_layers} layer(s) uploaded)")


@click.command("lock")
@reference_argument
@click.option("--upgrade", is_flag=True, help="Ignore the pinned versions and resolve to the newest allowed.")
def lock_command(reference: str, upgrade: bool) -> None:
    """Resolve REF's requirements into its lock file, beside the declaring file."""
    declaration = refs.resolve(reference)
    path = lock.lock_path(declaration.path, declaration.name)
    result = lock.ensure_lock(
        path, declaration.options.requirements, declaration.options.python_version, upgrade=upgrade,
    )
    pins = result.pins()
    click.echo(f"{path}: {len(pins)} packages pinned")
