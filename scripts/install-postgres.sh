#!/usr/bin/env bash
# Install Debian's PostgreSQL server for the tests (they start their own throw-away server).
# Idempotent: does nothing when an initdb is already under /usr/lib/postgresql/*/bin.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
  echo "postgresql already installed: $(ls -d /usr/lib/postgresql/*/bin/initdb | tail -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends postgresql
# Debian starts a cluster on port 5432 on install; the tests do not use it.
echo "installed: $(ls -d /usr/lib/postgresql/*/bin/initdb | tail -n 1)"
