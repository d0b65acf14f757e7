"""Live error: MAE on the labelled rows of a window against the bundle's test MAE, per slice."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flywheel_mlops.monitoring.thresholds import Thresholds
from flywheel_mlops.monitoring.window import WindowSummary


@dataclass(frozen=True)
class SliceError:
    """One slice value (zone Z05, hour 8): its live MAE against its test MAE."""

    slice: str
    value: str
    n: int
    mae: float
    test_mae: float
    ratio: float
    judged: bool
    """False when the slice has fewer labelled rows than `min_slice_rows`."""
    degraded: bool

    def to_dict(self) -> dict[str, Any]:
        """As the decision JSON records it."""
        return asdict(self)


@dataclass(frozen=True)
class LiveError:
    """Live MAE, the test MAE it is held to, and every slice."""

    labelled_rows: int
    mae: float | None
    test_mae: float
    ratio: float | None
    slices: list[SliceError]

    @property
    def degraded_slices(self) -> list[SliceError]:
        """Judged slices whose ratio reached the slice threshold, worst first."""
        return sorted((s for s in self.slices if s.degraded), key=lambda s: -s.ratio)

    def to_dict(self) -> dict[str, Any]:
        """As the decision JSON records it: slices grouped by slice name."""
        grouped: dict[str, dict[str, Any]] = {}
        for item in self.slices:
            entry = item.to_dict()
            grouped.setdefault(entry.pop("slice"), {})[entry.pop("value")] = entry
        return {
            "labelled_rows": self.labelled_rows,
            "mae": self.mae,
            "test_mae": self.test_mae,
            "ratio": self.ratio,
            "slices": grouped,
            "degraded_slices": [f"{s.slice}={s.value}" for s in self.degraded_slices],
        }


def slice_names(metrics: dict[str, Any]) -> list[str]:
    """The slices the bundle's evaluation measured (zone, weather, hour...)."""
    return sorted(metrics.get("slices", {}))


def live_error(
    summary: WindowSummary, metrics: dict[str, Any], thresholds: Thresholds
) -> LiveError:
    """Compare the window's labelled rows with the bundle's test metrics.

    A slice is held to its own test MAE when the test split had at least `min_slice_test_rows`
    rows of it, else to the global test MAE; it is judged only with `min_slice_rows` labelled rows.
    """
    test_mae = float(metrics["test"]["mae"])
    if not summary.labelled_rows:
        return LiveError(0, None, test_mae, None, [])
    mae = summary.error_sum / summary.labelled_rows
    slices: list[SliceError] = []
    for name, values in sorted(summary.slice_errors.items()):
        tested = metrics.get("slices", {}).get(name, {})
        for value, (total, count) in sorted(values.items()):
            reference = tested.get(value, {})
            own = reference.get("n", 0) >= thresholds.min_slice_test_rows
            yardstick = float(reference["mae"]) if own else test_mae
            ratio = (total / count) / yardstick
            judged = count >= thresholds.min_slice_rows
            slices.append(
                SliceError(
                    name,
                    value,
                    int(count),
                    total / count,
                    yardstick,
                    ratio,
                    judged,
                    judged and ratio >= thresholds.slice_mae_ratio,
                )
            )
    return LiveError(summary.labelled_rows, mae, test_mae, mae / test_mae, slices)
