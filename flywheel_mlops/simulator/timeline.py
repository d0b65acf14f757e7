"""Hour-of-day and weekday rhythms shared by demand, traffic and weather."""

from __future__ import annotations

from datetime import date

import numpy as np

HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3600

#: Morning and evening commute hours, when roads are slowest.
RUSH_HOURS = frozenset({7, 8, 9, 16, 17, 18, 19})
#: Hours with few drivers on the road and empty streets.
NIGHT_HOURS = frozenset({0, 1, 2, 3, 4, 5})


def bump(hour: np.ndarray, center: float, width: float) -> np.ndarray:
    """A Gaussian bump over the hour of day that wraps around midnight."""
    delta = (hour - center + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (delta / width) ** 2)


def weekday_of_day(start: date, day: np.ndarray) -> np.ndarray:
    """Weekday (0 = Monday) of each day index counted from `start`."""
    return (start.weekday() + day) % 7


def is_weekend(weekday: np.ndarray) -> np.ndarray:
    """True on Saturdays and Sundays."""
    return weekday >= 5


def start_epoch_seconds(start: date) -> int:
    """Seconds since 1970-01-01 of midnight at the start of the period (naive local time)."""
    return int(np.datetime64(start.isoformat(), "s").astype(np.int64))
