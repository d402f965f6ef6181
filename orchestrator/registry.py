"""Push app images to the runner's registry by digest."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import urllib.request

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
    already = _already_pushed(engine, registry, repository, tag, target)
    if already is not None:
        return already
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


def _already_pushed(engine: Engine, registry: str, repository: str, tag: str, target: str) -> PushResult | None:
    """Return a result without pushing when the registry's tag already points at this image.

    A push that uploads nothing still costs a request per layer. One HEAD of
    the manifest is enough when the engine remembers the digest it pushed.
    Only plain-HTTP registries on loopback are checked, and other registries
    always get a push.
    """
    inspect = engine.image(f"{target}:{tag}") or {}
    known = [item.split("@", 1)[1] for item in inspect.get("RepoDigests") or [] if item.startswith(f"{target}@")]
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    if not known or host not in ("127.0.0.1", "localhost"):
        return None
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            digest = response.headers.get("Docker-Content-Digest")
    except OSError as error:
        logger.debug("cannot ask %s for %s:%s (%s); pushing", registry, repository, tag, error)
        return None
    if digest not in known:
        return None
    layers = len(inspect.get("RootFS", {}).get("Layers") or [])
    logger.info("%s:%s is already in the registry as %s; nothing to push", target, tag, digest)
    return PushResult(f"{target}:{tag}", digest, 0, layers)


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
