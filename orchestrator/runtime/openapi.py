"""The OpenAPI 3.1 document of the served endpoints and the HTML page that renders it."""

from __future__ import annotations

from typing import Any

from .endpoints import Endpoint
from .models import model_schemas

OPENAPI_VERSION = "3.1.0"
# OpenAPI requires info.version, but declarations carry no version of their own.
API_VERSION = "0.1.0"
SCHEMA_REF_TEMPLATE = "#/components/schemas/{model}"

_SIMPLE_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}

_ERROR_RESPONSES = {
    "400": "The body is not valid JSON.",
    "422": "The arguments do not match the endpoint's parameters; `detail` names them.",
    "500": "The app's code raised an exception; the logs contain its traceback and request ID.",
    "503": "The app is starting, failed to start, or is shutting down.",
}

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API docs</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    // A relative URL, so that the page also works behind a proxy that adds a path prefix.
    SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""


def build_openapi(title: str, endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    """Return the OpenAPI document with one ``POST`` operation per endpoint."""
    refs, schemas = _collect_model_schemas(endpoints)
    paths = {endpoint.path: {"post": _operation(endpoint, refs)} for endpoint in endpoints}
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": API_VERSION},
        "paths": paths,
    }
    if schemas:
        document["components"] = {"schemas": schemas}
    return document


def _collect_model_schemas(
    endpoints: tuple[Endpoint, ...],
) -> tuple[dict[Any, Any], dict[str, Any]]:
    keys: list[tuple[Any, str]] = []
    for endpoint in endpoints:
        if endpoint.input_model is not None:
            keys.append((endpoint.input_model, "validation"))
        if endpoint.output_model is not None:
            keys.append((endpoint.output_model, "serialization"))
    if not keys:
        return {}, {}
    return model_schemas(list(dict.fromkeys(keys)), SCHEMA_REF_TEMPLATE)


def _operation(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    summary, _, description = endpoint.doc.partition("\n")
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": summary.strip() or endpoint.name,
        "requestBody": _request_body(endpoint, refs),
        "responses": {"200": _success_response(endpoint, refs)},
    }
    if description.strip():
        operation["description"] = description.strip()
    for status, text in _ERROR_RESPONSES.items():
        operation["responses"][status] = {"description": text}
    return operation


def _request_body(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    if endpoint.input_model is not None:
        schema = refs[(endpoint.input_model, "validation")]
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    properties = {p.name: _type_schema(endpoint.hints.get(p.name)) for p in endpoint.parameters}
    required = [p.name for p in endpoint.parameters if p.default is p.empty]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not endpoint.accepts_any_keyword:
        schema["additionalProperties"] = False
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _success_response(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    if endpoint.streams:
        content = {"text/plain": {"schema": {"type": "string"}}}
        return {"description": "Chunks streamed as they are produced.", "content": content}
    if endpoint.output_model is not None:
        schema = refs[(endpoint.output_model, "serialization")]
    else:
        schema = _type_schema(endpoint.hints.get("return"))
    content = {"application/json": {"schema": schema}}
    return {"description": "The return value as JSON.", "content": content}


def _type_schema(hint: Any) -> dict[str, Any]:
    # Only plain built-in types get a schema; any other annotation accepts any value.
    name = _SIMPLE_TYPES.get(hint) if isinstance(hint, type) else None
    return {"type": name} if name else {}
