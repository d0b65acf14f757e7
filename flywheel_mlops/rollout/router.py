"""Where rollout decisions take effect: registry aliases locally, KServe on a cluster."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flywheel_mlops.errors import ConfigError, FlywheelError, NotFoundError
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias

_T = TypeVar("_T")


class TrafficRouter(Protocol):
    """The three moves of a canary rollout."""

    def start_canary(self, version: str, percent: int, reason: str) -> None: ...

    def promote(self, version: str, reason: str) -> None: ...

    def roll_back(self, version: str, reason: str) -> None: ...

    def sync(self) -> list[str]:
        """Bring the registry's aliases in line with what actually serves; what was repaired."""
        ...


class LocalRouter:
    """The local server follows the registry: `canary` (with a traffic share) and `champion`."""

    def __init__(self, registry: Registry, model: str):
        self.registry, self.model = registry, model

    def start_canary(self, version: str, percent: int, reason: str) -> None:
        self.registry.set_alias(self.model, version, Alias.CANARY, reason, traffic_percent=percent)

    def promote(self, version: str, reason: str) -> None:
        # Champion first, then the canary goes: no moment without the new version serving.
        self.registry.set_alias(self.model, version, Alias.CHAMPION, reason)
        self.registry.remove_alias(self.model, Alias.CANARY, reason)

    def roll_back(self, version: str, reason: str) -> None:
        self.registry.remove_alias(self.model, Alias.CANARY, reason)

    def sync(self) -> list[str]:
        """Nothing to do: the local server follows the aliases, so they are what serves."""
        return []


def canary_patch(model_dir_uri: str, percent: int, current: dict[str, Any]) -> dict[str, Any]:
    """Merge patch for an InferenceService read as `current`: the predictor's model_dir and its
    canary share. KServe keeps the last ready revision serving (100 - percent)%.

    A JSON merge patch, because that is the content type the Kubernetes client (30.x, the one
    kfp allows) sends for every custom-object patch; a JSON-patch list sent that way is refused
    with a 400. A merge patch replaces a list whole, so the containers go back as read with only
    the first one's args changed, and the read's resourceVersion makes the API server refuse the
    patch (409 Conflict) if the InferenceService changed in between.
    """
    containers = copy.deepcopy(current["spec"]["predictor"]["containers"])
    args = [a for a in containers[0].get("args", []) if not a.startswith("--model_dir=")]
    containers[0]["args"] = [*args, f"--model_dir={model_dir_uri}"]
    return {
        "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
        "spec": {"predictor": {"containers": containers, "canaryTrafficPercent": percent}},
    }


def promote_patch() -> dict[str, Any]:
    """Send all traffic to the latest revision."""
    return {"spec": {"predictor": {"canaryTrafficPercent": 100}}}


def rollback_patch(champion_dir_uri: str, current: dict[str, Any]) -> dict[str, Any]:
    """All traffic back to the champion, and the spec back to the champion's model_dir."""
    return canary_patch(champion_dir_uri, 0, current)


class KServeRouter:
    """Patches an InferenceService through the Kubernetes API (Serverless/Knative mode only:
    KServe's raw-deployment mode has no canary traffic split).

    After each patch the registry's aliases move as LocalRouter moves them: `canary` is how the
    next run of the rollout step knows a canary is running, and `champion` what is monitored.
    The patch goes first, so an alias never names a canary the cluster does not serve; if the
    alias write after it fails, the next run's `sync` reads the InferenceService and repairs
    the aliases before deciding anything.
    """

    GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"

    def __init__(self, api: Any, namespace: str, name: str, registry: Registry, model: str):
        self.api, self.namespace, self.name = api, namespace, name
        self.registry, self.model = registry, model
        self.aliases = LocalRouter(registry, model)

    def _call(self, verb: str, method: Callable[..., _T], *body: Any) -> _T:
        """One API call; Kubernetes' errors become Flywheel's, naming the object and the cause."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        where = f"inferenceservice {self.namespace}/{self.name}"
        try:
            return method(self.GROUP, self.VERSION, self.namespace, self.PLURAL, self.name, *body)
        except (HTTPError, OSError) as error:
            # Refused, reset, or dropped by a NetworkPolicy: the API is not reachable from here.
            raise ConfigError(
                f"the Kubernetes API did not answer the {verb} of {where}: {error}; check the "
                "pod's egress to the API server (networkPolicy.kubernetesApiTo)"
            ) from error
        except ApiException as error:
            if error.status == 404:
                raise NotFoundError(f"{where} does not exist (HTTP 404 on {verb})") from error
            if error.status in (401, 403):
                raise ConfigError(
                    f"the service account may not {verb} {where} (HTTP {error.status}); "
                    "its Role needs get and patch on that InferenceService"
                ) from error
            raise FlywheelError(
                f"{verb} {where} failed: HTTP {error.status} {error.reason}"
            ) from error

    def _read(self) -> dict[str, Any]:
        return self._call("get", self.api.get_namespaced_custom_object)

    def _patch(self, body: dict[str, Any]) -> None:
        self._call("patch", self.api.patch_namespaced_custom_object, body)

    def start_canary(self, version: str, percent: int, reason: str) -> None:
        uri = self.registry.version_uri(self.model, version)
        self._patch(canary_patch(uri, percent, self._read()))
        self.aliases.start_canary(version, percent, reason)

    def promote(self, version: str, reason: str) -> None:
        self._patch(promote_patch())
        self.aliases.promote(version, reason)

    def roll_back(self, version: str, reason: str) -> None:
        champion = self.registry.resolve(self.model, Alias.CHAMPION)
        self._patch(rollback_patch(self.registry.version_uri(self.model, champion), self._read()))
        self.aliases.roll_back(version, reason)

    def sync(self) -> list[str]:
        """Make the aliases say what the InferenceService serves: the cluster is the truth.

        A patch that went through followed by an alias write that did not (the pod was killed,
        the object store failed) leaves the two apart; the next run must not decide from the
        stale aliases. Read the predictor's `--model_dir` and canary share and repair:
        a version other than the champion at a share below 100 is the canary; at 100 it is the
        champion (a promotion, or a release that set `model.version`); the champion at 0 or 100
        means no canary. A `--model_dir` that is no version of this registry changes nothing.
        """
        predictor = self._read()["spec"]["predictor"]
        serving = self._version_at(predictor["containers"][0].get("args", []))
        if serving is None:
            return []
        share = int(predictor.get("canaryTrafficPercent", 100))
        champion = self.registry.resolve(self.model, Alias.CHAMPION)
        canary = self.registry.alias(self.model, Alias.CANARY)
        why = f"inferenceservice {self.namespace}/{self.name} serves {serving} at {share}%"
        if serving != champion and 0 < share < 100:
            if canary is None or (canary.version, canary.traffic_percent) != (serving, share):
                self.aliases.start_canary(serving, share, why)
                return [f"{why}: canary alias set to {serving}"]
        elif serving != champion and share >= 100:
            self.aliases.promote(serving, why)
            return [f"{why}: champion alias moved from {champion} to {serving}"]
        elif serving == champion and share in (0, 100) and canary is not None:
            self.aliases.roll_back(canary.version, why)
            candidate = self.registry.alias(self.model, Alias.CANDIDATE)
            if candidate is not None and candidate.version == canary.version:
                # Rolled back: the gate must not send the same version out again.
                self.registry.remove_alias(self.model, Alias.CANDIDATE, why)
            return [f"{why}: stale canary alias ({canary.version}) removed"]
        return []

    def _version_at(self, args: list[str]) -> str | None:
        """The registry version whose folder `--model_dir` names, if any."""
        given = next((a.split("=", 1)[1] for a in args if a.startswith("--model_dir=")), None)
        if given is None:
            return None
        for version in self.registry.versions(self.model):
            if self.registry.version_uri(self.model, version).rstrip("/") == given.rstrip("/"):
                return version
        return None
