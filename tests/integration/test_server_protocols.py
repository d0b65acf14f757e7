"""The real server answers V1, V2 JSON and V2 binary with the numbers the bundle gives."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.testing.v2_body import BINARY_HEADER, binary_body, binary_output, json_body
from tests.integration.conftest import MODEL, RunningServer

pytestmark = pytest.mark.integration


def _in_process(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    frame = bundle.schema.frame_from_records(frame_to_records(rows))
    return bundle.predict(frame)


def _v1(server: RunningServer, rows: pd.DataFrame) -> tuple[np.ndarray, httpx.Response]:
    response = httpx.post(
        f"{server.url}/v1/models/{MODEL}:predict",
        json={"instances": frame_to_records(rows)},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"]), response


def _v2_json(
    server: RunningServer, rows: pd.DataFrame, bundle: Bundle
) -> tuple[np.ndarray, httpx.Response]:
    response = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer",
        content=json_body(rows, bundle.schema),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["outputs"][0]["data"]), response


def _v2_binary(
    server: RunningServer, rows: pd.DataFrame, bundle: Bundle
) -> tuple[np.ndarray, httpx.Response]:
    body, headers = binary_body(rows, bundle.schema)
    response = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return binary_output(response.content, int(response.headers[BINARY_HEADER])), response


@pytest.mark.parametrize("protocol", ["v1", "v2-json", "v2-binary"])
@pytest.mark.parametrize("size", [1, 200])
def test_every_protocol_returns_the_in_process_predictions(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame, protocol: str, size: int
) -> None:
    rows = reference_rows.head(size)
    call = {
        "v1": lambda: _v1(predictor, rows),
        "v2-json": lambda: _v2_json(predictor, rows, bundle),
        "v2-binary": lambda: _v2_binary(predictor, rows, bundle),
    }[protocol]
    got, _ = call()
    expected = _in_process(bundle, rows)
    assert got.shape == (size,)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_v1_answer_carries_version_and_the_clients_request_id(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame
) -> None:
    response = httpx.post(
        f"{predictor.url}/v1/models/{MODEL}:predict",
        json={"instances": frame_to_records(reference_rows.head(2))},
        headers={"x-request-id": "trip-42"},
        timeout=30,
    )
    body = response.json()
    assert body["request_id"] == "trip-42"
    assert response.headers["x-request-id"] == "trip-42"
    assert body["model_version"] == bundle.version == response.headers["x-model-version"]
    assert body["model_name"] == MODEL


def test_v2_answer_uses_the_body_id_and_names_the_output(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame
) -> None:
    response = httpx.post(
        f"{predictor.url}/v2/models/{MODEL}/infer",
        content=json_body(reference_rows.head(3), bundle.schema, "req-7"),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    body = response.json()
    assert body["id"] == "req-7" == response.headers["x-request-id"]
    assert body["model_version"] == bundle.version
    assert body["outputs"][0]["name"] == "pickup_minutes"
    assert body["outputs"][0]["shape"] == [3]


def test_a_request_without_id_gets_a_generated_one(
    predictor: RunningServer, reference_rows: pd.DataFrame
) -> None:
    ids = set()
    for _ in range(2):
        response = httpx.post(
            f"{predictor.url}/v1/models/{MODEL}:predict",
            json={"instances": frame_to_records(reference_rows.head(1))},
        )
        assert response.json()["request_id"] == response.headers["x-request-id"]
        ids.add(response.json()["request_id"])
    assert len(ids) == 2


def test_v2_metadata_lists_one_input_per_schema_field(
    predictor: RunningServer, bundle: Bundle
) -> None:
    metadata = httpx.get(f"{predictor.url}/v2/models/{MODEL}").json()
    assert [i["name"] for i in metadata["inputs"]] == bundle.schema.names
    assert {i["datatype"] for i in metadata["inputs"]} == {"FP64", "INT64", "BYTES"}
    assert metadata["outputs"] == [{"name": "pickup_minutes", "datatype": "FP64", "shape": [-1]}]


def test_metrics_count_answers_by_protocol_status_and_show_the_version(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame
) -> None:
    _v1(predictor, reference_rows.head(1))
    httpx.post(f"{predictor.url}/v1/models/{MODEL}:predict", json={"instances": []})
    text = httpx.get(f"{predictor.url}/metrics").text
    assert f'flywheel_requests_total{{model_name="{MODEL}",protocol="v1",status="200"}}' in text
    assert f'flywheel_requests_total{{model_name="{MODEL}",protocol="v1",status="400"}}' in text
    assert "flywheel_request_seconds_bucket" in text
    assert "flywheel_prediction_minutes_bucket" in text
    assert f'version="{bundle.version}"' in text
    assert f'flywheel_model_ready{{model_name="{MODEL}"}} 1.0' in text
    assert "request_predict_seconds" in text  # KServe's own, still there


def test_each_request_writes_one_json_log_line_with_its_id(
    predictor: RunningServer, reference_rows: pd.DataFrame
) -> None:
    httpx.post(
        f"{predictor.url}/v1/models/{MODEL}:predict",
        json={"instances": frame_to_records(reference_rows.head(1))},
        headers={"x-request-id": "log-me-ok"},
    )
    httpx.post(
        f"{predictor.url}/v1/models/{MODEL}:predict",
        json={"instances": [{}]},
        headers={"x-request-id": "log-me-bad"},
    )
    lines = predictor.logs_once_written("log-me-bad")
    ok = [e for e in lines if e.get("request_id") == "log-me-ok"]
    bad = [e for e in lines if e.get("request_id") == "log-me-bad"]
    assert len(ok) == 1
    assert ok[0]["status"] == 200
    assert ok[0]["model_version"]
    assert len(bad) == 1
    assert bad[0]["status"] == 400
    assert "request_time" in bad[0]["error"]
    assert not any("Traceback" in orjson.dumps(e).decode() for e in lines)


def test_the_http_server_listens_on_loopback_only(predictor: RunningServer) -> None:
    port = predictor.url.rsplit(":", 1)[1]
    messages = [e.get("message", "") for e in predictor.logs()]
    assert any(f"Uvicorn running on http://127.0.0.1:{port}" in m for m in messages), messages
    assert any("gRPC is off" in m for m in messages)


def test_concurrent_requests_each_get_their_own_predictions(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame
) -> None:
    """Requests that arrive together share one model call on the server (the coalescer);
    each must still get exactly its own rows' predictions, in its own order."""
    import asyncio

    slices = [reference_rows.iloc[i * 3 : i * 3 + 1 + i % 3] for i in range(24)]

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=predictor.url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/v1/models/{MODEL}:predict",
                        json={"instances": frame_to_records(rows)},
                    )
                    for rows in slices
                )
            )

    def calls_and_requests() -> tuple[float, float]:
        text = httpx.get(f"{predictor.url}/metrics", timeout=10).text
        found = {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("flywheel_requests_per_model_call_")
        }
        labels = f'{{model_name="{MODEL}"}}'
        return (
            found.get(f"flywheel_requests_per_model_call_count{labels}", 0.0),
            found.get(f"flywheel_requests_per_model_call_sum{labels}", 0.0),
        )

    calls_before, requests_before = calls_and_requests()
    for _ in range(3):
        responses = asyncio.run(send_all())
        for rows, response in zip(slices, responses, strict=True):
            assert response.status_code == 200, response.text
            got = np.asarray(response.json()["predictions"])
            assert np.allclose(got, _in_process(bundle, rows), rtol=1e-6, atol=1e-6)
    calls, requests = calls_and_requests()
    assert requests - requests_before == 3 * len(slices)
    assert calls - calls_before < requests - requests_before, "no two requests shared a call"
