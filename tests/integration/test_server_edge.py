"""The edge of both real servers: slow bodies, deep JSON, large headers, request ids, logging.

The predictor runs as its own process with the payload logger pointed at a real prediction
service, so "answered 200" can be checked against "in the prediction log".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest

from flywheel_mlops.predictions import DatabaseUnavailable, PredictionStore
from flywheel_mlops.predictions.service import ServiceSettings
from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.testing.v2_body import binary_body, json_body
from tests.integration.conftest import MODEL, RunningServer, ServerFactory
from tests.integration.pg_fixtures import ServiceFactory, ServiceThread

pytestmark = pytest.mark.integration

V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


def nested(depth: int) -> bytes:
    """A JSON value `depth` arrays deep."""
    return b"[" * depth + b"1" + b"]" * depth


def slow_body(port: int, path: str, seconds: float) -> socket.socket:
    """A connection that sends its headers, then one body byte every 0.2 s for `seconds`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=seconds + 30)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: 100000\r\n\r\n".encode()
    )
    return sock


def _read_answer(sock: socket.socket) -> bytes:
    """Head and body of one answer: the head and the body may arrive in separate reads."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_slow_body_clients_cannot_turn_normal_clients_away_at_the_recommended_cap(
    start_predictor: ServerFactory, bundle_dir: Path, reference_rows: pd.DataFrame
) -> None:
    server = start_predictor(
        "--model_dir", str(bundle_dir), "--max_concurrency", "2", "--body_timeout", "4"
    )
    port = int(server.url.rsplit(":", 1)[1])
    body = orjson.dumps({"instances": frame_to_records(reference_rows.head(1))})
    slow = [slow_body(port, V1, 4) for _ in range(2)]
    statuses = []
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(40):
            for sock in slow:
                sock.sendall(b"[")  # keep the bodies coming, one byte at a time
            statuses.append(client.post(V1, content=body).status_code)
            time.sleep(0.05)
    assert statuses == [200] * 40, statuses
    assert time.monotonic() - started < 4, "the normal clients were served while bodies trickled"
    for sock in slow:  # the slow bodies are cut off at --body_timeout with 408
        answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"within 4 s" in answer
        sock.close()


def _trickle_headers_until_closed(port: int, normal_url: str, deadline: float) -> float:
    """Send a request head one byte every 0.2 s, serving normal calls meanwhile; return how
    long the server kept the trickling connection open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=deadline + 10)
    head = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: " + b"a" * 200
    started = time.monotonic()
    with sock, httpx.Client(timeout=5) as client:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # closed by the server
                break
            assert client.get(normal_url).status_code == 200
            sock.settimeout(0.2)
            try:
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
        return time.monotonic() - started


@pytest.mark.parametrize("server", ["predictor", "service"])
def test_a_request_head_that_trickles_in_is_cut_off_at_the_header_timeout(
    start_predictor: ServerFactory, bundle_dir: Path, tmp_path: Path, server: str
) -> None:
    if server == "predictor":
        predictor = start_predictor("--model_dir", str(bundle_dir), "--header_timeout", "1.5")
        url, normal = predictor.url, predictor.url + f"/v1/models/{MODEL}"
    else:
        settings = ServiceSettings(
            database_url=f"sqlite:///{tmp_path / 'log.sqlite'}", header_timeout=1.5
        )
        running = ServiceThread(settings)
        running.start()
        url, normal = running.url, running.url + "/healthz"
    try:
        held = _trickle_headers_until_closed(int(url.rsplit(":", 1)[1]), normal, 1.5)
    finally:
        if server == "service":
            running.stop()
    assert 1.4 <= held < 5, f"the trickling head was held {held:.1f} s"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    """One prediction service (SQLite) with the default limits, for the read-only tests."""
    database = tmp_path_factory.mktemp("edge") / "log.sqlite"
    running = ServiceThread(ServiceSettings(database_url=f"sqlite:///{database}"))
    running.start()
    yield running
    running.stop()


@pytest.mark.parametrize("depth", [65, 990, 100_000])
@pytest.mark.parametrize("where", ["v1", "v2", "service events", "service feedback"])
def test_json_nested_past_the_limit_is_refused_with_400_naming_the_limit(
    predictor: RunningServer, service: ServiceThread, depth: int, where: str
) -> None:
    if where.startswith("service"):
        url = service.url
        path = "/v1/events" if where == "service events" else "/v1/feedback"
        body = b'{"request_id": "a", "actual": ' + nested(depth) + b"}"
    else:
        url = predictor.url
        path = V1 if where == "v1" else V2
        body = b'{"instances": [{"distance_km": ' + nested(depth) + b"}]}"
        if where == "v2":
            body = b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": '
            body += nested(depth) + b"}]}"
    answer = httpx.post(
        url + path, content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert answer.status_code == 400, answer.text[:300]
    assert "at most 64 levels" in answer.text


@pytest.mark.parametrize("size", [20_000, 60_000, 1_000_000, 64 * 1024 * 1024])
@pytest.mark.parametrize("server_kind", ["predictor", "service"])
def test_headers_past_the_limit_are_refused_before_the_app(
    predictor: RunningServer, service: ServiceThread, size: int, server_kind: str
) -> None:
    url = service.url + "/healthz" if server_kind == "service" else predictor.url + V1
    try:
        answer = httpx.post(url, headers={"x-filler": "a" * size}, content=b"{}", timeout=30)
    except httpx.TransportError:
        assert size > 2 * 16384, "under the transport's buffer the app must answer"
        return  # cut off by the transport's header buffer: nothing was held past it
    if size < 2 * 16384:
        assert answer.status_code == 431, answer.text
        assert "at most 16384 bytes" in answer.text
    elif answer.status_code == 431:  # the whole head came in one read: the edge refused it
        assert "at most 16384 bytes" in answer.text
    else:  # it came in pieces: uvicorn (h11) refused the incomplete head past its buffer
        assert answer.status_code == 400, answer.text
        assert "Invalid HTTP request" in answer.text


def wait_for_rows(url: str, expected: int, timeout: float = 30.0) -> set[str]:
    """The request ids in the log once it holds `expected` rows (or when time is up)."""
    store = PredictionStore(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            # SQLite may be busy with the service's own write for a moment: ask again.
            with contextlib.suppress(DatabaseUnavailable):
                if store.counts()["predictions"] >= expected:
                    break
            time.sleep(0.2)
        return set(store.window(None, None)["request_id"])
    finally:
        store.close()


def test_bad_client_ids_are_replaced_and_every_answered_call_is_logged_binary_included(
    start_predictor: ServerFactory,
    start_service: ServiceFactory,
    bundle_dir: Path,
    bundle: Bundle,
    reference_rows: pd.DataFrame,
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'log.sqlite'}"
    service = start_service(database_url=database)
    server = start_predictor("--model_dir", str(bundle_dir), "--logger_url", service.url)
    one = reference_rows.head(1)
    v1 = orjson.dumps({"instances": frame_to_records(one)})
    bad_ids = [b"x" * 300, b"a\tb", b"nb\xa0sp", "caf\u00e9".encode(), b"a b"]

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [client.post(V1, content=v1, headers={"x-request-id": b}) for b in bad_ids]
            calls += [
                client.post(V1, content=v1, headers={"x-request-id": f"good-{i}"})
                for i in range(20)
            ]
            body, headers = binary_body(one, bundle.schema, binary_output=True)
            calls.append(client.post(V2, content=body, headers={**headers, "x-request-id": "bin"}))
            body, headers = binary_body(one, bundle.schema, binary_output=False)
            calls.append(client.post(V2, content=body, headers={**headers, "x-request-id": "bin2"}))
            calls.append(
                client.post(
                    V2,
                    content=json_body(one, bundle.schema, request_id="v2-json"),
                    headers={"content-type": "application/json"},
                )
            )
            return await asyncio.gather(*calls)

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
    replaced = answers[: len(bad_ids)]
    assert all("x-request-id-replaced" in a.headers for a in replaced)
    assert all(a.json()["request_id"] == a.headers["x-request-id"] for a in replaced)
    answered = {a.headers["x-request-id"] for a in answers}
    assert len(answered) == len(answers)
    assert wait_for_rows(database, len(answers)) == answered


@pytest.mark.parametrize(
    "bad_id", ["caf\u00e9\u4e2d", "a\x01b", "x" * 257, "tab\there", "nb\u00a0sp", ""]
)
def test_a_v2_id_that_breaks_the_id_rule_is_refused_with_400_before_predicting(
    predictor: RunningServer, bundle: Bundle, reference_rows: pd.DataFrame, bad_id: str
) -> None:
    body = orjson.loads(json_body(reference_rows.head(1), bundle.schema))
    body["id"] = bad_id
    answer = httpx.post(
        f"{predictor.url}{V2}",
        content=orjson.dumps(body),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    if bad_id == "":
        assert answer.status_code == 200  # no id: the server makes one
        return
    assert answer.status_code == 400, answer.text
    assert "id (the request id) must" in answer.json()["error"]
