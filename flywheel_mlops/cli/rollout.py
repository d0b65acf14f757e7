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
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel_mlops.cli.common import console, failures_exit, parse_time, settings
from flywheel_mlops.errors import ConfigError

if TYPE_CHECKING:
    from flywheel_mlops.rollout import RolloutDecision, RolloutOptions, TrafficRouter

#: File the rollout decisions are appended to, in the monitor's output folder.
ROLLOUT_LOG = "rollouts.jsonl"


class Router(StrEnum):
    """Where a rollout decision takes effect."""

    local = "local"  # registry aliases, followed by `flywheel serve`
    kserve = "kserve"  # the InferenceService, patched through the Kubernetes API


class RolloutMode(StrEnum):
    """`flywheel monitor --rollout`: a router, or no rollout step at all."""

    off = "off"
    local = "local"
    kserve = "kserve"


NamespaceOption = Annotated[
    str,
    typer.Option(
        help="Namespace of the InferenceService (--router kserve).", envvar="FLYWHEEL_NAMESPACE"
    ),
]
InferenceServiceOption = Annotated[
    str,
    typer.Option(
        help="InferenceService patched by --router kserve. Default: the model name.",
        envvar="FLYWHEEL_INFERENCESERVICE",
    ),
]
CanaryPercentOption = Annotated[
    int, typer.Option(help="Share of live requests a canary serves.", min=1, max=99)
]


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
    router: Annotated[Router, typer.Option(help="Where decisions take effect.")] = Router.local,
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
        int, typer.Option(help="Labelled live rows each version needs before a verdict.", min=1)
    ] = 100,
) -> None:
    """Gate the registry's `candidate`, start, judge, promote or roll back a canary, or wait;
    append the decision to rollouts.jsonl. Exit 0 for every decision, non-zero for a broken
    setup (no champion, unreachable prediction log, no Kubernetes API or no permission)."""
    from flywheel_mlops.rollout import RolloutOptions

    config = settings()
    model = name or config.model_name
    run_rollout(
        router.value,
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
        ),
        namespace=namespace,
        inference_service=inference_service,
    )


def run_rollout(
    router: str,
    model: str,
    registry_uri: str,
    database_url: str,
    folder: Path,
    at: datetime,
    options: RolloutOptions,
    namespace: str = "",
    inference_service: str = "",
) -> RolloutDecision:
    """Build the router named `router` (`local` or `kserve`), take one step, print it."""
    from flywheel_mlops.predictions import PredictionStore
    from flywheel_mlops.registry import Registry
    from flywheel_mlops.rollout import RolloutLog, rollout_step

    with failures_exit():
        registry = Registry(registry_uri)
        traffic = _router(router, registry, model, namespace, inference_service or model)
        decision = rollout_step(
            registry,
            model,
            PredictionStore(database_url),
            traffic,
            RolloutLog(folder / ROLLOUT_LOG),
            at,
            options,
        )
    console.print(
        f"rollout [bold]{decision.action}[/bold] candidate={decision.candidate or '-'} "
        f"champion={decision.champion}: {decision.reason}"
    )
    return decision


def _router(
    kind: str, registry: Any, model: str, namespace: str, inference_service: str
) -> TrafficRouter:
    from flywheel_mlops.rollout import KServeRouter, LocalRouter

    if kind == Router.local.value:
        return LocalRouter(registry, model)
    if not namespace:
        raise ConfigError("--router kserve needs --namespace (FLYWHEEL_NAMESPACE), got none")
    return KServeRouter(kubernetes_api(), namespace, inference_service, registry, model)


def kubernetes_api() -> Any:
    """A CustomObjectsApi: the pod's service account in a cluster, else the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException as in_cluster:
        try:
            config.load_kube_config()
        except config.ConfigException as kubeconfig:
            raise ConfigError(
                "--router kserve needs the Kubernetes API: expected an in-cluster service "
                f"account ({in_cluster}) or a kubeconfig ({kubeconfig})"
            ) from kubeconfig
    return client.CustomObjectsApi()
