"""Resolve requirements into a lock for the image's platform and Python.

The lock is a pip requirements file with exact versions and hashes, stored
beside the user's file as ``<file stem>.<name>.lock`` and meant to be
committed. Builds install exactly the lock. Its first lines record a digest of
what it was resolved from, so a changed requirement is noticed and resolved
again, preferring the versions already pinned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from .errors import LockError

logger = logging.getLogger(__name__)

# glibc 2.28 covers the Debian bookworm (2.36) and Ubuntu 22.04 (2.35) bases.
PLATFORMS = {
    "linux/amd64": "x86_64-manylinux_2_28",
    "linux/arm64": "aarch64-manylinux_2_28",
}
DEFAULT_PLATFORM = "linux/amd64"
INPUTS_PREFIX = "# orchestrator-lock-inputs: "


@dataclasses.dataclass(frozen=True)
class Lock:
    """A resolved lock file and the digest of its content."""

    path: Path
    content: str
    # True when this call resolved the requirements and wrote the file.
    written: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    def pins(self) -> dict[str, str]:
        """Return the pinned versions by normalized package name."""
        pins = {}
        for match in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", self.content, re.MULTILINE):
            pins[normalize_name(match.group(1))] = match.group(2)
        return pins


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(user_file: Path, name: str) -> Path:
    return user_file.with_name(f"{user_file.stem}.{name}.lock")


def inputs_digest(requirements: Sequence[str], python_version: str, platform: str) -> str:
    document = {"requirements": sorted(requirements), "python": python_version, "platform": platform}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def ensure_lock(
    path: Path,
    requirements: Sequence[str],
    python_version: str,
    platform: str = DEFAULT_PLATFORM,
    *,
    upgrade: bool = False,
    frozen: bool = False,
) -> Lock:
    """Return the lock for these requirements, resolving only when needed.

    ``upgrade`` resolves again to the newest allowed versions. ``frozen`` rejects
    a missing or stale lock instead of resolving (for CI).
    """
    digest = inputs_digest(requirements, python_version, platform)
    current = path.read_text() if path.is_file() else None
    if current is not None and not upgrade and recorded_digest(current) == digest:
        logger.debug("lock %s is up to date", path)
        return Lock(path, current)

    if frozen:
        state = "missing" if current is None else "out of date with the requirements"
        raise LockError(f"lock file {path} is {state}; run 'orch lock' and commit the result")

    logger.info("resolving %d requirements for Python %s on %s", len(requirements), python_version, platform)
    content = resolve(requirements, python_version, platform, previous=None if upgrade else path)
    content = f"{INPUTS_PREFIX}{digest}\n{content}"
    path.write_text(content)
    logger.info("wrote lock file %s", path)
    return Lock(path, content, written=True)


def recorded_digest(content: str) -> str | None:
    first_line = content.split("\n", 1)[0]
    if first_line.startswith(INPUTS_PREFIX):
        return first_line[len(INPUTS_PREFIX):].strip()
    return None


def resolve(
    requirements: Sequence[str], python_version: str, platform: str, *, previous: Path | None,
) -> str:
    """Run ``uv pip compile`` for the target platform and return the lock text."""
    if not requirements:
        return "# no requirements\n"
    if platform not in PLATFORMS:
        raise LockError(f"unsupported platform {platform!r}; supported: {', '.join(PLATFORMS)}")

    with _work_folder(previous) as folder:
        (folder / "requirements.in").write_text("\n".join(requirements) + "\n")
        command = [
            uv_binary(), "pip", "compile", "requirements.in",
            "--output-file", "requirements.lock",
            "--python-version", python_version,
            "--python-platform", PLATFORMS[platform],
            "--generate-hashes", "--no-header", "--no-annotate", "--quiet",
        ]
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        if result.returncode != 0:
            raise LockError(_resolution_failure(requirements, result.stderr))
        return (folder / "requirements.lock").read_text()


class _work_folder:
    """A temporary folder holding the previous lock, so uv keeps its pins."""

    def __init__(self, previous: Path | None) -> None:
        self.previous = previous

    def __enter__(self) -> Path:
        import tempfile

        self._temporary = tempfile.TemporaryDirectory(prefix="orch-lock-")
        folder = Path(self._temporary.name)
        if self.previous is not None and self.previous.is_file():
            lines = self.previous.read_text().splitlines(keepends=True)
            if lines and lines[0].startswith(INPUTS_PREFIX):
                lines = lines[1:]
            (folder / "requirements.lock").write_text("".join(lines))
        return folder

    def __exit__(self, *exc: object) -> None:
        self._temporary.cleanup()


def _resolution_failure(requirements: Sequence[str], stderr: str) -> str:
    reason = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
    reason = re.sub(r"^error:\s*", "", reason).rstrip(".")
    mentioned = {normalize_name(word) for word in re.findall(r"[A-Za-z0-9](?:[A-Za-z0-9._\-]*[A-Za-z0-9])?", reason)}
    named = [req for req in requirements if normalize_name(re.split(r"[\s<>=!~;\[]", req)[0]) in mentioned]
    subject = f" ({', '.join(named)})" if named else ""
    return (
        f"cannot resolve requirements{subject}: {reason}. "
        f"Fix the version or name in 'requirements', then run again."
    )


def uv_binary() -> str:
    """Find uv: next to this interpreter (the uv package installs it there), else on PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / "uv", Path(sys.executable).with_name("uv")]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        raise LockError("uv is not installed; run 'pip install uv' (it resolves requirements into locks)")
    return found
