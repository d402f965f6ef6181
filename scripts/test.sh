#!/usr/bin/env bash
# Install and start everything the tests need, then run them.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k lock
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pytest "$@"
