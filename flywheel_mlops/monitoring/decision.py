"""The monitoring decision: what was measured, the thresholds, the verdict and why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from flywheel_mlops.files import write_atomic
from flywheel_mlops.monitoring.calibration import share_false_alarm_rate
from flywheel_mlops.monitoring.drift import DriftResult
from flywheel_mlops.monitoring.live_error import LiveError
from flywheel_mlops.monitoring.thresholds import Thresholds

Verdict = Literal["ok", "drift", "degraded", "insufficient_data", "error"]
SCHEMA_VERSION = 1


@dataclass
class Decision:
    """One monitor run's finding; `to_dict` is the decision.json contract (docs/monitoring.md)."""

    verdict: Verdict
    why: list[str]
    measured_at: datetime
    model: dict[str, Any]
    window: dict[str, Any]
    thresholds: dict[str, Any]
    drift: dict[str, Any] | None = None
    live_error: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    retrain: bool = False
    policy: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, every documented field present (null when not measured)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "measured_at": self.measured_at.isoformat(),
            "model": self.model,
            "window": self.window,
            "verdict": self.verdict,
            "retrain": self.retrain,
            "why": self.why,
            "drift": self.drift,
            "live_error": self.live_error,
            "thresholds": self.thresholds,
            "policy": self.policy,
            "error": self.error,
            "outputs": self.outputs,
        }

    def write(self, path: Path) -> None:
        """Write decision.json atomically: a reader sees the previous decision or this one."""
        write_atomic(path, json.dumps(self.to_dict(), indent=2, default=str))


def drift_section(drift: DriftResult, thresholds: Thresholds) -> dict[str, Any]:
    """The drift part of the decision: per feature, share, prediction drift, and the
    calibration behind the thresholds with the share rule's false-alarm rate."""
    return {
        "measured_by": "evidently",
        "sampled_rows": drift.sampled_rows,
        "features": {name: d.to_dict() for name, d in drift.features.items()},
        "drifted_features": drift.drifted_features,
        "seasonal_drifted": drift.seasonal_drifted,
        "share": drift.share,
        "prediction": drift.prediction.to_dict(),
        "calibration": _calibration(drift, thresholds),
    }


def _calibration(drift: DriftResult, thresholds: Thresholds) -> dict[str, Any]:
    record = drift.calibration or {"calibrated": False, "why": "the bundle has no calibration"}
    if not record.get("calibrated"):
        return record
    counted = len(drift.counted)
    rate = float(record["false_alarm_rate"])
    defaults = sorted(n for n, d in drift.counted.items() if not d.calibrated)
    if defaults:
        return {
            **record,
            "counted_features": counted,
            "share_false_alarm_rate": None,
            "share_false_alarm_rate_is": f"unknown: {defaults} kept Evidently's default "
            "threshold, whose false-alarm rate was not measured",
        }
    return {
        **record,
        "counted_features": counted,
        "share_false_alarm_rate": share_false_alarm_rate(rate, counted, thresholds.drift_share),
        "share_false_alarm_rate_is": "the chance that a window with no drift reaches the share, "
        f"with each of {counted} features flagged at {rate} independently (a lower bound when "
        "features move together)",
    }


def judge(
    rows: int, drift: DriftResult | None, error: LiveError | None, thresholds: Thresholds
) -> tuple[Verdict, list[str]]:
    """The verdict and the sentences that explain it.

    Order: too little data first (nothing else can be trusted), then degraded live error (the
    harm users feel), then drift (a warning that the world moved), else ok.
    """
    if rows < thresholds.min_rows or drift is None:
        return "insufficient_data", [
            f"The window holds {rows} rows; at least {thresholds.min_rows} are needed to judge "
            "drift, so nothing was judged and no retrain is asked for."
        ]
    why = [_drift_sentence(drift, thresholds)]
    if error is None or error.labelled_rows < thresholds.min_labelled_rows:
        labelled = error.labelled_rows if error else 0
        return "insufficient_data", [
            f"Only {labelled} of {rows} rows have ground truth; at least "
            f"{thresholds.min_labelled_rows} are needed to judge live error, so no retrain "
            "is asked for.",
            *why,
        ]
    why.append(_error_sentence(error, thresholds))
    degraded_slices = error.degraded_slices
    if degraded_slices:
        why.append(_slices_sentence(error, thresholds))
    if (error.ratio or 0.0) >= thresholds.mae_ratio or degraded_slices:
        return "degraded", why
    drifted = drift.share >= thresholds.drift_share
    if drifted or (thresholds.prediction_drift and drift.prediction.drifted):
        return "drift", why
    return "ok", why


def _drift_sentence(drift: DriftResult, thresholds: Thresholds) -> str:
    names = drift.drifted_features
    listed = f" ({', '.join(names)})" if names else ""
    prediction = drift.prediction
    state = "drifted" if prediction.drifted else "did not drift"
    seasonal = drift.seasonal_drifted
    besides = (
        f" Seasonal features drifted too, not counted (the error alone decides): "
        f"{', '.join(seasonal)}."
        if seasonal
        else ""
    )
    calibrated = (
        f"calibrated {drift.calibration['window']} thresholds"
        if drift.calibration and drift.calibration.get("calibrated")
        else "Evidently's default thresholds"
    )
    return (
        f"Evidently found {len(names)} of {len(drift.counted)} features drifted{listed} at "
        f"{calibrated}: "
        f"share {drift.share:.2f} against a threshold of {thresholds.drift_share:.2f}, "
        f"measured on {drift.sampled_rows} sampled rows. The prediction distribution {state} "
        f"({prediction.method} {prediction.score:.3f}, threshold {prediction.threshold:.3f})."
        f"{besides}"
    )


def _error_sentence(error: LiveError, thresholds: Thresholds) -> str:
    return (
        f"Live MAE is {error.mae:.2f} on {error.labelled_rows} labelled rows, "
        f"{error.ratio:.2f}x the test MAE of {error.test_mae:.2f} "
        f"(threshold {thresholds.mae_ratio:.2f}x)."
    )


def _slices_sentence(error: LiveError, thresholds: Thresholds, shown: int = 5) -> str:
    worst = error.degraded_slices
    parts = [f"{s.slice} {s.value} {s.ratio:.2f}x (n={s.n})" for s in worst[:shown]]
    more = f" and {len(worst) - shown} more" if len(worst) > shown else ""
    return (
        f"{len(worst)} slices reached {thresholds.slice_mae_ratio:.2f}x their test MAE: "
        f"{', '.join(parts)}{more}."
    )
