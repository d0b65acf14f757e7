"""Clean: fix what can be fixed, fill what is missing, drop what cannot be repaired, and say so."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.spec import DatasetSpec


@dataclass
class ColumnReport:
    """Counts of what happened to one column."""

    missing: int = 0
    text_values: int = 0
    out_of_range: int = 0
    unknown_unit: int = 0
    converted_units: dict[str, int] = field(default_factory=dict)
    filled: int = 0
    fill_value: Any = None


@dataclass
class CleanReport:
    """Every change clean made, with counts; validate reads it to judge the raw batch."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    columns: dict[str, ColumnReport] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "columns"},
            "columns": {name: dict(col.__dict__) for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanReport:
        """Rebuild a report saved with `to_dict` (it travels between pipeline steps as JSON)."""
        columns = {name: ColumnReport(**col) for name, col in data["columns"].items()}
        return cls(**{**data, "columns": columns})


def clean(spec: DatasetSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
    """Return the repaired records and a report of every change.

    Order matters: duplicates first (so counts are per unique record), then units, types and
    ranges turn bad values into missing ones, then rows that cannot be repaired are dropped,
    and only then are the remaining gaps filled (median for numbers, most frequent category).
    """
    report = CleanReport(rows_in=len(frame))
    wanted = [*spec.feature_columns, spec.target]
    report.missing_columns = [c for c in wanted if c not in frame.columns]
    frame = _drop_duplicates(spec, frame, report)
    present_numeric = [c for c in [*spec.numeric, spec.target] if c in frame.columns]
    for column in present_numeric:
        col = report.columns.setdefault(column, ColumnReport())
        col.missing = int(frame[column].isna().sum())
        frame[column] = _to_number(frame[column], col)
        if column in spec.units:
            frame[column] = _unify_units(frame, column, spec, col)
        if column in spec.ranges:
            low, high = spec.ranges[column]
            outside = frame[column].notna() & ~frame[column].between(low, high)
            col.out_of_range = int(outside.sum())
            frame.loc[outside, column] = np.nan
    for column in [c for c in spec.categorical if c in frame.columns]:
        col = report.columns.setdefault(column, ColumnReport())
        text = frame[column].astype("string").str.strip()
        blank = frame[column].isna() | (text == "")
        col.missing = int(blank.sum())
        if column in spec.categories:
            unknown = ~blank & ~text.isin(spec.categories[column])
            col.out_of_range = int(unknown.sum())
            blank |= unknown
        frame[column] = text.where(~blank, None)
    frame = _drop_unrepairable(spec, frame, report)
    for column in [c for c in [*spec.numeric, *spec.categorical] if c in frame.columns]:
        _fill(frame, column, column in spec.numeric, report.columns[column])
    unit_columns = [r.unit_column for r in spec.units.values() if r.unit_column in frame.columns]
    frame = frame.drop(columns=unit_columns).reset_index(drop=True)
    for column in [c for c in spec.categorical if c in frame.columns]:
        frame[column] = frame[column].astype(str)
    report.rows_out = len(frame)
    return frame, report


def _drop_duplicates(spec: DatasetSpec, frame: pd.DataFrame, report: CleanReport) -> pd.DataFrame:
    before = len(frame)
    key = [spec.id_column] if spec.id_column and spec.id_column in frame.columns else None
    frame = frame.drop_duplicates(subset=key, keep="first").reset_index(drop=True)
    report.duplicates_dropped = before - len(frame)
    return frame


def _to_number(values: pd.Series, col: ColumnReport) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(np.float64)
    numbers = pd.to_numeric(values, errors="coerce")
    col.text_values = int((numbers.isna() & values.notna()).sum())
    return numbers.astype(np.float64)


def _unify_units(
    frame: pd.DataFrame, column: str, spec: DatasetSpec, col: ColumnReport
) -> pd.Series:
    rule = spec.units[column]
    if rule.unit_column not in frame.columns:
        return frame[column]
    units = frame[rule.unit_column].astype("string").str.strip()
    factor = units.map(rule.factors).astype(np.float64)
    col.unknown_unit = int((factor.isna() & frame[column].notna()).sum())
    col.converted_units = {
        str(unit): int(count)
        for unit, count in units.value_counts().items()
        if unit in rule.factors
    }
    return frame[column] * factor


def _drop_unrepairable(spec: DatasetSpec, frame: pd.DataFrame, report: CleanReport) -> pd.DataFrame:
    reasons = {f"{spec.target} missing or out of range": frame.get(spec.target)}
    if spec.timestamp:
        reasons[f"{spec.timestamp} missing or unparseable"] = frame.get(spec.timestamp)
    for column in spec.required:
        reasons[f"{column} missing or invalid (required)"] = frame.get(column)
    drop = pd.Series(False, index=frame.index)
    for reason, values in reasons.items():
        if values is None:
            continue
        bad = values.isna() & ~drop
        if bad.any():
            report.dropped[reason] = int(bad.sum())
        drop |= values.isna()
    return frame.loc[~drop].reset_index(drop=True)


def _fill(frame: pd.DataFrame, column: str, numeric: bool, col: ColumnReport) -> None:
    gaps = frame[column].isna()
    if not gaps.any() or gaps.all():
        return
    value = frame[column].median() if numeric else frame[column].mode().iloc[0]
    frame.loc[gaps, column] = value
    col.filled = int(gaps.sum())
    col.fill_value = float(value) if numeric else str(value)
