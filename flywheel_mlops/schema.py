"""The input schema a model bundle carries, and the strict check every prediction request passes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from itertools import chain
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.spec import DatasetSpec

Kind = Literal["number", "integer", "string", "timestamp"]
_MAX_REPORTED = 5
_LARGEST_FLOAT = int(np.finfo(np.float64).max)
_NUMBER_TYPES = frozenset({int, float})

#: Checked request columns by field name: what `FeaturePipeline.transform` reads when serving.
Columns = dict[str, np.ndarray]


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
        """Fields in `spec.feature_columns` order; ranges from the spec, categories fitted."""
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
        """`check_records` as a DataFrame, for callers that want one (tests, scripts)."""
        return pd.DataFrame(self.check_records(records))

    def frame_from_columns(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        """`check_columns` as a DataFrame, for callers that want one (tests, scripts)."""
        return pd.DataFrame(self.check_columns(columns))

    def check_records(self, records: Any) -> Columns:
        """Check a list of JSON objects (one per record); typed numpy columns out.

        Raises:
            InvalidInputError: naming the field, the record's index and what was expected.
        """
        if not isinstance(records, list):
            raise InvalidInputError(f"instances must be a list of objects, got {_type(records)}")
        if not records:
            raise InvalidInputError("instances must hold at least one record, got an empty list")
        problems: list[str] = []
        expected = set(self.names)
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(f"record {index} must be an object, got {_type(record)}")
                continue
            if record.keys() == expected:
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
        return self.check_columns(columns)

    def check_columns(self, columns: Mapping[str, Any]) -> Columns:
        """Check named columns (lists or numpy arrays of equal length); typed numpy columns out.

        Numbers come back as float64, timestamps as datetime64[ns] (UTC, naive), strings as
        arrays of str: what `FeaturePipeline.transform` reads, with no DataFrame in between.

        Raises:
            InvalidInputError: naming the field, the record's index and what was expected.
        """
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
        numbers = self._numbers.check(columns)
        problems: list[str] = []
        data: Columns = {}
        for spec in self.fields:
            if numbers is not None and spec.name in numbers:
                data[spec.name] = numbers[spec.name]
            else:
                data[spec.name] = _check_column(spec, columns[spec.name], problems)
        _raise_if(problems)
        return data

    @cached_property
    def _numbers(self) -> _NumberBlock:
        return _NumberBlock([f for f in self.fields if f.kind in ("number", "integer")])


class _NumberBlock:
    """Every number field of a batch checked in one pass over one (fields x records) array.

    `check` answers only for clean batches (the common case, a handful of numpy calls for any
    number of fields); anything it does not accept - a wrong type, a value out of range, an
    integer beyond float range - returns None, and the per-field checks find and name it.
    """

    def __init__(self, fields: list[FieldSpec]):
        self.names = [f.name for f in fields]
        low = [-math.inf if f.minimum is None else f.minimum for f in fields]
        high = [math.inf if f.maximum is None else f.maximum for f in fields]
        self.low = np.asarray(low, dtype=np.float64)[:, None]
        self.high = np.asarray(high, dtype=np.float64)[:, None]
        self.integer = np.asarray([f.kind == "integer" for f in fields])

    def check(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        """Float64 columns by name when every number is finite, in range and of a number type."""
        if not self.names:
            return {}
        values = [columns[n] for n in self.names]
        if all(isinstance(v, list) for v in values):
            if not set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:
                return None
        elif not all(isinstance(v, np.ndarray) and v.dtype.kind in "iuf" for v in values):
            return None
        try:
            block = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError):
            return None
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(block) | (block < self.low) | (block > self.high)
        if self.integer.any():
            whole = block[self.integer]
            bad[self.integer] |= whole != np.round(whole)
        if bad.any():
            return None
        return dict(zip(self.names, block, strict=True))


def _check_column(spec: FieldSpec, values: Any, problems: list[str]) -> np.ndarray:
    if spec.kind == "timestamp":
        return _check_timestamps(spec, values, problems)
    if spec.kind == "string":
        return _check_strings(spec, values, problems)
    return _check_numbers(spec, values, problems)


def _check_numbers(spec: FieldSpec, values: Any, problems: list[str]) -> np.ndarray:
    array = values if isinstance(values, np.ndarray) else None
    if array is None and _only_numbers(values):
        try:
            array = np.asarray(values, dtype=np.float64)
        except OverflowError:
            array = None  # an integer beyond float range: the loop below names it
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


def _only_numbers(values: Any) -> bool:
    """Whether a list holds only int and float (no bool, no str): one pass, no per-item branch."""
    return isinstance(values, list) and set(map(type, values)) <= _NUMBER_TYPES


def _check_strings(spec: FieldSpec, values: Any, problems: list[str]) -> np.ndarray:
    text = isinstance(values, np.ndarray) and values.dtype.kind == "U"
    # Binary BYTES tensors arrive as str arrays already; JSON lists may hold anything.
    items: list[Any] = (
        values.tolist()
        if text
        else [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    )
    allowed = set(spec.categories or [])
    for index, value in enumerate(items):
        if not isinstance(value, str) or (spec.categories is not None and value not in allowed):
            _note(problems, spec, value, index)
            return np.empty(0, dtype=object)
    if text:
        return np.asarray(values)
    decoded = np.empty(len(items), dtype=object)
    decoded[:] = items
    return decoded


def _check_timestamps(spec: FieldSpec, values: Any, problems: list[str]) -> np.ndarray:
    fast = _plain_iso_timestamps(values)
    if fast is not None:
        return fast
    items = values.tolist() if isinstance(values, np.ndarray) else values
    strings = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in items]
    for index, value in enumerate(strings):
        # pandas reads "now", "today" and the like as the moment it runs: not event time.
        if not isinstance(value, str) or not _ISO_START.match(value):
            _note(problems, spec, value, index)
            return np.full(len(strings), np.datetime64("NaT", "ns"))
    parsed = pd.to_datetime(pd.Series(strings), format="ISO8601", errors="coerce", utc=True)
    if parsed.isna().any():
        index = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        _note(problems, spec, strings[index], index)
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


#: What every ISO 8601 timestamp starts with: a four-digit year.
_ISO_START = re.compile(r"\d{4}")
#: Positions of digits and separators in YYYY-MM-DDTHH:MM:SS (a space may stand for the T).
_ISO_LENGTH = 19
_ISO_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_ISO_SEPARATORS = {4: b"-", 7: b"-", 13: b":", 16: b":"}
#: pd.Timestamp.min and .max at whole seconds: pandas rejects anything outside (no datetime64[ns]).
_EARLIEST = np.datetime64("1677-09-21T00:12:44", "s")
_LATEST = np.datetime64("2262-04-11T23:47:16", "s")


def _plain_iso_timestamps(values: Any) -> np.ndarray | None:
    """`YYYY-MM-DDTHH:MM:SS` strings parsed in one numpy call, or None to take the general path.

    The shape of every string is checked character by character on a numpy view first; numpy
    then rejects impossible dates and times (February 30, 24:00). Anything else, including any
    string that fails, goes through pandas' ISO 8601 parser, which names the record that failed.
    """
    if isinstance(values, np.ndarray):
        array = values
    elif values and (all(type(v) is str for v in values) or all(type(v) is bytes for v in values)):
        array = np.array(values)
    else:
        return None
    if array.dtype.kind not in "US" or array.dtype.itemsize not in (_ISO_LENGTH, 4 * _ISO_LENGTH):
        return None
    codes = np.ascontiguousarray(array).view(np.uint32 if array.dtype.kind == "U" else np.uint8)
    chars = codes.reshape(-1, _ISO_LENGTH)
    digits = chars[:, _ISO_DIGITS].astype(np.uint32, copy=False)
    if not ((digits >= ord("0")) & (digits <= ord("9"))).all():
        return None
    for position, separator in _ISO_SEPARATORS.items():
        if not (chars[:, position] == ord(separator)).all():
            return None
    middle = chars[:, 10]
    if not ((middle == ord("T")) | (middle == ord(" "))).all():
        return None
    try:
        parsed = array.astype("datetime64[s]")
    except ValueError:
        return None
    if (parsed < _EARLIEST).any() or (parsed > _LATEST).any():
        return None
    return parsed.astype("datetime64[ns]")


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
