# Sourced by every scripts/e2e/*.sh, and by a developer's shell to use the same podman:
#   source scripts/e2e/env.sh && podman images
# Everything the e2e installs, builds or caches lives under .e2e/ (git-ignored) of this
# checkout, and podman reads our containers.conf/storage.conf instead of /etc/containers, so a
# test run's images and containers stay apart from anything else on the machine.
# Sourcing has no side effect besides these variables and functions.

E2E_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E_DIR="${E2E_DIR:-${E2E_REPO}/.e2e}"
export E2E_REPO E2E_DIR
export CONTAINERS_CONF="${E2E_DIR}/containers/containers.conf"
export CONTAINERS_STORAGE_CONF="${E2E_DIR}/containers/storage.conf"
# The stand-in for python:3.11-slim-bookworm that base-image.sh makes (no Docker Hub here).
export E2E_BASE_IMAGE="localhost/flywheel-base:py311-bookworm"

# A timeline: seconds since the first script of this run started (E2E_T0 is inherited).
E2E_T0="${E2E_T0:-${EPOCHREALTIME}}"
export E2E_T0

since() { awk -v now="${EPOCHREALTIME}" -v start="$1" 'BEGIN { printf "%.1f", now - start }'; }
timeline() { printf '[e2e %7ss] %s\n' "$(since "${E2E_T0}")" "$*"; }

# `phase NAME command...`: run a command and print its wall time on the timeline.
phase() {
  local name="$1" start="${EPOCHREALTIME}"
  shift
  timeline "${name}: start"
  "$@"
  timeline "${name}: done in $(since "${start}") s"
}

# The Debian mirror this machine's apt already uses (the first URIs/deb line), so no mirror
# host is written in this repository.
debian_mirror() {
  local uri
  uri="$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -v -- '-security' | head -n1)"
  if [[ -z "${uri}" ]]; then
    uri="$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+' \
      /etc/apt/sources.list 2>/dev/null | awk '{print $NF}' | grep -v -- '-security' | head -n1)"
  fi
  [[ -n "${uri}" ]] || { echo "error: no Debian mirror found in /etc/apt/sources.list*" >&2; return 1; }
  printf '%s\n' "${uri}"
}
