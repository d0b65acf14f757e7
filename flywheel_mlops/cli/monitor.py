"""`flywheel monitor`: judge a window of traffic against the champion and decide on a retrain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flywheel_mlops.cli.common import (
    CanaryPercentOption,
    InferenceServiceOption,
    NamespaceOption,
    console,
    failures_exit,
    parse_time,
    print_rollout,
    settings,
)

#: Exit code of a run whose decision is `error` (a CronJob then shows the run as failed).
EXIT_ERROR = 1


class RolloutMode(StrEnum):
    """`flywheel monitor --rollout`: a router, or no rollout step at all."""

    off = "off"
    local = "local"
    kserve = "kserve"


def monitor(
    registry: Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")] = "",
    name: Annotated[str, typer.Option(help="Model name. Default: FLYWHEEL_MODEL_NAME.")] = "",
    ref: Annotated[str, typer.Option(help="Alias or version monitored.")] = "champion",
    window: Annotated[
        Path | None, typer.Option(help="Window as a Parquet file (prediction-log columns).")
    ] = None,
    database_url: Annotated[
        str, typer.Option(help="Prediction log URL, used when --window is not given.")
    ] = "",
    since: Annotated[
        str, typer.Option(help="Window start (ISO 8601, UTC). Default: --hours before --now.")
    ] = "",
    hours: Annotated[float, typer.Option(help="Window length in hours.", min=0.01)] = 24.0,
    now: Annotated[str, typer.Option(help="Time of this run (ISO 8601). Default: now.")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Output folder. Default: <home>/monitor/<model>.")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Keep the policy state in this local file instead of the loop database "
            "(the prediction log's database, where a fresh pod finds it)."
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Reference statistics cache. Default: <home>/monitor/cache.")
    ] = None,
    debounce: Annotated[
        int, typer.Option(help="Bad windows in a row before a retrain.", min=1)
    ] = 2,
    cooldown_hours: Annotated[float, typer.Option(help="Hours after a retrain.", min=0)] = 6.0,
    daily_cap: Annotated[int, typer.Option(help="Retrains per UTC day at most.", min=0)] = 2,
    min_labelled_rows: Annotated[
        int, typer.Option(help="Labelled rows needed to judge live error.", min=1)
    ] = 200,
    pipelines_host: Annotated[
        str,
        typer.Option(
            help="Kubeflow Pipelines API; when set, a retrain decision submits a run.",
            envvar="FLYWHEEL_PIPELINES_HOST",
        ),
    ] = "",
    retrain_data: Annotated[
        str,
        typer.Option(
            help="Records a retraining run trains on (s3://..., a glob).",
            envvar="FLYWHEEL_RETRAIN_DATA",
        ),
    ] = "",
    retrain_side: Annotated[
        str,
        typer.Option(
            help="Side table for the retraining run (weather).", envvar="FLYWHEEL_RETRAIN_SIDE"
        ),
    ] = "",
    retrain_days: Annotated[
        float, typer.Option(help="Days of fresh records a retraining run uses.", min=1)
    ] = 7.0,
    local_retrain: Annotated[
        bool,
        typer.Option(
            help="With no --pipelines-host, run a decided retrain here through the KFP local "
            "runner (needs --retrain-data); --no-local-retrain only reports the decision."
        ),
    ] = True,
    rollout: Annotated[
        RolloutMode,
        typer.Option(help="After the decision, take one rollout step (see `flywheel rollout`)."),
    ] = RolloutMode.off,
    namespace: NamespaceOption = "",
    inference_service: InferenceServiceOption = "",
    canary_percent: CanaryPercentOption = 25,
) -> None:
    """Measure drift (Evidently) and live error on a window; write decision.json, report.html
    and monitor.prom; exit 0 for ok / drift / degraded / insufficient_data, 1 for error.

    With --rollout local|kserve the run then takes one step of the canary rollout of a retrained
    `candidate` (gate, canary, promote or roll back; rollouts.jsonl beside decision.json). A run
    whose decision is `error` stops before it: the registry and prediction log the rollout
    reads are the ones that just failed. A retrain submitted by this run registers its
    candidate later, so a later run gates it.
    """
    from flywheel_mlops.loop.job import MonitorJob, run_job
    from flywheel_mlops.loop.rollout import RouterKind
    from flywheel_mlops.loop.state import DatabasePolicyState, LoopDatabase
    from flywheel_mlops.monitoring import RetrainPolicy, Thresholds
    from flywheel_mlops.rollout import RolloutOptions

    config = settings()
    model = name or config.model_name
    at = parse_time(now, "--now") if now else datetime.now(UTC)
    start = parse_time(since, "--since") if since else at - timedelta(hours=hours)
    database = database_url or config.database
    policy = RetrainPolicy(
        state or DatabasePolicyState(LoopDatabase(database), f"policy/{model}"),
        Thresholds(min_labelled_rows=min_labelled_rows),
        debounce=debounce,
        cooldown=timedelta(hours=cooldown_hours),
        daily_cap=daily_cap,
    )
    job = MonitorJob(
        model=model,
        registry_uri=registry or config.registry,
        database_url=database,
        folder=out or config.home / "monitor" / model,
        at=at,
        start=start,
        end=start + timedelta(hours=hours),
        policy=policy,
        cache_dir=cache_dir or config.home / "monitor" / "cache",
        runs=config.runs,
        ref=ref,
        window=window,
        pipelines_host=pipelines_host,
        retrain_data=retrain_data,
        retrain_side=retrain_side,
        retrain_since=at - timedelta(days=retrain_days),
        local_retrain=local_retrain,
        rollout=None if rollout is RolloutMode.off else RouterKind(rollout.value),
        rollout_options=RolloutOptions(canary_percent=canary_percent),
        namespace=namespace,
        inference_service=inference_service,
    )

    def decided(result: Any, archived: str) -> None:
        _print_summary(result.decision.to_dict())
        console.print(f"decision and report kept at {archived}")

    with failures_exit():
        outcome = run_job(job, decided)
    if outcome.retrain is not None:
        console.print(outcome.retrain.said)
    if outcome.rollout is not None:
        print_rollout(outcome.rollout)
    if outcome.monitored.verdict == "error":
        raise typer.Exit(EXIT_ERROR)


def _print_summary(decision: dict[str, Any]) -> None:
    colors = {"ok": "green", "drift": "yellow", "degraded": "red", "error": "magenta"}
    verdict = decision["verdict"]
    table = Table(
        title=f"monitor: {decision['model'].get('name')} {decision['model'].get('version')}"
    )
    table.add_column("measure")
    table.add_column("value")
    window = decision["window"]
    table.add_row("verdict", f"[{colors.get(verdict, 'white')}]{verdict}[/]")
    table.add_row("retrain", "yes" if decision["retrain"] else "no")
    table.add_row("rows / labelled", f"{window.get('rows')} / {window.get('labelled_rows')}")
    drift = decision.get("drift")
    if drift:
        table.add_row(
            "drifted features",
            f"{len(drift['drifted_features'])}/{len(drift['features'])} "
            f"({', '.join(drift['drifted_features']) or 'none'})",
        )
        prediction = drift["prediction"]
        table.add_row("prediction drift", f"{prediction['score']:.3f} ({prediction['method']})")
    live = decision.get("live_error")
    if live and live.get("mae") is not None:
        table.add_row("live MAE / test MAE", f"{live['mae']:.3f} / {live['test_mae']:.3f}")
        table.add_row("degraded slices", ", ".join(live["degraded_slices"]) or "none")
    table.add_row("decision", decision["outputs"].get("decision", ""))
    table.add_row("report", decision["outputs"].get("report_html", ""))
    console.print(table)
    for sentence in decision["why"]:
        console.print(f"- {sentence}")
