"""ORCH_MODE=call: call a function once and print its result."""

from __future__ import annotations

import json

import pytest

APP = """
import asyncio
import sys

import orchestrator
from helper import divide


@orchestrator.function
def total():
    print("working")
    return {"total": 6, "pydantic_loaded": "pydantic" in sys.modules}


@orchestrator.function
async def later():
    await asyncio.sleep(0.01)
    return [1, "two"]


class Opaque:
    def __repr__(self):
        return "<Opaque 7>"


@orchestrator.function
def opaque():
    return Opaque()


@orchestrator.function
def fails():
    return divide(1, 0)
"""

HELPER = """
def divide(a, b):
    return a / b
"""


@pytest.fixture
def call(run_app, tmp_path):
    (tmp_path / "helper.py").write_text(HELPER)
    return lambda name: run_app(APP, name, ORCH_MODE="call")


@pytest.mark.parametrize(
    ("name", "stdout"),
    [
        ("total", '{"total": 6, "pydantic_loaded": false}\n'),
        ("later", '[1, "two"]\n'),
        ("opaque", "<Opaque 7>\n"),
    ],
)
def test_call_prints_result(call, name, stdout):
    result = call(name)

    assert result.returncode == 0
    assert result.stdout == stdout


def test_call_prints_go_to_stderr(call):
    result = call("total")

    assert json.loads(result.stdout)["total"] == 6
    assert result.stderr == "working\n"


def test_call_failure_shows_user_frames(call, tmp_path):
    result = call("fails")

    assert result.returncode == 1
    assert result.stdout == ""
    raise_line = APP.splitlines().index("    return divide(1, 0)") + 1
    lines = result.stderr.splitlines()
    frames = [line.strip() for line in lines if line.startswith('  File "')]
    assert lines[0] == "Traceback (most recent call last):"
    assert frames == [
        f'File "{tmp_path / "app.py"}", line {raise_line}, in fails',
        f'File "{tmp_path / "helper.py"}", line 3, in divide',
    ]
    assert lines[-1] == "ZeroDivisionError: division by zero"
