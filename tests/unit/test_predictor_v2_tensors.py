"""V2 inputs become schema columns only when names, datatypes and shapes fit the schema."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest

from flywheel_inference.v2_tensors import columns_from_request, input_metadata
from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.schema import FieldSpec, InputSchema

SCHEMA = InputSchema(
    [
        FieldSpec("when", "timestamp"),
        FieldSpec("km", "number", 0, 60),
        FieldSpec("incidents", "integer", 0, 20),
        FieldSpec("zone", "string", categories=["Z00"]),
    ]
)
GOOD = {
    "when": ("BYTES", ["2026-03-02T08:00:00"]),
    "km": ("FP64", [1.5]),
    "incidents": ("INT64", [2]),
    "zone": ("BYTES", ["Z00"]),
}


def request(
    changes: dict[str, Any] | None = None, drop: str = "", extra: list[InferInput] | None = None
) -> InferRequest:
    tensors = []
    for name, (datatype, data) in GOOD.items():
        if name == drop:
            continue
        datatype, data, shape = (changes or {}).get(name, (datatype, data, [len(data)]))
        tensors.append(InferInput(name, shape, datatype, data))
    return InferRequest("m", tensors + (extra or []))


def test_a_well_formed_request_gives_columns_the_schema_accepts() -> None:
    frame = SCHEMA.frame_from_columns(columns_from_request(request(), SCHEMA, 10))
    assert frame["km"].tolist() == [1.5]
    assert frame["zone"].tolist() == ["Z00"]


@pytest.mark.parametrize(
    "change",
    [
        {"km": ("FP32", [1.5], [1])},
        {"km": ("INT32", [1], [1])},
        {"incidents": ("FP64", [2.0], [1])},
        {"km": ("FP64", [[1.5]], [1, 1])},
    ],
)
def test_compatible_datatypes_and_column_shapes_are_accepted(change: dict[str, Any]) -> None:
    columns = columns_from_request(request(change), SCHEMA, 10)
    assert len(SCHEMA.frame_from_columns(columns)) == 1


@pytest.mark.parametrize(
    ("req", "says"),
    [
        (InferRequest("m", []), "no inputs"),
        (request({"km": ("BYTES", ["1.5"], [1])}), "km must have datatype FP32 or FP64"),
        (request({"zone": ("FP64", [1.0], [1])}), "zone must have datatype BYTES, got FP64"),
        (request({"km": ("FP64", [1.5, 2.0], [1, 2])}), "shape [n] or [n, 1]"),
        (request({"km": ("FP64", [1.5], [-1])}), "shape [n] or [n, 1]"),
        (request({"km": ("FP64", [1.5, 2.0], [1])}), "needs 1 values, the data holds 2"),
        (request({"km": ("FP64", [1.5, 2.0], [2])}), "holds 2 records but input when holds 1"),
        (request(extra=[InferInput("tip", [1], "FP64", [1.0])]), "'tip' (inputs[4])"),
        (request(extra=[InferInput("km", [1], "FP64", [1.0])]), "km appears twice"),
        (request({"km": ("FP64", [1.5] * 11, [11])}), "at most 10"),
    ],
    ids=[
        "no inputs",
        "bytes for number",
        "number for string",
        "2-d",
        "negative",
        "length",
        "rows differ",
        "unknown",
        "twice",
        "over max",
    ],
)
def test_malformed_inputs_are_refused_naming_the_input(req: InferRequest, says: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        columns_from_request(req, SCHEMA, 10)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"km": ("FP64", [True], [1])}, "km must be a finite number within [0, 60], got True"),
        ({"km": ("FP64", ["1.5"], [1])}, "got '1.5' in record 0"),
        ({"incidents": ("FP64", [2.5], [1])}, "incidents must be a whole number"),
    ],
    ids=["bool", "text", "fraction"],
)
def test_json_values_are_checked_one_by_one_by_the_schema(
    change: dict[str, Any], says: str
) -> None:
    columns = columns_from_request(request(change), SCHEMA, 10)
    with pytest.raises(InvalidInputError) as raised:
        SCHEMA.frame_from_columns(columns)
    assert says in str(raised.value)


def test_binary_numbers_arrive_as_numpy_views() -> None:
    tensor = InferInput("km", [2], "FP64")
    tensor.set_data_from_numpy(np.array([1.0, 2.0]), binary_data=True)
    req = InferRequest("m", [tensor], raw_inputs=[tensor._raw_data])
    columns = columns_from_request(req, SCHEMA, 10)
    assert isinstance(columns["km"], np.ndarray)
    assert columns["km"].tolist() == [1.0, 2.0]


def test_metadata_names_the_preferred_datatype_per_field() -> None:
    assert [(t["name"], t["datatype"]) for t in input_metadata(SCHEMA)] == [
        ("when", "BYTES"),
        ("km", "FP64"),
        ("incidents", "INT64"),
        ("zone", "BYTES"),
    ]
