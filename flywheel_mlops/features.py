"""The feature module: one transformation, used by the featurize stage and by the predictor."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.spec import DatasetSpec

BASELINE_FEATURE = "baseline"
_TIME_FEATURES = ("hour", "hour_sin", "hour_cos", "weekday", "is_weekend")


def baseline_prediction(expression: str, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate the rule-based estimate (a pandas expression over clean columns) per row.

    Rows where the rule is undefined (a zero speed, say) come back as NaN, never infinity.
    """
    values = pd.eval(expression, local_dict={c: frame[c] for c in frame.columns}, engine="python")
    result = np.asarray(values, dtype=np.float64)
    result[~np.isfinite(result)] = np.nan
    return result


@dataclass(frozen=True)
class FeaturePipeline:
    """Clean records in, a float32 matrix out; fitted once on training data, stored as JSON."""

    numeric: list[str]
    categories: dict[str, list[str]]
    timestamp: str | None = None
    baseline: str | None = None
    version: int = field(default=1)

    @classmethod
    def fit(cls, spec: DatasetSpec, frame: pd.DataFrame) -> FeaturePipeline:
        """Learn the category vocabularies from clean training records."""
        categories = {
            column: sorted(frame[column].dropna().astype(str).unique().tolist())
            for column in spec.categorical
        }
        return cls(
            numeric=list(spec.numeric),
            categories=categories,
            timestamp=spec.timestamp,
            baseline=spec.baseline,
        )

    @property
    def input_columns(self) -> list[str]:
        """Columns `transform` reads."""
        columns = [*self.numeric, *self.categories]
        return [self.timestamp, *columns] if self.timestamp else columns

    @property
    def feature_names(self) -> list[str]:
        """Names of the matrix columns `transform` returns, in order."""
        names = list(self.numeric)
        if self.timestamp:
            names += list(_TIME_FEATURES)
        if self.baseline:
            names.append(BASELINE_FEATURE)
        for column, values in sorted(self.categories.items()):
            names += [f"{column}={value}" for value in values]
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Turn clean records into the model's matrix (rows in, rows out, same order).

        Raises InvalidInputError naming the column when one is missing or a category is unknown;
        the predictor's schema check normally catches those first with the record's index.
        """
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise InvalidInputError(f"missing feature columns {missing}")
        blocks: list[np.ndarray] = [frame[self.numeric].to_numpy(dtype=np.float32, na_value=np.nan)]
        if self.timestamp:
            blocks.append(_time_features(frame[self.timestamp]))
        if self.baseline:
            blocks.append(baseline_prediction(self.baseline, frame).astype(np.float32)[:, None])
        # Sorted, so the matrix layout does not depend on the order keys were stored in JSON.
        for column, values in sorted(self.categories.items()):
            blocks.append(_one_hot(frame[column], column, values))
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0), dtype=np.float32)

    def to_json(self) -> str:
        """Serialise to JSON: the bundle never stores a pickled transformer."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeaturePipeline:
        """Rebuild a pipeline saved with `to_json`."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def _time_features(stamps: pd.Series) -> np.ndarray:
    times = pd.to_datetime(stamps)
    hour = (times.dt.hour + times.dt.minute / 60.0).to_numpy(dtype=np.float64)
    weekday = times.dt.weekday.to_numpy(dtype=np.float64)
    angle = 2 * np.pi * hour / 24.0
    return np.column_stack(
        [hour, np.sin(angle), np.cos(angle), weekday, (weekday >= 5).astype(np.float64)]
    ).astype(np.float32)


def _one_hot(values: pd.Series, column: str, categories: list[str]) -> np.ndarray:
    codes = pd.Categorical(values.astype(str), categories=categories).codes
    unknown = (codes < 0) & values.notna().to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InvalidInputError(
            f"{column} must be one of {categories}, got {values.iloc[row]!r} in record {row}"
        )
    matrix = np.zeros((len(values), len(categories)), dtype=np.float32)
    known = codes >= 0
    matrix[np.flatnonzero(known), codes[known]] = 1.0
    return matrix
