"""Find or build the image of a declaration.

An app image is an environment image (named by the environment key) plus one
layer of user code (named by the code digest). A lookup that finds the app
image makes no build call at all; a code-only change builds just the code
layer on top of the cached environment image.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import tempfile
from pathlib import Path

from .. import environment, lock
from ..config import Setting, base_image_setting, first, from_env
from ..engine import Engine
from ..errors import BuildError, OptionError
from ..refs import Declaration
from . import render
from .base import BASE_IMAGE_FIX, base_identity, check_python_version, ensure_base, python_mismatch_message
from .driver import BuildRequest, choose_driver, run_build
from .progress import Progress, for_terminal
from .registry_cache import RegistryCache

logger = logging.getLogger(__name__)

LABEL = "org.orchestrator"
ENV_REPOSITORY = "orchestrator-env"
APP_REPOSITORY = "orchestrator-app"
DEFAULT_UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.9"


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """The image that serves a declaration, and how it was obtained."""

    reference: str
    image_id: str
    env_key: str
    code_key: str
    spec: environment.EnvironmentSpec
    env_built: bool
    app_built: bool
    env_reference: str = ""
    pulled: bool = False

    @property
    def build_calls(self) -> int:
        return int(self.env_built) + int(self.app_built)


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    gpu: bool = False
    no_cache: bool = False
    upgrade_lock: bool = False
    frozen_lock: bool = False
    platform: str = lock.DEFAULT_PLATFORM


class ImageBuilder:
    """Turns declarations into images on one engine."""

    def __init__(self, engine: Engine, progress: Progress | None = None,
                 registry: str | None = None) -> None:
        self.engine = engine
        self.progress = progress
        self.registry_cache = RegistryCache(engine, registry)
        self._driver = None

    @property
    def driver(self):
        if self._driver is None:
            self._driver = choose_driver(self.engine)
        return self._driver

    def ensure(self, declaration: Declaration, options: BuildOptions = BuildOptions()) -> ImageResult:
        """Return the declaration's image, building only what is missing."""
        locked = self._lock(declaration, options)
        if locked.written and declaration.options.requirements:
            # The lock sits next to the user's file and belongs in their
            # repository, so its creation is said, not only logged.
            print(f"Wrote {locked.path.name} (pinned requirements with hashes); commit it with "
                  f"{declaration.path.name}", file=sys.stderr, flush=True)
        spec = self._spec(declaration, options, locked)
        app_file, code_files = collect_code(declaration)
        code_key = environment.code_digest(app_file, declaration.name, code_files)
        env_tag = f"{ENV_REPOSITORY}:{spec.key[:32]}"
        app_tag = f"{APP_REPOSITORY}/{declaration.app_name}:{spec.key[:12]}-{code_key[:12]}"

        if not options.no_cache:
            found = self.engine.image(app_tag)
            pulled = found is None and (found := self.registry_cache.pull(app_tag)) is not None
            if found is not None:
                logger.info("image %s is up to date", app_tag)
                return ImageResult(app_tag, found["Id"], spec.key, code_key, spec, False, False,
                                   env_reference=env_tag, pulled=pulled)

        env_built = self._ensure_environment(env_tag, spec, locked, options)
        labels = {
            f"{LABEL}.kind": "app",
            f"{LABEL}.app": declaration.app_name,
            f"{LABEL}.env-key": spec.key,
            f"{LABEL}.code-key": code_key,
        }
        with tempfile.TemporaryDirectory(prefix="orch-app-") as folder:
            render.write_app_context(Path(folder), app_file, declaration.name, code_files)
            request = BuildRequest(Path(folder), app_tag, {"ENV_IMAGE": env_tag}, labels, options.no_cache)
            image_id = self._build(request, f"code layer of {declaration.app_name}")
        return ImageResult(app_tag, image_id, spec.key, code_key, spec, env_built, True, env_reference=env_tag)

    def _lock(self, declaration: Declaration, options: BuildOptions) -> lock.Lock:
        path = lock.lock_path(declaration.path, declaration.name)
        return lock.ensure_lock(
            path, declaration.options.requirements, declaration.options.python_version,
            options.platform, upgrade=options.upgrade_lock, frozen=options.frozen_lock,
        )

    def _spec(self, declaration: Declaration, options: BuildOptions, locked: lock.Lock) -> environment.EnvironmentSpec:
        declared = declaration.options
        setting = base_image_setting(
            declaration.project, declared=declared.image, app_table=declaration.app_table, gpu=options.gpu,
        )
        setting = Setting(setting.value.replace("{python_version}", declared.python_version), setting.source)
        fix = (
            "set the CUDA base image to one you have (the 'image' option, ORCH_CUDA_BASE_IMAGE, or "
            "cuda_base_image in [tool.orchestrator]), or choose a CPU machine type"
            if options.gpu else BASE_IMAGE_FIX
        )
        base, inspect = ensure_base(self.engine, setting, pull=options.no_cache, fix=fix)
        check_python_version(setting.value, inspect, declared.python_version, setting.source)
        uv_image = self._uv_image(declaration, options)
        kind = "cuda" if options.gpu else "python"
        return environment.EnvironmentSpec(
            kind=kind,
            base_image=base,
            base_image_identity=base_identity(setting.value, inspect),
            python_version=declared.python_version,
            system_packages=environment.validate_system_packages(declared.system_packages),
            lock_digest=locked.digest,
            env=dict(declared.env),
            runtime_digest=environment.runtime_digest(kind),
            platform=options.platform,
            uv_image=uv_image,
        )

    def _uv_image(self, declaration: Declaration, options: BuildOptions) -> str:
        setting = first(
            from_env("ORCH_UV_IMAGE"), declaration.project.get("uv_image"),
            default=Setting(DEFAULT_UV_IMAGE, "the built-in default"),
        )
        pinned, _ = ensure_base(
            self.engine, setting, pull=options.no_cache, what="uv image",
            fix="set ORCH_UV_IMAGE or uv_image in [tool.orchestrator] to an image that has /uv",
        )
        return pinned

    def _ensure_environment(
        self, env_tag: str, spec: environment.EnvironmentSpec, locked: lock.Lock, options: BuildOptions,
    ) -> bool:
        """Make sure the environment image exists; return whether it was built."""
        if not options.no_cache:
            if self.engine.image(env_tag) is not None or self.registry_cache.pull(env_tag) is not None:
                logger.info("environment image %s found", env_tag)
                return False

        labels = {f"{LABEL}.kind": "environment", f"{LABEL}.env-key": spec.key, f"{LABEL}.spec": spec.canonical()}
        build_args = {"BASE_IMAGE": spec.base_image, "SYSTEM_PACKAGES": " ".join(spec.system_packages)}
        if spec.uv_image:
            build_args["UV_IMAGE"] = spec.uv_image
        with tempfile.TemporaryDirectory(prefix="orch-env-") as folder:
            render.write_environment_context(Path(folder), spec, locked.content, buildkit=self.driver.buildkit)
            request = BuildRequest(Path(folder), env_tag, build_args, labels, options.no_cache)
            try:
                self._build(request, f"environment {spec.key[:12]}")
            except BuildError as error:
                raise _explain(error, spec) from error
        return True

    def _build(self, request: BuildRequest, title: str) -> str:
        return run_build(self.driver, request, title, self.progress or for_terminal())


def _explain(error: BuildError, spec: environment.EnvironmentSpec) -> BuildError:
    """Replace the raw log of a known failure with what to do about it."""
    mismatch = re.search(r"ORCH_PYTHON_MISMATCH found=(\d+\.\d+)", error.message)
    if mismatch:
        message = python_mismatch_message(spec.base_image, mismatch.group(1), spec.python_version, "the base image setting")
        return BuildError(f"{message} Full log: {error.log_path}", step=error.step, log_path=error.log_path)
    return error


def collect_code(declaration: Declaration) -> tuple[str, list[tuple[str, Path]]]:
    """List the files of the code layer: the user's file and its local modules."""
    folder = declaration.path.parent
    files = [(declaration.path.name, declaration.path)]
    for module in declaration.options.local_python_modules:
        files += _module_files(folder, module, declaration)
    return declaration.path.name, files


def _module_files(folder: Path, module: str, declaration: Declaration) -> list[tuple[str, Path]]:
    relative = Path(*module.split("."))
    package = folder / relative
    if package.is_dir():
        return [(path.relative_to(folder).as_posix(), path) for path in sorted(package.rglob("*"))
                if path.is_file() and "__pycache__" not in path.parts]
    single = folder / relative.with_suffix(".py")
    if single.is_file():
        return [(single.relative_to(folder).as_posix(), single)]
    raise OptionError(
        f"local_python_modules of {declaration.name}: module '{module}' not found as "
        f"{package}/ or {single}; list modules that sit beside {declaration.path.name}"
    )
