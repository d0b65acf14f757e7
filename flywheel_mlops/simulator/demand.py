"""When trips are requested: rows per hour and sorted request times, chunk by chunk."""

from __future__ import annotations

from datetime import date

import numpy as np

from flywheel_mlops.simulator.timeline import (
    HOURS_PER_DAY,
    SECONDS_PER_HOUR,
    bump,
    weekday_of_day,
)

#: Relative demand per weekday (Monday first): Friday and Saturday busiest, Sunday quietest.
WEEKDAY_DEMAND = np.array([0.95, 1.0, 1.0, 1.03, 1.15, 1.1, 0.85])


def _hour_profile(weekday: int) -> np.ndarray:
    """Relative demand per hour of day: commute peaks on workdays, late leisure on weekends."""
    hour = np.arange(HOURS_PER_DAY, dtype=float)
    if weekday < 5:
        profile = 0.12 + 1.5 * bump(hour, 8.2, 1.3) + 1.7 * bump(hour, 18.0, 1.9)
        profile += 0.6 * bump(hour, 13.0, 3.0)
    else:
        profile = 0.2 + 1.0 * bump(hour, 13.5, 3.5) + 0.9 * bump(hour, 20.5, 2.5)
    # Friday and Saturday nights out keep demand up past midnight of the next day.
    if weekday in (4, 5):
        profile += 0.7 * bump(hour, 23.5, 1.8)
    if weekday in (5, 6):
        profile += 0.5 * bump(hour, 1.0, 1.5)
    return profile


def hourly_demand(start: date, days: int) -> np.ndarray:
    """Relative demand of every hour in the period (length days * 24), summing to 1."""
    day = np.arange(days)
    weekday = weekday_of_day(start, day)
    profiles = np.stack([_hour_profile(w) for w in range(7)])
    weights = profiles[weekday] * WEEKDAY_DEMAND[weekday][:, None]
    flat = weights.ravel()
    return flat / flat.sum()


def requests_per_hour(rows: int, start: date, days: int, rng: np.random.Generator) -> np.ndarray:
    """Number of trip rows in each hour of the period; sums to `rows`."""
    return rng.multinomial(rows, hourly_demand(start, days))


def chunk_request_times(
    hour_counts: np.ndarray, first: int, stop: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hour index and second-of-period of global rows [first, stop), sorted by time.

    Row g belongs to the hour whose cumulative count covers g. An hour cut between two chunks
    is cut in time too: its first part of rows falls in the matching first part of the hour, so
    every chunk's times sort after the previous chunk's without ever holding the whole hour.
    """
    edges = np.concatenate([[0], np.cumsum(hour_counts)])
    rows = np.arange(first, stop)
    hour = np.searchsorted(edges, rows, side="right") - 1
    position = rows - edges[hour]

    segments, seg_first, seg_size = np.unique(hour, return_index=True, return_counts=True)
    seg_of_row = np.repeat(np.arange(segments.size), seg_size)
    lo = position[seg_first] / hour_counts[segments]
    hi = (position[seg_first] + seg_size) / hour_counts[segments]
    # Sorting segment id + u orders u within each segment while keeping segments contiguous.
    u = np.sort(seg_of_row + rng.random(rows.size)) - seg_of_row
    fraction = lo[seg_of_row] + u * (hi - lo)[seg_of_row]
    # The cap guards against float rounding pushing u to exactly 1 and a row into the next hour.
    second_in_hour = np.minimum(np.floor(fraction * SECONDS_PER_HOUR), SECONDS_PER_HOUR - 1)
    return hour, hour * SECONDS_PER_HOUR + second_in_hour.astype(np.int64)
