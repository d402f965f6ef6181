"""``orch images ls`` and ``orch images prune`` against the real engine.

Other test runs and people build images on the same engine at the same time,
and ``prune`` chooses among every orchestrator image on it. So the prune
tests limit the rows of ``orch images`` to the images the test built, whose
app name and environment keys are unique. The selection, the removal and the
output still run for real. ``_superseded`` is also tested on tables of rows.
"""

from __future__ import annotations

import time

import docker
import pytest
from click.testing import CliRunner

from orchestrator import refs
from orchestrator.build.driver import _buildkit_command, docker_clients
from orchestrator.build.image import BuildOptions, ImageBuilder
from orchestrator.build.progress import PlainProgress
from orchestrator.cli import images as images_cli
from orchestrator.cli.main import cli

FUNCTION_SOURCE = """
    import orchestrator

    @orchestrator.function(env={{"ORCH_TEST_ID": "{suffix}"}})
    def {name}():
        return "{greeting}"
"""
HEADER = f"{'KIND':<12} {'TAG':<70} {'SIZE':>9}  CREATED"


class OwnImages:
    """The images one test built: its app name and its environment keys."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.env_keys: set[str] = set()

    def owns(self, row: dict) -> bool:
        return row["app"] == self.app or row["env_key"] in self.env_keys


@pytest.fixture
def own_images(engine, project, monkeypatch):
    """Show ``orch images`` only this test's images, and remove what is left of them afterwards."""
    own = OwnImages(app=f"fn-{project.suffix}")
    all_rows = images_cli._rows
    monkeypatch.setattr(images_cli, "_rows", lambda engine: [row for row in all_rows(engine) if own.owns(row)])
    yield own
    for row in all_rows(engine):
        if own.owns(row):
            try:
                engine.remove_image(row["id"], force=True)
            except docker.errors.APIError:
                pass


def write_function(project, greeting: str = "hello") -> str:
    name = f"fn_{project.suffix}"
    project.write("app.py", FUNCTION_SOURCE.format(suffix=project.suffix, name=name, greeting=greeting))
    return f"{project.root / 'app.py'}::{name}"


def build(engine, reference: str, own: OwnImages | None = None, **options):
    declaration = refs.resolve(reference)
    result = ImageBuilder(engine, PlainProgress()).ensure(declaration, BuildOptions(**options))
    if own is not None:
        own.env_keys.add(result.env_key)
    return result


def build_two_versions(engine, project, own: OwnImages):
    """Build the app, change its code and build it again. Return both results."""
    first = build(engine, write_function(project, greeting="hello"), own)
    # Image creation times have whole-second resolution: let the second build
    # be unambiguously newer.
    time.sleep(1.1)
    second = build(engine, write_function(project, greeting="bonjour"), own)
    assert second.env_key == first.env_key
    assert second.reference != first.reference
    return first, second


def buildkit_available() -> bool:
    return any(_buildkit_command(client) for client in docker_clients())


def env_tag(result) -> str:
    return f"orchestrator-env:{result.env_key[:32]}"


def orch(*args: str):
    return CliRunner().invoke(cli, list(args))


def listed(output: str) -> list[tuple[str, str]]:
    """Return the (kind, tag) of each row of ``orch images ls``."""
    return [tuple(line.split()[:2]) for line in output.splitlines()[1:]]


def row(tag: str, kind: str, app: str = "", env_key: str = "", created: int = 0) -> dict:
    return {"tag": tag, "id": f"sha256:{tag}", "kind": kind, "app": app, "env_key": env_key,
            "created": created, "size": 1}


def test_ls_lists_app_and_environment(engine, project, own_images):
    result = build(engine, write_function(project), own_images)

    output = orch("images", "ls")

    assert output.exit_code == 0, output.stderr
    assert output.stdout.splitlines()[0] == HEADER
    rows = listed(output.stdout)
    assert ("app", result.reference) in rows
    assert ("environment", env_tag(result)) in rows
    assert rows.index(("app", result.reference)) < rows.index(("environment", env_tag(result)))


def test_prune_removes_superseded_app(engine, project, own_images):
    first, second = build_two_versions(engine, project, own_images)

    output = orch("images", "prune")

    assert output.exit_code == 0, output.stderr
    assert output.stdout.splitlines()[-1] == "removed 1 image tag(s)"
    assert f"removed {first.reference}" in output.stdout.splitlines()
    assert output.stderr == ""
    assert engine.image(first.reference) is None
    assert engine.image(second.reference)["Id"] == second.image_id
    assert engine.image(env_tag(second)) is not None


def test_prune_dry_run_removes_nothing(engine, project, own_images):
    first, second = build_two_versions(engine, project, own_images)

    output = orch("images", "prune", "--dry-run")

    assert output.exit_code == 0, output.stderr
    assert output.stdout.splitlines() == [f"would remove {first.reference}"]
    assert engine.image(first.reference)["Id"] == first.image_id


def test_prune_twice_removes_nothing_more(engine, project, own_images):
    build_two_versions(engine, project, own_images)
    assert orch("images", "prune").stdout.splitlines()[-1] == "removed 1 image tag(s)"

    output = orch("images", "prune")

    assert output.exit_code == 0
    assert output.stdout.splitlines()[-1] == "removed 0 image tag(s)"


def test_prune_keeps_image_in_use(engine, project, own_images):
    first, second = build_two_versions(engine, project, own_images)
    container = engine.client.containers.run(first.reference, ["sleep", "120"], detach=True, remove=True)
    try:
        output = orch("images", "prune")
    finally:
        container.remove(force=True)

    assert output.exit_code == 0
    assert output.stdout.splitlines()[-1] == "removed 0 image tag(s)"
    assert output.stderr.startswith(f"kept {first.reference}: conflict: unable to remove repository reference")
    assert engine.image(first.reference) is not None
    assert engine.image(second.reference) is not None


def test_prune_all_removes_every_image(engine, project, own_images):
    first, second = build_two_versions(engine, project, own_images)

    output = orch("images", "prune", "--all")

    assert output.exit_code == 0, output.stderr
    assert output.stdout.splitlines()[-1] == "removed 3 image tag(s)"
    assert engine.image(first.reference) is None
    assert engine.image(second.reference) is None
    assert engine.image(env_tag(second)) is None


def test_prune_removes_replaced_environment(engine, project, own_images, monkeypatch):
    # The classic builder records the environment image as the app image's
    # parent, and removing the old app image removes that untagged parent too.
    # BuildKit images have no parent, so only prune's selection can remove it.
    if not buildkit_available():
        pytest.skip("no docker CLI on PATH can run BuildKit builds")
    monkeypatch.setenv("ORCH_BUILDER", "buildkit")
    reference = write_function(project)
    first = build(engine, reference, own_images)
    replaced_env_id = engine.image(env_tag(first))["Id"]
    time.sleep(1.1)
    second = build(engine, reference, own_images, no_cache=True)
    assert engine.image(env_tag(second))["Id"] != replaced_env_id

    output = orch("images", "prune")

    assert output.exit_code == 0, output.stderr
    assert engine.image(second.reference) is not None
    assert engine.image(replaced_env_id) is None


@pytest.mark.parametrize(
    ("rows", "doomed"),
    [
        pytest.param(
            [row("app:2", "app", "a", "k1", 20), row("app:1", "app", "a", "k1", 10), row("env:k1", "environment", "", "k1", 5)],
            ["app:1"],
            id="older-app-of-same-env",
        ),
        pytest.param(
            [row("app:2", "app", "a", "k2", 20), row("env:k2", "environment", "", "k2", 15),
             row("app:1", "app", "a", "k1", 10), row("env:k1", "environment", "", "k1", 5)],
            ["app:1", "env:k1"],
            id="older-app-and-its-env",
        ),
        pytest.param(
            [row("b:1", "app", "b", "k1", 20), row("a:1", "app", "a", "k1", 10), row("env:k1", "environment", "", "k1", 5)],
            [],
            id="one-image-per-app",
        ),
        pytest.param(
            [row("env:k3", "environment", "", "k3", 30), row("a:1", "app", "a", "k1", 10), row("env:k1", "environment", "", "k1", 5)],
            ["env:k3"],
            id="env-without-app",
        ),
        pytest.param(
            [row("sidecar:2", "sidecar", created=20), row("sidecar:1", "sidecar", created=10)],
            [],
            id="sidecars-kept",
        ),
    ],
)
def test_superseded_selection(rows, doomed):
    assert [item["tag"] for item in images_cli._superseded(rows)] == doomed
