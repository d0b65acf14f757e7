"""Clean: each kind of dirt is repaired or dropped, and the report counts it."""

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.training.clean import CleanReport, clean


def _records(**overrides) -> pd.DataFrame:
    base = {
        "trip_id": ["a", "b", "c", "d"],
        "request_time": pd.to_datetime(["2026-03-02 08:00"] * 4),
        "zone": ["Z01", "Z02", "Z01", "Z03"],
        "customer_lat": [52.5] * 4,
        "customer_lon": [13.4] * 4,
        "driver_lat": [52.51] * 4,
        "driver_lon": [13.41] * 4,
        "distance_km": [2.0, 3.0, 4.0, 5.0],
        "driver_speed": [30.0, 30.0, 30.0, 30.0],
        "speed_unit": ["km/h"] * 4,
        "congestion": [0.2] * 4,
        "incidents": [0, 1, 0, 2],
        "temperature_c": [10.0] * 4,
        "precipitation_mm": [0.0] * 4,
        "weather": ["clear"] * 4,
        "pickup_minutes": [5.0, 6.0, 7.0, 8.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_mph_speeds_are_converted_and_the_unit_column_dropped(spec):
    frame, report = clean(spec, _records(speed_unit=["km/h", "mph", "km/h", "mph"]))
    assert frame["driver_speed"].tolist() == pytest.approx([30.0, 48.28032, 30.0, 48.28032])
    assert "speed_unit" not in frame.columns
    assert report.columns["driver_speed"].converted_units == {"km/h": 2, "mph": 2}


def test_duplicate_trips_are_dropped(spec):
    frame, report = clean(spec, _records(trip_id=["a", "a", "c", "d"]))
    assert len(frame) == 3
    assert report.duplicates_dropped == 1


def test_impossible_values_become_missing_then_filled_with_the_median(spec):
    frame, report = clean(spec, _records(driver_speed=[400.0, 30.0, 20.0, 40.0]))
    col = report.columns["driver_speed"]
    assert col.out_of_range == 1
    assert col.filled == 1
    assert frame["driver_speed"].iloc[0] == pytest.approx(30.0)


def test_negative_distance_cannot_be_repaired_and_drops_the_row(spec):
    frame, report = clean(spec, _records(distance_km=[-2.0, 3.0, 4.0, 5.0]))
    assert len(frame) == 3
    assert report.dropped == {"distance_km missing or invalid (required)": 1}


def test_text_in_a_numeric_column_is_counted(spec):
    frame, report = clean(spec, _records(congestion=["0.2", "high", 0.3, None]))
    col = report.columns["congestion"]
    assert col.text_values == 1
    assert col.missing == 1
    assert col.filled == 2
    assert frame["congestion"].dtype == np.float64


def test_rows_without_a_target_or_timestamp_are_dropped(spec):
    stamps = pd.to_datetime(["2026-03-02 08:00", None, "2026-03-02 09:00", "2026-03-02 10:00"])
    frame, report = clean(
        spec, _records(pickup_minutes=[5.0, 6.0, np.nan, 900.0], request_time=stamps)
    )
    assert frame["trip_id"].tolist() == ["a"]
    assert sum(report.dropped.values()) == 3


def test_missing_category_is_filled_with_the_most_frequent(spec):
    frame, report = clean(spec, _records(zone=["Z01", None, "Z01", " "]))
    assert frame["zone"].tolist() == ["Z01", "Z01", "Z01", "Z01"]
    assert report.columns["zone"].missing == 2


def test_report_survives_a_json_round_trip(spec):
    _, report = clean(spec, _records(speed_unit=["km/h", "mph", "km/h", "mph"]))
    assert CleanReport.from_dict(report.to_dict()) == report


def test_simulated_dirt_is_cleaned_away(spec, clean_frame):
    assert clean_frame[[*spec.numeric, *spec.categorical, spec.target]].notna().all().all()
    assert not clean_frame["trip_id"].duplicated().any()
    for column, (low, high) in spec.ranges.items():
        assert clean_frame[column].between(low, high).all(), column


def test_a_category_outside_the_declared_vocabulary_is_repaired_and_counted(spec):
    frame, report = clean(spec, _records(weather=["clear", "hail", "rain", "clear"]))
    assert frame["weather"].tolist() == ["clear", "clear", "rain", "clear"]
    assert report.columns["weather"].out_of_range == 1
