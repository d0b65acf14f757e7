"""Validate, the gate: a good batch passes; each way of being broken is named in the report."""

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.errors import ValidationFailed
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.ingest import ingest
from flywheel_mlops.training.validate import validate


@pytest.fixture(scope="module")
def ingested(spec, raw_data) -> pd.DataFrame:
    frame, _ = ingest(spec, str(raw_data.trips_path), str(raw_data.weather_path))
    return frame


def _gate(spec, frame):
    cleaned, report = clean(spec, frame.copy())
    return validate(spec, cleaned, report)


def test_simulated_batch_passes_every_check(spec, ingested):
    report = _gate(spec, ingested)
    assert report["passed"]
    assert report["failed"] == []
    assert {c["name"] for c in report["checks"]} >= {
        "null_rate",
        "type",
        "range",
        "duplicates",
        "row_count",
    }


def _drop_column(frame):
    return frame.drop(columns="congestion")


def _half_null(frame):
    frame["driver_speed"] = frame["driver_speed"].where(np.arange(len(frame)) % 2 == 0)
    return frame


def _text_in_numeric(frame):
    frame["incidents"] = frame["incidents"].astype(object)
    frame.loc[frame.index[::4], "incidents"] = "several"
    return frame


def _too_few(frame):
    return frame.iloc[:50]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_drop_column, "column 'congestion' is missing"),
        (_half_null, "driver_speed: 5"),
        (_text_in_numeric, "incidents: "),
        (_too_few, "usable rows, at least 200 needed"),
    ],
)
def test_broken_batch_fails_with_the_check_named(spec, ingested, breakage, expected):
    with pytest.raises(ValidationFailed) as failure:
        _gate(spec, breakage(ingested.copy()))
    assert not failure.value.report["passed"]
    assert any(expected in message for message in failure.value.report["failed"])
    assert expected in str(failure.value)


def test_every_failure_of_a_batch_is_reported_not_just_the_first(spec, ingested):
    broken = _text_in_numeric(_half_null(_drop_column(ingested.copy())))
    with pytest.raises(ValidationFailed) as failure:
        _gate(spec, broken)
    failed = failure.value.report["failed"]
    assert len(failed) >= 3
    assert any("congestion" in m for m in failed)
    assert any("driver_speed" in m for m in failed)
    assert any("incidents" in m and "text" in m for m in failed)
