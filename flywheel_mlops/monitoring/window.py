"""Reading a prediction-log window in batches: checks, a bounded uniform sample, running sums."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.monitoring.reference_stats import ReferenceStats, bin_index
from flywheel_mlops.registry.bundle import PREDICTION

ACTUAL = "actual"
LOGGED_AT = "logged_at"
EVENT_TIME = "event_time"  # the window's clock when the log has it; else the arrival time
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
    """A Parquet file in batches of `rows` rows, one row group in memory at a time.

    Only `columns` are read (all when None); a column the file lacks is simply absent, and the
    batch check reports it. A row group is read one column at a time: Arrow's batch reader
    decodes every column chunk of a row group at once and peaked ~100 MB higher on the 1M-row
    benchmark. Text columns arrive as pandas categoricals (codes and the few distinct values,
    not a Python string per row): cheaper to convert, to hold and to count.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, pre_buffer=False)
    present = parquet.schema_arrow.names
    wanted = [c for c in columns if c in present] if columns is not None else present
    for group in range(parquet.num_row_groups):
        table = pa.table({name: parquet.read_row_group(group, [name]).column(0) for name in wanted})
        for batch in table.to_batches(max_chunksize=rows):
            yield batch.to_pandas(strings_to_categorical=True)
        del table
        pa.default_memory_pool().release_unused()
    if not parquet.num_row_groups:
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
    uniform without replacement, the same for the same window and seed, in bounded memory. Only
    the rows of a batch that can still enter the sample are copied, so the work per batch stays
    O(batch); the keys are one seeded stream, so the sample does not depend on the batch size.
    """
    rng = np.random.default_rng(seed)
    summary = WindowSummary()
    measured = [*stats.features, PREDICTION]
    histograms = _Histograms(stats, measured)
    kept: pd.DataFrame | None = None
    kept_keys = np.empty(0)
    for batch in batches:
        if not len(batch):
            continue
        check_batch(batch, stats)
        summary.rows += len(batch)
        _update_time_range(summary, batch)
        histograms.add(batch)
        _update_errors(summary, batch, stats, slices)
        keys = rng.random(len(batch))
        candidates = _bottom(keys, sample_rows)
        if len(kept_keys) >= sample_rows:
            # a row enters only below the largest key kept so far
            candidates = candidates[keys[candidates] < kept_keys.max()]
        part = batch.iloc[candidates][[*measured, ACTUAL]]
        kept = part if kept is None else pd.concat([kept, part], ignore_index=True)
        kept_keys = np.concatenate([kept_keys, keys[candidates]])
        if len(kept_keys) > sample_rows:
            keep = _bottom(kept_keys, sample_rows)
            kept = kept.iloc[keep]
            kept_keys = kept_keys[keep]
    summary.histograms = histograms.as_dict()
    summary.sample = None if kept is None else kept.reset_index(drop=True)
    return summary


def _bottom(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys, in their original (window) order."""
    if len(keys) <= k:
        return np.arange(len(keys))
    return np.sort(np.argpartition(keys, k - 1)[:k])


def _update_time_range(summary: WindowSummary, batch: pd.DataFrame) -> None:
    column = EVENT_TIME if EVENT_TIME in batch else LOGGED_AT
    if column not in batch:
        return
    times = batch[column]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        times = pd.to_datetime(times, utc=True, errors="coerce")
    low, high = times.min(), times.max()
    if pd.notna(low):
        summary.start = low if summary.start is None else min(summary.start, low)
        summary.end = high if summary.end is None else max(summary.end, high)


class _Histograms:
    """Running full-window counts: rows per reference bin (numeric) or per category."""

    def __init__(self, stats: ReferenceStats, measured: list[str]) -> None:
        self._columns = {name: stats.columns[name] for name in measured}
        self._bins = {
            name: np.zeros(len(column.counts), dtype=np.int64)
            for name, column in self._columns.items()
            if column.kind == "numeric"
        }
        self._categories: dict[str, dict[str, int]] = {
            name: {} for name, column in self._columns.items() if column.kind != "numeric"
        }

    def add(self, batch: pd.DataFrame) -> None:
        """Count one batch."""
        for name, column in self._columns.items():
            if column.kind == "numeric":
                values = batch[name].to_numpy(dtype=np.float64, na_value=np.nan)
                values = values[np.isfinite(values)]
                found = np.bincount(bin_index(values, column.edges), minlength=len(column.counts))
                self._bins[name] += found
            else:
                counts = self._categories[name]
                # count the raw values, then name the few distinct ones: no per-row str()
                for value, count in batch[name].value_counts(dropna=True).items():
                    if count:
                        counts[str(value)] = counts.get(str(value), 0) + int(count)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """Per column: {bin index or category: rows}, as `WindowSummary.histograms`."""
        out = {name: {str(i): int(n) for i, n in enumerate(b)} for name, b in self._bins.items()}
        out.update(self._categories)
        return {name: out[name] for name in self._columns}


def slice_keys(
    batch: pd.DataFrame, stats: ReferenceStats, slices: list[str]
) -> dict[str, pd.Series]:
    """The value of each slice for every row: a column, or the hour of the request timestamp.

    Values are returned raw (an hour as a nullable integer, a column as it is); they are named
    as text once per distinct value (`_add_slice_errors`), not once per row.
    """
    keys: dict[str, pd.Series] = {}
    for name in slices:
        if name == "hour" and stats.timestamp and stats.timestamp in batch:
            times = batch[stats.timestamp]
            if not pd.api.types.is_datetime64_any_dtype(times.dtype):
                times = pd.to_datetime(times, errors="coerce", format="mixed")
            if times.isna().all() and batch[stats.timestamp].notna().any():
                raise CorruptWindowError(
                    f"window column {stats.timestamp} must hold timestamps, got values like "
                    f"{batch[stats.timestamp].dropna().iloc[0]!r}"
                )
            keys[name] = times.dt.hour.astype("Int64")
        elif name in batch:
            keys[name] = batch[name]
    return keys


def _update_errors(
    summary: WindowSummary, batch: pd.DataFrame, stats: ReferenceStats, slices: list[str]
) -> None:
    prediction = batch[PREDICTION].to_numpy(dtype=np.float64, na_value=np.nan)
    actual = batch[ACTUAL].to_numpy(dtype=np.float64, na_value=np.nan)
    labelled = ~np.isnan(prediction) & ~np.isnan(actual)
    if not labelled.any():
        return
    errors = np.abs(prediction[labelled] - actual[labelled])
    summary.labelled_rows += int(labelled.sum())
    summary.error_sum += float(errors.sum())
    wanted = [c for c in batch.columns if c in slices or c == stats.timestamp]
    for name, key in slice_keys(batch.loc[labelled, wanted], stats, slices).items():
        _add_slice_errors(summary.slice_errors.setdefault(name, {}), key, errors)


def _add_slice_errors(target: dict[str, list[float]], key: pd.Series, errors: np.ndarray) -> None:
    codes, values = pd.factorize(key, use_na_sentinel=False)
    sums = np.bincount(codes, weights=errors, minlength=len(values))
    counts = np.bincount(codes, minlength=len(values))
    # str() of the distinct values, as the decision has always named slices ("8", "Z05", "<NA>")
    labels = pd.Series(values).astype(str).tolist()
    for label, total_sum, count in zip(labels, sums.tolist(), counts.tolist(), strict=True):
        total = target.setdefault(label, [0.0, 0.0])
        total[0] += total_sum
        total[1] += float(count)
