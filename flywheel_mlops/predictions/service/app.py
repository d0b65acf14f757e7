"""`create_app(settings)`: the prediction service's FastAPI application; nothing runs at import."""

# No `from __future__ import annotations`: the feedback body's type is built per app in
# create_app, and FastAPI must see the real type, not a string it cannot resolve.

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from flywheel_mlops.edge.body_errors import json_invalid_message, unparsable_body_message
from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.predictions import (
    DatabaseUnavailable,
    FeedbackItem,
    FeedbackResult,
    PredictionRow,
    PredictionStore,
)
from flywheel_mlops.predictions.cloudevents import (
    BATCH,
    STRUCTURED,
    EventPairer,
    Exchange,
    InferenceEvent,
    Refusal,
    exchange_rows,
    parse_delivery,
)
from flywheel_mlops.predictions.service.auth import bearer_guard
from flywheel_mlops.predictions.service.metrics import ServiceMetrics
from flywheel_mlops.predictions.service.middleware import (
    EdgeMiddleware,
    InternalErrorMiddleware,
)
from flywheel_mlops.predictions.service.parse_slots import ParseSlots
from flywheel_mlops.predictions.service.schemas import (
    ConflictOut,
    EventsOut,
    FeedbackIn,
    FeedbackOut,
    Health,
    Problem,
    RefusalOut,
    feedback_body,
)
from flywheel_mlops.predictions.service.settings import ServiceSettings
from flywheel_mlops.predictions.service.write_buffer import (
    BUFFERED_CONFLICT,
    BufferFull,
    FlusherStopped,
    WriteBuffer,
)

logger = logging.getLogger("flywheel.prediction_service")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in {
        400: "The input does not match what was expected; the detail names the field.",
        401: "A bearer token is configured and the request did not carry it.",
        408: "The body did not arrive in time (body_timeout).",
        413: "The body is larger than the configured limit.",
        415: "The event body is not JSON.",
        422: "The body does not match the schema; the detail names the field.",
        431: "The request headers are larger than the configured limit.",
        503: "The database is down and the write buffer is full; retry after Retry-After.",
    }.items()
}

_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Binary-mode CloudEvent: the raw V1/V2 inference body.",
                }
            },
            STRUCTURED: {"schema": {"type": "object", "description": "A structured CloudEvent."}},
            BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "single", "batch")]
    if loc and loc[0] == "header":
        return "header " + ".".join(parts[1:]).replace("_", "-")
    return ".".join(parts) or "body"


def create_app(settings: ServiceSettings, store: PredictionStore | None = None) -> FastAPI:
    """The service on `settings`; `store` defaults to a PredictionStore on settings.database.

    Endpoints: POST /v1/events (KServe payload-logger CloudEvents), POST /v1/feedback, GET
    /healthz, GET /readyz (database reachable), GET /metrics. The database is first touched when
    a request needs it, so the service starts even while the database is down.
    """
    store = store or PredictionStore(settings.database)
    metrics = ServiceMetrics()
    buffer = WriteBuffer(store, metrics, settings.buffer_max_rows, settings.retry_max_wait)
    pairer = EventPairer(
        settings.pairing_max_waiting, settings.pairing_max_age, settings.pairing_max_bytes
    )
    guard = [Depends(bearer_guard(settings.api_token))]
    parse_slots = ParseSlots(settings.max_parallel_parses)

    def pair_and_build_rows(
        events: list[tuple[int, InferenceEvent]],
    ) -> tuple[int, list[PredictionRow], list[Refusal]]:
        """Each event to the pairer; the rows of the calls it completes (calls paired, rows,
        refusals). Runs on a parse thread for a large delivery: restoring a held half and
        building its rows are what cost time."""
        exchanges: list[tuple[int, Exchange]] = []
        for index, event in events:
            metrics.events.labels(event.kind).inc()
            exchange, evicted = pairer.add(event)
            _log_evicted(evicted, metrics)
            if exchange is not None:
                exchanges.append((index, exchange))
        rows, failed = _rows_of(exchanges, settings.model_name)
        return len(exchanges), rows, failed

    FeedbackBody = feedback_body(settings.max_feedback_items)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        buffer.start()
        try:
            yield
        finally:
            await buffer.stop()
            store.close()

    app = FastAPI(
        title="Flywheel prediction service",
        version="1",
        description="Payload-logger sink and feedback API of the prediction log.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.store, app.state.metrics = settings, store, metrics
    app.state.buffer, app.state.pairer = buffer, pairer

    def rejected(scope: Scope, status: int, message: str) -> None:
        metrics.rejected.labels(str(status)).inc()
        logger.warning(
            "rejected %s %s with %d: %s", scope.get("method"), scope.get("path"), status, message
        )

    def problem(
        request: Request,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> JSONResponse:
        if status < 500:
            rejected(request.scope, status, detail)
        body: dict[str, Any] = {"detail": detail}
        if errors is not None:
            body["errors"] = errors
        return JSONResponse(body, status, headers=dict(headers) if headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors()[:20]:
            if (message := json_invalid_message(item)) is not None:
                return problem(request, 422, message)
            found = repr(item.get("input"))[:60] if "input" in item else "nothing"
            errors.append(
                {
                    "field": _field(tuple(item.get("loc", ()))),
                    "message": item["msg"],
                    "found": found,
                }
            )
        detail = "; ".join(f"{e['field']}: {e['message']}, got {e['found']}" for e in errors[:3])
        return problem(request, 422, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = unparsable_body_message(error) or str(error.detail)
        return problem(request, error.status_code, detail, headers=error.headers)

    @app.exception_handler(FlywheelError)
    async def flywheel_error(request: Request, error: FlywheelError) -> JSONResponse:
        headers = None
        if isinstance(error, BufferFull | DatabaseUnavailable | FlusherStopped):
            headers = {"Retry-After": str(settings.retry_after_seconds)}
            logger.warning("answered 503 on %s: %s", request.url.path, error)
        return problem(request, error.status_code, str(error), headers=headers)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process is up (whatever the database does)."""
        return Health(status="ok", buffered_rows=buffer.rows, quarantined_rows=buffer.quarantined)

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["health"],
        responses={
            503: {
                "model": Problem,
                "description": "The database is unreachable, or the buffer's flusher stopped.",
            }
        },
    )
    async def readyz() -> Health:
        """The database answers and buffered rows are being written."""
        buffer.check_running()
        try:
            await run_in_threadpool(store.ping)
        except DatabaseUnavailable:
            metrics.db_errors.inc()
            raise
        return Health(
            status="ready", buffered_rows=buffer.rows, quarantined_rows=buffer.quarantined
        )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of this service."""
        metrics.waiting.set(len(pairer))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=EventsOut,
        tags=["prediction log"],
        dependencies=guard,
        responses=_ERRORS,
        openapi_extra=_EVENTS_BODY,
    )
    async def events(
        request: Request,
        ce_specversion: Annotated[
            str | None, Header(description="CloudEvents version, 1.0.")
        ] = None,
        ce_id: Annotated[str | None, Header(description="Event id: the request id.")] = None,
        ce_type: Annotated[
            str | None, Header(description="org.kubeflow.serving.inference.request or .response")
        ] = None,
        ce_source: Annotated[str | None, Header(description="Who sent it.")] = None,
        ce_inferenceservicename: Annotated[
            str | None, Header(description="The InferenceService (model) name.")
        ] = None,
    ) -> EventsOut | JSONResponse:
        """Take KServe payload-logger events; a request and its response make prediction rows.

        Either half may arrive first; the first waits (bounded) for the other. Per item: each
        event, and each call it completes, is taken or refused on its own; `refused` names
        every one that was not, and its rows are not stored. 202 when anything was taken,
        400 (with the same list) when nothing was.
        """
        body = await request.body()
        # A small half that completes a large one held here is a large step too: pairing
        # decodes the held half and builds its rows.
        async with parse_slots.handling() as handling:
            delivery = await handling.run(len(body), parse_delivery, request.headers, body)
            size = len(body) + pairer.held_bytes(event.id for _, event in delivery.events)
            paired, rows, failed = await handling.run(size, pair_and_build_rows, delivery.events)
            refused = [*delivery.refused, *failed]
            read, events = len(delivery.events), len(delivery.events) + len(delivery.refused)
            metrics.waiting.set(len(pairer))
            if refused:
                metrics.refused_events.inc(len(refused))
                logger.warning(
                    "refused %d of %d events: %s",
                    len(refused),
                    events,
                    "; ".join(f"event {r.index}: {r.reason}" for r in refused[:3]),
                )
            if not read:
                return problem(
                    request,
                    400,
                    "; ".join(f"event {r.index}: {r.reason}" for r in refused[:3])
                    or "the delivery holds no events",
                    errors=[_refusal_out(r) for r in refused[:100]],
                )
            written = await buffer.log_predictions(rows)
            return EventsOut(
                events=events,
                paired=paired,
                rows=len(rows),
                waiting=len(pairer),
                buffered=not written,
                refused=[RefusalOut(**_refusal_out(r)) for r in refused[:100]],
            )

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        tags=["feedback"],
        dependencies=guard,
        responses={
            **_ERRORS,
            202: {"model": FeedbackOut, "description": "Kept for a late join, or buffered."},
            409: {
                "model": FeedbackOut,
                "description": "A different actual was already stored; both are named.",
            },
        },
    )
    async def post_feedback(
        body: Annotated[FeedbackBody, Body()],  # type: ignore[valid-type]
    ) -> JSONResponse:
        """Record actual outcomes by request id: one `{request_id, actual, row?}` or `{items}`."""
        given: list[FeedbackIn] = [body] if isinstance(body, FeedbackIn) else body.items
        items = [FeedbackItem(i.request_id, i.actual, i.row) for i in given]
        result = await buffer.record_feedback(items)
        answer, status = _feedback_answer(items, result)
        if status == 409:
            logger.warning("feedback conflict: %s", answer.detail)
        return JSONResponse(answer.model_dump(), status)

    app.add_middleware(
        EdgeMiddleware,
        limits=settings.edge_limits(),
        on_reject=rejected,
        token=settings.api_token,
    )
    app.add_middleware(InternalErrorMiddleware)
    return app


def _rows_of(
    exchanges: list[tuple[int, Exchange]], model_name: str
) -> tuple[list[PredictionRow], list[Refusal]]:
    """The rows of each paired call; a call that cannot be stored is a refusal, not an error."""
    rows: list[PredictionRow] = []
    refused: list[Refusal] = []
    for index, exchange in exchanges:
        try:
            rows.extend(exchange_rows(exchange, model_name))
        except FlywheelError as error:
            refused.append(Refusal(index, exchange.request.id, str(error)[:500]))
    return rows, refused


def _refusal_out(refusal: Refusal) -> dict[str, Any]:
    return {"index": refusal.index, "id": refusal.id, "reason": refusal.reason[:500]}


def _log_evicted(evicted: list[InferenceEvent], metrics: ServiceMetrics) -> None:
    for event in evicted:
        metrics.evicted.inc()
        logger.warning(
            "evicted the %s half of call %s: its pair did not arrive in time", event.kind, event.id
        )


def _feedback_answer(
    items: list[FeedbackItem], result: FeedbackResult | None
) -> tuple[FeedbackOut, int]:
    """The answer body and its status: 200 all joined, 202 pending/buffered, 409 conflicts."""
    if result is None:
        return FeedbackOut(
            status="buffered",
            joined=0,
            pending=0,
            duplicates=0,
            conflicts=[],
            buffered=len(items),
            detail=f"the database is unavailable; {len(items)} items are "
            "held in memory and will be written when it returns (a conflict with a stored "
            f"value found then is counted as flywheel_feedback_items_total{{outcome="
            f'"{BUFFERED_CONFLICT}"}} and logged; the stored value is kept)',
        ), 202
    conflicts = [
        ConflictOut(request_id=c.request_id, row=c.row, stored=c.stored, received=c.received)
        for c in result.conflicts
    ]
    counts: dict[str, Any] = {
        "joined": result.joined,
        "pending": result.pending,
        "duplicates": result.duplicates,
        "conflicts": conflicts,
        "buffered": 0,
    }
    if conflicts:
        detail = "; ".join(c.message() for c in result.conflicts[:5])
        return FeedbackOut(status="conflict", detail=detail, **counts), 409
    if result.pending:
        which = (
            f"request_id {items[0].request_id!r} row {items[0].row} has"
            if len(items) == 1
            else f"{result.pending} items have"
        )
        detail = f"{which} no prediction yet; kept, it joins when the prediction arrives"
        return FeedbackOut(status="pending", detail=detail, **counts), 202
    return FeedbackOut(
        status="recorded",
        detail=f"{result.joined} joined, {result.duplicates} already recorded",
        **counts,
    ), 200
