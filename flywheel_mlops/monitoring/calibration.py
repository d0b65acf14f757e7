"""Per-feature drift thresholds with a known false-alarm rate, from the training period itself.

Evidently's default thresholds (0.1 for normed Wasserstein and Jensen-Shannon) are the same for
every column and every window size. Real columns move from day to day without the world having
changed: weather, weekday mix, a category with a hundred levels whose rare values come and go.
So the threshold of each feature is measured instead: slide a window of the monitor's length
over the training period (whole, disjoint windows with the monitor's edges: overlapping ones
average neighbouring days and understate the spread), sample each as the monitor samples its
window, let Evidently
score it against the reference (less the rows inside that window), and set the threshold where
only `false_alarm_rate` of those in-distribution windows would be flagged.

The statistic and its direction stay Evidently's (the same stat test the monitor's `ValueDrift`
runs, with the same method); only its threshold is set from data. A high-cardinality category
stays calibrated because its threshold is measured at its own cardinality and sample size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.durations import window_offset

#: Fewer in-distribution windows than this and the thresholds stay Evidently's defaults.
MIN_WINDOWS = 5
#: Windows with fewer rows are not judged by the monitor either (`Thresholds.min_rows`).
MIN_WINDOW_ROWS = 200
#: A window may miss this share of its length at either end and still count as whole.
EDGE_SLACK = 0.05
#: Added to every distance before the log-normal fit, so a score of exactly 0 stays finite.
SCORE_FLOOR = 0.001
#: The confidence that the threshold's false-alarm rate is at most the configured one.
CONFIDENCE = 0.9
#: Digits a threshold keeps: far finer than its uncertainty, coarser than the bits that differ
#: between processes (see `_outward`).
SIGNIFICANT = 6


@dataclass(frozen=True)
class ColumnCalibration:
    """One column's null distribution and the threshold set from it."""

    method: str
    default_threshold: float
    threshold: float
    p_value: bool
    """True: the method's score is a p-value and a low score is drift."""
    null_median: float
    null_extreme: float
    """The most drift-like score of any in-distribution window (max, or min for p-values)."""
    flagged_at_default: float
    """Share of in-distribution windows Evidently's default threshold flags."""


@dataclass(frozen=True)
class DriftCalibration:
    """The thresholds a bundle's monitor uses, and how they were found."""

    window: str
    false_alarm_rate: float
    windows: int
    sample_rows: int
    columns: dict[str, ColumnCalibration]
    confidence: float = CONFIDENCE
    """Chance that each threshold's false-alarm rate is at most `false_alarm_rate`."""

    def to_dict(self) -> dict[str, Any]:
        """As the bundle's metadata and the decision JSON record it."""
        return asdict(self)


def calibrate(
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    timestamp: str,
    columns: dict[str, str],
    window: str,
    false_alarm_rate: float,
    sample_rows: int,
    seed: int = 0,
) -> DriftCalibration | None:
    """Thresholds for `columns` (name -> `numeric`/`categorical`) from windows of `frame`.

    Args:
        frame: every record of the training period, with `timestamp` and every column.
        reference: the bundle's reference sample, with `timestamp`.
        window: the monitor's window length (`1d`, `1mo`, ...).
        false_alarm_rate: the share of in-distribution windows a feature may be flagged in.
        sample_rows: rows the monitor samples from a window (the same rule here).

    Returns:
        The calibration, or None when the training period holds fewer than `MIN_WINDOWS`
        windows of at least `MIN_WINDOW_ROWS` rows: the defaults then stay, and say so.
    """
    stamps = _naive_utc(frame[timestamp])
    reference_stamps = _naive_utc(reference[timestamp]).to_numpy()
    windows = [
        (start, end, rows)
        for start, end, rows in _windows(stamps, window_offset(window))
        if len(rows) >= MIN_WINDOW_ROWS
    ]
    if len(windows) < MIN_WINDOWS:
        return None
    rng = np.random.default_rng(seed)
    tests = {name: _stattest(reference[name], kind) for name, kind in columns.items()}
    typed = {name: _typed(frame[name], kind) for name, kind in columns.items()}
    scores: dict[str, list[float]] = {name: [] for name in columns}
    for start, end, rows in windows:
        if len(rows) > sample_rows:
            rows = rows[np.sort(rng.choice(len(rows), sample_rows, replace=False))]
        # The reference less its rows inside this window: a window is never scored on itself.
        outside = (reference_stamps < start) | (reference_stamps >= end)
        for name, kind in columns.items():
            test, column_type = tests[name]
            others = _typed(reference[name][outside], kind)
            current = typed[name].loc[typed[name].index.isin(rows)]
            scores[name].append(float(test(others, current, column_type, None).drift_score))
    found = {
        name: _threshold(reference[name], kind, np.asarray(scores[name]), false_alarm_rate)
        for name, kind in columns.items()
    }
    return DriftCalibration(window, false_alarm_rate, len(windows), sample_rows, found)


def _naive_utc(stamps: pd.Series) -> pd.Series:
    """Event times as naive UTC, whatever zone they carry; an unreadable one is refused."""
    times = pd.to_datetime(stamps, utc=True)
    if times.isna().any():
        raise ValueError(f"{int(times.isna().sum())} event times are missing or unreadable")
    return times.dt.tz_localize(None)


def share_false_alarm_rate(rate: float, features: int, drift_share: float) -> float:
    """Chance that at least `drift_share` of `features` are flagged when none moved, each at
    `rate` and independently: the binomial tail the share rule's false-alarm rate is."""
    if features == 0:
        return 0.0  # nothing counted: the share is 0 and the verdict is never drift
    needed = math.ceil(drift_share * features - 1e-9)
    return float(
        sum(
            math.comb(features, k) * rate**k * (1 - rate) ** (features - k)
            for k in range(needed, features + 1)
        )
    )


def _windows(
    stamps: pd.Series, offset: pd.DateOffset
) -> list[tuple[np.datetime64, np.datetime64, np.ndarray]]:
    """(start, end, row labels) of each whole window [start, end) of the period, edges counted
    from its first midnight (the first of its month for month windows), as the monitor's. A
    window counts as whole when the period covers it but for `EDGE_SLACK` of its length at
    either end (the first trip is not at midnight)."""
    order = np.argsort(stamps.to_numpy(), kind="stable")
    ordered = stamps.to_numpy()[order]
    labels = stamps.index.to_numpy()[order]
    first, last = pd.Timestamp(ordered[0]), pd.Timestamp(ordered[-1])
    origin = first.normalize()
    if offset.kwds.get("months"):
        origin = origin.replace(day=1)
    found, k = [], 0
    while origin + offset * k <= last:
        start, end = origin + offset * k, origin + offset * (k + 1)
        slack = (end - start) * EDGE_SLACK
        if start + slack >= first and end - slack <= last:
            lo = np.searchsorted(ordered, start.to_datetime64(), side="left")
            hi = np.searchsorted(ordered, end.to_datetime64(), side="left")
            found.append((start.to_datetime64(), end.to_datetime64(), labels[lo:hi]))
        k += 1
    return found


def _stattest(reference: pd.Series, kind: str) -> Any:
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Categorical if kind == "categorical" else ColumnType.Numerical
    return get_stattest(reference, reference, column_type, None), column_type


def _typed(values: pd.Series, kind: str) -> pd.Series:
    # As the monitor hands columns to Evidently: categories as strings, numbers as floats.
    if kind == "categorical":
        return values.dropna().astype("string").astype(object)
    return pd.to_numeric(values, errors="coerce").astype(np.float64).dropna()


def _threshold(
    reference: pd.Series, kind: str, scores: np.ndarray, rate: float
) -> ColumnCalibration:
    """The score only `rate` of in-distribution windows pass.

    A training period holds tens of windows, too few to show a 1% quantile by itself, so the
    tail is fitted: drift distances are positive and right-skewed, so a log-normal on the log
    scores (p-values the same way on their logit). A quantile fitted on n windows is itself
    uncertain, so the threshold is the one-sided normal tolerance bound: with `CONFIDENCE`, at
    most `rate` of in-distribution windows lie beyond it. Never inside the most extreme window
    seen.
    """
    test, column_type = _stattest(reference, kind)
    default = float(test.default_threshold)
    p_value = _is_p_value(test, reference, kind, column_type)
    z = tolerance_factor(len(scores), rate)
    if p_value:
        extreme = float(scores.min())
        p = np.clip(scores, 1e-12, 1 - 1e-12)
        logit = np.log(p / (1 - p))
        fitted = float(1 / (1 + np.exp(-(logit.mean() - z * _sd(logit)))))
        # Evidently flags p <= threshold: strictly below the lowest p-value seen.
        threshold = _outward(float(np.nextafter(min(fitted, extreme), 0.0)), up=False)
        degenerate = extreme >= 1.0
    else:
        extreme = float(scores.max())
        # A floor below the sampling spread of the scores (~0.003-0.009 at 10,000 rows): a window
        # scoring exactly 0 would put log(0) into the fit and blow the bound up.
        logs = np.log(scores + SCORE_FLOOR)
        fitted = float(np.exp(logs.mean() + z * _sd(logs)) - SCORE_FLOOR)
        # Evidently flags score >= threshold: strictly above the highest score seen.
        threshold = _outward(float(np.nextafter(max(fitted, extreme), np.inf)), up=True)
        degenerate = extreme <= 0.0
    if degenerate:
        # Every window scored as identical to the reference (a constant column): nothing to
        # measure a spread on, so Evidently's default stays.
        threshold = default
    return ColumnCalibration(
        method=test.name,
        default_threshold=default,
        threshold=threshold,
        p_value=p_value,
        null_median=_significant(float(np.median(scores))),
        null_extreme=_significant(extreme),
        flagged_at_default=float(np.mean(scores <= default if p_value else scores >= default)),
    )


def _outward(value: float, up: bool) -> float:
    """`value` rounded away from the windows (up for distances, down for p-values) to
    `SIGNIFICANT` digits: never inside the extreme window, and the same threshold in every
    process. Evidently sums a categorical column's levels in `set` order, which string hashing
    changes from process to process, so the scores agree only to the last few bits."""
    if value == 0.0 or not math.isfinite(value):
        return value
    scale = 10.0 ** (math.floor(math.log10(abs(value))) - SIGNIFICANT + 1)
    steps = math.ceil(value / scale) if up else math.floor(value / scale)
    rounded = _significant(steps * scale)
    # value / scale a whole number but for its last bit: one step further, still outward.
    if (rounded < value) if up else (rounded > value):
        rounded = _significant((steps + (1 if up else -1)) * scale)
    return rounded


def _significant(value: float) -> float:
    """`value` to `SIGNIFICANT` digits, as recorded (see `_outward`)."""
    return float(f"{value:.{SIGNIFICANT}g}")


def tolerance_factor(windows: int, rate: float, confidence: float = CONFIDENCE) -> float:
    """k such that mean + k sd of `windows` normal draws lies above the (1 - rate) quantile with
    probability `confidence` (the noncentral-t tolerance factor)."""
    from scipy.stats import nct

    n = max(windows, 2)
    z = NormalDist().inv_cdf(1 - rate)
    return float(nct.ppf(confidence, df=n - 1, nc=z * math.sqrt(n)) / math.sqrt(n))


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _is_p_value(test: Any, reference: pd.Series, kind: str, column_type: Any) -> bool:
    """Whether a low score is drift: Evidently flags p-values below the threshold and distances
    at or above it. Asked of the test itself: a score exactly at a threshold just above it is
    drift only for a p-value."""
    values = _typed(reference, kind)
    score = float(test(values, values, column_type, None).drift_score)
    return bool(test(values, values, column_type, score + 1e-9).drifted)
