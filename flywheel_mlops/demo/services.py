"""The story's two servers, started as the processes a cluster would run as pods."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flywheel_mlops.processes import free_port, running_server


@dataclass(frozen=True)
class Endpoints:
    """Where the running servers answer."""

    predictor: str
    prediction_service: str


@contextlib.contextmanager
def running_services(
    registry: str, database_url: str, model: str, logs: Path, poll_seconds: float = 0.5
) -> Iterator[Endpoints]:
    """Start the prediction service, then the predictor logging its traffic to it; stop both."""
    flywheel = [sys.executable, "-m", "flywheel_mlops.cli"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    service_port, predictor_port = free_port(), free_port()
    service = f"http://127.0.0.1:{service_port}"
    predictor = f"http://127.0.0.1:{predictor_port}"
    with (
        running_server(
            [
                *flywheel,
                "prediction-service",
                "--host",
                "127.0.0.1",
                "--port",
                str(service_port),
                "--database-url",
                database_url,
            ],
            logs / "prediction-service.log",
            service,
            "/readyz",
            env=env,
            seconds=60,
        ),
        running_server(
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
                f"{service}/v1/events",
            ],
            logs / "predictor.log",
            predictor,
            f"/v2/models/{model}/ready",
            env=env,
        ),
    ):
        yield Endpoints(predictor, service)
