# syntax=docker/dockerfile:1
# The perfguard operator image: `perfguard run`, as uid 65532, ready for a read-only root
# filesystem (bytecode compiled at build time; /tmp is the chart's emptyDir).
# Matches charts/perfguard's defaults (user, port, command); tests/e2e/test_chart.py checks it.
# Pin by digest in CI too (python:3.11.13-slim-bookworm@sha256:...) and let Renovate bump it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/perfguard
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/perfguard/bin/pip install . \
    && /opt/perfguard/bin/python -m compileall -q /opt/perfguard

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="perfguard" \
      org.opencontainers.image.description="Kubernetes operator guarding production performance" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/perfguard /opt/perfguard
ENV PATH=/opt/perfguard/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PERFGUARD_HTTP_PORT=8080 \
    PERFGUARD_LOG_JSON=true
# distroless' "nonroot" uid/gid; no home, no shell login, nothing owned in the image.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["perfguard", "run"]
