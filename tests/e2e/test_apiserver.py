"""The InferenceService through a real Kubernetes API server: the chart's resource is created
under strict field validation, and the rollout's patches are applied the way a cluster's API
server applies them (content types included), through the Kubernetes client the monitor uses.

No mock here: etcd and the upstream apiextensions-apiserver run on loopback (tests/e2e/
apiserver.py) with the CRD generated from the kserve SDK (tests/e2e/kserve_crd.py).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from flywheel_mlops.registry import Registry
from flywheel_mlops.rollout.router import KServeRouter
from tests.e2e.kserve_crd import GROUP, PLURAL, VERSION
from tests.k8s.conftest import SCENARIOS, Rendering
from tests.unit.rollout_fixtures import MODEL

pytestmark = pytest.mark.e2e

NAMESPACE = "flywheel"


def custom_objects(kube_client: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(kube_client)


def create(kube_client: Any, isvc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Create a copy of `isvc` under a fresh name with strict field validation; name, stored."""
    body = copy.deepcopy(isvc)
    name = f"{body['metadata']['name']}-{uuid.uuid4().hex[:6]}"
    body["metadata"] = {**body["metadata"], "name": name, "namespace": NAMESPACE}
    stored = custom_objects(kube_client).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, body, field_validation="Strict"
    )
    return name, stored


def get(kube_client: Any, name: str) -> dict[str, Any]:
    return custom_objects(kube_client).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )


def rendered_isvc(chart_renderings: dict[str, Rendering], scenario: str) -> dict[str, Any]:
    return chart_renderings[scenario].one("InferenceService")


@pytest.mark.parametrize("scenario", [p.name.removesuffix("-values.yaml") for p in SCENARIOS])
def test_the_charts_inference_service_is_created_with_strict_field_validation(
    kube_client, chart_renderings, scenario
):
    isvc = rendered_isvc(chart_renderings, scenario)
    name, stored = create(kube_client, isvc)
    # Nothing pruned: the server kept every field the chart wrote.
    assert stored["spec"] == isvc["spec"]
    assert get(kube_client, name)["spec"] == isvc["spec"]


def test_a_misspelt_field_is_refused_under_strict_field_validation(kube_client, chart_renderings):
    """The control for the test above: the CRD's schema does constrain the spec."""
    from kubernetes.client.exceptions import ApiException

    isvc = copy.deepcopy(rendered_isvc(chart_renderings, "serverless"))
    isvc["spec"]["predictor"]["canaryTraficPercent"] = 10
    with pytest.raises(ApiException) as refused:
        create(kube_client, isvc)
    assert refused.value.status == 400
    message = json.loads(refused.value.body)["message"]
    assert 'unknown field "spec.predictor.canaryTraficPercent"' in message


def test_a_json_patch_is_refused_as_a_merge_patch_and_applied_as_a_json_patch(
    kube_client, chart_renderings
):
    """What the Kubernetes client 30.x does with a JSON-patch list (what KServeRouter sent until
    it switched to merge patches), and what the server would have wanted instead."""
    from kubernetes.client.exceptions import ApiException

    isvc = rendered_isvc(chart_renderings, "serverless")
    name, _ = create(kube_client, isvc)
    patch = [
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10},
        {"op": "add", "path": "/spec/predictor/containers/0/args/-", "value": "--model_dir=v2"},
    ]

    # The client's own method sends `application/merge-patch+json` whatever the body is.
    with pytest.raises(ApiException) as refused:
        custom_objects(kube_client).patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, patch
        )
    assert refused.value.status == 400
    assert "cannot unmarshal array" in json.loads(refused.value.body)["message"]

    # The same list as `application/json-patch+json` is applied.
    kube_client.call_api(
        f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{name}",
        "PATCH",
        header_params={
            "Content-Type": "application/json-patch+json",
            "Accept": "application/json",
        },
        body=patch,
        response_type="object",
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
    )
    predictor = get(kube_client, name)["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["containers"][0]["args"][-1] == "--model_dir=v2"


def test_kserve_router_rolls_out_through_the_api_server(
    kube_client, chart_renderings, registry: Registry
):
    """start_canary, promote and roll_back, each checked in what the server stores: the
    predictor's --model_dir and canary share move, and nothing else in the spec changes."""
    isvc = copy.deepcopy(rendered_isvc(chart_renderings, "serverless"))
    container = isvc["spec"]["predictor"]["containers"][0]
    container["args"] = [
        *(a for a in container["args"] if not a.startswith("--model_dir=")),
        f"--model_dir={registry.version_uri(MODEL, 'v0001')}",
    ]
    name, stored = create(kube_client, isvc)
    router = KServeRouter(custom_objects(kube_client), NAMESPACE, name, registry, MODEL)

    def served() -> tuple[str, int | None, dict[str, Any]]:
        """(--model_dir, canaryTrafficPercent, the spec without those two)."""
        spec = copy.deepcopy(get(kube_client, name)["spec"])
        share = spec["predictor"].pop("canaryTrafficPercent", None)
        args = spec["predictor"]["containers"][0].pop("args")
        (model_dir,) = (a.split("=", 1)[1] for a in args if a.startswith("--model_dir="))
        return model_dir, share, spec

    _, _, unchanged = served()

    router.start_canary("v0002", 10, "gate passed")
    assert served() == (registry.version_uri(MODEL, "v0002"), 10, unchanged)
    canary = registry.alias(MODEL, "canary")
    assert canary is not None
    assert canary.traffic_percent == 10

    router.promote("v0002", "better live")
    assert served() == (registry.version_uri(MODEL, "v0002"), 100, unchanged)
    assert registry.resolve(MODEL) == "v0002"

    router.start_canary("v0001", 20, "gate passed")
    assert served() == (registry.version_uri(MODEL, "v0001"), 20, unchanged)
    router.roll_back("v0001", "worse live")
    assert served() == (registry.version_uri(MODEL, "v0002"), 0, unchanged)
    assert registry.alias(MODEL, "canary") is None
    # The other container arguments are kept, in order, through every patch.
    args = get(kube_client, name)["spec"]["predictor"]["containers"][0]["args"]
    assert args[:-1] == stored["spec"]["predictor"]["containers"][0]["args"][:-1]
