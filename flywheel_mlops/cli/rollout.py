"""`flywheel rollout`: one step of the canary rollout of a retrained model, safe to repeat.

`flywheel monitor --rollout kserve` runs the same step after its decision, and that is what the
Helm chart's CronJob does: one process, one exit status, one pod with the API token. Two
commands in one container would need a shell in the image to chain them, and a separate job
would need its own schedule, RBAC and NetworkPolicy for no gain, since the step reads the same
registry and prediction log the monitor has just read. `flywheel rollout` stays for running the
step alone (by hand, or from another scheduler).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from flywheel_mlops.cli.common import (
    CanaryPercentOption,
    InferenceServiceOption,
    NamespaceOption,
    failures_exit,
    parse_time,
    print_rollout,
    settings,
)
from flywheel_mlops.loop.rollout import ROLLOUT_LOG, RouterKind


def rollout(
    registry: Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")] = "",
    name: Annotated[str, typer.Option(help="Model name. Default: FLYWHEEL_MODEL_NAME.")] = "",
    database_url: Annotated[str, typer.Option(help="Prediction log URL.")] = "",
    out: Annotated[
        Path | None,
        typer.Option(help=f"Folder of {ROLLOUT_LOG}. Default: <home>/monitor/<model>."),
    ] = None,
    now: Annotated[
        str,
        typer.Option(
            help="Time of this run (ISO 8601). Default: now. A canary is judged on traffic from "
            "the moment its alias was set (wall-clock time) to this one, so an earlier --now "
            "leaves it nothing to judge."
        ),
    ] = "",
    router: Annotated[
        RouterKind, typer.Option(help="Where decisions take effect.")
    ] = RouterKind.LOCAL,
    namespace: NamespaceOption = "",
    inference_service: InferenceServiceOption = "",
    canary_percent: CanaryPercentOption = 25,
    gate_hours: Annotated[
        float, typer.Option(help="Hours of recent labelled traffic the gate scores.", min=0.01)
    ] = 24.0,
    gate_min_rows: Annotated[
        int, typer.Option(help="Labelled recent rows the gate needs.", min=1)
    ] = 200,
    canary_min_rows: Annotated[
        int,
        typer.Option(help="Labelled live rows both models must score before a verdict.", min=2),
    ] = 100,
    canary_max_rows: Annotated[
        int,
        typer.Option(help="Paired rows after which an undecided canary is rolled back.", min=2),
    ] = 20_000,
    canary_margin: Annotated[
        float,
        typer.Option(
            help="Share of the champion's MAE the canary's lower bound must beat to promote.",
            min=0.0,
        ),
    ] = 0.01,
    canary_alpha: Annotated[
        float,
        typer.Option(help="Error level of the canary's confidence sequence.", min=1e-6, max=0.5),
    ] = 0.05,
) -> None:
    """Gate the registry's `candidate`, start, judge, promote or roll back a canary, or wait;
    append the decision to rollouts.jsonl. Exit 0 for every decision, non-zero for a broken
    setup (no champion, unreachable prediction log, no Kubernetes API or no permission)."""
    from flywheel_mlops.loop.rollout import take_rollout_step
    from flywheel_mlops.rollout import RolloutOptions

    config = settings()
    model = name or config.model_name
    with failures_exit():
        decision = take_rollout_step(
            router,
            model,
            registry or config.registry,
            database_url or config.database,
            out or config.home / "monitor" / model,
            parse_time(now, "--now") if now else datetime.now(UTC),
            RolloutOptions(
                canary_percent=canary_percent,
                gate_hours=gate_hours,
                gate_min_rows=gate_min_rows,
                canary_min_rows=canary_min_rows,
                canary_max_rows=canary_max_rows,
                canary_margin=canary_margin,
                canary_alpha=canary_alpha,
            ),
            namespace=namespace,
            inference_service=inference_service,
        )
    print_rollout(decision)
