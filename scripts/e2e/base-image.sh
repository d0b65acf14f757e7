#!/usr/bin/env bash
# Make localhost/flywheel-base:py311-bookworm, the local stand-in for python:3.11-slim-bookworm
# (no Docker Hub here): a minimal Debian bookworm root filesystem from the mirror apt already
# uses, imported into podman. build-images.sh substitutes it for the Dockerfiles' FROM.
# Skipped when the image exists; FORCE=1 rebuilds it.
#
# Needs: scripts/e2e/install.sh run first (mmdebstrap, podman and our configuration), root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# What the Dockerfiles need from their base: python3 with venv (ensurepip bootstraps the
# venv's pip, which the build stage upgrades from images/requirements-build.lock), CA
# certificates, and groupadd/useradd (passwd) for the runtime stage's non-root user.
packages=python3,python3-venv,ca-certificates,passwd

build_base() {
  # Like Debian's slim images: no manuals, docs (copyrights kept) or translations.
  mmdebstrap --quiet --variant=minbase --include="${packages}" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm - "$(debian_mirror)" \
    | podman import --quiet \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --message "mmdebstrap minbase bookworm + ${packages}" \
      - "${E2E_BASE_IMAGE}" > /dev/null
}

if [[ "${FORCE:-0}" != "1" ]] && podman image exists "${E2E_BASE_IMAGE}"; then
  timeline "base image ${E2E_BASE_IMAGE} already present"
else
  phase "base image ${E2E_BASE_IMAGE}" build_base
fi
podman run --rm "${E2E_BASE_IMAGE}" python3 --version
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "${E2E_BASE_IMAGE}"
