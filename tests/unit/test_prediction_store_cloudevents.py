"""KServe payload-logger CloudEvents: each mode parsed, pairing in either order, V1/V2 rows."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import orjson
import pytest

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.predictions.cloudevents import (
    BATCH,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    STRUCTURED,
    EventPairer,
    Exchange,
    InferenceEvent,
    UnsupportedEventError,
    event_headers,
    exchange_rows,
    parse_events,
)

V1_REQUEST = {
    "instances": [{"zone": "Z01", "distance_km": 2.5}, {"zone": "Z02", "distance_km": 7.0}]
}
V1_RESPONSE = {"predictions": [8.5, 17.25], "model_version": "v0001", "request_id": "req-1"}
V2_REQUEST = {
    "id": "req-2",
    "inputs": [
        {"name": "zone", "shape": [2], "datatype": "BYTES", "data": ["Z01", "Z02"]},
        {"name": "distance_km", "shape": [2], "datatype": "FP64", "data": [2.5, 7.0]},
    ],
}
V2_RESPONSE = {
    "model_name": "pickup-eta",
    "model_version": "v0002",
    "id": "req-2",
    "outputs": [{"name": "predictions", "shape": [2], "datatype": "FP64", "data": [8.5, 17.25]}],
}


def binary(kind: str, body: dict, event_id: str = "ce-1") -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode event as KServe's agent sends it."""
    headers = event_headers(event_id, kind, "http://localhost:9081/", "pickup-eta")  # type: ignore[arg-type]
    return headers, orjson.dumps(body)


def event(
    kind: str, body: dict, event_id: str = "ce-1", received: float | None = None
) -> InferenceEvent:
    """An already parsed event, received now unless `received` says when."""
    when = time.monotonic() if received is None else received
    return InferenceEvent(event_id, kind, body, received=when)  # type: ignore[arg-type]


def test_binary_mode_event_carries_id_kind_body_and_service() -> None:
    [parsed] = parse_events(*binary("request", V1_REQUEST))
    assert (parsed.id, parsed.kind, parsed.body) == ("ce-1", "request", V1_REQUEST)
    assert parsed.inference_service == "pickup-eta"
    assert parsed.source == "http://localhost:9081/"


def test_structured_and_batched_events_are_parsed_like_binary_ones() -> None:
    one = {
        "specversion": "1.0",
        "id": "a",
        "type": RESPONSE_TYPE,
        "source": "s",
        "data": V1_RESPONSE,
    }
    encoded = {
        "specversion": "1.0",
        "id": "a",
        "type": REQUEST_TYPE,
        "source": "s",
        "data_base64": base64.b64encode(orjson.dumps(V1_REQUEST)).decode(),
    }
    [structured] = parse_events({"content-type": STRUCTURED}, orjson.dumps(one))
    batch = parse_events({"content-type": BATCH}, orjson.dumps([one, encoded]))
    assert structured.body == V1_RESPONSE
    assert [(e.kind, e.body) for e in batch] == [("response", V1_RESPONSE), ("request", V1_REQUEST)]


@pytest.mark.parametrize(
    ("drop", "change", "body", "message"),
    [
        ("ce-specversion", {}, b"{}", "ce-specversion is missing"),
        ("ce-id", {}, b"{}", r"header ce-id \(the request id\) must be a string"),
        (None, {"ce-id": "a\tb"}, b"{}", "must be visible ASCII characters only"),
        (None, {"ce-type": "com.example.other"}, b"{}", "header ce-type must be"),
        (None, {}, b"[1, 2]", "must be a JSON object, got a JSON list"),
        (None, {}, b"{not json", "must be JSON, got invalid JSON"),
    ],
)
def test_malformed_events_are_refused_naming_what_is_wrong(
    drop: str | None, change: dict[str, str], body: bytes, message: str
) -> None:
    headers, _ = binary("request", V1_REQUEST)
    headers.pop(drop or "", None)
    headers |= change
    with pytest.raises(InvalidInputError, match=message):
        parse_events(headers, body)


def test_binary_v2_bodies_are_unsupported_media() -> None:
    headers, _ = binary("request", {})
    headers["content-type"] = "application/octet-stream"
    with pytest.raises(UnsupportedEventError, match="must be JSON"):
        parse_events(headers, b"\x00\x01")


@pytest.mark.parametrize("request_first", [True, False])
def test_request_and_response_pair_in_either_order(request_first: bool) -> None:
    pairer = EventPairer()
    halves = [event("request", V1_REQUEST), event("response", V1_RESPONSE)]
    first, second = halves if request_first else halves[::-1]
    assert pairer.add(first) == (None, [])
    assert len(pairer) == 1
    exchange, evicted = pairer.add(second)
    assert exchange == Exchange(halves[0], halves[1])
    assert evicted == []
    assert len(pairer) == 0


def test_a_redelivered_half_waits_once() -> None:
    pairer = EventPairer()
    pairer.add(event("request", V1_REQUEST))
    pairer.add(event("request", V1_REQUEST))
    assert len(pairer) == 1


def test_waiting_halves_are_bounded_and_the_evicted_ones_returned() -> None:
    pairer = EventPairer(max_waiting=2)
    evicted = [pairer.add(event("request", {}, f"id-{i}"))[1] for i in range(4)]
    assert [[e.id for e in batch] for batch in evicted] == [[], [], ["id-0"], ["id-1"]]
    assert len(pairer) == 2


def test_halves_older_than_max_age_expire() -> None:
    pairer = EventPairer(max_age=10.0)
    now = time.monotonic()
    pairer.add(event("request", {}, "old", received=now - 5))
    pairer.add(event("request", {}, "new", received=now))
    assert [e.id for e in pairer.expire(now=now + 7)] == ["old"]
    assert len(pairer) == 1


def test_waiting_halves_are_bounded_by_the_bytes_of_their_bodies() -> None:
    pairer = EventPairer(max_bytes=10_000)
    big = {"instances": [{"x": "a" * 1000}]}  # about 1 KB of JSON
    evicted = []
    for i in range(30):
        evicted += pairer.add(event("request", big, f"call-{i}"))[1]
    assert pairer.bytes <= 10_000
    assert len(pairer) + len(evicted) == 30
    assert [e.id for e in evicted] == [f"call-{i}" for i in range(len(evicted))]
    # A waiting half keeps its body (as JSON bytes) and gets it back when paired.
    exchange, _ = pairer.add(event("response", V1_RESPONSE, "call-29"))
    assert exchange is not None
    assert exchange.request.body == big


def test_a_half_larger_than_the_whole_allowance_is_evicted_at_once() -> None:
    pairer = EventPairer(max_bytes=100)
    _, evicted = pairer.add(event("request", {"instances": [{"x": "a" * 500}]}, "huge"))
    assert [e.id for e in evicted] == ["huge"]
    assert pairer.bytes == 0


@pytest.mark.parametrize(
    ("request_body", "response_body", "request_id", "version"),
    [
        (V1_REQUEST, V1_RESPONSE, "req-1", "v0001"),
        (V2_REQUEST, V2_RESPONSE, "req-2", "v0002"),
        (V1_REQUEST, {"predictions": [[8.5], [17.25]]}, "ce-1", "unknown"),
    ],
)
def test_a_paired_call_becomes_one_row_per_record(
    request_body: dict, response_body: dict, request_id: str, version: str
) -> None:
    exchange = Exchange(event("request", request_body), event("response", response_body))
    rows = exchange_rows(exchange, "pickup-eta")
    assert [(r.request_id, r.row, r.model_version, r.prediction) for r in rows] == [
        (request_id, 0, version, 8.5),
        (request_id, 1, version, 17.25),
    ]
    assert [r.features for r in rows] == V1_REQUEST["instances"]
    assert {r.model_name for r in rows} == {"pickup-eta"}


@pytest.mark.parametrize(
    ("response_body", "expected"),
    [
        (
            {**V1_RESPONSE, "event_time_field": "request_time"},
            [datetime(2026, 3, 2, 8, 0, tzinfo=UTC), datetime(2026, 3, 2, 7, 30, tzinfo=UTC)],
        ),
        (
            {**V2_RESPONSE, "parameters": {"event_time_field": "request_time"}},
            [datetime(2026, 3, 2, 8, 0, tzinfo=UTC), datetime(2026, 3, 2, 7, 30, tzinfo=UTC)],
        ),
        (V1_RESPONSE, [None, None]),  # no field named: the rows keep their arrival time
    ],
    ids=["v1-field", "v2-parameter", "none-named"],
)
def test_each_row_takes_its_event_time_from_the_field_the_answer_names(
    response_body: dict, expected: list[datetime | None]
) -> None:
    times = ["2026-03-02 08:00:00", "2026-03-02T09:30:00+02:00"]
    request = {
        "instances": [
            {**r, "request_time": t} for r, t in zip(V1_REQUEST["instances"], times, strict=True)
        ]
    }
    exchange = Exchange(event("request", request), event("response", response_body))
    assert [r.event_time for r in exchange_rows(exchange, "pickup-eta")] == expected


def test_a_record_whose_event_time_is_not_a_time_is_kept_with_its_arrival_time() -> None:
    request = {"instances": [{"request_time": "yesterday"}, {"request_time": 7}, {}]}
    response = {"predictions": [1.0, 2.0, 3.0], "event_time_field": "request_time"}
    rows = exchange_rows(Exchange(event("request", request), event("response", response)), "m")
    assert [(r.row, r.event_time) for r in rows] == [(0, None), (1, None), (2, None)]


@pytest.mark.parametrize(
    ("request_body", "response_body", "message"),
    [
        (V1_REQUEST, {"predictions": [1.0]}, "has 2 records but its response has 1 predictions"),
        (V1_REQUEST, {"predictions": ["x", 2]}, "must be finite numbers"),
        ({"rows": []}, V1_RESPONSE, "must hold 'instances' \\(V1\\) or 'inputs' \\(V2\\)"),
        ({"instances": [1, 2]}, V1_RESPONSE, "instance 0 must be an object"),
        (
            {"inputs": [{"name": "a", "shape": [10**9], "data": []}]},
            V1_RESPONSE,
            "values for shape",
        ),
    ],
)
def test_calls_that_cannot_become_rows_are_refused(
    request_body: dict, response_body: dict, message: str
) -> None:
    exchange = Exchange(event("request", request_body), event("response", response_body))
    with pytest.raises(InvalidInputError, match=message):
        exchange_rows(exchange, "pickup-eta")
