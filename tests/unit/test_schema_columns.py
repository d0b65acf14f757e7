"""The schema check hands numpy columns to the feature code, with the same strict messages.

`_pandas_timestamps` is the timestamp check the numpy fast path sits in front of; it stays the
oracle for every string the fast path takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.schema import FieldSpec, InputSchema

SCHEMA = InputSchema(
    [
        FieldSpec("when", "timestamp"),
        FieldSpec("km", "number", 0, 60),
        FieldSpec("incidents", "integer", 0, 20),
        FieldSpec("zone", "string", categories=["Z00", "Z01"]),
    ]
)
WHEN = SCHEMA.fields[0]


def _pandas_timestamps(strings: list[str]) -> np.ndarray | str:
    """Parsed values, or the first rejected string's message, as the check always gave them."""
    parsed = pd.to_datetime(pd.Series(strings), format="ISO8601", errors="coerce", utc=True)
    if parsed.isna().any():
        index = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        return (
            f"when must be an ISO 8601 timestamp string, got {strings[index]!r} in record {index}"
        )
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _check(values: Any) -> np.ndarray | str:
    columns = {"when": values, "km": [1.0] * len(values), "incidents": [1] * len(values)}
    try:
        return SCHEMA.check_columns(columns | {"zone": ["Z00"] * len(values)})["when"]
    except InvalidInputError as error:
        return str(error)


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=count, max_size=count)


_PLAIN = st.builds(
    lambda y, mo, d, sep, h, mi, s: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}",
    st.one_of(_digits(4), st.sampled_from(["1677", "1970", "2026", "2262", "0000", "9999"])),
    st.one_of(_digits(2), st.sampled_from(["01", "02", "12", "13"])),
    st.one_of(_digits(2), st.sampled_from(["01", "28", "29", "30", "31"])),
    st.sampled_from(["T", " "]),
    st.one_of(_digits(2), st.sampled_from(["00", "23", "24"])),
    st.one_of(_digits(2), st.sampled_from(["00", "59", "60"])),
    st.one_of(_digits(2), st.sampled_from(["00", "59", "60"])),
)


@settings(max_examples=300, deadline=None)
@given(strings=st.lists(_PLAIN, min_size=1, max_size=5))
def test_plain_iso_timestamps_parse_or_fail_exactly_as_pandas_does(strings: list[str]) -> None:
    expected = _pandas_timestamps(strings)
    for form in (strings, np.array(strings), [s.encode() for s in strings]):
        got = _check(form)
        if isinstance(expected, str):
            assert got == expected
        else:
            assert isinstance(got, np.ndarray)
            assert got.dtype == np.dtype("datetime64[ns]")
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-02T08:15:00Z",
        "2026-03-02T08:15:00+02:00",
        "2026-03-02T08:15:00.250",
        "2026-03-02T08:15",
        "2026-03-02",
        "1677-09-21T00:12:44",
        "2262-04-11T23:47:16",
    ],
)
def test_other_iso_forms_still_parse_as_pandas_does(stamp: str) -> None:
    got = _check(["2026-03-02T08:00:00", stamp])
    np.testing.assert_array_equal(got, _pandas_timestamps(["2026-03-02T08:00:00", stamp]))


@pytest.mark.parametrize(
    "bad",
    [
        "2026-02-30T08:00:00",
        "2026-03-02T24:00:00",
        "1677-09-21T00:12:43",
        "NaT",
        "2026-13-02T08:00:00",
        "now",
        "today",
        "tomorrow",
        " 2026-03-02T08:00:00",
    ],
)
@pytest.mark.parametrize("form", ["list", "str array", "bytes"])
def test_a_bad_timestamp_is_named_with_its_record(bad: str, form: str) -> None:
    strings = ["2026-03-02T08:00:00", "2026-03-02T09:00:00", bad]
    values: Any = {
        "list": strings,
        "str array": np.array(strings),
        "bytes": [s.encode() for s in strings],
    }[form]
    assert _check(values) == (f"when must be an ISO 8601 timestamp string, got {bad!r} in record 2")


@pytest.mark.parametrize("form", ["list", "str array", "bytes"])
def test_plain_timestamps_are_parsed_without_pandas(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the plain ISO form went through pd.to_datetime")

    monkeypatch.setattr(pd, "to_datetime", refuse)
    strings = ["1677-09-21T00:12:44", "2026-03-02 08:15:00", "2262-04-11T23:47:16"]
    values: Any = {
        "list": strings,
        "str array": np.array(strings),
        "bytes": [s.encode() for s in strings],
    }[form]
    got = _check(values)
    assert isinstance(got, np.ndarray)
    assert got.astype(str).tolist() == [
        "1677-09-21T00:12:44.000000000",
        "2026-03-02T08:15:00.000000000",
        "2262-04-11T23:47:16.000000000",
    ]


def test_checked_columns_are_numpy_arrays_the_features_read() -> None:
    columns = SCHEMA.check_columns(
        {"when": ["2026-03-02T08:00:00"], "km": [1.5], "incidents": [2], "zone": ["Z01"]}
    )
    assert columns["when"].dtype == np.dtype("datetime64[ns]")
    assert columns["km"].dtype == columns["incidents"].dtype == np.float64
    assert columns["zone"].tolist() == ["Z01"]
    frame = SCHEMA.frame_from_columns(
        {"when": ["2026-03-02T08:00:00"], "km": [1.5], "incidents": [2], "zone": ["Z01"]}
    )
    assert list(frame.dtypes.astype(str)) == ["datetime64[ns]", "float64", "float64", "object"]


@pytest.mark.parametrize(
    ("km", "says"),
    [
        ([1.0, True], "km must be a finite number within [0, 60], got True in record 1"),
        ([1, "2"], "got '2' in record 1"),
        ([1.0, 10**400], "got 'inf' in record 1"),
        ([1.0, [2.0]], "got [2.0] in record 1"),
        ([1.0, float("nan")], "got 'nan' in record 1"),
        ([1.0, 61], "got 61.0 in record 1"),
    ],
    ids=["bool", "text", "huge integer", "nested", "nan", "range"],
)
def test_number_lists_keep_their_per_element_messages(km: list[Any], says: str) -> None:
    columns = {"when": ["2026-03-02T08:00:00"] * 2, "km": km, "incidents": [1, 2]}
    with pytest.raises(InvalidInputError) as raised:
        SCHEMA.check_columns(columns | {"zone": ["Z00", "Z01"]})
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("zone", "says"),
    [
        (["Z00", "Z99"], "zone must be one of ['Z00', 'Z01'], got 'Z99' in record 1"),
        (np.array(["Z00", "Z99"]), "got 'Z99' in record 1"),
        (["Z00", ["Z01"]], "got ['Z01'] in record 1"),
        (["Z00", 1], "got 1 in record 1"),
    ],
    ids=["list", "str array", "nested", "number"],
)
def test_string_columns_keep_their_per_element_messages(zone: Any, says: str) -> None:
    columns = {"when": ["2026-03-02T08:00:00"] * 2, "km": [1.0, 2.0], "incidents": [1, 2]}
    with pytest.raises(InvalidInputError) as raised:
        SCHEMA.check_columns(columns | {"zone": zone})
    assert says in str(raised.value)


def test_records_with_other_keys_are_still_named() -> None:
    record = {"when": "2026-03-02T08:00:00", "km": 1.0, "incidents": 1, "zone": "Z00"}
    with pytest.raises(InvalidInputError) as raised:
        SCHEMA.check_records([record, {**record, "tip": 1}, {"km": 1.0}])
    message = str(raised.value)
    assert "tip is not an input field in record 1" in message
    assert "when is missing in record 2" in message


def _per_field(columns: dict[str, Any]) -> dict[str, np.ndarray] | str:
    """The number columns as the per-field checks alone give them (or their message)."""
    from flywheel_mlops.schema import _check_column, _raise_if

    problems: list[str] = []
    checked = {
        f.name: _check_column(f, columns[f.name], problems)
        for f in SCHEMA.fields
        if f.kind in ("number", "integer")
    }
    try:
        _raise_if(problems)
    except InvalidInputError as error:
        return str(error)
    return checked


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, 1, 2.5, 20, 60, 60.0001, -0.0, True, "3", None]),
)


@settings(max_examples=400, deadline=None)
@given(
    km=st.lists(_NUMBERS, min_size=1, max_size=6),
    incidents=st.lists(_NUMBERS, min_size=1, max_size=6),
    as_arrays=st.booleans(),
)
def test_the_one_pass_number_check_agrees_with_the_per_field_checks(
    km: list[Any], incidents: list[Any], as_arrays: bool
) -> None:
    """Whatever the values, the batch check (all number fields in one array) gives the same
    columns as checking field by field, or leaves the batch to those checks' messages."""
    rows = min(len(km), len(incidents))
    columns: dict[str, Any] = {"km": km[:rows], "incidents": incidents[:rows]}
    if as_arrays:
        try:
            columns = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        except (TypeError, ValueError, OverflowError):
            return
    expected = _per_field(columns)
    fast = SCHEMA._numbers.check(columns)
    if fast is None:
        # Declined: the per-field path answers; it must then have something to say, or the
        # batch is one the fast path merely could not stack.
        return
    assert not isinstance(expected, str), f"fast path accepted what the fields reject: {expected}"
    for name, values in expected.items():
        np.testing.assert_array_equal(fast[name], values)
        assert fast[name].dtype == np.float64


def test_a_clean_batch_takes_the_one_pass_number_check() -> None:
    columns = {"km": [1.5, 2], "incidents": [0, 20]}
    fast = SCHEMA._numbers.check(columns)
    assert fast is not None
    assert fast["km"].tolist() == [1.5, 2.0]
    assert fast["incidents"].tolist() == [0.0, 20.0]
    assert SCHEMA._numbers.check({"km": [1.5, 2], "incidents": [0, 2.5]}) is None  # not whole
    assert SCHEMA._numbers.check({"km": [1.5, True], "incidents": [0, 1]}) is None  # a bool


@settings(max_examples=200, deadline=None)
@given(
    km=st.lists(st.floats(min_value=0, max_value=60), min_size=1, max_size=8),
    whole=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=8),
)
def test_clean_batches_take_the_one_pass_check_and_match_the_per_field_checks(
    km: list[float], whole: list[int]
) -> None:
    rows = min(len(km), len(whole))
    columns: dict[str, Any] = {"km": km[:rows], "incidents": whole[:rows]}
    fast = SCHEMA._numbers.check(columns)
    assert fast is not None, "a clean batch must not fall back to the per-field checks"
    expected = _per_field(columns)
    assert not isinstance(expected, str)
    for name, values in expected.items():
        np.testing.assert_array_equal(fast[name], values)
