"""KServe's DataPlane with strict decoders: V2 binary tensor data, and V1 bodies holding NaN."""

from __future__ import annotations

import json
from typing import Any

import orjson
from cloudevents.http import CloudEvent
from cloudevents.sdk.converters.util import has_binary_headers
from kserve.constants.constants import PredictorProtocol
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferRequest

from flywheel_inference.binary_request import HEADER, decode_binary_request

_V1 = PredictorProtocol.REST_V1.value


class FlywheelDataPlane(DataPlane):
    """Everything as KServe does it, except two decoders.

    Binary V2 bodies go through `decode_binary_request`, which checks the framing (KServe's
    own decoder answers malformed framing with a 500). V1 bodies that are not strict JSON only
    because they hold NaN or Infinity are read anyway, so the schema can answer "distance_km
    must be a finite number, got nan in record 3" instead of "unexpected character at 212".
    """

    def decode(
        self,
        body: Any,
        headers: dict[str, str],
        protocol_version: str = _V1,
        model_name: str | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Parse V1 JSON bodies here (orjson, then NaN-tolerant); the rest as KServe does."""
        if (
            isinstance(body, bytes)
            and protocol_version.lower() == _V1
            and not (headers and has_binary_headers(headers))
        ):
            body = _v1_json(body)
        return super().decode(body, headers, protocol_version, model_name)

    def decode_cloudevent(self, body: Any) -> tuple[Any, dict[str, Any]]:
        """A binary-mode CloudEvent's data, whether the SDK handed it over as bytes or (with
        `ce-contenttype: application/json`) already parsed; KServe's own decoder assumes bytes."""
        if isinstance(body, CloudEvent):
            data = body.get_data()
            attributes = dict(body.get_attributes())
            if isinstance(data, bytes | bytearray | str):
                raw = data.encode() if isinstance(data, str) else bytes(data)
                return _v1_json(raw), attributes
            if isinstance(data, dict):
                return data, attributes
            raise InvalidInput(
                'the CloudEvent data must be a JSON object {"instances": [...]}, got '
                f"{type(data).__name__}"
            )
        return super().decode_cloudevent(body)

    def decode_inference_request(
        self, body: Any, headers: dict[str, str], model_name: str
    ) -> InferRequest:
        """Binary bodies through our decoder; JSON bodies (already parsed by FastAPI) as KServe."""
        if isinstance(body, bytes):
            return decode_binary_request(body, headers.get(HEADER), model_name)
        return super().decode_inference_request(body, headers, model_name)


def _v1_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as strict:
        try:
            # The standard library reads NaN, Infinity and -Infinity, and lone surrogate
            # escapes (not text: orjson refuses them, and so does this, below).
            value = json.loads(body)
            json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates fail here
        except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            raise InvalidInput(
                f'the body is not valid JSON ({strict}); expected {{"instances": [{{...}}, ...]}}'
            ) from strict
        return value
