"""Fixtures for tests against the real Docker engine."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from orchestrator.build.image import LABEL
from orchestrator.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.connect()


@pytest.fixture(scope="session", autouse=True)
def remove_built_images(engine: Engine) -> Iterator[None]:
    """Remove, at the end of the session, every orchestrator image the tests made."""
    before = {image["Id"] for image in engine.images(f"{LABEL}.kind")}
    yield
    for image in engine.images(f"{LABEL}.kind"):
        if image["Id"] in before:
            continue
        tags = [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]
        for tag in tags or [image["Id"]]:
            try:
                engine.remove_image(tag, force=True)
            except docker.errors.APIError:
                pass


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "orch-home"
    monkeypatch.setenv("ORCH_HOME", str(home))
    return home


@pytest.fixture
def project(tmp_path: Path) -> "Project":
    return Project(tmp_path / "project")


class Project:
    """A folder of user files for one test, with unique app names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True)
        self.suffix = uuid.uuid4().hex[:8]

    def write(self, name: str, source: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path
