"""GET /openapi.json and GET /docs."""

from __future__ import annotations

APP = """
from typing import Iterator

from pydantic import BaseModel

import orchestrator


class Box(BaseModel):
    x: int
    y: int


class DetectRequest(BaseModel):
    image: str
    hint: Box | None = None


class Detection(BaseModel):
    label: str
    box: Box


class Detector(orchestrator.App):
    @orchestrator.endpoint("/detect")
    def detect(self, request: DetectRequest) -> Detection:
        \"\"\"Detect the main object.

        Returns its label and bounding box.
        \"\"\"
        return Detection(label="cat", box=Box(x=0, y=0))

    @orchestrator.endpoint("/scale")
    def scale(self, value: float, factor: int = 2, note=None) -> float:
        return value * factor

    @orchestrator.endpoint("/tokens")
    def tokens(self, prompt: str) -> Iterator[str]:
        yield prompt
"""


def test_openapi_document(start_runtime):
    app = start_runtime(APP, "Detector")

    response = app.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Detector", "version": "0.1.0"}
    assert sorted(document["paths"]) == ["/detect", "/scale", "/tokens"]
    assert all(list(item) == ["post"] for item in document["paths"].values())


def test_openapi_pydantic_schemas(start_runtime):
    app = start_runtime(APP, "Detector")

    document = app.get("/openapi.json").json()

    detect = document["paths"]["/detect"]["post"]
    assert detect["operationId"] == "detect"
    assert detect["summary"] == "Detect the main object."
    assert detect["description"] == "Returns its label and bounding box."
    request_schema = detect["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": "#/components/schemas/DetectRequest"}
    response_schema = detect["responses"]["200"]["content"]["application/json"]["schema"]
    assert response_schema == {"$ref": "#/components/schemas/Detection"}
    schemas = document["components"]["schemas"]
    assert sorted(schemas) == ["Box", "DetectRequest", "Detection"]
    assert schemas["DetectRequest"]["required"] == ["image"]
    assert schemas["Detection"]["properties"]["box"] == {"$ref": "#/components/schemas/Box"}
    assert sorted(detect["responses"]) == ["200", "400", "422", "500", "503"]


def test_openapi_keyword_schema(start_runtime):
    app = start_runtime(APP, "Detector")

    document = app.get("/openapi.json").json()

    scale = document["paths"]["/scale"]["post"]
    assert scale["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "factor": {"type": "integer"},
                        "note": {},
                    },
                    "required": ["value"],
                    "additionalProperties": False,
                }
            }
        },
    }
    scale_result = scale["responses"]["200"]["content"]["application/json"]["schema"]
    assert scale_result == {"type": "number"}
    tokens_result = document["paths"]["/tokens"]["post"]["responses"]["200"]["content"]
    assert tokens_result == {"text/plain": {"schema": {"type": "string"}}}


def test_docs_page(start_runtime):
    app = start_runtime(APP, "Detector")

    response = app.get("/docs")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Detector - API docs</title>" in response.text
    assert 'SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui"});' in response.text
