"""`flywheel train`, `flywheel compile` and `flywheel demo`: the training pipeline, run locally."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from flywheel_mlops.cli.common import console, err_console, failures_exit, settings
from flywheel_mlops.errors import ValidationFailed
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.training.request import TrainingRequest

if TYPE_CHECKING:
    from flywheel_mlops.training.local_runner import RunOutcome

STEPS = ("ingest", "clean", "validate", "featurize", "split", "train", "evaluate", "register")


def train(
    data: Annotated[str, typer.Option(help="Records: CSV/Parquet path, glob or fsspec URI.")],
    dataset: Annotated[
        str, typer.Option(help="Built-in dataset spec name or a spec .yaml file.")
    ] = "ride_hailing",
    side: Annotated[str, typer.Option(help="Side table joined at ingest (weather).")] = "",
    start: Annotated[str, typer.Option(help="First timestamp used (ISO).")] = "",
    end: Annotated[str, typer.Option(help="Timestamp no longer used (ISO).")] = "",
    families: Annotated[str, typer.Option(help="Comma-separated candidate families.")] = ",".join(
        TrainingRequest.families
    ),
    margin: Annotated[
        float, typer.Option(help="MAE gain over the champion to promote.")
    ] = TrainingRequest.margin,
    search_seconds: Annotated[
        float, typer.Option(help="Hyper-parameter search budget.")
    ] = TrainingRequest.search_seconds,
    registry: Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")] = "",
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Make the model champion if it beats the current one (a first model always "
            "is). Without it, a model trained while a champion exists is registered as "
            "`candidate`: the rollout's gate and canary, or `flywheel models promote`, decide.",
        ),
    ] = False,
) -> None:
    """Run the training pipeline through the KFP local runner and register the model."""
    from flywheel_mlops.registry import Alias, Registry
    from flywheel_mlops.spec import load_spec

    config = settings()
    with failures_exit():
        spec = load_spec(dataset)
        registry_uri = registry or config.registry
        has_champion = Registry(registry_uri).alias(spec.name) is not None
        alias = Alias.CHAMPION if promote or not has_champion else Alias.CANDIDATE
        request = TrainingRequest(
            spec=spec,
            promote_alias=alias.value,
            data_uri=data,
            side_uri=side,
            registry_uri=registry_uri,
            start=start,
            end=end,
            families=tuple(f.strip() for f in families.split(",") if f.strip()),
            margin=margin,
            search_seconds=search_seconds,
        )
        outcome = run_with_progress(request, config.runs)
    print_outcome(outcome)


def run_with_progress(request: TrainingRequest, runs: Path) -> RunOutcome:
    """Run the pipeline behind a spinner; every step's log goes to <runs>/last-run.log."""
    from flywheel_mlops.training.local_runner import run_training

    log_path = runs / "last-run.log"
    with console.status(f"training pipeline ({', '.join(STEPS)}); log: {log_path}"):
        try:
            return run_training(request, runs, log_path=log_path)
        except ValidationFailed:
            err_console.print(f"[yellow]the runner's log: {log_path}[/yellow]")
            raise


def print_outcome(outcome: RunOutcome) -> None:
    """The summary table: the model beside the rule-based baseline and the champion."""
    evaluation = outcome.evaluation
    table = Table(title="test split")
    table.add_column("")
    table.add_column("MAE", justify="right")
    table.add_column("p90 abs error", justify="right")
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
        console.print(f"[green]{outcome.version}[/green] {_registered_as(outcome)}")


def _registered_as(outcome: RunOutcome) -> str:
    if not outcome.promoted:
        return "registered; it does not beat the champion, which stays"
    if outcome.alias == Alias.CANDIDATE:
        return (
            "registered as candidate: `flywheel rollout` gates it and runs a canary, or "
            f"`flywheel models promote {outcome.version}` makes it champion"
        )
    return "promoted to champion"


def compile_(
    out: Annotated[
        Path | None, typer.Option(help="Output YAML. Default: the committed file.")
    ] = None,
) -> None:
    """Compile the training pipeline to KFP IR YAML."""
    from flywheel_pipelines.training import COMPILED, compile_pipeline

    console.print(f"compiled {compile_pipeline(out or COMPILED)}")


def demo(
    rows: Annotated[int, typer.Option(help="Simulated trip records.")] = 40_000,
    days: Annotated[int, typer.Option(help="Days simulated.")] = 18,
    closure_day: Annotated[int, typer.Option(help="Day the highway closes.")] = 11,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 5,
) -> None:
    """The whole loop: train v1, serve it, a highway closes, drift is seen, v2 is retrained,
    goes out as a canary and is promoted, and the error comes back down."""
    import shutil

    from flywheel_mlops.demo.run import StoryConfig, run_story

    config = settings()
    home = config.home / "story"
    shutil.rmtree(home, ignore_errors=True)  # the story starts from an empty world each time
    with failures_exit():
        story = StoryConfig(rows=rows, days=days, closure_day=closure_day, seed=seed)
        result = run_story(story, home, say=lambda line: console.print(line))
    print_story(result)


def print_story(result: Any) -> None:
    """Day by day: traffic per version, live error, the monitor's verdict, what was done."""
    table = Table(title="the story, day by day")
    for column in ("day", "served by", "MAE", "closure MAE", "drift", "verdict", "events"):
        table.add_column(column, overflow="fold")
    for day in result.days:
        served = ", ".join(f"{v}:{n}" for v, n in sorted(day.served_by_version.items()))
        table.add_row(
            day.day.strftime("%m-%d"),
            served,
            f"{day.mae:.2f}",
            f"{day.closure_zones_mae:.2f}",
            f"{day.drift_share:.2f}",
            day.verdict,
            "; ".join(e.split(":")[0] for e in day.events) + (" retrain" if day.retrain else ""),
        )
    console.print(table)
    for key, value in result.summary.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        console.print(f"  {key}: {shown}")
    console.print(f"report: [bold]{result.report_path}[/bold]")
