#!/usr/bin/env bash
# Make a stand-in for the registry:2 image from Debian's docker-registry
# package (the same 'distribution' server), for machines that cannot pull
# registry:2. It listens on :5000 without auth and stores in /var/lib/registry,
# like registry:2. Use it with ORCH_REGISTRY_IMAGE=orchestrator-local/registry:2.
#
# Usage: scripts/build-local-registry-image.sh [TAG] [BASE]
set -euo pipefail

tag="${1:-orchestrator-local/registry:2}"
base="${2:-orchestrator-local/python:3.11}"
if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
if [ ! -x /usr/bin/docker-registry ]; then
    echo "install Debian's docker-registry package first (apt-get install docker-registry)" >&2
    exit 1
fi
folder="$(mktemp -d)"
trap 'rm -rf "$folder"' EXIT
cp /usr/bin/docker-registry "$folder/registry"
cat > "$folder/config.yml" <<'CONFIG'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
CONFIG
cat > "$folder/Dockerfile" <<DOCKERFILE
FROM $base
COPY registry /usr/local/bin/registry
COPY config.yml /etc/docker/registry/config.yml
VOLUME /var/lib/registry
EXPOSE 5000
CMD ["/usr/local/bin/registry", "serve", "/etc/docker/registry/config.yml"]
DOCKERFILE
docker build -q -t "$tag" "$folder" >/dev/null
echo "built $tag"
