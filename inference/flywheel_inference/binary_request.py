"""Decode V2 requests that use the binary tensor data extension, checking every declared size.

KServe 0.21's `InferRequest.from_bytes` trusts the JSON header (a missing key is a KeyError, a
size that does not divide is a ValueError: both 500s) and turns every binary tensor back into a
Python list element by element, which costs more than the JSON it was meant to avoid. This
decoder checks the framing first, keeps numeric tensors as the received bytes, which
`InferInput.as_numpy()` then views without copying, and decodes BYTES tensors into a numpy array
of str (one vectorised step when the elements share a length, as timestamps and codes do).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from kserve.utils.numpy_codec import to_np_dtype

HEADER = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


class TextInput(InferInput):
    """A binary BYTES input decoded into a numpy array of str (what the schema check reads).

    `data` still lists the values for whoever asks KServe's way (`InferRequest.to_rest`), built
    only then: the request path reads `text`.
    """

    def __init__(self, name: str, shape: list[int], text: np.ndarray, parameters: dict[str, Any]):
        super().__init__(name, shape, "BYTES", parameters=parameters)
        self.text = text

    @property
    def data(self) -> list[str]:
        return list(self.text.tolist())


def decode_binary_request(body: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """An InferRequest from a binary-extension body: JSON header, then each tensor's bytes.

    Args:
        body: the whole HTTP body.
        header_length: the `inference-header-content-length` header (length of the JSON part).
        model_name: the model the path names.

    Raises:
        InvalidInput: naming the input and what its declaration and the bytes disagree on.
    """
    json_length = _json_length(header_length, len(body))
    try:
        header = orjson.loads(body[:json_length])
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            f"the first {json_length} bytes ({HEADER}) are not a JSON object: {error}"
        ) from error
    if not isinstance(header, dict):
        raise InvalidInput(f"the JSON header must be an object, got {type(header).__name__}")
    declared = header.get("inputs")
    if not isinstance(declared, list) or not declared:
        raise InvalidInput('the JSON header must hold "inputs": a non-empty list of tensors')
    offset = json_length
    inputs: list[InferInput] = []
    raw: list[bytes | None] = []
    for position, spec in enumerate(declared):
        tensor, data, offset = _tensor(spec, position, body, offset)
        inputs.append(tensor)
        raw.append(data)
    if offset != len(body):
        raise InvalidInput(
            f"{len(body) - offset} bytes follow the last binary input; the "
            f"inputs' binary_data_size values add up to {offset - json_length}"
        )
    request_id = header.get("id")
    parameters = header.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput(f'"parameters" must be an object, got {type(parameters).__name__}')
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=request_id if isinstance(request_id, str) else None,
        raw_inputs=raw,
        parameters=parameters,
        request_outputs=_outputs(header.get("outputs")),
    )


def _json_length(header_length: str | None, body_length: int) -> int:
    if header_length is None:
        raise InvalidInput(f"a binary V2 request needs the {HEADER} header")
    try:
        length = int(header_length)
    except ValueError as error:
        raise InvalidInput(
            f"{HEADER} must be a whole number of bytes, got {header_length!r}"
        ) from error
    if not 0 < length <= body_length:
        raise InvalidInput(
            f"{HEADER} must be within [1, {body_length}] (the body's length), got {length}"
        )
    return length


def _tensor(
    spec: Any, position: int, body: bytes, offset: int
) -> tuple[InferInput, bytes | None, int]:
    where = f"inputs[{position}]"
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} must be an object with name, datatype and shape")
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}.name must be a non-empty string, got {name!r}")
    where = f"input {name}"
    if not isinstance(datatype, str) or to_np_dtype(datatype) is None:
        raise InvalidInput(
            f"{where}: datatype must be a V2 datatype (FP64, INT64, BYTES...), got {datatype!r}"
        )
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}: parameters must be an object, got {parameters!r}")
    if "data" in spec:
        return (
            InferInput(name, shape, datatype, data=spec["data"], parameters=parameters),
            None,
            offset,
        )
    size = parameters.get("binary_data_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            f'{where}: needs "data" or a binary_data_size parameter (a '
            f"non-negative integer), got {size!r}"
        )
    if offset + size > len(body):
        raise InvalidInput(
            f"{where}: binary_data_size {size} runs past the end of the body "
            f"({len(body) - offset} bytes left)"
        )
    chunk = body[offset : offset + size]
    count = math.prod(shape)
    if datatype == "BYTES":
        text = _strings(chunk, count, where)
        return TextInput(name, shape, text, parameters=parameters), None, offset + size
    itemsize = np.dtype(to_np_dtype(datatype)).itemsize  # BOOL maps to Python's bool
    if size != count * itemsize:
        raise InvalidInput(
            f"{where}: shape {shape} of {datatype} needs {count * itemsize} bytes, "
            f"binary_data_size is {size}"
        )
    return InferInput(name, shape, datatype, parameters=parameters), chunk, offset + size


def _strings(chunk: bytes, count: int, where: str) -> np.ndarray:
    """BYTES elements (4-byte little-endian length, then the bytes) as an array of str.

    When every element has the same length and is printable ASCII (timestamps, zone codes),
    the whole tensor is one numpy view; otherwise each element is decoded in turn.
    """
    uniform = _uniform_ascii(chunk, count)
    if uniform is not None:
        return uniform
    values: list[str] = []
    view = memoryview(chunk)
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InvalidInput(
                f"{where}: BYTES element {len(values)} has a truncated length prefix"
            )
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise InvalidInput(
                f"{where}: BYTES element {len(values)} declares {length} bytes, "
                f"{len(chunk) - offset} are left"
            )
        try:
            values.append(str(view[offset : offset + length], "utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{where}: BYTES element {len(values)} is not UTF-8 text") from error
        offset += length
    if len(values) != count:
        raise InvalidInput(
            f"{where}: shape needs {count} BYTES elements, the data holds {len(values)}"
        )
    text = np.empty(count, dtype=object)
    text[:] = values
    return text


def _uniform_ascii(chunk: bytes, count: int) -> np.ndarray | None:
    """`count` elements of one length L, all bytes printable ASCII, as a <UL array; else None."""
    if count == 0 or len(chunk) < 4:
        return None
    (length,) = _LENGTH.unpack_from(chunk, 0)
    if length == 0 or len(chunk) != count * (4 + length):
        return None
    records = np.frombuffer(chunk, dtype=np.dtype([("length", "<u4"), ("text", f"S{length}")]))
    if not (records["length"] == length).all():
        return None
    raw = np.frombuffer(chunk, dtype=np.uint8).reshape(count, 4 + length)[:, 4:]
    # Printable ASCII is valid UTF-8 and has no NUL for a fixed-width numpy string to drop.
    if not ((raw >= 0x20) & (raw < 0x7F)).all():
        return None
    return records["text"].astype(f"U{length}")


def _outputs(declared: Any) -> list[RequestedOutput] | None:
    if declared is None:
        return None
    if not isinstance(declared, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in declared
    ):
        raise InvalidInput('"outputs" must be a list of objects with a "name"')
    for output in declared:
        if not isinstance(output.get("parameters") or {}, dict):
            raise InvalidInput(f"outputs {output['name']}: parameters must be an object")
    return [RequestedOutput(o["name"], o.get("parameters")) for o in declared]
