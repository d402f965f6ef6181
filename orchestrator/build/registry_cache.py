"""The second cache level: images pushed to a registry by other machines (CI, say)."""

from __future__ import annotations

import logging
from typing import Any

from ..engine import Engine
from ..errors import EngineError

logger = logging.getLogger(__name__)

# Pull failures that only mean "not there"; anything else is logged as a warning.
_MISSING_MARKERS = ("not found", "manifest unknown", "unknown manifest", "does not exist")


class RegistryCache:
    """Looks images up by tag in a registry and pulls them on a hit."""

    def __init__(self, engine: Engine, registry: str | None) -> None:
        self.engine = engine
        self.registry = registry.rstrip("/") if registry else None

    def pull(self, tag: str) -> dict[str, Any] | None:
        """Pull ``<registry>/<tag>`` and tag it as ``tag``; return None on a miss."""
        if self.registry is None:
            return None
        remote = f"{self.registry}/{tag}"
        try:
            inspect = self.engine.pull(remote)
        except EngineError as error:
            if any(marker in error.message.lower() for marker in _MISSING_MARKERS):
                logger.debug("%s is not in the registry", remote)
            else:
                logger.warning("registry lookup of %s failed, building instead: %s", remote, error.message)
            return None
        self.engine.tag(inspect["Id"], tag)
        logger.info("pulled %s from the registry cache", remote)
        return inspect
