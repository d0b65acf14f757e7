"""Split: time-based train / validation / test, so evaluation looks at the future."""

from __future__ import annotations

import pandas as pd

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.spec import DatasetSpec


def split(
    spec: DatasetSpec, frame: pd.DataFrame, validation: float = 0.15, test: float = 0.15
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Order by timestamp (file order when there is none); cut into three consecutive parts."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ConfigError(
            f"validation and test fractions must be in (0, 1) and sum below 1, "
            f"got {validation} and {test}"
        )
    if spec.timestamp:
        frame = frame.sort_values(spec.timestamp, kind="stable").reset_index(drop=True)
    n = len(frame)
    train_end = int(n * (1 - validation - test))
    val_end = int(n * (1 - test))
    parts = frame.iloc[:train_end], frame.iloc[train_end:val_end], frame.iloc[val_end:]
    if any(len(p) == 0 for p in parts):
        raise ConfigError(f"{n} rows are too few to split into train, validation and test")
    return tuple(p.reset_index(drop=True) for p in parts)  # type: ignore[return-value]
