"""The Helm chart lints clean, renders every scenario, documents and types every value."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import CHART, SCENARIOS, find_tool, run

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_should_lint_clean_in_strict_mode(values):
    result = run([find_tool("helm"), "lint", "--strict", str(CHART), "-f", str(values)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_should_cover_the_install_scenarios_of_the_issue():
    names = {p.name.removesuffix("-values.yaml") for p in SCENARIOS}
    assert {"minimal", "production", "serverless", "raw-deployment", "auth"} <= names


def test_should_render_every_scenario(chart_renderings):
    for rendering in chart_renderings.values():
        kinds = {obj["kind"] for obj in rendering.objects}
        assert {
            "InferenceService",
            "Deployment",
            "Service",
            "CronJob",
            "ServiceAccount",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "ConfigMap",
        } <= kinds
        # The Role exists only for the rollout step, which runs where KServe splits traffic.
        mode = rendering.one("InferenceService")["metadata"]["annotations"][
            "serving.kserve.io/deploymentMode"
        ]
        assert ({"Role", "RoleBinding"} <= kinds) == (mode == "Knative"), rendering.name


@pytest.mark.parametrize(
    "values",
    [
        {"replicas": 2},
        {"predictor": {"scaleMetirc": "cpu"}},
        {"images": {"predictor": {"digets": "sha256:" + "0" * 64}}},
        {"networkPolicy": {"enabeld": False}},
        {"monitor": {"resources": {"requests": {"cpu": "1", "memory": "1Gi", "gpu": 1}}}},
        {"kserve": {"deploymentMode": "Raw"}},
        {"images": {"pipeline": {"digest": "latest"}}},
        {"monitor": {"rollout": {"canaryPercent": 100}}},
    ],
    ids=[
        "top-level",
        "predictor",
        "image",
        "networkPolicy",
        "resources",
        "enum",
        "digest",
        "canary-percent",
    ],
)
def test_should_reject_misspelt_or_invalid_values(helm_template, values):
    result = helm_template(values)
    assert result.returncode != 0
    # Helm names the offending path, e.g. "- at '/predictor': additional properties ...".
    assert "- at '" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"monitoring": {"replicas": 3}}, "`monitoring` was renamed to `predictionService`"),
        (
            {"networkPolicy": {"monitoringIngressFrom": []}},
            "`networkPolicy.monitoringIngressFrom` was renamed to "
            "`networkPolicy.predictionServiceIngressFrom`",
        ),
    ],
    ids=["monitoring", "monitoringIngressFrom"],
)
def test_should_refuse_the_values_renamed_in_0_2_naming_the_new_key(helm_template, values, message):
    result = helm_template(values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_should_refuse_request_based_scaling_without_knative(helm_template):
    result = helm_template(
        {"kserve": {"deploymentMode": "Standard"}, "predictor": {"scaleMetric": "rps"}}
    )
    assert result.returncode != 0
    assert "needs kserve.deploymentMode Knative" in result.stderr


def test_should_demand_issuer_and_jwks_when_auth_is_on(helm_template):
    result = helm_template({"auth": {"enabled": True}})
    assert result.returncode != 0
    assert "auth.issuer" in result.stderr


def _value_keys(lines: list[str]) -> list[tuple[int, str]]:
    """(line index, key) of every mapping key in values.yaml outside list items."""
    keys: list[tuple[int, str]] = []
    list_indents: list[int] = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        list_indents = [i for i in list_indents if i < indent]
        if stripped.startswith("- "):
            list_indents.append(indent)
            continue
        match = re.match(r"([A-Za-z][\w.-]*):", stripped)
        if match and not list_indents:
            keys.append((index, match[1]))
    return keys


def test_should_document_every_value_with_a_helm_docs_comment():
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    undocumented = []
    for index, key in _value_keys(lines):
        comment: list[str] = []
        previous = index - 1
        while previous >= 0 and lines[previous].lstrip().startswith("#"):
            comment.insert(0, lines[previous].strip())
            previous -= 1
        if not comment or not comment[0].startswith("# --"):
            undocumented.append(f"line {index + 1}: {key}")
    assert undocumented == []


def test_should_type_every_documented_value_in_the_schema():
    schema = yaml.safe_load((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def walk(value, node, path):
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, child in value.items():
                assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
                walk(child, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "values")


def test_should_keep_helpers_to_names_and_labels():
    helpers = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
    defined = re.findall(r'define "([^"]+)"', helpers)
    assert defined
    for name in defined:
        # Names, labels and images; plus the one predicate three templates share (whether the
        # monitor takes rollout steps), so the condition is written once.
        assert re.search(r"(name|Name|fullname|labels|Labels|image)$", name) or name == (
            "flywheel.monitor.rollout"
        ), name


def test_notes_should_show_v1_and_v2_calls_and_a_feedback_post():
    notes = (CHART / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    for expected in (":predict", "/v2/models/", "/infer", "/v1/feedback", "curl"):
        assert expected in notes


def test_should_annotate_the_deployment_mode_of_each_scenario(chart_renderings):
    modes = {
        name: rendering.one("InferenceService")["metadata"]
        .get("annotations", {})
        .get("serving.kserve.io/deploymentMode")
        for name, rendering in chart_renderings.items()
    }
    assert modes["raw-deployment"] == "RawDeployment"
    assert modes["serverless"] == "Knative"
    assert modes["minimal"] == "Standard"


def test_should_leave_knative_the_draining_in_serverless_mode(chart_renderings):
    predictor = chart_renderings["serverless"].one("InferenceService")["spec"]["predictor"]
    container = predictor["containers"][0]
    # Knative rejects lifecycle hooks and a pod-level securityContext by default.
    assert "lifecycle" not in container
    assert "securityContext" not in predictor
    assert container["securityContext"]["runAsNonRoot"] is True


def test_should_render_mesh_authentication_only_when_enabled(chart_renderings):
    for name, rendering in chart_renderings.items():
        kinds = {obj["kind"] for obj in rendering.objects}
        has_auth = {"RequestAuthentication", "AuthorizationPolicy"} <= kinds
        assert has_auth == (name == "auth"), name
    policies = chart_renderings["auth"].of_kind("AuthorizationPolicy")
    service = next(p for p in policies if p["metadata"]["name"].endswith("prediction-service"))
    logger_rule = service["spec"]["rules"][1]
    assert logger_rule["to"][0]["operation"]["paths"] == ["/v1/events"]
    assert logger_rule["from"][0]["source"]["principals"] == [
        "cluster.local/ns/flywheel/sa/flywheel-predictor"
    ]


def test_should_pin_images_by_digest_when_given(chart_renderings):
    predictor = chart_renderings["production"].one("InferenceService")["spec"]["predictor"]
    container = predictor["containers"][0]
    assert re.fullmatch(r"ghcr\.io/acme/flywheel-predictor@sha256:[0-9a-f]{64}", container["image"])
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_should_use_the_existing_secrets_of_the_production_scenario(chart_renderings):
    rendering = chart_renderings["production"]
    service = rendering.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in service["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs["FLYWHEEL_DATABASE_URL"] == {"name": "flywheel-postgres", "key": "sqlalchemy-url"}
    assert refs["FLYWHEEL_API_TOKEN"]["name"] == "flywheel-api-token"
    predictor = rendering.one("InferenceService")["spec"]["predictor"]["containers"][0]
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in predictor["env"] if "valueFrom" in e}
    assert keys["AWS_ACCESS_KEY_ID"] == {"name": "flywheel-s3-credentials", "key": "access-key-id"}


def _monitor_container(objects: list[dict]) -> dict:
    (job,) = [o for o in objects if o["kind"] == "CronJob"]
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def test_should_run_the_rollout_step_in_the_monitor_job_where_kserve_splits_traffic(
    chart_renderings,
):
    for name, rendering in chart_renderings.items():
        container = _monitor_container(rendering.objects)
        assert container["command"] == ["flywheel", "monitor"]
        mode = rendering.one("InferenceService")["metadata"]["annotations"][
            "serving.kserve.io/deploymentMode"
        ]
        expected = ["--rollout", "kserve", "--canary-percent", "25"] if mode == "Knative" else None
        assert container.get("args") == expected, name
        env = {e["name"]: e for e in container["env"]}
        isvc = rendering.one("InferenceService")["metadata"]["name"]
        assert env["FLYWHEEL_INFERENCESERVICE"]["value"] == isvc
        assert env["FLYWHEEL_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.namespace"
        )
        if expected:
            assert rendering.one("Role")["rules"][0]["resourceNames"] == [isvc]
        else:
            assert not rendering.of_kind("Role"), name


def test_should_keep_the_monitors_memory_in_its_database_not_in_the_pods_scratch(
    chart_renderings,
):
    """Each CronJob run is a new pod with a new emptyDir: the policy state (debounce, cooldown)
    must live in the loop database the monitor reaches through FLYWHEEL_DATABASE_URL."""
    for name, rendering in chart_renderings.items():
        container = _monitor_container(rendering.objects)
        assert "--state" not in (container.get("args") or []), name
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["FLYWHEEL_DATABASE_URL"]["valueFrom"], name


@pytest.mark.parametrize(
    ("rollout", "args"),
    [
        ({"enabled": False}, None),
        ({"canaryPercent": 10}, ["--rollout", "kserve", "--canary-percent", "10"]),
    ],
    ids=["disabled", "canary-percent"],
)
def test_should_follow_the_rollout_values(helm_template, rollout, args):
    result = helm_template(
        {"kserve": {"deploymentMode": "Knative"}, "monitor": {"rollout": rollout}}
    )
    assert result.returncode == 0, result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert _monitor_container(objects).get("args") == args


def _predictor(objects: list[dict]) -> dict:
    (service,) = [o for o in objects if o["kind"] == "InferenceService"]
    return service["spec"]["predictor"]


def test_should_pass_the_request_limits_to_the_predictor(helm_template):
    limits = {
        "maxConcurrency": 2,
        "maxBatch": 500,
        "maxBodyBytes": 1048576,
        "maxJsonDepth": 32,
        "bodyTimeoutSeconds": 10,
        "headerTimeoutSeconds": 5,
        "maxHeaderBytes": 8192,
    }
    result = helm_template({"predictor": {"limits": limits, "containerConcurrency": 8}})
    assert result.returncode == 0, result.stderr
    predictor = _predictor([d for d in yaml.safe_load_all(result.stdout) if d])
    args = predictor["containers"][0]["args"]
    assert {
        "--max_concurrency=2",
        "--max_batch=500",
        "--max_body_bytes=1048576",
        "--max_json_depth=32",
        "--body_timeout=10",
        "--header_timeout=5",
        "--max_header_bytes=8192",
    } <= set(args)
    assert predictor["containerConcurrency"] == 8


def test_should_leave_container_concurrency_to_kserve_by_default(chart_renderings):
    for rendering in chart_renderings.values():
        predictor = rendering.one("InferenceService")["spec"]["predictor"]
        assert "containerConcurrency" not in predictor
        assert "--max_concurrency=64" in predictor["containers"][0]["args"]


def test_should_reject_a_limit_that_is_not_a_count(helm_template):
    result = helm_template({"predictor": {"limits": {"maxConcurrency": "many"}}})
    assert result.returncode != 0
    assert "maxConcurrency" in result.stderr
