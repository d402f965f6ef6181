"""Push app images to the runner's registry by digest."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from .engine import Engine, mapped_errors, split_reference
from .errors import EngineError

logger = logging.getLogger(__name__)

# Messages of a push that may succeed when tried again.
_TRANSIENT_MARKERS = (
    "connection refused", "connection reset", "i/o timeout", "timeout", "eof",
    "503", "502", "504", "no such host", "tls handshake",
)


@dataclasses.dataclass(frozen=True)
class PushResult:
    """The pushed image by digest, and how many layers were uploaded."""

    reference: str
    digest: str
    uploaded_layers: int
    existing_layers: int

    @property
    def pinned(self) -> str:
        repository, _ = split_reference(self.reference)
        return f"{repository}@{self.digest}"


def push(engine: Engine, image: str, registry: str, *, attempts: int | None = None) -> PushResult:
    """Tag ``image`` under ``registry`` and push it, retrying transient failures with backoff.

    Layers the registry already has are not uploaded again.
    """
    attempts = attempts or int(os.environ.get("ORCH_PUSH_ATTEMPTS", "4"))
    repository, tag = split_reference(image)
    target = f"{registry.rstrip('/')}/{repository}"
    engine.tag(image, f"{target}:{tag}")
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return _push_once(engine, target, tag)
        except EngineError as error:
            transient = any(marker in error.message.lower() for marker in _TRANSIENT_MARKERS)
            if not transient or attempt == attempts:
                raise EngineError(
                    f"cannot push {image} to the registry {registry} after {attempt} attempt(s): "
                    f"{error.message}. Check that the registry runs (docker-compose ps) and that "
                    f"ORCH_REGISTRY or 'orch login --registry' names it."
                ) from error
            logger.warning("push of %s failed (%s); retrying in %.1fs (attempt %d of %d)",
                           image, error.message, delay, attempt, attempts)
            time.sleep(delay)
            delay = min(delay * 2, 8)
    raise AssertionError("unreachable")


@mapped_errors
def _push_once(engine: Engine, repository: str, tag: str) -> PushResult:
    digest = None
    uploaded = existing = 0
    for message in engine.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in message:
            raise EngineError(str(message["error"]).strip())
        status = message.get("status", "")
        if status == "Pushed":
            uploaded += 1
        elif status == "Layer already exists":
            existing += 1
        aux = message.get("aux") or {}
        if "Digest" in aux:
            digest = aux["Digest"]
    if digest is None:
        raise EngineError(f"the registry returned no digest for {repository}:{tag}")
    logger.info("pushed %s:%s (%s): %d layers uploaded, %d already there",
                repository, tag, digest, uploaded, existing)
    return PushResult(f"{repository}:{tag}", digest, uploaded, existing)
