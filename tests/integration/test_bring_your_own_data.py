"""Bring your own data: a real dataset that ships inside scikit-learn, through the same pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sklearn.datasets import load_diabetes

from flywheel_mlops.loop.retrain import submit_retrain
from flywheel_mlops.registry import Registry
from flywheel_mlops.spec import DatasetSpec, load_spec
from flywheel_mlops.testing.quick_train import register_frame
from flywheel_mlops.training.local_runner import TrainingRequest, run_training

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]

DIABETES_SPEC = {
    "name": "diabetes-progression",
    "target": "progression",
    "numeric": ["age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
    "categorical": ["sex"],
    # A one-feature rule a clinician might use: scaled BMI around the cohort mean.
    "baseline": "152 + 950 * bmi",
    "min_rows": 200,
}


def test_diabetes_csv_trains_registers_and_serves_from_the_bundle(tmp_path):
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame["sex"] = frame["sex"].map(lambda v: "a" if v > 0 else "b")
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    (tmp_path / "diabetes.yaml").write_text(yaml.safe_dump(DIABETES_SPEC))
    spec = load_spec(tmp_path / "diabetes.yaml")
    request = TrainingRequest(
        spec,
        str(tmp_path / "diabetes.csv"),
        str(tmp_path / "registry"),
        families=("ridge", "hist_gbm"),
    )
    outcome = run_training(request, tmp_path / "runs")
    assert outcome.version == "v0001"
    assert outcome.promoted
    assert outcome.evaluation["test"]["mae"] < outcome.evaluation["baseline"]["mae"]
    bundle = Registry(tmp_path / "registry").load("diabetes-progression")
    assert bundle.schema.names == [*DIABETES_SPEC["numeric"], "sex"]
    assert bundle.predict(frame.head(5)).shape == (5,)
    assert bundle.spec == spec, "the bundle carries the spec it was trained with"


def test_a_retrain_submitted_for_a_byod_bundle_trains_with_its_own_spec(tmp_path, kfp_api):
    """The monitor's retrain path (loop.retrain) sends the served bundle's spec to KFP."""
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame["sex"] = frame["sex"].map(lambda v: "a" if v > 0 else "b")
    (tmp_path / "diabetes.yaml").write_text(yaml.safe_dump(DIABETES_SPEC))
    spec = load_spec(tmp_path / "diabetes.yaml")
    register_frame(spec, frame, tmp_path / "registry", families=("ridge",))
    bundle = Registry(tmp_path / "registry").load(spec.name)
    host, state = kfp_api
    at = datetime(2026, 3, 20, tzinfo=UTC)
    submit_retrain(
        host, bundle, "s3://models", "s3://lake/diabetes/*.parquet", "", at - timedelta(days=7),
        at, "live MAE 1.8x test MAE",
    )  # fmt: skip
    (run,) = state["runs"]
    params = run["runtime_config"]["parameters"]
    submitted = DatasetSpec.model_validate_json(params["dataset_spec"])
    assert submitted == spec
    assert (submitted.target, submitted.numeric) == ("progression", DIABETES_SPEC["numeric"])
    assert params["promote_alias"] == "candidate"
    assert params["data_uri"] == "s3://lake/diabetes/*.parquet"
