"""The hourly weather of the period: temperature, precipitation and kind, with seasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from flywheel_mlops.simulator.timeline import HOURS_PER_DAY, NIGHT_HOURS

#: Weather kinds in code order; `HourlyWeather.kind` holds indexes into this tuple.
WEATHER_KINDS = ("clear", "rain", "snow", "fog")
CLEAR, RAIN, SNOW, FOG = range(len(WEATHER_KINDS))

#: How much colder the weather gets after the season change.
SEASON_COOLING_C = 7.0
#: Wetness above which it precipitates: ~16% of hours normally, ~36% after the season change.
WET_THRESHOLD = 1.0
WET_THRESHOLD_AFTER_CHANGE = 0.35
#: Hours of the night and early morning when still, humid air turns into fog.
FOG_HOURS = frozenset(NIGHT_HOURS | {6, 7, 8, 9, 22, 23})


@dataclass(frozen=True)
class HourlyWeather:
    """One value per hour of the period, hour 0 being midnight of the start day."""

    temperature_c: np.ndarray
    """Air temperature in °C (one decimal)."""

    precipitation_mm: np.ndarray
    """Precipitation in mm in the hour (one decimal); 0 unless raining or snowing."""

    kind: np.ndarray
    """Weather kind as an index into `WEATHER_KINDS`."""


def _ar1(innovations: np.ndarray, phi: float) -> np.ndarray:
    """A stationary AR(1) series with unit variance driven by standard normal innovations.

    Weather persists for hours and days; a plain loop is fine because the table is small
    (one value per hour, not per trip).
    """
    out = np.empty_like(innovations)
    scale = np.sqrt(1.0 - phi * phi)
    out[0] = innovations[0]
    for i in range(1, innovations.size):
        out[i] = phi * out[i - 1] + scale * innovations[i]
    return out


def _seasonal_mean_c(start: date, day: np.ndarray) -> np.ndarray:
    """Daily mean temperature of a central European city for each day index."""
    day_of_year = start.timetuple().tm_yday + day
    return 9.8 - 9.5 * np.cos(2 * np.pi * (day_of_year - 20) / 365.25)


def simulate_weather(
    start: date, days: int, season_change_day: int | None, rng: np.random.Generator
) -> HourlyWeather:
    """Hourly weather for `days` days from `start`, colder and wetter from `season_change_day`.

    All random draws are made the same way whether or not the season changes, so two runs that
    differ only in `season_change_day` share their weather up to the change.
    """
    hours = days * HOURS_PER_DAY
    hour = np.arange(hours)
    hour_of_day = hour % HOURS_PER_DAY
    day = hour // HOURS_PER_DAY
    changed = day >= season_change_day if season_change_day is not None else np.zeros(hours, bool)

    # Slow synoptic swings (fronts passing over days) plus the daily cycle peaking mid-afternoon.
    anomaly = 2.5 * _ar1(rng.standard_normal(hours), 0.985)
    diurnal = 3.5 * np.cos(2 * np.pi * (hour_of_day - 15) / HOURS_PER_DAY)
    temperature = _seasonal_mean_c(start, day) + diurnal + anomaly - SEASON_COOLING_C * changed

    wetness = _ar1(rng.standard_normal(hours), 0.93)
    threshold = np.where(changed, WET_THRESHOLD_AFTER_CHANGE, WET_THRESHOLD)
    wet = wetness > threshold
    amount = 0.1 + 1.5 * (wetness - threshold) + rng.exponential(0.3, hours)
    precipitation = np.where(wet, np.round(amount, 1), 0.0)
    temperature = temperature - 1.0 * wet  # rain cools the air

    # Snow or rain is decided near freezing with some slack, as sleet is in real reports.
    snow_line = 0.5 + 0.8 * rng.standard_normal(hours)
    fog_band = np.where(changed, 1.0, 0.6)
    foggy = ~wet & np.isin(hour_of_day, list(FOG_HOURS)) & (wetness > threshold - fog_band)
    kind = np.full(hours, CLEAR, dtype=np.int8)
    kind[wet] = np.where(temperature[wet] < snow_line[wet], SNOW, RAIN)
    kind[foggy] = FOG
    return HourlyWeather(
        temperature_c=np.round(temperature, 1),
        precipitation_mm=precipitation,
        kind=kind,
    )


def weather_speed_factor(weather: HourlyWeather, hour: np.ndarray) -> np.ndarray:
    """How much the weather of each row's hour slows traffic (1 = clear, lower = slower)."""
    kind = weather.kind[hour]
    precipitation = weather.precipitation_mm[hour]
    factor = np.ones(hour.size)
    factor = np.where(kind == RAIN, 0.9 - 0.015 * precipitation, factor)
    factor = np.where(kind == SNOW, 0.72 - 0.02 * precipitation, factor)
    factor = np.where(kind == FOG, 0.82, factor)
    return np.clip(factor, 0.5, 1.0)
