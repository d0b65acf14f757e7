"""The prediction service over HTTP: events and feedback in, the window out, auth and limits."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.predictions.cloudevents import event_headers
from flywheel_mlops.predictions.payload_logger import PayloadLogger
from flywheel_mlops.predictions.service.parse_slots import LARGE_BYTES
from tests.integration.pg_fixtures import (
    ServiceFactory,
)

pytestmark = pytest.mark.integration

V1_REQUEST = {
    "instances": [{"zone": "Z01", "distance_km": 2.5}, {"zone": "Z02", "distance_km": 7.0}]
}
V1_RESPONSE = {"predictions": [8.5, 17.25], "model_version": "v0001", "request_id": "call-a"}
V2_REQUEST = {
    "inputs": [
        {"name": "zone", "shape": [1], "datatype": "BYTES", "data": ["Z03"]},
        {"name": "distance_km", "shape": [1], "datatype": "FP64", "data": [4.0]},
    ]
}
V2_RESPONSE = {
    "model_name": "pickup-eta",
    "model_version": "v0002",
    "id": "call-b",
    "outputs": [{"name": "predictions", "shape": [1], "datatype": "FP64", "data": [12.0]}],
}


def post_event(client: httpx.Client, kind: str, event_id: str, body: dict) -> httpx.Response:
    """One binary-mode CloudEvent, as KServe's logger agent sends it."""
    return client.post(
        "/v1/events",
        content=orjson.dumps(body),
        headers=event_headers(event_id, kind, "http://localhost:9081/"),
    )  # type: ignore[arg-type]


def test_events_and_feedback_in_give_the_window_out(
    start_service: ServiceFactory, store_url: str
) -> None:
    service = start_service(database_url=store_url)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        early = client.post("/v1/feedback", json={"request_id": "call-b", "actual": 14.0})
        assert (early.status_code, early.json()["pending"]) == (202, 1)
        assert "no prediction yet" in early.json()["detail"]
        # call a: the response arrives first; call b: the request first.
        assert post_event(client, "response", "ce-a", V1_RESPONSE).json()["paired"] == 0
        assert post_event(client, "request", "ce-a", V1_REQUEST).json()["rows"] == 2
        assert post_event(client, "request", "ce-b", V2_REQUEST).json()["waiting"] == 1
        assert post_event(client, "response", "ce-b", V2_RESPONSE).json()["rows"] == 1
        batch = client.post(
            "/v1/feedback",
            json={
                "items": [
                    {"request_id": "call-a", "actual": 9.0},
                    {"request_id": "call-a", "row": 1, "actual": 16.0},
                ]
            },
        )
        assert (batch.status_code, batch.json()["joined"]) == (200, 2)
        again = client.post("/v1/feedback", json={"request_id": "call-a", "actual": 9.0})
        assert (again.status_code, again.json()["duplicates"]) == (200, 1)
        conflict = client.post("/v1/feedback", json={"request_id": "call-a", "actual": 10.0})
        assert conflict.status_code == 409
        assert "9.0" in conflict.json()["detail"]
        assert "10.0" in conflict.json()["detail"]
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
    assert 'flywheel_feedback_items_total{outcome="conflict"} 1.0' in metrics
    assert 'flywheel_events_received_total{kind="request"} 2.0' in metrics
    store = PredictionStore(store_url)
    frame = store.window(None, None)
    store.close()
    assert sorted(zip(frame["request_id"], frame["row"], frame["actual"], strict=True)) == [
        ("call-a", 0, 9.0),
        ("call-a", 1, 16.0),
        ("call-b", 0, 14.0),
    ]
    assert frame.set_index("request_id").loc["call-b", "zone"] == "Z03"


def test_the_payload_logger_delivers_every_call(
    start_service: ServiceFactory, store_url: str
) -> None:
    service = start_service(database_url=store_url)

    async def send() -> None:
        async with PayloadLogger(service.url, batch_size=16) as payloads:
            for i in range(100):
                response = {
                    "predictions": [float(i)],
                    "model_version": "v0001",
                    "request_id": f"p{i}",
                }
                assert payloads.log(f"p{i}", {"instances": [{"x": i}]}, response)
        assert payloads.stats.sent == 100
        assert payloads.stats.failed == payloads.stats.dropped_queue_full == 0

    asyncio.run(send())
    store = PredictionStore(store_url)
    assert store.counts()["predictions"] == 100
    store.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": "Basic c2VjcmV0"}, 401),
        ({"authorization": "Bearer s3cret-token"}, 202),
    ],
)
def test_a_configured_token_is_required_on_v1_but_not_on_health(
    start_service: ServiceFactory, tmp_path, headers: dict[str, str], status: int
) -> None:
    service = start_service(
        database_url=f"sqlite:///{tmp_path / 'log.sqlite'}", api_token="s3cret-token"
    )
    with httpx.Client(base_url=service.url, timeout=10) as client:
        answer = client.post(
            "/v1/feedback", json={"request_id": "x", "actual": 1.0}, headers=headers
        )
        assert answer.status_code == status
        if status == 401:
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "s3cret" not in answer.text
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/v1/feedback", "/v1/events"])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_gets_413(
    start_service: ServiceFactory,
    tmp_path,
    path: str,
    chunked: bool,
) -> None:
    service = start_service(
        database_url=f"sqlite:///{tmp_path / 'log.sqlite'}", max_body_bytes=4096
    )
    body = orjson.dumps({"items": [{"request_id": f"id-{i}", "actual": 1.0} for i in range(400)]})
    content = iter([body[:3000], body[3000:]]) if chunked else body
    answer = httpx.post(
        service.url + path,
        content=content,
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert "at most 4096 bytes" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request_id": "a", "actual": -1}, "actual"),
        ({"request_id": "a", "actual": 1, "row": -2}, "row"),
        ({"request_id": "", "actual": 1}, "request_id"),
        ({"actual": 1}, "request_id"),
        ({"request_id": "a", "actual": 1, "colour": "red"}, "colour"),
        ({"items": []}, "items"),
        ({"items": [{"request_id": "a", "actual": 1}] * 11}, "items"),
    ],
)
def test_bad_feedback_gets_a_4xx_naming_the_field(
    start_service: ServiceFactory, tmp_path, body: dict, field: str
) -> None:
    service = start_service(
        database_url=f"sqlite:///{tmp_path / 'log.sqlite'}", max_feedback_items=10
    )
    answer = httpx.post(service.url + "/v1/feedback", json=body, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(field)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"request_id": "a", "actual": 1', 422, "not valid JSON: Expecting ',' delimiter"),
        (b'{"request_id": "a"} x', 422, "at character 20 (0-based)"),
        (b'{"request_id": "\xff", "actual": 1}', 400, "not UTF-8 text"),
        (b"\xc3({}", 400, "cannot decode byte 0xc3 at byte 0"),
    ],
)
def test_a_body_that_is_not_json_gets_an_answer_saying_why_and_where(
    start_service: ServiceFactory, tmp_path, body: bytes, status: int, says: str
) -> None:
    service = start_service(database_url=f"sqlite:///{tmp_path / 'log.sqlite'}")
    answer = httpx.post(
        f"{service.url}/v1/feedback",
        content=body,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == status
    assert says in answer.json()["detail"]


def structured(kind: str, event_id: str, data: object) -> dict[str, object]:
    """One structured CloudEvent of a batch."""
    type_ = f"org.kubeflow.serving.inference.{kind}"
    return {"specversion": "1.0", "id": event_id, "type": type_, "source": "t", "data": data}


def call_events(event_id: str, records: int, **response: object) -> list[dict[str, object]]:
    """The request and response events of one call of `records` records."""
    answer = {"predictions": [1.0] * records, "model_version": "v0001", **response}
    return [
        structured("request", event_id, {"instances": [{"x": i} for i in range(records)]}),
        structured("response", event_id, answer),
    ]


def post_batch(client: httpx.Client, events: list[object]) -> httpx.Response:
    """A batch of structured events, as the payload logger sends them."""
    return client.post(
        "/v1/events",
        content=orjson.dumps(events),
        headers={"content-type": "application/cloudevents-batch+json"},
    )


def test_a_batch_is_judged_per_event_and_the_answer_names_every_refusal(
    start_service: ServiceFactory, tmp_path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    service = start_service(database_url=url)
    good = call_events("good-1", 2, request_id="good-1")
    bad = [
        structured("request", "tab\there", {"instances": [{"x": 1}]}),  # 2: id rule
        structured("request", "x" * 300, {"instances": [{"x": 1}]}),  # 3: id rule
        "not an object",  # 4
        *call_events("mismatch", 2, predictions=[1.0]),  # 5, 6: 2 records, 1 prediction
        *call_events("long-version", 1, model_version="v" * 300),  # 7, 8
        *call_events("bad-answer-id", 1, request_id="nb\u00a0sp"),  # 9, 10
    ]
    more_good = call_events("good-2", 3)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        answer = post_batch(client, [*good, *bad, *more_good])
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["events"] == 13
    assert body["rows"] == 5
    assert [r["index"] for r in body["refused"]] == [2, 3, 4, 6, 8, 10]
    reasons = " | ".join(r["reason"] for r in body["refused"])
    for says in ("'\\t' at position 3", "at most 256 characters", "2 records but", "model_version"):
        assert says in reasons
    store = PredictionStore(url)
    assert sorted(store.window(None, None)["request_id"]) == ["good-1"] * 2 + ["good-2"] * 3
    store.close()


def test_a_batch_with_nothing_to_take_gets_400_listing_each_event(
    start_service: ServiceFactory, tmp_path
) -> None:
    service = start_service(database_url=f"sqlite:///{tmp_path / 'log.sqlite'}")
    with httpx.Client(base_url=service.url, timeout=10) as client:
        answer = post_batch(client, [structured("request", "a b", {}), 7])
    assert answer.status_code == 400
    assert [e["index"] for e in answer.json()["errors"]] == [0, 1]


@pytest.mark.parametrize("same_delivery", [True, False])
def test_a_reused_request_id_with_another_batch_size_never_mixes_two_calls(
    start_service: ServiceFactory, tmp_path, same_delivery: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    service = start_service(database_url=url)
    first = call_events("ce-1", 3, request_id="reused")
    second = call_events("ce-2", 5, request_id="reused")
    with httpx.Client(base_url=service.url, timeout=10) as client:
        if same_delivery:
            assert post_batch(client, [*first, *second]).status_code == 202
        else:
            assert post_batch(client, first).status_code == 202
            assert post_batch(client, second).status_code == 202
            assert post_batch(client, first).status_code == 202  # a redelivery is a no-op
    store = PredictionStore(url)
    window = store.window(None, None)
    store.close()
    assert list(window["row"]) == [0, 1, 2], "the first call keeps the id, whole and alone"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request_id": "a", "actual": True}, "actual"),
        ({"request_id": "a", "actual": "3"}, "actual"),
        ({"request_id": "a\u2028b", "actual": 1}, "request_id"),
        ({"request_id": "a\x01", "actual": 1}, "request_id"),
        ({"request_id": "x" * 257, "actual": 1}, "request_id"),
    ],
)
def test_feedback_a_prediction_could_never_match_is_refused_naming_the_field(
    start_service: ServiceFactory, tmp_path, body: dict, field: str
) -> None:
    service = start_service(database_url=f"sqlite:///{tmp_path / 'log.sqlite'}")
    answer = httpx.post(f"{service.url}/v1/feedback", json=body, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b"{not json", 401),
        ({}, b'{"request_id": "a"}', 401),
        ({"authorization": "bearer  s3cret-token"}, b"{not json", 422),
        ({"authorization": "BEARER s3cret-token"}, b'{"request_id": "a", "actual": 1}', 202),
    ],
)
def test_authentication_comes_before_the_body_and_parses_like_the_predictor(
    start_service: ServiceFactory, tmp_path, headers: dict[str, str], body: bytes, status: int
) -> None:
    service = start_service(
        database_url=f"sqlite:///{tmp_path / 'log.sqlite'}", api_token="s3cret-token"
    )
    answer = httpx.post(
        f"{service.url}/v1/feedback",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=10,
    )
    assert answer.status_code == status, answer.text


def test_a_small_half_that_completes_a_large_held_one_is_paired_off_the_event_loop(
    start_service: ServiceFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The response of a large call is small, but pairing it decodes the large request held and
    builds all its rows: that runs on a parse thread, not on the loop serving /healthz."""
    from flywheel_mlops.predictions.service import app as service_app

    built_on: list[str] = []
    real_rows_of = service_app._rows_of

    def recording(*args: Any) -> Any:
        built_on.append(threading.current_thread().name)
        return real_rows_of(*args)

    monkeypatch.setattr(service_app, "_rows_of", recording)
    calls = 20_000
    request = {"instances": [{"zone": "Z01", "distance_km": 2.5}] * calls}
    assert len(orjson.dumps(request)) > LARGE_BYTES
    response = {"predictions": [8.5] * calls, "model_version": "v0001", "request_id": "big"}
    service = start_service(database_url=f"sqlite:///{tmp_path / 'log.sqlite'}")
    with httpx.Client(base_url=service.url, timeout=30) as client:
        assert post_event(client, "request", "ce-big", request).json()["waiting"] == 1
        answer = post_event(client, "response", "ce-big", response)
    assert answer.json()["rows"] == calls
    assert len(orjson.dumps(response)) < LARGE_BYTES
    assert built_on[-1].startswith("flywheel-parse"), built_on


def test_a_half_that_arrives_while_its_partner_is_encoded_still_pairs() -> None:
    """Two threads add the two halves of one call at once: neither may be left waiting."""
    import flywheel_mlops.predictions.cloudevents as ce

    pairer = ce.EventPairer()
    request = ce.InferenceEvent("ce-1", "request", V1_REQUEST)
    response = ce.InferenceEvent("ce-1", "response", V1_RESPONSE)
    results: list[object] = []
    real_json_bytes = ce._json_bytes

    def partner_arrives_meanwhile(body: object) -> bytes:
        if body is V1_REQUEST:  # the other thread adds the response while we encode
            thread = threading.Thread(target=lambda: results.append(pairer.add(response)))
            thread.start()
            thread.join()
        return real_json_bytes(body)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ce, "_json_bytes", partner_arrives_meanwhile)
        exchange, _ = pairer.add(request)
    assert results == [(None, [])]
    assert exchange == ce.Exchange(request, response)
    assert len(pairer) == 0
