#!/usr/bin/env bash
# Install what orchestrator needs on a Debian machine and start it:
# the Docker engine and Compose (when missing), a virtual environment with
# the project, a Python base image and a registry image.
#
# Base image: orchestrator's default for CPU apps is python:<version>-slim.
# When this machine cannot pull it (no Docker Hub access), the script builds a
# stand-in from Debian bookworm (scripts/build-local-base.sh) and tags it
# python:3.11-slim, so the defaults work unchanged. Set ORCH_SKIP_BASE=1 to
# skip this step.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*" >&2; }

install_docker() {
    if command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
        && command -v docker-compose >/dev/null && [ -x /usr/bin/docker-registry ]; then
        return
    fi
    log "installing the Docker engine, registry, Compose and debootstrap from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        docker.io docker-registry docker-compose debootstrap iproute2 >/dev/null
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    log "starting dockerd (log in /tmp/dockerd.log)"
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    log "dockerd did not start; see /tmp/dockerd.log"
    exit 1
}

install_project() {
    if [ ! -x .venv/bin/orch ]; then
        log "creating .venv and installing orchestrator"
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q -e '.[dev]'
}

ensure_base_image() {
    [ "${ORCH_SKIP_BASE:-0}" = 1 ] && return
    scripts/build-local-base.sh orchestrator-local/python:3.11
    scripts/build-local-uv-image.sh orchestrator-local/uv:latest
    if docker image inspect python:3.11-slim >/dev/null 2>&1; then
        return
    fi
    if docker pull python:3.11-slim >/dev/null 2>&1; then
        return
    fi
    log "python:3.11-slim cannot be pulled here; tagging the local Debian stand-in as python:3.11-slim"
    docker tag orchestrator-local/python:3.11 python:3.11-slim
}

ensure_uv_image() {
    [ "${ORCH_SKIP_BASE:-0}" = 1 ] && return
    # The templates copy uv from ghcr.io/astral-sh/uv; where it cannot be
    # pulled, the stand-in made from the virtual environment's uv takes its tag.
    local tag="ghcr.io/astral-sh/uv:0.13.9"
    if docker image inspect "$tag" >/dev/null 2>&1 || docker pull "$tag" >/dev/null 2>&1; then
        return
    fi
    log "$tag cannot be pulled here; tagging the local uv stand-in as $tag"
    docker tag orchestrator-local/uv:latest "$tag"
}

ensure_registry_image() {
    [ "${ORCH_SKIP_BASE:-0}" = 1 ] && return
    # The runner stack's registry; a stand-in from Debian's package when
    # registry:2 cannot be pulled (use it with ORCH_REGISTRY_IMAGE).
    scripts/build-local-registry-image.sh orchestrator-local/registry:2
}

install_docker
start_docker
install_project
ensure_base_image
ensure_uv_image
ensure_registry_image
log "ready: .venv/bin/orch --help"
