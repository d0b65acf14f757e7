"""Live traffic for the story: each day's trips as the app would send them, and their outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.ingest import ingest


@dataclass(frozen=True)
class Batch:
    """One request's worth of trips and, separately, what their pickups really took."""

    records: list[dict[str, Any]]
    actuals: list[float]


class TrafficReplay:
    """Replays simulated trips day by day; the app validates inputs before it calls the model,
    so records go through the same ingest and clean stages as training data."""

    def __init__(self, spec: DatasetSpec, trips_uri: str, weather_uri: str):
        frame, _ = ingest(spec, trips_uri, weather_uri)
        self.trips, _ = clean(spec, frame)
        self.spec = spec

    def days(self, first: date, last: date) -> Iterator[date]:
        """Every day from `first` to `last` inclusive."""
        day = first
        while day <= last:
            yield day
            day += timedelta(days=1)

    def batches(self, day: date, size: int = 50) -> Iterator[Batch]:
        """That day's trips in request order, `size` to a request."""
        assert self.spec.timestamp, "the story replays time-stamped trips"
        stamps = self.trips[self.spec.timestamp]
        start = pd.Timestamp(day)
        rows = self.trips[(stamps >= start) & (stamps < start + pd.Timedelta(days=1))]
        columns, stamp = self.spec.feature_columns, self.spec.timestamp
        for offset in range(0, len(rows), size):
            part = rows.iloc[offset : offset + size]
            records: list[dict[str, Any]] = [
                {str(k): v for k, v in r.items()} for r in part[columns].to_dict(orient="records")
            ]
            for record in records:
                record[stamp] = record[stamp].isoformat()
            yield Batch(records, part[self.spec.target].tolist())
