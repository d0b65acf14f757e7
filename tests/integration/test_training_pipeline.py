"""The training pipeline through the KFP local runner: the same components as on a cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.errors import ValidationFailed
from flywheel_mlops.registry import Registry
from flywheel_mlops.rollout import gate_candidate
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import load_spec
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.ingest import ingest
from flywheel_mlops.training.local_runner import TrainingRequest, run_training

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def data(workspace):
    return simulate(SimulationConfig(rows=5000, days=14, seed=3), workspace / "data")


@pytest.fixture(scope="module")
def first_run(workspace, data):
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(data.trips_path),
        str(workspace / "registry"),
        side_uri=str(data.weather_path),
    )
    return run_training(request, workspace / "runs", log_path=workspace / "run.log")


def test_first_run_registers_and_promotes_a_model_far_better_than_the_baseline(
    first_run, workspace
):
    assert first_run.version == "v0001"
    assert first_run.promoted
    evaluation = first_run.evaluation
    assert evaluation["test"]["mae"] <= 0.8 * evaluation["baseline"]["mae"]
    registry = Registry(workspace / "registry")
    assert registry.resolve("pickup-eta") == "v0001"
    bundle = registry.load("pickup-eta")
    reference = bundle.reference()
    assert np.allclose(bundle.predict(reference), reference["prediction"], atol=1e-4)
    rows = bundle.metadata["rows"]
    assert rows["test"] == evaluation["test"]["n"]
    assert rows["train"] > rows["validation"] > 0
    card = (bundle.path / "model_card.md").read_text()
    assert f"train {rows['train']}, validation {rows['validation']}" in card
    assert "trained on events from 2026-" in card
    assert all(f"| {family} |" in card for family in ("xgboost", "hist_gbm", "ridge"))


def test_the_same_model_again_is_registered_but_not_promoted(first_run, workspace, data):
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(data.trips_path),
        str(workspace / "registry"),
        side_uri=str(data.weather_path),
    )
    second = run_training(request, workspace / "runs")
    assert second.version == "v0002"
    assert not second.promoted
    assert second.evaluation["champion"]["version"] == "v0001"
    assert Registry(workspace / "registry").resolve("pickup-eta") == "v0001"


def test_a_broken_batch_stops_at_validate_and_leaves_the_registry_alone(first_run, workspace, data):
    broken = pd.read_parquet(data.trips_path).drop(columns="congestion")
    broken["driver_speed"] = broken["driver_speed"].where(np.arange(len(broken)) % 2 == 0)
    broken["incidents"] = broken["incidents"].astype(object)
    broken.loc[broken.index[::3], "incidents"] = "many"
    path = workspace / "broken.csv"  # a CSV export is where text lands in numeric columns
    broken.to_csv(path, index=False)
    registry = Registry(workspace / "registry")
    versions_before = registry.versions("pickup-eta")
    runs_before = set((workspace / "runs").iterdir())
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(path),
        str(workspace / "registry"),
        side_uri=str(data.weather_path),
    )
    with pytest.raises(ValidationFailed) as failure:
        run_training(request, workspace / "runs")
    failed = failure.value.report["failed"]
    assert any("'congestion' is missing" in m for m in failed)
    assert any(m.startswith("driver_speed: 5") for m in failed)
    assert any(m.startswith("incidents:") and "text" in m for m in failed)
    assert registry.versions("pickup-eta") == versions_before
    assert registry.resolve("pickup-eta") == "v0001"
    (failed_run,) = [p for p in set((workspace / "runs").iterdir()) - runs_before if p.is_dir()]
    # The run's own folder holds the pipeline run's task folders (kfp.local's layout).
    assert list(failed_run.glob("*/validate"))
    assert not list(failed_run.glob("*/featurize"))
    assert not list(failed_run.glob("*/register"))


def test_a_retrain_is_gated_only_on_rows_neither_model_was_fitted_or_selected_on(
    first_run, workspace, data
):
    """The champion trained on all 14 days; a retrain on the second week holds back its newest
    rows (its test split). The gate must score both on those alone: never on the candidate's
    train or validation rows, and never on the champion's."""
    spec = load_spec("ride_hailing")
    frame, _ = clean(spec, ingest(spec, str(data.trips_path), str(data.weather_path))[0])
    labelled = frame.rename(columns={spec.target: "actual"})
    labelled["event_time"] = pd.to_datetime(labelled[spec.timestamp], utc=True)
    start = labelled["event_time"].min().normalize() + pd.Timedelta(7, "D")
    retrain = TrainingRequest(
        spec,
        str(data.trips_path),
        str(workspace / "registry"),
        side_uri=str(data.weather_path),
        start=str(start.date()),
        promote_alias="candidate",
        reason="retrain on the second week",
    )
    outcome = run_training(retrain, workspace / "runs")
    registry = Registry(workspace / "registry")
    candidate, champion = registry.load(spec.name, outcome.version), registry.load(spec.name)

    decision = gate_candidate(candidate, champion, labelled, min_rows=50)

    seen = [b.seen_window() for b in (candidate, champion)]
    assert None not in seen
    # The candidate's rows start at the retrain's start, past the champion's first rows.
    assert seen[0][0] >= start > seen[1][0]
    in_training = labelled["event_time"].between(*seen[0]) | labelled["event_time"].between(
        *seen[1]
    )
    assert decision.numbers["rows_seen_in_training"] == int(in_training.sum())
    assert 50 <= decision.numbers["rows"] <= int((~in_training).sum())
    assert pd.Timestamp(decision.numbers["rows_from"]) > max(seen[0][1], seen[1][1])
    assert "held-out" in decision.reason
