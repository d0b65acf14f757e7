"""The input schema a model bundle carries, and the strict check every prediction request passes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.spec import DatasetSpec

Kind = Literal["number", "integer", "string", "timestamp"]
_MAX_REPORTED = 5
_LARGEST_FLOAT = int(np.finfo(np.float64).max)


@dataclass(frozen=True)
class FieldSpec:
    """One input field: its kind and what values it may take."""

    name: str
    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None

    def expected(self) -> str:
        """Human wording of what this field accepts, for error messages."""
        if self.categories is not None:
            return f"one of {self.categories}"
        if self.kind == "timestamp":
            return "an ISO 8601 timestamp string"
        if self.kind in ("number", "integer"):
            noun = "a finite number" if self.kind == "number" else "a whole number"
            if self.minimum is not None and self.maximum is not None:
                return f"{noun} within [{self.minimum:g}, {self.maximum:g}]"
            return noun
        return "a string"


@dataclass(frozen=True)
class InputSchema:
    """Ordered fields of a prediction record; built from the dataset spec and training data."""

    fields: list[FieldSpec]

    @classmethod
    def from_spec(
        cls, spec: DatasetSpec, categories: Mapping[str, list[str]], integer_columns: Sequence[str]
    ) -> InputSchema:
        """Fields in `spec.feature_columns` order; ranges from the spec, categories from training."""
        fields: list[FieldSpec] = []
        for name in spec.feature_columns:
            if name == spec.timestamp:
                fields.append(FieldSpec(name, "timestamp"))
            elif name in categories:
                fields.append(FieldSpec(name, "string", categories=list(categories[name])))
            else:
                low, high = spec.ranges.get(name, (None, None))
                kind: Kind = "integer" if name in integer_columns else "number"
                fields.append(FieldSpec(name, kind, low, high))
        return cls(fields)

    @property
    def names(self) -> list[str]:
        """Field names in order."""
        return [f.name for f in self.fields]

    def to_json(self) -> str:
        """Serialise for the bundle's schema.json."""
        return json.dumps({"fields": [asdict(f) for f in self.fields]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> InputSchema:
        """Rebuild from schema.json."""
        return cls([FieldSpec(**f) for f in json.loads(text)["fields"]])

    def frame_from_records(self, records: Any) -> pd.DataFrame:
        """Check a list of JSON objects (one per record) and return them as a typed frame."""
        if not isinstance(records, list):
            raise InvalidInputError(f"instances must be a list of objects, got {_type(records)}")
        if not records:
            raise InvalidInputError("instances must hold at least one record, got an empty list")
        problems: list[str] = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(f"record {index} must be an object, got {_type(record)}")
                continue
            missing = [n for n in self.names if n not in record]
            if missing:
                problems.append(f"{missing[0]} is missing in record {index}")
            unknown = sorted(set(record) - set(self.names))
            if unknown:
                problems.append(
                    f"{unknown[0]} is not an input field in record {index}; "
                    f"expected fields {self.names}"
                )
            if len(problems) >= _MAX_REPORTED:
                break
        _raise_if(problems)
        columns = {n: [r[n] for r in records] for n in self.names}
        return self.frame_from_columns(columns)

    def frame_from_columns(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        """Check named columns (lists or numpy arrays of equal length) and return a typed frame."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise InvalidInputError(f"input {missing[0]} is missing; expected inputs {self.names}")
        unknown = sorted(set(columns) - set(self.names))
        if unknown:
            raise InvalidInputError(
                f"input {unknown[0]} is not an input field; expected inputs {self.names}"
            )
        lengths = {n: len(columns[n]) for n in self.names}
        if len(set(lengths.values())) != 1:
            raise InvalidInputError(f"every input must have the same length, got {lengths}")
        if not next(iter(lengths.values())):
            raise InvalidInputError("the batch must hold at least one record, got none")
        problems: list[str] = []
        data: dict[str, Any] = {}
        for spec in self.fields:
            data[spec.name] = _check_column(spec, columns[spec.name], problems)
        _raise_if(problems)
        return pd.DataFrame(data)


def _check_column(spec: FieldSpec, values: Any, problems: list[str]) -> Any:
    if spec.kind == "timestamp":
        return _check_timestamps(spec, values, problems)
    if spec.kind == "string":
        return _check_strings(spec, values, problems)
    return _check_numbers(spec, values, problems)


def _check_numbers(spec: FieldSpec, values: Any, problems: list[str]) -> np.ndarray:
    array = values if isinstance(values, np.ndarray) else None
    if array is None or array.dtype.kind not in "iuf":
        # JSON lists: every element must be a real number; bools and strings are type errors.
        for index, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int | float):
                _note(problems, spec, value, index)
                return np.zeros(0)
            if isinstance(value, int) and abs(value) > _LARGEST_FLOAT:
                # A JSON integer beyond float range would make np.asarray raise OverflowError.
                _note(problems, spec, math.inf if value > 0 else -math.inf, index)
                return np.zeros(0)
        array = np.asarray(values, dtype=np.float64)
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if spec.minimum is not None:
        bad |= array < spec.minimum
    if spec.maximum is not None:
        bad |= array > spec.maximum
    if spec.kind == "integer":
        bad |= np.isfinite(array) & (array != np.round(array))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        _note(problems, spec, array[index], index)
    return array


def _check_strings(spec: FieldSpec, values: Any, problems: list[str]) -> Any:
    allowed = set(spec.categories or [])
    for index, value in enumerate(values):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or (spec.categories is not None and value not in allowed):
            _note(problems, spec, value, index)
            break
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


def _check_timestamps(spec: FieldSpec, values: Any, problems: list[str]) -> Any:
    strings = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    for index, value in enumerate(strings):
        if not isinstance(value, str):
            _note(problems, spec, value, index)
            return pd.Series(pd.NaT, index=range(len(strings)))
    parsed = pd.to_datetime(pd.Series(strings), format="ISO8601", errors="coerce", utc=True)
    if parsed.isna().any():
        index = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        _note(problems, spec, strings[index], index)
    return parsed.dt.tz_localize(None)


def _note(problems: list[str], spec: FieldSpec, value: Any, index: int) -> None:
    if isinstance(value, np.generic):
        # numpy 2 reprs scalars as np.float64(400.0); clients sent 400.0.
        value = value.item()
    shown = value
    if isinstance(value, float) and not math.isfinite(value):
        shown = str(value)
    problems.append(f"{spec.name} must be {spec.expected()}, got {shown!r} in record {index}")


def _raise_if(problems: list[str]) -> None:
    if problems:
        more = " (and more)" if len(problems) >= _MAX_REPORTED else ""
        raise InvalidInputError("; ".join(problems[:_MAX_REPORTED]) + more)


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__
