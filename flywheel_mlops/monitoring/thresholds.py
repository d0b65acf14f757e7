"""The numbers a window is judged by: drift share, error ratios, minimum row counts, sample size."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """What makes a window `drift`, `degraded` or `insufficient_data`.

    Per-feature drift thresholds are not here: Evidently picks each column's method, and its
    threshold is the one the register step calibrated on the training period (`calibration.py`)
    or, for a bundle without one, Evidently's default (normed Wasserstein 0.1, Jensen-Shannon
    0.1 when the reference holds more than 1,000 rows). The decision records both.
    """

    drift_share: float = 0.6
    """Share of drifted (non-seasonal) features at or above which the window is `drift`. Set
    above Evidently's 0.5 when thresholds were Evidently's defaults, under which weather and
    weekday alone drifted 4-6 of 12 features on one-day windows (docs/monitoring.md)."""

    prediction_drift: bool = False
    """Whether a drifted prediction distribution alone makes the window `drift` (weekends do)."""

    mae_ratio: float = 1.3
    """Live MAE / test MAE at or above which the window is `degraded`."""

    slice_mae_ratio: float = 2.0
    """Live MAE / test MAE of one slice (a zone, an hour) at or above which it is `degraded`."""

    min_rows: int = 200
    """Rows below which drift is not judged: `insufficient_data`."""

    min_labelled_rows: int = 200
    """Rows with ground truth below which live error is not judged: `insufficient_data`."""

    min_slice_rows: int = 100
    """Labelled rows a slice needs before its error is judged."""

    min_slice_test_rows: int = 30
    """Test rows a slice needs in the bundle's metrics to be its own yardstick; else test MAE."""

    sample_rows: int = 10_000
    """Rows of the window (uniform, seeded) that Evidently measures drift on. At 10,000 rows the
    sampling spread of a score is ~0.009 (normed Wasserstein) and ~0.003 (Jensen-Shannon) against
    0.1 thresholds; 20,000 rows narrowed it only to ~0.007 (docs/monitoring.md, benchmark)."""

    seed: int = 0
    """Seed of the window sample: the same window gives the same decision."""

    def __post_init__(self) -> None:
        """Reject values that cannot be thresholds, naming the field and the value found."""
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must be within (0, 1], got {self.drift_share}")
        for name in ("mae_ratio", "slice_mae_ratio"):
            if getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be > 1, got {getattr(self, name)}")
        for name in ("min_rows", "min_labelled_rows", "min_slice_rows", "sample_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as the decision JSON records them."""
        return asdict(self)
