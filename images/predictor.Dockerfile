# syntax=docker/dockerfile:1.7
# The predictor image: Flywheel's KServe model server (`python -m flywheel_inference`), run as
# the `kserve-container` of the InferenceService.
#
# Build from the repository root:
#   docker buildx build -f images/predictor.Dockerfile -t flywheel-predictor:dev .

# python:3.11-slim-bookworm (CPython 3.11.16), multi-arch index digest resolved 2026-09.
# Bump tag and digest together (Dependabot's "images" ecosystem does both).
# The same reference is written in both FROM lines (no ARG) so scanners can read it.

# ---- build: resolve and build every wheel once, then install them into a venv -------------
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# The `s3` extra lets the predictor read its bundle straight from object storage
# (`--model_dir=s3://...`), so no storage-initializer init container is needed.
# No compiler in either stage: every dependency but one pure-Python sdist has a manylinux
# wheel for CPython 3.11.
# Every third-party package comes from images/requirements-predictor.lock, pinned with its hashes
# (`--require-hashes`: a file that does not match is refused). The venv's bootstrap pip (whatever
# the base's ensurepip carries) first installs the locked pip, setuptools and wheel from
# images/requirements-build.lock; without build isolation (nothing unpinned is fetched) they
# build the one locked package PyPI has only as source, kfp-server-api (pure Python; `--no-binary`
# names it, every other package must be a wheel), and then Flywheel's own wheel.
# The locks are installed before the sources are copied: a code change rebuilds from here on,
# not the ~1 GB of dependencies.
COPY images/requirements-build.lock images/requirements-predictor.lock /locks/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      -r /locks/requirements-build.lock \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      --no-binary=kfp-server-api --no-build-isolation \
      -r /locks/requirements-predictor.lock

WORKDIR /src
# Only what the distribution is built from (see .dockerignore): a change to tests or docs
# does not invalidate this layer.
COPY pyproject.toml README.md ./
COPY flywheel_mlops/ flywheel_mlops/
COPY components/ components/
COPY pipelines/ pipelines/
COPY inference/ inference/

# `pip check` proves the lock satisfies pyproject's requirements for the `s3` extra(s).
# pip and wheel leave with this last step: the runtime venv has no installer.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index /wheels/flywheel_mlops-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --yes pip wheel

# ---- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS runtime

LABEL org.opencontainers.image.title="flywheel-predictor" \
      org.opencontainers.image.description="Flywheel KServe predictor for the pickup-ETA model" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 flywheel \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin flywheel

COPY --from=build /opt/venv /opt/venv

# Read-only root filesystem in the pod: /tmp is an emptyDir mounted by the manifests.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache

WORKDIR /tmp
USER 10001:10001

# KServe's HTTP (REST V1 and V2) and gRPC ports.
EXPOSE 8080 8081

# Kubernetes ignores Docker health checks; the InferenceService probes
# /v2/health/live and /v2/models/<name>/ready.
HEALTHCHECK NONE

# KServe's own arguments follow, e.g. --model_name=pickup-eta --model_dir=s3://bucket/path
ENTRYPOINT ["python", "-m", "flywheel_inference"]
