"""Fixtures for the prediction log's tests: real PostgreSQL servers, the service on uvicorn.

tests/conftest.py registers this module as a plugin: tests name its fixtures as parameters.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from flywheel_mlops.edge.limits import uvicorn_options
from flywheel_mlops.predictions.service import ServiceSettings, create_app
from flywheel_mlops.processes import free_port
from tests.postgres import PostgresServer, find_bin_dir

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_bin() -> Path:
    """PostgreSQL's bin folder; skips without it, but fails when CI is set (CI must run them)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found; run scripts/install-postgres.sh"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: PostgreSQL tests must run)")
        pytest.skip(message)
    return bin_dir


@pytest.fixture(scope="session")
def postgres_server(postgres_bin: Path) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, on a free loopback port; removed at the end."""
    server = PostgresServer(postgres_bin)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server, as a SQLAlchemy URL."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def own_postgres(postgres_bin: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server for one test that stops and restarts it (database `flywheel`)."""
    server = PostgresServer(postgres_bin)
    try:
        server.start()
        server.create_database("flywheel")
        yield server
    finally:
        server.remove()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty prediction log: SQLite under tmp_path, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'predictions.sqlite'}"


class ServiceThread:
    """The prediction service on uvicorn in a thread, on 127.0.0.1:`port`."""

    def __init__(self, settings: ServiceSettings):
        """Build the app and the server; `start()` runs it."""
        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
                **uvicorn_options(settings.edge_limits()),
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, name=f"service-{self.port}", daemon=True
        )

    def start(self, timeout: float = 20.0) -> None:
        """Run the server and wait until /healthz answers."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"prediction service on {self.url} did not start")

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(30)


ServiceFactory = Callable[..., ServiceThread]


@pytest.fixture
def start_service() -> Iterator[ServiceFactory]:
    """Start prediction services for one test: `start_service(database_url=..., **settings)`."""
    started: list[ServiceThread] = []

    def start(**settings: object) -> ServiceThread:
        service = ServiceThread(ServiceSettings(**settings))  # type: ignore[arg-type]
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        service.stop()
