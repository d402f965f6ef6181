"""Find a base image locally or pull it, and pin it by digest."""

from __future__ import annotations

import logging
import re

from ..config import Setting
from ..engine import Engine
from ..errors import EngineError, OptionError

logger = logging.getLogger(__name__)


BASE_IMAGE_FIX = (
    "set the base image to one you have (the 'image' option, ORCH_BASE_IMAGE, or "
    "base_image in [tool.orchestrator])"
)


def ensure_base(engine: Engine, setting: Setting, *, pull: bool, what: str = "base image",
                fix: str = BASE_IMAGE_FIX) -> tuple[str, dict]:
    """Return the reference a build should use for the base, and its inspect data.

    The reference is pinned as ``name@sha256:…`` when the image came from a
    registry; an image built or imported locally has no registry digest and
    keeps its tag (``base_identity`` then records its ID).

    With ``pull`` the image is pulled again even when present; if that fails
    and a local copy exists, the local copy is used with a warning.
    """
    reference = setting.value
    local = engine.image(reference)
    if pull or local is None:
        try:
            local = engine.pull(reference)
        except EngineError as error:
            if local is None:
                raise EngineError(
                    f"{what} {reference} (from {setting.source}) is not on this machine "
                    f"and cannot be pulled: {error.message}. Pull or build it, or {fix}."
                ) from error
            logger.warning("could not pull %s (%s); using the local copy", reference, error.message)
    return pinned_reference(reference, local), local


def base_identity(reference: str, inspect: dict) -> str:
    """Name the exact base content: the registry digest, else the image ID."""
    pinned = pinned_reference(reference, inspect)
    return pinned if "@" in pinned else f"{reference}@{inspect['Id']}"


def pinned_reference(reference: str, inspect: dict) -> str:
    """Prefer the registry digest, which is the same on every machine."""
    repository = reference.split("@", 1)[0]
    repository = re.sub(r":[^/:]+$", "", repository)
    for repo_digest in inspect.get("RepoDigests") or []:
        if repo_digest.split("@", 1)[0] in (repository, f"docker.io/library/{repository}", f"docker.io/{repository}"):
            return repo_digest
    if inspect.get("RepoDigests"):
        return inspect["RepoDigests"][0]
    return reference


def check_python_version(reference: str, inspect: dict, wanted: str, source: str) -> None:
    """Reject a base whose ``PYTHON_VERSION`` variable names another Python.

    Official python images set that variable; bases without it are checked by
    the first build step instead.
    """
    for variable in inspect.get("Config", {}).get("Env") or []:
        name, _, value = variable.partition("=")
        if name == "PYTHON_VERSION" and value:
            found = ".".join(value.split(".")[:2])
            if found != wanted:
                raise OptionError(python_mismatch_message(reference, found, wanted, source))


def python_mismatch_message(reference: str, found: str, wanted: str, source: str) -> str:
    return (
        f"unsupported Python version for the base image: {reference} (from {source}) has "
        f"Python {found}, but the declaration asks for python_version '{wanted}'. Set "
        f"python_version = '{found}', or choose a base image with Python {wanted}."
    )
