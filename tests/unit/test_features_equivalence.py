"""The numpy feature code gives the very matrix the pandas version did, for training and serving.

`_pandas_transform` is the implementation `FeaturePipeline.transform` replaced (pd.eval for the
baseline rule, `.dt` accessors, pd.Categorical), kept here only as the oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from flywheel_mlops.errors import ConfigError, InvalidInputError
from flywheel_mlops.features import BaselineRule, FeaturePipeline, baseline_prediction
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.training.featurize import featurize


def _pandas_baseline(expression: str, frame: pd.DataFrame) -> np.ndarray:
    values = pd.eval(expression, local_dict={c: frame[c] for c in frame.columns}, engine="python")
    result = np.asarray(values, dtype=np.float64)
    result[~np.isfinite(result)] = np.nan
    return result


def _pandas_time_features(stamps: pd.Series) -> np.ndarray:
    times = pd.to_datetime(stamps)
    hour = (times.dt.hour + times.dt.minute / 60.0).to_numpy(dtype=np.float64)
    weekday = times.dt.weekday.to_numpy(dtype=np.float64)
    angle = 2 * np.pi * hour / 24.0
    return np.column_stack(
        [hour, np.sin(angle), np.cos(angle), weekday, (weekday >= 5).astype(np.float64)]
    ).astype(np.float32)


def _pandas_one_hot(values: pd.Series, column: str, categories: list[str]) -> np.ndarray:
    codes = pd.Categorical(values.astype(str), categories=categories).codes
    unknown = (codes < 0) & values.notna().to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InvalidInputError(
            f"{column} must be one of {categories}, got {values.iloc[row]!r} in record {row}"
        )
    matrix = np.zeros((len(values), len(categories)), dtype=np.float32)
    known = codes >= 0
    matrix[np.flatnonzero(known), codes[known]] = 1.0
    return matrix


def _pandas_transform(pipeline: FeaturePipeline, frame: pd.DataFrame) -> np.ndarray:
    blocks = [frame[pipeline.numeric].to_numpy(dtype=np.float32, na_value=np.nan)]
    if pipeline.timestamp:
        blocks.append(_pandas_time_features(frame[pipeline.timestamp]))
    if pipeline.baseline:
        blocks.append(_pandas_baseline(pipeline.baseline, frame).astype(np.float32)[:, None])
    for column, values in sorted(pipeline.categories.items()):
        blocks.append(_pandas_one_hot(frame[column], column, values))
    return np.hstack(blocks)


def _assert_identical(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert got.tobytes() == expected.tobytes()


@pytest.fixture(scope="module")
def fitted(spec, clean_frame):
    return featurize(spec, clean_frame)


def test_training_frames_give_the_pandas_matrix_byte_for_byte(fitted, clean_frame):
    pipeline, _ = fitted
    _assert_identical(pipeline.transform(clean_frame), _pandas_transform(pipeline, clean_frame))


def test_served_columns_give_the_pandas_matrix_byte_for_byte(fitted, clean_frame):
    pipeline, schema = fitted
    rows = clean_frame[schema.names]
    columns = schema.check_records(frame_to_records(rows))
    assert all(isinstance(values, np.ndarray) for values in columns.values())
    _assert_identical(pipeline.transform(columns), _pandas_transform(pipeline, rows))


@pytest.mark.parametrize("rows", [1, 2, 7])
def test_single_rows_give_the_pandas_matrix(fitted, clean_frame, rows):
    pipeline, schema = fitted
    sample = clean_frame[schema.names].sample(rows, random_state=rows).reset_index(drop=True)
    columns = schema.check_records(frame_to_records(sample))
    _assert_identical(pipeline.transform(columns), _pandas_transform(pipeline, sample))


_PIPELINE = FeaturePipeline(
    numeric=["distance_km", "driver_speed", "incidents"],
    categories={"zone": ["Z00", "Z01", "Z02"], "weather": ["clear", "rain"]},
    timestamp="request_time",
    baseline="distance_km / driver_speed * 60",
)
_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 1e-300, 1e300]),
)
_STAMP = st.datetimes(
    min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
    max_value=pd.Timestamp("2260-12-31").to_pydatetime(),
)


def _frames() -> st.SearchStrategy[pd.DataFrame]:
    return hpd.data_frames(
        [
            hpd.column("distance_km", elements=_NUMBER, dtype=float),
            hpd.column("driver_speed", elements=_NUMBER, dtype=float),
            hpd.column("incidents", elements=st.integers(0, 20), dtype=np.int64),
            hpd.column("request_time", elements=_STAMP, dtype="datetime64[ns]"),
            hpd.column("zone", elements=st.sampled_from(["Z00", "Z01", "Z02", None])),
            hpd.column("weather", elements=st.sampled_from(["clear", "rain", None])),
        ],
        index=hpd.range_indexes(min_size=1, max_size=40),
    )


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames())
def test_random_frames_give_the_pandas_matrix_as_frames_and_as_columns(frame):
    expected = _pandas_transform(_PIPELINE, frame)
    _assert_identical(_PIPELINE.transform(frame), expected)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    _assert_identical(_PIPELINE.transform(columns), expected)


def test_missing_timestamps_and_categories_match_the_pandas_version():
    frame = pd.DataFrame(
        {
            "distance_km": [1.0, np.nan],
            "driver_speed": [0.0, 30.0],
            "incidents": [1, 2],
            "request_time": pd.to_datetime(pd.Series(["1969-12-31 23:59:30", None])),
            "zone": [None, "Z01"],
            "weather": ["rain", np.nan],
        }
    )
    _assert_identical(_PIPELINE.transform(frame), _pandas_transform(_PIPELINE, frame))


def test_time_zones_and_text_timestamps_keep_wall_clock_time():
    frame = pd.DataFrame(
        {
            "distance_km": [1.0, 2.0],
            "driver_speed": [20.0, 30.0],
            "incidents": [0, 1],
            "request_time": pd.to_datetime(["2026-03-07 06:30", "2026-03-09 18:00"]).tz_localize(
                "Europe/Paris"
            ),
            "zone": ["Z00", "Z01"],
            "weather": ["rain", "clear"],
        }
    )
    _assert_identical(_PIPELINE.transform(frame), _pandas_transform(_PIPELINE, frame))
    text = frame.assign(request_time=["2026-03-07 06:30:00", "2026-03-09 18:00:00"])
    _assert_identical(_PIPELINE.transform(text), _pandas_transform(_PIPELINE, text))


@pytest.mark.parametrize(
    "expression",
    [
        "distance_km / driver_speed * 60",
        "-distance_km ** 2 + 3",
        "(distance_km + driver_speed) / (distance_km - driver_speed)",
        "distance_km ** 0.5 - 2 ** -driver_speed",
        "1.5e1 * (distance_km - -driver_speed)",
    ],
)
@settings(max_examples=40, deadline=None)
@given(
    distance=st.lists(_NUMBER, min_size=1, max_size=20),
    speed=st.lists(_NUMBER, min_size=20, max_size=20),
)
def test_allowed_rules_evaluate_like_pandas_eval(expression, distance, speed):
    frame = pd.DataFrame({"distance_km": distance, "driver_speed": speed[: len(distance)]})
    with np.errstate(all="ignore"):
        expected = _pandas_baseline(expression, frame)
    got = baseline_prediction(expression, frame)
    np.testing.assert_array_equal(got, expected)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    np.testing.assert_array_equal(baseline_prediction(expression, columns), expected)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("distance_km.real", "'distance_km.real' is not allowed"),
        ("sin(distance_km)", "'sin(distance_km)' is not allowed"),
        ("__import__('os').system('true')", "is not allowed"),
        ("distance_km > 1", "'distance_km > 1' is not allowed"),
        ("distance_km // 2", "'distance_km // 2' is not allowed"),
        ("distance_km % 2", "is not allowed"),
        ("distance_km[0]", "is not allowed"),
        ("True * distance_km", "'True' is not allowed"),
        ("'km' * 2", "is not allowed"),
        ("a if b else c", "is not allowed"),
        ("@speed * 2", "is not valid arithmetic"),
        ("distance_km /", "is not valid arithmetic"),
        ("", "is not valid arithmetic"),
    ],
)
def test_rules_outside_arithmetic_are_refused_naming_the_expression(expression, says):
    with pytest.raises(ConfigError) as raised:
        BaselineRule(expression)
    assert f"baseline expression {expression!r}" in str(raised.value)
    assert says in str(raised.value)


def test_a_pipeline_with_a_refused_rule_does_not_load():
    text = _PIPELINE.to_json().replace("distance_km / driver_speed * 60", "open('x')")
    with pytest.raises(ConfigError, match="open"):
        FeaturePipeline.from_json(text)


def test_a_rule_naming_an_absent_column_says_which():
    with pytest.raises(InvalidInputError, match="driver_speed"):
        baseline_prediction("distance_km / driver_speed", {"distance_km": np.ones(2)})


def test_compiled_parts_stay_out_of_the_json_and_equality():
    again = FeaturePipeline.from_json(_PIPELINE.to_json())
    assert again == _PIPELINE
    assert "_rule" not in _PIPELINE.to_json()
