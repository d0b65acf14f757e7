"""Candidate model families: how each is fitted, timed, saved in a safe format and loaded back.

XGBoost and scikit-learn are imported where they are used: a pipeline step that only cleans
data should not pay seconds of imports for model libraries it never touches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from flywheel_mlops.errors import BundleIntegrityError, ConfigError

# Defaults aim at a good model in seconds on a laptop; the search varies them within a budget.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"max_depth": 6, "eta": 0.1, "num_boost_round": 300, "subsample": 0.9},
    "hist_gbm": {"max_iter": 300, "learning_rate": 0.1, "max_leaf_nodes": 31},
    "ridge": {"alpha": 1.0},
    "random_forest": {"n_estimators": 60, "max_depth": 14, "min_samples_leaf": 5},
}
SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {
    "xgboost": {"max_depth": [4, 6, 8], "eta": [0.05, 0.1, 0.2], "num_boost_round": [200, 400]},
    "hist_gbm": {"max_leaf_nodes": [15, 31, 63], "learning_rate": [0.05, 0.1, 0.2]},
    "ridge": {"alpha": [0.1, 1.0, 10.0]},
    "random_forest": {"max_depth": [10, 14, 20], "min_samples_leaf": [2, 5, 10]},
}
FAMILIES = tuple(DEFAULT_PARAMS)


class Regressor(Protocol):
    """What the rest of Flywheel needs of a fitted model."""

    def predict(self, features: np.ndarray) -> np.ndarray: ...


@dataclass
class XGBoostModel:
    """A native XGBoost booster; predicts with `inplace_predict`, the fastest path it offers."""

    booster: Any  # xgboost.Booster

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64)


def check_families(families: list[str]) -> list[str]:
    """Reject unknown family names with the list of known ones."""
    unknown = [f for f in families if f not in DEFAULT_PARAMS]
    if unknown or not families:
        raise ConfigError(
            f"model families must be a non-empty subset of {list(FAMILIES)}, got {families}"
        )
    return families


def fit(
    family: str, params: dict[str, Any], features: np.ndarray, target: np.ndarray, seed: int
) -> Regressor:
    """Fit one candidate of `family` with `params` on a float32 matrix."""
    if family == "xgboost":
        import xgboost as xgb

        rounds = int(params.get("num_boost_round", 300))
        booster_params = {k: v for k, v in params.items() if k != "num_boost_round"}
        booster_params |= {
            "objective": "reg:absoluteerror",
            "tree_method": "hist",
            "seed": seed,
            "nthread": 0,
        }
        matrix = xgb.QuantileDMatrix(features, label=target)
        return XGBoostModel(xgb.train(booster_params, matrix, num_boost_round=rounds))
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimator: Any
    if family == "hist_gbm":
        estimator = HistGradientBoostingRegressor(
            loss="absolute_error", random_state=seed, **params
        )
    elif family == "ridge":
        estimator = make_pipeline(SimpleImputer(), StandardScaler(), Ridge(**params))
    elif family == "random_forest":
        estimator = make_pipeline(
            SimpleImputer(), RandomForestRegressor(random_state=seed, n_jobs=-1, **params)
        )
    else:
        check_families([family])
    return estimator.fit(features, target)  # type: ignore[no-any-return,unused-ignore]


def latency_ms(model: Regressor, features: np.ndarray, repeats: int = 30) -> float:
    """Median wall time of a single-row prediction, in milliseconds: the serving hot path."""
    row = features[:1]
    model.predict(row)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(row)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1000)


def save(model: Regressor, family: str, folder: Path) -> str:
    """Write the model in a safe format into `folder`; returns the file name."""
    if isinstance(model, XGBoostModel):
        model.booster.save_model(folder / "model.ubj")
        return "model.ubj"
    import skops.io

    skops.io.dump(model, folder / "model.skops")
    return "model.skops"


def load(path: Path) -> Regressor:
    """Load a model file written by `save`. Call only after its sha256 was verified."""
    if path.suffix == ".ubj":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(path)
        return XGBoostModel(booster)
    if path.suffix == ".skops":
        import skops.io

        # skops loads only types we trust: scikit-learn's and numpy's, nothing else.
        untrusted = skops.io.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "scipy."))]
        if foreign:
            raise BundleIntegrityError(f"{path.name} holds types Flywheel does not load: {foreign}")
        return skops.io.load(path, trusted=untrusted)  # type: ignore[no-any-return,unused-ignore]
    raise BundleIntegrityError(f"{path.name} is not a model format Flywheel loads (.ubj, .skops)")
