"""Clean trip requests and their target: the minutes until the driver picks the customer up."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from flywheel_mlops.simulator.city import CityGrid, haversine_km, offset_points
from flywheel_mlops.simulator.config import SimulationConfig
from flywheel_mlops.simulator.timeline import (
    HOURS_PER_DAY,
    NIGHT_HOURS,
    RUSH_HOURS,
    bump,
    is_weekend,
    weekday_of_day,
)
from flywheel_mlops.simulator.weather import FOG, RAIN, SNOW, HourlyWeather, weather_speed_factor

#: Hidden effect of the highway closure on a route through the closed zones: drivers take a
#: longer way round and crawl through the diverted traffic. No column shows it directly, which is
#: what makes a model trained before the closure wrong afterwards.
CLOSURE_HIDDEN_DETOUR = 1.22
CLOSURE_HIDDEN_SLOWDOWN = 0.86
#: The visible part of the closure: more congestion and incidents in the closed zones.
CLOSURE_CONGESTION = 0.15
CLOSURE_INCIDENT_RATE = 0.7


@dataclass(frozen=True)
class TripBatch:
    """A chunk of trip rows as column arrays, before they are turned into strings and files."""

    trip_no: np.ndarray
    """Global trip number, the source of `trip_id`."""

    request_ts: np.ndarray
    """Request time in seconds since 1970-01-01 (naive local time)."""

    day_first: np.ndarray
    """True where `request_time` is written as `%d/%m/%Y %H:%M:%S` instead of ISO."""

    zone: np.ndarray
    """Zone index of the customer; -1 where missing."""

    customer_lat: np.ndarray
    """Customer latitude in degrees."""

    customer_lon: np.ndarray
    """Customer longitude in degrees."""

    driver_lat: np.ndarray
    """Latitude of the assigned driver when the trip was requested."""

    driver_lon: np.ndarray
    """Longitude of the assigned driver when the trip was requested."""

    distance_km: np.ndarray
    """Road distance of the planned route driver -> customer."""

    driver_speed: np.ndarray
    """Driver's recent average speed, in mph where `speed_mph` else km/h."""

    speed_mph: np.ndarray
    """True where `driver_speed` is reported in mph."""

    congestion: np.ndarray
    """Congestion index on the route, in [0, 1] when clean."""

    incidents: np.ndarray
    """Road incidents on the route."""

    incidents_missing: np.ndarray
    """True where `incidents` is missing (an int column cannot hold NaN)."""

    pickup_minutes: np.ndarray
    """The target: actual minutes from request to pickup."""

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.trip_no.size)

    def take(self, index: np.ndarray) -> TripBatch:
        """The rows at `index`, in that order, across every column."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _zone_cdf(city: CityGrid) -> np.ndarray:
    """Cumulative zone probabilities per hour of day, shape (24, zones).

    Mornings start in the residential outskirts, evenings and nights in the centre.
    """
    centrality = city.centrality()
    central = 0.5 + centrality
    outskirts = 1.5 - centrality
    hour = np.arange(HOURS_PER_DAY, dtype=float)
    mix = np.clip(
        0.5
        - 0.35 * bump(hour, 8.0, 1.8)
        + 0.3 * bump(hour, 19.0, 2.5)
        + 0.3 * bump(hour, 0.5, 2.0),
        0.0,
        1.0,
    )
    weights = mix[:, None] * central + (1 - mix[:, None]) * outskirts
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


def _sample_zones(hour_of_day: np.ndarray, city: CityGrid, rng: np.random.Generator) -> np.ndarray:
    """One customer zone per row, drawn from that hour's zone mix."""
    cdf = _zone_cdf(city)
    # Shifting hour h's CDF by h lays all 24 CDFs end to end in one increasing array, so one
    # searchsorted samples every row without an (n, zones) table per chunk.
    stacked = (cdf + np.arange(HOURS_PER_DAY)[:, None]).ravel()
    position = np.searchsorted(stacked, hour_of_day + rng.random(hour_of_day.size), side="right")
    return (position - hour_of_day * city.size).astype(np.int16)


def _base_congestion(hour_of_day: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Typical congestion by hour: commute peaks on workdays, a flat afternoon on weekends."""
    workday = 0.08 + 0.55 * bump(hour_of_day, 8.3, 1.4) + 0.6 * bump(hour_of_day, 17.5, 1.8)
    workday += 0.22 * bump(hour_of_day, 13.0, 3.0)
    weekend_level = 0.06 + 0.3 * bump(hour_of_day, 14.0, 4.0) + 0.15 * bump(hour_of_day, 21.0, 2.0)
    return np.where(weekend, weekend_level, workday)


def _zone_detour(zone: np.ndarray) -> np.ndarray:
    """A fixed road-network detour per zone (river, rail lines, one-way streets), 1.22..1.38."""
    return 1.22 + 0.16 * ((zone.astype(np.int64) * 5) % 7) / 6


def _poisson(u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Poisson counts by inverting the CDF at uniforms `u`.

    `Generator.poisson` consumes a rate-dependent number of draws, which would let a change in
    one zone's rate reshuffle every later trip; one uniform per row does not.
    """
    count = np.zeros(u.size, dtype=np.int64)
    term = np.exp(-rate)
    cdf = term.copy()
    k = 0
    # Rates stay below ~5, so the CDF passes every u within a few dozen terms.
    while k < 100 and (above := u > cdf).any():
        k += 1
        count += above
        term = term * rate / k
        cdf = cdf + term
    return count


def simulate_trips(
    first_trip_no: int,
    hour: np.ndarray,
    seconds: np.ndarray,
    epoch_start: int,
    config: SimulationConfig,
    city: CityGrid,
    weather: HourlyWeather,
    rng: np.random.Generator,
) -> TripBatch:
    """Clean trips requested at `seconds` (of the period) in hour index `hour`.

    Every draw takes a fixed amount of randomness whatever the rates, so runs that differ only
    in the closure share all other values and the closure's effect shows trip by trip.
    """
    n = hour.size
    hour_of_day = hour % HOURS_PER_DAY
    day = hour // HOURS_PER_DAY
    weekday = weekday_of_day(config.start, day)
    weekend = is_weekend(weekday)
    rush = np.isin(hour_of_day, list(RUSH_HOURS)) & ~weekend
    night = np.isin(hour_of_day, list(NIGHT_HOURS))

    zone = _sample_zones(hour_of_day, city, rng)
    centrality = city.centrality()[zone]
    customer_lat, customer_lon = city.sample_points(zone, rng)

    closure_idx = [city.names.index(z) for z in config.closure_zones]
    closed = (
        np.isin(zone, closure_idx) & (day >= config.closure_day)
        if config.closure_day is not None
        else np.zeros(n, dtype=bool)
    )

    # Nearest free driver: farther at night (few drivers) and in rush hour (all busy), and in
    # the outskirts where fewer drivers wait.
    supply = np.where(night, 1.7, np.where(rush, 1.25, 1.0))
    median_km = 0.9 * supply * (1.0 + 0.4 * (1.0 - centrality))
    straight_km = np.clip(median_km * rng.lognormal(0.0, 0.5, n), 0.05, 8.0)
    bearing = rng.uniform(0.0, 2 * np.pi, n)
    driver_lat, driver_lon = offset_points(customer_lat, customer_lon, straight_km, bearing)
    straight_km = haversine_km(driver_lat, driver_lon, customer_lat, customer_lon)
    detour = np.clip(_zone_detour(zone) + 0.06 * rng.standard_normal(n), 1.15, 1.6)
    distance_km = np.maximum(straight_km * detour, 0.05)

    kind = weather.kind[hour]
    precipitation = weather.precipitation_mm[hour]
    weather_congestion = np.select(
        [kind == RAIN, kind == SNOW, kind == FOG], [0.06 + 0.02 * precipitation, 0.15, 0.05], 0.0
    )
    congestion = (
        _base_congestion(hour_of_day, weekend)
        + 0.12 * (centrality - 0.5)
        + weather_congestion
        + CLOSURE_CONGESTION * closed
        + 0.08 * rng.standard_normal(n)
    )
    congestion = np.clip(congestion, 0.0, 1.0)

    # The driver's recent average speed reflects the traffic they came through, not the route
    # ahead: it is a noisy, partial view of congestion and weather.
    slow_weather = weather_speed_factor(weather, hour)
    recent_congestion = np.clip(congestion + 0.12 * rng.standard_normal(n), 0.0, 1.0)
    personal_kmh = np.clip(rng.normal(30.0, 4.0, n), 15.0, 45.0)
    driver_kmh = personal_kmh * (1 - 0.45 * recent_congestion) * np.sqrt(slow_weather)
    driver_kmh = np.clip(driver_kmh * rng.lognormal(0.0, 0.08, n), 6.0, 70.0)

    # Overhead: accepting the trip, finding the customer; sometimes the customer is not ready.
    overhead = 0.6 + rng.gamma(2.5, 0.5, n)
    late_customer = (rng.random(n) < 0.05) * rng.exponential(2.5, n)
    travel_noise = rng.lognormal(0.0, 0.2, n)

    weather_incidents = np.select([kind == RAIN, kind == SNOW, kind == FOG], [0.15, 0.3, 0.1], 0.0)
    incident_rate = (0.04 + 0.3 * congestion + weather_incidents) * (0.6 + 0.25 * distance_km)
    incidents = _poisson(rng.random(n), incident_rate + CLOSURE_INCIDENT_RATE * closed)

    # Speed on the route ahead: slower than the driver's recent average in congestion, around
    # incidents, in bad weather and at rush hour (lights, turns); faster on empty night roads.
    hour_factor = np.where(rush, 0.9, np.where(night, 1.12, 1.0))
    route_kmh = (
        driver_kmh
        * (1 - 0.25 * congestion)
        / (1 + 0.12 * incidents)
        * slow_weather**0.6
        * hour_factor
        * np.where(closed, CLOSURE_HIDDEN_SLOWDOWN, 1.0)
    )
    route_km = distance_km * np.where(closed, CLOSURE_HIDDEN_DETOUR, 1.0)
    travel_minutes = route_km / route_kmh * 60.0 * travel_noise
    pickup_minutes = np.maximum(overhead + travel_minutes + late_customer, 0.5)

    return TripBatch(
        trip_no=np.arange(first_trip_no, first_trip_no + n, dtype=np.int64),
        request_ts=epoch_start + seconds,
        day_first=np.zeros(n, dtype=bool),
        zone=zone,
        customer_lat=np.round(customer_lat, 6),
        customer_lon=np.round(customer_lon, 6),
        driver_lat=np.round(driver_lat, 6),
        driver_lon=np.round(driver_lon, 6),
        distance_km=np.round(distance_km, 3),
        driver_speed=np.round(driver_kmh, 1),
        speed_mph=np.zeros(n, dtype=bool),
        congestion=np.round(congestion, 3),
        incidents=incidents.astype(np.int64),
        incidents_missing=np.zeros(n, dtype=bool),
        pickup_minutes=np.round(pickup_minutes, 2),
    )
