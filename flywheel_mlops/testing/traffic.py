"""Simulated traffic as the prediction log holds it: for tests and benchmarks of the monitor."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.testing.quick_train import register_frame
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.ingest import ingest


def as_logged(
    day: pd.DataFrame, bundle: Bundle, target: str, labelled_share: float = 0.9
) -> pd.DataFrame:
    """Clean records as the prediction log returns them: request ids, the time logged, the
    bundle's prediction and, for `labelled_share` of them, the actual outcome."""
    window = day.drop(columns=[target]).reset_index(drop=True)
    window.insert(0, "request_id", [f"req-{i}" for i in range(len(window))])
    window.insert(1, "row", 0)
    window.insert(2, "model_version", bundle.version)
    logged_at = pd.to_datetime(day["request_time"]).dt.tz_localize("UTC")
    window.insert(3, "logged_at", logged_at.to_numpy())
    window["prediction"] = bundle.predict(day)
    labelled = np.random.default_rng(len(day)).random(len(day)) < labelled_share
    window["actual"] = np.where(labelled, day[target].to_numpy(), np.nan)
    return window


def end_of(window: pd.DataFrame) -> datetime:
    """Midnight after the window's last logged row (when a daily monitor run would look)."""
    return pd.Timestamp(window["logged_at"].max()).ceil("D").to_pydatetime()


def champion_and_days(
    spec: DatasetSpec, trips: str, weather: str, registry: str, train_days: int
) -> tuple[Bundle, list[pd.DataFrame]]:
    """Train a champion on the first `train_days` of the trips; the rest as logged days."""
    from flywheel_mlops.registry import Registry

    frame, _ = ingest(spec, trips, weather)
    frame, _ = clean(spec, frame)
    times = pd.to_datetime(frame[spec.timestamp])
    cut = times.min().normalize() + pd.Timedelta(days=train_days)
    history, live = frame[times < cut], frame[times >= cut].reset_index(drop=True)
    register_frame(spec, history, registry)
    bundle = Registry(registry).load(spec.name)
    days = [
        as_logged(day, bundle, spec.target)
        for _, day in live.groupby(pd.to_datetime(live[spec.timestamp]).dt.floor("D"))
    ]
    return bundle, days
