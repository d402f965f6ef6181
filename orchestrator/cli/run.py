"""``orch run``: build or reuse the image, then serve it locally or on the runner."""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from .. import keystore, refs
from ..build.image import BuildOptions, ImageBuilder
from ..build.sidecar_image import ensure_sidecar_image
from ..config import registry_setting
from ..engine import Engine
from ..errors import RunError, UsageError
from ..local.banner import banner
from ..local.request_example import example_body
from ..local.call import call_once
from ..local.gpus import check_gpus
from ..local.run_keys import RunKeys
from ..local.session import LocalRun
from ..local.spec import AUTH_MODES, RunSpec
from ..machines import MachineType, load_catalogue, resolve

if TYPE_CHECKING:
    from ..runner.client import RunnerSettings


@click.command("run")
@click.argument("reference", metavar="REF")
@click.option("--local", is_flag=True, help="Run on the local Docker engine instead of the runner.")
@click.option("--no-cache", is_flag=True, help="Rebuild the image without the layer cache and pull the base again.")
@click.option("--machine-type", help="Machine type to run on, overriding the declaration (e.g. M, GPU-H100).")
@click.option("--limit-max-requests", type=int, default=0, show_default=True,
              help="Serve this many requests, then drain and stop (0: no limit).")
@click.option("--auth", "auth_mode", type=click.Choice(AUTH_MODES), default=None,
              help="public: no key; private: a key of the app's team; shared: any valid key. [default: public]")
@click.option("--app-name", help="Name of the app (default: the declaration's name, kebab-case).")
@click.option("--team", help="Team that owns the app (default: ORCH_TEAM, then [tool.orchestrator] team, then 'default').")
@click.option("--env", "env_name", default="main", show_default=True, help="Environment name, recorded with the run.")
@click.option("--port", type=click.IntRange(1, 65535), help="Host port on 127.0.0.1 for a local run (default: a free port).")
def run_command(reference, local, no_cache, machine_type, limit_max_requests, auth_mode,
                app_name, team, env_name, port) -> None:
    """Build (or reuse) the image of REF and serve it behind the sidecar."""
    if limit_max_requests < 0:
        raise UsageError(f"invalid --limit-max-requests {limit_max_requests}: use 0 (no limit) or a positive count")
    settings = None if local else _runner_settings()

    declaration = refs.resolve(reference)
    machine = _machine(declaration, machine_type)
    team = _team(team, declaration)
    engine = Engine.connect()
    # The sidecar image is also the GPU check's probe, so that an engine
    # without GPUs fails before a CUDA image is pulled and built.
    sidecar_image = ensure_sidecar_image(engine) if local and (declaration.serves or machine.is_gpu) else ""
    info = engine.info() if local else {}
    if local:
        check_gpus(engine, info, machine, sidecar_image)
    registry = settings.registry if settings else registry_setting(declaration.project).value
    image = ImageBuilder(engine, registry=registry).ensure(
        declaration, BuildOptions(gpu=machine.is_gpu, no_cache=no_cache)
    )

    if local:
        machine = _fit_to_engine(machine, info)
    # Last before the spec, so that no failure above leaves its folder behind.
    run_keys = RunKeys(team) if local and declaration.serves else None
    spec = RunSpec(
        run_id=uuid.uuid4().hex,
        image=image.reference,
        sidecar_image=sidecar_image if declaration.serves else "",
        app_name=app_name or declaration.app_name,
        declaration_name=declaration.name,
        machine=machine,
        team=team,
        env_name=env_name,
        auth=auth_mode or "public",
        control_token=secrets.token_urlsafe(24),
        keys_dir=str(run_keys.folder) if run_keys else "",
        limit_max_requests=limit_max_requests,
        max_concurrency=declaration.options.max_concurrency,
        max_queue=declaration.options.max_queue,
        request_timeout=declaration.options.request_timeout,
        lease_seconds=float(os.environ.get("ORCH_LEASE_SECONDS", "15")),
        host_port=port,
        app_env=dict(declaration.options.env),
    )
    if settings is not None:
        if not declaration.serves:
            raise UsageError(f"{declaration.name} is a function without serve=True; run it with --local")
        machine_names = [machine_type] if machine_type else list(declaration.options.machine_type)
        sys.exit(_serve_remote(engine, spec, declaration, settings, machine_names))
    if not declaration.serves:
        sys.exit(call_once(engine, spec))
    if spec.auth != "public":
        _warn_without_keys(spec.auth, team)
    sys.exit(_serve(engine, spec, declaration, run_keys, startup_timeout=declaration.options.startup_timeout))


def _runner_settings() -> RunnerSettings:
    from ..runner.client import load_settings

    return load_settings()


def _serve_remote(engine: Engine, spec: RunSpec, declaration: refs.Declaration,
                  settings: RunnerSettings, machine_names: list[str]) -> int:
    # Imported here because a local run never needs them.
    from ..registry import push
    from ..remote import RemoteRun
    from ..runner.client import RunnerClient

    pushed = push(engine, spec.image, settings.registry)
    click.echo(f"pushed {pushed.pinned} ({pushed.uploaded_layers} layer(s) uploaded, "
               f"{pushed.existing_layers} already in the registry)", err=True)
    endpoints = sorted(declaration.target.endpoints()) if declaration.is_app else ["/"]
    request = {
        "app_name": spec.app_name, "team": spec.team, "env": spec.env_name, "image": pushed.pinned,
        "machine_type": machine_names, "auth": spec.auth, "limit_max_requests": spec.limit_max_requests,
        "max_concurrency": spec.max_concurrency, "max_queue": spec.max_queue,
        "request_timeout": spec.request_timeout, "startup_timeout": declaration.options.startup_timeout,
        "endpoints": endpoints, "app_env": dict(spec.app_env), "lease_seconds": spec.lease_seconds,
    }
    run = RemoteRun(RunnerClient(settings), request, print_line=click.echo,
                    print_status=lambda line: click.echo(line, err=True))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    try:
        run.start()
        ready = run.wait_ready(declaration.options.startup_timeout)
        remote_spec = dataclasses.replace(spec, run_id=ready["id"], machine=load_catalogue()[ready["machine_type"]])
        where = f"on the runner (node {ready.get('node') or '?'})"
        click.echo(banner(remote_spec, ready["url"], endpoints, where=where,
                          example=_example(declaration, endpoints)), err=True)
        run.follow_logs()
        final = run.wait_until_stopped()
    except KeyboardInterrupt:
        click.echo("Stopping: deleting the run (it drains and runs teardown)…", err=True)
        final = run.stop()
    except BaseException:
        run.stop()
        raise
    if final.get("state") == "failed":
        raise RunError(f"run {final['id'][:8]} failed: {final.get('message', '')}")
    click.echo(
        f"{spec.app_name} stopped ({final.get('stop_reason') or 'stopped'}): served {final.get('served', 0)} "
        f"request(s), rejected {final.get('rejected', 0)}, ran {time.monotonic() - started:.1f}s",
        err=True,
    )
    return 0


def _serve(engine: Engine, spec: RunSpec, declaration: refs.Declaration, run_keys: RunKeys | None, *,
           startup_timeout: float) -> int:
    run = LocalRun(engine, spec, run_keys, print_app_line=lambda line: click.echo(line))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    try:
        run.start()
        run.wait_ready(startup_timeout)
        endpoints = sorted(declaration.target.endpoints()) if declaration.is_app else ["/"]
        click.echo(banner(spec, run.url, endpoints, example=_example(declaration, endpoints)), err=True)
        summary = run.wait_until_stopped()
    except KeyboardInterrupt:
        click.echo("Stopping: draining requests and running teardown (Ctrl-C again to force)…", err=True)
        try:
            summary = run.stop("interrupted")
        except KeyboardInterrupt:
            run.cleanup()
            return 130
    except BaseException:
        run.cleanup()
        raise
    elapsed = time.monotonic() - started
    click.echo(
        f"{spec.app_name} stopped ({summary.reason or 'stopped'}): served {summary.served} "
        f"request(s), rejected {summary.rejected}, ran {elapsed:.1f}s",
        err=True,
    )
    return 0


def _example(declaration: refs.Declaration, endpoints: list[str]) -> str:
    """Return a request body for the banner's curl example of the first endpoint."""
    if not declaration.is_app:
        return example_body(declaration.target.func)
    method_name = declaration.target.endpoints()[endpoints[0]] if endpoints else None
    return example_body(getattr(declaration.target, method_name)) if method_name else "{}"


def _machine(declaration: refs.Declaration, override: str | None) -> MachineType:
    # NOTE: a local run takes the first machine type of a fallback list. The
    # later entries matter to the runner, which picks one that a node offers.
    names = (override,) if override else declaration.options.machine_type
    return resolve(names, load_catalogue())[0]


def _team(flag: str | None, declaration: refs.Declaration) -> str:
    if flag:
        return flag
    if os.environ.get("ORCH_TEAM"):
        return os.environ["ORCH_TEAM"]
    configured = declaration.project.get("team")
    return str(configured.value) if configured else "default"


def _fit_to_engine(machine: MachineType, info: Mapping[str, Any]) -> MachineType:
    """Cap the CPU limit at what the engine has (``docker info``); Docker rejects a larger one."""
    available = info.get("NCPU") or machine.cpus
    if machine.cpus <= available:
        return machine
    click.echo(
        f"note: machine type {machine.name} asks for {machine.cpus:g} CPUs; this engine has "
        f"{available}, so the app gets {available}",
        err=True,
    )
    return dataclasses.replace(machine, cpus=float(available))


def _warn_without_keys(auth: str, team: str) -> None:
    records = keystore.records_for_run(team)
    usable = [record for record in records if auth == "shared" or record.team == team]
    if not usable:
        click.echo(
            f"note: --auth {auth} but the local key store has no key for team {team}, so every "
            f"request will get 401; create one with 'orch keys create --team {team}' or set ORCH_KEY",
            err=True,
        )
