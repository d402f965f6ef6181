"""The request body shown in the banner's curl example."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from orchestrator.local.request_example import example_body


class Resize(BaseModel):
    image: str
    width: int
    keep_ratio: bool = True


class Documented(BaseModel):
    image: str = Field(examples=["aGVsbG8=", "d29ybGQ="])
    width: int = Field(examples=[64])
    height: int


def model_endpoint(self, request: Resize) -> dict:
    return {}


def documented_endpoint(self, request: Documented) -> dict:
    return {}


def keyword_endpoint(self, a: float, b: int, label: str = "x", *rest, **extra) -> dict:
    return {}


def untyped_endpoint(self, value) -> dict:
    return {}


@pytest.mark.parametrize(("handler", "expected"), [
    (model_endpoint, {"image": "text", "width": 1}),
    (documented_endpoint, {"image": "aGVsbG8=", "width": 64, "height": 1}),
    (keyword_endpoint, {"a": 1.0, "b": 1}),
    (untyped_endpoint, {"value": None}),
    (lambda self: None, {}),
])
def test_example_body(handler, expected):
    assert json.loads(example_body(handler)) == expected


def test_example_body_unresolvable_annotation():
    def handler(self, count: "NoSuchType") -> dict:  # noqa: F821
        return {}

    assert json.loads(example_body(handler)) == {"count": None}
