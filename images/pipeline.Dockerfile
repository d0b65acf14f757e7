# syntax=docker/dockerfile:1.7
# The pipeline image: every KFP component step, the monitor CronJob (`flywheel monitor`) and the
# prediction service (`flywheel prediction-service`). One image because they share one
# distribution (`flywheel-mlops`) and its extras for PostgreSQL and S3-compatible storage.
#
# Build from the repository root:
#   docker buildx build -f images/pipeline.Dockerfile -t flywheel-pipeline:dev .

# python:3.11-slim-bookworm (CPython 3.11.16), multi-arch index digest resolved 2026-09.
# Bump tag and digest together (Dependabot's "images" ecosystem does both).
# The same reference is written in both FROM lines (no ARG) so scanners can read it.

# ---- build: resolve and build every wheel once, then install them into a venv -------------
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# No compiler is installed in either stage: every dependency but one pure-Python sdist ships
# a manylinux wheel for CPython 3.11; a dependency that needed a compiler would fail this step.
# Every third-party package comes from images/requirements-pipeline.lock, pinned with its hashes
# (`--require-hashes`: a file that does not match is refused). The venv's bootstrap pip (whatever
# the base's ensurepip carries) first installs the locked pip, setuptools and wheel from
# images/requirements-build.lock; without build isolation (nothing unpinned is fetched) they
# build the one locked package PyPI has only as source, kfp-server-api (pure Python; `--no-binary`
# names it, every other package must be a wheel), and then Flywheel's own wheel.
# The locks are installed before the sources are copied: a code change rebuilds from here on,
# not the ~1 GB of dependencies.
COPY images/requirements-build.lock images/requirements-pipeline.lock /locks/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      -r /locks/requirements-build.lock \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      --no-binary=kfp-server-api --no-build-isolation \
      -r /locks/requirements-pipeline.lock

WORKDIR /src
# Only what the distribution is built from (see .dockerignore): a change to tests or docs
# does not invalidate this layer.
COPY pyproject.toml README.md ./
COPY flywheel_mlops/ flywheel_mlops/
COPY components/ components/
COPY pipelines/ pipelines/
COPY inference/ inference/

# `pip check` proves the lock satisfies pyproject's requirements for the `postgres,s3` extra(s).
# pip and wheel leave with this last step: the runtime venv has no installer.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index /wheels/flywheel_mlops-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --yes pip wheel

# ---- runtime: the venv and nothing else from the build stage -----------------------------
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS runtime

LABEL org.opencontainers.image.title="flywheel-pipeline" \
      org.opencontainers.image.description="Flywheel KFP components, monitor job and prediction service" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID/GID >= 10000 so `runAsNonRoot` can be verified by the kubelet and
# never collides with a host account.
RUN groupadd --system --gid 10001 flywheel \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin flywheel

COPY --from=build /opt/venv /opt/venv

# Pods run with a read-only root filesystem: everything writable goes to /tmp, which the
# manifests mount as an emptyDir.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache

WORKDIR /tmp
USER 10001:10001

# Kubernetes ignores Docker health checks; liveness/readiness probes live in the manifests.
HEALTHCHECK NONE

# KFP replaces the command for component steps; the CronJob and the Deployment set theirs.
CMD ["flywheel", "--help"]
