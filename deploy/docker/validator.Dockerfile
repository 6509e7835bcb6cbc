# syntax=docker/dockerfile:1
# Tributary validator: `python -m validator serve`. Build context: the repository root
#   docker build -f deploy/docker/validator.Dockerfile -t tributary/validator .
ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: locked third-party dependencies, then our packages without deps
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
COPY services/validator/ services/validator/
# Build our own packages with the locked setuptools when it can build wheels by itself
# (>= 70.1); otherwise pip's isolated build fetches setuptools from the index.
RUN set -eux; \
    isolation="--no-build-isolation"; \
    python -c 'import setuptools, sys; v = tuple(int(p) for p in setuptools.__version__.split(".")[:2]); sys.exit(v < (70, 1))' \
        || isolation=""; \
    pip install --no-deps $isolation ./contracts ./libs/runtime ./libs/cli ./services/validator

# ---- runtime
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRIBUTARY_HTTP_HOST=0.0.0.0 \
    TRIBUTARY_HTTP_PORT=8002
RUN groupadd --system --gid 10001 tributary \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin tributary
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Numeric so that Kubernetes' runAsNonRoot can verify it (the user is `tributary`).
USER 10001:10001
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('TRIBUTARY_HTTP_PORT', '8002'), timeout=4)"]
CMD ["python", "-m", "validator", "serve"]
