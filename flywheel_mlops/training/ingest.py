"""Ingest: read records from a file or object-store URI, unify timestamps, join the side table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from flywheel_mlops.errors import ConfigError, InvalidInputError
from flywheel_mlops.spec import DatasetSpec


@dataclass
class IngestReport:
    """What ingest read and what it could not make sense of."""

    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_in_window: int = 0
    timestamp_formats: dict[str, int] = field(default_factory=dict)
    timestamps_unparsed: int = 0
    side_rows: int = 0
    side_unmatched: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def require_files(uri: str) -> list[fsspec.core.OpenFile]:
    """The files `uri` (a path, a glob or an fsspec URI) names; none is a ConfigError."""
    files = fsspec.open_files(uri, mode="rb")
    if not files:
        raise ConfigError(f"no file matches {uri!r}; expected a .csv or .parquet path or glob")
    return list(files)


def time_bound(text: str, option: str) -> pd.Timestamp:
    """A window bound as naive UTC, the one convention every timestamp is compared in.

    A date (`2013-07-01`), a naive time (read as UTC) and a time with an offset or `Z` (moved
    to UTC) are all accepted, whatever the file format the records come from.
    """
    try:
        bound = pd.Timestamp(text)
    except ValueError as exc:
        raise ConfigError(f"{option} must be an ISO 8601 date or time, got {text!r}") from exc
    if bound.tzinfo is not None:
        bound = bound.tz_convert("UTC").tz_localize(None)
    return bound


def read_table(uri: str) -> tuple[pd.DataFrame, list[str]]:
    """Read one CSV or Parquet file, or every file a glob matches, from a path or fsspec URI."""
    files = require_files(uri)
    frames = []
    for handle in files:
        name = handle.path
        with handle as stream:
            if name.endswith(".parquet"):
                frames.append(pd.read_parquet(stream))
            elif name.endswith((".csv", ".csv.gz")):
                gzip = name.endswith(".gz")
                frames.append(
                    pd.read_csv(stream, compression="gzip" if gzip else None, low_memory=False)
                )
            else:
                raise ConfigError(f"{name} is neither .csv nor .parquet")
    return pd.concat(frames, ignore_index=True), [f.full_name for f in files]


def parse_timestamps(values: pd.Series, formats: list[str]) -> tuple[pd.Series, dict[str, int]]:
    """Parse timestamps written in any of `formats` (tried in order); unparseable become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:  # Parquet keeps zones; compare in UTC
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values, {"datetime": int(values.notna().sum())}
    text = values.astype("string")
    if not formats:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        return parsed.dt.tz_localize(None), {"ISO8601": int(parsed.notna().sum())}
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    counts: dict[str, int] = {}
    for fmt in formats:
        todo = result.isna() & text.notna()
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        counts[fmt] = int(parsed.notna().sum())
        result.loc[todo] = parsed
    return result, counts


def ingest(
    spec: DatasetSpec,
    data_uri: str,
    side_uri: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> tuple[pd.DataFrame, IngestReport]:
    """Read `data_uri`, keep records with `start <= timestamp < end`, join the side table.

    The timestamp column comes out as datetime64 (NaT where no declared format matched, for
    clean to drop and report); side-table columns are added as they are, missing when unmatched.
    """
    frame, files = read_table(data_uri)
    report = IngestReport(files=files, rows_read=len(frame))
    if spec.timestamp:
        if spec.timestamp not in frame.columns:
            raise InvalidInputError(
                f"timestamp column {spec.timestamp!r} is missing from {data_uri}; "
                f"found columns {list(frame.columns)}"
            )
        stamps, report.timestamp_formats = parse_timestamps(
            frame[spec.timestamp], spec.timestamp_formats
        )
        frame[spec.timestamp] = stamps
        report.timestamps_unparsed = int(stamps.isna().sum())
        keep = np.ones(len(frame), dtype=bool)
        if start:
            keep &= (stamps >= time_bound(start, "start")).to_numpy() | stamps.isna().to_numpy()
        if end:
            keep &= (stamps < time_bound(end, "end")).to_numpy() | stamps.isna().to_numpy()
        frame = frame.loc[keep].reset_index(drop=True)
    report.rows_in_window = len(frame)
    if spec.join and side_uri:
        frame, report.side_rows, report.side_unmatched = _join_side(spec, frame, side_uri)
    elif spec.join and not set(spec.join.columns) <= set(frame.columns):
        raise ConfigError(
            f"the spec joins {spec.join.columns} from a side table, but no side table URI was "
            f"given and {data_uri} does not carry those columns"
        )
    return frame, report


def _join_side(
    spec: DatasetSpec, frame: pd.DataFrame, side_uri: str
) -> tuple[pd.DataFrame, int, int]:
    assert spec.join is not None
    assert spec.timestamp is not None
    side, _ = read_table(side_uri)
    missing = [c for c in [spec.join.key, *spec.join.columns] if c not in side.columns]
    if missing:
        raise InvalidInputError(f"side table {side_uri} lacks columns {missing}")
    side_time, _ = parse_timestamps(side[spec.join.key], [])
    side = side.assign(_key=side_time.dt.floor(spec.join.freq))
    side = side.dropna(subset=["_key"]).drop_duplicates("_key", keep="last")
    keyed = frame.assign(_key=frame[spec.timestamp].dt.floor(spec.join.freq))
    joined = keyed.merge(side[["_key", *spec.join.columns]], on="_key", how="left")
    unmatched = int(joined[spec.join.columns[0]].isna().sum())
    return joined.drop(columns="_key"), len(side), unmatched
