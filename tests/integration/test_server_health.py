"""Readiness means something: a tampered bundle keeps the server up but not ready, and saying why;
SIGTERM lets requests in flight finish; a configured token locks the endpoints but not probes."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.testing.v2_body import BINARY_HEADER, binary_body, binary_output
from tests.integration.conftest import MODEL, ServerFactory

pytestmark = pytest.mark.integration


def test_a_tampered_bundle_leaves_the_server_up_but_not_ready(
    start_predictor: ServerFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    # Added and removed files are the unit tests' (test_predictor.py); one server start is enough.
    folder = tmp_path / "bundle"
    shutil.copytree(bundle_dir, folder)
    model = folder / "model.ubj"
    model.write_bytes(model.read_bytes()[:-16] + b"\x00" * 16)
    says = "model.ubj"
    server = start_predictor("--model_dir", str(folder))
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/v2/models/{MODEL}/ready").status_code == 503
    answer = httpx.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": [{}]})
    assert answer.status_code == 503
    reasons = [e for e in server.logs() if "not ready" in e.get("message", "")]
    assert reasons, server.log_path.read_text()[-2000:]
    assert says in reasons[0]["message"]
    assert (
        'flywheel_model_ready{model_name="pickup-eta"} 0.0'
        in httpx.get(f"{server.url}/metrics").text
    )


def test_sigterm_lets_a_request_in_flight_finish(
    start_predictor: ServerFactory, bundle_dir: Path, bundle: Bundle
) -> None:
    server = start_predictor(
        "--model_dir",
        str(bundle_dir),
        "--max_batch",
        "200000",
        "--max_body_bytes",
        str(64 * 1024 * 1024),
    )
    rows = bundle.reference()[bundle.schema.names]
    big = pd.concat([rows] * (60_000 // len(rows) + 1), ignore_index=True).head(60_000)
    body, headers = binary_body(big, bundle.schema)
    answers: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                f"{server.url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=60
            )
        )
    )
    sender.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until the gate holds the request
        metrics = httpx.get(f"{server.url}/metrics").text
        if "flywheel_inflight_requests 1.0" in metrics:
            break
        time.sleep(0.005)
    else:
        pytest.fail("the big request never showed up in flight")
    code = server.stop(timeout=30)
    sender.join(30)
    assert answers
    assert answers[0].status_code == 200
    minutes = binary_output(answers[0].content, int(answers[0].headers[BINARY_HEADER]))
    assert len(minutes) == len(big)
    assert code == 0


def test_a_configured_token_is_required_except_by_probes(
    start_predictor: ServerFactory, bundle_dir: Path, reference_rows: pd.DataFrame
) -> None:
    server = start_predictor("--model_dir", str(bundle_dir), env={"FLYWHEEL_API_TOKEN": "s3cret"})
    body = {"instances": frame_to_records(reference_rows.head(1))}
    url = f"{server.url}/v1/models/{MODEL}:predict"
    missing = httpx.post(url, json=body)
    wrong = httpx.post(url, json=body, headers={"authorization": "Bearer guess"})
    right = httpx.post(url, json=body, headers={"authorization": "Bearer s3cret"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "s3cret" not in missing.text + wrong.text
    assert httpx.get(f"{server.url}/v2/models/{MODEL}").status_code == 401
    for probe in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready", "/metrics"):
        assert httpx.get(f"{server.url}{probe}").status_code == 200, probe
