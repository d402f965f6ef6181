"""Project settings: ``[tool.orchestrator]``, environment variables and their precedence."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator import config
from orchestrator.config import ProjectConfig, Setting, base_image_setting
from orchestrator.errors import OptionError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("ORCH_BASE_IMAGE", "ORCH_CUDA_BASE_IMAGE", "ORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)


def write_pyproject(folder: Path, text: str) -> Path:
    path = folder.resolve() / "pyproject.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_project_nearest_pyproject(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, """\
        [tool.orchestrator]
        team = "vision"
        base_image = "python:{python_version}-bookworm"
    """)
    nested = tmp_path / "src" / "apps"
    nested.mkdir(parents=True)

    project = config.load_project(nested)

    assert project.path == path
    assert project.root == path.parent
    assert project.table["team"] == "vision"
    assert project.get("base_image") == Setting(
        "python:{python_version}-bookworm", f"[tool.orchestrator] base_image in {path}"
    )
    assert project.get("registry") is None


def test_load_project_without_table(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, """\
        [project]
        name = "demo"
    """)

    project = config.load_project(tmp_path)

    assert project.path == path
    assert project.table == {}
    assert project.apps() == {}


def test_load_project_none_found(tmp_path: Path) -> None:
    project = config.load_project(tmp_path)

    assert project == ProjectConfig()
    assert project.root is None
    assert project.apps() == {}


def test_load_project_invalid_toml(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.orchestrator\n")

    with pytest.raises(OptionError) as caught:
        config.load_project(tmp_path)

    assert caught.value.message == (
        f"{path}: invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 19)"
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tool.orchestrator]\nbase_imag = "x"\n',
         "[tool.orchestrator] in {path}: unknown option 'base_imag'; did you mean 'base_image'? "
         "Valid options: team, base_image, cuda_base_image, uv_image, registry, apps."),
        ('[tool.orchestrator]\ncuda_image = "x"\n',
         "[tool.orchestrator] in {path}: unknown option 'cuda_image'; did you mean 'cuda_base_image'? "
         "Valid options: team, base_image, cuda_base_image, uv_image, registry, apps."),
        ('[tool.orchestrator.apps.web]\nref = "app.py"\nmachine_tpe = "M"\n',
         "[tool.orchestrator.apps.web] in {path}: unknown option 'machine_tpe'; "
         "did you mean 'machine_type'? Valid options: ref, requirements, python_version, "
         "system_packages, machine_type, env, image, local_python_modules, max_concurrency, "
         "max_queue, request_timeout, startup_timeout."),
    ],
)
def test_load_project_unknown_key(tmp_path: Path, text: str, message: str) -> None:
    path = write_pyproject(tmp_path, text)

    with pytest.raises(OptionError) as caught:
        config.load_project(tmp_path)

    assert caught.value.message == message.format(path=path)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool]\norchestrator = 3\n",
         "{path}: [tool.orchestrator] must be a table, got 3"),
        ('[tool]\norchestrator = ["apps"]\n',
         "{path}: [tool.orchestrator] must be a table, got ['apps']"),
        ("[tool.orchestrator]\napps = 3\n",
         "{path}: [tool.orchestrator.apps] must be a table of app tables, got 3"),
        ('[tool.orchestrator]\napps = ["web"]\n',
         "{path}: [tool.orchestrator.apps] must be a table of app tables, got ['web']"),
        ("[tool.orchestrator.apps]\nweb = 3\n",
         "{path}: [tool.orchestrator.apps.web] must be a table, got 3"),
        ('[tool.orchestrator.apps]\nweb = "app.py::Web"\n',
         "{path}: [tool.orchestrator.apps.web] must be a table, got 'app.py::Web'"),
    ],
    ids=["orchestrator-int", "orchestrator-array", "apps-int", "apps-array", "app-int", "app-string"],
)
def test_load_project_wrong_table_type(tmp_path: Path, text: str, message: str) -> None:
    path = write_pyproject(tmp_path, text)

    with pytest.raises(OptionError) as caught:
        config.load_project(tmp_path)

    assert caught.value.message == message.format(path=path)
    assert caught.value.exit_code == 2


def test_load_project_tool_not_table_ignored(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "tool = 3\n")

    project = config.load_project(tmp_path)

    assert project.table == {}


def project_with(tmp_path: Path, table: str) -> ProjectConfig:
    write_pyproject(tmp_path, "[tool.orchestrator]\n" + table)
    return config.load_project(tmp_path)


DECLARED = "python:3.11-declared"
APP_TABLE = {"ref": "app.py::Thumbnails", "image": "python:3.11-app-table"}
ENV_VALUE = "python:3.11-env"


@pytest.mark.parametrize(
    ("declared", "app_table", "env_value", "in_project", "expected", "source"),
    [
        (DECLARED, APP_TABLE, ENV_VALUE, True, "python:3.11-app-table", "the app's 'image' in pyproject.toml"),
        (None, APP_TABLE, ENV_VALUE, True, "python:3.11-app-table", "the app's 'image' in pyproject.toml"),
        (DECLARED, {"ref": "app.py"}, ENV_VALUE, True, DECLARED, "the declaration's 'image' option"),
        (None, {"ref": "app.py"}, ENV_VALUE, True, ENV_VALUE, "environment variable {variable}"),
        (None, {}, None, True, "python:3.11-project", "[tool.orchestrator] {key} in {path}"),
        (None, {}, "", True, "python:3.11-project", "[tool.orchestrator] {key} in {path}"),
        (None, {}, None, False, "{default}", "the built-in default"),
    ],
    ids=["app-table-over-declaration", "app-table", "declaration", "env-var", "project", "empty-env-var", "default"],
)
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_base_image_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpu: bool, declared: str | None,
    app_table: dict[str, Any], env_value: str | None, in_project: bool, expected: str, source: str,
) -> None:
    key = "cuda_base_image" if gpu else "base_image"
    variable = "ORCH_CUDA_BASE_IMAGE" if gpu else "ORCH_BASE_IMAGE"
    default = config.DEFAULT_CUDA_BASE_IMAGE if gpu else config.DEFAULT_BASE_IMAGE
    project = project_with(tmp_path, f'{key} = "python:3.11-project"\n' if in_project else "")
    if env_value is not None:
        monkeypatch.setenv(variable, env_value)

    setting = base_image_setting(project, declared=declared, app_table=app_table, gpu=gpu)

    assert setting.value == expected.format(default=default)
    assert setting.source == source.format(variable=variable, key=key, path=project.path)


def test_base_image_gpu_ignores_cpu_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with(tmp_path, 'base_image = "python:3.11-project"\n')
    monkeypatch.setenv("ORCH_BASE_IMAGE", "python:3.11-env")

    setting = base_image_setting(project, declared=None, app_table={}, gpu=True)

    assert setting == Setting("nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", "the built-in default")


def test_base_image_default_has_placeholder() -> None:
    setting = base_image_setting(ProjectConfig(), declared=None, app_table={}, gpu=False)

    assert setting == Setting("python:{python_version}-slim", "the built-in default")


def test_cache_dir_orch_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert config.cache_dir() == tmp_path / "state"


def test_cache_dir_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert config.cache_dir() == tmp_path / "xdg" / "orchestrator"


def test_cache_dir_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ORCH_HOME", "")

    assert config.cache_dir() == tmp_path / ".cache" / "orchestrator"
