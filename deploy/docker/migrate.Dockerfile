# syntax=docker/dockerfile:1
# Tributary migrate: one-shot `tributary migrate` (every service's alembic migrations,
# each in its own schema). Needs all four service packages, for their migrations.
#   docker build -f deploy/docker/migrate.Dockerfile -t tributary/migrate .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY contracts/ contracts/
COPY libs/runtime/ libs/runtime/
COPY libs/cli/ libs/cli/
COPY services/ingest/ services/ingest/
COPY services/validator/ services/validator/
COPY services/enricher/ services/enricher/
COPY services/flow-state/ services/flow-state/
# See ingest.Dockerfile: locked setuptools (>= 70.1) builds without an isolated env.
RUN set -eux; \
    isolation="--no-build-isolation"; \
    python -c 'import setuptools, sys; v = tuple(int(p) for p in setuptools.__version__.split(".")[:2]); sys.exit(v < (70, 1))' \
        || isolation=""; \
    pip install --no-deps $isolation ./contracts ./libs/runtime ./libs/cli \
        ./services/ingest ./services/validator ./services/enricher ./services/flow-state

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 tributary \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin tributary
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
# One-shot job: it exits when the migrations are applied; nothing to probe.
HEALTHCHECK NONE
CMD ["tributary", "migrate"]
