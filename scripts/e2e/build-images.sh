#!/usr/bin/env bash
# Build images/predictor.Dockerfile and images/pipeline.Dockerfile with podman, FROM lines
# unchanged: `--build-context "<FROM reference>=container-image://..."` substitutes the local
# base (base-image.sh) for python:3.11-slim-bookworm at build time. Then check each runtime
# image: its size, and that no compiler, pip or shell history is in it.
# Idempotent: podman's layer cache makes a rebuild of unchanged sources take seconds.
#
#   bash scripts/e2e/build-images.sh [predictor|pipeline ...]   # default: both
#
# Needs: install.sh and base-image.sh run first; PyPI reachable (the locks are downloaded).
# Makes: localhost/flywheel-<image>:e2e
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

images=("$@")
((${#images[@]})) || images=(predictor pipeline)

# Downloads here go through a TLS-intercepting proxy: RUN steps see the host's CA bundle bind-
# mounted read-only over the image's own (both bases have that file, so no mount point is left
# in a layer and the image keeps Debian's bundle). pip trusts it: Debian's ensurepip pip is
# patched to read it, and the locked pip (>= 24.2) reads the system store through truststore.
host_ca=/etc/ssl/certs/ca-certificates.crt

build() {
  local image="$1" dockerfile="${E2E_REPO}/images/$1.Dockerfile" contexts=()
  # Every distinct base reference in the Dockerfile's FROM lines (stages by name are skipped).
  while read -r reference; do
    contexts+=(--build-context "${reference}=container-image://${E2E_BASE_IMAGE}")
  done < <(awk 'toupper($1) == "FROM" && $2 ~ /[:@\/]/ { print $2 }' "${dockerfile}" | sort -u)
  podman build --quiet --pull=never --file "${dockerfile}" --tag "localhost/flywheel-${image}:e2e" \
    "${contexts[@]}" \
    --volume "${host_ca}:/etc/ssl/certs/ca-certificates.crt:ro" \
    "${E2E_REPO}" > /dev/null
}

# What the runtime stage must not contain, checked inside the image as its own user.
check() {
  podman run --rm --entrypoint python3 "localhost/flywheel-$1:e2e" -c '
import importlib.util, os, shutil, sys
def history_files():
    for root, dirs, files in os.walk("/"):  # symlinks not followed; kernel filesystems skipped
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        yield from (os.path.join(root, f) for f in files if f.endswith("history"))
found = {
    "compiler": [c for c in ("cc", "gcc", "g++", "c++", "clang", "make", "ld") if shutil.which(c)],
    "pip": [p for p in ("pip", "pip3") if shutil.which(p)]
    + (["pip module"] if importlib.util.find_spec("pip") else []),
    "shell history": list(history_files()),
    "pip configuration": [f for f in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf") if os.path.exists(f)],
}
print(f"  runs as {os.getuid()}:{os.getgid()}, python {sys.version.split()[0]}; found "
      + ", ".join(f"{k}: {v or None}" for k, v in found.items()))
sys.exit(1 if any(found.values()) else 0)'
}

for image in "${images[@]}"; do
  phase "build image flywheel-${image}" build "${image}"
  timeline "flywheel-${image}: $(podman image inspect --format '{{.Size}}' "localhost/flywheel-${image}:e2e" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }')"
  check "${image}"
done
