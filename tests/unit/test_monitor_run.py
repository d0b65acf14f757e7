"""The monitor end to end on simulated traffic: no false alarms, a closure caught, failures safe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.monitoring import RetrainPolicy, run_monitor
from flywheel_mlops.registry import Registry
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.testing.traffic import end_of

CLOSURE_DAY = 21
TRAIN_DAYS = 14
CLOSURE_ZONES = {"zone=Z05", "zone=Z06", "zone=Z09"}
DECISION_FIELDS = {
    "schema_version", "measured_at", "model", "window", "verdict", "retrain", "why", "drift",
    "live_error", "thresholds", "policy", "error", "outputs",
}  # fmt: skip


@pytest.fixture(scope="module")
def world(spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Four weeks of clean trips (~1,400 a day), a highway closure from day 21; a champion
    trained on the first two weeks; the last two weeks as logged traffic with feedback."""
    from flywheel_mlops.testing.traffic import champion_and_days

    root = tmp_path_factory.mktemp("monitor-world")
    raw = simulate(
        SimulationConfig(rows=40_000, days=28, closure_day=CLOSURE_DAY, dirt=0, seed=11),
        root / "raw",
    )
    bundle, windows = champion_and_days(
        spec, str(raw.trips_path), str(raw.weather_path), str(root / "registry"), TRAIN_DAYS
    )
    registry = Registry(root / "registry")
    return {"bundle": bundle, "windows": windows, "registry": registry, "root": root}


def _end_of(window: pd.DataFrame) -> datetime:
    return end_of(window)


def _run(world, window, tmp_path: Path, policy: RetrainPolicy | None = None, **kwargs):  # type: ignore[no-untyped-def]
    policy = policy or RetrainPolicy(tmp_path / "state.json")
    now = kwargs.pop("now", None) or (
        _end_of(window) if isinstance(window, pd.DataFrame) and len(window) else datetime.now(UTC)
    )
    return run_monitor(
        world["bundle"],
        window,
        policy,
        tmp_path / "out",
        now,
        cache_dir=tmp_path / "cache",
        **kwargs,
    )


def test_normal_days_raise_no_alarm_and_no_retrain(world, tmp_path: Path) -> None:
    policy = RetrainPolicy(tmp_path / "state.json", debounce=1)
    normal = world["windows"][: CLOSURE_DAY - TRAIN_DAYS]
    verdicts = [_run(world, w, tmp_path, policy) for w in normal]
    assert [r.verdict for r in verdicts] == ["ok"] * len(normal)
    assert not any(r.retrain for r in verdicts)


def test_closure_degrades_its_zones_and_retrains_after_debounce(world, tmp_path: Path) -> None:
    policy = RetrainPolicy(tmp_path / "state.json", debounce=2)
    closed = world["windows"][CLOSURE_DAY - TRAIN_DAYS :][:3]
    results = [_run(world, w, tmp_path, policy) for w in closed]
    assert [r.verdict for r in results] == ["degraded"] * 3
    assert [r.retrain for r in results] == [False, True, False]
    degraded = set(results[0].decision.live_error["degraded_slices"])  # type: ignore[index]
    assert degraded & CLOSURE_ZONES
    assert not {s for s in degraded if s.startswith("zone=")} - CLOSURE_ZONES
    assert "debounce" in results[2].decision.policy["why"]  # the streak restarts after a retrain


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("empty", "0 rows"),
        ("first-window-unlabelled", "ground truth"),
        ("few-rows", "rows"),
    ],
)
def test_too_little_data_is_insufficient_and_never_retrains(
    world, tmp_path: Path, window, expected: str
) -> None:
    first = world["windows"][0]
    if window == "empty":
        window = pd.DataFrame()
    elif window == "first-window-unlabelled":
        window = first.assign(actual=np.nan)
    elif window == "few-rows":
        window = first.head(50)
    policy = RetrainPolicy(tmp_path / "state.json", debounce=1)
    result = _run(world, window, tmp_path, policy, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert result.verdict == "insufficient_data"
    assert result.retrain is False
    assert expected in " ".join(result.decision.why)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda w: w.drop(columns=["distance_km"]),
        lambda w: w.assign(distance_km="far"),
        lambda w: w.assign(request_time="not a time"),
        lambda w: w.assign(prediction=w["prediction"].astype(str)),
    ],
    ids=["missing-column", "text-in-numeric", "bad-timestamps", "text-predictions"],
)
def test_corrupt_window_is_an_error_without_retrain_and_the_next_run_recovers(
    world, tmp_path: Path, corrupt
) -> None:
    policy = RetrainPolicy(tmp_path / "state.json", debounce=1)
    good = world["windows"][0]
    failed = _run(world, corrupt(good), tmp_path, policy)
    assert failed.verdict == "error"
    assert failed.retrain is False
    written = json.loads(failed.decision_path.read_text())
    assert written["verdict"] == "error"
    assert written["error"]["message"]
    assert "failed" in written["why"][0]
    recovered = _run(world, good, tmp_path, policy)
    assert recovered.verdict == "ok"


def test_a_window_loader_that_fails_is_an_error_decision(world, tmp_path: Path) -> None:
    def database_down() -> pd.DataFrame:
        raise ConnectionError("could not connect to postgresql://db:5432")

    result = _run(world, database_down, tmp_path, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert result.verdict == "error"
    assert not result.retrain
    assert "could not connect" in result.decision.error["message"]  # type: ignore[index]


def test_reference_stats_are_computed_once_per_bundle_version(world, tmp_path: Path) -> None:
    window = world["windows"][0]
    first = _run(world, window, tmp_path)
    second = _run(world, window, tmp_path)
    assert (first.reference_stats_cached, second.reference_stats_cached) == (False, True)
    registry: Registry = world["registry"]
    version = registry.publish("pickup-eta", world["bundle"].path)  # same files, new version
    newer = registry.load("pickup-eta", version)
    third = run_monitor(
        newer, window, RetrainPolicy(tmp_path / "s.json"), tmp_path / "o", _end_of(window),
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert third.reference_stats_cached is False
    assert (tmp_path / "cache" / "pickup-eta" / version / "reference_stats.json").is_file()


def test_decision_json_report_and_metrics_hold_every_documented_part(world, tmp_path: Path) -> None:
    result = _run(world, world["windows"][CLOSURE_DAY - TRAIN_DAYS], tmp_path)
    decision = json.loads(result.decision_path.read_text())
    assert set(decision) == DECISION_FIELDS
    feature = decision["drift"]["features"]["distance_km"]
    assert set(feature) >= {"method", "score", "threshold", "drifted"}
    assert {"share", "drifted_features", "prediction"} <= set(decision["drift"])
    assert {"mae", "test_mae", "ratio", "slices"} <= set(decision["live_error"])
    assert {"zone", "hour"} <= set(decision["live_error"]["slices"])
    assert decision["thresholds"]["debounce"] == 2
    report = result.report_path.read_text()
    assert "Flywheel monitor decision" in report
    assert "degraded" in report
    assert len(report) > 100_000  # Evidently's drift report is embedded, not only our summary
    metrics = result.metrics_path.read_text()
    assert 'flywheel_monitor_verdict{model="pickup-eta"' in metrics
    assert "flywheel_monitor_feature_drift_score" in metrics
    assert "flywheel_monitor_live_mae_ratio" in metrics


def test_a_parquet_window_gives_the_same_decision_as_the_frame(world, tmp_path: Path) -> None:
    window = world["windows"][0]
    path = tmp_path / "window.parquet"
    window.to_parquet(path, index=False)
    from_frame = _run(world, window, tmp_path / "a").decision.to_dict()
    from_file = _run(world, path, tmp_path / "b", now=_end_of(window)).decision.to_dict()
    assert from_file["verdict"] == from_frame["verdict"]
    assert from_file["drift"]["features"] == from_frame["drift"]["features"]
    assert from_file["live_error"]["mae"] == pytest.approx(from_frame["live_error"]["mae"])
