"""Turning column arrays into the raw-data tables and appending them to parquet or CSV files."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from flywheel_mlops.simulator.config import OutputFormat
from flywheel_mlops.simulator.trips import TripBatch
from flywheel_mlops.simulator.weather import WEATHER_KINDS, HourlyWeather

#: The trips file's columns, as docs/architecture.md ("Raw ride-hailing data") lists them.
TRIPS_SCHEMA = pa.schema(
    [
        ("trip_id", pa.string()),
        ("request_time", pa.string()),
        ("zone", pa.string()),
        ("customer_lat", pa.float64()),
        ("customer_lon", pa.float64()),
        ("driver_lat", pa.float64()),
        ("driver_lon", pa.float64()),
        ("distance_km", pa.float64()),
        ("driver_speed", pa.float64()),
        ("speed_unit", pa.string()),
        ("congestion", pa.float64()),
        ("incidents", pa.int64()),
        ("pickup_minutes", pa.float64()),
    ]
)

#: The weather file's columns.
WEATHER_SCHEMA = pa.schema(
    [
        ("time", pa.string()),
        ("temperature_c", pa.float64()),
        ("precipitation_mm", pa.float64()),
        ("weather", pa.string()),
    ]
)

SPEED_UNITS = pa.array(["km/h", "mph"])


def _format_times(epoch_seconds: np.ndarray, day_first: np.ndarray | None = None) -> pa.Array:
    """Timestamps as strings: ISO, or `%d/%m/%Y %H:%M:%S` where `day_first` is set.

    Built by slicing Arrow's own `YYYY-MM-DD HH:MM:SS` cast, which is several times faster than
    `strftime` and keeps a million rows within a second.
    """
    plain = pa.array(epoch_seconds.astype("datetime64[s]")).cast(pa.string())
    iso = pc.utf8_replace_slice(plain, 10, 11, "T")
    if day_first is None or not day_first.any():
        return iso
    picked = plain.filter(pa.array(day_first))

    def part(begin: int, end: int) -> pa.Array:
        return pc.utf8_slice_codeunits(picked, begin, end)

    date = pc.binary_join_element_wise(part(8, 10), part(5, 7), part(0, 4), "/")
    return pc.replace_with_mask(
        iso, pa.array(day_first), pc.binary_join_element_wise(date, part(10, 19), "")
    )


def _floats(values: np.ndarray) -> pa.Array:
    """A float column with NaN written as null, so both formats show an empty entry."""
    return pa.array(values, type=pa.float64(), from_pandas=True)


def trips_table(batch: TripBatch, zone_names: list[str]) -> pa.Table:
    """The trips table of a batch in `TRIPS_SCHEMA`."""
    trip_id = pc.utf8_replace_slice(
        pc.utf8_lpad(pa.array(batch.trip_no).cast(pa.string()), 9, "0"), 0, 0, "T"
    )
    zone_index = pa.array(batch.zone.astype(np.int32), mask=batch.zone < 0)
    columns = {
        "trip_id": trip_id,
        "request_time": _format_times(batch.request_ts, batch.day_first),
        "zone": pa.array(zone_names).take(zone_index),
        "customer_lat": _floats(batch.customer_lat),
        "customer_lon": _floats(batch.customer_lon),
        "driver_lat": _floats(batch.driver_lat),
        "driver_lon": _floats(batch.driver_lon),
        "distance_km": _floats(batch.distance_km),
        "driver_speed": _floats(batch.driver_speed),
        "speed_unit": SPEED_UNITS.take(pa.array(batch.speed_mph.astype(np.int8))),
        "congestion": _floats(batch.congestion),
        "incidents": pa.array(batch.incidents, type=pa.int64(), mask=batch.incidents_missing),
        "pickup_minutes": _floats(batch.pickup_minutes),
    }
    return pa.table(columns, schema=TRIPS_SCHEMA)


def weather_table(weather: HourlyWeather, epoch_start: int, keep: np.ndarray) -> pa.Table:
    """The weather table in `WEATHER_SCHEMA`, one row per hour where `keep` is set."""
    hours = np.flatnonzero(keep)
    columns = {
        "time": _format_times(epoch_start + hours * 3600),
        "temperature_c": _floats(weather.temperature_c[hours]),
        "precipitation_mm": _floats(weather.precipitation_mm[hours]),
        "weather": pa.array(list(WEATHER_KINDS)).take(pa.array(weather.kind[hours])),
    }
    return pa.table(columns, schema=WEATHER_SCHEMA)


class TableWriter:
    """Appends tables of one schema to a parquet or CSV file, chunk by chunk.

    Writes go to a `.partial` file renamed into place on a clean exit, so a reader never sees
    half a dataset under the final name.
    """

    def __init__(self, path: Path, schema: pa.Schema, file_format: OutputFormat) -> None:
        """Prepare to write `path` in `file_format`; nothing is opened until entered."""
        self.path = path
        self.schema = schema
        self.file_format = file_format
        self.rows = 0
        self._partial = path.with_name(path.name + ".partial")
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None

    def __enter__(self) -> TableWriter:
        """Open the partial file."""
        if self.file_format == "parquet":
            self._writer = pq.ParquetWriter(self._partial, self.schema, compression="zstd")
        else:
            self._writer = pa_csv.CSVWriter(self._partial, self.schema)
        return self

    def write(self, table: pa.Table) -> None:
        """Append the rows of `table`."""
        if self._writer is None:
            raise RuntimeError(f"TableWriter for {self.path} must be entered before writing")
        self._writer.write_table(table)
        self.rows += table.num_rows

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the file; publish it under its final name only if nothing went wrong."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if exc_type is None:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)
