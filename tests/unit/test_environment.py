"""The environment spec, its cache key and the digests of runtime and user code."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator import environment
from orchestrator.environment import EnvironmentSpec
from orchestrator.errors import OptionError

# Host-side modules and packages, which no file copied into an image may import.
HOST_ONLY_MODULES = ("cli", "engine", "build", "lock", "refs", "config", "machines", "environment", "sidecar")
HOST_ONLY_PACKAGES = ("docker", "click", "yaml", "rich", "tenacity", "httptools", "uv")


def make_spec(**changes: Any) -> EnvironmentSpec:
    spec = EnvironmentSpec(
        kind="python",
        base_image="python@sha256:" + "a" * 64,
        base_image_identity="sha256:" + "b" * 64,
        python_version="3.11",
        system_packages=("ffmpeg", "libgl1"),
        lock_digest="c" * 64,
        env={"MODE": "fast", "LEVEL": "2"},
        runtime_digest="d" * 64,
        platform="linux/amd64",
        uv_image=None,
    )
    return dataclasses.replace(spec, **changes)


def test_key_stable_for_equal_specs() -> None:
    assert make_spec().key == make_spec().key
    assert len(make_spec().key) == 64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "cuda"),
        ("base_image", "python@sha256:" + "e" * 64),
        ("base_image_identity", "sha256:" + "f" * 64),
        ("python_version", "3.12"),
        ("system_packages", ("ffmpeg",)),
        ("lock_digest", "0" * 64),
        ("env", {"MODE": "slow", "LEVEL": "2"}),
        ("env", {"MODE": "fast"}),
        ("runtime_digest", "1" * 64),
        ("platform", "linux/arm64"),
        ("uv_image", "ghcr.io/astral-sh/uv@sha256:" + "2" * 64),
    ],
)
def test_key_changes_with_field(field: str, value: Any) -> None:
    assert make_spec(**{field: value}).key != make_spec().key


def test_canonical_sorted_json() -> None:
    canonical = make_spec().canonical()
    document = json.loads(canonical)

    assert canonical == json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert list(document) == sorted(document)
    assert document["spec_version"] == environment.SPEC_VERSION
    assert document["system_packages"] == ["ffmpeg", "libgl1"]
    assert document["env"] == {"LEVEL": "2", "MODE": "fast"}
    assert document["uv_image"] is None


def test_canonical_ignores_env_order() -> None:
    forward = make_spec(env={"A": "1", "B": "2"})
    backward = make_spec(env={"B": "2", "A": "1"})

    assert forward.canonical() == backward.canonical()
    assert forward.key == backward.key


def test_canonical_validated_packages_ignore_order() -> None:
    forward = make_spec(system_packages=environment.validate_system_packages(("libgl1", "ffmpeg")))
    backward = make_spec(system_packages=environment.validate_system_packages(("ffmpeg", "libgl1")))

    assert forward.key == backward.key


def test_canonical_ignores_package_order() -> None:
    forward = make_spec(system_packages=("libgl1", "ffmpeg"))
    backward = make_spec(system_packages=("ffmpeg", "libgl1"))

    assert forward.canonical() == backward.canonical()
    assert forward.key == backward.key
    assert json.loads(forward.canonical())["system_packages"] == ["ffmpeg", "libgl1"]


@pytest.mark.parametrize(
    "package",
    ["ffmpeg", "libgl1", "g++", "libstdc++6", "python3.11-dev", "ffmpeg=7:5.1.6-0+deb12u1", "ca-certificates"],
)
def test_system_package_valid(package: str) -> None:
    assert environment.validate_system_packages((package,)) == (package,)


def test_system_packages_sorted_unique() -> None:
    packages = environment.validate_system_packages(("libgl1", "ffmpeg", "libgl1"))

    assert packages == ("ffmpeg", "libgl1")


@pytest.mark.parametrize(
    "package",
    [
        "curl; rm -rf /",
        "$(id)",
        "`id`",
        "ffmpeg && id",
        "a|b",
        "two words",
        "pkg>out",
        "-y",
        "--allow-unauthenticated",
        "LibGL1",
        "",
        "pkg=",
        "pkg=1.0;id",
        "pkg\nid",
    ],
)
def test_system_package_invalid(package: str) -> None:
    with pytest.raises(OptionError) as caught:
        environment.validate_system_packages(("ffmpeg", package))

    assert caught.value.message == (
        f"invalid system package {package!r}: expected a Debian package name "
        "such as 'libgl1' or 'ffmpeg=7:5.1.6-0+deb12u1'"
    )
    assert caught.value.exit_code == 2


def write_files(folder: Path, contents: dict[str, str]) -> list[tuple[str, Path]]:
    files = []
    for relative, text in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append((relative, path))
    return files


def test_code_digest_stable_and_order_free(tmp_path: Path) -> None:
    files = write_files(tmp_path, {"app.py": "x = 1\n", "helpers/util.py": "y = 2\n"})

    first = environment.code_digest("app.py", "Thumbnails", files)

    assert environment.code_digest("app.py", "Thumbnails", list(reversed(files))) == first
    assert len(first) == 64


@pytest.mark.parametrize(
    ("app_file", "name", "contents"),
    [
        ("app.py", "Thumbnails", {"app.py": "x = 2\n", "helpers/util.py": "y = 2\n"}),
        ("app.py", "Thumbnails", {"app.py": "x = 1\n", "helpers/other.py": "y = 2\n"}),
        ("app.py", "Thumbnails", {"app.py": "x = 1\n"}),
        ("app.py", "Resize", {"app.py": "x = 1\n", "helpers/util.py": "y = 2\n"}),
        ("main.py", "Thumbnails", {"app.py": "x = 1\n", "helpers/util.py": "y = 2\n"}),
    ],
    ids=["content", "file-name", "file-removed", "entry-name", "entry-file"],
)
def test_code_digest_changes(tmp_path: Path, app_file: str, name: str, contents: dict[str, str]) -> None:
    base = write_files(tmp_path / "base", {"app.py": "x = 1\n", "helpers/util.py": "y = 2\n"})
    changed = write_files(tmp_path / "changed", contents)

    assert environment.code_digest(app_file, name, changed) != environment.code_digest(
        "app.py", "Thumbnails", base
    )


@pytest.fixture
def images_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of images/ that ``environment`` reads in place of the real one."""
    copy = tmp_path / "images"
    shutil.copytree(environment.IMAGES_DIR, copy)
    monkeypatch.setattr(environment, "IMAGES_DIR", copy)
    return copy


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_runtime_digest_stable_per_kind() -> None:
    assert environment.runtime_digest("python") == environment.runtime_digest("python")
    assert environment.runtime_digest("python") != environment.runtime_digest("cuda")


@pytest.mark.parametrize("kind", ["python", "cuda"])
def test_runtime_digest_template_change(images_copy: Path, kind: str) -> None:
    before = environment.runtime_digest(kind)

    append(images_copy / kind / "Dockerfile", "# changed\n")

    assert environment.runtime_digest(kind) != before


def test_runtime_digest_other_template(images_copy: Path) -> None:
    before = environment.runtime_digest("python")

    append(images_copy / "cuda" / "Dockerfile", "# changed\n")
    append(images_copy / "app" / "Dockerfile", "# changed\n")

    assert environment.runtime_digest("python") == before


def test_runtime_digest_runtime_source_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "orchestrator"
    shutil.copytree(environment.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(environment, "PACKAGE_DIR", package)
    before = environment.runtime_digest("python")

    append(package / "sdk.py", "# changed\n")

    assert environment.runtime_digest("python") != before


def test_code_digest_app_template_change(tmp_path: Path, images_copy: Path) -> None:
    files = write_files(tmp_path / "code", {"app.py": "x = 1\n"})
    before = environment.code_digest("app.py", "Thumbnails", files)

    append(images_copy / "app" / "Dockerfile", "# changed\n")

    assert environment.code_digest("app.py", "Thumbnails", files) != before


def test_in_image_sources_listing() -> None:
    sources = environment.in_image_sources()
    names = [name for name, _ in sources]

    assert names[:3] == ["orchestrator/__init__.py", "orchestrator/errors.py", "orchestrator/sdk.py"]
    assert "orchestrator/runtime/__init__.py" in names
    assert "orchestrator/runtime/__main__.py" in names
    for name, path in sources:
        assert path.is_file(), name
        assert name == "orchestrator/" + path.relative_to(environment.PACKAGE_DIR).as_posix()


@pytest.mark.parametrize("module", HOST_ONLY_MODULES)
def test_in_image_sources_no_host_module(module: str) -> None:
    names = [name for name, _ in environment.in_image_sources()]

    assert f"orchestrator/{module}.py" not in names
    assert not [name for name in names if name.startswith(f"orchestrator/{module}/")]


def imported_modules(name: str, path: Path) -> list[str]:
    """Return the absolute names that the file shipped as ``name`` imports.

    ``from package import x`` yields both ``package`` and ``package.x``,
    because ``x`` may be a submodule.
    """
    parts = name.removesuffix(".py").split("/")
    package_parts = parts[:-1]

    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package_parts[: len(package_parts) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            modules.append(base)
            modules += [f"{base}.{alias.name}" for alias in node.names]
    return modules


def test_in_image_sources_import_nothing_host_side() -> None:
    sources = environment.in_image_sources()
    shipped = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name, _ in sources}

    for name, path in sources:
        for module in imported_modules(name, path):
            parts = module.split(".")
            assert parts[0] not in HOST_ONLY_PACKAGES, f"{name} imports {module}"
            if parts[0] == "orchestrator" and len(parts) > 1:
                assert parts[1] not in HOST_ONLY_MODULES, f"{name} imports {module}"
                assert module in shipped or ".".join(parts[:-1]) in shipped, f"{name} imports {module}"
