"""KServe payload-logger CloudEvents: parse them, pair request with response, turn pairs into rows.

KServe's logger agent posts every request and every response to the logger URL as a CloudEvent in
binary mode: the body is the raw inference body, the attributes are headers (`ce-specversion`,
`ce-id`, `ce-type` `org.kubeflow.serving.inference.request|response`, `ce-source`, and the
extensions `ce-inferenceservicename`, `ce-namespace`, `ce-component`, `ce-endpoint`). Both
halves of one call share `ce-id`. Structured (`application/cloudevents+json`) and batched
(`application/cloudevents-batch+json`) events are accepted too.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from flywheel_mlops.edge.request_ids import request_id_problem
from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.predictions.records import PredictionRow

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
EVENT_TYPES = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
EXTENSIONS = ("inferenceservicename", "namespace", "component", "endpoint")
#: The answer names the request field that holds each record's event time (V1: a top-level key,
#: V2: a response parameter); the predictor sets it from its bundle's dataset spec, so the
#: service stays dataset-agnostic.
EVENT_TIME_FIELD = "event_time_field"

Kind = Literal["request", "response"]
LABEL_MAX = 256  # model_name and model_version columns


class UnsupportedEventError(InvalidInputError):
    """An event whose body is not JSON (e.g. the V2 binary extension): it cannot be logged."""

    status_code = 415


@dataclass(frozen=True)
class InferenceEvent:
    """One half of an inference call as the payload logger saw it."""

    id: str
    kind: Kind
    body: dict[str, Any]
    source: str = ""
    extensions: dict[str, str] = field(default_factory=dict)
    received: float = field(default_factory=time.monotonic)

    @property
    def inference_service(self) -> str:
        """The InferenceService name (`ce-inferenceservicename`), or ''."""
        return self.extensions.get("inferenceservicename", "")


@dataclass(frozen=True)
class Exchange:
    """A request and its response, paired on the CloudEvent id."""

    request: InferenceEvent
    response: InferenceEvent


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"{what} must be JSON, got invalid JSON ({error.msg})") from error
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got a JSON {type(value).__name__}")
    return value


def _event_id(value: object, where: str) -> str:
    problem = request_id_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{where} (the request id) {problem}")
    assert isinstance(value, str)
    return value


def _label(value: object, name: str) -> str:
    """A model name or version as stored: 1 to 256 characters, no control characters."""
    text = str(value)
    if not text or len(text) > LABEL_MAX or not text.isprintable():
        raise InvalidInputError(
            f"the response's {name} must be 1 to {LABEL_MAX} printable characters, "
            f"got {len(text)} characters starting {text[:40]!a}"
        )
    return text


def _event_kind(value: object, where: str) -> Kind:
    if value not in EVENT_TYPES:
        raise InvalidInputError(
            f"{where} must be {REQUEST_TYPE!r} or {RESPONSE_TYPE!r}, got {str(value)[:100]!r}"
        )
    return "request" if value == REQUEST_TYPE else "response"


@dataclass(frozen=True)
class Refusal:
    """An event of a delivery that was not taken, or a call whose rows were not stored."""

    index: int  # the event's position in the delivery
    id: str  # its id as sent ('' if it had none), shortened
    reason: str


@dataclass(frozen=True)
class Delivery:
    """The events of one HTTP delivery that were read, with their positions, and the refusals."""

    events: list[tuple[int, InferenceEvent]]
    refused: list[Refusal]


def parse_events(headers: Mapping[str, str], body: bytes) -> list[InferenceEvent]:
    """The inference events in one HTTP delivery, all or nothing (see `parse_delivery`).

    Raises InvalidInputError for the first event that is wrong.
    """
    delivery = parse_delivery(headers, body)
    if delivery.refused:
        raise InvalidInputError(delivery.refused[0].reason)
    return [event for _, event in delivery.events]


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The inference events in one HTTP delivery (binary, structured or batched mode).

    Each event of a batch is judged on its own: a wrong one is a Refusal naming its position,
    and the others are read. `headers` must be case-insensitive or lower-case. Raises
    InvalidInputError naming what is wrong with the delivery itself (not JSON, not an array,
    a binary-mode event's headers), UnsupportedEventError for a body that is not JSON.
    """
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == STRUCTURED:
        event = _structured(_json_object(body, "a structured CloudEvent"), "event")
        return Delivery([(0, event)], [])
    if content_type == BATCH:
        try:
            batch = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InvalidInputError(
                f"a CloudEvents batch must be JSON, got invalid JSON ({error.msg})"
            ) from error
        if not isinstance(batch, list):
            raise InvalidInputError(
                f"a CloudEvents batch must be a JSON array, got a JSON {type(batch).__name__}"
            )
        delivery = Delivery([], [])
        for index, item in enumerate(batch):
            try:
                event = _structured(item if isinstance(item, dict) else {}, f"event {index}")
            except InvalidInputError as error:
                given = item.get("id") if isinstance(item, dict) else None
                delivery.refused.append(Refusal(index, _shown_id(given), str(error)))
            else:
                delivery.events.append((index, event))
        return delivery
    if content_type and "json" not in content_type:
        raise UnsupportedEventError(
            f"event body must be JSON (content-type application/json), "
            f"got content-type {content_type[:100]!r}"
        )
    if "ce-specversion" not in headers:
        raise InvalidInputError(
            "header ce-specversion is missing: expected a CloudEvent in "
            "binary mode (ce-* headers) or content-type " + STRUCTURED
        )
    kind = _event_kind(headers.get("ce-type"), "header ce-type")
    event_id = _event_id(headers.get("ce-id"), "header ce-id")
    event = InferenceEvent(
        id=event_id,
        kind=kind,
        body=_json_object(body, f"the {kind} body"),
        source=headers.get("ce-source", ""),
        extensions={name: headers[f"ce-{name}"] for name in EXTENSIONS if f"ce-{name}" in headers},
    )
    return Delivery([(0, event)], [])


def _shown_id(value: object) -> str:
    """An id as sent, short and ASCII, for a refusal."""
    return ascii(value)[1:-1][:100] if isinstance(value, str) else ""


def _structured(event: dict[str, Any], where: str) -> InferenceEvent:
    kind = _event_kind(event.get("type"), f"{where} attribute type")
    event_id = _event_id(event.get("id"), f"{where} attribute id")
    if "data_base64" in event:
        try:
            data: Any = orjson.loads(base64.b64decode(str(event["data_base64"]), validate=True))
        except (ValueError, orjson.JSONDecodeError) as error:
            raise InvalidInputError(
                f"{where} attribute data_base64 must be base64 of a JSON object"
            ) from error
    else:
        data = event.get("data")
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{where} attribute data must be a JSON object (the {kind} "
            f"body), got {type(data).__name__}"
        )
    return InferenceEvent(
        id=event_id,
        kind=kind,
        body=data,
        source=str(event.get("source", "")),
        extensions={n: str(event[n]) for n in EXTENSIONS if n in event},
    )


def event_headers(request_id: str, kind: Kind, source: str, service: str = "") -> dict[str, str]:
    """The binary-mode headers KServe's logger sends for one half of a call."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": request_id,
        "ce-source": source,
        "ce-type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        "content-type": "application/json",
    }
    if service:
        headers["ce-inferenceservicename"] = service
    return headers


@dataclass(frozen=True)
class _Waiting:
    """A half waiting for its pair: its body kept as JSON bytes, which cost what they weigh
    (the parsed dicts and lists take about twenty times more)."""

    event: InferenceEvent  # with an empty body
    raw: bytes

    def restored(self) -> InferenceEvent:
        return replace(self.event, body=orjson.loads(self.raw))


class EventPairer:
    """Holds the first half of each call until the other half arrives (either order), bounded.

    Past `max_waiting` halves or `max_bytes` bytes of waiting bodies (as JSON), or after
    `max_age` seconds, the oldest halves are evicted and returned by `add`/`expire` so the
    caller can log and count them: never a silent drop.
    """

    def __init__(
        self, max_waiting: int = 10_000, max_age: float = 600.0, max_bytes: int = 64 * 1024**2
    ):
        """`max_waiting`: halves held at most; `max_age`: seconds a half waits at most;
        `max_bytes`: JSON bytes of the waiting halves' bodies at most."""
        self.max_waiting = max_waiting
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._waiting)

    def held_bytes(self, event_ids: Iterable[str]) -> int:
        """JSON bytes of the halves waiting under these ids (what pairing them would decode)."""
        with self._lock:
            return sum(len(w.raw) for i in event_ids if (w := self._waiting.get(i)) is not None)

    @property
    def bytes(self) -> int:
        """JSON bytes of the waiting halves' bodies."""
        return self._bytes

    def add(self, event: InferenceEvent) -> tuple[Exchange | None, list[InferenceEvent]]:
        """Pair `event` with its other half if it is here; returns (pair or None, evicted).

        Safe from several threads: the lock covers only the book-keeping, so encoding a half
        that waits or decoding the one that paired (tens of ms at the body limit) never holds
        up a caller on another thread.
        """
        taken = self._take_partner(event)
        if taken is None:
            waiting = _Waiting(replace(event, body={}), _json_bytes(event.body))
            with self._lock:
                taken = self._take_partner(event)  # it may have arrived while we encoded
                if taken is None:
                    return None, self._hold(waiting)
        other, evicted = taken
        held = other.restored()
        request, response = (event, held) if event.kind == "request" else (held, event)
        return Exchange(request, response), evicted

    def _take_partner(self, event: InferenceEvent) -> tuple[_Waiting, list[InferenceEvent]] | None:
        """The waiting other half of `event`'s call, removed (with the halves that expired)."""
        with self._lock:
            other = self._waiting.get(event.id)
            if other is None or other.event.kind == event.kind:
                return None
            self._pop(event.id)
            return other, self.expire()

    def _hold(self, waiting: _Waiting) -> list[InferenceEvent]:
        """Keep `waiting` (a redelivered half replaces the one held and moves to the back of
        the line); returns what the bounds evicted. Called with the lock held."""
        event_id = waiting.event.id
        self._pop(event_id)
        self._waiting[event_id] = waiting
        self._bytes += len(waiting.raw)
        evicted = self.expire()
        while len(self._waiting) > self.max_waiting or (
            self._bytes > self.max_bytes and len(self._waiting) > 1
        ):
            evicted.append(self._pop(next(iter(self._waiting))))
        if self._bytes > self.max_bytes:  # one half larger than the whole allowance
            evicted.append(self._pop(event_id))
        return evicted

    def _pop(self, event_id: str) -> InferenceEvent:
        """Remove a waiting half (if there) and return it without its body."""
        waiting = self._waiting.pop(event_id, None)
        if waiting is None:
            return InferenceEvent(event_id, "request", {})
        self._bytes -= len(waiting.raw)
        return waiting.event

    def expire(self, now: float | None = None) -> list[InferenceEvent]:
        """Evict and return the halves older than max_age (without their bodies)."""
        limit = (time.monotonic() if now is None else now) - self.max_age
        evicted = []
        with self._lock:
            while self._waiting:
                oldest_id, oldest = next(iter(self._waiting.items()))
                if oldest.event.received >= limit:
                    break
                evicted.append(self._pop(oldest_id))
        return evicted


# -- bodies -> rows ----------------------------------------------------------------------------


def _flat(values: Any) -> list[Any]:
    if isinstance(values, list):
        out: list[Any] = []
        for value in values:
            out.extend(_flat(value))
        return out
    return [values]


def request_records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a V1 (`instances` of objects) or V2 (`inputs`, one per column) request."""
    if "instances" in body or ("inputs" in body and not _is_v2_inputs(body["inputs"])):
        instances = body.get("instances", body.get("inputs"))
        if not isinstance(instances, list):
            raise InvalidInputError(
                f"request instances must be a list of records, got {type(instances).__name__}"
            )
        for index, record in enumerate(instances):
            if not isinstance(record, dict):
                raise InvalidInputError(
                    f"request instance {index} must be an object of "
                    f"feature values, got {type(record).__name__}"
                )
        return instances
    if "inputs" in body:
        return _v2_records(body["inputs"])
    raise InvalidInputError(
        f"request body must hold 'instances' (V1) or 'inputs' (V2), got keys {sorted(body)[:10]}"
    )


def _is_v2_inputs(inputs: Any) -> bool:
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(i, dict) and "name" in i and "data" in i for i in inputs)
    )


def _v2_records(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in inputs:
        name, data, shape = str(tensor["name"]), _flat(tensor["data"]), tensor.get("shape")
        n = (
            shape[0]
            if isinstance(shape, list) and shape and isinstance(shape[0], int)
            else len(data)
        )
        if not 0 <= n <= len(data) or (n == 0 and data):
            raise InvalidInputError(f"V2 input {name!r} has {len(data)} values for shape {shape}")
        if rows is not None and n != rows:
            raise InvalidInputError(
                f"V2 input {name!r} has {n} rows, expected {rows} like the inputs before it"
            )
        rows = n
        if n and len(data) == n:
            columns[name] = data
        elif n and len(data) % n == 0:
            width = len(data) // n
            for j in range(width):
                columns[f"{name}_{j}"] = data[j::width]
        else:
            raise InvalidInputError(f"V2 input {name!r} has {len(data)} values for shape {shape}")
    return [{name: values[i] for name, values in columns.items()} for i in range(rows or 0)]


def response_predictions(body: dict[str, Any]) -> list[float]:
    """The predicted numbers of a V1 (`predictions`) or V2 (output `predictions`) response."""
    if "predictions" in body:
        values, where = _flat(body["predictions"]), "response predictions"
    elif isinstance(body.get("outputs"), list) and body["outputs"]:
        outputs = [o for o in body["outputs"] if isinstance(o, dict)]
        chosen = next(
            (o for o in outputs if o.get("name") == "predictions"), outputs[0] if outputs else {}
        )
        values, where = _flat(chosen.get("data", [])), f"V2 output {chosen.get('name')!r}"
    else:
        raise InvalidInputError(
            "response body must hold 'predictions' (V1) or 'outputs' (V2), "
            f"got keys {sorted(body)[:10]}"
        )
    numbers = []
    for index, value in enumerate(values):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInputError(
                f"{where} must be finite numbers, got {str(value)[:40]!r} at position {index}"
            )
        numbers.append(float(value))
    return numbers


def exchange_rows(exchange: Exchange, default_model_name: str) -> list[PredictionRow]:
    """One PredictionRow per record of a paired call.

    The stored request id is the one the client saw in the response (`request_id` in V1, `id`
    in V2), falling back to the CloudEvent id; feedback joins on it.
    """
    request, response = exchange.request.body, exchange.response.body
    records = request_records(request)
    predicted = response_predictions(response)
    if len(records) != len(predicted):
        raise InvalidInputError(
            f"request {exchange.request.id!r} has {len(records)} records but "
            f"its response has {len(predicted)} predictions"
        )
    request_id = _event_id(
        response.get("request_id")
        or response.get("id")
        or request.get("id")
        or exchange.request.id,
        "the response's request id",
    )
    model_name = _label(
        response.get("model_name") or exchange.request.inference_service or default_model_name,
        "model_name",
    )
    model_version = _label(response.get("model_version") or "unknown", "model_version")
    times = event_times(records, _event_time_field(response))
    return [
        PredictionRow(
            request_id=request_id,
            row=index,
            model_name=model_name,
            model_version=model_version,
            features=record,
            prediction=prediction,
            event_time=moment,
            call_rows=len(records),
        )
        for index, (record, prediction, moment) in enumerate(
            zip(records, predicted, times, strict=True)
        )
    ]


def _event_time_field(response: dict[str, Any]) -> str | None:
    parameters = response.get("parameters")
    named = response.get(EVENT_TIME_FIELD) or (
        parameters.get(EVENT_TIME_FIELD) if isinstance(parameters, dict) else None
    )
    return named if isinstance(named, str) and named else None


def event_times(records: list[dict[str, Any]], name: str | None) -> list[datetime | None]:
    """Each record's event time from its field `name` (UTC; a naive time is read as UTC).

    None where there is no such field or its value is not an ISO 8601 time: the row then keeps
    its arrival time as its event time, and is stored all the same (no row is lost over a clock).
    """
    return [
        _event_time(record.get(name) if name and isinstance(record, dict) else None)
        for record in records
    ]


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json_bytes(body: Any) -> bytes:
    """`body` as JSON bytes; orjson stops at 255 levels, the standard library goes deeper (an
    operator may raise the edge's depth limit past orjson's)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()
