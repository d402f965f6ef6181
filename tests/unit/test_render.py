"""Dockerfile rendering for the environment and app images."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import environment
from orchestrator.build import render
from orchestrator.environment import EnvironmentSpec
from orchestrator.errors import OptionError


def make_spec(kind: str, env: dict[str, str] | None = None) -> EnvironmentSpec:
    return EnvironmentSpec(
        kind=kind,
        base_image="python@sha256:" + "a" * 64,
        base_image_identity="sha256:" + "b" * 64,
        python_version="3.12",
        system_packages=("ffmpeg",),
        lock_digest="c" * 64,
        env=env if env is not None else {"MODE": "fast"},
        runtime_digest="d" * 64,
        platform="linux/amd64",
        uv_image="ghcr.io/astral-sh/uv@sha256:" + "e" * 64 if kind == "cuda" else None,
    )


@pytest.mark.parametrize("buildkit", [True, False], ids=["buildkit", "classic"])
@pytest.mark.parametrize("kind", ["python", "cuda"])
def test_environment_dockerfile_rendered(kind: str, buildkit: bool) -> None:
    dockerfile = render.environment_dockerfile(make_spec(kind), buildkit=buildkit)

    assert "{{" not in dockerfile
    assert "}}" not in dockerfile
    assert "found == '3.12'" in dockerfile
    assert dockerfile.endswith(' \\\n    MODE="fast"\n')


@pytest.mark.parametrize("kind", ["python", "cuda"])
def test_environment_dockerfile_buildkit_mounts(kind: str) -> None:
    dockerfile = render.environment_dockerfile(make_spec(kind), buildkit=True)

    assert "--mount=type=cache,target=/var/cache/apt,sharing=locked" in dockerfile
    assert "--mount=type=cache,target=/root/.cache/uv" in dockerfile
    assert "UV_NO_CACHE" not in dockerfile


@pytest.mark.parametrize("kind", ["python", "cuda"])
def test_environment_dockerfile_classic_no_mounts(kind: str) -> None:
    dockerfile = render.environment_dockerfile(make_spec(kind), buildkit=False)

    assert "--mount" not in dockerfile
    assert "UV_NO_CACHE=1" in dockerfile
    assert "pip install" not in dockerfile


def test_environment_dockerfile_cuda_installs_python() -> None:
    dockerfile = render.environment_dockerfile(make_spec("cuda"), buildkit=True)

    assert "uv python install 3.12" in dockerfile
    assert 'command -v python3.12' in dockerfile


def test_environment_dockerfile_without_env() -> None:
    dockerfile = render.environment_dockerfile(make_spec("python", env={}), buildkit=True)

    assert dockerfile.endswith("PYTHONPATH=/opt/orchestrator/lib\n")


def test_app_context_rendered(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "helpers").mkdir(parents=True)
    (source / "app.py").write_text("x = 1\n")
    (source / "helpers" / "util.py").write_text("y = 2\n")
    context = tmp_path / "context"
    context.mkdir()

    render.write_app_context(
        context, "app.py", "Thumbnails",
        [("app.py", source / "app.py"), ("helpers/util.py", source / "helpers" / "util.py")],
    )

    dockerfile = (context / "Dockerfile").read_text()
    assert "{{" not in dockerfile
    assert 'ENV ORCH_APP_FILE="/app/app.py" \\\n    ORCH_APP_NAME="Thumbnails"\n' in dockerfile
    assert (context / "code" / "app.py").read_text() == "x = 1\n"
    assert (context / "code" / "helpers" / "util.py").read_text() == "y = 2\n"


@pytest.mark.parametrize(
    ("app_file", "name", "expected"),
    [
        ("my apps/app.py", "run",
         'ENV ORCH_APP_FILE="/app/my apps/app.py" \\\n    ORCH_APP_NAME="run"\n'),
        ('odd"$name.py', "résumé",
         'ENV ORCH_APP_FILE="/app/odd\\"\\$name.py" \\\n    ORCH_APP_NAME="résumé"\n'),
    ],
    ids=["space", "quote-dollar-non-ascii"],
)
def test_app_context_quotes_file_and_name(tmp_path: Path, app_file: str, name: str, expected: str) -> None:
    render.write_app_context(tmp_path, app_file, name, [])

    assert expected in (tmp_path / "Dockerfile").read_text()


def test_app_context_without_code(tmp_path: Path) -> None:
    render.write_app_context(tmp_path, "app.py", "run", [])

    assert (tmp_path / "code").is_dir()


def test_environment_context_layout(tmp_path: Path) -> None:
    spec = make_spec("python")

    render.write_environment_context(tmp_path, spec, "six==1.16.0\n", buildkit=False)

    assert (tmp_path / "Dockerfile").read_text() == render.environment_dockerfile(spec, buildkit=False)
    assert (tmp_path / "requirements.lock").read_text() == "six==1.16.0\n"
    assert not (tmp_path / "tools.lock").exists()
    for name, source in environment.in_image_sources():
        assert (tmp_path / "runtime" / name).read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ""),
        ({"MODE": "fast"}, ' \\\n    MODE="fast"'),
        ({"GREETING": "hello world"}, ' \\\n    GREETING="hello world"'),
        ({"QUOTE": 'say "hi"'}, ' \\\n    QUOTE="say \\"hi\\""'),
        ({"PRICE": "$5 and ${X}"}, ' \\\n    PRICE="\\$5 and \\${X}"'),
        ({"PATHS": "C:\\tmp"}, ' \\\n    PATHS="C:\\\\tmp"'),
        ({"EMPTY": ""}, ' \\\n    EMPTY=""'),
        ({"_PRIVATE": "1", "B2": "2", "A": "3"}, ' \\\n    A="3" \\\n    B2="2" \\\n    _PRIVATE="1"'),
    ],
    ids=["empty", "plain", "space", "quotes", "dollar", "backslash", "empty-value", "sorted"],
)
def test_env_lines_quoting(env: dict[str, str], expected: str) -> None:
    assert render.env_lines(env) == expected


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("café", '"café"'),
        ("☃ 雪", '"☃ 雪"'),
        ("emoji 🚀", '"emoji 🚀"'),
    ],
    ids=["latin", "cjk", "astral"],
)
def test_env_lines_non_ascii(value: str, quoted: str) -> None:
    assert render.env_lines({"GREETING": value}) == f' \\\n    GREETING={quoted}'


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("$HOME", '"\\$HOME"'),
        ("\\$", '"\\\\\\$"'),
        ("it's", "\"it's\""),
        ("café", '"café"'),
    ],
    ids=["plain", "empty", "quote", "backslash", "dollar", "backslash-dollar", "single-quote", "non-ascii"],
)
def test_quote(value: str, quoted: str) -> None:
    assert render.quote(value) == quoted


@pytest.mark.parametrize("name", ["1ST", "A-B", "A B", "", "A=B", "A$B", "A\nB"])
def test_env_lines_invalid_name(name: str) -> None:
    with pytest.raises(OptionError) as caught:
        render.env_lines({"MODE": "fast", name: "1"})

    assert caught.value.message == (
        f"invalid environment variable name {name!r}: use letters, digits and '_'"
    )
    assert caught.value.exit_code == 2


def test_render_leftover_placeholder() -> None:
    with pytest.raises(ValueError) as caught:
        render.render("FROM {{base}}\nRUN {{command}}\n", {"base": "python:3.12-slim"})

    assert str(caught.value) == "template placeholder left unrendered: '{{command}}\\n'"


def test_render_replaces_every_occurrence() -> None:
    rendered = render.render("{{v}} and {{v}}", {"v": "3.12"})

    assert rendered == "3.12 and 3.12"
