"""Where rollout decisions take effect: registry aliases locally, KServe on a cluster."""

from __future__ import annotations

from typing import Any, Protocol

from flywheel_mlops.registry import CHAMPION, Registry

CANARY = "canary"


class TrafficRouter(Protocol):
    """The three moves of a canary rollout."""

    def start_canary(self, version: str, percent: int, reason: str) -> None: ...

    def promote(self, version: str, reason: str) -> None: ...

    def roll_back(self, version: str, reason: str) -> None: ...


class LocalRouter:
    """The local server follows the registry: `canary` (with a traffic share) and `champion`."""

    def __init__(self, registry: Registry, model: str):
        self.registry, self.model = registry, model

    def start_canary(self, version: str, percent: int, reason: str) -> None:
        self.registry.set_alias(self.model, version, CANARY, reason, traffic_percent=percent)

    def promote(self, version: str, reason: str) -> None:
        # Champion first, then the canary goes: no moment without the new version serving.
        self.registry.set_alias(self.model, version, CHAMPION, reason)
        self.registry.remove_alias(self.model, CANARY, reason)

    def roll_back(self, version: str, reason: str) -> None:
        self.registry.remove_alias(self.model, CANARY, reason)


def canary_patch(model_dir_uri: str, percent: int, args: list[str]) -> list[dict[str, Any]]:
    """JSON patch for an InferenceService: the predictor's model_dir and its canary share.

    A JSON patch, not a merge patch: a merge patch on a custom resource replaces the whole
    containers list. KServe keeps the last ready revision serving (100 - percent)%.
    """
    new_args = [a for a in args if not a.startswith("--model_dir=")]
    new_args.append(f"--model_dir={model_dir_uri}")
    return [
        {"op": "replace", "path": "/spec/predictor/containers/0/args", "value": new_args},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": percent},
    ]


def promote_patch() -> list[dict[str, Any]]:
    """Send all traffic to the latest revision."""
    return [{"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 100}]


def rollback_patch(champion_dir_uri: str, args: list[str]) -> list[dict[str, Any]]:
    """All traffic back to the champion, and the spec back to the champion's model_dir."""
    return [
        *canary_patch(champion_dir_uri, 100, args)[:1],
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 0},
    ]


class KServeRouter:
    """Patches an InferenceService through the Kubernetes API (Serverless/Knative mode only:
    KServe's raw-deployment mode has no canary traffic split)."""

    GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"

    def __init__(self, api: Any, namespace: str, name: str, registry: Registry, model: str):
        self.api, self.namespace, self.name = api, namespace, name
        self.registry, self.model = registry, model

    def _args(self) -> list[str]:
        current = self.api.get_namespaced_custom_object(
            self.GROUP, self.VERSION, self.namespace, self.PLURAL, self.name
        )
        return list(current["spec"]["predictor"]["containers"][0].get("args", []))

    def _patch(self, body: list[dict[str, Any]]) -> None:
        self.api.patch_namespaced_custom_object(
            self.GROUP, self.VERSION, self.namespace, self.PLURAL, self.name, body
        )

    def start_canary(self, version: str, percent: int, reason: str) -> None:
        uri = self.registry.version_uri(self.model, version)
        self._patch(canary_patch(uri, percent, self._args()))

    def promote(self, version: str, reason: str) -> None:
        self._patch(promote_patch())
        self.registry.set_alias(self.model, version, CHAMPION, reason)

    def roll_back(self, version: str, reason: str) -> None:
        champion = self.registry.resolve(self.model, CHAMPION)
        self._patch(rollback_patch(self.registry.version_uri(self.model, champion), self._args()))
