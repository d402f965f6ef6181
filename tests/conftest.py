"""Settings shared by every test.

Tests build from a local Python base image (scripts/build-local-base.sh)
because the machines that run them may not reach Docker Hub. The product's
own default stays python:<version>-slim.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORCH_BASE_IMAGE", "orchestrator-local/python:3.11")
# GPU machine types build from the CUDA template; here its base is the same
# local Python image and uv comes from scripts/build-local-uv-image.sh.
os.environ.setdefault("ORCH_CUDA_BASE_IMAGE", "orchestrator-local/python:3.11")
os.environ.setdefault("ORCH_UV_IMAGE", "orchestrator-local/uv:latest")
os.environ.setdefault("ORCH_LOG_LEVEL", "INFO")
