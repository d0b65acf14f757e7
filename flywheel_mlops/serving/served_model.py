"""A bundle made ready to serve: verified, loaded, and proven by a self-test on reference rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.errors import BundleIntegrityError, InvalidInputError
from flywheel_mlops.registry.bundle import PREDICTION, Bundle, load_bundle
from flywheel_mlops.schema import Columns

#: Reference rows replayed by the self-test: enough to exercise every category, still milliseconds.
SELF_TEST_ROWS = 64
#: Predictions are float32 sums of trees: the same rows give the same minutes to this tolerance.
_RTOL, _ATOL = 1e-4, 1e-3


class SelfTestFailed(BundleIntegrityError):
    """A bundle loaded but does not reproduce the predictions it recorded at training time."""


@dataclass(frozen=True)
class ServedModel:
    """One verified bundle and the request path it serves: schema check, features, model."""

    bundle: Bundle

    @classmethod
    def load(
        cls, folder: Path, threads: int = 1, self_test_rows: int = SELF_TEST_ROWS
    ) -> ServedModel:
        """Verify every file against the manifest, load, and self-test; raise if any step fails.

        Args:
            folder: a bundle folder (a registry version or KServe's /mnt/models).
            threads: threads an XGBoost model predicts with. One per request is the serving
                default (KServe's xgbserver's too): with more, OpenMP's spinning workers turn a
                0.2 ms single-row prediction into 20 ms whenever the cores are busy.
            self_test_rows: reference rows replayed through the request path.

        Raises:
            BundleIntegrityError: a file is missing, extra or does not match its sha256.
            SelfTestFailed: the loaded model does not reproduce its recorded predictions.
        """
        served = cls(load_bundle(folder))
        booster = getattr(served.bundle.model, "booster", None)
        if booster is not None:
            booster.set_param({"nthread": threads})
        served.self_test(self_test_rows)
        return served

    @property
    def name(self) -> str:
        """The model name recorded in the bundle."""
        return self.bundle.name

    @property
    def version(self) -> str:
        """The registry version of the bundle (v0003), or its folder name."""
        return self.bundle.version

    @property
    def family(self) -> str:
        """The model family (xgboost, hist_gbm...)."""
        return str(self.bundle.metadata.get("family", ""))

    @property
    def event_time_field(self) -> str | None:
        """The request field holding each record's event time (the spec's timestamp), if any."""
        spec = self.bundle.spec
        return spec.timestamp if spec is not None else None

    @property
    def target(self) -> str:
        """The column the model predicts (pickup_minutes)."""
        return str(self.bundle.metadata.get("target", "prediction"))

    def check_records(self, records: Any) -> Columns:
        """Check JSON objects (one per record) against the input schema; numpy columns out."""
        return self.bundle.schema.check_records(records)

    def check_columns(self, columns: dict[str, Any]) -> Columns:
        """Check named columns against the input schema; numpy columns out."""
        return self.bundle.schema.check_columns(columns)

    def predict(self, columns: Columns | pd.DataFrame) -> np.ndarray:
        """Predictions (float64) for records already checked by the schema.

        The columns go straight into the training feature code: no DataFrame per request.
        """
        return self.predict_matrix(self.features(columns))

    def features(self, columns: Columns | pd.DataFrame) -> np.ndarray:
        """The model's feature matrix for checked records (the training feature code)."""
        return self.bundle.features.transform(columns)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions (float64) for a feature matrix made by `features`."""
        return np.asarray(self.bundle.model.predict(matrix), dtype=np.float64)

    def self_test(self, rows: int = SELF_TEST_ROWS) -> None:
        """Replay reference rows as a client would send them and compare with the recorded answers.

        The rows go through the same schema check and feature code as a request, so a bundle
        whose schema rejects its own training data, whose feature pipeline or model file does
        not match the other, or whose model is not the one that made the recorded predictions,
        fails here instead of on the first request.

        Raises:
            SelfTestFailed: naming the first row that differs, or why no row could be checked.
        """
        reference = self.bundle.reference()
        names = self.bundle.schema.names
        missing = [c for c in [*names, PREDICTION] if c not in reference.columns]
        if missing:
            raise SelfTestFailed(f"self-test: reference.parquet lacks columns {missing}")
        sample = reference.head(rows)
        if sample.empty:
            raise SelfTestFailed("self-test: reference.parquet holds no rows")
        columns = {name: _as_request_column(sample[name]) for name in names}
        try:
            checked = self.check_columns(columns)
        except InvalidInputError as error:
            raise SelfTestFailed(
                f"self-test: the schema rejects its own reference rows: {error}"
            ) from error
        got = self.predict(checked)
        expected = sample[PREDICTION].to_numpy(dtype=np.float64)
        close = np.isfinite(got) & np.isclose(got, expected, rtol=_RTOL, atol=_ATOL)
        if not close.all():
            row = int(np.flatnonzero(~close)[0])
            raise SelfTestFailed(
                f"self-test: reference row {row} predicts {got[row]!r} but the bundle recorded "
                f"{expected[row]!r} (tolerance rtol={_RTOL}, atol={_ATOL}); "
                f"{int((~close).sum())} of {len(close)} rows differ"
            )


def _as_request_column(values: pd.Series) -> Any:
    """A reference column as a request carries it: timestamps as ISO text, numbers as floats."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    return values.astype(str).tolist()
