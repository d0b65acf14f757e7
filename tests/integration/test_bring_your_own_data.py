"""Bring your own data: a real dataset that ships inside scikit-learn, through the same pipeline."""

from __future__ import annotations

import pytest
import yaml
from sklearn.datasets import load_diabetes

from flywheel_mlops.registry import Registry
from flywheel_mlops.spec import load_spec
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
