"""A `helm` command for machines without the Helm binary, backed by Helm's Go SDK.

`scripts/install-k8s-tools.sh` installs `helm-python-sdk` (Helm v4's own Go library behind a C
ABI, shipped as a PyPI wheel) and puts a `helm` wrapper calling this file on `.tools/bin`.
It answers the subset of the real CLI the tests use, with the same flags, so the tests run
unchanged against a real `helm` on PATH:

    helm version
    helm lint CHART [--strict] [-f VALUES]... [--namespace NS] [--kube-version V]
    helm template NAME CHART [-f VALUES]... [--namespace NS]

Values files are merged like Helm does (maps deep-merged, later files win) and checked against
the chart's values.schema.json before rendering, as `helm template` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import helm_python as helm


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base`: maps merge, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _values(files: list[str]) -> dict[str, Any]:
    """Read and merge `-f` values files in order."""
    values: dict[str, Any] = {}
    for name in files:
        values = _merge(values, helm.values_from_yaml(Path(name).read_text(encoding="utf-8")))
    return values


def _lint(args: argparse.Namespace) -> int:
    report = helm.lint(
        args.chart,
        _values(args.values),
        strict=args.strict,
        namespace=args.namespace,
        kube_version=args.kube_version,
    )
    severities = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    for message in report["messages"]:
        label = severities.get(message["severity"], "UNKNOWN")
        print(f"[{label}] {message['path']}: {message['error']}")
    failing = {2, 3} if args.strict else {3}
    failed = bool(report["errors"]) or any(m["severity"] in failing for m in report["messages"])
    print(f"1 chart(s) linted, {1 if failed else 0} chart(s) failed")
    return 1 if failed else 0


def _template(args: argparse.Namespace) -> int:
    values = _values(args.values)
    with helm.Chart.load(args.chart) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(values, name=args.name, namespace=args.namespace, is_install=True)
    for source in sorted(manifests):
        body = manifests[source].strip()
        if not body or source.endswith("NOTES.txt"):
            continue
        print(f"---\n# Source: {source}\n{body}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version")

    lint = commands.add_parser("lint")
    lint.add_argument("chart")
    lint.add_argument("--strict", action="store_true")
    lint.add_argument("-f", "--values", action="append", default=[])
    lint.add_argument("-n", "--namespace", default="default")
    lint.add_argument("--kube-version", default=None)

    template = commands.add_parser("template")
    template.add_argument("name")
    template.add_argument("chart")
    template.add_argument("-f", "--values", action="append", default=[])
    template.add_argument("-n", "--namespace", default="default")

    args = parser.parse_args(argv)
    try:
        if args.command == "version":
            print(f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})")
            return 0
        if args.command == "lint":
            return _lint(args)
        return _template(args)
    except helm.HelmError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
