"""Malformed requests get a 4xx that says what was wrong; generated garbage never gets a 5xx."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import MAX_BATCH, MODEL, RunningServer

pytestmark = pytest.mark.integration

RECORD: dict[str, Any] = {
    "request_time": "2026-03-10T08:15:00",
    "distance_km": 3.9,
    "driver_speed": 25.4,
    "congestion": 0.19,
    "incidents": 0,
    "customer_lat": 52.5,
    "customer_lon": 13.27,
    "driver_lat": 52.53,
    "driver_lon": 13.26,
    "temperature_c": 4.4,
    "precipitation_mm": 0.0,
    "zone": "Z00",
    "weather": "clear",
}
STRINGS = {"request_time", "zone", "weather"}
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
JSON = {"content-type": "application/json"}


def record(**changes: Any) -> dict[str, Any]:
    """The valid record with some fields changed (a value of ... removes the field)."""
    result = {**RECORD, **changes}
    return {k: v for k, v in result.items() if v is not ...}


def v1(*records: Any) -> bytes:
    return orjson.dumps({"instances": list(records)})


def v2_input(name: str, value: Any = None, **changes: Any) -> dict[str, Any]:
    value = RECORD[name] if value is None else value
    tensor = {
        "name": name,
        "shape": [1],
        "datatype": "BYTES" if name in STRINGS else "FP64",
        "data": [value],
    }
    return tensor | changes


def v2(
    *replace: dict[str, Any], drop: str = "", extra: list[dict[str, Any]] | None = None, **top: Any
) -> bytes:
    """A one-record V2 JSON body; `replace` swaps inputs by name, `drop` removes one."""
    by_name = {t["name"]: t for t in replace}
    inputs = [by_name.get(n, v2_input(n)) for n in RECORD if n != drop]
    return orjson.dumps({"inputs": inputs + (extra or []), **top})


def binary(
    columns: dict[str, tuple[str, bytes]] | None = None,
    header: dict[str, Any] | None = None,
    tail: bytes = b"",
    header_length: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A one-record binary body; `columns` overrides (datatype, raw bytes) per input."""
    inputs, chunks = [], []
    for name, value in RECORD.items():
        if name in STRINGS:
            raw = struct.pack("<I", len(value.encode())) + value.encode()
            datatype = "BYTES"
        else:
            raw = struct.pack("<d", float(value))
            datatype = "FP64"
        datatype, raw = (columns or {}).get(name, (datatype, raw))
        inputs.append(
            {
                "name": name,
                "shape": [1],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    head = orjson.dumps(header if header is not None else {"inputs": inputs})
    length = len(head) if header_length is None else header_length
    return head + b"".join(chunks) + tail, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(length),
    }


@dataclass(frozen=True)
class Case:
    """One malformed request and what its answer must say."""

    path: str
    body: Callable[[], tuple[bytes, dict[str, str]]]
    status: int
    says: list[str] = field(default_factory=list)


def json_case(
    path: str,
    body: bytes | Callable[[], bytes],
    status: int,
    *says: str,
    headers: dict[str, str] | None = None,
) -> Case:
    def build() -> tuple[bytes, dict[str, str]]:
        return (body() if callable(body) else body), (JSON if headers is None else headers)

    return Case(path, build, status, list(says))


CASES: dict[str, Case] = {
    # --- V1: one JSON object per record -------------------------------------------------------
    "v1 missing field": json_case(
        V1, v1(record(driver_speed=...)), 400, "driver_speed", "missing", "record 0"
    ),
    "v1 missing field in a later record": json_case(
        V1, v1(record(), record(), record(zone=...)), 400, "zone", "record 2"
    ),
    "v1 number sent as text": json_case(
        V1, v1(record(distance_km="3.9")), 400, "distance_km", "finite number", "'3.9'", "record 0"
    ),
    "v1 boolean for a number": json_case(
        V1, v1(record(), record(congestion=True)), 400, "congestion", "finite number", "record 1"
    ),
    "v1 null value": json_case(
        V1, v1(record(temperature_c=None)), 400, "temperature_c", "None", "record 0"
    ),
    "v1 value above range": json_case(
        V1, v1(record(driver_speed=400)), 400, "driver_speed", "[1, 150]", "400", "record 0"
    ),
    "v1 value below range": json_case(
        V1, v1(record(distance_km=-2.5)), 400, "distance_km", "[0, 60]", "-2.5"
    ),
    "v1 fraction for a whole number": json_case(
        V1, v1(record(incidents=1.5)), 400, "incidents", "whole number", "1.5"
    ),
    "v1 unknown category": json_case(
        V1, v1(record(zone="Z99")), 400, "zone", "one of", "Z99", "record 0"
    ),
    "v1 number for a category": json_case(
        V1, v1(record(weather=3)), 400, "weather", "one of", "record 0"
    ),
    "v1 bad timestamp": json_case(
        V1,
        v1(record(request_time="yesterday")),
        400,
        "request_time",
        "ISO 8601",
        "yesterday",
        "record 0",
    ),
    "v1 NaN": json_case(
        V1,
        v1(record()).replace(b'"distance_km":3.9', b'"distance_km":NaN'),
        400,
        "distance_km",
        "finite number",
        "nan",
        "record 0",
    ),
    "v1 Infinity": json_case(
        V1,
        v1(record(), record(congestion=0.123)).replace(b"0.123", b"-Infinity"),
        400,
        "congestion",
        "finite number",
        "-inf",
        "record 1",
    ),
    "v1 number beyond float range": json_case(
        V1, v1(record()).replace(b'"incidents":0', b'"incidents":1' + b"0" * 400), 400, "incidents"
    ),
    "v1 empty batch": json_case(V1, v1(), 400, "instances", "at least one record"),
    "v1 batch over the maximum": json_case(
        V1,
        lambda: v1(*[record()] * (MAX_BATCH + 1)),
        400,
        str(MAX_BATCH + 1),
        f"at most {MAX_BATCH}",
    ),
    "v1 body not JSON": json_case(V1, b"distance_km=3.9", 400, "not valid JSON", "instances"),
    "v1 body a JSON array": json_case(V1, b"[1, 2]", 400, "JSON object", "array"),
    "v1 instances not a list": json_case(
        V1, orjson.dumps({"instances": RECORD}), 400, "instances", "list"
    ),
    "v1 no instances key": json_case(
        V1, orjson.dumps({"records": [RECORD]}), 400, "instances", "records"
    ),
    "v1 record not an object": json_case(V1, v1(record(), 7), 400, "record 1", "must be an object"),
    "v1 unknown field": json_case(
        V1, v1(record(tip=2.0)), 400, "tip", "not an input field", "record 0"
    ),
    "v1 wrong content type": json_case(
        V1,
        v1(record()),
        415,
        "content-type",
        "application/json",
        headers={"content-type": "text/plain"},
    ),
    "v1 form content type": json_case(
        V1,
        b"a=1",
        415,
        "application/json",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    "v1 unknown model": json_case("/v1/models/eta-v9:predict", v1(record()), 404, "eta-v9", MODEL),
    "v1 body over the size limit": json_case(
        V1, b"[" + b" " * (3 * 1024 * 1024) + b"]", 413, "bytes"
    ),
    # --- V2 JSON: one named input per field ---------------------------------------------------
    "v2 wrong datatype for a number": json_case(
        V2,
        v2(v2_input("distance_km", "3.9", datatype="BYTES")),
        400,
        "distance_km",
        "datatype",
        "FP64",
        "BYTES",
    ),
    "v2 wrong datatype for a category": json_case(
        V2, v2(v2_input("zone", 3, datatype="INT64")), 400, "zone", "BYTES", "INT64"
    ),
    "v2 wrong shape": json_case(
        V2, v2(v2_input("congestion", shape=[1, 2])), 400, "congestion", "shape", "[n, 1]"
    ),
    "v2 data longer than the shape": json_case(
        V2,
        v2(v2_input("driver_speed", shape=[1], data=[25.0, 30.0])),
        400,
        "driver_speed",
        "needs 1 values",
        "holds 2",
    ),
    "v2 inputs of different lengths": json_case(
        V2,
        v2(v2_input("driver_speed", shape=[2], data=[25.0, 30.0])),
        400,
        "records",
        "one value per record",
    ),
    "v2 unknown input": json_case(
        V2, v2(extra=[v2_input("zone") | {"name": "tip"}]), 400, "tip", "not an input field"
    ),
    "v2 missing input": json_case(V2, v2(drop="weather"), 400, "weather", "missing"),
    "v2 input twice": json_case(V2, v2(extra=[v2_input("zone")]), 400, "zone", "twice"),
    "v2 text in a number input": json_case(
        V2,
        v2(v2_input("distance_km", shape=[1], data=["far"])),
        400,
        "distance_km",
        "finite number",
        "far",
        "record 0",
    ),
    "v2 NaN in a number input": json_case(
        V2,
        lambda: v2(v2_input("distance_km", 0.5)).replace(b'"data":[0.5]', b'"data":[NaN]'),
        400,
        "distance_km",
        "finite number",
        "nan",
        "record 0",
    ),
    "v2 unknown category": json_case(
        V2, v2(v2_input("weather", "hail")), 400, "weather", "one of", "hail", "record 0"
    ),
    "v2 empty batch": json_case(
        V2,
        orjson.dumps({"inputs": [v2_input(n) | {"shape": [0], "data": []} for n in RECORD]}),
        400,
        "at least one record",
    ),
    "v2 batch over the maximum": json_case(
        V2,
        lambda: orjson.dumps(
            {
                "inputs": [
                    v2_input(n) | {"shape": [MAX_BATCH + 1], "data": [RECORD[n]] * (MAX_BATCH + 1)}
                    for n in RECORD
                ]
            }
        ),
        400,
        str(MAX_BATCH + 1),
        f"at most {MAX_BATCH}",
    ),
    "v2 inputs not a list": json_case(V2, b'{"inputs": "distance_km"}', 400, "inputs", "list"),
    "v2 tensor without datatype": json_case(
        V2,
        orjson.dumps({"inputs": [{"name": "zone", "shape": [1], "data": ["Z00"]}]}),
        400,
        "datatype",
        "required",
    ),
    "v2 body not JSON": json_case(V2, b"{inputs:", 400, "JSON"),
    "v2 body missing a comma": json_case(
        V2, b'{"inputs": [] "id": 1}', 400, "not valid JSON", "delimiter", "at character 14"
    ),
    "v2 body truncated": json_case(V2, b'{"inputs": [', 400, "not valid JSON", "at character 12"),
    "v2 body not UTF-8": json_case(V2, b'{"inputs": [], "id": "\xff"}', 400, "UTF-8", "0xff"),
    "v1 body not UTF-8": json_case(
        V1, b'{"instances": [{"zone": "\xfe"}]}', 400, "UTF-8", "instances"
    ),
    "v2 unknown output requested": json_case(
        V2, v2(outputs=[{"name": "fare"}]), 400, "fare", "pickup_minutes"
    ),
    "v2 wrong content type": json_case(
        V2, v2(), 415, "application/json", "octet-stream", headers={"content-type": "text/csv"}
    ),
    "v2 unknown model": json_case("/v2/models/eta-v9/infer", v2(), 404, "eta-v9", MODEL),
    "v2 versioned path": json_case(
        f"/v2/models/{MODEL}/versions/v0001/infer", v2(), 404, "versions"
    ),
    # --- V2 binary tensor data extension ------------------------------------------------------
    "binary header length missing": Case(
        V2,
        lambda: (binary()[0], {"content-type": "application/octet-stream"}),
        415,
        ["inference-header-content-length"],
    ),
    "binary header length not a number": Case(
        V2,
        lambda: (
            binary()[0],
            {"content-type": "application/octet-stream", "inference-header-content-length": "ten"},
        ),
        400,
        ["inference-header-content-length", "whole number", "ten"],
    ),
    "binary header length past the body": Case(
        V2, lambda: binary(header_length=10**6), 400, ["inference-header-content-length", "within"]
    ),
    "binary header not JSON": Case(V2, lambda: binary(header_length=5), 400, ["not a JSON"]),
    "binary size does not match the shape": Case(
        V2,
        lambda: binary({"driver_speed": ("FP64", b"\x00" * 12)}),
        400,
        ["driver_speed", "needs 8 bytes", "12"],
    ),
    "binary trailing bytes": Case(V2, lambda: binary(tail=b"\x00" * 8), 400, ["8 bytes follow"]),
    "binary input without size": Case(
        V2,
        lambda: binary(header={"inputs": [{"name": "zone", "shape": [1], "datatype": "BYTES"}]}),
        400,
        ["zone", "binary_data_size"],
    ),
    "binary text not UTF-8": Case(
        V2,
        lambda: binary({"zone": ("BYTES", struct.pack("<I", 2) + b"\xff\xfe")}),
        400,
        ["zone", "UTF-8"],
    ),
    "binary NaN in a number": Case(
        V2,
        lambda: binary({"temperature_c": ("FP64", struct.pack("<d", float("nan")))}),
        400,
        ["temperature_c", "finite number", "nan", "record 0"],
    ),
    "binary unknown datatype": Case(
        V2,
        lambda: binary({"congestion": ("FP128", b"\x00" * 16)}),
        400,
        ["congestion", "datatype", "FP128"],
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_malformed_request_gets_a_4xx_naming_what_was_wrong(
    predictor: RunningServer, case: Case
) -> None:
    body, headers = case.body()
    response = httpx.post(f"{predictor.url}{case.path}", content=body, headers=headers, timeout=30)
    assert response.status_code == case.status, response.text
    message = response.json()["error"]
    for words in case.says:
        assert words.lower() in message.lower(), f"{words!r} not in {message!r}"
    assert response.headers["x-request-id"]


def test_the_table_holds_at_least_25_kinds_of_malformed_request() -> None:
    assert len(CASES) >= 25


def test_rejections_are_counted_and_logged_without_tracebacks(predictor: RunningServer) -> None:
    response = httpx.post(
        f"{predictor.url}{V1}",
        content=v1(record(zone="Z99")),
        headers=JSON | {"x-request-id": "counted-reject"},
    )
    assert response.status_code == 400
    lines = [
        e
        for e in predictor.logs_once_written("counted-reject")
        if e.get("request_id") == "counted-reject"
    ]
    assert len(lines) == 1
    assert "Z99" in lines[0]["error"]
    assert not any("exception" in e for e in predictor.logs() if e.get("status", 0) < 500)
    metrics = httpx.get(f"{predictor.url}/metrics").text
    assert f'flywheel_requests_total{{model_name="{MODEL}",protocol="v1",status="400"}}' in metrics


# --- generated requests: whatever a client sends, the answer is never a 5xx -------------------


def dumps(value: Any) -> bytes:
    """JSON as any client library might write it (integers of any size included)."""
    return json.dumps(value).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            "Z00",
            "Z11",
            "clear",
            "snow",
            "2026-03-10T08:15:00",
            "2026-02-30T25:00:00",
            0,
            1,
            150,
            1e308,
            -1e308,
            2**63,
            "",
            "NaN",
        ]
    ),
)
RECORDS = st.lists(
    st.fixed_dictionaries({}, optional={name: FIELD_VALUES for name in RECORD}).map(
        lambda r: {**RECORD, **r}
    )
    | st.dictionaries(st.text(max_size=15), FIELD_VALUES, max_size=14),
    max_size=4,
)
V1_BODIES = st.one_of(
    RECORDS.map(lambda rs: dumps({"instances": rs})),
    JSON_VALUES.map(lambda v: dumps({"instances": v})),
    JSON_VALUES.map(dumps),
    st.binary(max_size=64),
)
TENSORS = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*RECORD, "tip", ""]),
        "shape": st.lists(st.integers(-1, 3), max_size=3),
        "datatype": st.sampled_from(
            ["FP64", "FP32", "INT64", "INT32", "BYTES", "BOOL", "FP16", "UINT8", "XYZ"]
        ),
        "data": st.lists(FIELD_VALUES, max_size=3) | JSON_VALUES,
    }
)
V2_BODIES = st.one_of(
    st.lists(TENSORS, max_size=14).map(lambda ts: dumps({"inputs": ts})),
    st.lists(st.sampled_from(list(RECORD)), min_size=1, max_size=13, unique=True).flatmap(
        lambda names: st.tuples(
            *[st.lists(FIELD_VALUES, min_size=1, max_size=1) for _ in names]
        ).map(
            lambda datas: dumps(
                {"inputs": [v2_input(n) | {"data": d} for n, d in zip(names, datas, strict=True)]}
            )
        )
    ),
    JSON_VALUES.map(lambda v: dumps({"inputs": v})),
    st.binary(max_size=64),
)
BINARY_BODIES = st.tuples(st.binary(max_size=200), st.integers(-5, 300)).map(
    lambda b: (
        b[0],
        {"content-type": "application/octet-stream", "inference-header-content-length": str(b[1])},
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=V1_BODIES)
def test_generated_v1_bodies_never_get_a_5xx(predictor: RunningServer, body: bytes) -> None:
    response = httpx.post(f"{predictor.url}{V1}", content=body, headers=JSON, timeout=30)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=V2_BODIES)
def test_generated_v2_bodies_never_get_a_5xx(predictor: RunningServer, body: bytes) -> None:
    response = httpx.post(f"{predictor.url}{V2}", content=body, headers=JSON, timeout=30)
    assert response.status_code < 500, response.text


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(request=BINARY_BODIES)
def test_generated_binary_bodies_never_get_a_5xx(
    predictor: RunningServer, request: tuple[bytes, dict[str, str]]
) -> None:
    body, headers = request
    response = httpx.post(f"{predictor.url}{V2}", content=body, headers=headers, timeout=30)
    assert response.status_code < 500, response.text
