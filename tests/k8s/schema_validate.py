"""Validate rendered Kubernetes objects against Kubernetes' and custom resources' schemas.

Runs under the tools interpreter (`.tools/bin/python`, where `scripts/install-k8s-tools.sh`
installs `kubernetes-validate`, which ships the upstream OpenAPI-derived JSON schemas of every
Kubernetes minor version). Built-in kinds are validated strictly (unknown fields rejected)
against each `--kube-version`; a custom resource is validated against the JSON schema given
with `--crd KIND=FILE`; a kind with neither is an error, never a silent pass.

    python schema_validate.py --kube-version 1.30.0 --crd InferenceService=isvc.json a.yaml ...

Prints one line per failure and exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

# kubernetes-validate re-reads the large _definitions.json for every object; cache it.
kv_utils.schema_contents = cache(kv_utils.schema_contents)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", action="append", required=True)
    parser.add_argument("--crd", action="append", default=[], metavar="KIND=SCHEMA.json")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)

    crd_validators = {}
    for item in args.crd:
        kind, _, schema_file = item.partition("=")
        schema = json.loads(Path(schema_file).read_text(encoding="utf-8"))
        crd_validators[kind] = jsonschema.Draft202012Validator(schema)

    failures = checked = 0
    for path in args.files:
        for doc in _documents(path):
            where = f"{path.name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            checked += 1
            if doc.get("kind") in crd_validators:
                for error in crd_validators[doc["kind"]].iter_errors(doc):
                    failures += 1
                    print(f"FAIL {where}: {'.'.join(map(str, error.path))}: {error.message}")
                continue
            for version in args.kube_version:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    failures += 1
                    path_ = ".".join(map(str, error.path))
                    print(f"FAIL {where} (Kubernetes {version}): {path_}: {error.message}")
                except kubernetes_validate.SchemaNotFoundError as error:
                    failures += 1
                    print(f"FAIL {where}: {error.message}")
    print(f"{checked} objects checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
