"""The text shown once an app is ready."""

from __future__ import annotations

from collections.abc import Sequence

from .spec import RunSpec


def banner(spec: RunSpec, url: str, endpoints: Sequence[str], where: str = "on the local engine",
           example: str = "{}") -> str:
    lines = [
        f"{spec.app_name} is ready {where} "
        f"(machine type {spec.machine.name}, team {spec.team}, env {spec.env_name}, run {spec.short_id})",
    ]
    for path in endpoints:
        lines.append(f"  POST {url}{path}")
    lines.append(f"  Docs:    {url}/docs")
    lines.append(f"  Metrics: {url}/metrics")
    lines.append(f"  Auth:    {auth_line(spec.auth, spec.team)}")
    if spec.limit_max_requests:
        lines.append(f"  Limit:   stops after {spec.limit_max_requests} request(s)")
    lines.append(f"  Try:     {curl_example(url, endpoints[0] if endpoints else '/', spec.auth, example)}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def auth_line(mode: str, team: str) -> str:
    if mode == "public":
        return "public (no key needed)"
    if mode == "private":
        return f"private (a key of team {team}: Authorization: Key <id>:<secret>)"
    return "shared (any valid key: Authorization: Key <id>:<secret>)"


def curl_example(url: str, path: str, auth: str, body: str = "{}") -> str:
    header = "" if auth == "public" else " -H \"Authorization: Key $ORCH_KEY\""
    return f"curl -X POST {url}{path} -H 'Content-Type: application/json'{header} -d '{body}'"
