"""Behaviour of the ride-hailing simulator: determinism, schema, dirt, drift events and scale."""

from __future__ import annotations

import tracemalloc
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from flywheel_mlops.simulator import SimulationConfig, SimulationResult, simulate

TRIPS_COLUMNS = [
    "trip_id",
    "request_time",
    "zone",
    "customer_lat",
    "customer_lon",
    "driver_lat",
    "driver_lon",
    "distance_km",
    "driver_speed",
    "speed_unit",
    "congestion",
    "incidents",
    "pickup_minutes",
]
WEATHER_COLUMNS = ["time", "temperature_c", "precipitation_mm", "weather"]
FLOAT_COLUMNS = [*TRIPS_COLUMNS[3:9], "congestion", "pickup_minutes"]
ISO = "%Y-%m-%dT%H:%M:%S"
DAY_FIRST = "%d/%m/%Y %H:%M:%S"
WEATHER_KINDS = ["clear", "rain", "snow", "fog"]
MODEL_FEATURES = [
    "distance_km",
    "driver_speed",
    "congestion",
    "incidents",
    "hour",
    "weekday",
    *(f"weather_{kind}" for kind in WEATHER_KINDS),
    "precipitation_mm",
    "temperature_c",
]


def run(tmp_path: Path, name: str = "run", **overrides: object) -> SimulationResult:
    """Simulate a small run (5k rows unless overridden) into tmp_path / name."""
    config = SimulationConfig(**{"rows": 5_000, **overrides})  # type: ignore[arg-type]
    return simulate(config, tmp_path / name)


def read(path: Path) -> pd.DataFrame:
    """Read a parquet or CSV output with pandas."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def request_times(trips: pd.DataFrame) -> pd.Series:
    """Parse `request_time`, accepting exactly the two documented formats."""
    iso = pd.to_datetime(trips["request_time"], format=ISO, errors="coerce")
    day_first = pd.to_datetime(trips["request_time"], format=DAY_FIRST, errors="coerce")
    assert (iso.notna() ^ day_first.notna()).all(), "every request_time matches exactly one format"
    return iso.fillna(day_first)


def nulls_as_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing strings as NaN, the way pandas reads them from CSV (parquet gives None)."""
    text = frame.select_dtypes(object).columns
    return frame.assign(**{c: frame[c].where(frame[c].notna(), np.nan) for c in text})


def with_features(result: SimulationResult) -> pd.DataFrame:
    """Clean trips joined with the weather of their request hour, plus calendar features."""
    trips = read(result.trips_path)
    weather = read(result.weather_path)
    time = request_times(trips)
    trips["hour_start"] = time.dt.floor("h")
    trips["hour"] = time.dt.hour
    trips["weekday"] = time.dt.weekday
    weather["hour_start"] = pd.to_datetime(weather["time"], format=ISO)
    joined = trips.merge(weather.drop(columns="time"), on="hour_start", how="left")
    for kind in WEATHER_KINDS:
        joined[f"weather_{kind}"] = (joined["weather"] == kind).astype(int)
    return joined


def fit_model(features: pd.DataFrame, target: pd.Series) -> HistGradientBoostingRegressor:
    """A quick gradient-boosted model of the target."""
    # One thread: on 15k rows OpenMP workers mostly spin, and on a shared CI box that turns a
    # sub-second fit into a minute.
    with threadpool_limits(limits=1):
        return HistGradientBoostingRegressor(random_state=0).fit(features, target)


def mae(prediction: np.ndarray | pd.Series, target: pd.Series) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(prediction) - target.to_numpy())))


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_same_seed_and_config_write_byte_identical_files(tmp_path: Path, file_format: str) -> None:
    first = run(tmp_path, "first", format=file_format, chunk_rows=1_500)
    second = run(tmp_path, "second", format=file_format, chunk_rows=1_500)
    assert first.trips_path.read_bytes() == second.trips_path.read_bytes()
    assert first.weather_path.read_bytes() == second.weather_path.read_bytes()
    assert first.dirt == second.dirt


def test_different_seeds_write_different_data(tmp_path: Path) -> None:
    first = read(run(tmp_path, "seed7", seed=7).trips_path)
    second = read(run(tmp_path, "seed8", seed=8).trips_path)
    assert not first["pickup_minutes"].equals(second["pickup_minutes"])
    assert not first["request_time"].equals(second["request_time"])


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_outputs_have_the_documented_columns_and_types(tmp_path: Path, file_format: str) -> None:
    result = run(tmp_path, format=file_format, dirt=0)
    trips, weather = read(result.trips_path), read(result.weather_path)

    assert result.trips_path.name == f"trips.{file_format}"
    assert result.weather_path.name == f"weather.{file_format}"
    assert list(trips.columns) == TRIPS_COLUMNS
    assert list(weather.columns) == WEATHER_COLUMNS
    for column in ("trip_id", "request_time", "zone", "speed_unit"):
        assert trips[column].map(type).eq(str).all(), column
    for column in FLOAT_COLUMNS:
        assert trips[column].dtype == np.float64, column
    assert trips["incidents"].dtype == np.int64
    assert weather["time"].map(type).eq(str).all()
    assert weather["temperature_c"].dtype == weather["precipitation_mm"].dtype == np.float64
    assert set(weather["weather"]) <= set(WEATHER_KINDS)


@pytest.mark.parametrize(
    ("rows", "chunk_rows"),
    [(1_000, 250_000), (10_007, 3_000), (500, 7)],
    ids=["one-chunk", "uneven-chunks", "tiny-chunks"],
)
def test_rows_are_written_in_request_time_order_within_the_period(
    tmp_path: Path, rows: int, chunk_rows: int
) -> None:
    config = SimulationConfig(rows=rows, chunk_rows=chunk_rows, days=7)
    result = simulate(config, tmp_path)
    time = request_times(read(result.trips_path))

    assert result.trip_rows == rows == len(time)
    assert time.is_monotonic_increasing
    start = pd.Timestamp(config.start)
    assert time.min() >= start
    assert time.max() < start + timedelta(days=config.days)


def test_demand_peaks_at_commute_hours_and_is_quiet_at_night(tmp_path: Path) -> None:
    trips = read(run(tmp_path, rows=20_000, dirt=0).trips_path)
    time = request_times(trips)
    per_hour = time[time.dt.weekday < 5].dt.hour.value_counts()
    assert per_hour[8] > 3 * per_hour[3]
    assert per_hour[18] > 3 * per_hour[3]
    assert per_hour[8] > per_hour[11]


def test_clean_run_stays_in_physical_ranges(tmp_path: Path) -> None:
    result = run(tmp_path, dirt=0)
    trips, weather = read(result.trips_path), read(result.weather_path)

    assert trips["customer_lat"].between(52.45, 52.60).all()
    assert trips["driver_lat"].between(52.45, 52.60).all()
    assert trips["customer_lon"].between(13.25, 13.50).all()
    assert trips["driver_lon"].between(13.25, 13.50).all()
    assert set(trips["zone"]) == {f"Z{i:02d}" for i in range(12)}
    assert (trips["distance_km"] > 0).all()
    assert trips["driver_speed"].between(5, 80).all()
    assert trips["congestion"].between(0, 1).all()
    assert (trips["incidents"] >= 0).all()
    assert (trips["pickup_minutes"] > 0).all()
    assert (trips["speed_unit"] == "km/h").all()
    assert pd.to_datetime(trips["request_time"], format=ISO, errors="coerce").notna().all()
    assert not trips.isna().any().any()
    assert not trips.duplicated().any()
    assert asdict(result.dirt) == asdict(type(result.dirt)())
    assert len(weather) == result.weather_rows == 28 * 24


def test_dirty_run_reports_each_kind_of_dirt_it_wrote(tmp_path: Path) -> None:
    result = run(tmp_path, rows=20_000)
    trips, weather = read(result.trips_path), read(result.weather_path)
    counts = result.dirt
    speed_kmh = trips["driver_speed"].where(
        trips["speed_unit"] == "km/h", trips["driver_speed"] * 1.609344
    )
    day_first = pd.to_datetime(trips["request_time"], format=DAY_FIRST, errors="coerce")

    assert counts.missing == {c: n for c, n in trips.isna().sum().items() if n}
    for column in ("zone", "distance_km", "driver_speed", "congestion", "incidents"):
        assert 0.005 < trips[column].isna().mean() < 0.06, column
    assert 0 < counts.negative_distance == (trips["distance_km"] < 0).sum()
    assert 0 < counts.impossible_speed == (speed_kmh >= 400).sum()
    assert 0 < counts.congestion_above_one == (trips["congestion"] > 1).sum()
    assert 0 < counts.duplicates == trips.duplicated().sum() == trips["trip_id"].duplicated().sum()
    assert 0 < counts.mph_speeds == (trips["speed_unit"] == "mph").sum()
    assert 0 < counts.day_first_timestamps == day_first.notna().sum()
    assert 0 < counts.missing_weather_hours == 28 * 24 - len(weather)


def test_dirt_only_touches_a_few_percent_of_the_clean_values(tmp_path: Path) -> None:
    clean = read(run(tmp_path, "clean", dirt=0).trips_path).set_index("trip_id")
    dirty = read(run(tmp_path, "dirty").trips_path).drop_duplicates().set_index("trip_id")
    same = clean.loc[dirty.index, "pickup_minutes"] == dirty["pickup_minutes"]
    assert 0.97 < same.mean() < 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rows", 0),
        ("seed", -1),
        ("days", 0),
        ("chunk_rows", 0),
        ("dirt", -0.1),
        ("format", "json"),
        ("closure_day", 28),
        ("season_change_day", -1),
        ("closure_zones", ("Z99",)),
    ],
)
def test_config_rejects_impossible_settings_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**{field: value})  # type: ignore[arg-type]


def test_closure_lengthens_pickups_only_in_closure_zones_after_closure_day(
    tmp_path: Path,
) -> None:
    config = {"rows": 20_000, "dirt": 0}
    closed = read(run(tmp_path, "closed", closure_day=14, **config).trips_path)
    open_ = read(run(tmp_path, "open", **config).trips_path)
    after = request_times(closed) >= pd.Timestamp("2026-03-16")
    in_zones = closed["zone"].isin(SimulationConfig().closure_zones)

    def ratio(mask: pd.Series) -> float:
        return closed.loc[mask, "pickup_minutes"].mean() / open_.loc[mask, "pickup_minutes"].mean()

    assert ratio(after & in_zones) > 1.4
    assert ratio(after & ~in_zones) == pytest.approx(1.0, abs=0.01)
    assert ratio(~after & in_zones) == pytest.approx(1.0, abs=0.01)


def test_season_change_makes_weather_colder_and_wetter(tmp_path: Path) -> None:
    changed = read(run(tmp_path, "changed", rows=1_000, dirt=0, season_change_day=14).weather_path)
    steady = read(run(tmp_path, "steady", rows=1_000, dirt=0).weather_path)
    after = pd.to_datetime(changed["time"], format=ISO) >= pd.Timestamp("2026-03-16")

    pd.testing.assert_frame_equal(changed[~after], steady[~after])
    cooling = steady.loc[after, "temperature_c"].mean() - changed.loc[after, "temperature_c"].mean()
    assert cooling > 4
    bad_share = (changed.loc[after, "weather"] != "clear").mean()
    assert bad_share > (steady.loc[after, "weather"] != "clear").mean() + 0.15
    wetter = (
        changed.loc[after, "precipitation_mm"].mean() - steady.loc[after, "precipitation_mm"].mean()
    )
    assert wetter > 0


def test_memory_is_bounded_by_the_chunk_size(tmp_path: Path) -> None:
    def peak_bytes(chunk_rows: int) -> int:
        tracemalloc.start()
        try:
            run(tmp_path, f"chunk{chunk_rows}", rows=300_000, chunk_rows=chunk_rows)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    chunked = peak_bytes(50_000)
    all_rows_at_once = peak_bytes(300_000)
    assert chunked < 0.35 * all_rows_at_once


def test_parquet_and_csv_hold_the_same_data(tmp_path: Path) -> None:
    parquet = run(tmp_path, "parquet", format="parquet")
    csv = run(tmp_path, "csv", format="csv")
    pd.testing.assert_frame_equal(nulls_as_nan(read(parquet.trips_path)), read(csv.trips_path))
    pd.testing.assert_frame_equal(read(parquet.weather_path), read(csv.weather_path))


def test_model_with_all_features_beats_the_distance_over_speed_baseline(tmp_path: Path) -> None:
    trips = with_features(run(tmp_path, rows=20_000, dirt=0))
    train, test = trips.iloc[:15_000], trips.iloc[15_000:]  # rows are in time order
    model = fit_model(train[MODEL_FEATURES], train["pickup_minutes"])
    baseline = test["distance_km"] / test["driver_speed"] * 60

    model_mae = mae(model.predict(test[MODEL_FEATURES]), test["pickup_minutes"])
    assert model_mae <= 0.75 * mae(baseline, test["pickup_minutes"])


def test_model_trained_before_closure_errs_more_in_closure_zones_after(tmp_path: Path) -> None:
    trips = with_features(run(tmp_path, rows=20_000, dirt=0, closure_day=14))
    after = trips["hour_start"] >= pd.Timestamp("2026-03-16")
    in_zones = trips["zone"].isin(SimulationConfig().closure_zones)
    model = fit_model(trips.loc[~after, MODEL_FEATURES], trips.loc[~after, "pickup_minutes"])

    def error(mask: pd.Series) -> float:
        rows = trips.loc[mask]
        return mae(model.predict(rows[MODEL_FEATURES]), rows["pickup_minutes"])

    assert error(after & in_zones) > 1.5 * error(after & ~in_zones)
