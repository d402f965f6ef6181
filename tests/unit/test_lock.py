"""Locks: when requirements are resolved, what the lock file records, and errors.

Tests marked ``index`` run the real ``uv`` resolver, which reads the package
index; they resolve only ``six`` or names that do not exist.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator import lock
from orchestrator.errors import LockError

index = pytest.mark.index

# The text that `uv pip compile --generate-hashes` writes for six==1.16.0, so that a test can
# start from an existing lock without resolving.
SIX_1_16_LOCK = (
    "six==1.16.0 \\\n"
    "    --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926 \\\n"
    "    --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n"
)


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    return lock.lock_path(tmp_path / "app.py", "Thumbnails")


@pytest.fixture
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to run uv."""

    def fail() -> str:
        raise AssertionError("uv must not run")

    monkeypatch.setattr(lock, "uv_binary", fail)


def header(requirements: list[str], python_version: str = "3.11", platform: str = "linux/amd64") -> str:
    return f"# orchestrator-lock-inputs: {lock.inputs_digest(requirements, python_version, platform)}\n"


def write_six_lock(path: Path, requirements: list[str]) -> str:
    content = header(requirements) + SIX_1_16_LOCK
    path.write_text(content)
    return content


def test_lock_path(tmp_path: Path) -> None:
    assert lock.lock_path(tmp_path / "apps" / "vision.py", "Thumbnails") == tmp_path / "apps" / "vision.Thumbnails.lock"


def test_inputs_digest_ignores_requirement_order() -> None:
    assert lock.inputs_digest(["a", "b"], "3.11", "linux/amd64") == lock.inputs_digest(["b", "a"], "3.11", "linux/amd64")


@pytest.mark.parametrize(
    ("requirements", "python_version", "platform"),
    [
        (["a", "c"], "3.11", "linux/amd64"),
        (["a", "b==1"], "3.11", "linux/amd64"),
        (["a", "b"], "3.12", "linux/amd64"),
        (["a", "b"], "3.11", "linux/arm64"),
    ],
)
def test_inputs_digest_changes(requirements: list[str], python_version: str, platform: str) -> None:
    assert lock.inputs_digest(requirements, python_version, platform) != lock.inputs_digest(
        ["a", "b"], "3.11", "linux/amd64"
    )


def test_pins_normalized_names(tmp_path: Path) -> None:
    content = (
        header(["x"])
        + SIX_1_16_LOCK
        + "Typing_Extensions==4.12.2 \\\n    --hash=sha256:00\n"
        + "zope.interface==7.0 ; sys_platform == 'linux'\n"
    )

    pins = lock.Lock(tmp_path / "x.lock", content).pins()

    assert pins == {"six": "1.16.0", "typing-extensions": "4.12.2", "zope-interface": "7.0"}


def test_lock_digest_is_content_sha256(tmp_path: Path) -> None:
    locked = lock.Lock(tmp_path / "x.lock", "six==1.16.0\n")

    assert locked.digest == hashlib.sha256(b"six==1.16.0\n").hexdigest()


@index
def test_ensure_lock_writes_inputs_header(lock_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.lock")

    locked = lock.ensure_lock(lock_file, ["six==1.16.0"], "3.11")

    assert locked.path == lock_file
    assert lock_file.read_text() == locked.content
    assert locked.content.startswith(header(["six==1.16.0"]))
    assert lock.recorded_digest(locked.content) == lock.inputs_digest(["six==1.16.0"], "3.11", "linux/amd64")
    assert locked.pins() == {"six": "1.16.0"}
    assert "--hash=sha256:" in locked.content
    assert locked.written is True
    assert [record.getMessage() for record in caplog.records] == [
        "resolving 1 requirements for Python 3.11 on linux/amd64",
        f"wrote lock file {lock_file}",
    ]


@pytest.mark.parametrize("frozen", [False, True], ids=["default", "frozen"])
def test_ensure_lock_reused_when_unchanged(lock_file: Path, no_uv: None, frozen: bool) -> None:
    content = write_six_lock(lock_file, ["six==1.16.0"])

    locked = lock.ensure_lock(lock_file, ["six==1.16.0"], "3.11", frozen=frozen)

    assert locked.content == content
    assert lock_file.read_text() == content
    assert locked.written is False


def test_ensure_lock_empty_requirements(lock_file: Path, no_uv: None) -> None:
    locked = lock.ensure_lock(lock_file, [], "3.11")

    assert locked.content == header([]) + "# no requirements\n"
    assert lock_file.read_text() == locked.content
    assert locked.pins() == {}


@index
def test_ensure_lock_keeps_pins(lock_file: Path) -> None:
    write_six_lock(lock_file, ["six==1.16.0"])

    locked = lock.ensure_lock(lock_file, ["six"], "3.11")

    assert locked.pins() == {"six": "1.16.0"}
    assert locked.content.startswith(header(["six"]))


@index
def test_ensure_lock_upgrade(lock_file: Path) -> None:
    write_six_lock(lock_file, ["six"])

    locked = lock.ensure_lock(lock_file, ["six"], "3.11", upgrade=True)

    assert locked.pins()["six"] != "1.16.0"
    assert locked.content.startswith(header(["six"]))


def test_ensure_lock_frozen_missing(lock_file: Path, no_uv: None) -> None:
    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["six"], "3.11", frozen=True)

    assert caught.value.message == f"lock file {lock_file} is missing; run 'orch lock' and commit the result"
    assert caught.value.exit_code == 1
    assert not lock_file.exists()


@pytest.mark.parametrize(
    ("requirements", "python_version"),
    [(["six"], "3.11"), (["six==1.16.0"], "3.12")],
    ids=["requirements", "python"],
)
def test_ensure_lock_frozen_stale(
    lock_file: Path, no_uv: None, requirements: list[str], python_version: str,
) -> None:
    content = write_six_lock(lock_file, ["six==1.16.0"])

    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, requirements, python_version, frozen=True)

    assert caught.value.message == (
        f"lock file {lock_file} is out of date with the requirements; run 'orch lock' and commit the result"
    )
    assert lock_file.read_text() == content


def test_ensure_lock_unsupported_platform(lock_file: Path, no_uv: None) -> None:
    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["six"], "3.11", "linux/s390x")

    assert caught.value.message == "unsupported platform 'linux/s390x'; supported: linux/amd64, linux/arm64"


FAILURE_END = ". Fix the version or name in 'requirements', then run again."


@index
def test_ensure_lock_unknown_package(lock_file: Path) -> None:
    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["six", "nonexistent-pkg==0.0.0"], "3.11")

    message = caught.value.message
    assert message.startswith("cannot resolve requirements (nonexistent-pkg==0.0.0): ")
    assert "nonexistent-pkg was not found in the package registry" in message
    assert message.endswith(FAILURE_END)
    assert not lock_file.exists()


@index
def test_ensure_lock_conflicting_pins(lock_file: Path) -> None:
    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["six==1.16.0", "six==1.15.0"], "3.11")

    message = caught.value.message
    assert message.startswith("cannot resolve requirements (six==1.16.0, six==1.15.0): ")
    assert "you require six==1.16.0 and six==1.15.0" in message
    assert message.endswith(FAILURE_END)


def fake_uv_failure(monkeypatch: pytest.MonkeyPatch, stderr: str) -> None:
    monkeypatch.setattr(lock, "uv_binary", lambda: "uv")

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, stdout="", stderr=stderr)

    monkeypatch.setattr(lock.subprocess, "run", run)


def test_resolution_failure_message(lock_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_uv_failure(monkeypatch, "error: Because pillow==99 was not found,\n  we stop.\n")

    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["six", "Pillow==99"], "3.11")

    assert caught.value.message == (
        "cannot resolve requirements (Pillow==99): Because pillow==99 was not found, we stop"
        + FAILURE_END
    )


def test_resolution_failure_names_only_culprit(lock_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_uv_failure(
        monkeypatch,
        "error: Because torchvision was not found in the package registry and you require "
        "torchvision==0.0.0, we can conclude that your requirements are unsatisfiable.\n",
    )

    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, ["torch", "torchvision==0.0.0"], "3.11")

    assert caught.value.message == (
        "cannot resolve requirements (torchvision==0.0.0): Because torchvision was not found in the "
        "package registry and you require torchvision==0.0.0, we can conclude that your requirements "
        "are unsatisfiable" + FAILURE_END
    )


@pytest.mark.parametrize(
    ("requirements", "stderr", "subject"),
    [
        (["torchvision", "torch==0.0.0"], "error: Because torch==0.0.0 was not found, we stop.", " (torch==0.0.0)"),
        (["my_pkg[extra]>=2"], "error: Because my-pkg>=2 was not found, we stop.", " (my_pkg[extra]>=2)"),
        (["Zope.Interface ; python_version > '3'"], "error: zope-interface has no wheels.", " (Zope.Interface ; python_version > '3')"),
        (["six", "attrs"], "error: The network is unreachable.", ""),
    ],
    ids=["prefix-not-blamed", "normalized-with-extras", "with-marker", "none-named"],
)
def test_resolution_failure_subject(
    lock_file: Path, monkeypatch: pytest.MonkeyPatch, requirements: list[str], stderr: str, subject: str,
) -> None:
    fake_uv_failure(monkeypatch, stderr + "\n")
    reason = stderr.removeprefix("error: ").rstrip(".")

    with pytest.raises(LockError) as caught:
        lock.ensure_lock(lock_file, requirements, "3.11")

    assert caught.value.message == f"cannot resolve requirements{subject}: {reason}" + FAILURE_END


def fake_uv_compile(monkeypatch: pytest.MonkeyPatch, seen: list[str]) -> None:
    """Record the previous lock that uv would start from, and write six's lock as the result."""
    monkeypatch.setattr(lock, "uv_binary", lambda: "uv")

    def run(command: list[str], *, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        previous = Path(cwd) / "requirements.lock"
        seen.append(previous.read_text() if previous.is_file() else "")
        previous.write_text(SIX_1_16_LOCK)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(lock.subprocess, "run", run)


@pytest.mark.parametrize(
    ("existing", "previous"),
    [
        (header(["six==1.15.0"]) + SIX_1_16_LOCK, SIX_1_16_LOCK),
        (SIX_1_16_LOCK, SIX_1_16_LOCK),
        ("", ""),
    ],
    ids=["with-header", "without-header", "empty"],
)
def test_ensure_lock_strips_header_for_uv(
    lock_file: Path, monkeypatch: pytest.MonkeyPatch, existing: str, previous: str,
) -> None:
    lock_file.write_text(existing)
    seen: list[str] = []
    fake_uv_compile(monkeypatch, seen)

    locked = lock.ensure_lock(lock_file, ["six"], "3.11")

    assert seen == [previous]
    assert locked.content == header(["six"]) + SIX_1_16_LOCK
