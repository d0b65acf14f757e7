"""Calendar features (month, day of year, year): values, the spec's rules, old and new bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.features import (
    CALENDAR_FEATURES,
    TIME_FEATURES,
    CalendarFeature,
    FeaturePipeline,
)
from flywheel_mlops.spec import DatasetSpec, builtins, load_spec
from flywheel_mlops.training.featurize import featurize
from tests.unit.test_features_equivalence import _pandas_transform

ALL = list(get_args(CalendarFeature))
NAMES = [name for choice in ALL for name in CALENDAR_FEATURES[choice]]


def _calendar(stamps: list[str | None] | pd.Series) -> pd.DataFrame:
    """The calendar columns of `stamps`, by feature name."""
    pipeline = FeaturePipeline(numeric=[], categories={}, timestamp="t", calendar=ALL)
    matrix = pipeline.transform(pd.DataFrame({"t": pd.to_datetime(pd.Series(stamps))}))
    return pd.DataFrame(matrix, columns=pipeline.feature_names)[NAMES]


def _with_calendar(spec: DatasetSpec, calendar: list[str]) -> DatasetSpec:
    return DatasetSpec.model_validate(spec.model_dump() | {"calendar": calendar})


def test_every_calendar_choice_has_its_names():
    assert set(CALENDAR_FEATURES) == set(ALL)


@pytest.mark.parametrize(
    ("stamp", "month", "day_of_year", "year"),
    [
        ("2012-07-01 12:00", 7, 183, 2012 + 182.5 / 366),  # 2012 is a leap year
        ("2011-07-01 12:00", 7, 182, 2011 + 181.5 / 365),
        ("2012-01-01 00:00", 1, 1, 2012.0),
        ("2012-12-31 23:00", 12, 366, 2012 + (365 + 23 / 24) / 366),
        ("1969-12-31 18:00", 12, 365, 1969 + (364 + 0.75) / 365),  # before day 0 of datetime64
    ],
)
def test_known_dates_give_their_month_day_and_year(stamp, month, day_of_year, year):
    row = _calendar([stamp]).iloc[0]
    assert row["month"] == month
    assert row["day_of_year"] == day_of_year
    # float32 holds a year near 2000 to 1/8192 of a year (about an hour)
    assert row["year"] == pytest.approx(year, abs=2e-4)


def test_cycles_put_december_next_to_january():
    rows = _calendar(["2012-01-15", "2012-03-15", "2012-12-31", "2013-01-01"])
    np.testing.assert_allclose(rows["month_sin"][:2], [np.sin(np.pi / 6), 1.0], atol=1e-6)
    np.testing.assert_allclose(rows["month_cos"][:2], [np.cos(np.pi / 6), 0.0], atol=1e-6)
    new_year = rows[["day_of_year_sin", "day_of_year_cos"]].to_numpy()[2:]
    assert np.linalg.norm(new_year[0] - new_year[1]) < 2 * np.pi * 1.5 / 365.25


def _pandas_calendar(stamps: pd.Series) -> pd.DataFrame:
    times = pd.to_datetime(stamps)
    start = pd.to_datetime(times.dt.year.astype(str) + "-01-01")
    length = np.where(times.dt.is_leap_year, 366.0, 365.0)
    month = times.dt.month.astype(float)
    day = times.dt.dayofyear.astype(float)
    return pd.DataFrame(
        {
            "month": month,
            "month_sin": np.sin(2 * np.pi * month / 12),
            "month_cos": np.cos(2 * np.pi * month / 12),
            "day_of_year": day,
            "day_of_year_sin": np.sin(2 * np.pi * day / 365.25),
            "day_of_year_cos": np.cos(2 * np.pi * day / 365.25),
            "year": times.dt.year + (times - start).dt.total_seconds() / 86400 / length,
        }
    ).astype(np.float32)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.datetimes(
            min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
            max_value=pd.Timestamp("2260-12-31").to_pydatetime(),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_random_times_match_pandas_calendar(stamps):
    # The pipeline counts whole minutes, as the hour feature does.
    series = pd.Series(pd.to_datetime(stamps)).dt.floor("min")
    got = _calendar(series)
    expected = _pandas_calendar(series)
    np.testing.assert_array_equal(got[NAMES[:-1]], expected[NAMES[:-1]])
    np.testing.assert_allclose(got["year"], expected["year"], rtol=0, atol=2e-4)


def test_missing_timestamp_gives_nan_calendar_and_leaves_other_rows():
    rows = _calendar([None, "2012-07-01 12:00"])
    assert rows.iloc[0].isna().all()
    assert rows.iloc[1].notna().all()


def test_calendar_columns_follow_the_time_features_in_the_spec_order():
    pipeline = FeaturePipeline(
        numeric=["x"], categories={}, timestamp="t", baseline="x * 2", calendar=["year", "month"]
    )
    expected = ["x", *TIME_FEATURES, "year", "month", "month_sin", "month_cos", "baseline"]
    assert pipeline.feature_names == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        pytest.param(
            {"calendar": ["month"]}, r"calendar \['month'\] needs `timestamp`", id="no-ts"
        ),
        pytest.param(
            {"timestamp": "t", "numeric": ["month"], "calendar": ["month"]},
            r"columns \['month'\] have the names of features Flywheel generates",
            id="month-column",
        ),
        pytest.param(
            {"timestamp": "t", "categorical": ["year"], "calendar": ["year"]},
            r"columns \['year'\] have the names",
            id="year-column",
        ),
        pytest.param(
            {"timestamp": "t", "calendar": ["year", "year"]}, "lists \\['year'\\] twice", id="twice"
        ),
        pytest.param({"timestamp": "t", "calendar": ["week"]}, "'month', 'day_of_year'", id="week"),
    ],
)
def test_calendar_mistakes_are_spec_errors(tmp_path: Path, spec, says):
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps({"name": "m", "target": "y", **spec}))
    with pytest.raises(ConfigError, match=says):
        load_spec(path)


def test_a_column_named_month_is_free_without_the_month_feature():
    spec = DatasetSpec.model_validate(
        {"name": "m", "target": "y", "timestamp": "t", "numeric": ["month"], "calendar": ["year"]}
    )
    assert spec.numeric == ["month"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"calendar": ["week"]}, "calendar features \\['week'\\] are unknown"),
        ({"timestamp": None}, "need a timestamp column"),
    ],
)
def test_a_features_json_with_a_bad_calendar_does_not_load(change, says):
    saved = json.loads(
        FeaturePipeline(numeric=[], categories={}, timestamp="t", calendar=["month"]).to_json()
    )
    with pytest.raises(ConfigError, match=says):
        FeaturePipeline.from_json(json.dumps(saved | change))


def test_an_old_features_json_loads_without_calendar_and_transforms_as_before(spec, clean_frame):
    saved = json.loads(FeaturePipeline.fit(spec, clean_frame).to_json())
    del saved["calendar"]  # as bundles saved before calendar features existed
    old = FeaturePipeline.from_json(json.dumps(saved))
    assert old.calendar == []
    assert not set(NAMES) & set(old.feature_names)
    # the pandas implementation the feature module replaced, written before calendars existed
    expected = _pandas_transform(old, clean_frame)
    assert old.transform(clean_frame).tobytes() == expected.tobytes()


def test_fitted_calendar_survives_the_bundle_json_in_training_and_serving(spec, clean_frame):
    pipeline, schema = featurize(_with_calendar(spec, ALL), clean_frame)
    again = FeaturePipeline.from_json(pipeline.to_json())
    assert again == pipeline
    assert again.calendar == ALL
    at = again.feature_names.index("is_weekend") + 1
    assert again.feature_names[at : at + len(NAMES)] == NAMES

    trained = pipeline.transform(clean_frame)
    assert again.transform(clean_frame).tobytes() == trained.tobytes()
    # Serving: ISO strings through the schema check, then the same transform.
    rows = clean_frame[schema.names].head(50)
    records = rows.assign(
        request_time=rows["request_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    ).to_dict("records")
    served = again.transform(schema.check_records(records))
    assert served.tobytes() == trained[:50].tobytes()
    calendar = served[:, at : at + len(NAMES)]
    assert np.isfinite(calendar).all()
    months = clean_frame["request_time"].head(50).dt.month.to_numpy()
    assert calendar[:, 0].tolist() == months.astype(np.float32).tolist()


def test_bike_sharing_spec_ships_with_flywheel():
    spec = load_spec("bike_sharing")
    assert "bike_sharing" in builtins()
    assert (spec.name, spec.target, spec.timestamp) == ("bike-share-count", "count", "ts")
    assert spec.numeric == ["tmin", "tmax", "pn"]
    assert spec.calendar == ["month", "day_of_year", "year"]


def test_bike_sharing_table_ingests_and_cleans_whole(bikesharing_csv):
    from flywheel_mlops.training.clean import clean
    from flywheel_mlops.training.ingest import ingest

    spec = load_spec("bike_sharing")
    frame, report = ingest(spec, str(bikesharing_csv))
    assert (report.rows_read, report.timestamps_unparsed) == (78_421, 0)
    cleaned, cleaning = clean(spec, frame)
    assert cleaning.rows_out == 78_421
    assert not any(column.out_of_range for column in cleaning.columns.values())
    pipeline = FeaturePipeline.fit(spec, cleaned)
    first = pipeline.transform(cleaned.head(1))
    names = pipeline.feature_names
    assert first[0, names.index("hour")] == 12.0  # 2010-09-20 12:00:00, kept as wall-clock time
    assert first[0, names.index("day_of_year")] == 263
