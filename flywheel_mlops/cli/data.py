"""`flywheel simulate`: write raw ride-hailing trip logs and a weather feed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flywheel_mlops.cli.common import console, failures_exit, settings


def simulate(
    rows: Annotated[int, typer.Option(help="Trip records to write.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days the records span.")] = 28,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed writes the same files.")
    ] = 7,
    closure_day: Annotated[
        int | None, typer.Option(help="Day a highway closes in the closure zones.")
    ] = None,
    season_change_day: Annotated[
        int | None, typer.Option(help="Day the weather turns colder and wetter.")
    ] = None,
    dirt: Annotated[float, typer.Option(help="Dirt level; 0 writes clean data.")] = 1.0,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    out: Annotated[Path | None, typer.Option(help="Output folder. Default: <home>/data.")] = None,
) -> None:
    """Simulate pickup trips (dirty, as real logs are) and an hourly weather table."""
    from flywheel_mlops.simulator import SimulationConfig
    from flywheel_mlops.simulator import simulate as run

    with failures_exit():
        config = SimulationConfig(
            rows=rows,
            days=days,
            seed=seed,
            closure_day=closure_day,
            season_change_day=season_change_day,
            dirt=dirt,
            format=file_format,  # type: ignore[arg-type]  # SimulationConfig checks the value
        )
        result = run(config, out or settings().data)
    table = Table(title="simulated")
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_row(str(result.trips_path), f"{result.trip_rows:,}")
    table.add_row(str(result.weather_path), f"{result.weather_rows:,}")
    console.print(table)
