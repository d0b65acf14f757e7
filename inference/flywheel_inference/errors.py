"""Flywheel's errors as KServe's own exception types, and the rejections the request gate answers.

KServe's HTTP and gRPC servers already map their exception types to statuses
(InvalidInput: 400 / INVALID_ARGUMENT, ModelNotFound: 404, ModelNotReady: 503 / UNAVAILABLE), so
the predictor raises those and both protocols answer correctly. What KServe does not check at
all (auth, body size, content type, overload) the request gate answers with a `Rejection`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from kserve.errors import InferenceError, InvalidInput, ModelNotFound, ModelNotReady
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from flywheel_mlops.edge.body_errors import json_invalid_message, unparsable_body_message
from flywheel_mlops.errors import (
    BundleIntegrityError,
    ConfigError,
    FlywheelError,
    InvalidInputError,
    NotFoundError,
)


def answerable(message: str, limit: int = 2000) -> str:
    """`message` as an answer can carry it: at most `limit` characters (a client's megabyte
    value is not echoed back) and encodable (a lone surrogate a client sent is escaped)."""
    if len(message) > limit:
        message = f"{message[:limit]}... ({len(message) - limit} more characters)"
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def to_kserve(error: FlywheelError, model_name: str) -> Exception:
    """The KServe exception that answers `error` with the status Flywheel declares for it."""
    if isinstance(error, InvalidInputError | ConfigError):
        return InvalidInput(answerable(str(error)))  # 400
    if isinstance(error, NotFoundError):
        return ModelNotFound(model_name)  # 404
    if isinstance(error, BundleIntegrityError):
        return ModelNotReady(model_name, str(error))  # 503
    return InferenceError(str(error))  # 500


class Rejection(Exception):
    """A request the gate answers itself, before KServe sees it."""

    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Unauthorized(Rejection):
    """401: a bearer token is configured and the request did not carry it."""

    status = 401

    def __init__(self, message: str):
        super().__init__(message, {"www-authenticate": 'Bearer realm="flywheel"'})


class UnknownModel(Rejection):
    """404: the path names a model this server does not serve."""

    status = 404


class PayloadTooLarge(Rejection):
    """413: the body is larger than the configured maximum."""

    status = 413


class UnsupportedMediaType(Rejection):
    """415: the content type is not one the protocol accepts."""

    status = 415


class Overloaded(Rejection):
    """503 with Retry-After: more requests in flight than the configured cap."""

    status = 503

    def __init__(self, message: str, retry_after_seconds: int = 1):
        super().__init__(message, {"retry-after": str(retry_after_seconds)})


async def unparsable_body_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's bare "There was an error parsing the body" 400 (a body that is not UTF-8), as
    a 400 saying why and where; any other HTTPException is answered as Starlette would."""
    if isinstance(exc, StarletteHTTPException) and (message := unparsable_body_message(exc)):
        return ORJSONResponse(status_code=400, content={"error": answerable(message)})
    return await http_exception_handler(request, exc)  # type: ignore[arg-type]


async def request_validation_handler(_: Request, exc: Exception) -> ORJSONResponse:
    """FastAPI's body validation (V2 JSON against the InferenceRequest model) as a 400 whose
    message names each field by its path, like the rest of the predictor's errors."""
    errors: list[Any] = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    parts = []
    for error in errors[:5]:
        if (message := json_invalid_message(error)) is not None:
            return ORJSONResponse(status_code=400, content={"error": answerable(message)})
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) else f", got {got!r}"
        parts.append(f"{where}: {error.get('msg', 'invalid')}{shown}")
    message = "; ".join(parts) or "the request body does not match the V2 inference request"
    return ORJSONResponse(status_code=400, content={"error": answerable(message)})
