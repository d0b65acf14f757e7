"""Every rendered object validates against the schemas of the Kubernetes versions we support,
the InferenceService against KServe's own API definition, Istio objects against Istio's API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import find_tool, run
from .kserve_schema import inferenceservice_schema

pytestmark = pytest.mark.k8s

# Oldest and newest Kubernetes minor versions Flywheel supports (Chart.yaml kubeVersion >=1.30).
KUBERNETES_VERSIONS = ["1.30.0", "1.34.0"]
HERE = Path(__file__).parent
VALIDATOR = HERE / "schema_validate.py"


@pytest.fixture(scope="session")
def crd_args(render_dir: Path) -> list[str]:
    schema, unresolved = inferenceservice_schema()
    path = render_dir / "inferenceservice.schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    # Types the SDK names but does not define are only status or very new pod fields.
    assert unresolved <= {
        "V1Time",
        "KnativeURL",
        "KnativeCondition",
        "KnativeAddressable",
        "V1beta1MetricQuantity",
        "KnativeDevServingPkgApisServingV1TrafficTarget",
        "V1ContainerRestartRule",
        "V1PodSchedulingGroup",
        "K8sIoApiAppsV1DeploymentStrategy",
        "K8sIoApiAutoscalingV2HorizontalPodAutoscalerBehavior",
    }, unresolved
    return [
        "--crd",
        f"InferenceService={path}",
        "--crd",
        f"RequestAuthentication={HERE / 'schemas' / 'istio-requestauthentication-v1.json'}",
        "--crd",
        f"AuthorizationPolicy={HERE / 'schemas' / 'istio-authorizationpolicy-v1.json'}",
    ]


def _validate(crd_args: list[str], files: list[Path]):
    versions = [arg for v in KUBERNETES_VERSIONS for arg in ("--kube-version", v)]
    return run([find_tool("python"), str(VALIDATOR), *versions, *crd_args, *map(str, files)])


def test_every_rendered_object_should_validate(all_renderings, crd_args):
    result = _validate(crd_args, [r.path for r in all_renderings])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        (
            "Deployment",
            lambda o: o["spec"]["template"]["spec"]["containers"][0].update(
                imagePullPolicyy="Always"
            ),
            "imagePullPolicyy",
        ),
        ("InferenceService", lambda o: o["spec"]["predictor"].update(minReplica=1), "minReplica"),
        ("InferenceService", lambda o: o["spec"]["predictor"]["containers"][0].pop("name"), "name"),
        ("CronJob", lambda o: o["spec"].update(concurrencyPolicy=3), "concurrencyPolicy"),
    ],
    ids=["deployment-typo", "isvc-typo", "isvc-missing-name", "cronjob-type"],
)
def test_should_reject_a_broken_object(
    chart_renderings, crd_args, render_dir, kind, mutate, expected
):
    obj = json.loads(json.dumps(chart_renderings["minimal"].one(kind)))
    mutate(obj)
    path = render_dir / f"broken-{kind}-{expected}.yaml"
    path.write_text(yaml.safe_dump(obj), encoding="utf-8")
    result = _validate(crd_args, [path])
    assert result.returncode == 1
    assert expected in result.stdout
