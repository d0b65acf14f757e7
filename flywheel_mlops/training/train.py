"""Train: fit candidate families, then pick the cheapest one that is accurate enough."""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops import models, scoring
from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.spec import DatasetSpec


@dataclass(frozen=True)
class Candidate:
    """One fitted candidate and how it did on the validation split."""

    family: str
    params: dict[str, Any]
    val_mae: float
    latency_ms: float
    fit_seconds: float


@dataclass
class TrainResult:
    """The chosen model, why it was chosen, and every candidate tried."""

    model: models.Regressor
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    reason: str = ""


def train(
    spec: DatasetSpec,
    pipeline: FeaturePipeline,
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    families: list[str],
    search_seconds: float = 0.0,
    tolerance: float = 0.02,
    seed: int = 0,
) -> TrainResult:
    """Fit each family (defaults, plus random search while `search_seconds` lasts) and choose.

    Choice: among candidates whose validation MAE is within `tolerance` (relative) of the best,
    the one with the lowest single-row prediction latency wins; ties go to the lower MAE.
    """
    models.check_families(families)
    x_train = pipeline.transform(train_frame)
    y_train = train_frame[spec.target].to_numpy(dtype=np.float64)
    x_val = pipeline.transform(val_frame)
    y_val = val_frame[spec.target].to_numpy(dtype=np.float64)

    fitted: list[tuple[Candidate, models.Regressor]] = []

    def attempt(family: str, params: dict[str, Any]) -> None:
        start = time.perf_counter()
        model = models.fit(family, params, x_train, y_train, seed)
        elapsed = time.perf_counter() - start
        mae = scoring.mae(y_val, model.predict(x_val))
        fitted.append(
            (Candidate(family, params, mae, models.latency_ms(model, x_val), elapsed), model)
        )

    for family in families:
        attempt(family, dict(models.DEFAULT_PARAMS[family]))
    deadline = time.monotonic() + search_seconds
    rng = random.Random(seed)
    for family in itertools.cycle(families):
        if time.monotonic() >= deadline:
            break
        space = models.SEARCH_SPACE[family]
        params = dict(models.DEFAULT_PARAMS[family]) | {k: rng.choice(v) for k, v in space.items()}
        attempt(family, params)

    best = min(c.val_mae for c, _ in fitted)
    good = [(c, m) for c, m in fitted if c.val_mae <= best * (1 + tolerance)]
    chosen, model = min(good, key=lambda cm: (cm[0].latency_ms, cm[0].val_mae))
    reason = (
        f"{chosen.family} has validation MAE {chosen.val_mae:.3f} (best {best:.3f}, "
        f"tolerance {tolerance:.0%}) and the lowest latency among those within it "
        f"({chosen.latency_ms:.3f} ms per row)"
    )
    return TrainResult(model, chosen, [c for c, _ in fitted], reason)
