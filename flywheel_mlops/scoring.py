"""How far predictions are from outcomes: the one definition every decision of the loop uses.

Non-finite errors (a missing outcome, a NaN prediction) are left out and counted out of `n`, the
same way in training, the gate, the canary and the demo.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def absolute_errors(actual: Any, predicted: Any) -> np.ndarray:
    """|predicted - actual| for the rows where both are finite."""
    errors = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64))
    return errors[np.isfinite(errors)]


def mae(actual: Any, predicted: Any) -> float:
    """Mean absolute error over the finite rows; NaN when there is none."""
    errors = absolute_errors(actual, predicted)
    return float(errors.mean()) if len(errors) else float("nan")


def error_summary(actual: Any, predicted: Any) -> dict[str, float]:
    """MAE, 90th-percentile absolute error and the rows they were measured on."""
    errors = absolute_errors(actual, predicted)
    if not len(errors):
        return {"mae": float("nan"), "p90": float("nan"), "n": 0}
    return {"mae": float(errors.mean()), "p90": float(np.quantile(errors, 0.9)), "n": len(errors)}
