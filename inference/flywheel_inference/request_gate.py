"""ASGI middleware in front of KServe's routes: what KServe leaves to each model server.

For inference requests (V1 :predict, V2 /infer) it checks, before KServe reads anything: the
header size, the bearer token, the model name, the content type and the declared body size; it
then reads the body under the edge policy's size, time and depth limits, and only a request
whose body has arrived counts against the concurrency cap (a client that sends its body slowly
holds a connection, not a slot). It replaces a client's `x-request-id` that breaks the request
id rule with a new one (and says so in `x-request-id-replaced`); gives every answer a request
id; counts every answer by protocol and status; writes one JSON log line per request (a
rejection is one line, not a traceback); and turns an exception that escaped KServe into a 500
that does not echo internal text.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from flywheel_inference.errors import (
    Overloaded,
    PayloadTooLarge,
    Rejection,
    Unauthorized,
    UnknownModel,
    UnsupportedMediaType,
)
from flywheel_inference.metrics import ServingMetrics
from flywheel_mlops.edge.asgi_body import read_body, replaying
from flywheel_mlops.edge.auth import bearer_problem
from flywheel_mlops.edge.json_depth import check_json_depth
from flywheel_mlops.edge.limits import EdgeLimits, EdgeRefusal, check_headers
from flywheel_mlops.edge.request_ids import new_request_id, request_id_problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("flywheel.access")

_V1 = re.compile(r"^/v1/models/([^/:]+):predict$")
_V2 = re.compile(r"^/v2/models/([^/]+)/infer$")
#: Routes KServe registers but answers with 501 (versions, explain) or that would let any client
#: unload the model (the repository extension): refused here with a 4xx that says why.
_REFUSED = (
    (
        re.compile(r"^/v2/models/[^/]+/versions/"),
        "model versions are not addressable here; use /v2/models/<name>/... (the served version "
        "is in every answer's model_version)",
    ),
    (re.compile(r"^/v1/models/[^/:]+:explain$"), "explanations are not served by this model"),
    (
        re.compile(r"^/v2/repository/"),
        "the model repository extension is disabled; the served version follows the registry alias",
    ),
)
#: Probes and scrapes never need the token: kubelet and Prometheus do not carry one.
_OPEN = re.compile(
    r"^(/|/metrics|/v2/health/(live|ready)|/v2/models/[^/]+/ready|/v1/models/[^/:]+)$"
)
_V1_TYPES = frozenset({"application/json", "application/cloudevents+json"})
_BINARY_HEADER = b"inference-header-content-length"
_ERROR_BODY_BYTES = 2048
_THREAD_BYTES = 256 * 1024  # bodies larger than this are measured off the event loop
REPLACED_ID = "x-request-id-replaced"


@dataclass(frozen=True)
class GateOptions:
    """Limits the gate enforces; every field is a predictor command-line option."""

    limits: EdgeLimits = field(default_factory=EdgeLimits)
    """Body size, JSON depth, body time and header size limits (shared with the service)."""

    max_concurrency: int = 64
    """Inference requests served at once; more get 503 with Retry-After (0: no cap)."""

    api_token: str = ""
    """Bearer token required on every route but probes and /metrics; empty: no auth."""


class RequestGate:
    """The checks, ids, counts and log lines every inference request passes through."""

    def __init__(
        self,
        app: ASGIApp,
        options: GateOptions,
        metrics: ServingMetrics,
        model_names: Collection[str],
    ):
        """
        Args:
            app: the application behind the gate (KServe's FastAPI app).
            options: limits and the optional token.
            metrics: where answers are counted.
            model_names: names of the models served (a live view: names can be added later).
        """
        self.app = app
        self.options = options
        self.metrics = metrics
        self.model_names = model_names
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route inference requests through the checks; pass everything else (after auth)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        route = _inference_route(path) if scope["method"] == "POST" else None
        try:
            check_headers(scope.get("headers", []), self.options.limits.max_header_bytes)
        except EdgeRefusal as too_large:
            await self._answer(
                scope, send, _rejection(too_large), "other", "", time.perf_counter(), {}
            )
            return
        headers = _headers(scope)
        if route is None:
            refused = _refused(path)
            if refused is not None:
                await self._answer(scope, send, refused, "other", "", time.perf_counter(), headers)
                return
            if self.options.api_token and not _OPEN.match(path):
                problem = self._auth_problem(scope)
                if problem is not None:
                    await self._answer(
                        scope, send, problem, "other", "", time.perf_counter(), headers
                    )
                    return
            await self._guarded(scope, receive, send)
            return
        protocol, model = route
        started = time.perf_counter()
        scope, replaced = _normalized_id(scope, headers)
        if replaced:
            headers = _headers(scope)
        refusal = self._check(scope, headers, protocol, model)
        if refusal is not None:
            await self._answer(scope, send, refusal, protocol, model, started, headers)
            return
        try:
            body = await self._read(receive, headers)
        except EdgeRefusal as edge:
            await self._answer(scope, send, _rejection(edge), protocol, model, started, headers)
            return
        if body is None:  # the client went away
            return
        # Counted only now: a body still arriving takes a connection, not a slot.
        overloaded = self._overloaded()
        if overloaded is not None:
            await self._answer(scope, send, overloaded, protocol, model, started, headers)
            return
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            await self._forward(
                scope, receive, send, body, protocol, model, started, headers, replaced
            )
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()

    async def _read(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes | None:
        """The body under the edge limits; the JSON part of it no deeper than allowed."""
        limits = self.options.limits
        body = await read_body(receive, limits.max_body_bytes, limits.body_timeout)
        if not body:
            return body
        json_part = body
        binary = headers.get(_BINARY_HEADER, b"")
        if binary:
            # Binary tensor data: only the JSON header before it nests; the decoder checks
            # the framing (a header length that is not a number is refused there).
            json_part = body[: int(binary)] if binary.isdigit() else b""
        if len(json_part) > _THREAD_BYTES:
            await asyncio.to_thread(check_json_depth, json_part, limits.max_json_depth)
        else:
            check_json_depth(json_part, limits.max_json_depth)
        return body

    def _overloaded(self) -> Overloaded | None:
        cap = self.options.max_concurrency
        if cap and self.inflight >= cap:
            return Overloaded(
                f"{self.inflight} requests are in flight, the cap is {cap}; "
                f"retry after the Retry-After delay"
            )
        return None

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other route, as KServe answers it, except that an escaped exception becomes a
        500 naming a request id instead of KServe's "<type> : <message>"."""
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:
                raise
            await _internal_error(scope, send, new_request_id(), {})

    def _check(
        self, scope: Scope, headers: dict[bytes, bytes], protocol: str, model: str
    ) -> Rejection | None:
        """The first reason to refuse the request without reading its body, or None."""
        if self.options.api_token:
            problem = self._auth_problem(scope)
            if problem is not None:
                return problem
        if model not in self.model_names:
            return UnknownModel(
                f"model {model!r} is not served here; models: {sorted(self.model_names)}"
            )
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if protocol == "v1" and media and media not in _V1_TYPES:
            return UnsupportedMediaType(
                f"content-type must be application/json for V1, got {media!r}"
            )
        json_media = media == "application/json" or media.endswith("+json")
        if protocol == "v2" and media and not json_media and _BINARY_HEADER not in headers:
            return UnsupportedMediaType(
                f"content-type must be application/json, or application/octet-stream with "
                f"the inference-header-content-length header (binary tensor data), got "
                f"{media!r}"
            )
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return Rejection(f"content-length must be a number of bytes, got {length!r}")
            limit = self.options.limits.max_body_bytes
            if int(length) > limit:
                return PayloadTooLarge(
                    f"the body is {int(length)} bytes; at most {limit} are accepted"
                )
        # Refused before the body is read when the cap is already reached; checked again
        # once the body is in, when the request would take a slot.
        return self._overloaded()

    def _auth_problem(self, scope: Scope) -> Unauthorized | None:
        found = bearer_problem(scope.get("headers", []), self.options.api_token)
        if found is None:
            return None
        return Unauthorized(
            f"this server requires a bearer token (Authorization: Bearer ...); "
            f"the request carried {found}"
        )

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        protocol: str,
        model: str,
        started: float,
        headers: dict[bytes, bytes],
        replaced: str,
    ) -> None:
        """Hand the buffered body to KServe and watch what it answers."""
        fallback_id = _client_id(headers) or new_request_id()
        seen: dict[str, Any] = {"status": 0, "request_id": fallback_id, "version": "", "error": b""}
        replay = replaying(body, receive)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                response_headers = list(message.get("headers", []))
                names = {k.lower(): v for k, v in response_headers}
                if b"x-request-id" in names:
                    seen["request_id"] = names[b"x-request-id"].decode("latin-1")
                else:
                    response_headers.append((b"x-request-id", fallback_id.encode()))
                if replaced:
                    response_headers.append((REPLACED_ID.encode(), replaced.encode()))
                seen["version"] = names.get(b"x-model-version", b"").decode("latin-1")
                message = {**message, "headers": response_headers}
            elif (
                message["type"] == "http.response.body"
                and seen["status"] >= 400
                and len(seen["error"]) < _ERROR_BODY_BYTES
            ):
                seen["error"] += message.get("body", b"")[:_ERROR_BODY_BYTES]
            await send(message)

        try:
            await self.app(scope, replay, watch)
        except Exception:
            if seen["status"]:
                raise  # the answer is on its way already; nothing sane can follow it
            seen["status"] = 500
            await _internal_error(scope, send, fallback_id, {"model_name": model})
        self._record(
            scope,
            protocol,
            model,
            seen["status"],
            started,
            seen["request_id"],
            seen["version"],
            _error_text(seen["error"]) if seen["status"] >= 400 else "",
        )

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        rejection: Rejection,
        protocol: str,
        model: str,
        started: float,
        headers: dict[bytes, bytes],
    ) -> None:
        request_id = _client_id(headers) or new_request_id()
        await _send_json(
            send,
            rejection.status,
            {"error": rejection.message},
            {**rejection.headers, "x-request-id": request_id},
        )
        self._record(
            scope, protocol, model, rejection.status, started, request_id, "", rejection.message
        )

    def _record(
        self,
        scope: Scope,
        protocol: str,
        model: str,
        status: int,
        started: float,
        request_id: str,
        version: str,
        error: str,
    ) -> None:
        seconds = time.perf_counter() - started
        label = model if model in self.model_names else "unknown"
        self.metrics.requests.labels(label, protocol, str(status)).inc()
        if protocol != "other":
            self.metrics.latency.labels(label, protocol).observe(seconds)
        extra: dict[str, Any] = {
            "request_id": request_id,
            "model_name": model,
            "protocol": protocol,
            "status": status,
            "ms": round(seconds * 1000, 3),
        }
        if version:
            extra["model_version"] = version
        if error:
            extra["error"] = error
        level = logging.ERROR if status >= 500 and status != 503 else logging.INFO
        log.log(level, "%s %s %s", scope["method"], scope["path"], status, extra=extra)


def _inference_route(path: str) -> tuple[str, str] | None:
    if match := _V1.match(path):
        return "v1", match.group(1)
    if match := _V2.match(path):
        return "v2", match.group(1)
    return None


def _refused(path: str) -> Rejection | None:
    for pattern, reason in _REFUSED:
        if pattern.match(path):
            return UnknownModel(reason)
    return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _client_id(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"x-request-id", b"").decode("latin-1")
    return value if request_id_problem(value) is None else None


def _normalized_id(scope: Scope, headers: dict[bytes, bytes]) -> tuple[Scope, str]:
    """`scope` with a client's invalid x-request-id replaced by a new one, and why ('' if not).

    The predictor answers and logs under the id in the headers, so a bad id never reaches the
    response headers or the prediction log (where it would sink the other rows of a batch).
    """
    given = headers.get(b"x-request-id")
    if given is None:
        return scope, ""
    problem = request_id_problem(given.decode("latin-1"))
    if problem is None:
        return scope, ""
    fresh = new_request_id().encode()
    kept = [(k, v) for k, v in scope["headers"] if k.lower() != b"x-request-id"]
    why = f"the x-request-id sent {problem}; this request's id is {fresh.decode()}"
    return {**scope, "headers": [*kept, (b"x-request-id", fresh)]}, why


def _rejection(refusal: EdgeRefusal) -> Rejection:
    """An edge refusal as the gate's own answer (same status, same message)."""
    rejection = Rejection(refusal.message)
    rejection.status = refusal.status
    return rejection


async def _internal_error(scope: Scope, send: Send, request_id: str, extra: dict[str, str]) -> None:
    """Log the escaped exception with its traceback; answer 500 naming only the request id."""
    log.exception(
        "internal error answering %s %s",
        scope["method"],
        scope["path"],
        extra={"request_id": request_id, **extra},
    )
    await _send_json(
        send,
        500,
        {"error": f"internal error; request id {request_id}"},
        {"x-request-id": request_id},
    )


async def _send_json(
    send: Send, status: int, content: dict[str, Any], headers: dict[str, str]
) -> None:
    body = orjson.dumps(content)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error_text(body: bytes) -> str:
    """The "error" (KServe) or "detail" (FastAPI) of an error body, for the log line."""
    try:
        content = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(content, dict):
        return str(content.get("error") or content.get("detail") or content)[:1000]
    return str(content)[:1000]
