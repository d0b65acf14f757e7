"""One simulator run: weather, then trips chunk by chunk, written as they are made."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from flywheel_mlops.simulator.city import CityGrid
from flywheel_mlops.simulator.config import DirtCounts, SimulationConfig, SimulationResult
from flywheel_mlops.simulator.demand import chunk_request_times, requests_per_hour
from flywheel_mlops.simulator.dirt import add_dirt, count_dirt, missing_weather_hours
from flywheel_mlops.simulator.timeline import HOURS_PER_DAY, start_epoch_seconds
from flywheel_mlops.simulator.trips import simulate_trips
from flywheel_mlops.simulator.weather import simulate_weather
from flywheel_mlops.simulator.writer import (
    TRIPS_SCHEMA,
    WEATHER_SCHEMA,
    TableWriter,
    trips_table,
    weather_table,
)


def simulate(config: SimulationConfig, out_dir: str | Path) -> SimulationResult:
    """Write `trips.<format>` and `weather.<format>` for `config` into `out_dir`.

    Memory is bounded by `config.chunk_rows`, not `config.rows`: each chunk covers the next
    stretch of time, is generated from its own seed, written, and dropped. The same seed and
    config give byte-identical files.

    Args:
        config: what to simulate.
        out_dir: folder for the two files; created if missing.

    Returns:
        The file paths, their row counts and the counts of each kind of dirt.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # One independent stream per purpose; SeedSequence children do not depend on how many
    # siblings are spawned, so e.g. the weather is the same whatever `rows` is.
    weather_seed, demand_seed, weather_dirt_seed, chunks_seed = np.random.SeedSequence(
        config.seed
    ).spawn(4)
    city = CityGrid.for_zones(config.zones)
    epoch_start = start_epoch_seconds(config.start)
    weather = simulate_weather(
        config.start, config.days, config.season_change_day, np.random.default_rng(weather_seed)
    )
    hour_counts = requests_per_hour(
        config.rows, config.start, config.days, np.random.default_rng(demand_seed)
    )

    n_chunks = math.ceil(config.rows / config.chunk_rows)
    dirt = DirtCounts()
    trips_path = out / f"trips.{config.format}"
    with TableWriter(trips_path, TRIPS_SCHEMA, config.format) as trips_out:
        for index, chunk_seed in enumerate(chunks_seed.spawn(n_chunks)):
            # Dirt draws from its own stream so that dirty data is the clean data plus dirt.
            trips_rng, dirt_rng = map(np.random.default_rng, chunk_seed.spawn(2))
            first = index * config.chunk_rows
            stop = min(first + config.chunk_rows, config.rows)
            hour, seconds = chunk_request_times(hour_counts, first, stop, trips_rng)
            batch = simulate_trips(
                first, hour, seconds, epoch_start, config, city, weather, trips_rng
            )
            if config.dirt > 0:
                batch = add_dirt(batch, config.dirt, dirt_rng)
            dirt += count_dirt(batch)
            trips_out.write(trips_table(batch, city.names))

    dropped = missing_weather_hours(
        np.random.default_rng(weather_dirt_seed), config.days * HOURS_PER_DAY, config.dirt
    )
    weather_path = out / f"weather.{config.format}"
    with TableWriter(weather_path, WEATHER_SCHEMA, config.format) as weather_out:
        weather_out.write(weather_table(weather, epoch_start, ~dropped))

    return SimulationResult(
        trips_path=trips_path,
        weather_path=weather_path,
        trip_rows=trips_out.rows,
        weather_rows=weather_out.rows,
        dirt=replace(dirt, missing_weather_hours=int(dropped.sum())),
    )
