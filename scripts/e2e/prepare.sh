#!/usr/bin/env bash
# Everything the e2e tests need, in order, each step skipped or cached when already done:
# packages and podman configuration, the local base image, both images, the API server binary,
# and the chart tools tests/k8s uses to render the chart. Then:
#   .venv/bin/python -m pytest -m e2e tests/e2e
#
# Needs: Debian 12, root, PyPI and the Debian mirror reachable, ~6 GB free disk; a fresh
# machine of this kind takes ~25 min (see the timeline this prints), a prepared one seconds.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "${here}/env.sh"

bash "${here}/install.sh"
bash "${here}/base-image.sh"
bash "${here}/build-images.sh"
bash "${here}/apiserver.sh"
k8s_tools() { bash "${E2E_REPO}/scripts/install-k8s-tools.sh" > /dev/null; }
phase "chart tools (helm, kubectl; scripts/install-k8s-tools.sh)" k8s_tools
timeline "e2e prerequisites ready"
