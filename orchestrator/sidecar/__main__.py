"""Run the sidecar: ``python -m orchestrator.sidecar``, configured by ``ORCH_*`` variables."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from ..keys import KeyFileError
from .auth import KeyStore
from .config import ConfigError, SidecarConfig, load_config
from .server import serve

logger = logging.getLogger("orchestrator.sidecar")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(os.environ)
        logging.getLogger().setLevel(config.log_level)
        keys = _open_key_store(config)
    except ConfigError as error:
        logger.error("%s", error.message)
        return error.exit_code

    try:
        import uvloop
    except ImportError:
        # The standard event loop works too, with more CPU time per request.
        return asyncio.run(serve(config, keys))
    return uvloop.run(serve(config, keys))


def _open_key_store(config: SidecarConfig) -> KeyStore | None:
    if config.auth_mode == "public" or config.keys_file is None:
        return None
    try:
        keys = KeyStore(config.keys_file)
    except KeyFileError as error:
        raise ConfigError(
            f"invalid ORCH_KEYS_FILE={config.keys_file!r}: {error.message}"
        ) from error
    logger.info("loaded %d keys from %s", len(keys), config.keys_file)
    return keys


if __name__ == "__main__":
    sys.exit(main())
