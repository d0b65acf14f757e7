"""Fixtures for tests/k8s: find the tools, render the chart and the overlays once per session.

Tools are looked up in `<repo>/.tools/bin` first (what `bash scripts/install-k8s-tools.sh`
installs, pinned), then on PATH. A missing tool skips its tests on a developer machine and
fails them under CI (`CI` set), so `make test` can never pass without the real checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "flywheel"
OVERLAYS = REPO / "manifests" / "overlays"
TOOLS_BIN = REPO / ".tools" / "bin"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
OVERLAY_NAMES = sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())
RELEASE, NAMESPACE = "flywheel", "flywheel"


def find_tool(name: str) -> str:
    """Path of a tool from .tools/bin or PATH; skip (or fail under CI) when it is missing."""
    candidate = TOOLS_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found in {TOOLS_BIN} or PATH: run `bash scripts/install-k8s-tools.sh`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(
    args: list[str], *, cwd: Path = REPO, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run a tool and return the finished process (never raises on a non-zero exit)."""
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass(frozen=True)
class Rendering:
    """One rendered install: the YAML file on disk and its parsed objects."""

    name: str
    path: Path
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind}, found {len(found)}"
        return found[0]


def _parse(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def render_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rendered")


@pytest.fixture(scope="session")
def chart_renderings(render_dir: Path) -> dict[str, Rendering]:
    """`helm template` of every ci/*-values.yaml scenario, keyed by scenario name."""
    helm = find_tool("helm")
    renderings = {}
    for values in SCENARIOS:
        name = values.name.removesuffix("-values.yaml")
        result = run(
            [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(values)]
        )
        assert result.returncode == 0, f"helm template failed for {name}:\n{result.stderr}"
        path = render_dir / f"chart-{name}.yaml"
        path.write_text(result.stdout, encoding="utf-8")
        renderings[name] = Rendering(f"chart/{name}", path, _parse(result.stdout))
    return renderings


@pytest.fixture(scope="session")
def overlay_renderings(render_dir: Path) -> dict[str, Rendering]:
    """`kubectl kustomize` of every overlay, keyed by overlay name."""
    kubectl = find_tool("kubectl")
    renderings = {}
    for name in OVERLAY_NAMES:
        result = run([kubectl, "kustomize", str(OVERLAYS / name)])
        assert result.returncode == 0, f"kustomize failed for {name}:\n{result.stderr}"
        path = render_dir / f"overlay-{name}.yaml"
        path.write_text(result.stdout, encoding="utf-8")
        renderings[name] = Rendering(f"overlay/{name}", path, _parse(result.stdout))
    return renderings


@pytest.fixture(scope="session")
def all_renderings(
    chart_renderings: dict[str, Rendering], overlay_renderings: dict[str, Rendering]
) -> list[Rendering]:
    return [*chart_renderings.values(), *overlay_renderings.values()]


@pytest.fixture(scope="session")
def helm_template(render_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Render the chart with extra values given as a dict; returns the finished process."""
    helm = find_tool("helm")
    counter = iter(range(10_000))

    def _template(values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        values_file = render_dir / f"extra-{next(counter)}.yaml"
        values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
        return run(
            [
                helm,
                "template",
                RELEASE,
                str(CHART),
                "--namespace",
                NAMESPACE,
                "-f",
                str(values_file),
            ]
        )

    return _template
