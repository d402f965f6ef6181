"""The registry as a second cache level: images pushed by one machine, pulled by another."""

from __future__ import annotations

import time
import uuid

import docker.errors
import pytest
import requests
from click.testing import CliRunner

from orchestrator import refs
from orchestrator.build.image import ImageBuilder
from orchestrator.build.progress import PlainProgress
from orchestrator.cli.main import cli

from .network import free_port

REGISTRY_IMAGE = "orchestrator-local/registry:2"



@pytest.fixture(scope="module")
def registry(engine):
    port = free_port()
    container = engine.client.containers.run(
        REGISTRY_IMAGE, detach=True, name=f"orch-test-registry-{uuid.uuid4().hex[:6]}",
        ports={"5000/tcp": ("127.0.0.1", port)}, labels={"org.orchestrator.test": "registry"},
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        yield address
    finally:
        container.remove(force=True, v=True)


def remove_tags(engine, *tags):
    for tag in tags:
        try:
            engine.remove_image(tag, force=True)
        except docker.errors.NotFound:
            pass


def test_pushed_image_is_pulled_instead_of_built(engine, project, registry, monkeypatch):
    name = f"cached_{project.suffix}"
    path = project.write("app.py", f"""
import orchestrator

@orchestrator.function(requirements=["six==1.16.0"], env={{"MARK": "{project.suffix}"}})
def {name}():
    return 1
""")
    reference = f"{path}::{name}"
    monkeypatch.setenv("ORCH_REGISTRY", registry)

    pushed = CliRunner().invoke(cli, ["build", reference, "--push"])
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.count("pushed ") == 2

    first = ImageBuilder(engine, PlainProgress(), registry=registry).ensure(refs.resolve(reference))
    remove_tags(engine, first.reference, first.env_reference,
                f"{registry}/{first.reference}", f"{registry}/{first.env_reference}")
    assert engine.image(first.reference) is None

    again = ImageBuilder(engine, PlainProgress(), registry=registry).ensure(refs.resolve(reference))

    assert again.pulled
    assert again.build_calls == 0
    assert again.image_id == first.image_id
    assert engine.image(first.reference)["Id"] == first.image_id


def test_environment_pulled_code_layer_built(engine, project, registry):
    name = f"envcache_{project.suffix}"
    source = """
import orchestrator

@orchestrator.function(requirements=["six==1.16.0"], env={{"MARK": "{mark}"}})
def {name}():
    return "{greeting}"
"""
    path = project.write("app.py", source.format(mark=project.suffix, name=name, greeting="hello"))
    builder = ImageBuilder(engine, PlainProgress(), registry=registry)
    first = builder.ensure(refs.resolve(f"{path}::{name}"))
    CliRunner().invoke(cli, ["build", f"{path}::{name}", "--push"], env={"ORCH_REGISTRY": registry})
    remove_tags(engine, first.reference, first.env_reference,
                f"{registry}/{first.reference}", f"{registry}/{first.env_reference}")

    project.write("app.py", source.format(mark=project.suffix, name=name, greeting="bonjour"))
    changed = builder.ensure(refs.resolve(f"{path}::{name}"))

    assert changed.env_key == first.env_key
    assert not changed.env_built
    assert changed.app_built


def test_push_without_registry_is_usage_error(project, monkeypatch):
    monkeypatch.delenv("ORCH_REGISTRY", raising=False)
    path = project.write("app.py", "import orchestrator\n\n@orchestrator.function\ndef f():\n    pass\n")

    result = CliRunner().invoke(cli, ["build", f"{path}::f", "--push"])

    assert result.exit_code == 2
    assert result.stderr == "Error: --push needs a registry: set ORCH_REGISTRY or registry in [tool.orchestrator]\n"


def test_unreachable_registry_falls_back_to_build(engine, project, caplog):
    name = f"nocache_{project.suffix}"
    path = project.write("app.py", f"import orchestrator\n\n@orchestrator.function(env={{'M': '{project.suffix}'}})\ndef {name}():\n    pass\n")
    dead = f"127.0.0.1:{free_port()}"

    result = ImageBuilder(engine, PlainProgress(), registry=dead).ensure(refs.resolve(f"{path}::{name}"))

    assert result.app_built
    assert any("registry lookup of" in record.getMessage() for record in caplog.records)
