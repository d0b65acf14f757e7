"""Adversarial requests for both servers, generated per family, and a runner that scores them.

The families are the classes of fault an outside attack found (issue 14): nesting depth,
encodings, request ids, framing, header sizes and batch semantics; slow bodies have their own
round (`slow_body_round`). Cases are generated from a seed, not listed, so a larger `count`
explores more of each family. The runner counts, per family, what was sent, the statuses,
5xx answers and dropped connections, and remembers which calls must reach the prediction log
(a predictor call answered 200, a well-formed call inside an events delivery answered 202),
so `lost_rows` can compare them with the log afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson

Target = Literal["predictor", "service"]
Headers = tuple[tuple[bytes, bytes], ...]
FAMILIES = ("depth", "encodings", "ids", "framing", "headers", "batches", "unpaired")
_V1, _V2 = "/v1/models/{model}:predict", "/v2/models/{model}/infer"
_BATCH = "application/cloudevents-batch+json"
_REQUEST, _RESPONSE = (
    "org.kubeflow.serving.inference.request",
    "org.kubeflow.serving.inference.response",
)


@dataclass(frozen=True)
class Case:
    """One request: where it goes, what it carries, and which call ids must then be logged."""

    family: str
    target: Target
    path: str
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    must_log: tuple[str, ...] = ()  # ids logged if the answer is 2xx ("*": the answer's id)


@dataclass
class Tally:
    """What the runner saw, per family."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    server_errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    must_log: set[str] = field(default_factory=set)

    def record(self, case: Case, response: httpx.Response | None) -> None:
        """Count one answer (None: the connection was dropped)."""
        self.sent[case.family] += 1
        if response is None:
            self.dropped[case.family] += 1
            return
        self.statuses.setdefault(case.family, Counter())[response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors[case.family] += 1
        if 200 <= response.status_code < 300:
            for call in case.must_log:
                self.must_log.add(response.headers.get("x-request-id", "") if call == "*" else call)

    def summary(self) -> dict[str, Any]:
        """Plain counts, per family."""
        return {
            family: {
                "sent": self.sent[family],
                "statuses": {str(k): v for k, v in sorted(self.statuses.get(family, {}).items())},
                "5xx": self.server_errors[family],
                "dropped": self.dropped[family],
            }
            for family in sorted(self.sent)
        }


class Generator:
    """Cases for a model whose records look like `record` (one valid input record)."""

    def __init__(self, model: str, record: dict[str, Any], seed: int = 14):
        """`model`: the served model's name; `record`: a valid record of its input schema."""
        self.model, self.record, self.random = model, record, random.Random(seed)
        self.v1, self.v2 = _V1.format(model=model), _V2.format(model=model)

    def cases(self, family: str, count: int) -> Iterator[Case]:
        """`count` cases of `family`, alternating between the predictor and the service."""
        make: Callable[[int], Case] = getattr(self, f"_{family}")
        for index in range(count):
            yield make(index)

    # -- helpers ---------------------------------------------------------------------------

    def _id(self) -> str:
        return f"adv-{uuid.UUID(int=self.random.getrandbits(128)).hex}"

    def _v1_call(self, records: int = 1, **extra: Any) -> bytes:
        return orjson.dumps({"instances": [self.record] * records, **extra})

    def _v2_call(self, **extra: Any) -> dict[str, Any]:
        inputs = []
        for name, value in self.record.items():
            datatype = "BYTES" if isinstance(value, str) else "FP64"
            inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
        return {"inputs": inputs, **extra}

    def _events(self, calls: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> bytes:
        events = []
        for event_id, request, response in calls:
            for kind, data in ((_REQUEST, request), (_RESPONSE, response)):
                events.append(
                    {"specversion": "1.0", "id": event_id, "type": kind, "source": "adv"}
                    | {"data": data}
                )
        return _dumps(events)

    def _good_call(self, records: int = 1) -> tuple[str, dict[str, Any], dict[str, Any]]:
        call = self._id()
        answer = {"predictions": [1.0] * records, "model_version": "v1", "request_id": call}
        return call, {"instances": [self.record] * records}, answer

    def _json(self, target: Target) -> tuple[str, tuple[tuple[bytes, bytes], ...]]:
        if target == "predictor":
            return self.random.choice([self.v1, self.v2]), ((b"content-type", b"application/json"),)
        return "/v1/feedback", ((b"content-type", b"application/json"),)

    # -- families --------------------------------------------------------------------------

    def _depth(self, index: int) -> Case:
        """Values nested from a few levels to a hundred thousand, in every place a body nests."""
        depth = int(10 ** self.random.uniform(0.5, 5))
        opener, closer = self.random.choice([(b"[", b"]"), (b'{"k":', b"}")])
        deep = opener * depth + b"1" + closer * depth
        place = index % 5
        if place == 0:
            body = b'{"instances": [{"distance_km": ' + deep + b"}]}"
            return Case(
                "depth", "predictor", self.v1, body, ((b"content-type", b"application/json"),)
            )
        if place == 1:
            body = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": '
            return Case(
                "depth",
                "predictor",
                self.v2,
                body + deep + b"}]}",
                ((b"content-type", b"application/json"),),
            )
        if place == 2:
            return Case(
                "depth", "service", "/v1/feedback", b'{"request_id": "a", "actual": ' + deep + b"}"
            )
        call, request, response = self._good_call()
        events = self._events([(call, request, response)])
        # The deep value goes in a feature (depth limit: the whole delivery is refused) ...
        body = events.replace(b'"instances":[{', b'"instances":[{"deep":' + deep + b",", 1)
        if place == 4:  # ... or in the predictions
            body = events.replace(b'"predictions":[', b'"predictions":[' + deep + b",", 1)
        return Case("depth", "service", "/v1/events", body, ((b"content-type", _BATCH.encode()),))

    def _encodings(self, index: int) -> Case:
        """Lone surrogates, invalid UTF-8, NUL, U+2028, BOMs, NaN, huge numbers; keys and values."""
        odd = self.random.choice(
            [
                b'"\\udfff"',
                b'"\\ud800x"',
                b'"\xff\xfe"',
                b'"\\u0000"',
                b'"\xe2\x80\xa8"',
                b"NaN",
                b"Infinity",
                b"-Infinity",
                b"1e400",
                b"123456789012345678901234567890",
                b'"\xc3\x28"',
                b'"\xed\xa0\x80"',
                b"true",
                b"null",
                b'"' + b"\xe9" * 50 + b'"',
            ]
        )
        as_key = self.random.random() < 0.5
        target: Target = "predictor" if index % 3 else "service"
        path, headers = self._json(target)
        prefix = self.random.choice([b"", b"\xef\xbb\xbf", b"\xff\xfe"]) if index % 7 == 0 else b""
        if target == "predictor" and path == self.v1:
            record = orjson.dumps(self.record)[:-1]
            body = (
                b'{"instances": ['
                + record
                + b", "
                + (odd + b": 1" if as_key and odd.startswith(b'"') else b'"zone": ' + odd)
                + b"}]}"
            )
        elif target == "predictor":
            body = orjson.dumps(self._v2_call())
            body = (
                body.replace(b'"data":[', b'"data":[' + odd + b",", 1)
                if not as_key
                else body[:-1] + b", " + (odd if odd.startswith(b'"') else b'"k"') + b": 1}"
            )
        else:
            body = (
                b'{"request_id": '
                + (odd if odd.startswith(b'"') else b'"a"')
                + b', "actual": '
                + (b"1" if odd.startswith(b'"') else odd)
                + b"}"
            )
        return Case(
            "encodings",
            target,
            path,
            prefix + body,
            headers,
            ("*",) if target == "predictor" else (),
        )

    def _ids(self, index: int) -> Case:
        """Request ids in every place one enters: x-request-id, V2 `id`, ce-id, a response's id."""
        good = self._id()
        bad = self.random.choice(
            [
                "x" * self.random.randint(257, 5000),
                "a\tb",
                "nb\u00a0sp",
                "caf\u00e9",
                "\u4e2d\u6587",
                "a\u2028b",
                "a b",
                "",
                "a\x01b",
                "\udfff",
                "x" * 256,
                good,
            ]
        )
        place = index % 4
        if place == 0:
            raw = bad.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
            headers: Headers = ((b"content-type", b"application/json"), (b"x-request-id", raw))
            return Case("ids", "predictor", self.v1, self._v1_call(), headers, ("*",))
        if place == 1:
            body = _dumps(self._v2_call(id=bad))
            return Case(
                "ids", "predictor", self.v2, body, ((b"content-type", b"application/json"),), ("*",)
            )
        call, request, response = self._good_call()
        other, request2, response2 = self._good_call()
        if place == 2:
            response2 = {**response2, "request_id": bad}
        else:
            other = bad
        body = self._events([(call, request, response), (other, request2, response2)])
        headers = ((b"content-type", _BATCH.encode()),)
        valid = bad == good or bad == "x" * 256
        # The log keys a call by its response's request id (the event id only names the pair).
        stored = (response2["request_id"],) if valid else ()
        return Case("ids", "service", "/v1/events", body, headers, (call, *stored))

    def _framing(self, index: int) -> Case:
        """Content types, CloudEvent headers on V1, chunk-less lengths, binary tensor framing."""
        kind = index % 6
        if kind == 0:  # V1 with CloudEvent binary-mode headers
            headers: Headers = (
                (b"content-type", b"application/json"),
                (b"ce-specversion", b"1.0"),
                (b"ce-id", self._id().encode()),
                (b"ce-type", b"x"),
                (b"ce-source", b"adv"),
                (b"ce-contenttype", b"application/json"),
            )
            return Case("framing", "predictor", self.v1, self._v1_call(), headers, ("*",))
        if kind == 1:  # binary tensors of every datatype, lengths right or wrong
            datatype = self.random.choice(
                ["BOOL", "INT8", "UINT64", "FP16", "FP32", "INT32", "BYTES", "FP64", "XYZ"]
            )
            size = self.random.choice([0, 1, 7, 8, 16])
            header = orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": n,
                            "shape": [1],
                            "datatype": datatype,
                            "parameters": {"binary_data_size": size},
                        }
                        for n in self.record
                    ]
                }
            )
            declared = self.random.choice([str(len(header)), str(len(header) + 3), "-1", "x", "0"])
            headers = (
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", declared.encode()),
            )
            return Case(
                "framing",
                "predictor",
                self.v2,
                header + b"\x01" * size * len(self.record),
                headers,
                ("*",),
            )
        if kind == 2:  # binary output, asked for on a JSON request or a binary one
            if index % 4:
                body, binary = binary_v2(self.record)
                headers = tuple((k.encode(), v.encode()) for k, v in binary.items())
                return Case("framing", "predictor", self.v2, body, headers, ("*",))
            body = orjson.dumps(self._v2_call(parameters={"binary_data_output": True}))
            return Case(
                "framing",
                "predictor",
                self.v2,
                body,
                ((b"content-type", b"application/json"),),
                ("*",),
            )
        if kind == 3:  # content types the endpoints do not take
            ctype = self.random.choice(
                [
                    b"text/plain",
                    b"application/xml",
                    b"multipart/form-data",
                    b"application/json; charset=utf-16",
                    b"",
                ]
            )
            target: Target = self.random.choice(["predictor", "service"])
            path = self.v1 if target == "predictor" else "/v1/events"
            return Case("framing", target, path, self._v1_call(), ((b"content-type", ctype),))
        if kind == 4:  # structured and binary-mode events with odd attributes
            data = {"instances": [self.record]}
            event: dict[str, Any] = {
                "specversion": "1.0",
                "id": self._id(),
                "type": self.random.choice([_REQUEST, "x", 7, None]),
                "source": "adv",
            }
            event |= self.random.choice([{"data": data}, {"data_base64": "!!"}, {"data": [1]}, {}])
            return Case(
                "framing",
                "service",
                "/v1/events",
                orjson.dumps(event),
                ((b"content-type", b"application/cloudevents+json"),),
            )
        body = self.random.choice(
            [b"", b"{", b"[]", b"null", b"{}", b'{"instances": {}}', b'{"items": []}']
        )
        target = self.random.choice(["predictor", "service"])
        path, headers = self._json(target)
        return Case("framing", target, path, body, headers)

    def _headers(self, index: int) -> Case:
        """Headers from a few bytes to far past the transport's buffer, one or many."""
        size = int(10 ** self.random.uniform(2, 6.5))
        many = self.random.random() < 0.3
        filler = (
            tuple((f"x-f{i}".encode(), b"a" * 100) for i in range(size // 110))
            if many
            else ((b"x-filler", b"a" * size),)
        )
        target: Target = "predictor" if index % 2 else "service"
        path = self.v1 if target == "predictor" else "/v1/feedback"
        body = (
            self._v1_call()
            if target == "predictor"
            else orjson.dumps({"request_id": self._id(), "actual": 1.0})
        )
        headers = ((b"content-type", b"application/json"), *filler)
        return Case("headers", target, path, body, headers, ("*",) if target == "predictor" else ())

    def _unpaired(self, index: int) -> Case:
        """Large request halves whose response never comes: held, bounded by bytes, evicted."""
        size = int(self.random.uniform(0.5, 7.5) * 1024 * 1024)
        body = _unpaired_body(size, self._id())
        return Case(
            "unpaired", "service", "/v1/events", body, ((b"content-type", _BATCH.encode()),)
        )

    def _batches(self, index: int) -> Case:
        """Event deliveries mixing good calls with bad ones; every good call must be logged."""
        calls, expected = [], []
        for _ in range(self.random.randint(1, 8)):
            call, request, response = self._good_call(self.random.randint(1, 4))
            fault = self.random.random()
            if fault < 0.5:
                expected.append(call)
            elif fault < 0.6:
                response = {**response, "predictions": [*response["predictions"][:-1], 1.0, 2.0]}
            elif fault < 0.7:
                response = {**response, "model_version": "v" * 300}
            elif fault < 0.8:
                response = {**response, "predictions": ["x"]}
            elif fault < 0.9:
                request = {"nothing": 1}
            else:
                call = "bad\tid"
            calls.append((call, request, response))
        body = self._events(calls)
        return Case(
            "batches",
            "service",
            "/v1/events",
            body,
            ((b"content-type", _BATCH.encode()),),
            tuple(expected),
        )


def _dumps(value: Any) -> bytes:
    """JSON as ASCII; unlike orjson it writes lone surrogates (escaped), as an attacker can."""
    return json.dumps(value).encode()


def _unpaired_body(size: int, event_id: str) -> bytes:
    """A request half of about `size` bytes of empty records, whose response never comes."""
    records = b",".join([b"{}"] * max(1, size // 3))
    return (
        b'[{"specversion": "1.0", "id": "'
        + event_id.encode()
        + b'", "type": "'
        + _REQUEST.encode()
        + b'", "source": "adv", "data": {"instances": ['
        + records
        + b"]}}]"
    )


async def run(cases: list[Case], urls: dict[Target, str], concurrency: int = 8) -> Tally:
    """Send every case (`concurrency` at a time) and count the answers."""
    tally = Tally()
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(case: Case) -> None:
            async with limit:
                try:
                    response = await client.post(
                        urls[case.target] + case.path, content=case.body, headers=list(case.headers)
                    )
                except httpx.TransportError:
                    response = None
                tally.record(case, response)

        await asyncio.gather(*(one(case) for case in cases))
    return tally


def slow_body_round(
    url: str, path: str, body: bytes, slow_clients: int, normal_requests: int
) -> Counter[int]:
    """Statuses of `normal_requests` sent one after another while `slow_clients` connections
    trickle a body one byte at a time; at a cap of 2, two of them must not cause one 503."""
    host, port = url.removeprefix("http://").split(":")
    slow = []
    for _ in range(slow_clients):
        sock = socket.create_connection((host, int(port)), timeout=120)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body) + 10_000}\r\n\r\n".encode()
        )
        slow.append(sock)
    statuses: Counter[int] = Counter()
    with httpx.Client(timeout=30) as client:
        for _ in range(normal_requests):
            for sock in slow:
                with contextlib.suppress(OSError):  # cut off at the body timeout, as it should be
                    sock.sendall(b" ")
            statuses[client.post(url + path, content=body).status_code] += 1
            time.sleep(0.01)
    for sock in slow:
        sock.close()
    return statuses


def binary_v2(record: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A one-record V2 binary-extension request asking for binary output."""
    inputs, chunks = [], []
    for name, value in record.items():
        if isinstance(value, str):
            raw = struct.pack("<I", len(value.encode())) + value.encode()
            datatype = "BYTES"
        else:
            raw, datatype = struct.pack("<d", float(value)), "FP64"
        chunks.append(raw)
        inputs.append(
            {
                "name": name,
                "shape": [1],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
    head = orjson.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})
    return head + b"".join(chunks), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
