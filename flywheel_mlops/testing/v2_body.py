"""Client side of the Open Inference Protocol: a V2 request body (JSON or binary) from records.

Tests, the benchmark and scripted clients build requests here; the binary form follows the
binary tensor data extension (a JSON header, then each tensor's bytes, BYTES elements as a
4-byte little-endian length followed by UTF-8).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd

from flywheel_mlops.schema import InputSchema

BINARY_HEADER = "inference-header-content-length"
_DATATYPE = {"number": "FP64", "integer": "INT64", "string": "BYTES", "timestamp": "BYTES"}


def _column(frame: pd.DataFrame, name: str, kind: str) -> np.ndarray | list[str]:
    values = frame[name]
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(values):
            return values.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
        return values.astype(str).tolist()
    if kind == "string":
        return values.astype(str).tolist()
    if kind == "integer":
        return values.to_numpy(dtype=np.int64)
    return values.to_numpy(dtype=np.float64)


def json_body(frame: pd.DataFrame, schema: InputSchema, request_id: str | None = None) -> bytes:
    """A V2 JSON request with one input per schema field."""
    inputs = []
    for field in schema.fields:
        values = _column(frame, field.name, field.kind)
        data = values.tolist() if isinstance(values, np.ndarray) else values
        inputs.append(
            {
                "name": field.name,
                "shape": [len(frame)],
                "datatype": _DATATYPE[field.kind],
                "data": data,
            }
        )
    body: dict[str, Any] = {"inputs": inputs}
    if request_id:
        body["id"] = request_id
    return orjson.dumps(body)


def binary_body(
    frame: pd.DataFrame,
    schema: InputSchema,
    binary_output: bool = True,
) -> tuple[bytes, dict[str, str]]:
    """A V2 binary-extension request and the headers it needs (content type, header length)."""
    inputs = []
    chunks: list[bytes] = []
    for field in schema.fields:
        values = _column(frame, field.name, field.kind)
        if isinstance(values, np.ndarray):
            raw = np.ascontiguousarray(values).tobytes()
        else:
            encoded = [v.encode("utf-8") for v in values]
            raw = b"".join(struct.pack("<I", len(e)) + e for e in encoded)
        chunks.append(raw)
        inputs.append(
            {
                "name": field.name,
                "shape": [len(frame)],
                "datatype": _DATATYPE[field.kind],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
    header: dict[str, Any] = {"inputs": inputs}
    if binary_output:
        header["parameters"] = {"binary_data_output": True}
    head = orjson.dumps(header)
    headers = {"content-type": "application/octet-stream", BINARY_HEADER: str(len(head))}
    return head + b"".join(chunks), headers


def binary_output(body: bytes, header_length: int) -> np.ndarray:
    """The FP64 output tensor of a binary V2 response."""
    header = orjson.loads(body[:header_length])
    size = header["outputs"][0]["parameters"]["binary_data_size"]
    return np.frombuffer(body[header_length : header_length + size], dtype=np.float64)
