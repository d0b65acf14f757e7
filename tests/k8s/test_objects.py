"""What every install (chart scenario or kustomize overlay) must hold, object by object."""

from __future__ import annotations

import pytest

from .conftest import Rendering
from .pod_security import pod_specs

pytestmark = pytest.mark.k8s

# Seconds each server may take after SIGTERM to finish in-flight work (documented next to the
# grace periods in the templates and the base manifests).
DRAIN_SECONDS = {"InferenceService": 20, "Deployment": 15}


def _pod_labels(obj: dict) -> dict[str, str]:
    """Labels the pods of a workload carry (KServe copies spec.predictor.labels)."""
    if obj["kind"] == "InferenceService":
        return obj["spec"]["predictor"].get("labels", {})
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def _workloads(rendering: Rendering) -> list[dict]:
    return [
        o for o in rendering.objects if o["kind"] in {"InferenceService", "Deployment", "CronJob"}
    ]


def _selects(selector: dict, labels: dict) -> bool:
    match_labels = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in match_labels.items()) and not selector.get(
        "matchExpressions"
    )


def _knative(obj: dict) -> bool:
    mode = obj["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
    return mode in {"Knative", "Serverless"}


@pytest.fixture(params=["chart", "overlay"])
def renderings(request, chart_renderings, overlay_renderings) -> list[Rendering]:
    return list((chart_renderings if request.param == "chart" else overlay_renderings).values())


def test_pdb_selectors_should_match_the_pods_they_protect(renderings):
    for rendering in renderings:
        pdbs = rendering.of_kind("PodDisruptionBudget")
        assert len(pdbs) == 2, rendering.name
        for pdb in pdbs:
            protected = [
                w
                for w in _workloads(rendering)
                if _selects(pdb["spec"]["selector"], _pod_labels(w))
            ]
            assert len(protected) == 1, f"{rendering.name} {pdb['metadata']['name']}"
            assert protected[0]["kind"] in {"InferenceService", "Deployment"}


def test_network_policies_should_deny_by_default_and_allow_each_workload(renderings):
    for rendering in renderings:
        policies = rendering.of_kind("NetworkPolicy")
        deny = [p for p in policies if p["metadata"]["name"].endswith("default-deny")]
        assert len(deny) == 1
        assert "ingress" not in deny[0]["spec"]
        assert "egress" not in deny[0]["spec"]
        assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for workload in _workloads(rendering):
            labels = _pod_labels(workload)
            assert _selects(deny[0]["spec"]["podSelector"], labels), workload["metadata"]["name"]
            own = [
                p
                for p in policies
                if p is not deny[0]
                and _selects(p["spec"]["podSelector"], labels)
                and "egress" in p["spec"]
                and not p["metadata"]["name"].endswith("allow-dns")
            ]
            assert own, f"{rendering.name}: no allow-list for {workload['metadata']['name']}"


def test_monitor_should_accept_no_connections(renderings):
    for rendering in renderings:
        policy = next(
            p
            for p in rendering.of_kind("NetworkPolicy")
            if p["metadata"]["name"].endswith("-monitor")
        )
        assert "Ingress" in policy["spec"]["policyTypes"]
        assert not policy["spec"].get("ingress")


def test_grace_period_should_cover_pre_stop_and_drain(renderings):
    for rendering in renderings:
        for workload in _workloads(rendering):
            if workload["kind"] not in DRAIN_SECONDS:
                continue
            for where, pod in pod_specs(workload):
                container = pod["containers"][0]
                if _knative(workload):
                    # Knative forbids lifecycle hooks; queue-proxy drains before SIGTERM.
                    assert "lifecycle" not in container
                    continue
                sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                grace = pod["terminationGracePeriodSeconds"]
                assert grace > sleep + DRAIN_SECONDS[workload["kind"]], f"{rendering.name} {where}"


def test_monitor_cronjob_should_never_overlap_or_hang(renderings):
    for rendering in renderings:
        spec = rendering.one("CronJob")["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] > 0
        job = spec["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] > 0
        assert 0 <= job["backoffLimit"] <= 3
        assert job["template"]["spec"]["containers"][0]["command"] == ["flywheel", "monitor"]


def test_rbac_should_be_namespaced_and_minimal(renderings):
    for rendering in renderings:
        kinds = {o["kind"] for o in rendering.objects}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
        if "Role" not in kinds:
            # No rollout step here (Standard/RawDeployment): no API access at all.
            assert "RoleBinding" not in kinds, rendering.name
            continue
        role = rendering.one("Role")
        assert role["rules"] == [
            {
                "apiGroups": ["serving.kserve.io"],
                "resources": ["inferenceservices"],
                "resourceNames": ["pickup-eta"],
                "verbs": ["get", "patch"],
            }
        ]
        binding = rendering.one("RoleBinding")
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        monitor_pod = rendering.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": monitor_pod["serviceAccountName"],
                "namespace": role["metadata"]["namespace"],
            }
        ]


def test_secrets_should_be_referenced_by_name_never_defined(renderings):
    for rendering in renderings:
        assert not rendering.of_kind("Secret"), rendering.name
        for config in rendering.of_kind("ConfigMap"):
            for key in config["data"]:
                assert not any(
                    word in key for word in ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL")
                ), key


def test_inference_service_should_run_the_flywheel_predictor(renderings):
    for rendering in renderings:
        isvc = rendering.one("InferenceService")
        predictor = isvc["spec"]["predictor"]
        container = predictor["containers"][0]
        namespace = isvc["metadata"]["namespace"]
        assert container["name"] == "kserve-container"
        assert "--model_name=pickup-eta" in container["args"]
        assert {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} <= set(predictor)
        assert predictor["logger"] == {
            "mode": "all",
            "url": f"http://flywheel-prediction-service.{namespace}.svc.cluster.local:8000/v1/events",
        }
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/pickup-eta/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_predictor_should_read_its_bundle_itself_so_no_storage_initializer_is_injected(renderings):
    for rendering in renderings:
        predictor = rendering.one("InferenceService")["spec"]["predictor"]
        container = predictor["containers"][0]
        model_dir = next(a for a in container["args"] if a.startswith("--model_dir="))
        assert model_dir.startswith("--model_dir=s3://")
        assert "/pickup-eta/versions/v" in model_dir
        assert "storageUri" not in predictor
        assert "model" not in predictor
        assert all(e["name"] != "STORAGE_URI" for e in container.get("env", []))


def test_storage_initializer_mode_should_hand_kserve_the_uri(helm_template):
    result = helm_template({"predictor": {"modelLoading": "storageInitializer"}})
    assert result.returncode == 0, result.stderr
    assert "--model_dir=/mnt/models" in result.stdout
    assert "name: STORAGE_URI" in result.stdout


def test_prediction_service_should_expose_port_8000_with_health_endpoints(renderings):
    for rendering in renderings:
        deployment = rendering.one("Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        service = rendering.one("Service")
        assert service["spec"]["ports"][0]["port"] == 8000
        assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(deployment))


def test_overlays_should_enforce_restricted_on_their_namespace(overlay_renderings):
    for rendering in overlay_renderings.values():
        namespace = rendering.one("Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        names = {
            o["metadata"].get("namespace") for o in rendering.objects if o["kind"] != "Namespace"
        }
        assert names == {namespace["metadata"]["name"]}


def test_prod_overlay_should_keep_the_container_when_resizing_it(overlay_renderings):
    container = overlay_renderings["prod"].one("InferenceService")["spec"]["predictor"][
        "containers"
    ][0]
    assert container["image"].startswith("ghcr.io/flywheel-mlops/flywheel-predictor:")
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
