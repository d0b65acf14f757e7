"""Fixtures for the predictor's integration tests: a trained registry and real server processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from flywheel_mlops.bundle import Bundle, load_bundle
from flywheel_mlops.registry import Registry
from flywheel_mlops.serving.quick_train import train_in_process

MODEL = "pickup-eta"
MAX_BATCH = 2000
STARTUP_SECONDS = 90.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A predictor process on loopback and the file its logs go to."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL if it will not go; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def _clean_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | (extra or {})


def launch(
    command: list[str],
    log_path: Path,
    port: int,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunningServer:
    """Start `command` (a server on `port`) and wait until it answers /v2/health/live."""
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=_clean_env(env),
        cwd=cwd or log_path.parent,
    )
    log_file.close()
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n"
                f"{log_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            if httpx.get(f"{server.url}/v2/health/live", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(
        f"server not live after {STARTUP_SECONDS}s:\n{log_path.read_text(errors='replace')[-4000:]}"
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
