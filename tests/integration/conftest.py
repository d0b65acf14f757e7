"""Fixtures for the integration tests: a trained registry, real server processes, a KFP API."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn

from flywheel_mlops.processes import ServerProcess, free_port, start_server
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import Bundle, load_bundle
from flywheel_mlops.testing.quick_train import train_in_process
from tests.integration.kfp_standin import create_standin

MODEL = "pickup-eta"
MAX_BATCH = 2000
STARTUP_SECONDS = 90.0


RunningServer = ServerProcess


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without FLYWHEEL_* settings, unbuffered, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | (extra or {})


def launch(
    command: list[str],
    log_path: Path,
    port: int,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ServerProcess:
    """Start `command` (a server on `port`) and wait until it answers /v2/health/live."""
    return start_server(
        command,
        log_path,
        f"http://127.0.0.1:{port}",
        "/v2/health/live",
        env=clean_env(env),
        cwd=cwd or log_path.parent,
        seconds=STARTUP_SECONDS,
    )


def predictor_command(port: int, *args: str) -> list[str]:
    """`python -m flywheel_inference` on 127.0.0.1:`port` with `args`."""
    return [
        sys.executable,
        "-m",
        "flywheel_inference",
        "--model_name",
        MODEL,
        "--host",
        "127.0.0.1",
        "--http_port",
        str(port),
        *args,
    ]


ServerFactory = Callable[..., RunningServer]


@pytest.fixture
def start_predictor(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start predictor processes for one test; every one is stopped at teardown."""
    started: list[RunningServer] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunningServer:
        port = free_port()
        server = launch(predictor_command(port, *args), tmp_path / f"server-{port}.log", port, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two trained versions of pickup-eta; the champion is v0001.

    Read-only for tests: a test that moves the alias copies it first.
    """
    root = tmp_path_factory.mktemp("registry")
    train_in_process(str(root), rows=3000, seed=7)
    train_in_process(str(root), rows=3000, seed=8)
    Registry(str(root)).set_alias(MODEL, "v0001", reason="test setup")
    return root


@pytest.fixture(scope="session")
def bundle_dir(trained_registry: Path) -> Path:
    """The v0001 bundle folder (what KServe would mount at /mnt/models)."""
    return Registry(str(trained_registry)).fetch(MODEL, "v0001")


@pytest.fixture(scope="session")
def bundle(bundle_dir: Path) -> Bundle:
    """The v0001 bundle loaded in this process, to compare the server's answers with."""
    return load_bundle(bundle_dir)


@pytest.fixture(scope="session")
def reference_rows(bundle: Bundle) -> pd.DataFrame:
    """200 clean input records from the bundle's reference sample."""
    return bundle.reference()[bundle.schema.names].head(200).reset_index(drop=True)


@pytest.fixture(scope="session")
def predictor(
    bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One predictor on the v0001 model dir, shared by the read-only tests."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("predictor") / "server.log"
    server = launch(
        predictor_command(
            port,
            "--model_dir",
            str(bundle_dir),
            "--max_batch",
            str(MAX_BATCH),
            "--max_body_bytes",
            str(2 * 1024 * 1024),
        ),
        log_path,
        port,
    )
    try:
        response = httpx.get(f"{server.url}/v2/models/{MODEL}/ready", timeout=5)
        assert response.status_code == 200, server.log_path.read_text()[-3000:]
        yield server
    finally:
        server.stop()


@pytest.fixture
def kfp_api() -> Iterator[tuple[str, dict[str, Any]]]:
    app, state = create_standin()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
