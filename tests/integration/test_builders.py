"""Build drivers against the real engine: the classic builder, BuildKit and the CUDA template.

Each declaration sets an environment variable unique to the test, so its
environment key is new and the environment image is really built. The key
does not depend on the driver, so without that variable the image could come
from another test's cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import refs
from orchestrator.build.driver import _buildkit_command, docker_clients
from orchestrator.build.image import BuildOptions, ImageBuilder
from orchestrator.build.progress import PlainProgress
from orchestrator.cli.main import cli

FUNCTION_SOURCE = """
    import orchestrator

    @orchestrator.function(requirements=["six==1.17.0"], env={{"ORCH_TEST_ID": "{suffix}"}})
    def {name}():
        return "hello"
"""
CACHE_MOUNT = "--mount=type=cache"


def write_function(project) -> str:
    name = f"fn_{project.suffix}"
    path = project.write("app.py", FUNCTION_SOURCE.format(suffix=project.suffix, name=name))
    return f"{path}::{name}"


def build(engine, reference: str, **options):
    declaration = refs.resolve(reference)
    return ImageBuilder(engine, PlainProgress()).ensure(declaration, BuildOptions(**options))


def orch(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def environment_log(home) -> str:
    [log] = (home / "logs").glob("build-orchestrator-env-*.log")
    return log.read_text()


def run_python(engine, image: str, code: str) -> str:
    output = engine.client.containers.run(image, ["python", "-c", code], remove=True)
    return output.decode().strip()


def environment_image(engine, app_image: str) -> dict:
    env_key = engine.image(app_image)["Config"]["Labels"]["org.orchestrator.env-key"]
    return engine.image(f"orchestrator-env:{env_key[:32]}")


@pytest.fixture(scope="module")
def buildkit_client() -> list[str]:
    command = next((found for found in map(_buildkit_command, docker_clients()) if found), None)
    if command is None:
        pytest.skip("no docker CLI on PATH can run BuildKit builds (needs buildx, or a client older than 23.0)")
    return command


def test_classic_builds_without_cache_mounts(engine, project, isolated_home, monkeypatch):
    monkeypatch.setenv("ORCH_BUILDER", "classic")
    reference = write_function(project)

    result = build(engine, reference)

    assert result.env_built
    assert result.app_built
    log = environment_log(isolated_home)
    assert "Step 1/" in log
    assert CACHE_MOUNT not in log
    assert "UV_NO_CACHE=1" in environment_image(engine, result.reference)["Config"]["Env"]
    assert run_python(engine, result.reference, "import six; print(six.__version__)") == "1.17.0"
    assert run_python(engine, result.reference, "import os; print(os.path.exists('/root/.cache/uv'))") == "False"


def test_buildkit_builds_with_cache_mounts(engine, project, isolated_home, monkeypatch, buildkit_client):
    monkeypatch.setenv("ORCH_BUILDER", "buildkit")
    reference = write_function(project)

    result = build(engine, reference)

    assert result.env_built
    assert result.app_built
    assert engine.image(result.reference)["Id"] == result.image_id
    assert CACHE_MOUNT in environment_log(isolated_home)
    assert "UV_NO_CACHE=1" not in environment_image(engine, result.reference)["Config"]["Env"]
    assert run_python(engine, result.reference, "import six; print(six.__version__)") == "1.17.0"


def test_unknown_builder_is_usage_error(project):
    reference = write_function(project)

    result = orch("build", reference, env={"ORCH_BUILDER": "bogus"})

    # The lock is resolved, and its creation reported, before the build starts.
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: invalid ORCH_BUILDER 'bogus'; use auto, classic or buildkit"


def test_buildkit_without_capable_cli(project):
    reference = write_function(project)
    # The virtual environment's scripts folder has the Python that uv resolves
    # for, and no docker CLI.
    path_without_docker = str(Path(sys.executable).parent)

    result = orch("build", reference, env={"ORCH_BUILDER": "buildkit", "PATH": path_without_docker})

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: ORCH_BUILDER=buildkit but no docker CLI on PATH can run BuildKit builds; "
        "install docker-buildx or unset ORCH_BUILDER"
    )


def test_gpu_machine_type_uses_cuda_template(engine, project):
    reference = write_function(project)

    result = orch("build", reference, "--machine-type", "GPU-H100")

    assert result.exit_code == 0, result.stderr
    app_image, image_id, state = result.stdout.split()
    assert state == "(built)"
    assert engine.image(app_image)["Id"] == image_id
    environment = environment_image(engine, app_image)
    spec = json.loads(environment["Config"]["Labels"]["org.orchestrator.spec"])
    assert spec["kind"] == "cuda"
    assert '"kind":"cuda"' in environment["Config"]["Labels"]["org.orchestrator.spec"]
    assert "NVIDIA_VISIBLE_DEVICES=all" in environment["Config"]["Env"]
    assert run_python(engine, app_image, "import six, sys; print(sys.prefix, six.__version__)") == "/opt/venv 1.17.0"
