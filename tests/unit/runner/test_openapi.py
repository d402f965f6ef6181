"""The OpenAPI document and the docs page, served without credentials."""

from __future__ import annotations

from typing import Any

from orchestrator.runner.api import ROUTES

from .support import RunnerThread, request


def collect_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in collect_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in collect_refs(value)]
    return []


def test_openapi_lists_every_route(runner: RunnerThread) -> None:
    response = request(runner.port, "GET", "/openapi.json")

    assert response.status == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"http://127.0.0.1:{runner.port}"}]
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routes = {(route.method, route.template) for route in ROUTES}
    assert documented == routes | {("GET", "/healthz")}


def test_openapi_refs_resolve(runner: RunnerThread) -> None:
    document = request(runner.port, "GET", "/openapi.json").json()
    schemas = document["components"]["schemas"]

    refs = collect_refs(document)

    assert refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_docs_page_reads_openapi(runner: RunnerThread) -> None:
    response = request(runner.port, "GET", "/docs")

    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert b'url: "/openapi.json"' in response.body
    assert b"swagger-ui-bundle.js" in response.body


def test_public_paths_only_get(runner: RunnerThread) -> None:
    response = request(runner.port, "POST", "/healthz")

    assert response.status == 405
    assert response.headers["allow"] == "GET"
    assert response.json() == {"error": "method POST not allowed; use GET"}
