"""Render Dockerfile templates from images/ and lay out build contexts."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..environment import EnvironmentSpec, in_image_sources, template_path
from ..errors import OptionError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# BuildKit keeps package downloads in cache mounts across builds; the classic
# builder has no such mounts, so there uv must not leave its cache in a layer.
_BUILDKIT_FRAGMENTS = {
    "apt_cache_mounts": (
        "--mount=type=cache,target=/var/cache/apt,sharing=locked "
        "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked "
    ),
    "uv_cache_mount": "--mount=type=cache,target=/root/.cache/uv ",
    "uv_cache_env": "",
}
_CLASSIC_FRAGMENTS = {
    "apt_cache_mounts": "",
    "uv_cache_mount": "",
    "uv_cache_env": " \\\n    UV_NO_CACHE=1",
}


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace each ``{{name}}`` in ``template``; a name left over is a bug."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    if "{{" in template:
        start = template.index("{{")
        raise ValueError(f"template placeholder left unrendered: {template[start:start + 40]!r}")
    return template


def env_lines(env: Mapping[str, str]) -> str:
    """Render user variables as continuation lines of an ``ENV`` instruction."""
    lines = []
    for name, value in sorted(env.items()):
        if not _ENV_NAME.fullmatch(name):
            raise OptionError(f"invalid environment variable name {name!r}: use letters, digits and '_'")
        quoted = quote(value)
        lines.append(f" \\\n    {name}={quoted}")
    return "".join(lines)


def quote(value: str) -> str:
    """Quote a value for a Dockerfile ``ENV``: inside double quotes only ``\\``, ``"`` and ``$`` are special."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def environment_dockerfile(spec: EnvironmentSpec, *, buildkit: bool) -> str:
    fragments = _BUILDKIT_FRAGMENTS if buildkit else _CLASSIC_FRAGMENTS
    values = dict(fragments, python_version=spec.python_version, user_env=env_lines(spec.env))
    return render(template_path(spec.kind).read_text(), values)


def write_environment_context(folder: Path, spec: EnvironmentSpec, lock_text: str, *, buildkit: bool) -> None:
    """Lay out everything the environment image's Dockerfile copies."""
    (folder / "Dockerfile").write_text(environment_dockerfile(spec, buildkit=buildkit))
    (folder / "requirements.lock").write_text(lock_text)
    for image_path, source in in_image_sources():
        target = folder / "runtime" / image_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def write_app_context(folder: Path, app_file: str, name: str, code_files: list[tuple[str, Path]]) -> None:
    """Lay out the user's code for images/app/Dockerfile."""
    values = {"app_file": quote(f"/app/{app_file}"), "app_name": quote(name)}
    (folder / "Dockerfile").write_text(render(template_path("app").read_text(), values))
    for relative, source in code_files:
        target = folder / "code" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (folder / "code").mkdir(exist_ok=True)
