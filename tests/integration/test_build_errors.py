"""Bad inputs to ``orch build``: each gets one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.main import cli


def orch(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def declare(project, body: str, file: str = "app.py") -> Path:
    return project.write(file, "import orchestrator\n" + body)


def test_missing_file(project):
    path = project.root / "missing.py"
    result = orch("build", f"{path}::app")
    assert result.exit_code == 2
    assert result.stderr == f"Error: file not found: {path}; check the path in the reference\n"


def test_missing_name_lists_declared(project):
    path = declare(project, "@orchestrator.function\ndef resize():\n    pass\n")
    result = orch("build", f"{path}::resise")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path} has no app or function named 'resise'; did you mean 'resize'? Declared: resize\n"
    )


def test_wrong_kind_of_object(project):
    path = declare(project, "LIMIT = 3\n@orchestrator.function\ndef resize():\n    pass\n")
    result = orch("build", f"{path}::LIMIT")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path}::LIMIT is an int, not an orchestrator.App subclass or an "
        f"@orchestrator.function; reference one of: resize\n"
    )


def test_syntax_error_names_file_and_line(project):
    path = declare(project, "@orchestrator.function\ndef resize(:\n    pass\n")
    result = orch("build", f"{path}::resize")
    assert result.exit_code == 2
    assert result.stderr == f"Error: syntax error in {path}, line 3: invalid syntax\n"


def test_top_level_import_of_requirement(project):
    path = declare(project, "import numpy_not_here\n@orchestrator.function\ndef resize():\n    pass\n")
    result = orch("build", f"{path}::resize")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path} imports 'numpy_not_here' at module level, but it is not installed on "
        f"this machine. Declarations are read on the host, so import 'numpy_not_here' inside "
        f"setup(), an endpoint or the function body instead; keep it in 'requirements' so the "
        f"image has it.\n"
    )


def test_unknown_option_names_closest(project):
    path = declare(project, "@orchestrator.function(requirement=['six'])\ndef resize():\n    pass\n")
    result = orch("build", f"{path}::resize")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: function resize: unknown option 'requirement'; did you mean 'requirements'?"
    )


def test_unresolvable_requirement_names_package(project):
    path = declare(project, "@orchestrator.function(requirements=['nonexistent-pkg==0.0.0'])\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot resolve requirements (nonexistent-pkg==0.0.0): ")
    assert "nonexistent-pkg was not found in the package registry" in result.stderr
    assert not (project.root / "app.f.lock").exists()


def test_conflicting_pins_name_both(project):
    path = declare(project, "@orchestrator.function(requirements=['six==1.16.0', 'six==1.17.0'])\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot resolve requirements (six==1.16.0, six==1.17.0): ")


def test_python_version_not_in_base(project):
    path = declare(project, "@orchestrator.function(python_version='3.12')\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: unsupported Python version for the base image: orchestrator-local/python:3.11 "
        "(from environment variable ORCH_BASE_IMAGE) has Python 3.11, but the declaration asks "
        "for python_version '3.12'. Set python_version = '3.11', or choose a base image with "
        "Python 3.12.\n"
    )


def test_engine_not_running(project):
    path = declare(project, "@orchestrator.function\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f", env={"DOCKER_HOST": "unix:///tmp/no-docker-here.sock"})
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot reach the Docker engine at unix:///tmp/no-docker-here.sock ("
    )
    assert "Start it (for example 'sudo systemctl start docker', or 'sudo dockerd &')" in result.stderr


def test_failed_build_names_step_and_log(project):
    path = declare(project, "@orchestrator.function(system_packages=['no-such-package-orch'])\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f")
    assert result.exit_code == 1
    first_line = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    assert first_line.startswith("Error: building orchestrator-env:")
    assert "failed at step" in first_line
    log_path = Path(result.stderr.rsplit("Full log: ", 1)[1].strip())
    assert log_path.is_file()
    assert "no-such-package-orch" in log_path.read_text()


def test_missing_cuda_base_names_cuda_setting(project):
    path = declare(project, "@orchestrator.function\ndef f():\n    pass\n")
    result = orch("build", f"{path}::f", "--machine-type", "GPU-H100",
                  env={"ORCH_CUDA_BASE_IMAGE": "orchestrator-test/no-such-cuda:1"})
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: base image orchestrator-test/no-such-cuda:1 (from environment variable "
        "ORCH_CUDA_BASE_IMAGE) is not on this machine and cannot be pulled: "
    )
    assert result.stderr.endswith(
        "Pull or build it, or set the CUDA base image to one you have (the 'image' option, "
        "ORCH_CUDA_BASE_IMAGE, or cuda_base_image in [tool.orchestrator]), or choose a CPU machine type.\n"
    )
