"""The prediction service with PostgreSQL down: buffered and retried, or 503 and resent."""

from __future__ import annotations

import json
import time

import httpx
import orjson
import pytest

from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.predictions.cloudevents import event_headers
from tests.integration.pg_fixtures import (
    ServiceFactory,
)
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def send_call(client: httpx.Client, i: int) -> list[int]:
    """One predicted call of two records (request and response events) and feedback for row 0."""
    statuses = []
    for kind, body in (
        ("request", {"instances": [{"x": i, "zone": "Z01"}, {"x": -i}]}),
        (
            "response",
            {"predictions": [float(i), 1.0], "model_version": "v0001", "request_id": f"call-{i}"},
        ),
    ):
        statuses.append(
            client.post(
                "/v1/events",
                content=orjson.dumps(body),
                headers=event_headers(f"ce-{i}", kind, "test"),
            ).status_code
        )  # type: ignore[arg-type]
    statuses.append(
        client.post("/v1/feedback", json={"request_id": f"call-{i}", "actual": i + 0.5}).status_code
    )
    return statuses


def wait_until_flushed(client: httpx.Client, timeout: float = 30.0) -> None:
    """Wait until the service holds no buffered rows."""
    deadline = time.monotonic() + timeout
    while client.get("/healthz").json()["buffered_rows"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get("/healthz").json()["buffered_rows"] == 0


def test_writes_while_the_database_is_down_are_buffered_and_all_arrive(
    own_postgres: PostgresServer, start_service: ServiceFactory
) -> None:
    url = own_postgres.url("flywheel")
    service = start_service(database_url=url, retry_max_wait=0.3)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        before = [send_call(client, i) for i in range(20)]
        own_postgres.stop()
        during = [send_call(client, i) for i in range(20, 60)]
        changed_mind = client.post("/v1/feedback", json={"request_id": "call-0", "actual": 99.0})
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").json()["buffered_rows"] == 40 * 3 + 1
        own_postgres.start()
        wait_until_flushed(client)
        after = [send_call(client, i) for i in range(60, 80)]
        metrics = client.get("/metrics").text
    assert {tuple(s) for s in before + after} == {(202, 202, 200)}
    assert {tuple(s) for s in during} == {(202, 202, 202)}
    assert 'flywheel_feedback_items_total{outcome="buffered"} 41.0' in metrics
    # A conflict found at flush cannot be a 409 any more: the 202 said where it is counted.
    assert changed_mind.status_code == 202
    assert 'outcome="conflict_after_buffering"' in changed_mind.json()["detail"]
    assert 'flywheel_feedback_items_total{outcome="conflict_after_buffering"} 1.0' in metrics
    store = PredictionStore(url)
    assert store.counts() == {"predictions": 160, "feedback": 80, "pending": 0}
    assert store.labelled_count() == 80
    logged = store.window(None, None)
    assert logged.query("request_id == 'call-0' and row == 0")["actual"].tolist() == [0.5]
    store.close()


def test_a_full_buffer_answers_503_and_every_resent_item_arrives(
    own_postgres: PostgresServer, start_service: ServiceFactory
) -> None:
    url = own_postgres.url("flywheel")
    service = start_service(
        database_url=url, buffer_max_rows=10, retry_after_seconds=1, retry_max_wait=0.3
    )
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        own_postgres.stop()
        refused = []
        for i in range(30):
            answer = client.post("/v1/feedback", json={"request_id": f"f{i}", "actual": 1.0})
            if answer.status_code == 503:
                assert answer.headers["retry-after"] == "1"
                assert "retry later" in answer.json()["detail"]
                refused.append(i)
            else:
                assert answer.status_code == 202
        assert len(refused) == 20
        own_postgres.start()
        deadline = time.monotonic() + 30
        while refused and time.monotonic() < deadline:  # the sender's retry loop
            answer = client.post(
                "/v1/feedback", json={"request_id": f"f{refused[0]}", "actual": 1.0}
            )
            if answer.status_code == 503:
                time.sleep(float(answer.headers["retry-after"]) / 10)
            else:
                refused.pop(0)
        assert refused == []
        wait_until_flushed(client)
    store = PredictionStore(url)
    assert store.counts()["feedback"] == 30
    store.close()


def nested(depth: int) -> object:
    """A JSON value `depth` lists deep."""
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def send_pair(client: httpx.Client, call: str, features: dict[str, object]) -> tuple[int, int]:
    """One single-record call as the payload logger delivers it (request and response events)."""
    statuses = []
    for kind, body in (
        ("request", {"instances": [features]}),
        ("response", {"predictions": [1.0], "model_version": "v0001", "request_id": call}),
    ):
        statuses.append(
            client.post(
                "/v1/events",
                content=json.dumps(body),  # orjson stops at 255 levels; the poison has more
                headers=event_headers(f"ce-{call}", kind, "test"),  # type: ignore[arg-type]
            ).status_code
        )
    return statuses[0], statuses[1]


def test_a_poison_row_buffered_during_an_outage_is_quarantined_and_every_other_row_arrives(
    own_postgres: PostgresServer, start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_postgres.url("flywheel")
    # The edge refuses deep bodies by default; the limit is raised so the poison row (one the
    # database cannot take: its JSON encoder stops at 255 levels) reaches the flusher.
    service = start_service(database_url=url, retry_max_wait=0.3, max_json_depth=400)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert send_pair(client, "before", {"x": 0}) == (202, 202)
        own_postgres.stop()
        answers = [send_pair(client, f"good-{i}", {"x": i}) for i in range(10)]
        answers.append(send_pair(client, "poison", {"x": nested(300)}))
        answers += [send_pair(client, f"good-{i}", {"x": i}) for i in range(10, 20)]
        assert set(answers) == {(202, 202)}
        assert client.get("/healthz").json()["buffered_rows"] == 21
        own_postgres.start()
        wait_until_flushed(client)
        health = client.get("/readyz")
        assert health.status_code == 200
        assert health.json()["quarantined_rows"] == 1
        assert send_pair(client, "after", {"x": 1}) == (202, 202)
    store = PredictionStore(url)
    ids = set(store.window(None, None)["request_id"])
    store.close()
    assert ids == {"before", "after"} | {f"good-{i}" for i in range(20)}
    assert any("quarantined a predictions row" in r.getMessage() for r in caplog.records)


def test_a_dead_flusher_turns_readiness_503_and_the_lost_rows_are_logged_at_shutdown(
    own_postgres: PostgresServer, start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_postgres.url("flywheel")
    service = start_service(database_url=url, retry_max_wait=0.3)
    buffer = service.app.state.buffer

    def broken() -> None:
        raise RuntimeError("a bug in the flusher")

    buffer._next_batch = broken  # the one thing the flusher runs unguarded
    with httpx.Client(base_url=service.url, timeout=10) as client:
        own_postgres.stop()
        assert send_pair(client, "held", {"x": 1}) == (202, 202)
        own_postgres.start()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "flusher stopped" in ready.json()["detail"]
        assert send_pair(client, "later", {"x": 1})[1] == 503
    service.stop()
    assert any("they are lost" in r.getMessage() for r in caplog.records)
