"""Hostile input: schemathesis against the prediction service's OpenAPI over HTTP, zero 5xx."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from flywheel_mlops.predictions.service import ServiceSettings
from tests.integration.pg_fixtures import (
    ServiceThread,
)
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

EXAMPLES_PER_OPERATION = 120  # per operation and mode (positive, negative)
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def fuzzed_service(postgres_server: PostgresServer) -> Iterator[ServiceThread]:
    """The service on a fresh PostgreSQL database, small limits so the fuzzer reaches them."""
    url = postgres_server.create_database(f"fuzz_{uuid.uuid4().hex[:8]}")
    service = ServiceThread(
        ServiceSettings(database_url=url, max_body_bytes=64 * 1024, max_feedback_items=50)
    )
    service.start()
    yield service
    service.stop()
    print(f"\nfuzzed {sum(STATUSES.values())} requests, statuses {dict(sorted(STATUSES.items()))}")


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        *[(path, mode) for path in ("/v1/feedback", "/v1/events") for mode in GenerationMode],
        # the health endpoints take nothing, so there is no invalid request to generate
        *[(path, GenerationMode.POSITIVE) for path in ("/healthz", "/readyz", "/metrics")],
    ],
)
def test_generated_requests_never_get_a_server_error(
    fuzzed_service: ServiceThread, path: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")
    [operation] = [
        result.ok() for result in schema.get_all_operations() if result.ok().path == path
    ]
    sent = Counter[int]()

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def generated(case: schemathesis.Case) -> None:
        response = case.call(base_url=fuzzed_service.url, timeout=10)
        sent[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, response.text

    generated()
    STATUSES.update(sent)
    assert sum(sent.values()) >= (30 if path.startswith("/v1") else 1)
