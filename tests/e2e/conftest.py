"""Fixtures for tests/e2e: the real API server with the InferenceService CRD installed.

The `e2e` marker is registered here, not in pyproject.toml. These tests need what
scripts/e2e/*.sh build, so they run only when selected (`pytest -m e2e tests/e2e`, after
`bash scripts/e2e/prepare.sh`); a plain `pytest` (`make test`) skips them. Selected, a missing
binary skips them on a developer machine and fails them under CI (`CI` set), like tests/k8s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.apiserver import APISERVER, ApiServer, running_apiserver
from tests.e2e.kserve_crd import inferenceservice_crd
from tests.k8s import conftest as k8s

# The chart's renderings come from tests/k8s, whose conftest pytest loads only for that folder:
# `pytest -m e2e tests/e2e` (make e2e) reaches them through these names.
render_dir = k8s.render_dir
chart_renderings = k8s.chart_renderings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs against what scripts/e2e/*.sh build (images, the real API server)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "e2e" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="e2e: selected only by `-m e2e` (scripts/e2e/prepare.sh first)")
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """etcd and the apiextensions-apiserver on loopback for the whole session."""
    if not APISERVER.is_file():
        message = f"{APISERVER} is missing: run `bash scripts/e2e/apiserver.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


@pytest.fixture(scope="session")
def kube_client(apiserver: ApiServer) -> Any:
    """The Kubernetes client the monitor uses in production, pointed at the server, with the
    InferenceService CRD created and established."""
    from kubernetes import client

    api_client = client.ApiClient(apiserver.configuration())
    extensions = client.ApiextensionsV1Api(api_client)
    crd = inferenceservice_crd()
    extensions.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
        if any(c.type == "Established" and c.status == "True" for c in status.conditions or []):
            return api_client
        time.sleep(0.2)
    pytest.fail(f"the InferenceService CRD was not established in 30 s: {status}")
