"""Drift measurement: the monitor agrees with a plain Evidently run, and its sample is sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.monitoring.drift import measure_drift, read_snapshot
from flywheel_mlops.monitoring.reference_stats import (
    PREDICTION,
    ColumnStats,
    ReferenceStats,
    column_stats,
)
from flywheel_mlops.monitoring.window import batches_of_frame, batches_of_parquet, summarise

NUMERIC = ["steady", "moved"]
CATEGORICAL = ["zone", "weather"]
DRIFTED = {"moved", "weather"}
LEVELS = ["a", "b", "c", "d"]


def _frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """Two numeric and two categorical features and a prediction; `moved` and `weather` move."""
    rng = np.random.default_rng(seed)
    shifted = [0.7, 0.1, 0.1, 0.1]
    return pd.DataFrame(
        {
            "steady": rng.normal(0.0, 1.0, rows),
            "moved": rng.normal(1.0 if drifted else 0.0, 1.0, rows),
            "zone": rng.choice(LEVELS, rows, p=[0.25] * 4),
            "weather": rng.choice(LEVELS, rows, p=shifted if drifted else [0.25] * 4),
            PREDICTION: rng.gamma(4.0, 3.0, rows),
            "actual": rng.gamma(4.0, 3.0, rows),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    # more than 1,000 rows: Evidently's defaults are normed Wasserstein and Jensen-Shannon
    return _frame(2_000, seed=1, drifted=False)


@pytest.fixture(scope="module")
def stats(reference: pd.DataFrame) -> ReferenceStats:
    columns: dict[str, ColumnStats] = {
        **{name: column_stats(reference[name], "numeric") for name in NUMERIC},
        **{name: column_stats(reference[name], "categorical") for name in CATEGORICAL},
        PREDICTION: column_stats(reference[PREDICTION], "numeric"),
    }
    return ReferenceStats("toy", "v1", "0" * 64, len(reference), "actual", None, columns)


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return _frame(3_000, seed=2, drifted=True)


def _plain_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple]:
    """What an ordinary `DataDriftPreset` run says, with Evidently choosing every method."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*NUMERIC, *CATEGORICAL, PREDICTION]
    definition = DataDefinition(
        numerical_columns=[*NUMERIC, PREDICTION], categorical_columns=CATEGORICAL
    )
    snapshot = Report([DataDriftPreset(columns=columns)], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return read_snapshot(snapshot.dict())


def test_the_monitor_measures_what_a_plain_evidently_run_measures(
    reference: pd.DataFrame, stats: ReferenceStats, current: pd.DataFrame
) -> None:
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    ours = measure_drift(reference, current, stats, histograms={})
    plain = _plain_evidently(reference, current)
    for name, drift in [*ours.features.items(), (PREDICTION, ours.prediction)]:
        method, score, threshold, drifted = plain[name]
        kind = ColumnType.Categorical if name in CATEGORICAL else ColumnType.Numerical
        # ours pins the test by its id, the plain run reports its display name
        test = get_stattest(reference[name], current[name], kind, drift.method)
        assert (test.display_name, drift.threshold, drift.drifted) == (method, threshold, drifted)
        assert drift.score == pytest.approx(score, rel=1e-9), name


@pytest.mark.parametrize("name", [*NUMERIC, *CATEGORICAL])
def test_a_moved_column_is_flagged_and_a_steady_one_is_not(
    reference: pd.DataFrame, stats: ReferenceStats, current: pd.DataFrame, name: str
) -> None:
    drift = measure_drift(reference, current, stats, histograms={}).features[name]
    assert drift.drifted is (name in DRIFTED), f"{name}: {drift.method} {drift.score:.3f}"
    assert (drift.score > drift.threshold) is (name in DRIFTED)


def test_the_prediction_distribution_is_measured_beside_the_features(
    reference: pd.DataFrame, stats: ReferenceStats, current: pd.DataFrame
) -> None:
    result = measure_drift(reference, current, stats, histograms={})
    assert result.prediction.column == PREDICTION
    assert result.prediction.drifted is False
    assert set(result.drifted_features) == DRIFTED
    assert result.share == pytest.approx(len(DRIFTED) / len(NUMERIC + CATEGORICAL))


@pytest.mark.parametrize("batch_rows", [7, 1_000, 50_000])
def test_the_window_sample_does_not_depend_on_how_the_window_is_batched(
    stats: ReferenceStats, current: pd.DataFrame, batch_rows: int
) -> None:
    whole = summarise(batches_of_frame(current, 50_000), stats, [], 500, seed=3)
    batched = summarise(batches_of_frame(current, batch_rows), stats, [], 500, seed=3)
    pd.testing.assert_frame_equal(batched.sample, whole.sample)  # type: ignore[arg-type]
    assert batched.histograms == whole.histograms
    assert len(whole.sample) == 500  # type: ignore[arg-type]


def test_a_parquet_window_gives_the_frames_sample_and_histograms(
    stats: ReferenceStats, current: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "window.parquet"
    current.to_parquet(path, index=False, row_group_size=700)
    from_frame = summarise(batches_of_frame(current), stats, ["zone"], 500, seed=3)
    from_file = summarise(batches_of_parquet(path, rows=300), stats, ["zone"], 500, seed=3)
    assert from_file.histograms == from_frame.histograms
    for value, (total, count) in from_frame.slice_errors["zone"].items():
        assert from_file.slice_errors["zone"][value] == [pytest.approx(total), count]
    pd.testing.assert_frame_equal(
        from_file.sample.astype({c: object for c in CATEGORICAL}),  # type: ignore[union-attr]
        from_frame.sample,  # type: ignore[arg-type]
    )


def test_a_small_reference_with_a_few_valued_number_column_is_measured_as_evidently_does() -> None:
    """At most 1,000 reference rows and at most five distinct values: Evidently's default for
    that number column is chi-square (a categorical-only test). The monitor must run it, not
    fail, and agree with a plain DataDriftPreset run on score and verdict."""
    rng = np.random.default_rng(3)

    def frame(rows: int, moved: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "incidents": rng.choice(
                    [0, 1, 2, 3], rows, p=[0.1, 0.2, 0.3, 0.4] if moved else None
                ),
                "steady": rng.normal(0.0, 1.0, rows),
                PREDICTION: rng.gamma(4.0, 3.0, rows),
            }
        )

    reference, current = frame(500, moved=False), frame(800, moved=True)
    columns = {name: column_stats(reference[name], "numeric") for name in reference.columns}
    assert columns["incidents"].method == "chisquare"
    stats = ReferenceStats("toy", "v1", "0" * 64, len(reference), "actual", None, columns)

    ours = measure_drift(reference, current, stats, histograms={})

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(reference.columns))
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    _, score, _, drifted = read_snapshot(snapshot.dict())["incidents"]
    assert ours.features["incidents"].method == "chisquare"
    assert ours.features["incidents"].score == pytest.approx(score, rel=1e-9)
    assert ours.features["incidents"].drifted == drifted is True
