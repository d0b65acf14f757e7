"""`flywheel train`, `flywheel compile` and `flywheel demo`: the training pipeline, run locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flywheel_mlops.cli.common import console, err_console, failures_exit, settings
from flywheel_mlops.errors import ValidationFailed

STEPS = ("ingest", "clean", "validate", "featurize", "split", "train", "evaluate", "register")


def train(
    data: Annotated[str, typer.Option(help="Records: CSV/Parquet path, glob or fsspec URI.")],
    dataset: Annotated[
        str, typer.Option(help="Built-in dataset spec name or a spec .yaml file.")
    ] = "ride_hailing",
    side: Annotated[str, typer.Option(help="Side table joined at ingest (weather).")] = "",
    start: Annotated[str, typer.Option(help="First timestamp used (ISO).")] = "",
    end: Annotated[str, typer.Option(help="Timestamp no longer used (ISO).")] = "",
    families: Annotated[
        str, typer.Option(help="Comma-separated candidate families.")
    ] = "xgboost,hist_gbm,ridge",
    margin: Annotated[float, typer.Option(help="MAE gain over the champion to promote.")] = 0.02,
    search_seconds: Annotated[float, typer.Option(help="Hyper-parameter search budget.")] = 0.0,
    registry: Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")] = "",
) -> None:
    """Run the training pipeline through the KFP local runner and register the model."""
    from flywheel_mlops.local_run import TrainingRequest
    from flywheel_mlops.spec import load_spec

    config = settings()
    with failures_exit():
        request = TrainingRequest(
            spec=load_spec(dataset),
            data_uri=data,
            side_uri=side,
            registry_uri=registry or config.registry,
            start=start,
            end=end,
            families=tuple(f.strip() for f in families.split(",") if f.strip()),
            margin=margin,
            search_seconds=search_seconds,
        )
        outcome = run_with_progress(request, config.runs)
    print_outcome(outcome)


def run_with_progress(request: Any, runs: Path) -> Any:
    """Run the pipeline with a progress bar over its steps; the runner's log goes to a file."""
    from flywheel_mlops.local_run import run_training

    log_path = runs / "last-run.log"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("training pipeline", total=len(STEPS))
        started: list[str] = []

        def on_step(name: str) -> None:
            if started:
                progress.advance(bar)
            started.append(name)
            progress.update(bar, description=f"training pipeline: {name}")

        try:
            outcome = run_training(request, runs, log_path=log_path, on_step=on_step)
        except ValidationFailed:
            err_console.print(f"[yellow]the runner's log: {log_path}[/yellow]")
            raise
        progress.update(bar, completed=len(STEPS), description="training pipeline: done")
    return outcome


def print_outcome(outcome: Any) -> None:
    """The summary table: the model beside the rule-based baseline and the champion."""
    evaluation = outcome.evaluation
    table = Table(title="test split")
    table.add_column("")
    table.add_column("MAE (min)", justify="right")
    table.add_column("p90 abs error (min)", justify="right")
    table.add_row("model", f"{evaluation['test']['mae']:.3f}", f"{evaluation['test']['p90']:.3f}")
    if "baseline" in evaluation:
        b = evaluation["baseline"]
        table.add_row("rule-based baseline", f"{b['mae']:.3f}", f"{b['p90']:.3f}")
    if "champion" in evaluation:
        c = evaluation["champion"]
        table.add_row(f"champion {c['version']}", f"{c['mae']:.3f}", f"{c['p90']:.3f}")
    console.print(table)
    if "baseline" in evaluation:
        ratio = evaluation["test"]["mae"] / evaluation["baseline"]["mae"]
        console.print(f"model MAE / baseline MAE = [bold]{ratio:.2f}[/bold]")
    if outcome.version is None:
        console.print("[yellow]not registered: the model does not beat the baseline[/yellow]")
    else:
        state = "promoted to champion" if outcome.promoted else "registered, champion kept"
        console.print(f"[green]{outcome.version}[/green] {state}")


def compile_(
    out: Annotated[
        Path | None, typer.Option(help="Output YAML. Default: the committed file.")
    ] = None,
) -> None:
    """Compile the training pipeline to KFP IR YAML."""
    from flywheel_pipelines.training import COMPILED, compile_pipeline

    console.print(f"compiled {compile_pipeline(out or COMPILED)}")


def demo(
    rows: Annotated[int, typer.Option(help="Simulated trip records.")] = 60_000,
    days: Annotated[int, typer.Option(help="Days simulated.")] = 28,
) -> None:
    """Simulate trips, train through the KFP local runner, register, and compare with the baseline."""
    from flywheel_mlops.local_run import TrainingRequest
    from flywheel_mlops.simulator import SimulationConfig, simulate
    from flywheel_mlops.spec import load_spec

    config = settings()
    with failures_exit():
        console.rule("1. simulate")
        data = simulate(SimulationConfig(rows=rows, days=days), config.data)
        console.print(
            f"{data.trip_rows:,} trips, {data.weather_rows:,} weather hours in {config.data}"
        )
        console.rule("2. train (Kubeflow Pipelines local runner)")
        request = TrainingRequest(
            spec=load_spec("ride_hailing"),
            data_uri=str(data.trips_path),
            side_uri=str(data.weather_path),
            registry_uri=config.registry,
        )
        outcome = run_with_progress(request, config.runs)
        console.rule("3. result")
        print_outcome(outcome)
