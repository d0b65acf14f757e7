"""One step of the canary rollout, on the router where its decisions take effect."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.loop.state import LoopDatabase
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry import Registry
from flywheel_mlops.rollout import (
    KServeRouter,
    LocalRouter,
    RolloutDecision,
    RolloutLog,
    RolloutOptions,
    TrafficRouter,
    rollout_step,
)

#: File the rollout decisions are appended to, in the monitor's output folder.
ROLLOUT_LOG = "rollouts.jsonl"


class RouterKind(StrEnum):
    """Where a rollout decision takes effect."""

    LOCAL = "local"  # registry aliases, followed by `flywheel serve`
    KSERVE = "kserve"  # the InferenceService, patched through the Kubernetes API


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


def build_router(
    kind: RouterKind, registry: Registry, model: str, namespace: str, inference_service: str
) -> TrafficRouter:
    """The router of `kind`; KServe needs a namespace and reaches the Kubernetes API."""
    if kind is RouterKind.LOCAL:
        return LocalRouter(registry, model)
    if not namespace:
        raise ConfigError("--router kserve needs --namespace (FLYWHEEL_NAMESPACE), got none")
    return KServeRouter(kubernetes_api(), namespace, inference_service, registry, model)


def take_rollout_step(
    kind: RouterKind,
    model: str,
    registry_uri: str,
    database_url: str,
    folder: Path,
    at: datetime,
    options: RolloutOptions,
    namespace: str = "",
    inference_service: str = "",
) -> RolloutDecision:
    """Gate, canary, promote, roll back or wait, once; the decision is appended to the log."""
    registry = Registry(registry_uri)
    router = build_router(kind, registry, model, namespace, inference_service or model)
    decision = rollout_step(
        registry,
        model,
        PredictionStore(database_url),
        router,
        RolloutLog(folder / ROLLOUT_LOG),
        at,
        options,
    )
    # The rollout log in `folder` dies with a pod; the loop database keeps every step.
    LoopDatabase(database_url).record(model, "rollout", at, asdict(decision))
    return decision
