"""The `flywheel` command line: one module per group of commands, assembled here."""

from __future__ import annotations

import typer

from flywheel_mlops.cli import (
    backtest,
    data,
    models,
    pipeline,
    prediction_service,
    rollout,
    serving,
    training,
)
from flywheel_mlops.cli.monitor import monitor

app = typer.Typer(
    name="flywheel",
    help="Train in Kubeflow Pipelines, serve on KServe, monitor with Evidently, retrain on drift.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("simulate")(data.simulate)
app.command("train")(training.train)
app.command("compile")(training.compile_)
app.command("demo")(training.demo)
app.add_typer(models.app, name="models")
app.add_typer(pipeline.app, name="pipeline")
app.command("serve")(serving.serve)
app.command("predict")(serving.predict)
app.command("feedback")(serving.feedback)
app.command("prediction-service")(prediction_service.prediction_service)
# The 0.1 name: hidden from --help, warns on stderr, then runs prediction-service.
app.command(
    "monitoring-service", hidden=True, help="Deprecated name of `flywheel prediction-service`."
)(prediction_service.monitoring_service)
app.command("monitor")(monitor)
app.command("rollout")(rollout.rollout)
app.command("backtest")(backtest.backtest)
