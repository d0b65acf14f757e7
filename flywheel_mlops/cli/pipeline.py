"""`flywheel pipeline submit`: start the training pipeline on a Kubeflow Pipelines cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from flywheel_mlops.cli.common import console, failures_exit

app = typer.Typer(
    help="The training pipeline on a Kubeflow Pipelines cluster.", no_args_is_help=True
)


@app.command()
def submit(
    host: Annotated[
        str,
        typer.Option(
            help="KFP API endpoint, e.g. http://ml-pipeline-ui:80.",
            envvar="FLYWHEEL_PIPELINES_HOST",
        ),
    ],
    data: Annotated[str, typer.Option(help="Records the run trains on (s3://, gs://...).")],
    registry: Annotated[
        str,
        typer.Option(help="Registry URI the run publishes into.", envvar="FLYWHEEL_REGISTRY_URI"),
    ],
    dataset: Annotated[str, typer.Option(help="Built-in spec name or spec .yaml.")] = (
        "ride_hailing"
    ),
    side: Annotated[str, typer.Option(help="Side table joined at ingest (weather).")] = "",
    start: Annotated[str, typer.Option(help="First timestamp used (ISO).")] = "",
    end: Annotated[str, typer.Option(help="Timestamp no longer used (ISO).")] = "",
    reason: Annotated[str, typer.Option(help="Why this run is started; kept in lineage.")] = (
        "manual run"
    ),
    experiment: Annotated[str, typer.Option(help="KFP experiment.")] = "flywheel",
    token: Annotated[
        str, typer.Option(help="Bearer token for the KFP API.", envvar="FLYWHEEL_PIPELINES_TOKEN")
    ] = "",
) -> None:
    """Upload the compiled pipeline (if this version is new) and start a run."""
    from flywheel_mlops.spec import load_spec
    from flywheel_mlops.training.kfp_client import submit_training_run
    from flywheel_mlops.training.local_runner import TrainingRequest

    with failures_exit():
        request = TrainingRequest(
            spec=load_spec(dataset),
            data_uri=data,
            registry_uri=registry,
            side_uri=side,
            start=start,
            end=end,
            reason=reason,
        )
        run = submit_training_run(
            host, request.arguments(), experiment=experiment, token=token or None
        )
    console.print(
        f"started run [green]{run.run_id}[/green] (pipeline version {run.version_id}): {run.url}"
    )
