"""Credentials of the API (admin token, team keys), key management and auth through the gateway."""

from __future__ import annotations

import json
import stat

import pytest

from orchestrator.runner.config import RunnerConfig

from .support import ADMIN_TOKEN, FAILING_IMAGE, RunnerThread

CREDENTIALS_HINT = "send 'Authorization: Bearer <admin token>' or 'Authorization: Key <id>:<secret>'"


def create_key(runner: RunnerThread, team: str, name: str | None = None) -> dict:
    body = {"team": team} if name is None else {"team": team, "name": name}
    response = runner.call("POST", "/v1/keys", body)
    assert response.status == 201, response.body
    return response.json()


def key_header(key: dict) -> dict[str, str]:
    return {"Authorization": f"Key {key['key']}"}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, f"missing credentials; {CREDENTIALS_HINT}"),
        ({"Authorization": "Bearer wrong-token"}, "invalid admin token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, f"unsupported authorization scheme 'Basic'; {CREDENTIALS_HINT}"),
        (
            {"Authorization": "Key k_0123456789ab"},
            "invalid API key: missing ':' between id and secret; "
            "expected '<id>:<secret>' with an id like 'k_0123456789ab'",
        ),
        ({"Authorization": "Key k_0123456789ab:not-a-real-secret"}, "invalid or revoked API key"),
    ],
)
def test_api_rejects_bad_credentials(runner: RunnerThread, headers: dict, error: str) -> None:
    response = runner.call("GET", "/v1/runs", headers=headers)

    assert response.status == 401
    assert response.json() == {"error": error}
    assert response.headers["www-authenticate"] == "Bearer, Key"


def test_admin_token_sees_all_teams(runner: RunnerThread) -> None:
    runner.create_run(team="acme", machine_type="GPU-H100")
    runner.create_run(team="globex", machine_type="GPU-H100")

    response = runner.call("GET", "/v1/runs", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert response.status == 200
    assert [run["team"] for run in response.json()["runs"]] == ["acme", "globex"]


def test_team_key_acts_for_own_team(runner: RunnerThread) -> None:
    key = create_key(runner, "acme")
    other = runner.create_run(team="globex", machine_type="GPU-H100")

    created = runner.create_run(headers=key_header(key), team=None, machine_type="GPU-H100")
    listed = runner.call("GET", "/v1/runs", headers=key_header(key))
    deleted = runner.call("DELETE", f"/v1/runs/{created['id']}", headers=key_header(key))

    assert created["team"] == "acme"
    assert listed.status == 200
    assert [run["id"] for run in listed.json()["runs"]] == [created["id"]]
    assert other["id"] not in [run["id"] for run in listed.json()["runs"]]
    assert deleted.status == 202


def test_team_key_forbidden_for_other_team(runner: RunnerThread) -> None:
    key = create_key(runner, "acme")
    other_key = create_key(runner, "globex")
    other = runner.create_run(team="globex", machine_type="GPU-H100")
    forbidden = {"error": f"key {key['id']} belongs to team acme and cannot act for team globex"}
    body = {"team": "globex", "app_name": "echo", "image": FAILING_IMAGE, "machine_type": "S"}

    responses = [
        runner.call("POST", "/v1/runs", body, headers=key_header(key)),
        runner.call("GET", "/v1/runs?team=globex", headers=key_header(key)),
        runner.call("GET", f"/v1/runs/{other['id']}", headers=key_header(key)),
        runner.call("POST", f"/v1/runs/{other['id']}/heartbeat", headers=key_header(key)),
        runner.call("GET", f"/v1/runs/{other['id']}/logs", headers=key_header(key)),
        runner.call("DELETE", f"/v1/runs/{other['id']}", headers=key_header(key)),
        runner.call("POST", "/v1/keys", {"team": "globex"}, headers=key_header(key)),
        runner.call("GET", "/v1/keys?team=globex", headers=key_header(key)),
        runner.call("DELETE", f"/v1/keys/{other_key['id']}", headers=key_header(key)),
    ]

    for response in responses:
        assert response.status == 403
        assert response.json() == forbidden
    assert runner.run(other["id"])["state"] == "pending"
    assert runner.call("GET", "/v1/runs", headers=key_header(other_key)).status == 200


def test_keys_create_list_revoke(runner: RunnerThread, config: RunnerConfig) -> None:
    created = create_key(runner, "acme", "ci")

    assert set(created) == {"id", "key", "team", "name"}
    assert created["key"].startswith(created["id"] + ":")
    assert created["team"] == "acme"
    assert created["name"] == "ci"
    listed = runner.call("GET", "/v1/keys?team=acme").json()["keys"]
    assert len(listed) == 1
    assert set(listed[0]) == {"id", "team", "name", "created_at", "revoked_at"}
    assert listed[0]["id"] == created["id"]
    assert listed[0]["revoked_at"] is None
    assert runner.call("GET", "/v1/runs", headers=key_header(created)).status == 200

    revoked = runner.call("DELETE", f"/v1/keys/{created['id']}")

    assert revoked.status == 204
    after = runner.call("GET", "/v1/runs", headers=key_header(created))
    assert after.status == 401
    assert after.json() == {"error": "invalid or revoked API key"}
    assert runner.call("GET", "/v1/keys").json()["keys"][0]["revoked_at"] is not None
    assert runner.call("DELETE", f"/v1/keys/{created['id']}").status == 204
    missing = runner.call("DELETE", "/v1/keys/k_000000000000")
    assert missing.status == 404
    assert missing.json() == {"error": "key k_000000000000 not found"}


def test_key_file_holds_live_keys(runner: RunnerThread, config: RunnerConfig) -> None:
    live_key = create_key(runner, "acme")
    revoked = create_key(runner, "globex")
    runner.call("DELETE", f"/v1/keys/{revoked['id']}")

    entries = json.loads(config.keys_file.read_text())

    assert [entry["id"] for entry in entries] == [live_key["id"]]
    assert entries[0]["team"] == "acme"
    assert len(entries[0]["hash"]) == 64
    assert live_key["key"].split(":", 1)[1] not in config.keys_file.read_text()
    assert stat.S_IMODE(config.keys_file.stat().st_mode) == 0o644


def test_team_key_creates_own_team_key(runner: RunnerThread) -> None:
    key = create_key(runner, "acme")

    response = runner.call("POST", "/v1/keys", {"name": "deploy"}, headers=key_header(key))
    missing_team = runner.call("POST", "/v1/keys", {"name": "deploy"})

    assert response.status == 201
    assert response.json()["team"] == "acme"
    assert missing_team.status == 400
    assert missing_team.json() == {
        "error": "missing field 'team'; the admin token must name the key's team"
    }


@pytest.mark.parametrize(
    ("auth", "caller", "status"),
    [
        ("public", None, 200),
        ("private", None, 401),
        ("private", "acme", 200),
        ("private", "globex", 401),
        ("private", "revoked", 401),
        ("shared", None, 401),
        ("shared", "acme", 200),
        ("shared", "globex", 200),
        ("shared", "revoked", 401),
    ],
)
def test_gateway_auth_matrix(runner: RunnerThread, auth: str, caller: str | None, status: int) -> None:
    team_keys = {
        "acme": create_key(runner, "acme"),
        "globex": create_key(runner, "globex"),
        "revoked": create_key(runner, "acme"),
    }
    runner.call("DELETE", f"/v1/keys/{team_keys['revoked']['id']}")
    run_id = runner.create_run(auth=auth)["id"]
    runner.wait_for_state(run_id, "ready")
    headers = {} if caller is None else key_header(team_keys[caller])

    response = runner.call("POST", "/acme/echo/echo", {"text": "hi"}, headers=headers)

    assert response.status == status, response.body
    if status == 200:
        assert response.json() == {"text": "hi"}
