"""The OpenAPI 3.1 description of the runner's API, and the page that renders it.

The document is data, written by hand next to the routes in ``api.py``; a
test checks that every route appears in it.
"""

from __future__ import annotations

import html
from typing import Any

from .models import RunState

SWAGGER_UI_VERSION = "5.17.14"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_UNAUTHORIZED = _error("Missing or invalid credentials.")
_FORBIDDEN = _error("A team key used on another team's run or key.")
_RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_TEAM_QUERY = {
    "name": "team",
    "in": "query",
    "required": False,
    "description": "Only this team's items. A team key sees only its own team, the default "
    "for it; the admin token sees all teams without this parameter.",
    "schema": {"type": "string"},
}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "What failed and how to fix it."}
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "runs"],
        "properties": {
            "status": {"const": "ok"},
            "runs": {"type": "integer", "description": "Runs that are not completed or failed."},
        },
    },
    "RunRequest": {
        "type": "object",
        "required": ["app_name", "image", "machine_type"],
        "additionalProperties": False,
        "properties": {
            "team": {
                **_NAME,
                "description": "Required with the admin token; a team key defaults to its own "
                "team. Not one of v1, healthz, docs, openapi.json.",
            },
            "app_name": _NAME,
            "env": {**_NAME, "default": "main"},
            "image": {
                "type": "string",
                "pattern": "^[^@\\s]+@sha256:[0-9a-f]{64}$",
                "description": "The app image, pinned by digest.",
            },
            "machine_type": {
                "description": "A machine type, or machine types in order of preference; "
                "the first one that a node offers is used.",
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ],
            },
            "auth": {"enum": ["public", "private", "shared"], "default": "public"},
            "limit_max_requests": {
                "type": "integer", "minimum": 0, "default": 0,
                "description": "Stop after serving this many requests; 0 means no limit.",
            },
            "max_concurrency": {"type": "integer", "minimum": 1, "default": 1},
            "max_queue": {"type": "integer", "minimum": 0, "default": 100},
            "request_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 60},
            "startup_timeout": {
                "type": "number", "exclusiveMinimum": 0, "default": 300,
                "description": "Seconds from placement until the app must be ready.",
            },
            "lease_seconds": {
                "type": "number", "exclusiveMinimum": 0, "default": 30,
                "description": "The run stops when no heartbeat came for this many seconds.",
            },
            "endpoints": {"type": "array", "items": {"type": "string", "pattern": "^/"}},
            "app_env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Environment variables of the app; names starting with ORCH_ "
                "are reserved.",
            },
        },
    },
    "Run": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string", "description": "Where the gateway serves the app."},
            "app_name": {"type": "string"},
            "team": {"type": "string"},
            "env": {"type": "string"},
            "image": {"type": "string"},
            "machine_type": {
                "type": "string",
                "description": "The machine type placed on; while pending, the first choice.",
            },
            "machine_types": {"type": "array", "items": {"type": "string"}},
            "auth": {"enum": ["public", "private", "shared"]},
            "limit_max_requests": {"type": "integer"},
            "max_concurrency": {"type": "integer"},
            "max_queue": {"type": "integer"},
            "request_timeout": {"type": "number"},
            "startup_timeout": {"type": "number"},
            "endpoints": {"type": "array", "items": {"type": "string"}},
            "app_env": {"type": "object", "additionalProperties": {"type": "string"}},
            "lease_seconds": {"type": "number"},
            "state": {"enum": [state.value for state in RunState]},
            "message": {
                "type": "string",
                "description": "Why a run is pending or failed, with the app's last output.",
            },
            "created_at": {"type": "number", "description": "Unix time."},
            "started_at": {"type": "number", "description": "Unix time of placement; 0 before."},
            "lease_expires_at": {"type": "number", "description": "Unix time."},
            "upstream": {"type": "string", "description": "The sidecar's address."},
            "node": {"type": "string"},
            "served": {"type": "integer"},
            "rejected": {"type": "integer"},
            "stop_reason": {
                "type": "string",
                "description": "limit reached, deleted or lease expired, once stopping.",
            },
        },
    },
    "RunList": {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": _ref("Run")}},
    },
    "KeyRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "team": {**_NAME, "description": "Required with the admin token."},
            "name": {"type": "string", "description": "A label, such as who holds the key."},
        },
    },
    "CreatedKey": {
        "type": "object",
        "required": ["id", "key", "team", "name"],
        "properties": {
            "id": {"type": "string"},
            "key": {
                "type": "string",
                "description": "The full key, <id>:<secret>. It is returned only here, once.",
            },
            "team": {"type": "string"},
            "name": {"type": ["string", "null"]},
        },
    },
    "Key": {
        "type": "object",
        "required": ["id", "team"],
        "properties": {
            "id": {"type": "string"},
            "team": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "created_at": {"type": ["integer", "null"], "description": "Unix time."},
            "revoked_at": {"type": ["number", "null"], "description": "Unix time."},
        },
    },
    "KeyList": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": _ref("Key")}},
    },
    "MachineType": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "cpus": {"type": "number"},
            "memory_bytes": {"type": "integer"},
            "gpus": {"type": "integer"},
            "gpu_model": {"type": ["string", "null"]},
            "gpu_memory_bytes": {"type": ["integer", "null"]},
            "offered": {"type": "boolean", "description": "Whether some node can run it now."},
        },
    },
    "MachineTypeList": {
        "type": "object",
        "required": ["machine_types"],
        "properties": {"machine_types": {"type": "array", "items": _ref("MachineType")}},
    },
}

_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Report that the runner is up, with the number of live runs.",
            "security": [],
            "responses": {"200": _json(_ref("Health"), "The runner is up.")},
        }
    },
    "/v1/runs": {
        "post": {
            "summary": "Create a run of a pushed image.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("RunRequest")}},
            },
            "responses": {
                "201": _json(_ref("Run"), "Created: starting, or pending without capacity."),
                "400": _error("Invalid body or an unknown machine type."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "409": _error("The app already has a run that is not completed or failed."),
            },
        },
        "get": {
            "summary": "List runs, oldest first.",
            "parameters": [
                _TEAM_QUERY,
                {
                    "name": "live",
                    "in": "query",
                    "required": False,
                    "description": "1 lists only runs that are not completed or failed.",
                    "schema": {"enum": ["0", "1"]},
                },
            ],
            "responses": {
                "200": _json(_ref("RunList"), "The runs."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
            },
        },
    },
    "/v1/runs/{run_id}": {
        "parameters": [_RUN_ID],
        "get": {
            "summary": "Get a run.",
            "responses": {
                "200": _json(_ref("Run"), "The run."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _error("No run has this id."),
            },
        },
        "delete": {
            "summary": "Stop a run gracefully: in-flight requests finish, then its containers "
            "are removed.",
            "responses": {
                "202": _json(_ref("Run"), "Stopping, or already ended."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _error("No run has this id."),
            },
        },
    },
    "/v1/runs/{run_id}/heartbeat": {
        "parameters": [_RUN_ID],
        "post": {
            "summary": "Renew the run's lease for another lease_seconds.",
            "responses": {
                "204": {"description": "Renewed."},
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _error("No run has this id."),
                "409": _error("The run is completed or failed."),
            },
        },
    },
    "/v1/runs/{run_id}/logs": {
        "parameters": [_RUN_ID],
        "get": {
            "summary": "Get the app's output.",
            "parameters": [
                {
                    "name": "follow",
                    "in": "query",
                    "required": False,
                    "description": "1 streams the output (chunked) until the app stops.",
                    "schema": {"enum": ["0", "1"]},
                }
            ],
            "responses": {
                "200": {
                    "description": "The app's stdout and stderr.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _error("No run has this id."),
                "409": _error("The run has no containers: pending, or ended and removed."),
            },
        },
    },
    "/v1/keys": {
        "post": {
            "summary": "Create an API key for a team; the response holds the key, shown once.",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("KeyRequest")}},
            },
            "responses": {
                "201": _json(_ref("CreatedKey"), "Created."),
                "400": _error("Invalid team or name."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
            },
        },
        "get": {
            "summary": "List keys without their secrets or hashes, revoked ones included.",
            "parameters": [_TEAM_QUERY],
            "responses": {
                "200": _json(_ref("KeyList"), "The keys."),
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
            },
        },
    },
    "/v1/keys/{key_id}": {
        "parameters": [
            {
                "name": "key_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^k_[0-9a-f]{12}$"},
            }
        ],
        "delete": {
            "summary": "Revoke a key; sidecars reject it from their next request on.",
            "responses": {
                "204": {"description": "Revoked, or revoked before."},
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _error("No key has this id."),
            },
        },
    },
    "/v1/machine-types": {
        "get": {
            "summary": "List the machine types of the catalogue and whether a node offers each.",
            "responses": {
                "200": _json(_ref("MachineTypeList"), "The catalogue."),
                "401": _UNAUTHORIZED,
            },
        }
    },
}


def document(public_url: str) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the runner served at ``public_url``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrator runner",
            "version": "1",
            "description": "Create runs of pushed app images, renew their leases, read their "
            "logs and stop them; manage the API keys of teams. Apps are served by the gateway "
            "at <runner URL>/<team>/<app>/, which is not part of this API.",
        },
        "servers": [{"url": public_url}],
        "security": [{"adminToken": []}, {"teamKey": []}],
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ORCH_RUNNER_ADMIN_TOKEN; may act for any team.",
                },
                "teamKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Key <id>:<secret>'; may act only for the key's team.",
                },
            },
        },
    }


def docs_page(openapi_path: str) -> str:
    """Return an HTML page that renders the document with Swagger UI from a CDN."""
    base = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
    source = html.escape(openapi_path, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>orchestrator runner API</title>
  <link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{base}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{source}", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""
