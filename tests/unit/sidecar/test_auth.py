"""The auth layer: public, private and shared modes, and key file reloads."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest

from orchestrator.keys import create_key, save_key_file

from .support import Upstream

TEAM = "alpha"
OTHER_TEAM = "beta"
MISSING_KEY = {"error": "missing API key; send the header 'Authorization: Key <id>:<secret>'"}
INVALID_KEY = {"error": "invalid API key"}
OTHER_TEAM_KEY = {"error": "API key not valid for this app"}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    """Write a key file with one key of each team; return the keys and the file path."""
    own = create_key(TEAM, name="own")
    other = create_key(OTHER_TEAM, name="other")
    path = tmp_path / "keys.json"
    save_key_file(path, [own.record, other.record])
    key_id = own.key.split(":")[0]
    return {
        "file": str(path),
        "valid": own.key,
        "wrong": f"{key_id}:{'A' * 43}",
        "other_team": other.key,
    }


# (mode, key case, expected status, expected body); None body = proxied echo.
AUTH_CASES = [
    ("public", "none", 200, None),
    ("public", "wrong", 200, None),
    ("public", "valid", 200, None),
    ("public", "other_team", 200, None),
    ("private", "none", 401, MISSING_KEY),
    ("private", "wrong", 401, INVALID_KEY),
    ("private", "valid", 200, None),
    ("private", "other_team", 401, OTHER_TEAM_KEY),
    ("shared", "none", 401, MISSING_KEY),
    ("shared", "wrong", 401, INVALID_KEY),
    ("shared", "valid", 200, None),
    ("shared", "other_team", 200, None),
]


@pytest.mark.parametrize(("mode", "key_case", "status", "body"), AUTH_CASES)
def test_auth_matrix(start_sidecar, upstream: Upstream, keys, mode, key_case, status, body) -> None:
    sidecar = start_sidecar(ORCH_AUTH_MODE=mode, ORCH_TEAM=TEAM, ORCH_KEYS_FILE=keys["file"])
    headers = {} if key_case == "none" else {"Authorization": f"Key {keys[key_case]}"}

    response = sidecar.request("GET", "/echo", headers=headers)

    assert response.status == status
    if body is None:
        assert upstream.paths() == ["/echo"]
    else:
        assert response.json() == body
        assert response.headers["www-authenticate"] == "Key"
        assert upstream.paths() == []


def test_auth_replaces_key_with_key_id(start_sidecar, upstream: Upstream, keys) -> None:
    sidecar = start_sidecar(ORCH_AUTH_MODE="private", ORCH_TEAM=TEAM, ORCH_KEYS_FILE=keys["file"])

    response = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {keys['valid']}"})

    headers = response.json()["headers"]
    assert response.status == 200
    assert "authorization" not in headers
    assert headers["x-orch-key-id"] == keys["valid"].split(":")[0]


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer abc", "unsupported authorization scheme 'Bearer'; expected 'Key <id>:<secret>'"),
        ("Key", "missing key after 'Key'; expected 'Key <id>:<secret>'"),
        (
            "Key k_0123456789ab",
            "invalid API key: missing ':' between id and secret; "
            "expected '<id>:<secret>' with an id like 'k_0123456789ab'",
        ),
    ],
)
def test_auth_malformed_header(
    start_sidecar, upstream: Upstream, keys, authorization, message
) -> None:
    sidecar = start_sidecar(ORCH_AUTH_MODE="shared", ORCH_KEYS_FILE=keys["file"])

    response = sidecar.request("GET", "/echo", headers={"Authorization": authorization})

    assert response.status == 401
    assert response.json() == {"error": message}


def test_auth_rejection_keeps_connection(start_sidecar, upstream: Upstream, keys) -> None:
    sidecar = start_sidecar(ORCH_AUTH_MODE="shared", ORCH_KEYS_FILE=keys["file"])
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request("POST", "/echo", body=b"unread body")
        rejected = connection.getresponse()
        rejected.read()
        connection.request(
            "POST", "/echo", body=b"read body", headers={"Authorization": f"Key {keys['valid']}"}
        )
        accepted = connection.getresponse()
        echoed = json.loads(accepted.read())
    finally:
        connection.close()

    assert rejected.status == 401
    assert rejected.getheader("Connection") is None
    assert accepted.status == 200
    assert echoed["body"] == "read body"
    assert len(set(upstream.client_ports())) == 1


def test_auth_health_needs_no_key(start_sidecar, upstream: Upstream, keys) -> None:
    sidecar = start_sidecar(ORCH_AUTH_MODE="private", ORCH_TEAM=TEAM, ORCH_KEYS_FILE=keys["file"])

    health = sidecar.request("GET", "/health")
    metrics = sidecar.request("GET", "/metrics")

    assert health.status == 200
    assert health.json() == {"sidecar": "ok", "app": {"status": "ready"}}
    assert metrics.status == 200


def test_auth_revoked_key_rejected(start_sidecar, upstream: Upstream, tmp_path: Path) -> None:
    active = create_key(TEAM)
    revoked = create_key(TEAM)
    path = tmp_path / "keys.json"
    save_key_file(path, [active.record, revoked.record])
    sidecar = start_sidecar(ORCH_AUTH_MODE="private", ORCH_TEAM=TEAM, ORCH_KEYS_FILE=str(path))

    before = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {revoked.key}"})
    save_key_file(path, [active.record])
    after = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {revoked.key}"})
    active_after = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {active.key}"})

    assert before.status == 200
    assert after.status == 401
    assert after.json() == INVALID_KEY
    assert active_after.status == 200


def test_auth_new_key_accepted(start_sidecar, upstream: Upstream, tmp_path: Path) -> None:
    first = create_key(TEAM)
    added = create_key(TEAM)
    path = tmp_path / "keys.json"
    save_key_file(path, [first.record])
    sidecar = start_sidecar(ORCH_AUTH_MODE="private", ORCH_TEAM=TEAM, ORCH_KEYS_FILE=str(path))

    before = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {added.key}"})
    save_key_file(path, [first.record, added.record])
    after = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {added.key}"})

    assert before.status == 401
    assert after.status == 200


def test_auth_invalid_reload_keeps_keys(start_sidecar, upstream: Upstream, tmp_path: Path) -> None:
    key = create_key(TEAM)
    path = tmp_path / "keys.json"
    save_key_file(path, [key.record])
    sidecar = start_sidecar(ORCH_AUTH_MODE="private", ORCH_TEAM=TEAM, ORCH_KEYS_FILE=str(path))

    path.write_text("{not json")
    os.utime(path, ns=(1, 1))
    response = sidecar.request("GET", "/echo", headers={"Authorization": f"Key {key.key}"})

    assert response.status == 200
    assert any(
        "cannot reload keys, keeping the 1 keys loaded before" in line for line in sidecar.lines
    )
