"""Dirt the way real trip logs have it: gaps, impossible values, duplicates, mixed formats."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flywheel_mlops.simulator.config import DirtCounts
from flywheel_mlops.simulator.trips import TripBatch

#: Share of rows missing a value, per group of columns that fail together (at dirt = 1).
#: Coordinates come from one GPS fix, so latitude and longitude go missing as a pair.
MISSING_RATES: dict[tuple[str, ...], float] = {
    ("zone",): 0.01,
    ("customer_lat", "customer_lon"): 0.01,
    ("driver_lat", "driver_lon"): 0.015,
    ("distance_km",): 0.03,
    ("driver_speed",): 0.025,
    ("congestion",): 0.03,
    ("incidents",): 0.02,
    ("pickup_minutes",): 0.01,
}
NEGATIVE_DISTANCE_RATE = 0.005
IMPOSSIBLE_SPEED_RATE = 0.003
IMPOSSIBLE_SPEED_KMH = 400.0
CONGESTION_ABOVE_ONE_RATE = 0.004
DUPLICATE_RATE = 0.006
#: Share of rows reporting speed in mph, and share with a day-first timestamp.
MPH_SHARE = 0.15
DAY_FIRST_SHARE = 0.3
KM_PER_MILE = 1.609344
#: Share of hours the weather feed fails to deliver.
MISSING_WEATHER_HOUR_RATE = 0.01
#: Float columns of a trip batch; missing values in them are NaN until written as nulls.
_FLOAT_COLUMNS = (
    "customer_lat",
    "customer_lon",
    "driver_lat",
    "driver_lon",
    "distance_km",
    "driver_speed",
    "congestion",
    "pickup_minutes",
)


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Rows hit with probability `rate`; always draws n numbers so later draws do not shift."""
    return rng.random(n) < min(rate, 1.0)


def _duplicate_sources(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Row index to copy into each row: itself, or the last original before it (a re-log).

    Indexes never decrease, so the request times stay sorted.
    """
    duplicate = _pick(rng, n, rate)
    duplicate[:1] = False
    return np.maximum.accumulate(np.where(duplicate, 0, np.arange(n)))


def add_dirt(batch: TripBatch, dirt: float, rng: np.random.Generator) -> TripBatch:
    """The batch with every kind of dirt injected at `dirt` times the realistic rates.

    Every kind draws its rows from the same stream in a fixed order, so a seed gives the same
    dirt whatever the values are.
    """
    n = len(batch)
    values = {name: getattr(batch, name).copy() for name in _FLOAT_COLUMNS}

    # Mixed formats: some app versions report speed in mph, some log shippers write the
    # timestamp day first; the two are independent of each other.
    speed_mph = _pick(rng, n, MPH_SHARE * dirt)
    day_first = _pick(rng, n, DAY_FIRST_SHARE * dirt)
    speed = values["driver_speed"]
    values["driver_speed"] = np.where(speed_mph, np.round(speed / KM_PER_MILE, 1), speed)

    # Impossible values come from sign bugs, GPS jumps and a sensor reporting on another scale.
    negative = _pick(rng, n, NEGATIVE_DISTANCE_RATE * dirt)
    values["distance_km"] = np.where(negative, -values["distance_km"], values["distance_km"])
    too_fast = _pick(rng, n, IMPOSSIBLE_SPEED_RATE * dirt)
    values["driver_speed"] = np.where(too_fast, IMPOSSIBLE_SPEED_KMH, values["driver_speed"])
    speed_mph &= ~too_fast
    above_one = _pick(rng, n, CONGESTION_ABOVE_ONE_RATE * dirt)
    jammed = np.round(1.0 + rng.uniform(0.05, 1.5, n), 3)
    values["congestion"] = np.where(above_one, jammed, values["congestion"])

    zone = batch.zone.copy()
    incidents_missing = batch.incidents_missing.copy()
    for group, rate in MISSING_RATES.items():
        missing = _pick(rng, n, rate * dirt)
        for name in group:
            if name == "zone":
                zone[missing] = -1
            elif name == "incidents":
                incidents_missing |= missing
            else:
                values[name] = np.where(missing, np.nan, values[name])

    dirty = replace(
        batch,
        zone=zone,
        speed_mph=speed_mph,
        day_first=day_first,
        incidents_missing=incidents_missing,
        **values,
    )
    return dirty.take(_duplicate_sources(rng, n, DUPLICATE_RATE * dirt))


def count_dirt(batch: TripBatch) -> DirtCounts:
    """Count each kind of dirt in a batch as it will be written."""
    missing = {name: int(np.isnan(getattr(batch, name)).sum()) for name in _FLOAT_COLUMNS}
    missing["zone"] = int((batch.zone < 0).sum())
    missing["incidents"] = int(batch.incidents_missing.sum())
    repeated = batch.trip_no[1:] == batch.trip_no[:-1]
    speed_kmh = np.where(batch.speed_mph, batch.driver_speed * KM_PER_MILE, batch.driver_speed)
    return DirtCounts(
        missing={k: v for k, v in missing.items() if v},
        negative_distance=int((batch.distance_km < 0).sum()),
        impossible_speed=int((speed_kmh >= IMPOSSIBLE_SPEED_KMH).sum()),
        congestion_above_one=int((batch.congestion > 1).sum()),
        duplicates=int(repeated.sum()),
        mph_speeds=int(batch.speed_mph.sum()),
        day_first_timestamps=int(batch.day_first.sum()),
    )


def missing_weather_hours(rng: np.random.Generator, hours: int, dirt: float) -> np.ndarray:
    """Mask of hours the weather feed drops."""
    return _pick(rng, hours, MISSING_WEATHER_HOUR_RATE * dirt)
