"""The key file of one local run: a copy of the local key store for its sidecar.

The sidecar mounts the copy's folder read-only and re-reads the file when it
changes, so a key created or revoked with ``orch keys`` during a run applies
once ``refresh()`` has copied the store again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from .. import keys, keystore
from ..config import cache_dir

logger = logging.getLogger(__name__)

KEY_FILE = "keys.json"


class RunKeys:
    """A folder under ``$ORCH_HOME/runs`` with the keys that one run accepts."""

    def __init__(self, team: str) -> None:
        self.team = team
        runs = cache_dir() / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
        # The sidecar runs as an unprivileged user; the file contains hashes only.
        self.folder.chmod(0o755)
        self._store_signature: tuple[int, int, int] | None = None
        self._write()

    def refresh(self) -> bool:
        """Copy the key store again if it changed since the last copy; return whether it did."""
        if _signature(keystore.store_path()) == self._store_signature:
            return False
        self._write()
        logger.info("key store changed; updated the keys of the run in %s", self.folder)
        return True

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self) -> None:
        self._store_signature = _signature(keystore.store_path())
        # Written under another name, made readable, then renamed: the sidecar
        # reloads on the rename and must be able to read what it finds.
        staged = self.folder / f".{KEY_FILE}.next"
        keys.save_key_file(staged, keystore.records_for_run(self.team))
        staged.chmod(0o644)
        os.replace(staged, self.folder / KEY_FILE)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino
