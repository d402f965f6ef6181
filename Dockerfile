# The project's own image, in two targets:
#   sidecar  the proxy in front of every app: the standard library, httptools and uvloop
#   runner   the self-hosted runner service, with the whole package
# Build from the repository root, e.g.
#   docker build --target sidecar -t orchestrator-sidecar .
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS sidecar
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY images/sidecar.lock /opt/orchestrator/sidecar.lock
RUN python3 -m venv /opt/orchestrator/venv \
    && /opt/orchestrator/venv/bin/pip install --no-cache-dir --no-deps --require-hashes \
        -r /opt/orchestrator/sidecar.lock
COPY orchestrator/__init__.py orchestrator/errors.py orchestrator/sdk.py orchestrator/keys.py \
     /opt/orchestrator/lib/orchestrator/
COPY orchestrator/sidecar/ /opt/orchestrator/lib/orchestrator/sidecar/
# PYTHONDONTWRITEBYTECODE keeps the container from writing .pyc files, so they
# are compiled here once; without them each start compiles the package again.
RUN python3 -m compileall -q /opt/orchestrator/lib
ENV PATH=/opt/orchestrator/venv/bin:$PATH PYTHONPATH=/opt/orchestrator/lib
EXPOSE 8080
USER 65534:65534
CMD ["python", "-m", "orchestrator.sidecar"]

FROM ${BASE_IMAGE} AS runner
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/orchestrator/src
COPY pyproject.toml README.md ./
COPY orchestrator/ orchestrator/
COPY images/ images/
RUN python3 -m venv /opt/orchestrator/venv \
    && /opt/orchestrator/venv/bin/pip install --no-cache-dir .
ENV PATH=/opt/orchestrator/venv/bin:$PATH
EXPOSE 8400
CMD ["orch", "runner", "serve"]
