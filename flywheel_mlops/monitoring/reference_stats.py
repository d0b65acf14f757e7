"""Reference statistics of a bundle, computed once per version and cached outside the bundle."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel_mlops.files import write_atomic
from flywheel_mlops.registry.bundle import MANIFEST, PREDICTION, Bundle, sha256_of

STATS_FILE = "reference_stats.json"
#: Bumped when the statistics gain a field: a cache written before is recomputed, never read
#: with defaults (a cache from before calibration would silently drop the bundle's thresholds).
FORMAT_VERSION = 2
QUANTILE_BINS = 20
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class ColumnStats:
    """One column of the reference: how Evidently will measure it and its distribution."""

    kind: Kind
    method: str
    """Evidently's stat test for this column (its own default choice for this reference)."""
    threshold: float
    """The threshold the monitor applies: calibrated when the bundle has it, else the default."""
    edges: list[float] = field(default_factory=list)
    """Numeric: quantile bin edges of the reference (first and last open-ended)."""
    counts: list[int] = field(default_factory=list)
    """Numeric: reference rows per bin; categorical: rows per category in `categories`."""
    categories: list[str] = field(default_factory=list)
    """Categorical: the categories seen in the reference."""
    summary: dict[str, float] = field(default_factory=dict)
    """Numeric: mean, std and quartiles, for the report."""
    default_threshold: float | None = None
    """Evidently's default threshold for the method, beside the calibrated one."""
    calibrated: bool = False
    """Whether `threshold` was measured on the training period's in-distribution windows."""
    seasonal: bool = False
    """Declared by the spec to move with the season: reported, not counted in the share."""


@dataclass(frozen=True)
class ReferenceStats:
    """Everything the monitor needs from a bundle's reference, keyed by the manifest hash."""

    model: str
    version: str
    manifest_sha256: str
    rows: int
    target: str
    timestamp: str | None
    columns: dict[str, ColumnStats]
    """Features (and `prediction`) the monitor measures drift on."""
    calibration: dict[str, Any] | None = None
    """How the thresholds were calibrated (window, false-alarm rate, windows), or why not."""
    format_version: int = 0
    """`FORMAT_VERSION` of the code that computed these statistics."""

    @property
    def features(self) -> list[str]:
        """Feature columns measured for drift, in schema order."""
        return [c for c in self.columns if c != PREDICTION]

    def to_json(self) -> str:
        """Serialise for the cache file."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ReferenceStats:
        """Rebuild from the cache file."""
        raw = json.loads(text)
        raw["columns"] = {k: ColumnStats(**v) for k, v in raw["columns"].items()}
        return cls(**raw)


def manifest_sha256(bundle: Bundle) -> str:
    """Hash of the bundle's manifest: it changes whenever any file of the bundle changes."""
    return sha256_of(bundle.path / MANIFEST)


def cache_path(cache_dir: Path, bundle: Bundle) -> Path:
    """Where a bundle version's reference statistics are cached."""
    return Path(cache_dir) / bundle.name / bundle.version / STATS_FILE


def load_or_compute(bundle: Bundle, cache_dir: Path) -> tuple[ReferenceStats, bool]:
    """Reference statistics of a bundle, from the cache when its manifest hash matches.

    Returns:
        The statistics, and whether they came from the cache (False: computed now and cached).
    """
    path = cache_path(cache_dir, bundle)
    digest = manifest_sha256(bundle)
    if path.is_file():
        try:
            cached = ReferenceStats.from_json(path.read_text())
        except (ValueError, TypeError, KeyError):
            cached = None  # a damaged cache is recomputed, never trusted
        if (
            cached is not None
            and cached.manifest_sha256 == digest
            and cached.format_version == FORMAT_VERSION
        ):
            return cached, True
    stats = compute(bundle, digest)
    write_atomic(path, stats.to_json())
    return stats, False


def compute(bundle: Bundle, digest: str) -> ReferenceStats:
    """Compute the statistics from the bundle's reference sample and schema."""
    reference = bundle.reference()
    timestamp = next((f.name for f in bundle.schema.fields if f.kind == "timestamp"), None)
    columns: dict[str, ColumnStats] = {}
    for spec in bundle.schema.fields:
        if spec.kind == "timestamp" or spec.name not in reference:
            continue  # a timestamp always drifts; its hour is a slice of the live error instead
        kind: Kind = "categorical" if spec.kind == "string" else "numeric"
        columns[spec.name] = column_stats(reference[spec.name], kind)
    columns[PREDICTION] = column_stats(reference[PREDICTION], "numeric")
    calibration = bundle.metadata.get("drift_calibration")
    seasonal = set(bundle.spec.drift.seasonal) if bundle.spec else set()
    found = (calibration or {}).get("columns", {})
    columns = {
        name: _calibrated(column, found.get(name), name in seasonal)
        for name, column in columns.items()
    }
    return ReferenceStats(
        model=bundle.name,
        version=bundle.version,
        manifest_sha256=digest,
        rows=len(reference),
        target=str(bundle.metadata.get("target", "")),
        timestamp=timestamp,
        columns=columns,
        calibration=(
            {k: v for k, v in calibration.items() if k != "columns"} if calibration else None
        ),
        format_version=FORMAT_VERSION,
    )


def _calibrated(column: ColumnStats, found: dict[str, Any] | None, seasonal: bool) -> ColumnStats:
    """The column with its calibrated threshold when calibration used the same method."""
    if not found or found.get("method") != column.method:
        return replace(column, default_threshold=column.threshold, seasonal=seasonal)
    return replace(
        column,
        threshold=float(found["threshold"]),
        default_threshold=column.threshold,
        calibrated=True,
        seasonal=seasonal,
    )


def column_stats(values: pd.Series, kind: Kind) -> ColumnStats:
    """Evidently's default method for this reference column, and its distribution."""
    method, threshold = evidently_default_method(values, kind)
    values = values.dropna()
    if kind == "categorical":
        counts = values.astype(str).value_counts().sort_index()
        return ColumnStats(
            kind, method, threshold, counts=[int(c) for c in counts], categories=list(counts.index)
        )
    numbers = values.to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, QUANTILE_BINS + 1)))
    binned = np.bincount(bin_index(numbers, edges.tolist()), minlength=max(len(edges) - 1, 1))
    summary = {
        "mean": float(numbers.mean()),
        "std": float(numbers.std()),
        **{f"q{int(q * 100)}": float(np.quantile(numbers, q)) for q in (0.25, 0.5, 0.75)},
    }
    return ColumnStats(
        kind, method, threshold, edges=edges.tolist(), counts=binned.tolist(), summary=summary
    )


def bin_index(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin of each value on reference edges; values outside fall into the first or last bin."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, values, side="right")


def evidently_default_method(values: pd.Series, kind: Kind) -> tuple[str, float]:
    """The stat test Evidently 0.7 picks by default for this reference column, and its threshold.

    Asked of Evidently itself (its registry's default selection), so the monitor measures every
    column the way a plain `DataDriftPreset` run would.
    """
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Categorical if kind == "categorical" else ColumnType.Numerical
    test = get_stattest(values, values, column_type, None)
    return test.name, float(test.default_threshold)
