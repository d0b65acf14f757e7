"""Open Inference Protocol (V2) tensors to schema columns and predictions back to an output tensor.

One named input per schema field, shape [n] or [n, 1]. Numbers travel as FP64/FP32 (INT64/INT32
are numbers too), whole-number fields also as INT64/INT32, strings and timestamps as BYTES.
Values are then checked by the bundle's InputSchema exactly like V1 records.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse

from flywheel_inference.binary_request import TextInput
from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.predictions.cloudevents import EVENT_TIME_FIELD
from flywheel_mlops.schema import InputSchema

_NUMBERS = frozenset({"FP64", "FP32", "INT64", "INT32"})
ACCEPTED: dict[str, frozenset[str]] = {
    "number": _NUMBERS,
    "integer": _NUMBERS,
    "string": frozenset({"BYTES"}),
    "timestamp": frozenset({"BYTES"}),
}
PREFERRED = {"number": "FP64", "integer": "INT64", "string": "BYTES", "timestamp": "BYTES"}


def input_metadata(schema: InputSchema) -> list[dict[str, Any]]:
    """The model's inputs as V2 metadata tensors (what GET /v2/models/<name> lists)."""
    return [{"name": f.name, "datatype": PREFERRED[f.kind], "shape": [-1]} for f in schema.fields]


def columns_from_request(
    request: InferRequest, schema: InputSchema, max_batch: int
) -> dict[str, Any]:
    """Named columns for `schema.frame_from_columns`, after checking names, datatypes and shapes.

    Raises:
        InvalidInputError: naming the input and what was expected of it.
    """
    kinds = {f.name: f.kind for f in schema.fields}
    if not request.inputs:
        raise InvalidInputError(
            f"the request has no inputs; expected one input per field: {schema.names}"
        )
    columns: dict[str, Any] = {}
    first: tuple[str, int] | None = None
    for position, tensor in enumerate(request.inputs):
        name = tensor.name
        if name not in kinds:
            raise InvalidInputError(
                f"input {name!r} (inputs[{position}]) is not an input field; "
                f"expected inputs {schema.names}"
            )
        if name in columns:
            raise InvalidInputError(f"input {name} appears twice (inputs[{position}])")
        kind = kinds[name]
        if tensor.datatype not in ACCEPTED[kind]:
            raise InvalidInputError(
                f"input {name} must have datatype "
                f"{' or '.join(sorted(ACCEPTED[kind]))}, "
                f"got {tensor.datatype}"
            )
        rows = _rows(name, tensor.shape)
        if rows > max_batch:
            raise InvalidInputError(
                f"input {name} holds {rows} records; at most {max_batch} are accepted per request"
            )
        if first is None:
            first = (name, rows)
        elif rows != first[1]:
            raise InvalidInputError(
                f"input {name} holds {rows} records but input {first[0]} "
                f"holds {first[1]}; every input needs one value per record"
            )
        columns[name] = _values(tensor, rows)
    return columns


def _rows(name: str, shape: Any) -> int:
    valid = (
        isinstance(shape, list | tuple)
        and len(shape) in (1, 2)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        and (len(shape) == 1 or shape[1] == 1)
    )
    if not valid:
        shown = list(shape) if isinstance(shape, tuple) else shape
        raise InvalidInputError(
            f"input {name} must have shape [n] or [n, 1] (one value per record), got {shown}"
        )
    return int(shape[0])


def _values(tensor: InferInput, rows: int) -> Any:
    """The tensor's values, flat: numpy arrays for binary data (numbers viewed, BYTES decoded), or
    the JSON list as sent (the schema checks each element of a list, so a true or a "3" in a
    number column is an error)."""
    if isinstance(tensor, TextInput):
        return tensor.text.reshape(-1)
    data = tensor.data
    if data is None:
        try:
            return tensor.as_numpy().reshape(-1)
        except ValueError as error:
            raise InvalidInputError(
                f"input {tensor.name}: the binary data do not hold shape "
                f"{list(tensor.shape)} of {tensor.datatype}"
            ) from error
    if not isinstance(data, list):
        # gRPC contents arrive as a repeated field; they hold one type, so numpy is safe.
        data = list(data)
    if len(data) == rows and not any(isinstance(v, list) for v in data[:1]):
        flat = data
    else:
        flat = _flatten(data)
    if len(flat) != rows:
        raise InvalidInputError(
            f"input {tensor.name}: shape {list(tensor.shape)} needs {rows} "
            f"values, the data holds {len(flat)}"
        )
    return flat


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major nested lists ([[v], [v]]) flattened; anything else is left for the count check."""
    flat: list[Any] = []
    for value in data:
        if isinstance(value, list):
            flat.extend(value)
        else:
            flat.append(value)
    return flat


def infer_response(
    request: InferRequest,
    model_name: str,
    version: str,
    request_id: str,
    output: str,
    predictions: np.ndarray,
    event_time_field: str | None = None,
) -> InferResponse:
    """The V2 answer: one FP64 output named after the target, binary when the client asked."""
    if request.request_outputs:
        unknown = [o.name for o in request.request_outputs if o.name != output]
        if unknown:
            raise InvalidInputError(f"output {unknown[0]!r} is not produced; outputs: [{output!r}]")
    tensor = InferOutput(
        name=output,
        shape=[len(predictions)],
        datatype="FP64",
        data=np.ascontiguousarray(predictions, dtype=np.float64),
    )
    return InferResponse(
        response_id=request_id,
        model_name=model_name,
        model_version=version,
        infer_outputs=[tensor],
        use_binary_outputs=bool(request.use_binary_outputs),
        requested_outputs=request.request_outputs,
        parameters=_parameters(request_id, event_time_field),
    )


def _parameters(request_id: str, event_time_field: str | None) -> dict[str, str]:
    """The answer's parameters: its request id, and the field holding each record's event time
    (read by the prediction log, so the service needs no dataset spec of its own)."""
    named = {EVENT_TIME_FIELD: event_time_field} if event_time_field else {}
    return {"request_id": request_id, **named}


def v2_log_bodies(
    request: InferRequest,
    columns: dict[str, Any],
    request_id: str,
    served: Any,
    model_name: str,
    predictions: np.ndarray,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The V2 request and answer as JSON bodies for the prediction log, binary or not.

    Inputs are the checked columns (one value per record), so a binary tensor is logged with
    the values the model saw; the answer is the predictions as a JSON FP64 output.
    """
    datatypes = {tensor.name: tensor.datatype for tensor in request.inputs}
    inputs = [
        {
            "name": name,
            "shape": [len(values)],
            "datatype": datatypes.get(name, "BYTES"),
            "data": values.tolist() if isinstance(values, np.ndarray) else list(values),
        }
        for name, values in columns.items()
    ]
    answer = {
        "id": request_id,
        "model_name": model_name,
        "model_version": served.version,
        "parameters": _parameters(request_id, served.event_time_field),
        "outputs": [
            {
                "name": served.target,
                "shape": [len(predictions)],
                "datatype": "FP64",
                "data": np.asarray(predictions, dtype=np.float64).tolist(),
            }
        ],
    }
    return {"id": request_id, "inputs": inputs}, answer
