"""The V2 binary decoder reads KServe's own encoding and refuses malformed framing with reasons."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from flywheel_inference.binary_request import decode_binary_request


def kserve_encoded(arrays: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """A binary request as KServe's own client writes it."""
    inputs = []
    for name, array in arrays.items():
        datatype = {
            "f": "FP64" if array.dtype == np.float64 else "FP32",
            "i": "INT64",
            "O": "BYTES",
        }[array.dtype.kind]
        tensor = InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    body, json_length = InferRequest("m", inputs).to_rest()
    assert isinstance(body, bytes)
    assert json_length is not None
    return body, json_length


def test_kserves_binary_encoding_decodes_to_the_same_values() -> None:
    arrays = {
        "a": np.array([1.5, -2.25, 3.0]),
        "b": np.array([1, 2, 3], dtype=np.int64),
        "c": np.array([0.5, 1.5, 2.5], dtype=np.float32),
        "d": np.array([b"Z00", b"clear", "\u00e9t\u00e9".encode()], dtype=object),
    }
    body, json_length = kserve_encoded(arrays)
    request = decode_binary_request(body, str(json_length), "m")
    decoded = {t.name: t for t in request.inputs}
    for name in ("a", "b", "c"):
        assert np.array_equal(decoded[name].as_numpy(), arrays[name])
    assert decoded["d"].data == ["Z00", "clear", "\u00e9t\u00e9"]


def test_json_data_and_binary_data_mix_in_one_request() -> None:
    raw = np.array([4.0, 5.0]).tobytes()
    head = orjson.dumps(
        {
            "id": "r1",
            "parameters": {"binary_data_output": True},
            "inputs": [
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 16},
                },
                {"name": "z", "shape": [2], "datatype": "BYTES", "data": ["Z00", "Z01"]},
            ],
        }
    )
    request = decode_binary_request(head + raw, str(len(head)), "m")
    assert request.id == "r1"
    assert request.use_binary_outputs is True
    assert request.inputs[0].as_numpy().tolist() == [4.0, 5.0]
    assert request.inputs[1].data == ["Z00", "Z01"]


def frame(inputs: list[dict[str, Any]], payload: bytes, **extra: Any) -> tuple[bytes, str]:
    head = orjson.dumps({"inputs": inputs, **extra})
    return head + payload, str(len(head))


FP = {"name": "x", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
BAD: dict[str, tuple[bytes, str | None, str]] = {
    "no header length": (b"{}", None, "needs the inference-header-content-length"),
    "header length not a number": (b"{}", "2x", "whole number"),
    "header length zero": (b"{}", "0", "within [1, 2]"),
    "header length past the body": (b"{}", "3", "within [1, 2]"),
    "header not JSON": (b"{{{{", "4", "not a JSON object"),
    "header not an object": (b"[1]", "3", "must be an object"),
    "no inputs": (*frame([], b""), "non-empty list"),
    "tensor not an object": (*frame([3], b""), "inputs[0] must be an object"),
    "tensor without name": (*frame([{"shape": [1], "datatype": "FP64"}], b""), "inputs[0].name"),
    "unknown datatype": (*frame([FP | {"datatype": "FP8"}], b"\x00" * 16), "FP8"),
    "negative shape": (*frame([FP | {"shape": [-1]}], b"\x00" * 16), "non-negative"),
    "no data and no size": (*frame([FP | {"parameters": {}}], b""), "binary_data_size"),
    "size past the body": (*frame([FP], b"\x00" * 8), "runs past the end"),
    "size not matching the shape": (*frame([FP | {"shape": [3]}], b"\x00" * 16), "needs 24 bytes"),
    "trailing bytes": (*frame([FP], b"\x00" * 20), "4 bytes follow"),
    "truncated BYTES length": (
        *frame(
            [
                {
                    "name": "s",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 2},
                }
            ],
            b"\x01\x00",
        ),
        "truncated length prefix",
    ),
    "BYTES element too long": (
        *frame(
            [
                {
                    "name": "s",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ],
            struct.pack("<I", 9) + b"ab",
        ),
        "declares 9 bytes",
    ),
    "BYTES count off": (
        *frame(
            [
                {
                    "name": "s",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ],
            struct.pack("<I", 2) + b"ab",
        ),
        "needs 2 BYTES elements",
    ),
    "BYTES not UTF-8": (
        *frame(
            [
                {
                    "name": "s",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ],
            struct.pack("<I", 2) + b"\xff\xfe",
        ),
        "not UTF-8",
    ),
    "outputs malformed": (*frame([FP], b"\x00" * 16, outputs=[3]), '"outputs"'),
    "parameters not an object": (*frame([FP], b"\x00" * 16, parameters=[1]), '"parameters"'),
}


@pytest.mark.parametrize(("body", "length", "says"), list(BAD.values()), ids=list(BAD))
def test_malformed_framing_is_invalid_input_saying_what_disagrees(
    body: bytes, length: str | None, says: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_binary_request(body, length, "m")
    assert says in str(raised.value)


def bytes_tensor(values: list[str]) -> tuple[bytes, str]:
    raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    spec = {
        "name": "s",
        "shape": [len(values)],
        "datatype": "BYTES",
        "parameters": {"binary_data_size": len(raw)},
    }
    return frame([spec], raw)


@pytest.mark.parametrize(
    "values",
    [
        ["2026-03-02T08:15:00", "2026-03-02T09:00:00"],
        ["Z00", "Z01", "Z11"],
        ["clear", "rain", "snow", "fog"],
        ["\u00e9t\u00e9", "hiver"],
        ["a\x00", "b\x00"],
        ["", ""],
        ["x"],
    ],
    ids=["timestamps", "codes", "lengths differ", "not ASCII", "NUL", "empty", "one"],
)
def test_bytes_tensors_decode_to_a_numpy_array_of_the_exact_strings(values: list[str]) -> None:
    body, length = bytes_tensor(values)
    (tensor,) = decode_binary_request(body, length, "m").inputs
    assert isinstance(tensor.text, np.ndarray)
    assert tensor.text.tolist() == values
    assert tensor.data == values


def test_decoded_bytes_tensors_still_serialise_kserves_way() -> None:
    body, length = bytes_tensor(["Z00", "Z01"])
    request = decode_binary_request(body, length, "m")
    rest, _ = request.to_rest()
    assert isinstance(rest, dict)
    assert rest["inputs"][0]["data"] == ["Z00", "Z01"]
