"""The canonical environment spec of a declaration and its cache key.

Two declarations with equal specs get the same key, and so the same
environment image, on any machine. What goes into the spec is listed in
docs/environment.md; the user's code never does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import OptionError

SPEC_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parent
# TODO: ship images/ inside the package; today orchestrator must be installed
# editable (pip install -e .) so that the templates are found here.
IMAGES_DIR = PACKAGE_DIR.parent / "images"

# The part of this package that is copied into every image: the declaration
# API and the runtime. Nothing host-side (docker, click) may be imported by it.
IN_IMAGE_FILES = ("__init__.py", "errors.py", "sdk.py")
IN_IMAGE_PACKAGES = ("runtime",)

_SYSTEM_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(=[A-Za-z0-9.+:~\-]+)?$")


@dataclasses.dataclass(frozen=True)
class EnvironmentSpec:
    """Everything that decides the content of an environment image."""

    kind: str
    base_image: str
    base_image_identity: str
    python_version: str
    system_packages: tuple[str, ...]
    lock_digest: str
    env: Mapping[str, str]
    runtime_digest: str
    platform: str
    uv_image: str | None = None

    def canonical(self) -> str:
        document: dict[str, Any] = dataclasses.asdict(self)
        document["spec_version"] = SPEC_VERSION
        document["system_packages"] = sorted(self.system_packages)
        document["env"] = dict(sorted(self.env.items()))
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()


def validate_system_packages(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Reject names that are not Debian package names, so none reaches a shell."""
    for package in packages:
        if not _SYSTEM_PACKAGE.match(package):
            raise OptionError(
                f"invalid system package {package!r}: expected a Debian package name "
                f"such as 'libgl1' or 'ffmpeg=7:5.1.6-0+deb12u1'"
            )
    return tuple(sorted(set(packages)))


def in_image_sources() -> list[tuple[str, Path]]:
    """List the package files copied into images, as (path in image, file)."""
    sources = [(f"orchestrator/{name}", PACKAGE_DIR / name) for name in IN_IMAGE_FILES]
    for package in IN_IMAGE_PACKAGES:
        for path in sorted((PACKAGE_DIR / package).rglob("*.py")):
            relative = path.relative_to(PACKAGE_DIR).as_posix()
            sources.append((f"orchestrator/{relative}", path))
    return sources


def template_path(kind: str) -> Path:
    return IMAGES_DIR / kind / "Dockerfile"


def runtime_digest(kind: str) -> str:
    """Digest of the runtime and the template that shape an image."""
    digest = hashlib.sha256()
    files = [(name, path) for name, path in in_image_sources()]
    files += [(f"images/{kind}/Dockerfile", template_path(kind))]
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_digest(app_file: str, name: str, files: list[tuple[str, Path]]) -> str:
    """Digest of the user's code layer: the file names and contents, and the entry point."""
    digest = hashlib.sha256(f"{app_file}::{name}\0".encode())
    digest.update(hashlib.sha256(template_path("app").read_bytes()).digest())
    for relative, path in sorted(files):
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
