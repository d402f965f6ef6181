"""Find or build the sidecar image from the project's Dockerfile."""

from __future__ import annotations

import hashlib
import logging

from ..config import Setting, base_image_setting, first, from_env, load_project
from ..engine import Engine
from ..environment import PACKAGE_DIR
from .base import base_identity, ensure_base
from .driver import BuildRequest, choose_driver, run_build
from .image import LABEL
from .progress import for_terminal

logger = logging.getLogger(__name__)

SIDECAR_REPOSITORY = "orchestrator-sidecar"
SIDECAR_PYTHON = "3.11"
REPOSITORY_ROOT = PACKAGE_DIR.parent


def sidecar_sources() -> list:
    files = [REPOSITORY_ROOT / "Dockerfile", REPOSITORY_ROOT / "images" / "sidecar.lock"]
    files += [PACKAGE_DIR / name for name in ("__init__.py", "errors.py", "sdk.py", "keys.py")]
    files += sorted((PACKAGE_DIR / "sidecar").glob("*.py"))
    return files


def sidecar_base() -> Setting:
    """The sidecar's base: ``ORCH_SIDECAR_BASE_IMAGE``, else the CPU base setting for Python 3.11."""
    project = load_project(REPOSITORY_ROOT)
    fallback = base_image_setting(project, declared=None, app_table={}, gpu=False)
    setting = first(from_env("ORCH_SIDECAR_BASE_IMAGE"), default=fallback)
    return Setting(setting.value.replace("{python_version}", SIDECAR_PYTHON), setting.source)


def ensure_sidecar_image(engine: Engine) -> str:
    """Return the tag of the sidecar image for this version of the sources."""
    setting = sidecar_base()
    base, inspect = ensure_base(engine, setting, pull=False)
    digest = hashlib.sha256(base_identity(setting.value, inspect).encode())
    for path in sidecar_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    tag = f"{SIDECAR_REPOSITORY}:{digest.hexdigest()[:16]}"
    if engine.image(tag) is not None:
        return tag

    logger.info("building sidecar image %s", tag)
    driver = choose_driver(engine)
    request = BuildRequest(
        context=REPOSITORY_ROOT, tag=tag, build_args={"BASE_IMAGE": base},
        labels={f"{LABEL}.kind": "sidecar"}, target="sidecar",
    )
    run_build(driver, request, "the sidecar image", for_terminal())
    return tag
