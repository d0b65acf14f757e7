"""The story's two servers, started as the processes a cluster would run as pods."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from flywheel_mlops.errors import FlywheelError


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Endpoints:
    """Where the running servers answer."""

    predictor: str
    monitoring: str


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FlywheelError(f"{url} exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.25)
    raise FlywheelError(f"{url} was not ready after {seconds:.0f} s; see {log}")


@contextlib.contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # graceful: both servers drain in-flight work
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def running_services(
    registry: str, database_url: str, model: str, logs: Path, poll_seconds: float = 0.5
) -> Iterator[Endpoints]:
    """Start the monitoring service, then the predictor logging its traffic to it; stop both."""
    flywheel = [sys.executable, "-m", "flywheel_mlops.cli"]
    monitoring_port, predictor_port = free_port(), free_port()
    monitoring = f"http://127.0.0.1:{monitoring_port}"
    predictor = f"http://127.0.0.1:{predictor_port}"
    with _process(
        [
            *flywheel,
            "monitoring-service",
            "--host",
            "127.0.0.1",
            "--port",
            str(monitoring_port),
            "--database-url",
            database_url,
        ],
        logs / "monitoring-service.log",
    ) as service:
        _wait_ready(f"{monitoring}/readyz", service, logs / "monitoring-service.log", 60)
        with _process(
            [
                *flywheel,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(predictor_port),
                "--registry",
                registry,
                "--name",
                model,
                "--watch-interval",
                str(poll_seconds),
                "--logger-url",
                f"{monitoring}/v1/events",
            ],
            logs / "predictor.log",
        ) as server:
            _wait_ready(f"{predictor}/v2/models/{model}/ready", server, logs / "predictor.log", 90)
            yield Endpoints(predictor, monitoring)
