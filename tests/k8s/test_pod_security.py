"""Every pod Flywheel creates meets Pod Security "restricted" and Flywheel's hardening rules."""

from __future__ import annotations

import pytest

from .conftest import Rendering
from .pod_security import hardening_violations, mounts_token, pod_specs, restricted_violations

pytestmark = pytest.mark.k8s

# Pods that need the Kubernetes API, and why: the monitor patches its InferenceService.
TOKEN_ALLOWED = {"CronJob/flywheel-monitor"}


def _pods(renderings: list[Rendering]) -> list[tuple[str, str, dict, Rendering]]:
    return [
        (rendering.name, where, pod, rendering)
        for rendering in renderings
        for obj in rendering.objects
        for where, pod in pod_specs(obj)
    ]


def test_should_find_the_predictor_prediction_service_and_monitor_pods(all_renderings):
    for rendering in all_renderings:
        found = {where for _, where, _, _ in _pods([rendering])}
        assert {
            "InferenceService/pickup-eta.predictor",
            "Deployment/flywheel-prediction-service",
            "CronJob/flywheel-monitor",
        } <= found, rendering.name


def test_should_meet_pod_security_restricted_in_every_pod(all_renderings):
    problems = [
        f"{name} {where}: {problem}"
        for name, where, pod, _ in _pods(all_renderings)
        for problem in restricted_violations(pod)
    ]
    assert problems == []


def test_should_set_requests_limits_and_read_only_root_in_every_container(all_renderings):
    problems = [
        f"{name} {where}: {problem}"
        for name, where, pod, _ in _pods(all_renderings)
        for problem in hardening_violations(pod)
    ]
    assert problems == []


def test_should_mount_an_api_token_only_where_the_api_is_used(all_renderings):
    for name, where, pod, rendering in _pods(all_renderings):
        accounts = {sa["metadata"]["name"]: sa for sa in rendering.of_kind("ServiceAccount")}
        # Only the monitor, and only where it has a Role to use (the rollout step's).
        allowed = where in TOKEN_ALLOWED and bool(rendering.of_kind("Role"))
        assert mounts_token(pod, accounts) == allowed, f"{name} {where}"


def test_should_flag_a_root_privileged_pod():
    pod = {
        "containers": [{"name": "bad", "securityContext": {"privileged": True, "runAsUser": 0}}],
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
    }
    problems = restricted_violations(pod)
    assert any("privileged" in p for p in problems)
    assert any("hostPath" in p for p in problems)
    assert any("runAsNonRoot" in p for p in problems)
    assert any("seccompProfile" in p for p in problems)
