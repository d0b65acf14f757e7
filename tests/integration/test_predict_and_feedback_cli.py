"""`flywheel predict` and `flywheel feedback` against the real predictor and prediction service:
the request id a prediction is answered with is the one its outcome is posted with."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from flywheel_mlops.cli import app as cli
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.testing.v2_body import json_body
from tests.integration.conftest import MODEL, RunningServer, ServerFactory

pytestmark = pytest.mark.integration


def logged_predictor(
    start_predictor: ServerFactory, start_service, bundle_dir: Path, database: str
) -> tuple[RunningServer, RunningServer]:
    """The prediction service on `database` and a predictor on `bundle_dir` logging to it."""
    service = start_service(database_url=database)
    predictor = start_predictor(
        "--model_dir", str(bundle_dir), "--logger_url", f"{service.url}/v1/events"
    )
    return service, predictor


def test_predict_answers_with_an_id_and_feedback_joins_on_it(
    start_predictor: ServerFactory, start_service, bundle_dir: Path, bundle: Bundle, tmp_path: Path
):
    database = f"sqlite:///{tmp_path / 'log.sqlite'}"
    service, predictor = logged_predictor(start_predictor, start_service, bundle_dir, database)
    rows = bundle.reference().head(3)  # inputs, the target and the prediction column
    rows.to_csv(tmp_path / "trips.csv", index=False)
    runner = CliRunner()
    predicted = runner.invoke(
        cli,
        [
            "predict", str(tmp_path / "trips.csv"), "--url", predictor.url, "--name", MODEL,
            "--inputs-only", "--request-id", "trip-batch-1", "--output", "json",
        ],
    )  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    answer = json.loads(predicted.output)
    assert [p["request_id"] for p in answer["predictions"]] == ["trip-batch-1"] * 3
    assert [p["row"] for p in answer["predictions"]] == [0, 1, 2]

    outcomes = pd.DataFrame(
        {"request_id": "trip-batch-1", "row": [1, 2], "actual": rows[bundle.spec.target][1:]}
    )
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    single = runner.invoke(
        cli, ["feedback", "trip-batch-1", str(rows[bundle.spec.target][0]), "--url", service.url]
    )
    assert single.exit_code == 0, single.output
    batch = runner.invoke(
        cli, ["feedback", "--file", str(tmp_path / "outcomes.csv"), "--url", service.url]
    )
    assert batch.exit_code == 0, batch.output

    store = PredictionStore(database)
    deadline = time.monotonic() + 20
    while store.labelled_count() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.labelled_count() == 3


def test_the_log_keys_each_prediction_to_its_event_time_through_both_protocols(
    start_predictor: ServerFactory, start_service, bundle_dir: Path, bundle: Bundle, tmp_path: Path
):
    """Requests about last year's trips, sent now, land in last year's windows (V1 and V2)."""
    database = f"sqlite:///{tmp_path / 'log.sqlite'}"
    _, predictor = logged_predictor(start_predictor, start_service, bundle_dir, database)
    timestamp = bundle.spec.timestamp
    assert timestamp is not None
    inputs = bundle.reference().head(4)[bundle.schema.names]
    inputs[timestamp] = ["2025-01-01 08:00:00", "2025-01-01 09:00:00"] * 2
    records = json.loads(inputs.to_json(orient="records"))
    with httpx.Client(base_url=predictor.url, timeout=30) as client:
        v1 = client.post(f"/v1/models/{MODEL}:predict", json={"instances": records[:2]})
        v2 = client.post(
            f"/v2/models/{MODEL}/infer",
            content=json_body(inputs.iloc[2:], bundle.schema, "v2-call"),
            headers={"content-type": "application/json"},
        )
    assert v1.status_code == 200, v1.text
    assert v2.status_code == 200, v2.text
    assert v1.json()["event_time_field"] == timestamp
    assert v2.json()["parameters"]["event_time_field"] == timestamp

    store = PredictionStore(database)
    deadline = time.monotonic() + 20
    while store.counts()["predictions"] < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    hour = pd.Timestamp("2025-01-01 08:00", tz="UTC")
    first = store.window(hour.to_pydatetime(), (hour + pd.Timedelta(hours=1)).to_pydatetime())
    assert sorted(first["request_id"]) == sorted([v1.json()["request_id"], "v2-call"])
    assert (first["event_time"] == hour).all()
    assert (first["logged_at"] > pd.Timestamp("2026-01-01", tz="UTC")).all()  # arrival kept
