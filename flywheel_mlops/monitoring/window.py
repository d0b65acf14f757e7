"""Reading a prediction-log window in batches: checks, a bounded uniform sample, running sums."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.monitoring.reference_stats import PREDICTION, ReferenceStats, bin_index

ACTUAL = "actual"
LOGGED_AT = "logged_at"
BATCH_ROWS = 100_000


class CorruptWindowError(InvalidInputError):
    """The window is not a prediction-log window: a column is missing or has the wrong type."""


@dataclass
class WindowSummary:
    """What one pass over a window leaves: counts, the sample, histograms and error sums."""

    rows: int = 0
    labelled_rows: int = 0
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    sample: pd.DataFrame | None = None
    histograms: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per column: rows per reference bin (numeric, keyed by bin index) or per category."""
    error_sum: float = 0.0
    slice_errors: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """Per slice name and value: [sum of absolute errors, labelled rows]."""


def required_columns(stats: ReferenceStats) -> list[str]:
    """Columns a window must have: the features measured, the prediction, the actual."""
    columns = [*stats.features, PREDICTION, ACTUAL]
    return [*columns, stats.timestamp] if stats.timestamp else columns


def check_batch(batch: pd.DataFrame, stats: ReferenceStats) -> None:
    """Raise CorruptWindowError naming what was expected and what was found."""
    missing = [c for c in required_columns(stats) if c not in batch.columns]
    if missing:
        raise CorruptWindowError(
            f"window is missing columns {missing}; expected the prediction-log columns "
            f"{required_columns(stats)}, found {list(batch.columns)}"
        )
    for name in [*stats.features, PREDICTION, ACTUAL]:
        kind = stats.columns[name].kind if name in stats.columns else "numeric"
        dtype = batch[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if kind == "numeric" and not numeric:
            raise CorruptWindowError(
                f"window column {name} must be numeric, got dtype {dtype} "
                f"(first value {batch[name].iloc[0]!r})"
            )


def batches_of_frame(frame: pd.DataFrame, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """A frame in slices of at most `rows` rows (views, no copies)."""
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


def batches_of_parquet(
    path: Path, columns: list[str] | None = None, rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """A Parquet file in record batches, so a window of millions of rows is never whole in memory.

    Only `columns` are read (all when None); a column the file lacks is simply absent, and the
    batch check reports it.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    present = set(parquet.schema_arrow.names)
    wanted = [c for c in columns if c in present] if columns is not None else None
    empty = True
    for batch in parquet.iter_batches(batch_size=rows, columns=wanted):
        empty = False
        yield batch.to_pandas()
    if empty:
        yield parquet.schema_arrow.empty_table().to_pandas()


def summarise(
    batches: Iterable[pd.DataFrame],
    stats: ReferenceStats,
    slices: list[str],
    sample_rows: int,
    seed: int,
) -> WindowSummary:
    """One pass over a window: check each batch, keep a seeded uniform sample, add up the rest.

    The sample keeps the rows with the `sample_rows` smallest random keys (bottom-k sampling):
    uniform without replacement, the same for the same window and seed, in bounded memory.
    """
    rng = np.random.default_rng(seed)
    summary = WindowSummary()
    kept: pd.DataFrame | None = None
    kept_keys = np.empty(0)
    measured = [*stats.features, PREDICTION]
    for batch in batches:
        if not len(batch):
            continue
        check_batch(batch, stats)
        summary.rows += len(batch)
        _update_time_range(summary, batch)
        _update_histograms(summary, batch, stats, measured)
        _update_errors(summary, batch, stats, slices)
        keys = rng.random(len(batch))
        part = batch[[*measured, ACTUAL]].reset_index(drop=True)
        kept = part if kept is None else pd.concat([kept, part], ignore_index=True)
        kept_keys = np.concatenate([kept_keys, keys])
        if len(kept_keys) > sample_rows:
            keep = np.argpartition(kept_keys, sample_rows - 1)[:sample_rows]
            keep.sort()
            kept = kept.iloc[keep].reset_index(drop=True)
            kept_keys = kept_keys[keep]
    summary.sample = kept
    return summary


def _update_time_range(summary: WindowSummary, batch: pd.DataFrame) -> None:
    if LOGGED_AT not in batch:
        return
    times = pd.to_datetime(batch[LOGGED_AT], utc=True, errors="coerce")
    low, high = times.min(), times.max()
    if pd.notna(low):
        summary.start = low if summary.start is None else min(summary.start, low)
        summary.end = high if summary.end is None else max(summary.end, high)


def _update_histograms(
    summary: WindowSummary, batch: pd.DataFrame, stats: ReferenceStats, measured: list[str]
) -> None:
    for name in measured:
        column = stats.columns[name]
        counts = summary.histograms.setdefault(name, {})
        if column.kind == "numeric":
            values = batch[name].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            found = np.bincount(bin_index(values, column.edges), minlength=len(column.counts))
            for index, count in enumerate(found.tolist()):
                counts[str(index)] = counts.get(str(index), 0) + count
        else:
            for value, count in batch[name].dropna().astype(str).value_counts().items():
                counts[str(value)] = counts.get(str(value), 0) + int(count)


def slice_keys(
    batch: pd.DataFrame, stats: ReferenceStats, slices: list[str]
) -> dict[str, pd.Series]:
    """The value of each slice for every row: a column, or the hour of the request timestamp."""
    keys: dict[str, pd.Series] = {}
    for name in slices:
        if name == "hour" and stats.timestamp and stats.timestamp in batch:
            times = pd.to_datetime(batch[stats.timestamp], errors="coerce", format="mixed")
            if times.isna().all() and batch[stats.timestamp].notna().any():
                raise CorruptWindowError(
                    f"window column {stats.timestamp} must hold timestamps, got values like "
                    f"{batch[stats.timestamp].dropna().iloc[0]!r}"
                )
            keys[name] = times.dt.hour.astype("Int64").astype(str)
        elif name in batch:
            keys[name] = batch[name].astype(str)
    return keys


def _update_errors(
    summary: WindowSummary, batch: pd.DataFrame, stats: ReferenceStats, slices: list[str]
) -> None:
    labelled = batch[batch[ACTUAL].notna() & batch[PREDICTION].notna()]
    if not len(labelled):
        return
    errors = (labelled[PREDICTION].astype(float) - labelled[ACTUAL].astype(float)).abs()
    summary.labelled_rows += len(labelled)
    summary.error_sum += float(errors.sum())
    for name, key in slice_keys(labelled, stats, slices).items():
        grouped = errors.groupby(key.to_numpy()).agg(["sum", "count"])
        target = summary.slice_errors.setdefault(name, {})
        for value, row in grouped.iterrows():
            total = target.setdefault(str(value), [0.0, 0.0])
            total[0] += float(row["sum"])
            total[1] += float(row["count"])
