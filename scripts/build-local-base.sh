#!/usr/bin/env bash
# Build a Python base image without pulling from any registry.
#
# Machines that cannot reach Docker Hub (air-gapped CI, a TLS-intercepting
# proxy) cannot pull python:3.11-slim. This script bootstraps Debian bookworm
# with debootstrap, adds its Python 3.11 and the host's CA bundle, and imports
# the result as an image. Point the base-image setting at it, e.g.
#   ORCH_BASE_IMAGE=orchestrator-local/python:3.11 orch build app.py::fn
#
# Usage: scripts/build-local-base.sh [TAG]   (default orchestrator-local/python:3.11)
set -euo pipefail

tag="${1:-orchestrator-local/python:3.11}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists; remove it to rebuild"
    exit 0
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT

echo "bootstrapping Debian bookworm into $rootfs"
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$mirror" >/dev/null

# Trust the same certificate authorities as the host, so that pip inside the
# image works behind a TLS-intercepting proxy.
cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

python_version="$(chroot "$rootfs" python3 -c 'import platform; print(platform.python_version())')"

echo "importing $tag (Python $python_version)"
tar -C "$rootfs" -c . | docker import \
    --change "ENV PYTHON_VERSION=$python_version" \
    --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
    --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python3"]' \
    - "$tag"
