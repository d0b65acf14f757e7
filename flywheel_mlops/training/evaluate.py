"""Evaluate: test error, error per slice, against the rule-based baseline and the champion."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops import models
from flywheel_mlops.features import FeaturePipeline, baseline_prediction
from flywheel_mlops.registry.bundle import Bundle, comparable_rows
from flywheel_mlops.scoring import error_summary
from flywheel_mlops.spec import DatasetSpec


def slice_errors(
    spec: DatasetSpec, frame: pd.DataFrame, predicted: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """MAE per value of each slice column, and per hour of day when there is a timestamp."""
    errors = pd.Series(np.abs(predicted - frame[spec.target].to_numpy()), index=frame.index)
    keys: dict[str, pd.Series] = {c: frame[c].astype(str) for c in spec.slices if c in frame}
    if spec.timestamp:
        keys["hour"] = pd.to_datetime(frame[spec.timestamp]).dt.hour.astype(str)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name, key in keys.items():
        grouped = errors.groupby(key)
        result[name] = {str(k): {"mae": float(v.mean()), "n": int(v.size)} for k, v in grouped}
    return result


def evaluate(
    spec: DatasetSpec,
    model: models.Regressor,
    pipeline: FeaturePipeline,
    test_frame: pd.DataFrame,
    champion: Bundle | None = None,
    margin: float = 0.02,
) -> dict[str, Any]:
    """Score the candidate on the test split beside the baseline and the current champion.

    `beats_baseline` gates registration; `beats_champion` (candidate MAE at most
    (1 - margin) x the champion's on the same rows, or no champion yet) gates promotion.
    """
    actual = test_frame[spec.target].to_numpy(dtype=np.float64)
    predicted = model.predict(pipeline.transform(test_frame))
    metrics: dict[str, Any] = {
        "test": error_summary(actual, predicted),
        "slices": slice_errors(spec, test_frame, predicted),
    }
    if spec.baseline:
        metrics["baseline"] = error_summary(actual, baseline_prediction(spec.baseline, test_frame))
        metrics["beats_baseline"] = metrics["test"]["mae"] < metrics["baseline"]["mae"]
    else:
        metrics["beats_baseline"] = True
    metrics["margin"] = margin
    if champion is not None:
        # The world changes by new categories too: the champion cannot score a row whose
        # category it never saw, so both models are compared on the rows it can score. Nor is
        # it scored on a test row it was fitted or selected on: that would flatter it.
        same, seen, unknown = comparable_rows(test_frame, spec.timestamp, champion)
        ours = error_summary(actual[same], predicted[same])
        metrics["champion"] = {
            "version": champion.version,
            **error_summary(actual[same], champion.predict(test_frame[same])),
            "candidate_mae_same_rows": ours["mae"],
            "rows_with_unseen_categories": unknown,
            "rows_the_champion_trained_on": seen,
        }
        # No row both can be honestly scored on: no evidence the candidate is better.
        metrics["beats_champion"] = bool(
            same.any() and ours["mae"] <= (1 - margin) * metrics["champion"]["mae"]
        )
    else:
        metrics["beats_champion"] = True
    return metrics
