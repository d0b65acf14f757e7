"""Drift thresholds calibrated to a false-alarm rate on the training period's own windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.monitoring.calibration import calibrate, share_false_alarm_rate
from flywheel_mlops.monitoring.decision import judge
from flywheel_mlops.monitoring.drift import measure_drift
from flywheel_mlops.monitoring.live_error import LiveError
from flywheel_mlops.monitoring.reference_stats import (
    PREDICTION,
    ReferenceStats,
    _calibrated,
    column_stats,
)
from flywheel_mlops.monitoring.thresholds import Thresholds
from flywheel_mlops.spec import DatasetSpec

pytestmark = pytest.mark.unit

START = pd.Timestamp("2026-01-01")
ROWS_PER_DAY = 600
STORES = [f"S{i:03d}" for i in range(104)]
COLUMNS = {"speed": "numeric", "load": "numeric", "store": "categorical", PREDICTION: "numeric"}


def _days(first: int, count: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Days of a world that moves from day to day without changing: each day's mean speed
    wanders (sd 0.15) and its store mix is a fresh Dirichlet draw around one popularity."""
    rng = np.random.default_rng(seed)
    popularity = np.random.default_rng(99).dirichlet(np.ones(len(STORES)) * 0.5)
    parts = []
    for day in range(first, first + count):
        mix = rng.dirichlet(popularity * 400)
        stamps = (
            START
            + pd.Timedelta(days=day)
            + pd.to_timedelta(np.sort(rng.uniform(0, 86_400, ROWS_PER_DAY)), unit="s")
        )
        parts.append(
            pd.DataFrame(
                {
                    "ts": stamps,
                    "speed": rng.normal(30 + rng.normal(0, 0.15) + shift, 1.0, ROWS_PER_DAY),
                    "load": rng.gamma(2.0, 1.0, ROWS_PER_DAY),
                    "store": rng.choice(STORES, ROWS_PER_DAY, p=mix),
                    PREDICTION: rng.gamma(4.0, 3.0, ROWS_PER_DAY),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return _days(0, 30, seed=1)


@pytest.fixture(scope="module")
def reference(training: pd.DataFrame) -> pd.DataFrame:
    return training.sample(n=5_000, random_state=0)


@pytest.fixture(scope="module")
def calibration(training: pd.DataFrame, reference: pd.DataFrame):  # type: ignore[no-untyped-def]
    found = calibrate(training, reference, "ts", COLUMNS, "1d", 0.01, 10_000)
    assert found is not None
    return found


def _score(reference: pd.Series, current: pd.Series, kind: str) -> float:
    from flywheel_mlops.monitoring.calibration import _stattest, _typed

    test, column_type = _stattest(reference, kind)
    result = test(_typed(reference, kind), _typed(current, kind), column_type, None)
    return float(result.drift_score)


def test_new_in_distribution_days_are_flagged_at_the_configured_rate_not_the_defaults(
    calibration, reference: pd.DataFrame
) -> None:
    held_out = _days(100, 150, seed=2)  # same world, days calibration never saw
    flagged = {name: [0, 0] for name in COLUMNS}  # [calibrated, Evidently default]
    for _, day in held_out.groupby(held_out["ts"].dt.date):
        for name, kind in COLUMNS.items():
            score = _score(reference[name], day[name], kind)
            found = calibration.columns[name]
            flagged[name][0] += score >= found.threshold
            flagged[name][1] += score >= found.default_threshold
    days = held_out["ts"].dt.date.nunique()
    print({name: (f"{c}/{days}", f"{d}/{days}") for name, (c, d) in flagged.items()})
    for name, (calibrated, _default) in flagged.items():
        # 1% of 150 days: 1.5 expected; 4 or more has probability under 2% (binomial).
        assert calibrated <= 3, (name, calibrated)
    # The 104-level store column and the wandering speed are flagged on most days by the
    # defaults: the calibrated thresholds are what makes the rate a known one.
    assert flagged["store"][1] > days / 2
    assert flagged["speed"][1] > days / 4


def test_a_real_move_is_still_flagged_at_the_calibrated_thresholds(
    calibration, reference: pd.DataFrame
) -> None:
    moved = _days(200, 3, seed=3, shift=1.0)
    for _, day in moved.groupby(moved["ts"].dt.date):
        assert (
            _score(reference["speed"], day["speed"], "numeric")
            >= calibration.columns["speed"].threshold
        )


def test_calibration_scores_what_the_monitor_scores(
    calibration, reference: pd.DataFrame, training: pd.DataFrame
) -> None:
    # One window through the monitor's Evidently report equals the stat test calibration calls.
    columns = {name: column_stats(reference[name], kind) for name, kind in COLUMNS.items()}  # type: ignore[arg-type]
    stats = ReferenceStats("toy", "v1", "0" * 64, len(reference), "y", "ts", columns)
    day = training[training["ts"] < START + pd.Timedelta(days=1)]
    drift = measure_drift(reference, day.reset_index(drop=True), stats, {})
    for name, kind in COLUMNS.items():
        measured = drift.prediction if name == PREDICTION else drift.features[name]
        assert measured.method == calibration.columns[name].method
        assert measured.score == pytest.approx(_score(reference[name], day[name], kind), rel=1e-9)


def test_the_monitor_applies_the_calibrated_threshold_and_keeps_the_default_beside_it(
    calibration, reference: pd.DataFrame, training: pd.DataFrame
) -> None:
    columns = {
        name: _calibrated(
            column_stats(reference[name], kind),  # type: ignore[arg-type]
            calibration.to_dict()["columns"][name],
            seasonal=False,
        )
        for name, kind in COLUMNS.items()
    }
    stats = ReferenceStats("toy", "v1", "0" * 64, len(reference), "y", "ts", columns)
    day = training[training["ts"] < START + pd.Timedelta(days=1)].reset_index(drop=True)
    drift = measure_drift(reference, day, stats, {})
    store = drift.features["store"]
    assert store.calibrated
    assert store.default_threshold == pytest.approx(0.1)
    assert store.threshold == pytest.approx(calibration.columns["store"].threshold)
    assert store.drifted == (store.score >= store.threshold)
    # A calibration made with another method is not applied to this one.
    other = dict(calibration.to_dict()["columns"]["store"], method="psi")
    kept = _calibrated(column_stats(reference["store"], "categorical"), other, seasonal=False)
    assert not kept.calibrated
    assert kept.threshold == kept.default_threshold


def test_seasonal_features_are_reported_but_do_not_make_a_drift_verdict(
    reference: pd.DataFrame,
) -> None:
    columns = {name: column_stats(reference[name], kind) for name, kind in COLUMNS.items()}  # type: ignore[arg-type]
    columns["speed"] = replace(columns["speed"], seasonal=True)
    stats = ReferenceStats("toy", "v1", "0" * 64, len(reference), "y", "ts", columns)
    hot = _days(300, 1, seed=4, shift=3.0)  # speed moved a lot; nothing else did
    drift = measure_drift(reference, hot, stats, {})
    assert drift.seasonal_drifted == ["speed"]
    assert "speed" not in drift.drifted_features
    assert set(drift.counted) == {"load", "store"}
    thresholds = Thresholds(drift_share=0.6)  # store drifts at the default threshold: 1 of 2
    error = LiveError(labelled_rows=500, mae=1.0, test_mae=1.0, ratio=1.0, slices=[])
    verdict, why = judge(len(hot), drift, error, thresholds)
    assert verdict == "ok"
    assert "Seasonal features drifted too" in why[0]
    assert "speed" in why[0]
    # Declared not seasonal, the same window is drift.
    columns["speed"] = replace(columns["speed"], seasonal=False)
    plain = ReferenceStats("toy", "v1", "0" * 64, len(reference), "y", "ts", columns)
    assert judge(len(hot), measure_drift(reference, hot, plain, {}), error, thresholds)[0] == (
        "drift"
    )


def test_too_short_a_training_period_keeps_the_defaults(training: pd.DataFrame) -> None:
    four_days = training[training["ts"] < START + pd.Timedelta(days=4)]
    assert calibrate(four_days, four_days.sample(1000), "ts", COLUMNS, "1d", 0.01, 10_000) is None


def test_the_share_rules_false_alarm_rate_is_the_binomial_tail() -> None:
    assert share_false_alarm_rate(0.01, 1, 0.6) == pytest.approx(0.01)
    # 2 of 3 at 5% each: 3 * 0.05^2 * 0.95 + 0.05^3
    assert share_false_alarm_rate(0.05, 3, 0.6) == pytest.approx(3 * 0.05**2 * 0.95 + 0.05**3)
    assert share_false_alarm_rate(0.01, 9, 0.6) < 1e-9


def test_the_spec_checks_its_drift_section() -> None:
    base = {"name": "m", "target": "y", "numeric": ["a"], "timestamp": "ts"}
    with pytest.raises(ValueError, match=r"drift\.seasonal lists \['b'\]"):
        DatasetSpec.model_validate({**base, "drift": {"seasonal": ["b"]}})
    with pytest.raises(ValueError, match=r"drift\.window"):
        DatasetSpec.model_validate({**base, "drift": {"window": "3 fortnights"}})
    with pytest.raises(ValueError, match="false_alarm_rate"):
        DatasetSpec.model_validate({**base, "drift": {"false_alarm_rate": 0.7}})
    assert DatasetSpec.model_validate(base).drift.false_alarm_rate == 0.01


def test_the_thresholds_are_the_same_in_every_process() -> None:
    """Evidently sums a category's levels in `set` order, which each process's string hashing
    changes: the register step runs in a fresh process, so its thresholds must not move."""
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_drift_calibration import COLUMNS, _days, calibrate\n"
        "training = _days(0, 8, seed=1)\n"
        "reference = training.sample(n=3_000, random_state=0)\n"
        "found = calibrate(training, reference, 'ts', COLUMNS, '1d', 0.01, 10_000)\n"
        "print(json.dumps(found.to_dict(), sort_keys=True))\n"
    )
    here = os.path.dirname(__file__)
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, here],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    ]
    assert json.loads(runs[0])["columns"]["store"]["method"] == "jensenshannon"
    assert runs[0] == runs[1] == runs[2]
