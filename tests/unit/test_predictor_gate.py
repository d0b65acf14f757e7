"""The request gate in front of KServe: auth, size, content type, overload, ids, counts, 500s."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from flywheel_inference.metrics import ServingMetrics
from flywheel_inference.request_gate import GateOptions, RequestGate
from flywheel_mlops.edge.limits import EdgeLimits

MODEL = "pickup-eta"
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stands in for KServe: echoes the body; /boom raises; /slow waits for a release."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if body == b"boom" or scope["path"] == "/v2/boom":
        raise RuntimeError("secret internal detail")
    if body == b"slow":
        await asyncio.sleep(0.2)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"echo": %d}' % len(body)})


def gate(**options: Any) -> tuple[RequestGate, CollectorRegistry]:
    """A gate around echo_app; edge limits (max_body_bytes...) and gate options by keyword."""
    registry = CollectorRegistry()
    edge = {k: options.pop(k) for k in list(options) if k in EdgeLimits.__dataclass_fields__}
    return RequestGate(
        echo_app,
        GateOptions(limits=EdgeLimits(**edge), **options),
        ServingMetrics(registry),
        {MODEL: 1},
    ), registry


def call(app: RequestGate, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_an_accepted_request_reaches_the_app_with_its_body_and_gets_an_id() -> None:
    app, registry = gate()
    response = call(app, "POST", V1, content=b"12345", headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"echo": 5}
    assert len(response.headers["x-request-id"]) == 32
    assert (
        registry.get_sample_value(
            "flywheel_requests_total", {"model_name": MODEL, "protocol": "v1", "status": "200"}
        )
        == 1
    )


def test_the_clients_request_id_is_kept() -> None:
    app, _ = gate()
    response = call(app, "POST", V1, content=b"{}", headers={"x-request-id": "trip-9"})
    assert response.headers["x-request-id"] == "trip-9"


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "says"),
    [
        (V1, {"content-type": "text/plain"}, b"{}", 415, "application/json"),
        (V2, {"content-type": "text/csv"}, b"{}", 415, "octet-stream"),
        (
            V2,
            {"content-type": "application/octet-stream"},
            b"{}",
            415,
            "inference-header-content-length",
        ),
        ("/v1/models/other:predict", {}, b"{}", 404, "'other' is not served"),
        ("/v2/models/other/infer", {}, b"{}", 404, "models: ['pickup-eta']"),
        (f"/v2/models/{MODEL}/versions/v1/infer", {}, b"{}", 404, "versions"),
        (f"/v1/models/{MODEL}:explain", {}, b"{}", 404, "explanations"),
        (f"/v2/repository/models/{MODEL}/unload", {}, b"", 404, "repository"),
        (V1, {}, b"x" * 101, 413, "at most 100"),
    ],
    ids=[
        "v1 text",
        "v2 csv",
        "binary without header",
        "v1 model",
        "v2 model",
        "versioned",
        "explain",
        "unload",
        "too large",
    ],
)
def test_requests_kserve_would_mishandle_are_refused_with_a_reason(
    path: str, headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    app, _ = gate(max_body_bytes=100)
    response = call(app, "POST", path, content=body, headers=headers)
    assert response.status_code == status
    assert says in response.json()["error"]
    assert response.headers["x-request-id"]


def test_a_chunked_body_over_the_limit_is_refused_while_reading() -> None:
    app, _ = gate(max_body_bytes=100)

    async def chunks():  # no content-length: the gate must count
        for _ in range(5):
            yield b"x" * 40

    response = call(app, "POST", V1, content=chunks())
    assert response.status_code == 413


def test_past_the_concurrency_cap_requests_get_503_with_retry_after() -> None:
    app, registry = gate(max_concurrency=1)

    async def two_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            slow = asyncio.create_task(client.post(V1, content=b"slow"))
            await asyncio.sleep(0.05)
            quick = await client.post(V1, content=b"{}")
            return [await slow, quick]

    slow, refused = asyncio.run(two_at_once())
    assert slow.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert app.inflight == 0
    assert (
        registry.get_sample_value(
            "flywheel_requests_total", {"model_name": MODEL, "protocol": "v1", "status": "503"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("method", "path", "body"), [("POST", V1, b"boom"), ("GET", "/v2/boom", b"")]
)
def test_an_escaped_exception_is_a_500_that_does_not_echo_internals(
    method: str, path: str, body: bytes
) -> None:
    app, _ = gate()
    response = call(app, method, path, content=body)
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.headers["x-request-id"] in response.json()["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer nope"}, 401),
        ({"authorization": "s3cret"}, 401),
        ({"authorization": "Bearer s3cret"}, 200),
    ],
)
def test_a_configured_token_is_required_on_inference(headers: dict[str, str], status: int) -> None:
    app, _ = gate(api_token="s3cret")
    response = call(app, "POST", V1, content=b"{}", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "s3cret" not in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v2/health/live", 200),
        ("/v2/health/ready", 200),
        (f"/v2/models/{MODEL}/ready", 200),
        (f"/v1/models/{MODEL}", 200),
        ("/metrics", 200),
        (f"/v2/models/{MODEL}", 401),
        ("/v2/models", 401),
    ],
)
def test_probes_and_scrapes_need_no_token_but_everything_else_does(path: str, status: int) -> None:
    app, _ = gate(api_token="s3cret")
    assert call(app, "GET", path).status_code == status


def test_a_request_whose_body_is_still_arriving_takes_no_slot() -> None:
    app, _ = gate(max_concurrency=1, body_timeout=0.5)

    async def slow_then_quick() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)

        async def trickle():  # one byte every 0.1 s: past body_timeout
            for _ in range(20):
                await asyncio.sleep(0.1)
                yield b"["

        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            slow = asyncio.create_task(client.post(V1, content=trickle()))
            await asyncio.sleep(0.15)
            quick = [await client.post(V1, content=b"{}") for _ in range(3)]
            return [await slow, *quick]

    slow, *quick = asyncio.run(slow_then_quick())
    assert [q.status_code for q in quick] == [200, 200, 200]
    assert slow.status_code == 408
    assert "within 0.5 s" in slow.json()["error"]
    assert app.inflight == 0


@pytest.mark.parametrize(
    ("headers", "body", "status", "says"),
    [
        ({"x-filler": "a" * 20_000}, b"{}", 431, "at most 16384 bytes"),
        ({}, b"[" * 65 + b"]" * 65, 400, "at most 64 levels"),
        ({}, b'{"a": "' + b"[" * 100 + b'"}', 200, ""),
    ],
    ids=["headers", "deep", "brackets in a string"],
)
def test_the_edge_limits_answer_before_the_app(
    headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    app, _ = gate()
    response = call(app, "POST", V1, content=body, headers=headers)
    assert response.status_code == status
    assert says in response.text


@pytest.mark.parametrize("bad", ["x" * 300, "a\tb", "nb\xa0sp"])
def test_a_client_id_that_breaks_the_rule_is_replaced_and_the_answer_says_so(bad: str) -> None:
    app, _ = gate()
    response = call(app, "POST", V1, content=b"{}", headers={"x-request-id": bad.encode("latin-1")})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != bad
    assert "the x-request-id sent must" in response.headers["x-request-id-replaced"]
