"""Validate: the gate. A batch that fails any check stops the pipeline with a readable report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from flywheel_mlops.errors import ValidationFailed
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.training.clean import CleanReport


@dataclass(frozen=True)
class Check:
    """One named check: what was measured, the limit, and whether it passed."""

    name: str
    column: str | None
    passed: bool
    observed: float | str
    limit: float | str
    message: str


def validate(spec: DatasetSpec, frame: pd.DataFrame, cleaning: CleanReport) -> dict[str, Any]:
    """Judge a cleaned batch and what cleaning had to do to it; raise ValidationFailed if bad.

    Null and invalid rates are read from the clean report, i.e. measured on the raw batch:
    filling half a column with its median must not let a broken batch through.
    """
    checks: list[Check] = []
    for column in cleaning.missing_columns:
        checks.append(
            Check(
                "schema",
                column,
                False,
                "absent",
                "present",
                f"column {column!r} is missing from the batch",
            )
        )
    rows_in = max(cleaning.rows_in - cleaning.duplicates_dropped, 1)
    for column, col in cleaning.columns.items():
        null_rate = col.missing / rows_in
        checks.append(
            Check(
                "null_rate",
                column,
                null_rate <= spec.max_null_rate,
                round(null_rate, 4),
                spec.max_null_rate,
                f"{column}: {null_rate:.1%} of values missing, at most "
                f"{spec.max_null_rate:.0%} allowed",
            )
        )
        text_rate = col.text_values / rows_in
        checks.append(
            Check(
                "type",
                column,
                text_rate <= spec.max_invalid_rate,
                round(text_rate, 4),
                spec.max_invalid_rate,
                f"{column}: {col.text_values} values are text in a numeric column "
                f"({text_rate:.1%})",
            )
        )
        range_rate = (col.out_of_range + col.unknown_unit) / rows_in
        if column in spec.ranges or column in spec.categories:
            allowed = (
                f"[{spec.ranges[column][0]:g}, {spec.ranges[column][1]:g}]"
                if column in spec.ranges
                else f"the declared categories {spec.categories[column]}"
            )
            checks.append(
                Check(
                    "range",
                    column,
                    range_rate <= spec.max_invalid_rate,
                    round(range_rate, 4),
                    spec.max_invalid_rate,
                    f"{column}: {range_rate:.1%} of values outside {allowed}",
                )
            )
    if spec.id_column and spec.id_column in frame.columns:
        dupes = int(frame[spec.id_column].duplicated().sum())
        rate = dupes / max(len(frame), 1)
        checks.append(
            Check(
                "duplicates",
                spec.id_column,
                rate <= spec.max_duplicate_rate,
                dupes,
                spec.max_duplicate_rate,
                f"{dupes} duplicate {spec.id_column} values after cleaning",
            )
        )
    checks.append(
        Check(
            "row_count",
            None,
            len(frame) >= spec.min_rows,
            len(frame),
            spec.min_rows,
            f"{len(frame)} usable rows, at least {spec.min_rows} needed",
        )
    )
    if spec.target in frame.columns and len(frame) > 1:
        spread = float(frame[spec.target].std())
        checks.append(
            Check(
                "target_varies",
                spec.target,
                spread > 0,
                round(spread, 4),
                "> 0",
                f"{spec.target} has standard deviation {spread:.4g}",
            )
        )
    failed = [c for c in checks if not c.passed]
    report = {
        "passed": not failed,
        "rows": len(frame),
        "failed": [c.message for c in failed],
        "checks": [asdict(c) for c in checks],
    }
    if failed:
        lines = "\n".join(f"  - [{c.name}] {c.message}" for c in failed)
        raise ValidationFailed(f"batch failed {len(failed)} validation check(s):\n{lines}", report)
    return report
