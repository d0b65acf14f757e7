"""Register: publish an immutable bundle and move the champion alias only when it is earned."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel_mlops import models
from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.registry.bundle import PREDICTION, BundleContents, write_bundle
from flywheel_mlops.schema import InputSchema
from flywheel_mlops.spec import DatasetSpec

REFERENCE_ROWS = 5000


@dataclass(frozen=True)
class Registration:
    """What register did: the new version, and whether and why the champion moved."""

    version: str
    uri: str
    promoted: bool
    reason: str


def reference_sample(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    model: models.Regressor,
    pipeline: FeaturePipeline,
    rows: int = REFERENCE_ROWS,
    seed: int = 0,
) -> pd.DataFrame:
    """Clean inputs, target and the model's prediction for a sample of training records."""
    sample = frame.sample(n=min(rows, len(frame)), random_state=seed).reset_index(drop=True)
    columns = [c for c in [*spec.feature_columns, spec.target] if c in sample.columns]
    sample = sample[columns].copy()
    sample[PREDICTION] = model.predict(pipeline.transform(sample))
    return sample


def drift_calibration(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    model: models.Regressor,
    pipeline: FeaturePipeline,
) -> dict[str, Any]:
    """Per-feature drift thresholds for the monitor, measured on windows of every record of the
    training period, `frame` (`monitoring.calibration`), or why the defaults stay."""
    from flywheel_mlops.monitoring.calibration import calibrate
    from flywheel_mlops.monitoring.thresholds import Thresholds

    if not spec.timestamp or spec.timestamp not in frame:
        return {"calibrated": False, "why": "no timestamp: windows cannot be drawn"}
    columns = {name: "categorical" for name in spec.categorical if name in frame}
    columns |= {name: "numeric" for name in spec.numeric if name in frame}
    scored = frame[[spec.timestamp, *columns]].copy()
    scored[PREDICTION] = model.predict(pipeline.transform(frame))
    found = calibrate(
        scored,
        reference,
        spec.timestamp,
        {**columns, PREDICTION: "numeric"},
        spec.drift.window,
        spec.drift.false_alarm_rate,
        Thresholds().sample_rows,
    )
    if found is None:
        return {
            "calibrated": False,
            "why": f"the training period holds too few {spec.drift.window} windows; "
            "Evidently's default thresholds stay",
        }
    return {"calibrated": True, **found.to_dict()}


def register(
    registry: Registry,
    spec: DatasetSpec,
    model: models.Regressor,
    family: str,
    pipeline: FeaturePipeline,
    schema: InputSchema,
    metrics: dict[str, Any],
    reference: pd.DataFrame,
    lineage: dict[str, Any],
    promote_alias: str = Alias.CHAMPION,
) -> Registration:
    """Write the bundle, publish it as the next version, and move `promote_alias` to it if
    `metrics` say it beats the champion (evaluate decided that with the promotion margin).

    The retraining loop passes `candidate`: the champion then moves only after a canary.
    """
    metadata = {
        "name": spec.name,
        "target": spec.target,
        "inputs": schema.names,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **lineage,
    }
    contents = BundleContents(model, family, pipeline, schema, metrics, reference, metadata, spec)
    with tempfile.TemporaryDirectory(prefix="flywheel-bundle-") as tmp:
        staged = Path(tmp) / "bundle"
        write_bundle(staged, contents)
        version = registry.publish(spec.name, staged)
    uri = registry.version_uri(spec.name, version)
    current = registry.alias(spec.name, Alias.CHAMPION)
    if metrics.get("beats_champion", False):
        if current is None:
            reason = "first version: no champion yet"
        else:
            reason = (
                f"test MAE {metrics['champion']['candidate_mae_same_rows']:.3f} beats champion "
                f"{current.version} ({metrics['champion']['mae']:.3f}) on the same "
                f"{metrics['champion']['n']} rows by at least {metrics['margin']:.0%}"
            )
        registry.set_alias(spec.name, version, promote_alias, reason)
        return Registration(version, uri, True, reason)
    champion_mae = metrics.get("champion", {}).get("mae", float("nan"))
    reason = (
        f"kept champion {current.version if current else None}: test MAE "
        f"{metrics['test']['mae']:.3f} vs {champion_mae:.3f} does not beat it by "
        f"{metrics.get('margin', 0):.0%}"
    )
    return Registration(version, uri, False, reason)
