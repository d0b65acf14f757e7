"""Safe rollout: the offline gate, the live canary verdict, and what each router changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops import models
from flywheel_mlops.bundle import write_bundle
from flywheel_mlops.registry import Registry
from flywheel_mlops.rollout import (
    KServeRouter,
    LocalRouter,
    RolloutLog,
    gate_candidate,
    judge_canary,
)

MODEL = "pickup-eta"


@pytest.fixture
def registry(tmp_path: Path, bundle_contents, clean_frame, spec) -> Registry:
    """v0001 (good, champion) and v0002 (a ridge fitted on 40 rows: clearly worse)."""
    store = Registry(tmp_path / "registry")
    write_bundle(tmp_path / "good", bundle_contents)
    small = clean_frame.head(40)
    weak = models.fit(
        "ridge",
        {"alpha": 1.0},
        bundle_contents.features.transform(small),
        small[spec.target].to_numpy(),
        seed=0,
    )
    reference = bundle_contents.reference.copy()
    reference["prediction"] = weak.predict(bundle_contents.features.transform(reference))
    write_bundle(
        tmp_path / "weak", replace(bundle_contents, model=weak, family="ridge", reference=reference)
    )
    store.set_alias(MODEL, store.publish(MODEL, tmp_path / "good"), reason="first")
    store.publish(MODEL, tmp_path / "weak")
    return store


@pytest.fixture
def labelled(clean_frame, spec) -> pd.DataFrame:
    return clean_frame.tail(600).rename(columns={spec.target: "actual"}).reset_index(drop=True)


def test_gate_rejects_a_candidate_worse_on_recent_labelled_data(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001"), labelled
    )
    assert decision.action == "reject"
    assert decision.numbers["candidate_mae"] > decision.numbers["champion_mae"]


def test_gate_sends_a_better_candidate_to_canary(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0001"), registry.load(MODEL, "v0002"), labelled
    )
    assert decision.action == "canary"
    assert "worth a canary" in decision.reason


def test_gate_waits_for_enough_labelled_rows(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001"), labelled.head(20)
    )
    assert decision.action == "wait"


def _served(champion_error: float, candidate_error: float, rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    actual = rng.uniform(3, 20, rows)
    version = np.where(np.arange(rows) % 5 == 0, "v0002", "v0001")
    error = np.where(version == "v0002", candidate_error, champion_error)
    return pd.DataFrame(
        {
            "model_version": version,
            "actual": actual,
            "prediction": actual + rng.choice([-1, 1], rows) * error,
        }
    )


def test_a_canary_worse_live_is_rolled_back_and_the_champion_untouched(registry, tmp_path):
    router, log = LocalRouter(registry, MODEL), RolloutLog(tmp_path / "rollouts.jsonl")
    router.start_canary("v0002", 20, "gate passed")
    assert registry.alias(MODEL, "canary").traffic_percent == 20
    decision = log.record(judge_canary(_served(1.0, 3.0), "v0002", "v0001", min_rows=50))
    assert decision.action == "rollback"
    router.roll_back("v0002", decision.reason)
    assert registry.alias(MODEL, "canary") is None
    assert registry.resolve(MODEL) == "v0001"
    assert [d.action for d in log.read()] == ["rollback"]
    assert "worse live" in log.read()[0].reason


def test_a_canary_better_live_is_promoted(registry):
    router = LocalRouter(registry, MODEL)
    router.start_canary("v0002", 20, "gate passed")
    decision = judge_canary(_served(3.0, 1.0), "v0002", "v0001", min_rows=50)
    assert decision.action == "promote"
    router.promote("v0002", decision.reason)
    assert registry.resolve(MODEL) == "v0002"
    assert registry.alias(MODEL, "canary") is None


def test_canary_verdict_waits_for_labelled_traffic_on_both_versions():
    decision = judge_canary(_served(1.0, 3.0, rows=100), "v0002", "v0001", min_rows=50)
    assert decision.action == "wait"


class RecordingCustomObjectsApi:
    """MOCK: no Kubernetes API server runs here; this records the calls KServeRouter makes
    with the signatures of kubernetes.client.CustomObjectsApi."""

    def __init__(self, args: list[str]):
        self.spec: dict[str, Any] = {"predictor": {"containers": [{"args": args}]}}
        self.patches: list[list[dict[str, Any]]] = []

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        return {"spec": self.spec}

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.patches.append(body)


def test_kserve_router_patches_model_dir_and_canary_share(registry):
    api = RecordingCustomObjectsApi(["--model_name=pickup-eta", "--model_dir=s3://m/v0001"])
    router = KServeRouter(api, "flywheel", "pickup-eta", registry, MODEL)
    router.start_canary("v0002", 10, "gate passed")
    (patch,) = api.patches
    args = patch[0]["value"]
    assert args[0] == "--model_name=pickup-eta"
    assert args[-1].endswith("/pickup-eta/versions/v0002")
    assert patch[1] == {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}
    router.roll_back("v0002", "worse live")
    assert api.patches[-1][1]["value"] == 0
    assert api.patches[-1][0]["value"][-1].endswith("/versions/v0001")
    assert registry.resolve(MODEL) == "v0001"
