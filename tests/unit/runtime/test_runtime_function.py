"""A function declared with @function(serve=True), served as POST /."""

from __future__ import annotations

APP = """
import sys

import orchestrator


@orchestrator.function(serve=True)
def greet(name: str, punctuation: str = "!") -> dict:
    return {"greeting": f"hello {name}{punctuation}", "pydantic_loaded": "pydantic" in sys.modules}
"""


def test_function_served_at_root(start_runtime):
    app = start_runtime(APP, "greet")

    response = app.post("/", json={"name": "ada"})

    assert response.status_code == 200
    assert response.json() == {"greeting": "hello ada!", "pydantic_loaded": False}


def test_function_missing_argument(start_runtime):
    app = start_runtime(APP, "greet")

    response = app.post("/", json={"punctuation": "?"})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["name"], "msg": "missing required argument", "type": "missing"}]
    }


def test_function_openapi_path(start_runtime):
    app = start_runtime(APP, "greet")

    document = app.get("/openapi.json").json()

    assert list(document["paths"]) == ["/"]
    assert document["paths"]["/"]["post"]["operationId"] == "greet"
