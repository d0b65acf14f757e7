"""Fixtures for the rollout's tests: a registry with a good and a weak version, labelled traffic,
and a recording stand-in for the Kubernetes API.

tests/conftest.py registers this module as a plugin: tests name its fixtures as parameters.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes.client.exceptions import ApiException

from flywheel_mlops import models
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.predictions.records import FeedbackItem, PredictionRow
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import write_bundle
from flywheel_mlops.training.register import reference_sample

MODEL = "pickup-eta"


@pytest.fixture
def registry(tmp_path: Path, bundle_contents, clean_frame, spec) -> Registry:
    """v0001 (good, champion) and v0002 (a ridge fitted on 40 rows: clearly worse).

    Their references hold 2,000 rows, as real bundles hold thousands, so `flywheel monitor`
    measures drift with the methods Evidently picks for a reference of that size.
    """
    store = Registry(tmp_path / "registry")
    small = clean_frame.head(40)
    weak = models.fit(
        "ridge",
        {"alpha": 1.0},
        bundle_contents.features.transform(small),
        small[spec.target].to_numpy(),
        seed=0,
    )
    for folder, model, family in (
        ("good", bundle_contents.model, bundle_contents.family),
        ("weak", weak, "ridge"),
    ):
        reference = reference_sample(spec, clean_frame, model, bundle_contents.features, 2000)
        write_bundle(
            tmp_path / folder,
            replace(bundle_contents, model=model, family=family, reference=reference),
        )
    store.set_alias(MODEL, store.publish(MODEL, tmp_path / "good"), reason="first")
    store.publish(MODEL, tmp_path / "weak")
    return store


@pytest.fixture
def labelled(clean_frame, spec) -> pd.DataFrame:
    """600 recent trips with their real pickup time as `actual`."""
    return clean_frame.tail(600).rename(columns={spec.target: "actual"}).reset_index(drop=True)


def log_traffic(store: PredictionStore, frame: pd.DataFrame, at: datetime) -> None:
    """Log `frame` as served traffic at `at`, then its `actual` column as feedback.

    Columns model_version, prediction and actual; every other column is a feature as sent.
    """
    prefix = uuid.uuid4().hex[:8]
    features = frame.drop(columns=["model_version", "prediction", "actual"])
    for column in features.select_dtypes(include=["datetime", "datetimetz"]):
        features[column] = features[column].map(pd.Timestamp.isoformat)
    records = [{str(k): v for k, v in r.items()} for r in features.to_dict(orient="records")]
    store.log_predictions(
        PredictionRow(f"{prefix}-{i}", 0, MODEL, version, record, float(prediction), at)
        for i, (version, record, prediction) in enumerate(
            zip(frame["model_version"], records, frame["prediction"], strict=True)
        )
    )
    store.record_feedback(
        FeedbackItem(f"{prefix}-{i}", float(actual)) for i, actual in enumerate(frame["actual"])
    )


def served(
    trips: pd.DataFrame,
    champion_error: float = 1.0,
    canary_error: float = 1.0,
    canary: str = "v0002",
    champion: str = "v0001",
    canary_rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Live traffic on real trips (features and `actual`): the canary serves every fifth request,
    or the rows `canary_rows` marks, the champion the rest; each logged prediction is off by
    that version's error, as the version reported it at serving time."""
    rows = len(trips)
    on_canary = np.arange(rows) % 5 == 0 if canary_rows is None else canary_rows
    rng = np.random.default_rng(0)
    error = np.where(on_canary, canary_error, champion_error)
    return trips.assign(
        model_version=np.where(on_canary, canary, champion),
        prediction=trips["actual"].to_numpy() + rng.choice([-1, 1], rows) * error,
    )


class RecordingCustomObjectsApi:
    """MOCK: records the calls KServeRouter makes with the signatures of
    kubernetes.client.CustomObjectsApi, and applies each patch as the client and the API server
    together do: the client sends every body as `application/merge-patch+json`, so a JSON-patch
    list is a 400, a stale resourceVersion a 409, and a merge patch replaces lists whole.
    tests/e2e/test_apiserver.py runs the same router against a real API server."""

    def __init__(self, args: list[str]):
        self.spec: dict[str, Any] = {"predictor": {"containers": [{"args": args}]}}
        self.resource_version = 1
        self.gets: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        self.gets.append((namespace, name))
        return {
            "metadata": {"resourceVersion": str(self.resource_version)},
            "spec": copy.deepcopy(self.spec),
        }

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        if not isinstance(body, dict):
            raise ApiException(status=400, reason="cannot unmarshal array into a merge patch")
        expected = body.get("metadata", {}).get("resourceVersion")
        if expected not in (None, str(self.resource_version)):
            raise ApiException(status=409, reason="Conflict")
        self.patches.append(body)
        self.spec = merge_patch(self.spec, body["spec"])
        self.resource_version += 1


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
