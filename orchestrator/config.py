"""Settings from flags, environment variables and ``pyproject.toml``.

Precedence, most specific first: a command-line flag, the app's table
``[tool.orchestrator.apps.NAME]``, the declaration itself, an environment
variable, the project table ``[tool.orchestrator]``, then the built-in default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import OptionError
from .sdk import check_option_names

DEFAULT_BASE_IMAGE = "python:{python_version}-slim"
DEFAULT_CUDA_BASE_IMAGE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"

PROJECT_KEYS = ("team", "base_image", "cuda_base_image", "uv_image", "registry", "apps")
APP_TABLE_KEYS = ("ref", "requirements", "python_version", "system_packages", "machine_type",
                  "env", "image", "local_python_modules", "max_concurrency", "max_queue",
                  "request_timeout", "startup_timeout")


@dataclasses.dataclass(frozen=True)
class Setting:
    """A value together with where it came from, for error messages."""

    value: Any
    source: str


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """The ``[tool.orchestrator]`` table of the nearest ``pyproject.toml``."""

    path: Path | None = None
    table: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path else None

    def apps(self) -> Mapping[str, Mapping[str, Any]]:
        return self.table.get("apps", {})

    def get(self, key: str) -> Setting | None:
        if key in self.table:
            return Setting(self.table[key], f"[tool.orchestrator] {key} in {self.path}")
        return None


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` at or above ``start``."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_project(start: Path) -> ProjectConfig:
    """Read ``[tool.orchestrator]`` from the nearest ``pyproject.toml``."""
    path = find_pyproject(start.resolve())
    if path is None:
        return ProjectConfig()
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise OptionError(f"{path}: invalid TOML: {error}") from error
    tool = document.get("tool", {})
    table = tool.get("orchestrator", {}) if isinstance(tool, Mapping) else {}
    if not isinstance(table, Mapping):
        raise OptionError(f"{path}: [tool.orchestrator] must be a table, got {table!r}")
    check_option_names(table, PROJECT_KEYS, source=f"[tool.orchestrator] in {path}")
    apps = table.get("apps", {})
    if not isinstance(apps, Mapping):
        raise OptionError(f"{path}: [tool.orchestrator.apps] must be a table of app tables, got {apps!r}")
    for name, app in apps.items():
        if not isinstance(app, Mapping):
            raise OptionError(f"{path}: [tool.orchestrator.apps.{name}] must be a table, got {app!r}")
        check_option_names(app, APP_TABLE_KEYS, source=f"[tool.orchestrator.apps.{name}] in {path}")
    return ProjectConfig(path=path, table=table)


def from_env(variable: str) -> Setting | None:
    value = os.environ.get(variable)
    if value:
        return Setting(value, f"environment variable {variable}")
    return None


def first(*settings: Setting | None, default: Setting) -> Setting:
    """Return the first setting that is present, in precedence order."""
    for setting in settings:
        if setting is not None:
            return setting
    return default


def base_image_setting(
    project: ProjectConfig, *, declared: str | None, app_table: Mapping[str, Any], gpu: bool,
) -> Setting:
    """Choose the base image for a declaration; may contain ``{python_version}``."""
    key = "cuda_base_image" if gpu else "base_image"
    variable = "ORCH_CUDA_BASE_IMAGE" if gpu else "ORCH_BASE_IMAGE"
    default = DEFAULT_CUDA_BASE_IMAGE if gpu else DEFAULT_BASE_IMAGE
    return first(
        Setting(app_table["image"], "the app's 'image' in pyproject.toml") if "image" in app_table else None,
        Setting(declared, "the declaration's 'image' option") if declared else None,
        from_env(variable),
        project.get(key),
        default=Setting(default, "the built-in default"),
    )


def registry_setting(project: ProjectConfig) -> Setting | None:
    """Return the configured registry that images are looked up in and pushed to."""
    return first(from_env("ORCH_REGISTRY"), project.get("registry"), default=Setting(None, "none"))


def cache_dir() -> Path:
    """Folder for build logs and local state, ``$ORCH_HOME`` or the XDG default."""
    explicit = os.environ.get("ORCH_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "orchestrator"
