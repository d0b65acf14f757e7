"""Ingest: both timestamp formats, the weather join, windows, CSV/Parquet, fsspec URIs."""

from pathlib import Path

import pandas as pd
import pytest

from flywheel_mlops.errors import ConfigError, InvalidInputError
from flywheel_mlops.training.ingest import ingest, parse_timestamps
from flywheel_mlops.training.local_runner import TrainingRequest, run_training


def test_both_timestamp_formats_parse_to_the_same_instant():
    values = pd.Series(["2026-03-02T08:15:31", "02/03/2026 08:15:31", "garbage", None])
    parsed, counts = parse_timestamps(values, ["%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S"])
    assert parsed[0] == parsed[1] == pd.Timestamp("2026-03-02 08:15:31")
    assert parsed[2:].isna().all()
    assert counts == {"%Y-%m-%dT%H:%M:%S": 1, "%d/%m/%Y %H:%M:%S": 1}


def test_ingest_joins_weather_on_the_request_hour(spec, raw_data):
    frame, report = ingest(spec, str(raw_data.trips_path), str(raw_data.weather_path))
    weather = pd.read_parquet(raw_data.weather_path)
    weather["time"] = pd.to_datetime(weather["time"])
    row = frame.dropna(subset=["request_time", "weather"]).iloc[10]
    hour = weather.set_index("time").loc[row["request_time"].floor("h")]
    assert row["weather"] == hour["weather"]
    assert report.rows_read == raw_data.trip_rows
    assert report.timestamps_unparsed < raw_data.trip_rows * 0.05
    assert sum(report.timestamp_formats.values()) + report.timestamps_unparsed == len(frame)


def test_window_keeps_only_records_inside_it(spec, raw_data):
    frame, report = ingest(
        spec,
        str(raw_data.trips_path),
        str(raw_data.weather_path),
        start="2026-03-05",
        end="2026-03-08",
    )
    stamps = frame["request_time"].dropna()
    assert stamps.min() >= pd.Timestamp("2026-03-05")
    assert stamps.max() < pd.Timestamp("2026-03-08")
    assert 0 < report.rows_in_window < report.rows_read


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_through_a_file_uri_give_the_same_records(spec, raw_data, tmp_path, fmt):
    trips = pd.read_parquet(raw_data.trips_path)
    path = tmp_path / f"trips.{fmt}"
    trips.to_csv(path, index=False) if fmt == "csv" else trips.to_parquet(path)
    frame, _ = ingest(spec, f"file://{path}", str(raw_data.weather_path))
    assert len(frame) == len(trips)
    assert frame["trip_id"].astype(str).tolist() == trips["trip_id"].astype(str).tolist()


def test_a_glob_reads_every_matching_file(spec, raw_data, tmp_path: Path):
    trips = pd.read_parquet(raw_data.trips_path)
    trips.iloc[:100].to_parquet(tmp_path / "part-1.parquet")
    trips.iloc[100:250].to_parquet(tmp_path / "part-2.parquet")
    frame, report = ingest(spec, str(tmp_path / "part-*.parquet"), str(raw_data.weather_path))
    assert len(frame) == 250
    assert len(report.files) == 2


def test_missing_timestamp_column_is_named(spec, raw_data, tmp_path):
    trips = pd.read_parquet(raw_data.trips_path).drop(columns="request_time")
    trips.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InvalidInputError, match="request_time"):
        ingest(spec, str(tmp_path / "t.parquet"), str(raw_data.weather_path))


def test_no_matching_file_is_a_clear_error(spec, tmp_path):
    with pytest.raises(ConfigError, match="no file matches"):
        ingest(spec, str(tmp_path / "nothing-*.parquet"))


@pytest.mark.parametrize(
    "start",
    ["2026-03-05", "2026-03-05T00:00:00", "2026-03-05T01:00:00+01:00", "2026-03-05T00:00:00Z"],
)
@pytest.mark.parametrize("stored", ["csv-text", "parquet-naive", "parquet-utc"])
def test_a_window_bound_means_the_same_instant_whatever_the_file_and_its_zone(
    spec, tmp_path: Path, start: str, stored: str
):
    learned = spec.model_copy(update={"timestamp_formats": [], "join": None})
    times = pd.date_range("2026-03-04T22:00:00", periods=6, freq="h")
    frame = pd.DataFrame({"request_time": times, "pickup_minutes": range(6)})
    if stored == "csv-text":
        path = tmp_path / "trips.csv"
        frame.assign(request_time=times.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(path, index=False)
    else:
        path = tmp_path / "trips.parquet"
        zoned = times.tz_localize("UTC") if stored == "parquet-utc" else times
        frame.assign(request_time=zoned).to_parquet(path, index=False)
    kept, _ = ingest(learned, str(path), start=start)
    assert kept["request_time"].min() == pd.Timestamp("2026-03-05T00:00:00")
    assert len(kept) == 4


def test_a_missing_local_file_fails_before_the_pipeline_starts(spec, tmp_path: Path):
    request = TrainingRequest(spec, str(tmp_path / "nowhere" / "*.parquet"), str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="no file matches"):
        run_training(request, tmp_path / "runs")
    assert not (tmp_path / "runs").exists(), "no run was started"


def test_a_window_bound_that_is_not_a_time_names_the_option(spec, raw_data, tmp_path: Path):
    request = TrainingRequest(spec, str(raw_data.trips_path), str(tmp_path), start="yesterday")
    with pytest.raises(ConfigError, match="--start must be an ISO 8601"):
        run_training(request, tmp_path / "runs")
