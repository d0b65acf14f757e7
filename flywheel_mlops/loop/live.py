"""A live replay: the predictor and the prediction service as the processes a cluster runs as
pods, on loopback; the replay's traffic goes through them over HTTP as a client's would."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from flywheel_mlops.errors import FlywheelError, InvalidInputError
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.processes import free_port, running_server
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.serving.client import PredictionClient
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.spec import DatasetSpec


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


class LiveServing:
    """Serves a window through the running predictor, `batch_size` records to a request, posts
    the outcomes to the prediction service's feedback API, and waits until the log holds every
    answered row with its label: the servers work asynchronously, as on a cluster, so the
    replay waits for the state it needs, never for a fixed time."""

    def __init__(
        self,
        endpoints: Endpoints,
        store: PredictionStore,
        registry: Registry,
        spec: DatasetSpec,
        batch_size: int = 20,
    ):
        self.endpoints, self.store, self.registry = endpoints, store, registry
        self.spec, self.batch_size = spec, batch_size
        self.client = PredictionClient(endpoints.predictor, spec.name)
        self.feedback = httpx.Client(base_url=endpoints.prediction_service, timeout=30)
        self.logged = 0

    def close(self) -> None:
        self.client.close()
        self.feedback.close()

    def serve(
        self, rows: pd.DataFrame, stamps: pd.Series, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's prediction (NaN: refused with a 4xx) and the version that answered it."""
        self._follow_registry()
        predictions = np.full(len(rows), np.nan)
        versions = np.full(len(rows), None, dtype=object)
        records = frame_to_records(rows[self.spec.feature_columns])
        actual = rows[self.spec.target].to_numpy(dtype=np.float64)
        items: list[dict[str, Any]] = []
        for offset in range(0, len(rows), self.batch_size):
            # A request id of our own: the canary's share is chosen by hashing it, so the same
            # requests go to the same version on every run.
            request_id = f"{start:%Y%m%dT%H%M}-{offset // self.batch_size:05d}"
            part = slice(offset, offset + self.batch_size)
            try:
                answer = self.client.predict(records[part], request_id=request_id)
            except InvalidInputError:
                continue  # the app's 4xx, logged by the server as refused
            predictions[part] = answer.minutes
            versions[part] = answer.model_version
            items += [
                {"request_id": answer.request_id, "row": row, "actual": float(value)}
                for row, value in enumerate(actual[part])
            ]
        self.logged += len(items)
        self._post_feedback(items)
        self._wait_for_log(start, end, len(items))
        return predictions, versions

    def _post_feedback(self, items: list[dict[str, Any]]) -> None:
        for offset in range(0, len(items), 500):
            response = self.feedback.post(
                "/v1/feedback", json={"items": items[offset : offset + 500]}
            )
            if response.status_code >= 300 and response.status_code != 202:
                raise FlywheelError(f"feedback was refused: {response.status_code} {response.text}")

    def _wait_for_log(self, start: datetime, end: datetime, labelled: int) -> None:
        """The predictor logs asynchronously (as KServe's logger agent does) and feedback is
        stored asynchronously (202): wait until every answered row of the window is in the log
        with its outcome joined."""
        _wait_until(
            lambda: self.store.counts()["predictions"] >= self.logged,
            60,
            lambda: f"the log holds {self.store.counts()['predictions']} of {self.logged} rows",
        )
        _wait_until(
            lambda: self.store.labelled_count(start, end) >= labelled,
            60,
            lambda: f"{self.store.labelled_count(start, end)} of {labelled} outcomes joined",
        )

    def _follow_registry(self, seconds: float = 120) -> None:
        """Wait until the predictor serves what the registry says (its champion, and the canary
        or none), read from its /metrics: a window's requests all meet the same versions,
        however long the predictor takes to load a bundle on a busy machine."""
        model = self.spec.name
        canary = self.registry.alias(model, Alias.CANARY)
        wanted = (self.registry.resolve(model, Alias.CHAMPION), canary.version if canary else None)
        _wait_until(
            lambda: served_versions(self.endpoints.predictor, model) == wanted,
            seconds,
            lambda: (
                f"the predictor serves {served_versions(self.endpoints.predictor, model)} "
                f"(champion, canary), the registry says {wanted}"
            ),
        )


def served_versions(predictor: str, model: str) -> tuple[str | None, str | None]:
    """(champion, canary) versions the predictor reports serving in its Prometheus metrics."""
    champion = canary = None
    text = httpx.get(f"{predictor}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name") != model:
                continue
            if sample.name == "flywheel_model_info":
                champion = sample.labels.get("version")
            elif sample.name == "flywheel_canary_percent" and sample.value > 0:
                canary = sample.labels.get("version")
    return champion, canary


def _wait_until(done: Callable[[], object], seconds: float, what: Callable[[], str]) -> None:
    """Poll `done` until it is true; after `seconds`, a FlywheelError saying `what()` is seen."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise FlywheelError(f"after {seconds:.0f} s {what()}")
        time.sleep(0.1)
