#!/usr/bin/env bash
# Make a stand-in for ghcr.io/astral-sh/uv from the uv binary of the project's
# virtual environment, for machines that cannot pull it. The CUDA template
# copies /uv out of that image.
#
# Usage: scripts/build-local-uv-image.sh [TAG]   (default orchestrator-local/uv:latest)
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-orchestrator-local/uv:latest}"
if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
folder="$(mktemp -d)"
trap 'rm -rf "$folder"' EXIT
cp .venv/bin/uv "$folder/uv"
tar -C "$folder" -c uv | docker import - "$tag" >/dev/null
echo "imported $tag"
