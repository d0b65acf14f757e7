"""Settings for one simulator run and the summary it hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Literal

OutputFormat = Literal["parquet", "csv"]

#: Above this the per-kind dirt rates stop looking like logs and start looking like noise.
MAX_DIRT = 3.0


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: size, period, city, randomness, dirt and the two drift events."""

    rows: int = 20_000
    """Rows written to the trips file (duplicate records included)."""

    days: int = 28
    """Length of the simulated period in days, starting at midnight of `start`."""

    start: date = date(2026, 3, 2)
    """First day of the period (2026-03-02 is a Monday)."""

    seed: int = 7
    """Seed of the whole run: the same seed and config give byte-identical files."""

    zones: int = 12
    """Number of zones, laid out as a near-square grid (12 -> 4 columns x 3 rows) over the city."""

    dirt: float = 1.0
    """Scale of the dirt rates: 1.0 = realistic (a few % missing per column), 0 = clean data."""

    closure_day: int | None = None
    """Day index from which a highway closure slows pickups in `closure_zones`; None = never."""

    closure_zones: tuple[str, ...] = ("Z05", "Z06", "Z09")
    """Zones along the closed highway."""

    season_change_day: int | None = None
    """Day index from which the weather turns colder and wetter; None = never."""

    format: OutputFormat = "parquet"
    """File format of both outputs."""

    chunk_rows: int = 250_000
    """Rows generated and written at a time; bounds memory independently of `rows`."""

    def __post_init__(self) -> None:
        """Reject settings that cannot describe a run, naming the field and the value found."""
        if self.rows < 1:
            raise ValueError(f"rows must be >= 1, got {self.rows}")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.zones < 1:
            raise ValueError(f"zones must be >= 1, got {self.zones}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        if not 0.0 <= self.dirt <= MAX_DIRT:
            raise ValueError(f"dirt must be within [0, {MAX_DIRT}], got {self.dirt}")
        if self.format not in ("parquet", "csv"):
            raise ValueError(f"format must be 'parquet' or 'csv', got {self.format!r}")
        for name in ("closure_day", "season_change_day"):
            day = getattr(self, name)
            if day is not None and not 0 <= day < self.days:
                raise ValueError(f"{name} must be within [0, {self.days - 1}] or None, got {day}")
        known = {f"Z{i:02d}" for i in range(self.zones)}
        unknown = sorted(set(self.closure_zones) - known)
        if unknown:
            raise ValueError(
                f"closure_zones must name zones Z00..Z{self.zones - 1:02d}, got unknown {unknown}"
            )


@dataclass(frozen=True)
class DirtCounts:
    """How many entries of each kind of dirt ended up in the written files."""

    missing: Mapping[str, int] = field(default_factory=dict)
    """Missing (null) entries per trips column."""

    negative_distance: int = 0
    """Rows with a negative `distance_km`."""

    impossible_speed: int = 0
    """Rows with a 400 km/h `driver_speed`."""

    congestion_above_one: int = 0
    """Rows with `congestion` > 1."""

    duplicates: int = 0
    """Rows that repeat the previous record (same trip_id and values)."""

    mph_speeds: int = 0
    """Rows whose `driver_speed` is in mph (mixed units)."""

    day_first_timestamps: int = 0
    """Rows whose `request_time` is `%d/%m/%Y %H:%M:%S` instead of ISO (mixed formats)."""

    missing_weather_hours: int = 0
    """Hours absent from the weather feed."""

    def __add__(self, other: DirtCounts) -> DirtCounts:
        """Sum two counts field by field (chunks add up to the run)."""
        missing = dict(self.missing)
        for column, count in other.missing.items():
            missing[column] = missing.get(column, 0) + count
        totals = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "missing"
        }
        return DirtCounts(missing=missing, **totals)


@dataclass(frozen=True)
class SimulationResult:
    """Where the run wrote its files and what is in them."""

    trips_path: Path
    """The trips file, `trips.<format>`."""

    weather_path: Path
    """The hourly weather file, `weather.<format>`."""

    trip_rows: int
    """Rows in the trips file (duplicates included)."""

    weather_rows: int
    """Rows in the weather file (missing hours excluded)."""

    dirt: DirtCounts
    """Counts of each kind of dirt in the files."""
